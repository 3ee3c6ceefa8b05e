//! Linear regression and its penalised forms: ordinary least squares (the minimum-norm
//! least-squares solution by SVD with `linfa-linalg`, as scipy's `lstsq` gives scikit-learn,
//! so collinear features such as one-hot columns beside an intercept fit), ridge
//! (its closed form, solved by Cholesky with `linfa-linalg`), lasso and elastic net
//! (coordinate descent, `linfa-elasticnet`, whose objective is scikit-learn's:
//! `1/(2n)·‖y − Xw‖² + α·l1_ratio·‖w‖₁ + α/2·(1 − l1_ratio)·‖w‖²`).

use crate::catalog::{Estimator, Fitted, Predictions};
use crate::check::check_data;
use crate::params::{self, Params};
use crate::{Error, Export, Result, Task};
use linfa::prelude::*;
use ndarray::{Array1, ArrayView2, Axis};
use serde::{Deserialize, Serialize};
use skiff_onnx::{Attr, Dim, ElemType, Graph};

/// Ordinary least squares (scikit-learn's `LinearRegression`).
///
/// ```
/// use skiff_learn::LinearRegression;
/// use ndarray::array;
///
/// let x = array![[0.0], [1.0], [2.0]];
/// let model = LinearRegression::params().fit(x.view(), &[1.0, 3.0, 5.0]).unwrap();
/// assert!((model.predict(array![[3.0]].view())[0] - 7.0).abs() < 1e-9);
/// ```
pub struct LinearRegression;

/// Hyperparameters of [`LinearRegression`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinearRegressionParams {
    /// Fit an intercept (default true).
    pub fit_intercept: bool,
}

/// L2-penalised least squares, `‖y − Xw‖² + α‖w‖²` (scikit-learn's `Ridge`).
///
/// ```
/// use skiff_learn::Ridge;
/// use ndarray::array;
///
/// let x = array![[0.0], [1.0], [2.0], [3.0]];
/// let model = Ridge::params().alpha(0.1).fit(x.view(), &[0.0, 2.0, 4.0, 6.0]).unwrap();
/// assert!(model.coef[0] > 1.9 && model.coef[0] < 2.0);
/// ```
pub struct Ridge;

/// Hyperparameters of [`Ridge`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RidgeParams {
    /// Penalty strength, 0 or more (default 1.0).
    pub alpha: f64,
    /// Fit an intercept, not penalised (default true).
    pub fit_intercept: bool,
}

/// L1-penalised least squares (scikit-learn's `Lasso`).
///
/// ```
/// use skiff_learn::Lasso;
/// use ndarray::array;
///
/// let x = array![[0.0, 5.0], [1.0, 5.0], [2.0, 5.1], [3.0, 4.9]];
/// let model = Lasso::params().alpha(0.01).fit(x.view(), &[0.0, 1.0, 2.0, 3.0]).unwrap();
/// assert!((model.coef[0] - 1.0).abs() < 0.05);
/// ```
pub struct Lasso;

/// Hyperparameters of [`Lasso`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LassoParams {
    /// Penalty strength, 0 or more (default 1.0).
    pub alpha: f64,
    /// Fit an intercept (default true).
    pub fit_intercept: bool,
    /// Most coordinate-descent passes (default 1000).
    pub max_iter: u32,
    /// Stop when the duality gap falls below this (default 1e-4).
    pub tol: f64,
}

/// L1- and L2-penalised least squares (scikit-learn's `ElasticNet`).
///
/// ```
/// use skiff_learn::ElasticNet;
/// use ndarray::array;
///
/// let x = array![[0.0], [1.0], [2.0], [3.0]];
/// let model = ElasticNet::params().alpha(0.001).fit(x.view(), &[0.0, 1.0, 2.0, 3.0]).unwrap();
/// assert!((model.predict(x.view())[3] - 3.0).abs() < 0.05);
/// ```
pub struct ElasticNet;

