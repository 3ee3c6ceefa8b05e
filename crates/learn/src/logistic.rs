//! Multinomial logistic regression, fitted with L-BFGS by `linfa-logistic`.

use crate::catalog::{Estimator, Fitted, Predictions};
use crate::labels::{ClassLabels, ClassTarget};
use crate::params::{self, Params};
use crate::{Error, Export, Result, Task};
use linfa::prelude::*;
use ndarray::{Array1, Array2, ArrayView2, Axis};
use serde::{Deserialize, Serialize};
use skiff_onnx::{Attr, Dim, ElemType, Graph};

/// Multinomial logistic regression (scikit-learn's `LogisticRegression` with the `lbfgs` solver
/// and an L2 penalty).
///
/// ```
/// use skiff_learn::{ClassTarget, LogisticRegression};
/// use ndarray::array;
///
/// let x = array![[0.0, 0.1], [0.2, 0.0], [3.0, 3.1], [3.2, 2.9]];
/// let y = ClassTarget::from_cells(&["cold", "cold", "hot", "hot"]).unwrap();
/// let model = LogisticRegression::params().c(10.0).fit(x.view(), &y).unwrap();
/// assert_eq!(model.predict(x.view()), vec!["cold", "cold", "hot", "hot"]);
/// ```
pub struct LogisticRegression;

impl LogisticRegression {
    /// Hyperparameters with scikit-learn's defaults.
    pub fn params() -> LogisticRegressionParams {
        LogisticRegressionParams::default()
    }
}

/// Hyperparameters of [`LogisticRegression`], named as in scikit-learn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogisticRegressionParams {
    /// Inverse of regularisation strength; smaller is stronger (scikit-learn `C`, default 1.0).
    #[serde(rename = "C")]
    pub c: f64,
    /// Maximum L-BFGS iterations (default 100).
    pub max_iter: u64,
    /// Stop when the gradient's norm falls below this (default 1e-4).
    pub tol: f64,
    /// Fit an intercept per class (default true).
    pub fit_intercept: bool,
}

impl Default for LogisticRegressionParams {
    fn default() -> Self {
        LogisticRegressionParams {
            c: 1.0,
            max_iter: 100,
            tol: 1e-4,
            fit_intercept: true,
        }
    }
}

impl Params for LogisticRegressionParams {
    const ALGORITHM: &'static str = "logistic-regression";

    fn check(&self) -> Result<()> {
        params::positive("C", self.c)?;
        if self.max_iter == 0 {
            return Err(params::invalid("max_iter", 0, "a positive integer"));
        }
        params::positive("tol", self.tol)
    }
}

impl Estimator for LogisticRegressionParams {
    const TASK: Task = Task::Classification;
    const SUMMARY: &'static str = "Multinomial logistic regression (L2 penalty, L-BFGS)";
    type Model = FittedLogisticRegression;
    fn fit_classes(
        &self,
        x: ArrayView2<'_, f64>,
        y: &ClassTarget,
    ) -> Result<FittedLogisticRegression> {
        self.fit(x, y)
    }
}

impl Fitted for FittedLogisticRegression {
    fn predict_rows(&self, x: ArrayView2<'_, f64>) -> Predictions {
        Predictions::Classes(self.predict_index(x))
    }

    fn scores(&self, x: ArrayView2<'_, f64>) -> Array2<f64> {
        self.predict_proba(x)
    }
}

impl LogisticRegressionParams {
    /// Sets `C`.
    pub fn c(mut self, c: f64) -> Self {
        self.c = c;
        self
    }

    /// Sets `max_iter`.
    pub fn max_iter(mut self, max_iter: u64) -> Self {
        self.max_iter = max_iter;
        self
    }

    /// Sets `tol`.
    pub fn tol(mut self, tol: f64) -> Self {
        self.tol = tol;
        self
    }

    /// Sets `fit_intercept`.
    pub fn fit_intercept(mut self, fit_intercept: bool) -> Self {
        self.fit_intercept = fit_intercept;
        self
    }

