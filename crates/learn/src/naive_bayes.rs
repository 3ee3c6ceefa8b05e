//! Gaussian naive Bayes: per class, a mean and a variance per feature.

use crate::catalog::{Estimator, Fitted, Predictions};
use crate::check::check_data;
use crate::classifier::classifier_outputs;
use crate::params::{self, Params};
use crate::{ClassLabels, ClassTarget, Export, Result, Task};
use ndarray::{Array1, Array2, ArrayView2, Axis};
use serde::{Deserialize, Serialize};
use skiff_onnx::Graph;

/// Gaussian naive Bayes (scikit-learn's `GaussianNB`).
///
/// ```
/// use skiff_learn::{ClassTarget, GaussianNb};
/// use ndarray::array;
///
/// let x = array![[0.0, 0.2], [0.1, 0.0], [3.0, 3.1], [3.2, 2.9]];
/// let y = ClassTarget::from_cells(&["cold", "cold", "hot", "hot"]).unwrap();
/// let model = GaussianNb::params().fit(x.view(), &y).unwrap();
/// assert_eq!(model.predict(array![[2.9, 3.0]].view()), vec!["hot"]);
/// ```
pub struct GaussianNb;

/// Hyperparameters of [`GaussianNb`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GaussianNbParams {
    /// Share of the largest feature variance added to every variance, for stability
    /// (default 1e-9).
    pub var_smoothing: f64,
}

impl Default for GaussianNbParams {
    fn default() -> Self {
        GaussianNbParams {
            var_smoothing: 1e-9,
        }
    }
}

impl GaussianNb {
    /// Hyperparameters with scikit-learn's defaults.
    pub fn params() -> GaussianNbParams {
        GaussianNbParams::default()
    }
}

impl Params for GaussianNbParams {
    const ALGORITHM: &'static str = "gaussian-nb";
    fn check(&self) -> Result<()> {
        params::non_negative("var_smoothing", self.var_smoothing)
    }
}

impl GaussianNbParams {
    /// Fits rows `x` to classes `y`.
    pub fn fit(&self, x: ArrayView2<'_, f64>, y: &ClassTarget) -> Result<FittedGaussianNb> {
        self.check()?;
        check_data(x, y.indices.len())?;
        let (n, d) = x.dim();
        let k = y.classes.len();
        let epsilon = self.var_smoothing * x.var_axis(Axis(0), 0.0).fold(0.0f64, |m, &v| m.max(v));
        let mut means = Array2::zeros((k, d));
        let mut vars = Array2::zeros((k, d));
        let mut counts = Array1::<f64>::zeros(k);
        for (row, &class) in x.rows().into_iter().zip(&y.indices) {
            counts[class] += 1.0;
            let mut mean = means.row_mut(class);
            mean += &row;
        }
        for (mut mean, &count) in means.rows_mut().into_iter().zip(&counts) {
            mean /= count;
        }
        for (row, &class) in x.rows().into_iter().zip(&y.indices) {
            let diff = &row - &means.row(class);
            let mut var = vars.row_mut(class);
            var += &(&diff * &diff);
        }
        for (mut var, &count) in vars.rows_mut().into_iter().zip(&counts) {
            var.mapv_inplace(|v| v / count + epsilon);
        }
        if vars.iter().any(|&v| v <= 0.0) {
            return Err(crate::Error::Fit(
                "a class has a constant feature: raise var_smoothing".into(),
            ));
        }
        Ok(FittedGaussianNb {
            means,
            vars,
            priors: counts / n as f64,
            classes: y.classes.clone(),
            params: self.clone(),
        })
    }
}

impl Estimator for GaussianNbParams {
    const TASK: Task = Task::Classification;
    const SUMMARY: &'static str = "Gaussian naive Bayes";
    type Model = FittedGaussianNb;
    fn fit_classes(&self, x: ArrayView2<'_, f64>, y: &ClassTarget) -> Result<FittedGaussianNb> {
        self.fit(x, y)
    }
}