/// Hyperparameters of [`ElasticNet`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ElasticNetParams {
    /// Penalty strength, 0 or more (default 1.0).
    pub alpha: f64,
    /// Share of the L1 penalty, 0 to 1 (default 0.5).
    pub l1_ratio: f64,
    /// Fit an intercept (default true).
    pub fit_intercept: bool,
    /// Most coordinate-descent passes (default 1000).
    pub max_iter: u32,
    /// Stop when the duality gap falls below this (default 1e-4).
    pub tol: f64,
}

impl Default for LinearRegressionParams {
    fn default() -> Self {
        LinearRegressionParams {
            fit_intercept: true,
        }
    }
}

impl Default for RidgeParams {
    fn default() -> Self {
        RidgeParams {
            alpha: 1.0,
            fit_intercept: true,
        }
    }
}

impl Default for LassoParams {
    fn default() -> Self {
        LassoParams {
            alpha: 1.0,
            fit_intercept: true,
            max_iter: 1000,
            tol: 1e-4,
        }
    }
}

impl Default for ElasticNetParams {
    fn default() -> Self {
        ElasticNetParams {
            alpha: 1.0,
            l1_ratio: 0.5,
            fit_intercept: true,
            max_iter: 1000,
            tol: 1e-4,
        }
    }
}

impl LinearRegression {
    /// Hyperparameters with scikit-learn's defaults.
    pub fn params() -> LinearRegressionParams {
        LinearRegressionParams::default()
    }
}

impl Ridge {
    /// Hyperparameters with scikit-learn's defaults.
    pub fn params() -> RidgeParams {
        RidgeParams::default()
    }
}

impl Lasso {
    /// Hyperparameters with scikit-learn's defaults.
    pub fn params() -> LassoParams {
        LassoParams::default()
    }
}

impl ElasticNet {
    /// Hyperparameters with scikit-learn's defaults.
    pub fn params() -> ElasticNetParams {
        ElasticNetParams::default()
    }
}

impl RidgeParams {
    /// Sets `alpha`.
    pub fn alpha(mut self, alpha: f64) -> Self {
        self.alpha = alpha;
        self
    }
}

impl LassoParams {
    /// Sets `alpha`.
    pub fn alpha(mut self, alpha: f64) -> Self {
        self.alpha = alpha;
        self
    }
}

impl ElasticNetParams {
    /// Sets `alpha`.
    pub fn alpha(mut self, alpha: f64) -> Self {
        self.alpha = alpha;
        self
    }

    /// Sets `l1_ratio`.
    pub fn l1_ratio(mut self, l1_ratio: f64) -> Self {
        self.l1_ratio = l1_ratio;
        self
    }
}

impl Params for LinearRegressionParams {
    const ALGORITHM: &'static str = "linear-regression";
    fn check(&self) -> Result<()> {
        Ok(())
    }
}

impl Params for RidgeParams {
    const ALGORITHM: &'static str = "ridge";
    fn check(&self) -> Result<()> {
        params::non_negative("alpha", self.alpha)
    }
}

impl Params for LassoParams {
    const ALGORITHM: &'static str = "lasso";
    fn check(&self) -> Result<()> {
        params::non_negative("alpha", self.alpha)?;
        check_iterations(self.max_iter, self.tol)
    }
}

impl Params for ElasticNetParams {
    const ALGORITHM: &'static str = "elastic-net";
    fn check(&self) -> Result<()> {
        params::non_negative("alpha", self.alpha)?;
        if !(0.0..=1.0).contains(&self.l1_ratio) {
            return Err(params::invalid(
                "l1_ratio",
                self.l1_ratio,
                "a number from 0 to 1",
            ));
        }
        check_iterations(self.max_iter, self.tol)
    }
}

fn check_iterations(max_iter: u32, tol: f64) -> Result<()> {
    if max_iter == 0 {
        return Err(params::invalid("max_iter", 0, "a positive integer"));
    }
    params::positive("tol", tol)
}

/// Checks the data and hyperparameters before any fit.
fn prepare<P: Params>(params: &P, x: ArrayView2<'_, f64>, y: &[f64]) -> Result<()> {
    params.check()?;
    check_data(x, y.len())?;
    if y.iter().any(|v| !v.is_finite()) {
        return Err(Error::Target(
            "the target holds NaN or infinite values: clean or drop those rows".into(),
        ));
    }
    Ok(())
}