    /// Fits the model to rows `x` and their classes `y`.
    pub fn fit(&self, x: ArrayView2<'_, f64>, y: &ClassTarget) -> Result<FittedLogisticRegression> {
        self.check()?;
        check_data(x, y.indices.len())?;
        let records = x.to_owned();
        let targets = Array1::from(y.indices.clone());
        let dataset = Dataset::new(records, targets);
        // scikit-learn minimises C·Σ logloss + ½‖w‖²; linfa minimises Σ logloss + ½α‖w‖².
        // For two classes scikit-learn fits one weight vector w; the two-column softmax form
        // fitted here reaches the same w = w₁ − w₀ with w₀ = −w₁, whose penalty ½(‖w₀‖² + ‖w₁‖²)
        // is ¼‖w‖²: halving C makes the two objectives the same.
        let c = if y.classes.len() == 2 {
            self.c / 2.0
        } else {
            self.c
        };
        let fitted = linfa_logistic::MultiLogisticRegression::default()
            .alpha(1.0 / c)
            .max_iterations(self.max_iter)
            .gradient_tolerance(self.tol * x.nrows() as f64)
            .with_intercept(self.fit_intercept)
            .fit(&dataset)
            .map_err(|e| Error::Fit(e.to_string()))?;
        // linfa orders columns by its own sorted class indices 0..C, which are ours.
        let n_classes = y.classes.len();
        let coef = fitted.params().t().to_owned();
        let mut intercept = fitted.intercept().to_owned();
        if coef.nrows() != n_classes {
            return Err(Error::Fit(format!(
                "expected {n_classes} classes, solver returned {}",
                coef.nrows()
            )));
        }
        if !self.fit_intercept {
            intercept.fill(0.0);
        }
        if coef.iter().chain(intercept.iter()).any(|v| !v.is_finite()) {
            return Err(Error::Fit(
                "the solver diverged: scale the features or lower C".into(),
            ));
        }
        let model = FittedLogisticRegression {
            coef,
            intercept,
            classes: y.classes.clone(),
            params: self.clone(),
        };
        // The solver can stop far from the optimum without saying so (its line search gives
        // up on badly scaled features): check the optimality condition scikit-learn checks,
        // the gradient of the mean objective, and refuse a model that is not near it.
        let gradient = model.mean_gradient(x, &y.indices);
        if gradient > GRADIENT_LIMIT {
            return Err(Error::Fit(format!(
                "logistic-regression did not converge (largest gradient {gradient:.2e}): scale \
                 the features (--scale standard) or raise max_iter"
            )));
        }
        Ok(model)
    }
}

pub(crate) fn check_data(x: ArrayView2<'_, f64>, n_targets: usize) -> Result<()> {
    if x.nrows() == 0 || x.ncols() == 0 {
        return Err(Error::Shape(format!(
            "need at least one row and one feature, got {}x{}",
            x.nrows(),
            x.ncols()
        )));
    }
    if x.nrows() != n_targets {
        return Err(Error::Shape(format!(
            "{} rows of features but {} targets",
            x.nrows(),
            n_targets
        )));
    }
    if x.iter().any(|v| !v.is_finite()) {
        return Err(Error::NonFinite);
    }
    Ok(())
}

/// A fitted [`LogisticRegression`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FittedLogisticRegression {
    /// Coefficients, classes × features (scikit-learn `coef_`).
    pub coef: Array2<f64>,
    /// Intercepts, one per class (scikit-learn `intercept_`).
    pub intercept: Array1<f64>,
    /// The classes, in column order of `predict_proba`.
    pub classes: ClassLabels,
    /// The hyperparameters it was fitted with.
    pub params: LogisticRegressionParams,
}

/// The largest gradient of the mean objective a fitted model may leave.
const GRADIENT_LIMIT: f64 = 1e-2;

