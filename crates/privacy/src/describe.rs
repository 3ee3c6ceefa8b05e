//! Differentially private summaries of a table: counts, sums, means, variances and
//! histograms, each an OpenDP measurement from the table to its release.
//!
//! Every release is one chain of OpenDP's own transformations and measurements: select the
//! column, read its cells as numbers (a gap or a cell that is not a number becomes NaN), fill
//! gaps with the middle of the column's bounds, clamp to the bounds, then sum, mean or
//! variance, then Laplace noise. Its epsilon is the chain's privacy map at one changed row
//! (one row added or removed), and the total is the map of OpenDP's composition of all the
//! chains. The budget is shared evenly between releases; each one's noise scale is the
//! smallest OpenDP's binary search finds whose epsilon fits its share.
//!
//! A mean or a variance needs the number of rows, which is itself private: it uses the
//! released count (OpenDP's `make_resize` pads or truncates the column to that size), so a
//! request with a mean or a variance always releases the count first.

// The column transformations below are OpenDP's data-frame API, which it marks deprecated in
// favour of its Polars front end; Polars would add a data-frame engine to skiff for a job of
// one column at a time.
#![allow(deprecated)]

use crate::{Error, Result};
use opendp::combinators::{make_chain_mt, make_chain_pm, make_composition};
use opendp::core::{Domain, Function, Measurement, Metric, MetricSpace, Transformation};
use opendp::data::Column;
use opendp::domains::{AtomDomain, VectorDomain};
use opendp::error::Fallible;
use opendp::measurements::{DiscreteLaplace, MakeNoise, make_laplace};
use opendp::measures::MaxDivergence;
use opendp::metrics::{L1Distance, SymmetricDistance};
use opendp::transformations::{
    DataFrameDomain, Pairwise, make_cast_inherent, make_clamp, make_count,
    make_count_by_categories, make_impute_constant, make_mean, make_resize, make_select_column,
    make_sum, make_variance,
};
use serde::Serialize;
use skiff_data::Table;
use std::collections::HashMap;
use std::str::FromStr;

/// One statistic asked for.
#[derive(Debug, Clone, PartialEq)]
pub enum Statistic {
    /// The number of rows.
    Count,
    /// The sum of each bounded column.
    Sum,
    /// The mean of each bounded column.
    Mean,
    /// The sample variance (ddof 1) of each bounded column.
    Var,
    /// The count of each of a column's categories, and of rows in none of them.
    Hist(String),
}

impl FromStr for Statistic {
    type Err = Error;
    fn from_str(s: &str) -> Result<Statistic> {
        Ok(match s.trim() {
            "count" => Statistic::Count,
            "sum" => Statistic::Sum,
            "mean" => Statistic::Mean,
            "var" => Statistic::Var,
            other => match other.strip_prefix("hist:") {
                Some(column) if !column.is_empty() => Statistic::Hist(column.to_string()),
                _ => {
                    return Err(Error::Request(format!(
                        "unknown statistic {other:?}: expected count, sum, mean, var or \
                         hist:COLUMN"
                    )));
                }
            },
        })
    }
}

/// What to release and with how much privacy.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The total epsilon, shared evenly between the releases.
    pub epsilon: f64,
    /// Bounds `(lower, upper)` of numeric columns, known without looking at the data: sums,
    /// means and variances are released for each of these columns.
    pub bounds: Vec<(String, (f64, f64))>,
    /// The categories of columns with a histogram, known without looking at the data.
    pub categories: Vec<(String, Vec<String>)>,
    /// The statistics.
    pub statistics: Vec<Statistic>,
}

/// One differentially private release.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Release {
    /// `count`, `sum`, `mean`, `var` or `hist`.
    pub statistic: &'static str,
    /// The column (none for the count).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    /// The released value: one number, or one per category then one for rows in none.
    pub value: serde_json::Value,
    /// A histogram's categories, in the order of its values (the last value counts the rest).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub categories: Option<Vec<String>>,
    /// The column's bounds, for sums, means and variances.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bounds: Option<(f64, f64)>,
    /// The number of rows a mean or variance assumed: the released count.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<usize>,
    /// The noise: `laplace` (floats, on OpenDP's discrete grid) or `discrete_laplace`
    /// (integers).
    pub mechanism: &'static str,
    /// The noise's scale.
    pub scale: f64,
    /// The release's epsilon: OpenDP's privacy map of its measurement at one changed row.
    pub epsilon: f64,
}

