//! Linear support vector classification, one class against the rest, with the squared hinge
//! loss and an L2 penalty, as liblinear (which scikit-learn's `LinearSVC` wraps) defines it:
//! `½‖w‖² + C·Σ max(0, 1 − yᵢ·w·xᵢ)²`, the intercept a constant feature penalised with the rest.
//!
//! Written here because neither linfa (its SVM is kernel SMO, quadratic in the rows) nor
//! smartcore (binary only, no squared hinge) gives a multi-class linear SVM that scales to
//! 100,000 rows. Like scikit-learn's `dual="auto"`, it solves the primal when there are more
//! rows than features (Newton's method: the objective is piecewise quadratic, the Hessian is
//! features × features, and a handful of steps, each linear in the rows, reach the optimum),
//! and the dual by coordinate descent (Hsieh et al., 2008) otherwise.

use crate::catalog::{Curve, Estimator, Fitted, Predictions};
use crate::check::check_data;
use crate::classifier::{argmax_rows, classifier_outputs};
use crate::params::{self, Params};
use crate::{ClassLabels, ClassTarget, Error, Export, Result, Task};
use ndarray::{Array1, Array2, ArrayView1, ArrayView2, Axis};
use serde::{Deserialize, Serialize};
use skiff_onnx::{Attr, Graph};

/// Linear SVM classifier (scikit-learn's `LinearSVC`).
///
/// ```
/// use skiff_learn::{ClassTarget, LinearSvc};
/// use ndarray::array;
///
/// let x = array![[0.0, 0.1], [0.2, 0.0], [3.0, 3.1], [3.2, 2.9], [-3.0, 3.0], [-3.1, 2.8]];
/// let y = ClassTarget::from_cells(&["a", "a", "b", "b", "c", "c"]).unwrap();
/// let model = LinearSvc::params().fit(x.view(), &y).unwrap();
/// assert_eq!(model.predict(x.view()), vec!["a", "a", "b", "b", "c", "c"]);
/// ```
pub struct LinearSvc;

/// Hyperparameters of [`LinearSvc`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinearSvcParams {
    /// Inverse of regularisation strength (default 1.0).
    #[serde(rename = "C")]
    pub c: f64,
    /// Stop when the projected gradient's spread falls below this (default 1e-4).
    pub tol: f64,
    /// Most passes over the data per class (default 1000).
    pub max_iter: u64,
    /// Fit an intercept, as a constant feature that is penalised like the others, as in
    /// liblinear (default true).
    pub fit_intercept: bool,
    /// The constant feature's value (default 1.0).
    pub intercept_scaling: f64,
    /// Seed for the order rows are visited in; `None` draws one.
    pub random_state: Option<u64>,
}

impl Default for LinearSvcParams {
    fn default() -> Self {
        LinearSvcParams {
            c: 1.0,
            tol: 1e-4,
            max_iter: 1000,
            fit_intercept: true,
            intercept_scaling: 1.0,
            random_state: None,
        }
    }
}

impl LinearSvc {
    /// Hyperparameters with scikit-learn's defaults.
    pub fn params() -> LinearSvcParams {
        LinearSvcParams::default()
    }
}

impl Params for LinearSvcParams {
    const ALGORITHM: &'static str = "linear-svc";
    fn check(&self) -> Result<()> {
        params::positive("C", self.c)?;
        params::positive("tol", self.tol)?;
        params::positive("intercept_scaling", self.intercept_scaling)?;
        if self.max_iter == 0 {
            return Err(params::invalid("max_iter", 0, "a positive integer"));
        }
        Ok(())
    }
}

impl Estimator for LinearSvcParams {
    const TASK: Task = Task::Classification;
    const SUMMARY: &'static str =
        "Linear SVM, one-vs-rest, squared hinge loss (dual coordinate descent)";
    const NEEDS_SCALING: bool = true;
    type Model = FittedLinearSvc;
    fn fit_classes(&self, x: ArrayView2<'_, f64>, y: &ClassTarget) -> Result<FittedLinearSvc> {
        self.fit(x, y)
    }
}