impl FittedLogisticRegression {
    /// The largest absolute component of the gradient of scikit-learn's mean objective,
    /// `(C·Σ log-loss + ½‖W‖²) / (C·n)`, at this model, on rows `x` with classes `y`.
    fn mean_gradient(&self, x: ArrayView2<'_, f64>, y: &[usize]) -> f64 {
        let mut diff = self.predict_proba(x);
        for (mut row, &class) in diff.axis_iter_mut(Axis(0)).zip(y) {
            row[class] -= 1.0;
        }
        let n = x.nrows() as f64;
        let c = if self.classes.len() == 2 {
            self.params.c / 2.0
        } else {
            self.params.c
        };
        let dw = diff.t().dot(&x) + &self.coef / c;
        let db = diff.sum_axis(Axis(0));
        let biggest = |a: f64, &b: &f64| a.max(b.abs());
        let w = dw.iter().fold(0.0, biggest);
        let b = if self.params.fit_intercept {
            db.iter().fold(0.0, biggest)
        } else {
            0.0
        };
        w.max(b) / n
    }

    /// Number of features the model expects.
    pub fn n_features(&self) -> usize {
        self.coef.ncols()
    }

    /// Unnormalised class scores, rows × classes (scikit-learn `decision_function`).
    pub fn decision_function(&self, x: ArrayView2<'_, f64>) -> Array2<f64> {
        x.dot(&self.coef.t()) + &self.intercept
    }

    /// Class probabilities, rows × classes.
    pub fn predict_proba(&self, x: ArrayView2<'_, f64>) -> Array2<f64> {
        let mut scores = self.decision_function(x);
        softmax_rows(&mut scores);
        scores
    }

    /// Index of the predicted class of each row.
    pub fn predict_index(&self, x: ArrayView2<'_, f64>) -> Vec<usize> {
        argmax_rows(&self.decision_function(x))
    }

    /// The predicted class of each row, as text.
    pub fn predict(&self, x: ArrayView2<'_, f64>) -> Vec<String> {
        self.predict_index(x)
            .into_iter()
            .map(|i| self.classes.name(i))
            .collect()
    }

    /// Mean accuracy on rows `x` with true classes `y` (which must use this model's classes).
    pub fn score(&self, x: ArrayView2<'_, f64>, y: &[usize]) -> f64 {
        let predicted = self.predict_index(x);
        let correct = predicted.iter().zip(y).filter(|(p, t)| p == t).count();
        correct as f64 / y.len().max(1) as f64
    }
}

/// Turns each row of scores into probabilities, as the exported graph's Softmax does.
pub(crate) fn softmax_rows(scores: &mut Array2<f64>) {
    for mut row in scores.rows_mut() {
        let max = row.fold(f64::NEG_INFINITY, |m, &v| m.max(v));
        row.mapv_inplace(|v| (v - max).exp());
        let sum = row.sum();
        row /= sum;
    }
}

/// The column of each row's first maximum, as the exported graph's ArgMax picks it.
pub(crate) fn argmax_rows(scores: &Array2<f64>) -> Vec<usize> {
    scores
        .axis_iter(Axis(0))
        .map(|row| argmax(row.iter().copied()))
        .collect()
}

fn argmax(values: impl Iterator<Item = f64>) -> usize {
    let mut best = (0, f64::NEG_INFINITY);
    for (i, v) in values.enumerate() {
        if v > best.1 {
            best = (i, v);
        }
    }
    best.0
}