/// All releases, and what they spent together.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// The releases, the count first where a mean or a variance needed it.
    pub releases: Vec<Release>,
    /// The epsilon of all releases together: OpenDP's map of their composition.
    pub epsilon: f64,
    /// The epsilon asked for.
    pub epsilon_requested: f64,
    /// Delta: 0, every release is pure differential privacy.
    pub delta: f64,
    /// The neighbouring relation the epsilons are for.
    pub neighbours: &'static str,
}

type Chain = Measurement<DataFrameDomain<String>, SymmetricDistance, MaxDivergence, Vec<f64>>;
type Columns = Transformation<
    DataFrameDomain<String>,
    SymmetricDistance,
    VectorDomain<AtomDomain<f64>>,
    SymmetricDistance,
>;

/// What one release computes before its noise.
#[derive(Debug, Clone)]
enum Query {
    Count,
    Sum {
        column: String,
        bounds: (f64, f64),
    },
    Mean {
        column: String,
        bounds: (f64, f64),
    },
    Var {
        column: String,
        bounds: (f64, f64),
    },
    Hist {
        column: String,
        categories: Vec<String>,
    },
}

impl Query {
    fn statistic(&self) -> &'static str {
        match self {
            Query::Count => "count",
            Query::Sum { .. } => "sum",
            Query::Mean { .. } => "mean",
            Query::Var { .. } => "var",
            Query::Hist { .. } => "hist",
        }
    }

    fn column(&self) -> Option<&str> {
        match self {
            Query::Count => None,
            Query::Sum { column, .. }
            | Query::Mean { column, .. }
            | Query::Var { column, .. }
            | Query::Hist { column, .. } => Some(column),
        }
    }

    fn bounds(&self) -> Option<(f64, f64)> {
        match self {
            Query::Sum { bounds, .. } | Query::Mean { bounds, .. } | Query::Var { bounds, .. } => {
                Some(*bounds)
            }
            Query::Count | Query::Hist { .. } => None,
        }
    }

    /// The measurement at noise `scale`; `size` is the row count means and variances assume,
    /// `first` the column a count counts.
    fn measurement(&self, scale: f64, size: usize, first: &str) -> Fallible<Chain> {
        match self {
            Query::Count => {
                let select = make_select_column::<String, String>(first.to_string())?;
                let count =
                    make_count::<String, i64>(select.output_domain.clone(), SymmetricDistance)?;
                with_laplace((select >> count)?, scale, |v: &i64| vec![*v as f64])
            }
            Query::Sum { column, bounds } => {
                let t = numbers(column, *bounds)?;
                let t = (t.clone() >> make_sum(t.output_domain.clone(), SymmetricDistance)?)?;
                with_laplace(t, scale, |v: &f64| vec![*v])
            }
            Query::Mean { column, bounds } | Query::Var { column, bounds } => {
                let t = numbers(column, *bounds)?;
                let middle = (bounds.0 + bounds.1) / 2.0;
                let resize = make_resize::<_, SymmetricDistance, SymmetricDistance>(
                    t.output_domain.clone(),
                    SymmetricDistance,
                    size,
                    middle,
                )?;
                let t = (t >> resize)?;
                let t = if matches!(self, Query::Mean { .. }) {
                    (t.clone() >> make_mean(t.output_domain.clone(), SymmetricDistance)?)?
                } else {
                    let variance = make_variance::<Pairwise<f64>>(
                        t.output_domain.clone(),
                        SymmetricDistance,
                        1,
                    )?;
                    (t >> variance)?
                };
                with_laplace(t, scale, |v: &f64| vec![*v])
            }
            Query::Hist { column, categories } => {
                let select = make_select_column::<String, String>(column.clone())?;
                let counts = make_count_by_categories::<L1Distance<i64>, String, i64>(
                    select.output_domain.clone(),
                    SymmetricDistance,
                    categories.clone(),
                    true,
                )?;
                let as_floats = |v: &Vec<i64>| v.iter().map(|&c| c as f64).collect();
                with_laplace((select >> counts)?, scale, as_floats)
            }
        }
    }
}