impl LinearSvcParams {
    /// Fits rows `x` to classes `y`.
    pub fn fit(&self, x: ArrayView2<'_, f64>, y: &ClassTarget) -> Result<FittedLinearSvc> {
        use rand_xoshiro::Xoshiro256Plus;
        use rand_xoshiro::rand_core::{RngCore, SeedableRng};
        self.check()?;
        check_data(x, y.indices.len())?;
        let (n, d) = x.dim();
        // The intercept as a last feature, as liblinear does.
        let bias = if self.fit_intercept {
            self.intercept_scaling
        } else {
            0.0
        };
        let mut rng = Xoshiro256Plus::seed_from_u64(
            self.random_state.unwrap_or_else(crate::params::random_seed),
        );
        let norms: Vec<f64> = x
            .rows()
            .into_iter()
            .map(|r| r.dot(&r) + bias * bias)
            .collect();
        // Binary problems fit one classifier (the second class positive); more classes one each.
        let k = y.classes.len();
        let problems = if k == 2 { 1 } else { k };
        let mut coef = Array2::zeros((problems, d));
        let mut intercept = Array1::zeros(problems);
        let dual = n <= d;
        let mut objectives = Vec::with_capacity(problems);
        for p in 0..problems {
            let positive = if k == 2 { 1 } else { p };
            let signs: Vec<f64> = y
                .indices
                .iter()
                .map(|&c| if c == positive { 1.0 } else { -1.0 })
                .collect();
            let (w, b, objective) = if dual {
                let mut order: Vec<usize> = (0..n).collect();
                solve(x, &signs, &norms, bias, self, &mut order, || rng.next_u64())?
            } else {
                newton(x, &signs, bias, self)?
            };
            coef.row_mut(p).assign(&w);
            intercept[p] = b * bias;
            objectives.push(objective);
        }
        let objective = summed(&objectives);
        let (objective, dual_objective) = if dual {
            (Vec::new(), objective)
        } else {
            (objective, Vec::new())
        };
        Ok(FittedLinearSvc {
            coef,
            intercept,
            classes: y.classes.clone(),
            params: self.clone(),
            objective,
            dual_objective,
        })
    }
}

/// The one-vs-rest problems' objectives summed step by step; a problem that stopped early
/// counts with its last value.
fn summed(objectives: &[Vec<f64>]) -> Vec<f64> {
    let steps = objectives.iter().map(Vec::len).max().unwrap_or(0);
    (0..steps)
        .map(|i| {
            objectives
                .iter()
                .map(|o| o.get(i).or(o.last()).copied().unwrap_or(0.0))
                .sum()
        })
        .collect()
}

