//! `SimpleImputer`: fills missing cells with a statistic of the training column or a constant.

use crate::params::{self, Params};
use crate::{Error, Result};
use ndarray::{Array2, ArrayView2, Axis, concatenate};
use serde::{Deserialize, Serialize};
use skiff_onnx::{Attr, Graph};
use std::collections::BTreeMap;

/// What a missing cell becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImputeStrategy {
    /// The column's mean (numbers only).
    Mean,
    /// The column's median (numbers only).
    Median,
    /// The column's most frequent value (the smallest of equally frequent ones).
    MostFrequent,
    /// `fill_value`.
    Constant,
}

/// A constant to fill with: a number, or text for text columns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum FillValue {
    /// For numeric columns.
    Number(f64),
    /// For text columns.
    Text(String),
}

/// scikit-learn's `SimpleImputer` hyperparameters.
///
/// ```
/// use skiff_learn::{Params, SimpleImputerParams};
/// use ndarray::array;
///
/// let mut imputer = SimpleImputerParams::default();
/// imputer.set("strategy", "median").unwrap();
/// let x = array![[1.0, f64::NAN], [3.0, 4.0], [f64::NAN, 6.0], [10.0, 8.0]];
/// let fitted = imputer.fit_numbers(x.view()).unwrap();
/// assert_eq!(fitted.transform(x.view()), array![[1.0, 6.0], [3.0, 4.0], [3.0, 6.0], [10.0, 8.0]]);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimpleImputerParams {
    /// `mean` (default), `median`, `most_frequent` or `constant`.
    pub strategy: ImputeStrategy,
    /// The constant for `strategy = constant`; None means 0 for numbers and
    /// `"missing_value"` for text, as in scikit-learn.
    pub fill_value: Option<FillValue>,
    /// Also output, for each numeric column that had missing cells in training, a column that
    /// is 1 where the cell was missing.
    pub add_indicator: bool,
}

impl Default for SimpleImputerParams {
    fn default() -> Self {
        SimpleImputerParams {
            strategy: ImputeStrategy::Mean,
            fill_value: None,
            add_indicator: false,
        }
    }
}

impl Params for SimpleImputerParams {
    const ALGORITHM: &'static str = "simple-imputer";

    fn check(&self) -> Result<()> {
        if let Some(FillValue::Number(v)) = self.fill_value
            && !v.is_finite()
        {
            return Err(params::invalid("fill_value", v, "a finite number or text"));
        }
        Ok(())
    }
}

impl SimpleImputerParams {
    /// An imputer with `strategy`.
    pub fn with_strategy(strategy: ImputeStrategy) -> Self {
        SimpleImputerParams {
            strategy,
            ..Default::default()
        }
    }

    /// Learns a fill value for each column of `x`, where NaN marks a missing cell.
    pub fn fit_numbers(&self, x: ArrayView2<'_, f64>) -> Result<FittedImputer> {
        self.check()?;
        let mut statistics = Vec::with_capacity(x.ncols());
        let mut indicator = Vec::new();
        for (j, column) in x.axis_iter(Axis(1)).enumerate() {
            let mut present: Vec<f64> = column.iter().copied().filter(|v| !v.is_nan()).collect();
            if present.len() < column.len() {
                indicator.push(j);
            }
            if present.iter().any(|v| v.is_infinite()) {
                return Err(Error::NonFinite);
            }
            let value = match self.strategy {
                ImputeStrategy::Constant => match &self.fill_value {
                    None => 0.0,
                    Some(FillValue::Number(v)) => *v,
                    Some(FillValue::Text(t)) => {
                        return Err(params::invalid(
                            "fill_value",
                            t,
                            "a number, for numeric columns",
                        ));
                    }
                },
                _ if present.is_empty() => {
                    return Err(Error::Column(format!(
                        "numeric column {} has no values to impute from: leave it out (--drop)",
                        j + 1
                    )));
                }
                ImputeStrategy::Mean => present.iter().sum::<f64>() / present.len() as f64,
                ImputeStrategy::Median => {
                    present.sort_by(f64::total_cmp);
                    let n = present.len();
                    if n % 2 == 1 {
                        present[n / 2]
                    } else {
                        (present[n / 2 - 1] + present[n / 2]) / 2.0
                    }
                }
                ImputeStrategy::MostFrequent => {
                    let mut counts: BTreeMap<u64, (f64, usize)> = BTreeMap::new();
                    for v in &present {
                        counts.entry(v.to_bits()).or_insert((*v, 0)).1 += 1;
                    }
                    most_frequent(counts.into_values(), f64::total_cmp)
                }
            };
            statistics.push(value);
        }
        Ok(FittedImputer {
            statistics,
            indicator: if self.add_indicator {
                indicator
            } else {
                Vec::new()
            },
        })
    }

