//! Differentially private logistic regression (diffprivlib's `LogisticRegression`): objective
//! perturbation of scikit-learn's L2-penalised log-loss.

use super::mechanisms::vector_noise;
use crate::catalog::{Estimator, Fitted, Predictions};
use crate::check::check_data;
use crate::classifier::{argmax_rows, classifier_outputs};
use crate::lbfgs;
use crate::logistic::{Objective, sigmoid};
use crate::params::{self, Params};
use crate::{ClassLabels, ClassTarget, Error, Export, Result, Task};
use ndarray::{Array1, Array2, ArrayView2, Axis, s};
use serde::{Deserialize, Serialize};
use skiff_onnx::{Attr, Graph};

/// Logistic regression with differential privacy, as diffprivlib fits it: rows clipped to
/// norm `data_norm`, then scikit-learn's objective (mean log-loss plus `‖w‖²/(2·C·n)`) plus a
/// random linear term and, where needed, a small extra ridge (objective perturbation,
/// Chaudhuri, Monteleoni & Sarwate 2011), minimised with L-BFGS. Two classes make one
/// problem; more make one-vs-rest problems, each with `epsilon / classes`.
///
/// ```
/// use skiff_learn::{ClassTarget, DpLogisticRegression};
/// use ndarray::array;
///
/// let x = array![[0.0, 0.1], [0.2, 0.0], [1.0, 0.9], [0.9, 1.0]];
/// let y = ClassTarget::from_cells(&["cold", "cold", "hot", "hot"]).unwrap();
/// let mut params = DpLogisticRegression::params();
/// params.epsilon = f64::INFINITY; // no noise: scikit-learn's model on clipped rows
/// params.data_norm = Some(1.5);
/// params.c = 100.0;
/// let model = params.fit(x.view(), &y).unwrap();
/// assert_eq!(model.predict(x.view()), vec!["cold", "cold", "hot", "hot"]);
/// ```
pub struct DpLogisticRegression;

impl DpLogisticRegression {
    /// Hyperparameters with diffprivlib's defaults.
    pub fn params() -> DpLogisticRegressionParams {
        DpLogisticRegressionParams::default()
    }
}

/// Hyperparameters of [`DpLogisticRegression`], named as in diffprivlib.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DpLogisticRegressionParams {
    /// The privacy budget of the fit (default 1.0; `inf` adds no noise).
    #[serde(with = "super::epsilon_serde")]
    pub epsilon: f64,
    /// The largest Euclidean norm of a row, known beforehand. Required; longer rows are
    /// scaled down to it.
    pub data_norm: Option<f64>,
    /// Inverse of regularisation strength (default 1.0).
    #[serde(rename = "C")]
    pub c: f64,
    /// Maximum L-BFGS iterations per problem (default 100).
    pub max_iter: u64,
    /// Stop when the gradient's largest component falls below this (default 1e-4).
    pub tol: f64,
    /// Fit an intercept (default true); it counts as a feature of 1 in the rows' norm.
    pub fit_intercept: bool,
    /// Seed of the noise; none draws one from the operating system.
    pub random_state: Option<u64>,
}

impl Default for DpLogisticRegressionParams {
    fn default() -> Self {
        DpLogisticRegressionParams {
            epsilon: 1.0,
            data_norm: None,
            c: 1.0,
            max_iter: 100,
            tol: 1e-4,
            fit_intercept: true,
            random_state: None,
        }
    }
}

impl Params for DpLogisticRegressionParams {
    const ALGORITHM: &'static str = "dp-logistic-regression";

    fn check(&self) -> Result<()> {
        super::check_epsilon(self.epsilon)?;
        if let Some(norm) = self.data_norm {
            params::positive("data_norm", norm)?;
        }
        params::positive("C", self.c)?;
        if self.max_iter == 0 {
            return Err(params::invalid("max_iter", 0, "a positive integer"));
        }
        params::positive("tol", self.tol)
    }
}

