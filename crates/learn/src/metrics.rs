//! Model metrics, computed as scikit-learn computes them.

use ndarray::ArrayView2;
use std::collections::HashMap;

/// The metrics `skiff eval` reports for a classifier, on labels as text: accuracy and macro F1.
pub fn classification<T: AsRef<str>, P: AsRef<str>>(
    truth: &[T],
    predicted: &[P],
) -> Vec<(&'static str, f64)> {
    let (t, p) = label_indices(truth, predicted);
    vec![
        ("accuracy", accuracy(&t, &p)),
        ("macro_f1", macro_f1(&t, &p)),
    ]
}

/// The metrics `skiff eval` reports for a regressor: R², RMSE and MAE.
pub fn regression(truth: &[f64], predicted: &[f64]) -> Vec<(&'static str, f64)> {
    vec![
        ("r2", r2(truth, predicted)),
        ("rmse", rmse(truth, predicted)),
        ("mae", mae(truth, predicted)),
    ]
}

/// The metrics `skiff eval` reports for a clusterer: the silhouette of rows `x` (where they are
/// given and it is defined), and the adjusted Rand index against `truth` where there is one.
pub fn clustering<T: AsRef<str>>(
    x: Option<ArrayView2<'_, f64>>,
    clusters: &[usize],
    truth: Option<&[T]>,
) -> Vec<(&'static str, f64)> {
    let mut scores = Vec::new();
    if let Some(s) = x.and_then(|x| silhouette(x, clusters)) {
        scores.push(("silhouette", s));
    }
    if let Some(truth) = truth {
        let named: Vec<String> = clusters.iter().map(usize::to_string).collect();
        let (t, p) = label_indices(truth, &named);
        scores.push(("adjusted_rand_index", adjusted_rand_index(&t, &p)));
    }
    scores
}

/// Both labelings as indices into the labels they share.
pub fn label_indices<T: AsRef<str>, P: AsRef<str>>(
    truth: &[T],
    predicted: &[P],
) -> (Vec<usize>, Vec<usize>) {
    let mut ids: HashMap<String, usize> = HashMap::new();
    let mut id = |label: &str| {
        let next = ids.len();
        *ids.entry(label.to_string()).or_insert(next)
    };
    let t = truth.iter().map(|l| id(l.as_ref())).collect();
    let p = predicted.iter().map(|l| id(l.as_ref())).collect();
    (t, p)
}

/// Fraction of rows whose predicted class is the true one.
pub fn accuracy(truth: &[usize], predicted: &[usize]) -> f64 {
    let correct = truth.iter().zip(predicted).filter(|(t, p)| t == p).count();
    correct as f64 / truth.len().max(1) as f64
}

/// F1 averaged over the classes present in `truth` or `predicted`, each weighing the same
/// (scikit-learn's `f1_score(average="macro")`; a class with no true or predicted rows
/// scores 0).
pub fn macro_f1(truth: &[usize], predicted: &[usize]) -> f64 {
    let per_class = f1_per_class(truth, predicted);
    let sum: f64 = per_class.iter().map(|(f1, _)| f1).sum();
    sum / per_class.len().max(1) as f64
}

/// F1 of each class present in `truth` or `predicted`, weighted by its number of true rows
/// (scikit-learn's `f1_score(average="weighted")`).
pub fn weighted_f1(truth: &[usize], predicted: &[usize]) -> f64 {
    let per_class = f1_per_class(truth, predicted);
    let support: f64 = per_class.iter().map(|(_, s)| s).sum();
    if support == 0.0 {
        return 0.0;
    }
    per_class.iter().map(|(f1, s)| f1 * s).sum::<f64>() / support
}

/// Per class present in `truth` or `predicted` (in index order): its F1 and its number of
/// true rows.
fn f1_per_class(truth: &[usize], predicted: &[usize]) -> Vec<(f64, f64)> {
    let mut classes: Vec<usize> = truth.iter().chain(predicted).copied().collect();
    classes.sort_unstable();
    classes.dedup();
    classes
        .iter()
        .map(|&c| {
            let tp = truth
                .iter()
                .zip(predicted)
                .filter(|&(&t, &p)| t == c && p == c)
                .count() as f64;
            let support = truth.iter().filter(|&&t| t == c).count() as f64;
            let chosen = predicted.iter().filter(|&&p| p == c).count() as f64;
            let f1 = if support + chosen == 0.0 {
                0.0
            } else {
                2.0 * tp / (support + chosen)
            };
            (f1, support)
        })
        .collect()
}

/// The recall of each class with true rows, averaged (scikit-learn's
/// `balanced_accuracy_score`; classes only predicted are left out, as it leaves them out
/// with a warning).
pub fn balanced_accuracy(truth: &[usize], predicted: &[usize]) -> f64 {
    let mut classes: Vec<usize> = truth.to_vec();
    classes.sort_unstable();
    classes.dedup();
    let recalls: f64 = classes
        .iter()
        .map(|&c| {
            let support = truth.iter().filter(|&&t| t == c).count() as f64;
            let hits = truth
                .iter()
                .zip(predicted)
                .filter(|&(&t, &p)| t == c && p == c)
                .count() as f64;
            hits / support
        })
        .sum();
    recalls / classes.len().max(1) as f64
}

