//! Logistic regression as scikit-learn fits it: L2 penalty, L-BFGS (`crate::lbfgs`).

use crate::catalog::{Curve, Estimator, Fitted, Predictions};
use crate::check::check_data;
use crate::classifier::{argmax_rows, classifier_outputs, softmax_rows};
use crate::labels::{ClassLabels, ClassTarget};
use crate::lbfgs;
use crate::params::{self, Params};
use crate::{Error, Export, Result, Task};
use ndarray::{Array1, Array2, ArrayView2, Axis, s};
use serde::{Deserialize, Serialize};
use skiff_onnx::{Attr, Graph};
use std::ops::Range;

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
    /// Stop when the gradient's largest component falls below this (default 1e-4).
    pub tol: f64,
    /// Fit an intercept per class (default true).
    pub(crate) fit_intercept: bool,
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
    const NEEDS_SCALING: bool = true;
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

    fn warnings(&self) -> Vec<String> {
        if self.converged {
            return Vec::new();
        }
        vec![format!(
            "logistic-regression: lbfgs did not converge in {} iterations (max_iter={}); the \
             model is kept as it stands: scale the features (--scale standard) or raise \
             max_iter (--set max_iter=1000)",
            self.n_iter, self.params.max_iter
        )]
    }

    /// `objective` after each L-BFGS iteration, steps 1 to `n_iter`.
    fn curves(&self) -> Vec<Curve> {
        if self.objective.is_empty() {
            return Vec::new();
        }
        vec![Curve::from_values("objective", &self.objective)]
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
    ///
    /// It minimises scikit-learn's objective, the mean log-loss plus `‖W‖²/(2·C·n)` (intercepts
    /// unpenalised; one weight vector for two classes, one per class for more), from zero with
    /// L-BFGS as scikit-learn runs it. Stopped at `max_iter` before converging,
    /// it still returns the model, as scikit-learn does, and [`Fitted::warnings`] says so.
    pub fn fit(&self, x: ArrayView2<'_, f64>, y: &ClassTarget) -> Result<FittedLogisticRegression> {
        self.check()?;
        check_data(x, y.indices.len())?;
        let n_classes = y.classes.len();
        let objective = Objective {
            x,
            y: &y.indices,
            vectors: if n_classes == 2 { 1 } else { n_classes },
            fit_intercept: self.fit_intercept,
            l2: 1.0 / (self.c * x.nrows() as f64),
        };
        let start = Array1::zeros(objective.vectors * objective.width());
        let outcome = lbfgs::minimize(
            |w, gradient| objective.value_and_gradient(w, gradient),
            start,
            lbfgs::Options::scikit_learn(self.max_iter, self.tol),
        );
        let (coef, intercept) = objective.unpack(&outcome.x);
        if coef.iter().chain(intercept.iter()).any(|v| !v.is_finite()) {
            return Err(Error::Fit(
                "the solver diverged: scale the features (--scale standard) or lower C".into(),
            ));
        }
        Ok(FittedLogisticRegression {
            coef,
            intercept,
            classes: y.classes.clone(),
            params: self.clone(),
            n_iter: outcome.n_iter,
            converged: outcome.stop == lbfgs::Stop::Converged,
            objective: outcome.objective,
        })
    }
}

/// scikit-learn's L2-penalised log-loss over rows `x` with classes `y`, as a function of the
/// weights: `vectors` rows of `width` (a weight per feature, then the intercept).
pub(crate) struct Objective<'x, 'y> {
    pub(crate) x: ArrayView2<'x, f64>,
    pub(crate) y: &'y [usize],
    /// 1 for two classes (the logit of the second), else one per class (multinomial).
    pub(crate) vectors: usize,
    pub(crate) fit_intercept: bool,
    /// The penalty's factor, `1/(C·n)`.
    pub(crate) l2: f64,
}

impl Objective<'_, '_> {
    pub(crate) fn width(&self) -> usize {
        self.x.ncols() + usize::from(self.fit_intercept)
    }

    /// The objective at `w`; its gradient goes into `gradient`. Blocks of rows run in
    /// parallel, their sums added in block order.
    pub(crate) fn value_and_gradient(&self, w: &Array1<f64>, gradient: &mut Array1<f64>) -> f64 {
        let (n, p) = self.x.dim();
        let shape = (self.vectors, self.width());
        let w = w.view().into_shape_with_order(shape).unwrap();
        let coef = w.slice(s![.., ..p]);
        let block = |rows: Range<usize>| {
            let x = self.x.slice(s![rows.clone(), ..]);
            let mut z = x.dot(&coef.t());
            if self.fit_intercept {
                z += &w.column(p);
            }
            // z becomes the residual, probability minus truth, while the loss sums up.
            let mut loss = 0.0;
            for (mut row, &class) in z.axis_iter_mut(Axis(0)).zip(&self.y[rows]) {
                if self.vectors == 1 {
                    let (v, truth) = (row[0], (class == 1) as u8 as f64);
                    loss += v.max(0.0) + (-v.abs()).exp().ln_1p() - truth * v;
                    row[0] = sigmoid(v) - truth;
                } else {
                    let max = row.fold(f64::NEG_INFINITY, |m, &v| m.max(v));
                    let log_sum = max + row.iter().map(|&v| (v - max).exp()).sum::<f64>().ln();
                    loss += log_sum - row[class];
                    row.mapv_inplace(|v| (v - log_sum).exp());
                    row[class] -= 1.0;
                }
            }
            let mut g = Array2::zeros(shape);
            g.slice_mut(s![.., ..p]).assign(&z.t().dot(&x));
            if self.fit_intercept {
                g.column_mut(p).assign(&z.sum_axis(Axis(0)));
            }
            (loss, g)
        };
        let (loss, g) = crate::blocks::fold(
            n,
            256,
            block,
            (0.0, Array2::zeros(shape)),
            |(loss, g), (l, part)| (loss + l, g + part),
        );
        let n = n as f64;
        let mut out = gradient.view_mut().into_shape_with_order(shape).unwrap();
        out.assign(&(g / n));
        out.slice_mut(s![.., ..p]).scaled_add(self.l2, &coef);
        loss / n + 0.5 * self.l2 * coef.iter().map(|v| v * v).sum::<f64>()
    }