    /// Learns the fill value of a text column, where `None` marks a missing cell.
    pub fn fit_text(&self, column: &str, cells: &[Option<String>]) -> Result<String> {
        self.check()?;
        if self.add_indicator {
            return Err(Error::Column(format!(
                "add_indicator applies to numeric columns, and {column:?} is text: leave it out of the text columns' imputer"
            )));
        }
        match self.strategy {
            ImputeStrategy::Mean | ImputeStrategy::Median => Err(Error::Column(format!(
                "column {column:?} is text, which a {} cannot be taken of: impute it with most_frequent or constant",
                if self.strategy == ImputeStrategy::Mean {
                    "mean"
                } else {
                    "median"
                }
            ))),
            ImputeStrategy::Constant => Ok(match &self.fill_value {
                None => "missing_value".to_string(),
                Some(FillValue::Text(t)) => t.clone(),
                Some(FillValue::Number(v)) => v.to_string(),
            }),
            ImputeStrategy::MostFrequent => {
                let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
                for cell in cells.iter().flatten() {
                    *counts.entry(cell).or_default() += 1;
                }
                if counts.is_empty() {
                    return Err(Error::Column(format!(
                        "column {column:?} has no values to impute from: leave it out (--drop {column})"
                    )));
                }
                Ok(most_frequent(counts.into_iter(), |a, b| a.cmp(b)).to_string())
            }
        }
    }
}

/// The value with the highest count; the smallest of those tied, as scikit-learn picks.
fn most_frequent<T: Copy>(
    counts: impl Iterator<Item = (T, usize)>,
    order: impl Fn(&T, &T) -> std::cmp::Ordering,
) -> T {
    counts
        .reduce(|best, next| {
            if next.1 > best.1 || (next.1 == best.1 && order(&next.0, &best.0).is_lt()) {
                next
            } else {
                best
            }
        })
        .expect("at least one value")
        .0
}

/// A fitted imputer of numeric columns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FittedImputer {
    /// The fill value of each column.
    pub statistics: Vec<f64>,
    /// The columns that get a missing-indicator column, after the imputed ones.
    pub indicator: Vec<usize>,
}

impl FittedImputer {
    /// How many columns `transform` outputs.
    pub fn n_outputs(&self) -> usize {
        self.statistics.len() + self.indicator.len()
    }

    /// The rows with missing cells filled, then the indicator columns.
    pub fn transform(&self, x: ArrayView2<'_, f64>) -> Array2<f64> {
        let mut filled = x.to_owned();
        for (mut column, &value) in filled.axis_iter_mut(Axis(1)).zip(&self.statistics) {
            column.mapv_inplace(|v| if v.is_nan() { value } else { v });
        }
        if self.indicator.is_empty() {
            return filled;
        }
        let flags = x
            .select(Axis(1), &self.indicator)
            .mapv(|v| if v.is_nan() { 1.0 } else { 0.0 });
        concatenate![Axis(1), filled, flags]
    }