/// Mean negative log-likelihood of the true classes (scikit-learn's `log_loss`):
/// `probabilities` holds a row per `truth` entry and a column per class index, clipped to
/// [eps, 1 - eps] as scikit-learn clips them.
pub fn log_loss(truth: &[usize], probabilities: ArrayView2<'_, f64>) -> f64 {
    let eps = f64::EPSILON;
    let total: f64 = truth
        .iter()
        .zip(probabilities.rows())
        .map(|(&t, row)| {
            -row.get(t)
                .copied()
                .unwrap_or(0.0)
                .clamp(eps, 1.0 - eps)
                .ln()
        })
        .sum();
    total / truth.len().max(1) as f64
}

/// Area under the ROC curve of `scores` for rows whose truth is `positive` (scikit-learn's
/// `roc_auc_score` for two classes: tied scores count half). `None` when every row is of one
/// class, where it is undefined.
pub fn roc_auc(positive: &[bool], scores: &[f64]) -> Option<f64> {
    let n_pos = positive.iter().filter(|p| **p).count();
    let n_neg = positive.len() - n_pos;
    if n_pos == 0 || n_neg == 0 {
        return None;
    }
    // Mann-Whitney U from average ranks, which equals the trapezoidal area under the curve.
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let mut rank_sum = 0.0;
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && scores[order[end]] == scores[order[start]] {
            end += 1;
        }
        // Ranks start..end (1-based start+1..=end) share their average.
        let average = (start + 1 + end) as f64 / 2.0;
        let positives = order[start..end].iter().filter(|&&i| positive[i]).count();
        rank_sum += average * positives as f64;
        start = end;
    }
    let n_pos = n_pos as f64;
    Some((rank_sum - n_pos * (n_pos + 1.0) / 2.0) / (n_pos * n_neg as f64))
}

/// Coefficient of determination; 1 is perfect, 0 is predicting the mean (scikit-learn's
/// `r2_score`, which gives 0 for a constant target predicted imperfectly and 1 for one
/// predicted exactly).
pub fn r2(truth: &[f64], predicted: &[f64]) -> f64 {
    let n = truth.len().max(1) as f64;
    let mean = truth.iter().sum::<f64>() / n;
    let residual: f64 = truth
        .iter()
        .zip(predicted)
        .map(|(t, p)| (t - p).powi(2))
        .sum();
    let total: f64 = truth.iter().map(|t| (t - mean).powi(2)).sum();
    if total == 0.0 {
        return if residual == 0.0 { 1.0 } else { 0.0 };
    }
    1.0 - residual / total
}

/// Mean squared error.
pub fn mse(truth: &[f64], predicted: &[f64]) -> f64 {
    let n = truth.len().max(1) as f64;
    truth
        .iter()
        .zip(predicted)
        .map(|(t, p)| (t - p).powi(2))
        .sum::<f64>()
        / n
}

/// Root mean squared error.
pub fn rmse(truth: &[f64], predicted: &[f64]) -> f64 {
    mse(truth, predicted).sqrt()
}

/// Mean absolute error.
pub fn mae(truth: &[f64], predicted: &[f64]) -> f64 {
    let n = truth.len().max(1) as f64;
    truth
        .iter()
        .zip(predicted)
        .map(|(t, p)| (t - p).abs())
        .sum::<f64>()
        / n
}

/// Mean silhouette coefficient with Euclidean distances (scikit-learn's
/// `silhouette_score`): near 1 for tight, well separated clusters. `None` unless there are
/// 2 to n-1 clusters. Quadratic in the rows.
pub fn silhouette(x: ArrayView2<'_, f64>, labels: &[usize]) -> Option<f64> {
    let n = x.nrows();
    let mut sizes: HashMap<usize, usize> = HashMap::new();
    for &l in labels {
        *sizes.entry(l).or_default() += 1;
    }
    if sizes.len() < 2 || sizes.len() >= n {
        return None;
    }
    let mut total = 0.0;
    for i in 0..n {
        let mut sums: HashMap<usize, f64> = HashMap::new();
        for (j, (row, &label)) in x.rows().into_iter().zip(labels).enumerate() {
            if i != j {
                let d = x
                    .row(i)
                    .iter()
                    .zip(row)
                    .map(|(a, b)| (a - b).powi(2))
                    .sum::<f64>()
                    .sqrt();
                *sums.entry(label).or_default() += d;
            }
        }
        let own = labels[i];
        if sizes[&own] == 1 {
            continue; // scikit-learn scores a singleton 0
        }
        let a = sums.get(&own).copied().unwrap_or(0.0) / (sizes[&own] - 1) as f64;
        let b = sums
            .iter()
            .filter(|(l, _)| **l != own)
            .map(|(l, s)| s / sizes[l] as f64)
            .fold(f64::INFINITY, f64::min);
        total += (b - a) / a.max(b);
    }
    Some(total / n as f64)
}

