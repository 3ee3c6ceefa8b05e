//! Partial dependence by scikit-learn's brute method (`sklearn.inspection.partial_dependence`,
//! `method="brute"`, `kind="average"`): the model's mean prediction over every row when one
//! feature is set to each value of a grid, the grid built as scikit-learn builds it.

use crate::{Error, Feature, Result, Value};
use rayon::prelude::*;
use skiff_data::Values;
use skiff_runtime::Tensor;

/// scikit-learn's grid (`_grid_from_X`): a feature with fewer distinct values than
/// `resolution`, or a text feature, gets its distinct values, sorted; any other gets
/// `resolution` evenly spaced values from its `percentiles.0` to its `percentiles.1`
/// quantile, quantiles as scipy's `mquantiles` takes them (not numpy's `percentile`). Missing
/// values (NaN, `None`) are no value of the grid.
pub fn grid(values: &Values, percentiles: (f64, f64), resolution: usize) -> Result<Vec<Value>> {
    let (low, high) = percentiles;
    if !(0.0..=1.0).contains(&low) || !(0.0..=1.0).contains(&high) || low >= high {
        return Err(Error::Invalid(format!(
            "percentiles {low},{high} must be two numbers from 0 to 1, the first below the second (e.g. 0.05,0.95)"
        )));
    }
    if resolution < 2 {
        return Err(Error::Invalid(format!(
            "a grid of {resolution} values draws no line: give a grid resolution of 2 or more"
        )));
    }
    match values {
        Values::Text(text) => {
            let mut unique: Vec<&String> = text.iter().flatten().collect();
            unique.sort();
            unique.dedup();
            Ok(unique.into_iter().map(|t| Value::Text(t.clone())).collect())
        }
        Values::Numbers(numbers) => {
            let mut sorted: Vec<f64> = numbers.iter().copied().filter(|v| !v.is_nan()).collect();
            if sorted.is_empty() {
                return Err(Error::Invalid(
                    "every value of the feature is missing: there is no grid to draw".into(),
                ));
            }
            sorted.sort_by(f64::total_cmp);
            let mut unique = sorted.clone();
            unique.dedup();
            if unique.len() < resolution {
                return Ok(unique.into_iter().map(Value::Number).collect());
            }
            let (from, to) = (mquantile(&sorted, low), mquantile(&sorted, high));
            if (from - to).abs() <= 1e-8 + 1e-5 * to.abs() {
                return Err(Error::Invalid(format!(
                    "the feature's {low} and {high} quantiles are both {from}: choose percentiles further apart"
                )));
            }
            Ok(linspace(from, to, resolution).map(Value::Number).collect())
        }
    }
}

/// scipy's `mstats.mquantiles` of ascending `sorted` at probability `p`, with its default
/// plotting positions (alphap = betap = 0.4).
fn mquantile(sorted: &[f64], p: f64) -> f64 {
    let (alphap, betap) = (0.4, 0.4);
    let n = sorted.len();
    if n == 1 {
        return sorted[0];
    }
    let m = alphap + p * (1.0 - alphap - betap);
    let aleph = n as f64 * p + m;
    let k = aleph.clamp(1.0, (n - 1) as f64).floor();
    let gamma = (aleph - k).clamp(0.0, 1.0);
    let k = k as usize;
    (1.0 - gamma) * sorted[k - 1] + gamma * sorted[k]
}

/// numpy's `linspace(from, to, n)`: `i * step + from`, the last value `to` exactly.
fn linspace(from: f64, to: f64, n: usize) -> impl Iterator<Item = f64> {
    let step = (to - from) / (n - 1) as f64;
    (0..n).map(move |i| {
        if i == n - 1 {
            to
        } else {
            i as f64 * step + from
        }
    })
}