impl LinearRegressionParams {
    /// Fits rows `x` to targets `y`.
    pub fn fit(&self, x: ArrayView2<'_, f64>, y: &[f64]) -> Result<FittedLinearModel> {
        use linfa_linalg::svd::SVD;
        prepare(self, x, y)?;
        let data = centred(x, y, self.fit_intercept);
        let (u, sigma, vt) = data
            .x
            .svd(true, true)
            .map_err(|e| Error::Fit(format!("least squares: {e}")))?;
        let (u, vt) = (u.expect("asked for U"), vt.expect("asked for Vt"));
        // Singular values below numpy's default cut-off count as zero: the solution of least
        // norm among the equally good ones, as lstsq gives for collinear features.
        let largest = sigma.iter().copied().fold(0.0, f64::max);
        let cutoff = f64::EPSILON * x.nrows().max(x.ncols()) as f64 * largest;
        let projected = u.t().dot(&data.y);
        let scaled: Array1<f64> = projected
            .iter()
            .zip(&sigma)
            .map(|(p, &s)| if s > cutoff { p / s } else { 0.0 })
            .collect();
        let coef = vt.t().dot(&scaled);
        let intercept = data.intercept(&coef);
        FittedLinearModel::new(Self::ALGORITHM, coef, intercept, self.to_json())
    }
}

impl RidgeParams {
    /// Fits rows `x` to targets `y`: solves `(XᵀX + αI) w = Xᵀy` on centred data.
    pub fn fit(&self, x: ArrayView2<'_, f64>, y: &[f64]) -> Result<FittedLinearModel> {
        use linfa_linalg::cholesky::SolveC;
        prepare(self, x, y)?;
        let data = centred(x, y, self.fit_intercept);
        let mut gram = data.x.t().dot(&data.x);
        gram.diag_mut().mapv_inplace(|d| d + self.alpha);
        let rhs = data.x.t().dot(&data.y).insert_axis(Axis(1));
        let coef = gram.solvec(&rhs).map_err(|_| {
            Error::Fit("the features are collinear: use alpha > 0 or drop copied features".into())
        })?;
        let coef = coef.column(0).to_owned();
        let intercept = data.intercept(&coef);
        FittedLinearModel::new(Self::ALGORITHM, coef, intercept, self.to_json())
    }
}

/// Centres `x` and `y` when fitting an intercept, as scikit-learn does; the intercept is then
/// `mean(y) − mean(x)·w`.
fn centred(x: ArrayView2<'_, f64>, y: &[f64], fit_intercept: bool) -> Centred {
    let (x_mean, y_mean) = if fit_intercept {
        (
            x.mean_axis(Axis(0)).expect("rows"),
            y.iter().sum::<f64>() / y.len() as f64,
        )
    } else {
        (Array1::zeros(x.ncols()), 0.0)
    };
    Centred {
        x: &x - &x_mean,
        y: y.iter().map(|v| v - y_mean).collect(),
        x_mean,
        y_mean,
    }
}

struct Centred {
    x: ndarray::Array2<f64>,
    y: Array1<f64>,
    x_mean: Array1<f64>,
    y_mean: f64,
}

impl Centred {
    fn intercept(&self, coef: &Array1<f64>) -> f64 {
        self.y_mean - self.x_mean.dot(coef)
    }
}

fn elastic_net(
    algorithm: &'static str,
    hyperparameters: serde_json::Value,
    x: ArrayView2<'_, f64>,
    y: &[f64],
    (alpha, l1_ratio, fit_intercept, max_iter, tol): (f64, f64, bool, u32, f64),
) -> Result<FittedLinearModel> {
    // linfa-elasticnet centres y but not x, so its intercept is wrong for uncentred
    // features: centre both here and fit without its intercept.
    let data = centred(x, y, fit_intercept);
    let dataset = Dataset::new(data.x.clone(), data.y.clone());
    let fitted = linfa_elasticnet::ElasticNet::params()
        .penalty(alpha)
        .l1_ratio(l1_ratio)
        .with_intercept(false)
        .max_iterations(max_iter)
        .tolerance(tol)
        .fit(&dataset)
        .map_err(|e| Error::Fit(e.to_string()))?;
    let coef = fitted.hyperplane().to_owned();
    let intercept = data.intercept(&coef);
    FittedLinearModel::new(algorithm, coef, intercept, hyperparameters)
}

