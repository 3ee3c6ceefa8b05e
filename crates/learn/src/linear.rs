//! Linear regression and its penalised forms: ordinary least squares (the minimum-norm
//! least-squares solution by QR then SVD with `linfa-linalg`, as scipy's `lstsq` gives scikit-learn,
//! so collinear features such as one-hot columns beside an intercept fit), ridge
//! (its closed form, solved by Cholesky with `linfa-linalg`), lasso and elastic net
//! (scikit-learn's objective `1/(2n)·‖y − Xw‖² + α·l1_ratio·‖w‖₁ + α/2·(1 − l1_ratio)·‖w‖²`,
//! by its cyclic coordinate descent on the Gram matrix of the centred rows, with its
//! duality-gap stopping rule).

use crate::catalog::{Estimator, Fitted, Predictions};
use crate::check::check_data;
use crate::params::{self, Params};
use crate::{Error, Export, Result, Task};
use ndarray::{Array1, Array2, ArrayView2, Axis, s};
use serde::{Deserialize, Serialize};
use skiff_onnx::{Attr, Dim, ElemType, Graph};
use std::ops::Range;

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
        prepare(self, x, y)?;
        let (x_mean, y_mean) = means(x, y, self.fit_intercept);
        let (projected, sigma, vt) = singular_projection(x, y, &x_mean, y_mean)?;
        // Singular values below numpy's default cut-off count as zero: the solution of least
        // norm among the equally good ones, as lstsq gives for collinear features.
        let largest = sigma.iter().copied().fold(0.0, f64::max);
        let cutoff = f64::EPSILON * x.nrows().max(x.ncols()) as f64 * largest;
        let scaled: Array1<f64> = projected
            .iter()
            .zip(&sigma)
            .map(|(p, &s)| if s > cutoff { p / s } else { 0.0 })
            .collect();
        let coef = vt.t().dot(&scaled);
        let intercept = y_mean - x_mean.dot(&coef);
        FittedLinearModel::new(Self::ALGORITHM, coef, intercept, self.to_json())
    }
}

impl RidgeParams {
    /// Fits rows `x` to targets `y`: solves `(XᵀX + αI) w = Xᵀy` on centred data.
    pub fn fit(&self, x: ArrayView2<'_, f64>, y: &[f64]) -> Result<FittedLinearModel> {
        use linfa_linalg::cholesky::SolveC;
        prepare(self, x, y)?;
        let (x_mean, y_mean) = means(x, y, self.fit_intercept);
        let Gram { mut xtx, xty, .. } = Gram::centred(x, y, &x_mean, y_mean);
        xtx.diag_mut().mapv_inplace(|d| d + self.alpha);
        let coef = xtx.solvec(&xty.insert_axis(Axis(1))).map_err(|_| {
            Error::Fit("the features are collinear: use alpha > 0 or drop copied features".into())
        })?;
        let coef = coef.column(0).to_owned();
        let intercept = y_mean - x_mean.dot(&coef);
        FittedLinearModel::new(Self::ALGORITHM, coef, intercept, self.to_json())
    }
}