/// `t`, then OpenDP's Laplace noise of `scale` on its output, then `as_numbers` on the noisy
/// output (post-processing, which costs no privacy).
fn with_laplace<DO, MO>(
    t: Transformation<DataFrameDomain<String>, SymmetricDistance, DO, MO>,
    scale: f64,
    as_numbers: impl Fn(&DO::Carrier) -> Vec<f64> + Send + Sync + 'static,
) -> Fallible<Chain>
where
    DO: 'static + Domain,
    MO: 'static + Metric,
    (DO, MO): MetricSpace,
    // Stated, though always true, so that trait selection does not take the bound above for
    // the table's space.
    (DataFrameDomain<String>, SymmetricDistance): MetricSpace,
    DiscreteLaplace: MakeNoise<DO, MO, MaxDivergence>,
{
    let noise: Measurement<DO, MO, MaxDivergence, DO::Carrier> = make_laplace(
        t.output_domain.clone(),
        t.output_metric.clone(),
        scale,
        None,
    )?;
    let noised: Measurement<_, _, MaxDivergence, DO::Carrier> = make_chain_mt(&noise, &t)?;
    make_chain_pm(&Function::new(as_numbers), &noised)
}

/// A column's cells as numbers in `bounds`: cast (a cell that is not a number becomes NaN),
/// gaps filled with the bounds' middle, then clamped.
fn numbers(column: &str, bounds: (f64, f64)) -> Fallible<Columns> {
    let select = make_select_column::<String, String>(column.to_string())?;
    let cast = make_cast_inherent::<SymmetricDistance, String, f64>(
        select.output_domain.clone(),
        SymmetricDistance,
    )?;
    let t = (select >> cast)?;
    let fill = make_impute_constant(
        t.output_domain.clone(),
        SymmetricDistance,
        (bounds.0 + bounds.1) / 2.0,
    )?;
    let t = (t >> fill)?;
    let clamp = make_clamp(t.output_domain.clone(), SymmetricDistance, bounds)?;
    t >> clamp
}

/// The smallest noise scale whose measurement spends at most `epsilon` at one changed row,
/// by OpenDP's binary search.
fn calibrate(query: &Query, epsilon: f64, size: usize, first: &str) -> Result<(Chain, f64)> {
    let fits = |scale: &f64| {
        query
            .measurement(*scale, size, first)
            .and_then(|m| m.map(&1))
            .is_ok_and(|spent| spent <= epsilon)
    };
    let scale = opendp::utilities::binary_search(fits, (Some(0.0), None))
        .map_err(|e| Error::OpenDp(format!("no noise scale gives epsilon {epsilon}: {e}")))?;
    let chain = query.measurement(scale, size, first)?;
    Ok((chain, scale))
}

/// A statistic of a bounded column: its query from the column and the bounds.
type BoundedQuery = fn(String, (f64, f64)) -> Query;

