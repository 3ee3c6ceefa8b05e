//! Group fairness as Fairlearn measures it: a metric on every row and on each group of rows
//! (`MetricFrame`'s `overall` and `by_group`), the spread between groups (`group_min`,
//! `group_max`, `difference`, `ratio`), and the parity measures built on them (demographic
//! parity, equalized odds). Formulas, NaN handling and group order follow Fairlearn 0.15.

use crate::{Error, Result};
use serde::Serialize;
use std::collections::BTreeSet;

/// A metric of a group's rows: Fairlearn's and scikit-learn's metric functions, each taking
/// the rows' weights (all 1 where none are given) as their `sample_weight`, except `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// `accuracy_score`.
    Accuracy,
    /// `balanced_accuracy_score`.
    BalancedAccuracy,
    /// Fairlearn's `selection_rate`: the share predicted positive.
    SelectionRate,
    /// `true_positive_rate` (recall).
    Tpr,
    /// `false_positive_rate`.
    Fpr,
    /// `true_negative_rate`.
    Tnr,
    /// `false_negative_rate`.
    Fnr,
    /// `precision_score` (0 where nothing is predicted positive).
    Precision,
    /// `f1_score` of the positive class.
    F1,
    /// Fairlearn's `count`: the group's rows, unweighted.
    Count,
    /// `r2_score`.
    R2,
    /// `mean_absolute_error`.
    Mae,
    /// `mean_squared_error`.
    Mse,
    /// `root_mean_squared_error`.
    Rmse,
    /// Fairlearn's `mean_prediction`.
    MeanPrediction,
}

/// Every metric's name, as `--metrics` takes it.
pub const METRICS: [(&str, Metric); 16] = [
    ("accuracy", Metric::Accuracy),
    ("balanced_accuracy", Metric::BalancedAccuracy),
    ("selection_rate", Metric::SelectionRate),
    ("tpr", Metric::Tpr),
    ("recall", Metric::Tpr),
    ("fpr", Metric::Fpr),
    ("tnr", Metric::Tnr),
    ("fnr", Metric::Fnr),
    ("precision", Metric::Precision),
    ("f1", Metric::F1),
    ("count", Metric::Count),
    ("r2", Metric::R2),
    ("mae", Metric::Mae),
    ("mse", Metric::Mse),
    ("rmse", Metric::Rmse),
    ("mean_prediction", Metric::MeanPrediction),
];

impl Metric {
    /// The metric `name` names; the error lists the names there are.
    pub fn parse(name: &str) -> Result<Metric> {
        METRICS
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, m)| *m)
            .ok_or_else(|| {
                let names: Vec<&str> = METRICS.iter().map(|(n, _)| *n).collect();
                Error::Invalid(format!(
                    "{name:?} is not a fairness metric: use {}",
                    names.join(", ")
                ))
            })
    }

    /// Whether it scores numbers (a regressor's) rather than labels.
    pub fn is_regression(self) -> bool {
        matches!(
            self,
            Metric::R2 | Metric::Mae | Metric::Mse | Metric::Rmse | Metric::MeanPrediction
        )
    }
}

/// The true and predicted targets of some rows, and their weights.
#[derive(Debug, Clone)]
pub enum Targets {
    /// A classifier's labels, with the label counted as positive by the rates.
    Labels {
        truth: Vec<String>,
        predicted: Vec<String>,
        positive: String,
    },
    /// A regressor's values.
    Values {
        truth: Vec<f64>,
        predicted: Vec<f64>,
    },
}

impl Targets {
    fn len(&self) -> usize {
        match self {
            Targets::Labels { truth, .. } => truth.len(),
            Targets::Values { truth, .. } => truth.len(),
        }
    }
}

/// How the spread between groups is measured: Fairlearn's `method`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Largest group less smallest; smallest over largest.
    BetweenGroups,
    /// The largest distance of a group from every row's value; the smallest ratio of one.
    ToOverall,
}