/// The partial dependence of the model on `feature` over `grid`: for each grid value, every
/// row of `inputs` (`rows` of them) gets it, and `predict`'s outputs (one vector of a value
/// per row for each output, e.g. each class's probability) are averaged over the rows. The
/// result holds, for each output, one average per grid value. Grid values run in parallel.
pub fn partial_dependence<P>(
    inputs: &[Tensor],
    rows: usize,
    feature: &Feature,
    grid: &[Value],
    predict: P,
) -> Result<Vec<Vec<f64>>>
where
    P: Fn(&[Tensor]) -> Result<Vec<Vec<f64>>> + Sync,
{
    let at_each: Vec<Vec<f64>> = grid
        .par_iter()
        .map(|value| {
            let mut changed = inputs.to_vec();
            feature.set(&mut changed, rows, value)?;
            let outputs = predict(&changed)?;
            Ok(outputs
                .iter()
                .map(|values| values.iter().sum::<f64>() / values.len() as f64)
                .collect())
        })
        .collect::<Result<_>>()?;
    let n_outputs = at_each.first().map_or(0, Vec::len);
    Ok((0..n_outputs)
        .map(|output| at_each.iter().map(|means| means[output]).collect())
        .collect())
}

/// The partial dependence as an SVG line chart: the grid across, one line per output (named
/// by `series`), as scikit-learn's `PartialDependenceDisplay` draws it; text grids are drawn
/// at evenly spaced positions named by their values.
pub fn svg(
    feature: &str,
    grid: &[Value],
    average: &[Vec<f64>],
    series: &[String],
) -> Result<String> {
    use plotters::prelude::*;
    let fail = |e: &dyn std::fmt::Display| Error::Invalid(format!("cannot draw the plot: {e}"));
    let xs: Vec<f64> = grid
        .iter()
        .enumerate()
        .map(|(i, v)| match v {
            Value::Number(x) => *x,
            Value::Text(_) => i as f64,
        })
        .collect();
    let text = grid.iter().any(|v| matches!(v, Value::Text(_)));
    let span = |values: &mut dyn Iterator<Item = f64>| {
        let (lo, hi) = values
            .filter(|v| v.is_finite())
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
                (lo.min(v), hi.max(v))
            });
        let pad = if hi > lo { (hi - lo) * 0.05 } else { 0.5 };
        if lo.is_finite() {
            (lo - pad)..(hi + pad)
        } else {
            0.0..1.0
        }
    };
    let x_range = if text {
        -0.5..(grid.len() as f64 - 0.5)
    } else {
        span(&mut xs.iter().copied())
    };
    let y_range = span(&mut average.iter().flatten().copied());
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (720, 480)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| fail(&e))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!("Partial dependence on {feature}"),
                ("sans-serif", 20),
            )
            .margin(16)
            .x_label_area_size(40)
            .y_label_area_size(64)
            .build_cartesian_2d(x_range, y_range)
            .map_err(|e| fail(&e))?;
        let name_of = |x: &f64| {
            let i = x.round();
            match grid.get(i as usize) {
                Some(Value::Text(t)) if (x - i).abs() < 1e-9 && i >= 0.0 => t.clone(),
                _ if text => String::new(),
                _ => format!("{x:.3}"),
            }
        };
        let mut mesh = chart.configure_mesh();
        mesh.x_desc(feature)
            .y_desc("partial dependence")
            .x_label_formatter(&name_of);
        if text {
            mesh.x_labels(grid.len());
        }
        mesh.draw().map_err(|e| fail(&e))?;
        for (i, (ys, name)) in average.iter().zip(series).enumerate() {
            let color = Palette99::pick(i).to_rgba();
            chart
                .draw_series(LineSeries::new(
                    xs.iter().copied().zip(ys.iter().copied()),
                    color.stroke_width(2),
                ))
                .map_err(|e| fail(&e))?
                .label(name.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
        }
        if series.len() > 1 {
            chart
                .configure_series_labels()
                .border_style(BLACK)
                .background_style(WHITE.mix(0.8))
                .draw()
                .map_err(|e| fail(&e))?;
        }
        root.present().map_err(|e| fail(&e))?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use skiff_runtime::TensorData;

    fn numbers(grid: &[Value]) -> Vec<f64> {
        grid.iter()
            .map(|v| match v {
                Value::Number(x) => *x,
                Value::Text(_) => panic!("a number"),
            })
            .collect()
    }

    #[test]
    fn mquantiles_match_scipys_plotting_positions() {
        // scipy.stats.mstats.mquantiles([1, 2, 3, 4, 10], [0.05, 0.95]) == [1.0, 10.0]
        // mquantiles(range(1, 101), [0.05, 0.95]) == [5.41, 95.59]
        assert_eq!(mquantile(&[1., 2., 3., 4., 10.], 0.05), 1.0);
        assert_eq!(mquantile(&[1., 2., 3., 4., 10.], 0.95), 10.0);
        let hundred: Vec<f64> = (1..=100).map(f64::from).collect();
        assert!((mquantile(&hundred, 0.05) - 5.41).abs() < 1e-12);
        assert!((mquantile(&hundred, 0.95) - 95.59).abs() < 1e-12);
    }

    #[test]
    fn few_distinct_values_are_the_grid_and_many_are_spaced_between_quantiles() {
        let few = Values::Numbers(vec![3., 1., f64::NAN, 3., 2.]);
        assert_eq!(
            numbers(&grid(&few, (0.05, 0.95), 100).unwrap()),
            [1., 2., 3.]
        );
        let many = Values::Numbers((1..=100).map(f64::from).collect());
        let spaced = numbers(&grid(&many, (0.05, 0.95), 5).unwrap());
        assert_eq!(spaced.len(), 5);
        assert!((spaced[0] - 5.41).abs() < 1e-12 && (spaced[4] - 95.59).abs() < 1e-12);
        assert!((spaced[2] - (5.41 + 95.59) / 2.0).abs() < 1e-12);
        let text = Values::Text(vec![
            Some("b".into()),
            None,
            Some("a".into()),
            Some("b".into()),
        ]);
        assert_eq!(
            grid(&text, (0.05, 0.95), 100).unwrap(),
            [Value::Text("a".into()), Value::Text("b".into())]
        );
    }

    #[test]
    fn bad_percentiles_and_flat_features_are_refused_with_the_fix() {
        let many = Values::Numbers((1..=100).map(f64::from).collect());
        let error = grid(&many, (0.9, 0.1), 10).unwrap_err().to_string();
        assert!(error.contains("the first below the second"), "{error}");
        let flat = Values::Numbers([vec![0.0; 98], vec![1.0, 2.0]].concat());
        let error = grid(&flat, (0.05, 0.95), 2).unwrap_err().to_string();
        assert!(
            error.contains("choose percentiles further apart"),
            "{error}"
        );
    }

    #[test]
    fn the_average_is_taken_over_rows_for_each_grid_value() {
        // Prediction: column 0 plus column 1, per row; averaged with column 0 set to g, it is
        // g plus the mean of column 1.
        let x = vec![Tensor::new(vec![2, 2], TensorData::Fp32(vec![5., 1., 6., 3.])).unwrap()];
        let feature = Feature {
            name: "a".into(),
            input: 0,
            column: Some(0),
        };
        let grid = [Value::Number(0.0), Value::Number(10.0)];
        let sum = |x: &[Tensor]| -> Result<Vec<Vec<f64>>> {
            let TensorData::Fp32(v) = &x[0].data else {
                unreachable!()
            };
            Ok(vec![v.chunks(2).map(|r| f64::from(r[0] + r[1])).collect()])
        };
        let pd = partial_dependence(&x, 2, &feature, &grid, sum).unwrap();
        assert_eq!(pd, vec![vec![2.0, 12.0]]);
    }

    #[test]
    fn the_plot_is_an_svg_with_a_line_per_output() {
        let grid = [Value::Text("a".into()), Value::Text("b".into())];
        let average = vec![vec![0.2, 0.8], vec![0.8, 0.2]];
        let series = ["yes".to_string(), "no".to_string()];
        let svg = svg("colour", &grid, &average, &series).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("Partial dependence on colour"));
        assert_eq!(
            svg.matches(r#"stroke-width="2""#).count(),
            2,
            "a line per output"
        );
        assert!(svg.contains("\nyes\n") && svg.contains("\na\n"), "{svg}");
    }
}