/// Adjusted Rand index of two labelings of the same rows: 1 when they group rows alike, near
/// 0 for chance agreement (scikit-learn's `adjusted_rand_score`).
pub fn adjusted_rand_index(a: &[usize], b: &[usize]) -> f64 {
    let pairs = |n: f64| n * (n - 1.0) / 2.0;
    let mut table: HashMap<(usize, usize), f64> = HashMap::new();
    let (mut rows, mut cols): (HashMap<usize, f64>, HashMap<usize, f64>) = Default::default();
    for (&x, &y) in a.iter().zip(b) {
        *table.entry((x, y)).or_default() += 1.0;
        *rows.entry(x).or_default() += 1.0;
        *cols.entry(y).or_default() += 1.0;
    }
    let index: f64 = table.values().map(|&n| pairs(n)).sum();
    let sum_a: f64 = rows.values().map(|&n| pairs(n)).sum();
    let sum_b: f64 = cols.values().map(|&n| pairs(n)).sum();
    let expected = sum_a * sum_b / pairs(a.len() as f64).max(1.0);
    let max = (sum_a + sum_b) / 2.0;
    if max == expected {
        return 1.0;
    }
    (index - expected) / (max - expected)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    // Expected values from scikit-learn 1.9 on the same inputs.
    #[test]
    fn classification_metrics_match_scikit_learn() {
        let t = [0, 0, 1, 1, 2, 2];
        let p = [0, 1, 1, 1, 2, 0];
        assert!((accuracy(&t, &p) - 4.0 / 6.0).abs() < 1e-12);
        // f1 per class: 0.5, 0.8, 0.6667
        assert!((macro_f1(&t, &p) - (0.5 + 0.8 + 2.0 / 3.0) / 3.0).abs() < 1e-12);
        // f1_score(average="weighted"), balanced_accuracy_score.
        assert!((weighted_f1(&t, &p) - 0.6555555555555556).abs() < 1e-12);
        assert!((balanced_accuracy(&t, &p) - 0.6666666666666666).abs() < 1e-12);
        assert!((weighted_f1(&[0, 0, 1], &[2, 2, 1]) - 1.0 / 3.0).abs() < 1e-12);
        assert!((balanced_accuracy(&[0, 0, 1], &[0, 2, 1]) - 0.75).abs() < 1e-12);
    }

    #[test]
    fn probabilistic_metrics_match_scikit_learn() {
        // log_loss(["spam", "ham", "ham", "spam"], [[.1, .9], [.9, .1], [.8, .2], [.35, .65]])
        let p = array![[0.1, 0.9], [0.9, 0.1], [0.8, 0.2], [0.35, 0.65]];
        assert!((log_loss(&[1, 0, 0, 1], p.view()) - 0.21616187468057912).abs() < 1e-12);
        // A certain wrong answer costs -ln(eps), not infinity.
        let q = array![[1.0, 0.0]];
        assert!((log_loss(&[1], q.view()) + f64::EPSILON.ln()).abs() < 1e-9);
        // roc_auc_score([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) and with ties.
        let auc = roc_auc(&[false, false, true, true], &[0.1, 0.4, 0.35, 0.8]).unwrap();
        assert!((auc - 0.75).abs() < 1e-12);
        let tied = roc_auc(&[false, true, false, true], &[0.5, 0.5, 0.2, 0.9]).unwrap();
        assert!((tied - 0.875).abs() < 1e-12);
        assert_eq!(roc_auc(&[true, true], &[0.1, 0.2]), None);
    }

    #[test]
    fn regression_metrics_match_scikit_learn() {
        let t = [3.0, -0.5, 2.0, 7.0];
        let p = [2.5, 0.0, 2.0, 8.0];
        assert!((r2(&t, &p) - 0.9486081370449679).abs() < 1e-12);
        assert!((mae(&t, &p) - 0.5).abs() < 1e-12);
        assert!((rmse(&t, &p) - 0.375f64.sqrt()).abs() < 1e-12);
        assert!((mse(&t, &p) - 0.375).abs() < 1e-12);
        assert_eq!(r2(&[1.0, 1.0], &[1.0, 1.0]), 1.0);
    }

    #[test]
    fn clustering_metrics_match_scikit_learn() {
        assert!((adjusted_rand_index(&[0, 0, 1, 1], &[1, 1, 0, 0]) - 1.0).abs() < 1e-12);
        assert!(
            (adjusted_rand_index(&[0, 0, 1, 2], &[0, 0, 1, 1]) - 0.5714285714285715).abs() < 1e-12
        );
        let x = array![[0.0, 0.0], [0.0, 1.0], [4.0, 0.0], [4.0, 1.0]];
        // silhouette_score: per point (4.123 - 1) / 4.123 on average.
        let s = silhouette(x.view(), &[0, 0, 1, 1]).unwrap();
        let b = (4.0 + 17f64.sqrt()) / 2.0;
        assert!((s - (b - 1.0) / b).abs() < 1e-12, "{s}");
        assert_eq!(silhouette(x.view(), &[0, 0, 0, 0]), None);
    }
}