impl DpLogisticRegressionParams {
    /// Fits rows `x` to classes `y`, spending `epsilon`.
    pub fn fit(
        &self,
        x: ArrayView2<'_, f64>,
        y: &ClassTarget,
    ) -> Result<FittedDpLogisticRegression> {
        self.check()?;
        check_data(x, y.indices.len())?;
        let Some(data_norm) = self.data_norm else {
            return Err(Error::Fit(
                "dp-logistic-regression needs the rows' largest norm, known beforehand: --set \
                 data_norm=N (rows longer than N are scaled down to it); reading it from the \
                 data would not be private"
                    .into(),
            ));
        };
        let (n, p) = x.dim();
        let mut x = x.to_owned();
        for mut row in x.rows_mut() {
            let norm = row.dot(&row).sqrt();
            if norm > data_norm {
                row *= data_norm / norm;
            }
        }
        let k = y.classes.len();
        let positives: Vec<usize> = if k == 2 { vec![1] } else { (0..k).collect() };
        let epsilon = self.epsilon / positives.len() as f64;
        let sensitivity = if self.fit_intercept {
            (data_norm * data_norm + 1.0).sqrt()
        } else {
            data_norm
        };
        let mut rng = super::rng(self.random_state);
        let mut coef = Array2::zeros((positives.len(), p));
        let mut intercept = Array1::zeros(positives.len());
        let (mut n_iter, mut converged) = (0, true);
        for (row, &positive) in positives.iter().enumerate() {
            let truth: Vec<usize> = y
                .indices
                .iter()
                .map(|&c| usize::from(c == positive))
                .collect();
            let objective = Objective {
                x: x.view(),
                y: &truth,
                vectors: 1,
                fit_intercept: self.fit_intercept,
                l2: 1.0 / (self.c * n as f64),
            };
            let width = objective.width();
            let noise = vector_noise(&mut rng, epsilon, 0.25, sensitivity, 1.0 / self.c, width, n);
            let beta = Array1::from_vec(noise.beta) / n as f64;
            let outcome = lbfgs::minimize(
                |w, gradient| {
                    let value = objective.value_and_gradient(w, gradient);
                    gradient.scaled_add(1.0, &beta);
                    gradient.scaled_add(noise.delta, w);
                    value + beta.dot(w) + 0.5 * noise.delta * w.dot(w)
                },
                Array1::zeros(width),
                lbfgs::Options::scikit_learn(self.max_iter, self.tol),
            );
            coef.row_mut(row).assign(&outcome.x.slice(s![..p]));
            if self.fit_intercept {
                intercept[row] = outcome.x[p];
            }
            n_iter = n_iter.max(outcome.n_iter);
            converged &= outcome.stop == lbfgs::Stop::Converged;
        }
        if coef.iter().chain(intercept.iter()).any(|v| !v.is_finite()) {
            return Err(Error::Fit(
                "the solver diverged: lower data_norm or C, or scale the features".into(),
            ));
        }
        Ok(FittedDpLogisticRegression {
            coef,
            intercept,
            classes: y.classes.clone(),
            params: self.clone(),
            n_iter,
            converged,
        })
    }
}

impl Estimator for DpLogisticRegressionParams {
    const TASK: Task = Task::Classification;
    const SUMMARY: &'static str =
        "Logistic regression with differential privacy (objective perturbation, diffprivlib)";
    const SCORES_TRAINING_ROWS: bool = false;
    type Model = FittedDpLogisticRegression;
    fn fit_classes(
        &self,
        x: ArrayView2<'_, f64>,
        y: &ClassTarget,
    ) -> Result<FittedDpLogisticRegression> {
        self.fit(x, y)
    }
    fn privacy(&self) -> Option<f64> {
        Some(self.epsilon)
    }
}