impl LassoParams {
    /// Fits rows `x` to targets `y`.
    pub fn fit(&self, x: ArrayView2<'_, f64>, y: &[f64]) -> Result<FittedLinearModel> {
        prepare(self, x, y)?;
        elastic_net(
            Self::ALGORITHM,
            self.to_json(),
            x,
            y,
            (self.alpha, 1.0, self.fit_intercept, self.max_iter, self.tol),
        )
    }
}

impl ElasticNetParams {
    /// Fits rows `x` to targets `y`.
    pub fn fit(&self, x: ArrayView2<'_, f64>, y: &[f64]) -> Result<FittedLinearModel> {
        prepare(self, x, y)?;
        elastic_net(
            Self::ALGORITHM,
            self.to_json(),
            x,
            y,
            (
                self.alpha,
                self.l1_ratio,
                self.fit_intercept,
                self.max_iter,
                self.tol,
            ),
        )
    }
}

macro_rules! linear_estimator {
    ($params:ty, $summary:literal, $penalised:literal) => {
        impl Estimator for $params {
            const TASK: Task = Task::Regression;
            const SUMMARY: &'static str = $summary;
            const NEEDS_SCALING: bool = $penalised;
            type Model = FittedLinearModel;
            fn fit_values(&self, x: ArrayView2<'_, f64>, y: &[f64]) -> Result<FittedLinearModel> {
                self.fit(x, y)
            }
        }
    };
}

linear_estimator!(LinearRegressionParams, "Ordinary least squares", false);
linear_estimator!(
    RidgeParams,
    "Least squares with an L2 penalty (closed form)",
    true
);
linear_estimator!(
    LassoParams,
    "Least squares with an L1 penalty (coordinate descent)",
    true
);
linear_estimator!(
    ElasticNetParams,
    "Least squares with L1 and L2 penalties (coordinate descent)",
    true
);

/// A fitted linear regressor: `y = x·coef + intercept`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FittedLinearModel {
    /// Which estimator fitted it.
    pub algorithm: String,
    /// One coefficient per feature (scikit-learn `coef_`).
    pub coef: Array1<f64>,
    /// The intercept (scikit-learn `intercept_`).
    pub intercept: f64,
    /// The hyperparameters it was fitted with.
    pub hyperparameters: serde_json::Value,
}

impl FittedLinearModel {
    fn new(
        name: &'static str,
        coef: Array1<f64>,
        intercept: f64,
        hyperparameters: serde_json::Value,
    ) -> Result<FittedLinearModel> {
        if coef.iter().any(|v| !v.is_finite()) || !intercept.is_finite() {
            return Err(Error::Fit(
                "the solver diverged: scale the features (--scale standard)".into(),
            ));
        }
        Ok(FittedLinearModel {
            algorithm: name.into(),
            coef,
            intercept,
            hyperparameters,
        })
    }

    /// Predictions for rows `x`.
    pub fn predict(&self, x: ArrayView2<'_, f64>) -> Array1<f64> {
        x.dot(&self.coef) + self.intercept
    }

    /// R² of the predictions for `x` against `y`.
    pub fn score(&self, x: ArrayView2<'_, f64>, y: &[f64]) -> f64 {
        crate::metrics::r2(y, self.predict(x).as_slice().expect("contiguous"))
    }
}

impl Fitted for FittedLinearModel {
    fn predict_rows(&self, x: ArrayView2<'_, f64>) -> Predictions {
        Predictions::Values(self.predict(x).to_vec())
    }

    fn scores(&self, x: ArrayView2<'_, f64>) -> ndarray::Array2<f64> {
        self.predict(x).insert_axis(Axis(1))
    }
}

impl Export for FittedLinearModel {
    fn algorithm(&self) -> &str {
        &self.algorithm
    }

    fn hyperparameters(&self) -> serde_json::Value {
        self.hyperparameters.clone()
    }