/// One group: the values of the sensitive features its rows share.
#[derive(Debug, Clone, Serialize)]
pub struct Group {
    /// One value per sensitive feature.
    pub values: Vec<String>,
    /// Its rows.
    pub rows: usize,
    /// One value per metric; NaN (JSON null) for a combination of values no row has.
    pub metrics: Vec<f64>,
}

/// Fairlearn's `MetricFrame`, and the spread of each metric between the groups.
#[derive(Debug, Clone, Serialize)]
pub struct MetricFrame {
    /// The metrics, in the order asked.
    pub metrics: Vec<String>,
    /// The sensitive features, in the order given.
    pub sensitive: Vec<String>,
    /// Each metric on every row (rows with a missing sensitive value included).
    pub overall: Vec<f64>,
    /// Each group: with one sensitive feature, the values rows have, sorted (as numbers where
    /// every value is one); with several, every combination of their values, first feature
    /// outermost, as Fairlearn's product index.
    pub by_group: Vec<Group>,
    /// Each metric's smallest group value (NaN skipped).
    pub group_min: Vec<f64>,
    /// Each metric's largest group value (NaN skipped).
    pub group_max: Vec<f64>,
    /// The method the differences and ratios are taken by.
    pub method: Method,
    /// Each metric's difference.
    pub difference: Vec<f64>,
    /// Each metric's ratio.
    pub ratio: Vec<f64>,
}

/// The metric frame of `metrics` over `targets`, grouped by `sensitive` (name, one value per
/// row; `None` for a missing value, whose row counts only in `overall`), weighted by
/// `weights` where given.
pub fn metric_frame(
    targets: &Targets,
    weights: Option<&[f64]>,
    sensitive: &[(String, Vec<Option<String>>)],
    metrics: &[(String, Metric)],
    method: Method,
) -> Result<MetricFrame> {
    let n = targets.len();
    if n == 0 {
        return Err(Error::Invalid("there are no rows to measure".into()));
    }
    if sensitive.is_empty() {
        return Err(Error::Invalid(
            "name at least one sensitive feature (--sensitive COLUMN)".into(),
        ));
    }
    for (_, metric) in metrics {
        let numeric = matches!(targets, Targets::Values { .. });
        if metric.is_regression() != numeric && *metric != Metric::Count {
            let (kind, other) = if numeric {
                ("a regressor", "classification")
            } else {
                ("a classifier", "regression")
            };
            return Err(Error::Invalid(format!(
                "{} is a {other} metric, and this is {kind}: pick metrics for {kind}",
                metrics
                    .iter()
                    .find(|(_, m)| m == metric)
                    .map_or("", |(n, _)| n)
            )));
        }
    }
    let ones = vec![1.0; n];
    let weights = weights.unwrap_or(&ones);
    let all: Vec<usize> = (0..n).collect();
    let measure = |rows: &[usize]| -> Vec<f64> {
        metrics
            .iter()
            .map(|(_, m)| measure(*m, targets, weights, rows))
            .collect()
    };
    let overall = measure(&all);

    // Each feature's distinct values, sorted as pandas sorts them: numerically where every
    // value is a number.
    let levels: Vec<Vec<String>> = sensitive
        .iter()
        .map(|(_, values)| sorted_levels(values.iter().flatten()))
        .collect();
    let mut by_group = Vec::new();
    let mut combination = vec![0usize; levels.len()];
    if levels.iter().all(|l| !l.is_empty()) {
        loop {
            let values: Vec<&String> = combination
                .iter()
                .zip(&levels)
                .map(|(&i, level)| &level[i])
                .collect();
            let rows: Vec<usize> = (0..n)
                .filter(|&r| {
                    sensitive
                        .iter()
                        .zip(&values)
                        .all(|((_, column), v)| column[r].as_ref() == Some(*v))
                })
                .collect();
            let metrics = if rows.is_empty() {
                vec![f64::NAN; metrics.len()]
            } else {
                measure(&rows)
            };
            by_group.push(Group {
                values: values.into_iter().cloned().collect(),
                rows: rows.len(),
                metrics,
            });
            // The next combination, the last feature fastest.
            let mut axis = levels.len();
            loop {
                if axis == 0 {
                    break;
                }
                axis -= 1;
                combination[axis] += 1;
                if combination[axis] < levels[axis].len() {
                    break;
                }
                combination[axis] = 0;
            }
            if combination.iter().all(|&i| i == 0) {
                break;
            }
        }
    }
    if by_group.iter().all(|g| g.rows == 0) {
        return Err(Error::Invalid(
            "every row's sensitive value is missing: there are no groups to compare".into(),
        ));
    }
    let column = |m: usize| by_group.iter().map(move |g| g.metrics[m]);
    let k = metrics.len();
    let group_min: Vec<f64> = (0..k).map(|m| nan_min(column(m))).collect();
    let group_max: Vec<f64> = (0..k).map(|m| nan_max(column(m))).collect();
    let (difference, ratio) = match method {
        Method::BetweenGroups => (
            (0..k).map(|m| group_max[m] - group_min[m]).collect(),
            (0..k).map(|m| group_min[m] / group_max[m]).collect(),
        ),
        Method::ToOverall => (
            (0..k)
                .map(|m| nan_max(column(m).map(|g| (g - overall[m]).abs())))
                .collect(),
            (0..k)
                .map(|m| {
                    nan_min(column(m).map(|g| {
                        let r = g / overall[m];
                        if r > 1.0 { 1.0 / r } else { r }
                    }))
                })
                .collect(),
        ),
    };
    Ok(MetricFrame {
        metrics: metrics.iter().map(|(n, _)| n.clone()).collect(),
        sensitive: sensitive.iter().map(|(n, _)| n.clone()).collect(),
        overall,
        by_group,
        group_min,
        group_max,
        method,
        difference,
        ratio,
    })
}