/// A fitted [`GaussianNb`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FittedGaussianNb {
    /// Feature means per class, classes × features (scikit-learn `theta_`).
    pub means: Array2<f64>,
    /// Feature variances per class, smoothing included (scikit-learn `var_`).
    pub vars: Array2<f64>,
    /// Class priors (scikit-learn `class_prior_`).
    pub priors: Array1<f64>,
    /// The classes, in column order of `predict_proba`.
    pub classes: ClassLabels,
    /// The hyperparameters it was fitted with.
    pub params: GaussianNbParams,
}

impl FittedGaussianNb {
    /// The constant part of each class's joint log-likelihood.
    fn constants(&self) -> Array1<f64> {
        let log_det = self
            .vars
            .mapv(|v| (2.0 * std::f64::consts::PI * v).ln())
            .sum_axis(Axis(1));
        self.priors.mapv(f64::ln) - 0.5 * log_det
    }

    /// Joint log-likelihood of each row under each class, rows × classes.
    pub fn joint_log_likelihood(&self, x: ArrayView2<'_, f64>) -> Array2<f64> {
        let constants = self.constants();
        let mut jll = Array2::zeros((x.nrows(), self.classes.len()));
        for (row, mut out) in x.rows().into_iter().zip(jll.rows_mut()) {
            for (k, value) in out.iter_mut().enumerate() {
                let quad: f64 = row
                    .iter()
                    .zip(self.means.row(k))
                    .zip(self.vars.row(k))
                    .map(|((x, m), v)| (x - m).powi(2) / v)
                    .sum();
                *value = constants[k] - 0.5 * quad;
            }
        }
        jll
    }

    /// Class probabilities, rows × classes: the exponential of each joint log-likelihood less
    /// their log-sum-exp, as scikit-learn computes them (scipy's `logsumexp`: the largest
    /// terms factored out, `log1p` of the rest). A row whose probability is nearly 1 rounds as
    /// scikit-learn's does, which ranking scores such as ROC AUC see.
    pub fn predict_proba(&self, x: ArrayView2<'_, f64>) -> Array2<f64> {
        let mut p = self.joint_log_likelihood(x);
        for mut row in p.rows_mut() {
            let max = row.fold(f64::NEG_INFINITY, |m, &v| m.max(v));
            let at_max = row.iter().filter(|&&v| v == max).count() as f64;
            let rest: f64 = row
                .iter()
                .filter(|&&v| v != max)
                .map(|&v| (v - max).exp())
                .sum();
            let log_sum = (rest / at_max).ln_1p() + at_max.ln() + max;
            row.mapv_inplace(|v| (v - log_sum).exp());
        }
        p
    }

    /// Index of the predicted class of each row.
    pub fn predict_index(&self, x: ArrayView2<'_, f64>) -> Vec<usize> {
        crate::classifier::argmax_rows(&self.joint_log_likelihood(x))
    }

    /// The predicted class of each row, as text.
    pub fn predict(&self, x: ArrayView2<'_, f64>) -> Vec<String> {
        self.predict_index(x)
            .into_iter()
            .map(|i| self.classes.name(i))
            .collect()
    }
}

impl Fitted for FittedGaussianNb {
    fn predict_rows(&self, x: ArrayView2<'_, f64>) -> Predictions {
        Predictions::Classes(self.predict_index(x))
    }

    fn scores(&self, x: ArrayView2<'_, f64>) -> Array2<f64> {
        self.predict_proba(x)
    }
}

impl Export for FittedGaussianNb {
    fn algorithm(&self) -> &str {
        GaussianNbParams::ALGORITHM
    }

    fn hyperparameters(&self) -> serde_json::Value {
        self.params.to_json()
    }

    fn task(&self) -> Task {
        Task::Classification
    }

    fn n_features(&self) -> usize {
        self.means.ncols()
    }

    fn classes(&self) -> Option<&ClassLabels> {
        Some(&self.classes)
    }

    fn write(&self, g: &mut Graph, x: &str) {
        let k = self.classes.len() as u64;
        let weights = self.vars.mapv(|v| -0.5 / v);
        crate::graph::squared_distances(g, x, &self.means, Some(&weights), "quadratic");
        let constants: Vec<f32> = self.constants().iter().map(|&v| v as f32).collect();
        let c = g.constant_f32("class_constants", &[k], constants);
        g.node("Add", &["quadratic", &c], &["jll"], vec![]);
        classifier_outputs(g, &self.classes, "jll", true);
    }
}