/// A fitted [`DpLogisticRegression`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FittedDpLogisticRegression {
    /// Coefficients: one row for two classes (the second class's), else one per class
    /// (one-vs-rest), as diffprivlib's `coef_`.
    pub coef: Array2<f64>,
    /// Intercepts, one per row of `coef`.
    pub intercept: Array1<f64>,
    /// The classes, in column order of the probabilities.
    pub classes: ClassLabels,
    /// The hyperparameters it was fitted with.
    pub params: DpLogisticRegressionParams,
    /// The most iterations a problem took.
    pub n_iter: u64,
    /// Whether every problem met its stopping rule before `max_iter`.
    pub converged: bool,
}

impl FittedDpLogisticRegression {
    /// `x·coefᵀ + intercept`, rows × coef rows (diffprivlib's `decision_function`).
    pub fn decision_function(&self, x: ArrayView2<'_, f64>) -> Array2<f64> {
        x.dot(&self.coef.t()) + &self.intercept
    }

    /// Class probabilities: `[1-σ, σ]` for two classes, else each class's σ over their sum
    /// (one-vs-rest), as scikit-learn's `_predict_proba_lr`.
    pub fn predict_proba(&self, x: ArrayView2<'_, f64>) -> Array2<f64> {
        let mut p = self.decision_function(x).mapv(sigmoid);
        if self.coef.nrows() == 1 {
            let s = p.column(0).to_owned();
            return ndarray::stack![Axis(1), s.mapv(|v| 1.0 - v), s];
        }
        for mut row in p.rows_mut() {
            let sum = row.sum();
            row /= sum;
        }
        p
    }

    /// Index of the predicted class of each row.
    pub fn predict_index(&self, x: ArrayView2<'_, f64>) -> Vec<usize> {
        let scores = self.decision_function(x);
        if self.coef.nrows() == 1 {
            return scores
                .column(0)
                .iter()
                .map(|&v| usize::from(v > 0.0))
                .collect();
        }
        argmax_rows(&scores)
    }

    /// The predicted class of each row, as text.
    pub fn predict(&self, x: ArrayView2<'_, f64>) -> Vec<String> {
        self.predict_index(x)
            .into_iter()
            .map(|i| self.classes.name(i))
            .collect()
    }
}

impl Fitted for FittedDpLogisticRegression {
    fn predict_rows(&self, x: ArrayView2<'_, f64>) -> Predictions {
        Predictions::Classes(self.predict_index(x))
    }

    fn scores(&self, x: ArrayView2<'_, f64>) -> Array2<f64> {
        self.predict_proba(x)
    }

    fn warnings(&self) -> Vec<String> {
        if self.converged {
            return Vec::new();
        }
        vec![format!(
            "dp-logistic-regression: lbfgs did not converge in {} iterations (max_iter={}); \
             raise max_iter (--set max_iter=1000)",
            self.n_iter, self.params.max_iter
        )]
    }
}

impl Export for FittedDpLogisticRegression {
    fn algorithm(&self) -> &str {
        DpLogisticRegressionParams::ALGORITHM
    }

    fn hyperparameters(&self) -> serde_json::Value {
        self.params.to_json()
    }

    fn task(&self) -> Task {
        Task::Classification
    }

    fn n_features(&self) -> usize {
        self.coef.ncols()
    }

    fn classes(&self) -> Option<&ClassLabels> {
        Some(&self.classes)
    }