impl Export for FittedLogisticRegression {
    fn algorithm(&self) -> &str {
        LogisticRegressionParams::ALGORITHM
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

    fn write(&self, g: &mut Graph, x: &str) {
        let (n_classes, n_features) = self.coef.dim();
        let coef: Vec<f32> = self.coef.iter().map(|&v| v as f32).collect();
        let intercept: Vec<f32> = self.intercept.iter().map(|&v| v as f32).collect();
        let w = g.constant_f32("coef", &[n_classes as u64, n_features as u64], &coef);
        let b = g.constant_f32("intercept", &[n_classes as u64], &intercept);
        g.node(
            "Gemm",
            &[x, &w, &b],
            &["scores"],
            vec![("transB", Attr::Int(1))],
        );
        classifier_outputs(g, &self.classes, "scores", true);
    }
}

/// The outputs of a classifier from its class `scores` [N, C]: `probabilities` (the softmax of
/// the scores, or the scores themselves when they are probabilities already) and `label`, the
/// class of the highest score.
pub(crate) fn classifier_outputs(
    g: &mut Graph,
    classes: &ClassLabels,
    scores: &str,
    softmax: bool,
) {
    let n_classes = classes.len() as u64;
    if softmax {
        g.node(
            "Softmax",
            &[scores],
            &["probabilities"],
            vec![("axis", Attr::Int(1))],
        );
    } else {
        g.node("Identity", &[scores], &["probabilities"], vec![]);
    }
    g.node(
        "ArgMax",
        &[scores],
        &["label_index"],
        vec![("axis", Attr::Int(1)), ("keepdims", Attr::Int(0))],
    );
    let label_type = label_output(g, classes, "label_index", "label");
    g.output("label", label_type, &[Dim::batch()]);
    g.output(
        "probabilities",
        ElemType::Float,
        &[Dim::batch(), Dim::Fixed(n_classes)],
    );
}

/// Wires `index` (int64 class indices) to the original labels in output `name`, with ops that
/// both ONNX Runtime and tract run: `Gather` for integer labels, `CategoryMapper` for strings.
pub(crate) fn label_output(
    g: &mut Graph,
    classes: &ClassLabels,
    index: &str,
    name: &str,
) -> ElemType {
    match classes {
        ClassLabels::Int(values) => {
            let table = g.constant_i64("classes", &[values.len() as u64], values);
            g.node(
                "Gather",
                &[&table, index],
                &[name],
                vec![("axis", Attr::Int(0))],
            );
            ElemType::Int64
        }
        ClassLabels::Str(values) => {
            g.ml_node(
                "CategoryMapper",
                &[index],
                &[name],
                vec![
                    (
                        "cats_int64s",
                        Attr::Ints((0..values.len() as i64).collect()),
                    ),
                    ("cats_strings", Attr::Strings(values.clone())),
                    ("default_string", Attr::String(String::new())),
                ],
            );
            ElemType::String
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn bad_hyperparameters_are_rejected_before_fitting() {
        let x = array![[0.0], [1.0]];
        let y = ClassTarget::from_cells(&["a", "b"]).unwrap();
        for params in [
            LogisticRegression::params().c(0.0),
            LogisticRegression::params().c(f64::NAN),
            LogisticRegression::params().max_iter(0),
            LogisticRegression::params().tol(-1.0),
        ] {
            assert!(matches!(
                params.fit(x.view(), &y),
                Err(Error::InvalidParam { .. })
            ));
        }
    }

    #[test]
    fn set_parses_names_and_rejects_unknown_ones() {
        let mut p = LogisticRegression::params();
        p.set("C", "0.5").unwrap();
        p.set("max_iter", "250").unwrap();
        assert_eq!((p.c, p.max_iter), (0.5, 250));
        let err = p.set("alpha", "1").unwrap_err().to_string();
        assert!(err.contains("C, fit_intercept, max_iter, tol"), "{err}");
        assert_eq!((p.c, p.max_iter), (0.5, 250));
        assert!(p.set("C", "-1").is_err());
        assert!(p.set("tol", "abc").is_err());
    }

    #[test]
    fn probabilities_sum_to_one_and_agree_with_predict() {
        let x = array![
            [0.0, 1.0],
            [1.0, 0.0],
            [5.0, 5.0],
            [6.0, 5.5],
            [-3.0, 4.0],
            [-4.0, 3.0]
        ];
        let y = ClassTarget::from_cells(&["1", "1", "2", "2", "3", "3"]).unwrap();
        let m = LogisticRegression::params().fit(x.view(), &y).unwrap();
        let p = m.predict_proba(x.view());
        for (row, idx) in p.axis_iter(Axis(0)).zip(m.predict_index(x.view())) {
            assert!((row.sum() - 1.0).abs() < 1e-12);
            assert_eq!(argmax(row.iter().copied()), idx);
        }
        assert_eq!(m.score(x.view(), &y.indices), 1.0);
    }

    #[test]
    fn non_finite_features_are_an_error() {
        let x = array![[0.0], [f64::INFINITY]];
        let y = ClassTarget::from_cells(&["a", "b"]).unwrap();
        assert!(matches!(
            LogisticRegression::params().fit(x.view(), &y),
            Err(Error::NonFinite)
        ));
    }
}