/// The releases `request` asks for, in order, the count first where a mean or a variance
/// needs it.
fn queries(table: &Table, request: &Request) -> Result<Vec<Query>> {
    let mut queries = Vec::new();
    let wants = |s: &Statistic| request.statistics.contains(s);
    if wants(&Statistic::Count) || wants(&Statistic::Mean) || wants(&Statistic::Var) {
        queries.push(Query::Count);
    }
    for statistic in &request.statistics {
        let (name, make): (&str, BoundedQuery) = match statistic {
            Statistic::Count => continue,
            Statistic::Sum => ("sum", |column, bounds| Query::Sum { column, bounds }),
            Statistic::Mean => ("mean", |column, bounds| Query::Mean { column, bounds }),
            Statistic::Var => ("var", |column, bounds| Query::Var { column, bounds }),
            Statistic::Hist(column) => {
                table.column_index(column)?;
                let Some((_, categories)) = request.categories.iter().find(|(c, _)| c == column)
                else {
                    return Err(Error::Request(format!(
                        "hist:{column} needs the column's categories, known beforehand: \
                         --categories {column}=A,B,C (reading them from the data would reveal \
                         which ones occur)"
                    )));
                };
                queries.push(Query::Hist {
                    column: column.clone(),
                    categories: categories.clone(),
                });
                continue;
            }
        };
        if request.bounds.is_empty() {
            return Err(Error::Request(format!(
                "{name} needs bounds, known beforehand, for each column it summarises: \
                 --bounds COLUMN=LOWER:UPPER (reading them from the data would not be private)"
            )));
        }
        for (column, bounds) in &request.bounds {
            queries.push(make(column.clone(), *bounds));
        }
    }
    Ok(queries)
}

/// Checks `request` against `table` before anything is released.
fn check(table: &Table, request: &Request) -> Result<()> {
    if !(request.epsilon > 0.0 && request.epsilon.is_finite()) {
        return Err(Error::Request(format!(
            "epsilon must be a positive number, not {}",
            request.epsilon
        )));
    }
    if request.statistics.is_empty() {
        return Err(Error::Request(
            "no statistics asked for: --stats count,sum,mean,var,hist:COLUMN".into(),
        ));
    }
    for (column, (lower, upper)) in &request.bounds {
        if !(lower.is_finite() && upper.is_finite() && lower < upper) {
            return Err(Error::Request(format!(
                "bounds of {column:?} must be two finite numbers, lower below upper, not \
                 {lower}:{upper}"
            )));
        }
        for (row, cell) in table.cells(column)?.enumerate() {
            if !table.is_missing(cell) && cell.trim().parse::<f64>().is_err() {
                return Err(Error::Request(format!(
                    "column {column:?} holds {cell:?} in data row {}: bounds are for numeric \
                     columns (count a text column's categories with hist:{column})",
                    row + 1
                )));
            }
        }
    }
    for (column, categories) in &request.categories {
        table.column_index(column)?;
        if categories.is_empty() {
            return Err(Error::Request(format!(
                "--categories {column}= names no categories"
            )));
        }
    }
    Ok(())
}

/// Releases the statistics `request` asks for on `table`.
pub fn describe(table: &Table, request: &Request) -> Result<Report> {
    check(table, request)?;
    let queries = queries(table, request)?;
    let share = even_share(request.epsilon, queries.len());
    let first = table.headers()[0].clone();
    let mut frame: HashMap<String, Column> = HashMap::new();
    frame.insert(first.clone(), column_of(table, &first)?);
    for column in queries.iter().filter_map(Query::column) {
        if !frame.contains_key(column) {
            frame.insert(column.to_string(), column_of(table, column)?);
        }
    }

    let mut releases = Vec::with_capacity(queries.len());
    let mut chains = Vec::with_capacity(queries.len());
    // The size a mean or a variance assumes: the released count, at least 2 so that the
    // variance is defined.
    let mut size = 2;
    for query in &queries {
        let (chain, scale) = calibrate(query, share, size, &first)?;
        let value = chain.invoke(&frame)?;
        if matches!(query, Query::Count) {
            size = value[0].max(2.0) as usize;
        }
        let needs_size = matches!(query, Query::Mean { .. } | Query::Var { .. });
        releases.push(Release {
            statistic: query.statistic(),
            column: query.column().map(str::to_string),
            value: match query {
                Query::Hist { .. } => {
                    serde_json::json!(value.iter().map(|&v| v as i64).collect::<Vec<_>>())
                }
                Query::Count => serde_json::json!(value[0] as i64),
                _ => serde_json::json!(value[0]),
            },
            categories: match query {
                Query::Hist { categories, .. } => Some(categories.clone()),
                _ => None,
            },
            bounds: query.bounds(),
            size: needs_size.then_some(size),
            mechanism: match query {
                Query::Count | Query::Hist { .. } => "discrete_laplace",
                _ => "laplace",
            },
            scale,
            epsilon: chain.map(&1)?,
        });
        chains.push(chain);
    }
    let epsilon = make_composition(chains)?.map(&1)?;
    Ok(Report {
        releases,
        epsilon,
        epsilon_requested: request.epsilon,
        delta: 0.0,
        neighbours: "one row added or removed",
    })
}