/// Newton's method on the primal of one binary problem; returns the weights, the weight of
/// the constant feature, and the objective at the start and after each step. Stops when the
/// gradient's norm falls below `tol` times its first norm, as liblinear's primal solver does.
fn newton(
    x: ArrayView2<'_, f64>,
    y: &[f64],
    bias: f64,
    params: &LinearSvcParams,
) -> Result<(Array1<f64>, f64, Vec<f64>)> {
    use linfa_linalg::cholesky::SolveC;
    let (n, d) = x.dim();
    // Rows with the constant feature appended.
    let mut xa = Array2::from_elem((n, d + 1), bias);
    xa.slice_mut(ndarray::s![.., ..d]).assign(&x);
    let c = params.c;
    let objective = |w: &Array1<f64>, margins: &Array1<f64>| {
        0.5 * w.dot(w)
            + c * margins
                .iter()
                .map(|&m| (1.0 - m).max(0.0).powi(2))
                .sum::<f64>()
    };
    let margins_of = |w: &Array1<f64>| -> Array1<f64> {
        let mut m = xa.dot(w);
        m.iter_mut().zip(y).for_each(|(m, y)| *m *= y);
        m
    };
    let mut w = Array1::<f64>::zeros(d + 1);
    let mut margins = margins_of(&w);
    let mut f = objective(&w, &margins);
    let mut values = vec![f];
    let mut first_norm = None;
    for _ in 0..params.max_iter {
        // Gradient and Hessian over the rows inside the margin.
        let active: Vec<usize> = (0..n).filter(|&i| margins[i] < 1.0).collect();
        let mut grad = w.clone();
        let mut hess = Array2::<f64>::eye(d + 1);
        let mut rows = Array2::<f64>::zeros((active.len(), d + 1));
        for (r, &i) in active.iter().enumerate() {
            let row = xa.row(i);
            grad.scaled_add(-2.0 * c * (1.0 - margins[i]) * y[i], &row);
            rows.row_mut(r).assign(&row);
        }
        hess += &(rows.t().dot(&rows) * (2.0 * c));
        let norm = grad.dot(&grad).sqrt();
        let first = *first_norm.get_or_insert(norm);
        if norm <= params.tol * first || norm == 0.0 {
            break;
        }
        let step = hess
            .solvec(&(-&grad).insert_axis(Axis(1)))
            .map_err(|_| Error::Fit("the Newton system is singular: scale the features".into()))?
            .column(0)
            .to_owned();
        // Backtracking line search (Armijo).
        let slope = grad.dot(&step);
        let mut t = 1.0;
        loop {
            let candidate = &w + &(&step * t);
            let candidate_margins = margins_of(&candidate);
            let candidate_f = objective(&candidate, &candidate_margins);
            if candidate_f <= f + 0.01 * t * slope || t < 1e-10 {
                w = candidate;
                margins = candidate_margins;
                f = candidate_f;
                values.push(f);
                break;
            }
            t *= 0.5;
        }
    }
    if w.iter().any(|v| !v.is_finite()) {
        return Err(Error::Fit("the solver diverged: scale the features".into()));
    }
    let b = w[d];
    Ok((w.slice(ndarray::s![..d]).to_owned(), b, values))
}

/// Dual coordinate descent for one binary problem; returns the weights, the weight of the
/// constant feature, and the dual objective `½αᵀQ̄α − Σα` (liblinear's "objective value") at
/// the start and after each pass.
fn solve(
    x: ArrayView2<'_, f64>,
    y: &[f64],
    norms: &[f64],
    bias: f64,
    params: &LinearSvcParams,
    order: &mut [usize],
    mut random: impl FnMut() -> u64,
) -> Result<(Array1<f64>, f64, Vec<f64>)> {
    let diag = 0.5 / params.c;
    let mut alpha = vec![0.0; y.len()];
    let mut w = Array1::<f64>::zeros(x.ncols());
    let mut b = 0.0;
    // αᵀQα is ‖w‖² with the constant feature's weight; Q̄ adds `diag` to Q's diagonal.
    let dual_objective = |w: &Array1<f64>, b: f64, alpha: &[f64]| {
        0.5 * (w.dot(w) + b * b)
            + alpha
                .iter()
                .map(|a| a * (0.5 * diag * a - 1.0))
                .sum::<f64>()
    };
    let mut values = vec![0.0];
    for _ in 0..params.max_iter {
        // Visit rows in a fresh random order each pass (Fisher-Yates).
        for i in (1..order.len()).rev() {
            order.swap(i, (random() % (i as u64 + 1)) as usize);
        }
        let (mut pg_max, mut pg_min) = (f64::NEG_INFINITY, f64::INFINITY);
        for &i in order.iter() {
            let row: ArrayView1<'_, f64> = x.row(i);
            let g = y[i] * (row.dot(&w) + b * bias) - 1.0 + alpha[i] * diag;
            let pg = if alpha[i] == 0.0 { g.min(0.0) } else { g };
            pg_max = pg_max.max(pg);
            pg_min = pg_min.min(pg);
            if pg != 0.0 {
                let old = alpha[i];
                alpha[i] = (alpha[i] - g / (norms[i] + diag)).max(0.0);
                let step = (alpha[i] - old) * y[i];
                w.scaled_add(step, &row);
                b += step * bias;
            }
        }
        values.push(dual_objective(&w, b, &alpha));
        if pg_max - pg_min < params.tol {
            return Ok((w, b, values));
        }
    }
    // As liblinear, the last iterate is kept; a loose one shows in the model's accuracy.
    if w.iter().any(|v| !v.is_finite()) {
        return Err(Error::Fit("the solver diverged: scale the features".into()));
    }
    Ok((w, b, values))
}