/// Fairlearn's parity measures of a classifier, by `method`.
#[derive(Debug, Clone, Serialize)]
pub struct Parity {
    /// `demographic_parity_difference`: of the selection rates.
    pub demographic_parity_difference: f64,
    /// `demographic_parity_ratio`.
    pub demographic_parity_ratio: f64,
    /// `equalized_odds_difference` (`agg="worst_case"`): the larger of the TPR and FPR
    /// differences.
    pub equalized_odds_difference: f64,
    /// `equalized_odds_ratio`: the smaller of the TPR and FPR ratios.
    pub equalized_odds_ratio: f64,
}

/// The parity measures of a classifier's `targets` between the groups of `sensitive`.
pub fn parity(
    targets: &Targets,
    weights: Option<&[f64]>,
    sensitive: &[(String, Vec<Option<String>>)],
    method: Method,
) -> Result<Parity> {
    let metrics = [
        ("selection_rate".to_string(), Metric::SelectionRate),
        ("tpr".to_string(), Metric::Tpr),
        ("fpr".to_string(), Metric::Fpr),
    ];
    let frame = metric_frame(targets, weights, sensitive, &metrics, method)?;
    let (d, r) = (&frame.difference, &frame.ratio);
    // Python's max([tpr, fpr]) and min([tpr, fpr]): the first unless the second compares
    // greater (smaller), so a NaN TPR wins and a NaN FPR loses.
    Ok(Parity {
        demographic_parity_difference: d[0],
        demographic_parity_ratio: r[0],
        equalized_odds_difference: if d[2] > d[1] { d[2] } else { d[1] },
        equalized_odds_ratio: if r[2] < r[1] { r[2] } else { r[1] },
    })
}

/// Distinct values, as numbers where every one is a number, else as text.
fn sorted_levels<'a>(values: impl Iterator<Item = &'a String>) -> Vec<String> {
    let distinct: BTreeSet<&String> = values.collect();
    let mut levels: Vec<String> = distinct.into_iter().cloned().collect();
    let numbers: Option<Vec<f64>> = levels.iter().map(|v| v.trim().parse().ok()).collect();
    if let Some(numbers) = numbers {
        let mut order: Vec<usize> = (0..levels.len()).collect();
        order.sort_by(|&a, &b| numbers[a].total_cmp(&numbers[b]));
        levels = order.into_iter().map(|i| levels[i].clone()).collect();
    }
    levels
}