/// The singular value decomposition `x = U·diag(σ)·Vᵀ` as `(Uᵀy, σ, Vᵀ)`. With more rows than
/// columns, `x` is first reduced to its `p × p` triangle `R` by Householder QR (`x = QR`, so
/// `U = Q·U_R`): the SVD then costs `p³` rather than a decomposition of every row. The QR runs
/// on `[x | y]`, so `Qᵀy` comes out as `R`'s last column, with no `Q` formed; blocks of rows
/// are reduced in parallel and their triangles, stacked, once more (a tall-skinny QR).
fn singular_projection(
    x: ArrayView2<'_, f64>,
    y: &[f64],
    x_mean: &Array1<f64>,
    y_mean: f64,
) -> Result<(Array1<f64>, Array1<f64>, Array2<f64>)> {
    use linfa_linalg::svd::SVD;
    use ndarray::ShapeBuilder;
    use rayon::prelude::*;
    let (n, p) = x.dim();
    let (a, rhs) = if n > p {
        // The project's fixed row blocks, so the answer does not depend on the thread count;
        // a block with no more rows than the triangle stands for itself.
        let triangles = crate::blocks::rows(n, 1024)
            .into_par_iter()
            .map(|rows| {
                let mut augmented = Array2::zeros((rows.len(), p + 1).f());
                ndarray::Zip::from(augmented.slice_mut(s![.., ..p]))
                    .and(x.slice(s![rows.clone(), ..]))
                    .and_broadcast(x_mean)
                    .for_each(|a, &v, &m| *a = v - m);
                for (a, v) in augmented.column_mut(p).iter_mut().zip(&y[rows]) {
                    *a = v - y_mean;
                }
                if augmented.nrows() > p + 1 {
                    triangle(augmented)
                } else {
                    Ok(augmented)
                }
            })
            .collect::<Result<Vec<_>>>()?;
        let views: Vec<_> = triangles.iter().map(|r| r.view()).collect();
        let r = triangle(ndarray::concatenate(Axis(0), &views).expect("equal widths"))?;
        (
            r.slice(s![..p, ..p]).to_owned(),
            r.slice(s![..p, p]).to_owned(),
        )
    } else {
        let y = Array1::from_iter(y.iter().map(|v| v - y_mean));
        (&x - x_mean, y)
    };
    let (u, sigma, vt) = a.svd(true, true).map_err(least_squares_failed)?;
    let (u, vt) = (u.expect("asked for U"), vt.expect("asked for Vt"));
    Ok((u.t().dot(&rhs), sigma, vt))
}

/// `R` of the Householder QR of `a` (at least as many rows as columns).
fn triangle(a: Array2<f64>) -> Result<Array2<f64>> {
    use linfa_linalg::qr::QRInto;
    Ok(a.qr_into().map_err(least_squares_failed)?.into_r())
}

fn least_squares_failed(e: linfa_linalg::LinalgError) -> Error {
    Error::Fit(format!("least squares: {e}"))
}

fn elastic_net(
    algorithm: &'static str,
    hyperparameters: serde_json::Value,
    x: ArrayView2<'_, f64>,
    y: &[f64],
    (alpha, l1_ratio, fit_intercept, max_iter, tol): (f64, f64, bool, u32, f64),
) -> Result<FittedLinearModel> {
    let n = x.nrows() as f64;
    let (x_mean, y_mean) = means(x, y, fit_intercept);
    let gram = Gram::centred(x, y, &x_mean, y_mean);
    let fit = gram.coordinate_descent(
        alpha * l1_ratio * n,
        alpha * (1.0 - l1_ratio) * n,
        max_iter,
        tol,
    );
    let intercept = y_mean - x_mean.dot(&fit.coef);
    let mut model = FittedLinearModel::new(algorithm, fit.coef, intercept, hyperparameters)?;
    if !fit.converged {
        model.warning = Some(format!(
            "{algorithm}: coordinate descent did not converge in {max_iter} passes (duality gap \
             {:.3e}, tolerance {:.3e}); the model is kept as it stands: scale the features \
             (--scale standard), raise max_iter (--set max_iter=10000) or alpha",
            fit.gap, fit.tolerance
        ));
    }
    Ok(model)
}

/// The column means of `x` and the mean of `y`, or zeros without an intercept: the data are
/// centred on them, as scikit-learn does, and the intercept is then `mean(y) − mean(x)·w`.
fn means(x: ArrayView2<'_, f64>, y: &[f64], fit_intercept: bool) -> (Array1<f64>, f64) {
    if fit_intercept {
        (
            x.mean_axis(Axis(0)).expect("rows"),
            y.iter().sum::<f64>() / y.len() as f64,
        )
    } else {
        (Array1::zeros(x.ncols()), 0.0)
    }
}

/// `XᵀX`, `Xᵀy` and `yᵀy` of the centred data, the normal equations' view of least squares.
struct Gram {
    xtx: Array2<f64>,
    xty: Array1<f64>,
    yty: f64,
}

/// The outcome of [`Gram::coordinate_descent`].
struct Descent {
    coef: Array1<f64>,
    converged: bool,
    gap: f64,
    tolerance: f64,
}

