//! Differentially private Gaussian naive Bayes (diffprivlib's `GaussianNB`).

use super::mechanisms::{geometric_truncated, laplace_bounded_domain, laplace_truncated};
use crate::catalog::{Estimator, Fitted, Predictions};
use crate::check::check_data;
use crate::params::{self, Params};
use crate::{ClassLabels, ClassTarget, Export, FittedGaussianNb, GaussianNbParams, Result, Task};
use ndarray::{Array1, Array2, ArrayView2};
use serde::{Deserialize, Serialize};
use skiff_onnx::Graph;

/// Gaussian naive Bayes with differential privacy, as diffprivlib fits it: a third of
/// `epsilon` for the class counts (truncated geometric noise), a third for the means and a
/// third for the variances, shared between the features (truncated Laplace noise on each
/// sum, bounded-domain Laplace on each sum of squares).
///
/// ```
/// use skiff_learn::{ClassTarget, DpGaussianNb};
/// use ndarray::array;
///
/// let x = array![[0.0, 0.2], [0.1, 0.0], [3.0, 3.1], [3.2, 2.9]];
/// let y = ClassTarget::from_cells(&["cold", "cold", "hot", "hot"]).unwrap();
/// let mut params = DpGaussianNb::params();
/// params.epsilon = f64::INFINITY; // no noise: the plain model
/// params.bounds = Some("0:4".into());
/// let model = params.fit(x.view(), &y).unwrap();
/// assert_eq!(model.model.predict(array![[2.9, 3.0]].view()), vec!["hot"]);
/// ```
pub struct DpGaussianNb;

/// Hyperparameters of [`DpGaussianNb`], named as in diffprivlib.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DpGaussianNbParams {
    /// The privacy budget of the fit (default 1.0; `inf` adds no noise).
    #[serde(with = "super::epsilon_serde")]
    pub epsilon: f64,
    /// The features' bounds, known beforehand: `LOWER:UPPER` for all, or one pair per
    /// feature, comma-separated. Required; values outside are clipped.
    pub bounds: Option<String>,
    /// Added to every variance (an absolute value, as in diffprivlib; default 1e-9).
    pub var_smoothing: f64,
    /// Seed of the noise; none draws one from the operating system.
    pub random_state: Option<u64>,
}

impl Default for DpGaussianNbParams {
    fn default() -> Self {
        DpGaussianNbParams {
            epsilon: 1.0,
            bounds: None,
            var_smoothing: 1e-9,
            random_state: None,
        }
    }
}

impl DpGaussianNb {
    /// Hyperparameters with diffprivlib's defaults.
    pub fn params() -> DpGaussianNbParams {
        DpGaussianNbParams::default()
    }
}

impl Params for DpGaussianNbParams {
    const ALGORITHM: &'static str = "dp-gaussian-nb";
    fn check(&self) -> Result<()> {
        super::check_epsilon(self.epsilon)?;
        if let Some(bounds) = &self.bounds {
            super::parse_pairs(bounds)?;
        }
        params::non_negative("var_smoothing", self.var_smoothing)
    }
}

impl DpGaussianNbParams {
    /// Fits rows `x` to classes `y`, spending `epsilon`.
    pub fn fit(&self, x: ArrayView2<'_, f64>, y: &ClassTarget) -> Result<FittedDpGaussianNb> {
        self.check()?;
        check_data(x, y.indices.len())?;
        let (n, d) = x.dim();
        let bounds = super::parse_bounds(self.bounds.as_deref(), Self::ALGORITHM, d)?;
        let mut rng = super::rng(self.random_state);
        let k = y.classes.len();
        let mut counts = vec![0i64; k];
        for &class in &y.indices {
            counts[class] += 1;
        }
        let noisy = noisy_class_counts(&mut rng, &counts, self.epsilon / 3.0, n as i64);
        let local = self.epsilon / 3.0 / d as f64;
        let mut means = Array2::zeros((k, d));
        let mut vars = Array2::zeros((k, d));
        for class in 0..k {
            let rows: Vec<usize> = (0..n).filter(|&i| y.indices[i] == class).collect();
            let count = noisy[class] as f64;
            for (j, &(lower, upper)) in bounds.iter().enumerate() {
                let column: Vec<f64> = rows
                    .iter()
                    .map(|&i| x[[i, j]].clamp(lower, upper))
                    .collect();
                let sum: f64 = column.iter().sum();
                let range = (lower * count, upper * count);
                let mean = laplace_truncated(&mut rng, sum, local, upper - lower, range) / count;
                let sensitivity = (mean - lower).max(upper - mean).powi(2);
                let squares: f64 = column.iter().map(|v| (v - mean).powi(2)).sum();
                let range = (0.0, sensitivity * count);
                let var =
                    laplace_bounded_domain(&mut rng, squares, local, sensitivity, range) / count;
                means[[class, j]] = mean;
                vars[[class, j]] = var + self.var_smoothing;
            }
        }
        let priors = Array1::from_iter(noisy.iter().map(|&c| c as f64 / n as f64));
        Ok(FittedDpGaussianNb {
            model: FittedGaussianNb {
                means,
                vars,
                priors,
                classes: y.classes.clone(),
                params: GaussianNbParams {
                    var_smoothing: self.var_smoothing,
                },
            },
            bounds,
            params: self.clone(),
        })
    }
}