/// The largest epsilon `k` releases may each spend so that their composition, added with
/// OpenDP's rounding up, stays within `epsilon`.
fn even_share(epsilon: f64, k: usize) -> f64 {
    let mut share = epsilon / k as f64;
    let total = |share: f64| (0..k).fold(0.0f64, |sum, _| (sum + share).next_up());
    // Each step takes k + 1 units in the last place off the share; a few steps suffice.
    for _ in 0..1000 {
        if total(share) <= epsilon {
            break;
        }
        for _ in 0..=k {
            share = share.next_down();
        }
    }
    share
}

/// A column's cells for OpenDP, gaps as empty text (read as NaN, then filled).
fn column_of(table: &Table, name: &str) -> Result<Column> {
    let cells: Vec<String> = table
        .cells(name)?
        .map(|cell| {
            if table.is_missing(cell) {
                String::new()
            } else {
                cell.trim().to_string()
            }
        })
        .collect();
    Ok(Column::new(cells))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(csv: &str) -> Table {
        Table::from_reader("test.csv", csv.as_bytes()).unwrap()
    }

    fn ages() -> Table {
        let mut csv = String::from("age,sex\n");
        for i in 0..500 {
            csv.push_str(&format!(
                "{},{}\n",
                i % 90,
                if i % 3 == 0 { "F" } else { "M" }
            ));
        }
        table(&csv)
    }

    fn request(stats: &[&str]) -> Request {
        Request {
            epsilon: 1.0,
            bounds: vec![("age".into(), (0.0, 100.0))],
            categories: vec![("sex".into(), vec!["F".into(), "M".into()])],
            statistics: stats.iter().map(|s| s.parse().unwrap()).collect(),
        }
    }

    #[test]
    fn every_release_fits_its_share_and_the_total_fits_the_request() {
        let report = describe(&ages(), &request(&["sum", "mean", "var", "hist:sex"])).unwrap();
        let names: Vec<&str> = report.releases.iter().map(|r| r.statistic).collect();
        assert_eq!(names, ["count", "sum", "mean", "var", "hist"]);
        for release in &report.releases {
            assert!(
                release.epsilon <= 0.2 && release.epsilon > 0.199,
                "{release:?}"
            );
        }
        assert!(
            report.epsilon <= 1.0 && report.epsilon > 0.999,
            "{report:?}"
        );
        // The sum's sensitivity is the bounds' width: scale 100 / 0.2, give or take
        // OpenDP's allowance for floating-point sums.
        assert!((report.releases[1].scale / 500.0 - 1.0).abs() < 1e-6);
        assert_eq!(report.releases[4].value.as_array().unwrap().len(), 3);
    }

    #[test]
    fn missing_bounds_and_categories_are_refused() {
        let mut no_bounds = request(&["mean"]);
        no_bounds.bounds.clear();
        let err = describe(&ages(), &no_bounds).unwrap_err().to_string();
        assert!(
            err.contains("mean needs bounds") && err.contains("--bounds"),
            "{err}"
        );
        let mut no_categories = request(&["hist:sex"]);
        no_categories.categories.clear();
        let err = describe(&ages(), &no_categories).unwrap_err().to_string();
        assert!(err.contains("--categories sex="), "{err}");
        let err = "median".parse::<Statistic>().unwrap_err();
        assert!(err.to_string().contains("unknown statistic"), "{err}");
    }

    #[test]
    fn text_in_a_bounded_column_is_refused() {
        let t = table("age,sex\n1,F\nold,M\n");
        let err = describe(&t, &request(&["sum"])).unwrap_err().to_string();
        assert!(err.contains("\"old\" in data row 2"), "{err}");
    }
}