impl Gram {
    /// Sums over blocks of rows, each centred on its own, so the centred rows are never
    /// copied whole.
    fn centred(x: ArrayView2<'_, f64>, y: &[f64], x_mean: &Array1<f64>, y_mean: f64) -> Gram {
        let p = x.ncols();
        let block = |rows: Range<usize>| {
            let ys: Array1<f64> = y[rows.clone()].iter().map(|v| v - y_mean).collect();
            let rows = &x.slice(s![rows, ..]) - x_mean;
            Gram {
                xtx: rows.t().dot(&rows),
                xty: rows.t().dot(&ys),
                yty: ys.dot(&ys),
            }
        };
        let zero = Gram {
            xtx: Array2::zeros((p, p)),
            xty: Array1::zeros(p),
            yty: 0.0,
        };
        // Blocks of 1,024 rows: a centred copy of one block at a time.
        crate::blocks::fold(x.nrows(), 1024, block, zero, |mut total, part| {
            total.xtx += &part.xtx;
            total.xty += &part.xty;
            total.yty += part.yty;
            total
        })
    }

    /// scikit-learn's `enet_coordinate_descent_gram`: cyclic coordinate descent on
    /// `½‖y − Xw‖² + l1‖w‖₁ + ½·l2‖w‖²`, checking the duality gap whenever a pass moves the
    /// weights by less than `tol` of their size, and stopping once the gap is below
    /// `tol·‖y‖²`.
    fn coordinate_descent(&self, l1: f64, l2: f64, max_iter: u32, tol: f64) -> Descent {
        let p = self.xty.len();
        let mut w = Array1::<f64>::zeros(p);
        // H = XᵀX·w, kept up to date as coordinates change.
        let mut h = Array1::<f64>::zeros(p);
        let tolerance = tol * self.yty;
        let mut gap = f64::INFINITY;
        for pass in 0..max_iter {
            let (mut w_max, mut dw_max) = (0.0_f64, 0.0_f64);
            for j in 0..p {
                let q_jj = self.xtx[[j, j]];
                if q_jj == 0.0 {
                    continue;
                }
                let old = w[j];
                if old != 0.0 {
                    h.scaled_add(-old, &self.xtx.row(j));
                }
                let rho = self.xty[j] - h[j];
                let new = rho.signum() * (rho.abs() - l1).max(0.0) / (q_jj + l2);
                w[j] = new;
                if new != 0.0 {
                    h.scaled_add(new, &self.xtx.row(j));
                }
                dw_max = dw_max.max((new - old).abs());
                w_max = w_max.max(new.abs());
            }
            if w_max == 0.0 || dw_max / w_max < tol || pass + 1 == max_iter {
                gap = self.duality_gap(&w, &h, l1, l2);
                if gap < tolerance {
                    return Descent {
                        coef: w,
                        converged: true,
                        gap,
                        tolerance,
                    };
                }
            }
        }
        Descent {
            coef: w,
            converged: false,
            gap,
            tolerance,
        }
    }

    /// The elastic net's duality gap at `w` (with `h = XᵀX·w`), as scikit-learn computes it.
    fn duality_gap(&self, w: &Array1<f64>, h: &Array1<f64>, l1: f64, l2: f64) -> f64 {
        let q_dot_w = w.dot(&self.xty);
        let dual_norm = self
            .xty
            .iter()
            .zip(h)
            .zip(w)
            .map(|((q, h), w)| (q - h - l2 * w).abs())
            .fold(0.0, f64::max);
        let residual = self.yty + w.dot(h) - 2.0 * q_dot_w;
        let (scale, mut gap) = if dual_norm > l1 {
            let scale = l1 / dual_norm;
            (scale, 0.5 * residual * (1.0 + scale * scale))
        } else {
            (1.0, residual)
        };
        let l1_norm: f64 = w.iter().map(|v| v.abs()).sum();
        gap += l1 * l1_norm - scale * self.yty
            + scale * q_dot_w
            + 0.5 * l2 * (1.0 + scale * scale) * w.dot(w);
        gap
    }
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
    /// What the user should know about the fit (a solver that did not converge).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
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
            warning: None,
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

    fn scores(&self, x: ArrayView2<'_, f64>) -> Array2<f64> {
        self.predict(x).insert_axis(Axis(1))
    }