    /// The model's coefficients (classes × features) and intercepts from weights `w`. Two
    /// classes' one vector v becomes the rows −v/2 and v/2, whose softmax is v's sigmoid.
    fn unpack(&self, w: &Array1<f64>) -> (Array2<f64>, Array1<f64>) {
        let p = self.x.ncols();
        let w = w
            .view()
            .into_shape_with_order((self.vectors, self.width()))
            .unwrap();
        let mut coef = w.slice(s![.., ..p]).to_owned();
        let mut intercept = if self.fit_intercept {
            w.column(p).to_owned()
        } else {
            Array1::zeros(self.vectors)
        };
        if self.vectors == 1 {
            coef = ndarray::concatenate![Axis(0), &coef * -0.5, &coef * 0.5];
            intercept = ndarray::array![-0.5 * intercept[0], 0.5 * intercept[0]];
        }
        (coef, intercept)
    }
}

pub(crate) fn sigmoid(v: f64) -> f64 {
    if v >= 0.0 {
        1.0 / (1.0 + (-v).exp())
    } else {
        let e = v.exp();
        e / (1.0 + e)
    }
}

/// A fitted [`LogisticRegression`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FittedLogisticRegression {
    /// Coefficients, classes × features (scikit-learn `coef_`; for two classes, whose
    /// `coef_` is one row w, the rows −w/2 and w/2).
    pub coef: Array2<f64>,
    /// Intercepts, one per class (scikit-learn `intercept_`; for two classes −b/2 and b/2).
    pub intercept: Array1<f64>,
    /// The classes, in column order of `predict_proba`.
    pub classes: ClassLabels,
    /// The hyperparameters it was fitted with.
    pub params: LogisticRegressionParams,
    /// Iterations the solver ran (scikit-learn `n_iter_`).
    pub n_iter: u64,
    /// Whether the solver met its stopping rule before `max_iter`.
    pub converged: bool,
    /// The objective (mean log-loss plus penalty) after each solver iteration, `n_iter`
    /// values.
    pub objective: Vec<f64>,
}

impl FittedLogisticRegression {
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
        let w = g.constant_f32("coef", &[n_classes as u64, n_features as u64], coef);
        let b = g.constant_f32("intercept", &[n_classes as u64], intercept);
        g.node(
            "Gemm",
            &[x, &w, &b],
            &["scores"],
            vec![("transB", Attr::Int(1))],
        );
        classifier_outputs(g, &self.classes, "scores", true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classifier::argmax;
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
    fn the_objective_curve_falls_each_iteration_to_the_fitted_models_objective() {
        // Three overlapping classes, so that the solver takes a few iterations.
        let x = Array2::from_shape_fn((60, 2), |(i, j)| {
            ((i * 7 + j * 13) % 11) as f64 / 3.0 + (i % 3) as f64 * if j == 0 { 1.0 } else { 0.5 }
        });
        let cells: Vec<String> = (0..60).map(|i| format!("c{}", i % 3)).collect();
        let cells: Vec<&str> = cells.iter().map(String::as_str).collect();
        let y = ClassTarget::from_cells(&cells).unwrap();
        let params = LogisticRegression::params().c(0.5);
        let m = params.fit(x.view(), &y).unwrap();
        let curves = Fitted::curves(&m);
        assert_eq!(curves.len(), 1);
        let curve = &curves[0];
        assert_eq!(curve.name, "objective");
        assert!(m.n_iter > 3, "{}", m.n_iter);
        let steps: Vec<u64> = curve.points.iter().map(|p| p.0).collect();
        assert_eq!(steps, (1..=m.n_iter).collect::<Vec<_>>());
        assert!(
            curve.points.windows(2).all(|w| w[1].1 <= w[0].1),
            "{curve:?}"
        );
        // The last value is the fitted model's mean log-loss plus ‖coef‖²/(2·C·n).
        let loss = crate::metrics::log_loss(&y.indices, m.predict_proba(x.view()).view());
        let penalty = m.coef.iter().map(|v| v * v).sum::<f64>() / (2.0 * 0.5 * 60.0);
        let last = curve.points.last().unwrap().1;
        assert!(
            (last - (loss + penalty)).abs() < 1e-10,
            "{last} vs {}",
            loss + penalty
        );
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