/// A fitted [`LinearSvc`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FittedLinearSvc {
    /// Weights, one row per binary problem (one for two classes; else one per class).
    pub coef: Array2<f64>,
    /// Intercepts, one per binary problem.
    pub intercept: Array1<f64>,
    /// The classes.
    pub classes: ClassLabels,
    /// The hyperparameters it was fitted with.
    pub params: LinearSvcParams,
    /// The primal objective, summed over the binary problems, at the start and after each
    /// Newton step, where the primal was solved (more rows than features); else empty.
    pub objective: Vec<f64>,
    /// The dual objective, summed over the binary problems, at the start and after each
    /// pass of coordinate descent, where the dual was solved; else empty.
    pub dual_objective: Vec<f64>,
}

impl FittedLinearSvc {
    /// Signed distance of each row to each class's hyperplane, rows × classes; for two
    /// classes the columns are `-s, s` with `s` scikit-learn's one-column decision function.
    pub fn decision_function(&self, x: ArrayView2<'_, f64>) -> Array2<f64> {
        let scores = x.dot(&self.coef.t()) + &self.intercept;
        if self.classes.len() == 2 {
            let s = scores.column(0);
            ndarray::stack(Axis(1), &[(-&s).view(), s]).expect("same length")
        } else {
            scores
        }
    }

    /// The predicted class of each row, as text.
    pub fn predict(&self, x: ArrayView2<'_, f64>) -> Vec<String> {
        argmax_rows(&self.decision_function(x))
            .into_iter()
            .map(|i| self.classes.name(i))
            .collect()
    }
}

impl Fitted for FittedLinearSvc {
    fn predict_rows(&self, x: ArrayView2<'_, f64>) -> Predictions {
        Predictions::Classes(argmax_rows(&self.decision_function(x)))
    }

    fn scores(&self, x: ArrayView2<'_, f64>) -> Array2<f64> {
        self.decision_function(x)
    }

    /// `objective` by Newton step, or `dual_objective` by pass, from step 0 (the start).
    fn curves(&self) -> Vec<Curve> {
        [
            ("objective", &self.objective),
            ("dual_objective", &self.dual_objective),
        ]
        .into_iter()
        .filter(|(_, values)| !values.is_empty())
        .map(|(name, values)| Curve {
            name: name.into(),
            points: (0..).zip(values.iter().copied()).collect(),
        })
        .collect()
    }
}