    fn task(&self) -> Task {
        Task::Regression
    }

    fn n_features(&self) -> usize {
        self.coef.len()
    }

    fn write(&self, g: &mut Graph, x: &str) {
        let n = self.coef.len() as u64;
        let coef: Vec<f32> = self.coef.iter().map(|&v| v as f32).collect();
        let w = g.constant_f32("coef", &[n, 1], &coef);
        let b = g.constant_f32("intercept", &[1], &[self.intercept as f32]);
        g.node(
            "Gemm",
            &[x, &w, &b],
            &["variable"],
            vec![("beta", Attr::Float(1.0))],
        );
        g.output("variable", ElemType::Float, &[Dim::batch(), Dim::Fixed(1)]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array2, array};

    #[test]
    fn collinear_one_hot_columns_get_the_least_norm_solution() {
        // Two one-hot columns always sum to 1, the intercept's column: any shift between them
        // and the intercept fits as well; lstsq's answer splits it evenly.
        let x = array![
            [1.0, 0.0, 1.0],
            [0.0, 1.0, 2.0],
            [1.0, 0.0, 3.0],
            [0.0, 1.0, 5.0]
        ];
        let y = [3.0, 6.0, 7.0, 12.0];
        let model = LinearRegression::params().fit(x.view(), &y).unwrap();
        let coef = &model.coef;
        assert!((coef[0] + coef[1]).abs() < 1e-9, "{coef}");
        assert!((coef[1] - coef[0] - 1.0).abs() < 1e-9, "{coef}");
        assert!((coef[2] - 2.0).abs() < 1e-9, "{coef}");
        let predicted = model.predict(x.view());
        for (p, t) in predicted.iter().zip(y) {
            assert!((p - t).abs() < 1e-9, "{p} vs {t}");
        }
    }

    fn data() -> (Array2<f64>, Vec<f64>) {
        let x = array![
            [1.0, 2.0],
            [2.0, 1.0],
            [3.0, 4.0],
            [4.0, 3.0],
            [5.0, 6.0],
            [6.0, 5.5]
        ];
        let y = x
            .rows()
            .into_iter()
            .map(|r| 3.0 * r[0] - 2.0 * r[1] + 1.0)
            .collect();
        (x, y)
    }

    #[test]
    fn least_squares_recovers_exact_coefficients() {
        let (x, y) = data();
        for model in [
            LinearRegression::params().fit(x.view(), &y).unwrap(),
            Ridge::params().alpha(0.0).fit(x.view(), &y).unwrap(),
        ] {
            assert!((model.coef[0] - 3.0).abs() < 1e-9, "{:?}", model.coef);
            assert!((model.coef[1] + 2.0).abs() < 1e-9, "{:?}", model.coef);
            assert!((model.intercept - 1.0).abs() < 1e-9);
        }
    }

    #[test]
    fn penalties_shrink_the_coefficients() {
        let (x, y) = data();
        let norm = |m: &FittedLinearModel| m.coef.iter().map(|c| c.abs()).sum::<f64>();
        let ols = norm(&LinearRegression::params().fit(x.view(), &y).unwrap());
        let ridge = norm(&Ridge::params().alpha(10.0).fit(x.view(), &y).unwrap());
        let lasso = norm(&Lasso::params().alpha(0.5).fit(x.view(), &y).unwrap());
        let net = norm(&ElasticNet::params().alpha(0.5).fit(x.view(), &y).unwrap());
        assert!(
            ridge < ols && lasso < ols && net < ols,
            "{ols} {ridge} {lasso} {net}"
        );
    }

    #[test]
    fn bad_hyperparameters_and_targets_are_errors() {
        let (x, y) = data();
        assert!(Ridge::params().alpha(-1.0).fit(x.view(), &y).is_err());
        assert!(
            ElasticNet::params()
                .l1_ratio(1.5)
                .fit(x.view(), &y)
                .is_err()
        );
        let mut bad = y.clone();
        bad[0] = f64::NAN;
        let err = Ridge::params().fit(x.view(), &bad).unwrap_err();
        assert!(matches!(err, Error::Target(_)), "{err}");
    }
}