/// diffprivlib's noisy class counts: truncated geometric noise on each count (parallel
/// composition: a row is in one class), then nudged one at a time, round-robin, until they
/// add up to the number of rows again, each kept in `1..=n`.
fn noisy_class_counts<R: rand::Rng>(rng: &mut R, counts: &[i64], epsilon: f64, n: i64) -> Vec<i64> {
    let mut noisy: Vec<i64> = counts
        .iter()
        .map(|&c| geometric_truncated(rng, c, epsilon, (1, n)))
        .collect();
    let k = noisy.len() as i64;
    let mut order: Vec<usize> = (0..noisy.len()).collect();
    order.sort_by_key(|&i| noisy[i]);
    let total = |v: &[i64]| v.iter().sum::<i64>();
    let mut i = if total(&noisy) > n { 0 } else { k - 1 };
    // Each round over the classes moves the total by at least one while it is off.
    let rounds = (total(&noisy) - n).abs() * (k + 1) + k;
    for _ in 0..rounds {
        let sum = total(&noisy);
        if sum == n {
            break;
        }
        let sign = (n - sum).signum();
        let at = order[i as usize];
        noisy[at] = (noisy[at] + sign).clamp(1, n);
        i = (i - sign).rem_euclid(k);
    }
    noisy
}

impl Estimator for DpGaussianNbParams {
    const TASK: Task = Task::Classification;
    const SUMMARY: &'static str = "Gaussian naive Bayes with differential privacy (diffprivlib)";
    const SCORES_TRAINING_ROWS: bool = false;
    type Model = FittedDpGaussianNb;
    fn fit_classes(&self, x: ArrayView2<'_, f64>, y: &ClassTarget) -> Result<FittedDpGaussianNb> {
        self.fit(x, y)
    }
    fn privacy(&self) -> Option<f64> {
        Some(self.epsilon)
    }
}

/// A fitted [`DpGaussianNb`]: a Gaussian naive Bayes model whose statistics are noisy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FittedDpGaussianNb {
    /// The model (means, variances and priors after noise).
    pub model: FittedGaussianNb,
    /// The bounds each feature was clipped to.
    pub bounds: Vec<(f64, f64)>,
    /// The hyperparameters it was fitted with.
    pub params: DpGaussianNbParams,
}

impl Fitted for FittedDpGaussianNb {
    fn predict_rows(&self, x: ArrayView2<'_, f64>) -> Predictions {
        self.model.predict_rows(x)
    }

    fn scores(&self, x: ArrayView2<'_, f64>) -> Array2<f64> {
        self.model.predict_proba(x)
    }
}

impl Export for FittedDpGaussianNb {
    fn algorithm(&self) -> &str {
        DpGaussianNbParams::ALGORITHM
    }

    fn hyperparameters(&self) -> serde_json::Value {
        self.params.to_json()
    }

    fn task(&self) -> Task {
        Task::Classification
    }

    fn n_features(&self) -> usize {
        self.model.means.ncols()
    }

    fn classes(&self) -> Option<&ClassLabels> {
        Some(&self.model.classes)
    }

    fn write(&self, g: &mut Graph, x: &str) {
        self.model.write(g, x)
    }

    fn metadata(&self) -> Vec<(String, String)> {
        let bounds: Vec<[f64; 2]> = self.bounds.iter().map(|&(l, u)| [l, u]).collect();
        super::metadata(
            self.params.epsilon,
            "geometric (class counts), Laplace (means, variances): diffprivlib's GaussianNB",
            ("bounds", serde_json::json!(bounds).to_string()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::GaussianNb;
    use ndarray::array;
    use rand::SeedableRng;

    fn data() -> (Array2<f64>, ClassTarget) {
        let x = array![
            [0.0, 0.2],
            [0.1, 0.0],
            [0.3, 0.1],
            [3.0, 3.1],
            [3.2, 2.9],
            [2.8, 3.0]
        ];
        let y = ClassTarget::from_cells(&["a", "a", "a", "b", "b", "b"]).unwrap();
        (x, y)
    }

    #[test]
    fn without_noise_it_is_gaussian_nb_on_clipped_rows() {
        let (x, y) = data();
        let mut params = DpGaussianNb::params();
        params.epsilon = f64::INFINITY;
        params.bounds = Some("0:4".into());
        let private = params.fit(x.view(), &y).unwrap();
        let plain = GaussianNb::params().fit(x.view(), &y).unwrap();
        for (a, b) in private.model.means.iter().zip(&plain.means) {
            assert!((a - b).abs() < 1e-12);
        }
        // diffprivlib adds var_smoothing as it is, not scaled by the largest variance.
        for (a, b) in private.model.vars.iter().zip(&plain.vars) {
            assert!((a - b).abs() < 1e-6, "{a} {b}");
        }
        assert_eq!(private.model.priors, plain.priors);
    }

    #[test]
    fn bounds_are_required_and_spent_counts_add_up() {
        let (x, y) = data();
        let err = DpGaussianNb::params().fit(x.view(), &y).unwrap_err();
        assert!(err.to_string().contains("bounds"), "{err}");
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(0);
        for _ in 0..200 {
            let counts = noisy_class_counts(&mut rng, &[5, 1, 94], 0.1, 100);
            assert_eq!(counts.iter().sum::<i64>(), 100);
            assert!(counts.iter().all(|&c| (1..=100).contains(&c)));
        }
    }
}