    fn warnings(&self) -> Vec<String> {
        self.warning.iter().cloned().collect()
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
        let w = g.constant_f32("coef", &[n, 1], coef);
        let b = g.constant_f32("intercept", &[1], [self.intercept as f32]);
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
    fn least_squares_in_blocks_of_rows_agrees_with_one_block() {
        // Collinear columns too (the third is the sum of the first two): the least-norm
        // solution must not depend on how the rows were split between threads.
        let first_two =
            |i: usize, j: usize| ((i * (j + 2)) as f64 * [0.37, 1.3][j]).sin() * (j as f64 + 1.0);
        let x = Array2::from_shape_fn((2_000, 4), |(i, j)| match j {
            2 => first_two(i, 0) + first_two(i, 1),
            3 => (i as f64 * 0.011).powi(2),
            _ => first_two(i, j),
        });
        let y: Vec<f64> = x
            .rows()
            .into_iter()
            .enumerate()
            .map(|(i, r)| 2.0 * r[0] - r[1] + 0.5 * r[3] + 3.0 + (i as f64).sin() * 0.1)
            .collect();
        let fit = |threads: usize| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| LinearRegression::params().fit(x.view(), &y).unwrap())
        };
        let one = fit(1);
        for threads in [2, 3, 8] {
            let blocks = fit(threads);
            for (a, b) in one.coef.iter().zip(&blocks.coef) {
                assert!(
                    (a - b).abs() < 1e-9,
                    "{threads} threads: {} vs {}",
                    one.coef,
                    blocks.coef
                );
            }
            assert!((one.intercept - blocks.intercept).abs() < 1e-9);
        }
        // The least-norm split of the collinear part: equal shares of the sum column.
        assert!(
            (one.coef[0] - one.coef[1] - 3.0).abs() < 1e-2,
            "{}",
            one.coef
        );
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

    /// Correlated features far from the origin, with noise.
    fn noisy() -> (Array2<f64>, Vec<f64>) {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let x = Array2::from_shape_fn((5000, 6), |(_, j)| 100.0 * j as f64 + rng.random::<f64>());
        let mut x = x;
        let first = x.column(0).to_owned();
        x.column_mut(1).scaled_add(0.5, &first);
        let y = x
            .rows()
            .into_iter()
            .map(|r| 4.0 * r[0] - 3.0 * r[1] + 0.5 * r[3] + 7.0 + rng.random::<f64>() - 0.5)
            .collect();
        (x, y)
    }

    #[test]
    fn elastic_net_solutions_meet_the_optimality_conditions() {
        let (x, y) = noisy();
        let n = x.nrows() as f64;
        for (alpha, l1_ratio) in [(0.01, 1.0), (0.002, 0.5), (0.05, 0.2)] {
            let model = ElasticNetParams {
                alpha,
                l1_ratio,
                tol: 1e-10,
                max_iter: 100_000,
                ..ElasticNet::params()
            }
            .fit(x.view(), &y)
            .unwrap();
            assert!(model.warning.is_none(), "{:?}", model.warning);
            let residual = Array1::from(y.clone()) - model.predict(x.view());
            assert!(
                residual.sum().abs() < 1e-6 * n,
                "the intercept centres the residual"
            );
            // Subgradient of the objective: zero where a weight is non-zero, within the L1
            // penalty where it is zero.
            for (j, &w) in model.coef.iter().enumerate() {
                let gradient = x.column(j).dot(&residual) / n - alpha * (1.0 - l1_ratio) * w;
                let bound = alpha * l1_ratio;
                if w == 0.0 {
                    assert!(
                        gradient.abs() <= bound * (1.0 + 1e-6),
                        "{j}: {gradient} vs {bound}"
                    );
                } else {
                    let expected = bound * w.signum();
                    assert!(
                        (gradient - expected).abs() < 1e-6 * (1.0 + bound),
                        "{j}: {gradient} vs {expected}"
                    );
                }
            }
            assert!(
                model.coef.iter().any(|&w| w == 0.0) || l1_ratio < 1.0,
                "{}",
                model.coef
            );
        }
    }

    #[test]
    fn coordinate_descent_short_of_passes_says_so() {
        let (x, y) = noisy();
        let model = LassoParams {
            alpha: 0.001,
            max_iter: 2,
            tol: 1e-12,
            ..Lasso::params()
        }
        .fit(x.view(), &y)
        .unwrap();
        let warnings = Fitted::warnings(&model);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].contains("did not converge in 2 passes"),
            "{}",
            warnings[0]
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