impl Export for FittedLinearSvc {
    fn algorithm(&self) -> &str {
        LinearSvcParams::ALGORITHM
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

    /// `probabilities` holds the decision function, as skl2onnx writes a `LinearSVC`: it has
    /// no probabilities.
    fn write(&self, g: &mut Graph, x: &str) {
        // For two classes, the weights of `-s` and `s`, so one Gemm gives both columns.
        let (coef, intercept) = if self.classes.len() == 2 {
            let w = self.coef.row(0);
            let coef = ndarray::stack(Axis(0), &[(-&w).view(), w]).expect("same length");
            let b = self.intercept[0];
            (coef, Array1::from(vec![-b, b]))
        } else {
            (self.coef.clone(), self.intercept.clone())
        };
        let (k, d) = coef.dim();
        let w: Vec<f32> = coef.iter().map(|&v| v as f32).collect();
        let b: Vec<f32> = intercept.iter().map(|&v| v as f32).collect();
        let w = g.constant_f32("coef", &[k as u64, d as u64], w);
        let b = g.constant_f32("intercept", &[k as u64], b);
        g.node(
            "Gemm",
            &[x, &w, &b],
            &["decision"],
            vec![("transB", Attr::Int(1))],
        );
        classifier_outputs(g, &self.classes, "decision", false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both solvers reach the same optimum of the same objective.
    #[test]
    fn primal_newton_and_dual_coordinate_descent_agree() {
        let x = ndarray::array![
            [0.0, 1.0, 0.5],
            [1.0, 0.2, 0.1],
            [2.0, 2.5, 1.0],
            [3.0, 0.1, 2.0],
            [0.5, 3.0, 0.2],
            [2.5, 1.5, 1.5],
            [1.5, 0.5, 2.5],
            [0.2, 2.2, 0.9]
        ];
        let y = [1.0, -1.0, 1.0, -1.0, 1.0, -1.0, -1.0, 1.0];
        let params = LinearSvcParams {
            tol: 1e-10,
            max_iter: 100_000,
            ..LinearSvc::params()
        };
        let (w1, b1, primal) = newton(x.view(), &y, 1.0, &params).unwrap();
        let norms: Vec<f64> = x.rows().into_iter().map(|r| r.dot(&r) + 1.0).collect();
        let mut order: Vec<usize> = (0..y.len()).collect();
        let mut state = 7u64;
        let (w2, b2, dual) = solve(x.view(), &y, &norms, 1.0, &params, &mut order, || {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1);
            state >> 11
        })
        .unwrap();
        for (a, b) in w1.iter().chain([&b1]).zip(w2.iter().chain([&b2])) {
            assert!((a - b).abs() < 1e-6, "newton {w1} {b1} vs dual {w2} {b2}");
        }
        // Both objectives fall step by step, and at the optimum the primal's is minus the
        // dual's (no duality gap).
        for values in [&primal, &dual] {
            assert!(values.len() > 2, "{values:?}");
            assert!(
                values.windows(2).all(|w| w[1] <= w[0] + 1e-12),
                "{values:?}"
            );
        }
        let (p, d) = (*primal.last().unwrap(), *dual.last().unwrap());
        assert!((p + d).abs() < 1e-6 * p, "primal {p} dual {d}");
    }

    /// The curve has a point per iteration from the start, and its last value is the
    /// fitted model's objective: ½‖w‖² + C·Σ max(0, 1 − y·f(x))² over the binary problems.
    #[test]
    fn the_objective_curve_ends_at_the_fitted_models_objective() {
        let x = Array2::from_shape_fn((90, 2), |(i, j)| {
            ((i * 7 + j * 13) % 11) as f64 / 4.0 + (i % 3) as f64 * if j == 0 { 1.0 } else { 0.5 }
        });
        let cells: Vec<String> = (0..90).map(|i| format!("c{}", i % 3)).collect();
        let cells: Vec<&str> = cells.iter().map(String::as_str).collect();
        let y = ClassTarget::from_cells(&cells).unwrap();
        let m = LinearSvc::params().fit(x.view(), &y).unwrap();
        assert!(
            m.dual_objective.is_empty(),
            "more rows than features: primal"
        );
        let curves = Fitted::curves(&m);
        assert_eq!(curves.len(), 1);
        assert_eq!(curves[0].name, "objective");
        let points = &curves[0].points;
        assert_eq!(points[0], (0, 90.0 * 3.0), "C·n per problem at w = 0");
        assert!(points.windows(2).all(|w| w[1].1 <= w[0].1), "{points:?}");
        let scores = x.dot(&m.coef.t()) + &m.intercept;
        let expected: f64 = (0..3)
            .map(|p| {
                let w = m.coef.row(p);
                let hinge: f64 = (0..90)
                    .map(|i| {
                        let sign = if y.indices[i] == p { 1.0 } else { -1.0 };
                        (1.0 - sign * scores[[i, p]]).max(0.0).powi(2)
                    })
                    .sum();
                0.5 * (w.dot(&w) + m.intercept[p].powi(2)) + hinge
            })
            .sum();
        let last = points.last().unwrap().1;
        assert!(
            (last - expected).abs() < 1e-9 * expected,
            "{last} vs {expected}"
        );
    }
}