fn nan_min(values: impl Iterator<Item = f64>) -> f64 {
    values
        .filter(|v| !v.is_nan())
        .reduce(f64::min)
        .unwrap_or(f64::NAN)
}

fn nan_max(values: impl Iterator<Item = f64>) -> f64 {
    values
        .filter(|v| !v.is_nan())
        .reduce(f64::max)
        .unwrap_or(f64::NAN)
}

/// `metric` on `rows` of `targets`.
fn measure(metric: Metric, targets: &Targets, weights: &[f64], rows: &[usize]) -> f64 {
    let w = |r: usize| weights[r];
    let total: f64 = rows.iter().map(|&r| w(r)).sum();
    let sum = |f: &dyn Fn(usize) -> f64| rows.iter().map(|&r| w(r) * f(r)).sum::<f64>();
    match targets {
        Targets::Labels {
            truth,
            predicted,
            positive,
        } => {
            let t = |r: usize| truth[r] == *positive;
            let p = |r: usize| predicted[r] == *positive;
            let count = |f: &dyn Fn(usize) -> bool| sum(&|r| f64::from(u8::from(f(r))));
            // A confusion matrix's rate, 0 where its row is empty (scikit-learn's nan_to_num).
            let rate = |hit: f64, of: f64| if of > 0.0 { hit / of } else { 0.0 };
            let (tp, fn_) = (count(&|r| t(r) && p(r)), count(&|r| t(r) && !p(r)));
            let (fp, tn) = (count(&|r| !t(r) && p(r)), count(&|r| !t(r) && !p(r)));
            match metric {
                Metric::Accuracy => count(&|r| truth[r] == predicted[r]) / total,
                Metric::BalancedAccuracy => balanced_accuracy(truth, predicted, weights, rows),
                Metric::SelectionRate => (tp + fp) / total,
                Metric::Tpr => rate(tp, tp + fn_),
                Metric::Fnr => rate(fn_, tp + fn_),
                Metric::Fpr => rate(fp, fp + tn),
                Metric::Tnr => rate(tn, fp + tn),
                Metric::Precision => rate(tp, tp + fp),
                Metric::F1 => rate(2.0 * tp, 2.0 * tp + fp + fn_),
                Metric::Count => rows.len() as f64,
                _ => f64::NAN,
            }
        }
        Targets::Values { truth, predicted } => {
            let error = |r: usize| truth[r] - predicted[r];
            match metric {
                Metric::Mae => sum(&|r| error(r).abs()) / total,
                Metric::Mse => sum(&|r| error(r).powi(2)) / total,
                Metric::Rmse => (sum(&|r| error(r).powi(2)) / total).sqrt(),
                Metric::MeanPrediction => sum(&|r| predicted[r]) / total,
                Metric::R2 => {
                    let mean = sum(&|r| truth[r]) / total;
                    let residual = sum(&|r| error(r).powi(2));
                    let spread = sum(&|r| (truth[r] - mean).powi(2));
                    // scikit-learn's force_finite: a constant truth scores 1 when predicted
                    // exactly, else 0.
                    match (spread == 0.0, residual == 0.0) {
                        (true, true) => 1.0,
                        (true, false) => 0.0,
                        _ => 1.0 - residual / spread,
                    }
                }
                Metric::Count => rows.len() as f64,
                _ => f64::NAN,
            }
        }
    }
}