    /// Adds the nodes computing `transform` of `x` (float, NaN for missing) into `output`:
    /// `Imputer`, and `IsNaN` + `Gather` + `Cast` + `Concat` for the indicator columns.
    pub fn write(&self, g: &mut Graph, x: &str, output: &str) {
        let filled = if self.indicator.is_empty() {
            output.to_string()
        } else {
            format!("{output}_filled")
        };
        g.ml_node(
            "Imputer",
            &[x],
            &[&filled],
            vec![
                (
                    "imputed_value_floats",
                    Attr::Floats(self.statistics.iter().map(|&v| v as f32).collect()),
                ),
                ("replaced_value_float", Attr::Float(f32::NAN)),
            ],
        );
        if self.indicator.is_empty() {
            return;
        }
        let columns: Vec<i64> = self.indicator.iter().map(|&j| j as i64).collect();
        let index = g.constant_i64(
            &format!("{output}_indicator_columns"),
            &[columns.len() as u64],
            &columns,
        );
        let (selected, flags, numbers) = (
            format!("{output}_indicator_in"),
            format!("{output}_missing"),
            format!("{output}_indicator"),
        );
        g.node(
            "Gather",
            &[x, &index],
            &[&selected],
            vec![("axis", Attr::Int(1))],
        );
        g.node("IsNaN", &[&selected], &[&flags], vec![]);
        g.node(
            "Cast",
            &[&flags],
            &[&numbers],
            vec![("to", Attr::Int(skiff_onnx::ElemType::Float as i64))],
        );
        g.node(
            "Concat",
            &[&filled, &numbers],
            &[output],
            vec![("axis", Attr::Int(1))],
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn strategies_fill_as_scikit_learn_does() {
        let x = array![
            [1.0, f64::NAN],
            [2.0, 5.0],
            [2.0, 7.0],
            [f64::NAN, 5.0],
            [9.0, 7.0]
        ];
        let fill = |s, fill_value| {
            SimpleImputerParams {
                strategy: s,
                fill_value,
                add_indicator: false,
            }
            .fit_numbers(x.view())
            .unwrap()
            .statistics
        };
        assert_eq!(fill(ImputeStrategy::Mean, None), vec![3.5, 6.0]);
        assert_eq!(fill(ImputeStrategy::Median, None), vec![2.0, 6.0]);
        assert_eq!(fill(ImputeStrategy::MostFrequent, None), vec![2.0, 5.0]);
        assert_eq!(fill(ImputeStrategy::Constant, None), vec![0.0, 0.0]);
        assert_eq!(
            fill(ImputeStrategy::Constant, Some(FillValue::Number(-1.0))),
            vec![-1.0, -1.0]
        );
    }

    #[test]
    fn indicator_columns_follow_columns_that_had_gaps() {
        let x = array![[1.0, f64::NAN, 3.0], [2.0, 5.0, 4.0]];
        let mut params = SimpleImputerParams::default();
        params.set("add_indicator", "true").unwrap();
        let fitted = params.fit_numbers(x.view()).unwrap();
        assert_eq!(fitted.indicator, vec![1]);
        assert_eq!(
            fitted.transform(x.view()),
            array![[1.0, 5.0, 3.0, 1.0], [2.0, 5.0, 4.0, 0.0]]
        );
    }

    #[test]
    fn text_takes_the_smallest_most_frequent_value_or_a_constant() {
        let cells: Vec<Option<String>> = ["b", "a", "b", "a", "c"]
            .iter()
            .map(|s| Some(s.to_string()))
            .chain([None])
            .collect();
        let mut params = SimpleImputerParams::with_strategy(ImputeStrategy::MostFrequent);
        assert_eq!(params.fit_text("c", &cells).unwrap(), "a");
        params.set("strategy", "constant").unwrap();
        assert_eq!(params.fit_text("c", &cells).unwrap(), "missing_value");
        params.set("strategy", "median").unwrap();
        let err = params.fit_text("island", &cells).unwrap_err().to_string();
        assert!(
            err.contains("\"island\" is text") && err.contains("most_frequent"),
            "{err}"
        );
    }
}