    /// Two classes: the rows −w/2 and w/2, whose softmax is `[1-σ, σ]`. More: each class's
    /// sigmoid over their sum (a product with a matrix of ones gives every column the sum).
    fn write(&self, g: &mut Graph, x: &str) {
        let (coef, intercept) = if self.coef.nrows() == 1 {
            let w = self.coef.row(0);
            let b = self.intercept[0];
            (
                ndarray::stack![Axis(0), w.mapv(|v| -0.5 * v), w.mapv(|v| 0.5 * v)],
                ndarray::array![-0.5 * b, 0.5 * b],
            )
        } else {
            (self.coef.clone(), self.intercept.clone())
        };
        let (k, p) = (coef.nrows() as u64, coef.ncols() as u64);
        let weights: Vec<f32> = coef.iter().map(|&v| v as f32).collect();
        let biases: Vec<f32> = intercept.iter().map(|&v| v as f32).collect();
        let w = g.constant_f32("coef", &[k, p], weights);
        let b = g.constant_f32("intercept", &[k], biases);
        let gemm = vec![("transB", Attr::Int(1))];
        g.node("Gemm", &[x, &w, &b], &["scores"], gemm);
        if self.coef.nrows() == 1 {
            classifier_outputs(g, &self.classes, "scores", true);
            return;
        }
        g.node("Sigmoid", &["scores"], &["ovr_sigmoid"], vec![]);
        let ones = g.constant_f32("ones", &[k, k], vec![1.0; (k * k) as usize]);
        g.node("MatMul", &["ovr_sigmoid", &ones], &["ovr_sums"], vec![]);
        g.node(
            "Div",
            &["ovr_sigmoid", "ovr_sums"],
            &["ovr_probabilities"],
            vec![],
        );
        classifier_outputs(g, &self.classes, "ovr_probabilities", false);
    }

    fn metadata(&self) -> Vec<(String, String)> {
        super::metadata(
            self.params.epsilon,
            "objective perturbation (vector mechanism): diffprivlib's LogisticRegression",
            (
                "data_norm",
                self.params.data_norm.unwrap_or_default().to_string(),
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LogisticRegression;
    use ndarray::array;

    fn data() -> (Array2<f64>, ClassTarget) {
        let x = array![
            [0.1, 0.3],
            [0.2, 0.1],
            [0.4, 0.2],
            [0.9, 0.8],
            [0.7, 1.0],
            [0.5, 0.6],
            [0.0, 0.9],
            [0.1, 1.0],
            [0.2, 0.7]
        ];
        let y = ClassTarget::from_cells(&["a", "a", "a", "b", "b", "b", "c", "c", "c"]).unwrap();
        (x, y)
    }

    #[test]
    fn without_noise_two_classes_are_scikit_learns_model() {
        let (x, _) = data();
        let x = x.slice(s![..6, ..]);
        let y = ClassTarget::from_cells(&["a", "a", "a", "b", "b", "b"]).unwrap();
        let mut params = DpLogisticRegression::params();
        params.epsilon = f64::INFINITY;
        params.data_norm = Some(2.0);
        let private = params.fit(x, &y).unwrap();
        let plain = LogisticRegression::params().fit(x, &y).unwrap();
        // The plain model stores the rows -w/2 and w/2.
        for (a, b) in private.coef.row(0).iter().zip(plain.coef.row(1)) {
            assert!((a - 2.0 * b).abs() < 1e-5, "{a} {b}");
        }
        let (p, q) = (private.predict_proba(x), plain.predict_proba(x));
        assert!(p.iter().zip(&q).all(|(a, b)| (a - b).abs() < 1e-5));
    }

    #[test]
    fn more_classes_fit_one_against_the_rest_and_probabilities_sum_to_one() {
        let (x, y) = data();
        let mut params = DpLogisticRegression::params();
        params.data_norm = Some(1.5);
        params.random_state = Some(7);
        let model = params.fit(x.view(), &y).unwrap();
        assert_eq!(model.coef.dim(), (3, 2));
        for row in model.predict_proba(x.view()).rows() {
            assert!((row.sum() - 1.0).abs() < 1e-12);
        }
        // The same seed gives the same noise; another seed other noise.
        assert_eq!(params.fit(x.view(), &y).unwrap(), model);
        params.random_state = Some(8);
        assert_ne!(params.fit(x.view(), &y).unwrap().coef, model.coef);
    }

    #[test]
    fn a_missing_data_norm_is_refused() {
        let (x, y) = data();
        let err = DpLogisticRegression::params()
            .fit(x.view(), &y)
            .unwrap_err();
        assert!(err.to_string().contains("--set data_norm=N"), "{err}");
    }
}