/// scikit-learn's `balanced_accuracy_score`: the mean recall of the classes in truth or
/// prediction, classes no row truly has left out.
fn balanced_accuracy(
    truth: &[String],
    predicted: &[String],
    weights: &[f64],
    rows: &[usize],
) -> f64 {
    let classes: BTreeSet<&String> = rows
        .iter()
        .flat_map(|&r| [&truth[r], &predicted[r]])
        .collect();
    let recalls: Vec<f64> = classes
        .into_iter()
        .filter_map(|c| {
            let of: f64 = rows
                .iter()
                .filter(|&&r| truth[r] == *c)
                .map(|&r| weights[r])
                .sum();
            let hit: f64 = (rows.iter())
                .filter(|&&r| truth[r] == *c && predicted[r] == *c)
                .map(|&r| weights[r])
                .sum();
            (of > 0.0).then(|| hit / of)
        })
        .collect();
    recalls.iter().sum::<f64>() / recalls.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(s: &str) -> Vec<String> {
        s.chars().map(|c| c.to_string()).collect()
    }

    fn column(s: &str) -> Vec<Option<String>> {
        s.chars()
            .map(|c| (c != '-').then(|| c.to_string()))
            .collect()
    }

    #[test]
    fn rates_by_group_and_their_spread() {
        // Group a: truth 1100, predicted 1010 -> tpr 1/2, fpr 1/2, selection 1/2.
        // Group b: truth 1010, predicted 1111 -> tpr 1, fpr 1, selection 1.
        let targets = Targets::Labels {
            truth: labels("11001010"),
            predicted: labels("10101111"),
            positive: "1".into(),
        };
        let sensitive = [("g".to_string(), column("aaaabbbb"))];
        let metrics = [
            ("tpr".to_string(), Metric::Tpr),
            ("selection_rate".into(), Metric::SelectionRate),
        ];
        let frame =
            metric_frame(&targets, None, &sensitive, &metrics, Method::BetweenGroups).unwrap();
        assert_eq!(frame.by_group[0].metrics, [0.5, 0.5]);
        assert_eq!(frame.by_group[1].metrics, [1.0, 1.0]);
        assert_eq!(frame.difference, [0.5, 0.5]);
        assert_eq!(frame.ratio, [0.5, 0.5]);
        assert_eq!(frame.overall, [0.75, 0.75]);
        let to_overall =
            metric_frame(&targets, None, &sensitive, &metrics, Method::ToOverall).unwrap();
        assert_eq!(to_overall.difference, [0.25, 0.25]);
        assert_eq!(to_overall.ratio, [0.5 / 0.75, 0.5 / 0.75]);
        let parity = parity(&targets, None, &sensitive, Method::BetweenGroups).unwrap();
        assert_eq!(parity.equalized_odds_difference, 0.5);
    }

    #[test]
    fn several_features_make_every_combination_and_missing_values_count_only_overall() {
        let targets = Targets::Values {
            truth: vec![1., 2., 3., 4., 5.],
            predicted: vec![1., 2., 3., 5., 9.],
        };
        let sensitive = [
            ("sex".to_string(), column("FFMM-")),
            ("age".to_string(), column("10110")),
        ];
        let metrics = [
            ("mae".to_string(), Metric::Mae),
            ("count".into(), Metric::Count),
        ];
        let frame =
            metric_frame(&targets, None, &sensitive, &metrics, Method::BetweenGroups).unwrap();
        let names: Vec<String> = frame.by_group.iter().map(|g| g.values.join("/")).collect();
        assert_eq!(names, ["F/0", "F/1", "M/0", "M/1"]);
        assert_eq!(frame.overall, [1.0, 5.0]);
        // M/0: no row has it; M/1: rows 2 and 3, errors 0 and 1.
        assert!(frame.by_group[2].metrics[0].is_nan() && frame.by_group[2].rows == 0);
        assert_eq!(frame.by_group[3].metrics, [0.5, 2.0]);
        assert_eq!((frame.group_min[0], frame.group_max[0]), (0.0, 0.5));
    }

    #[test]
    fn a_metric_for_the_other_task_is_refused() {
        let targets = Targets::Values {
            truth: vec![1.],
            predicted: vec![1.],
        };
        let sensitive = [("g".to_string(), column("a"))];
        let metrics = [("tpr".to_string(), Metric::Tpr)];
        let error = metric_frame(&targets, None, &sensitive, &metrics, Method::BetweenGroups)
            .unwrap_err()
            .to_string();
        assert!(error.contains("pick metrics for a regressor"), "{error}");
    }
}
