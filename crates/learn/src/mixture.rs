//! Gaussian mixtures, fitted by expectation-maximisation as scikit-learn fits them (k-means
//! initialisation, every covariance type in one EM).

use crate::catalog::{Curve, Estimator, Fitted, Predictions};
use crate::check::check_data;
use crate::classifier::argmax_rows;
use crate::params::{self, Params};
use crate::{Error, Export, Result, Task};
use ndarray::{Array1, Array2, Array3, ArrayView2, Axis, s};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use skiff_onnx::{Attr, Dim, ElemType, Graph};

/// A mixture of Gaussians (scikit-learn's `GaussianMixture`).
///
/// ```
/// use skiff_learn::GaussianMixture;
/// use ndarray::array;
///
/// let x = array![[0.0, 0.1], [0.2, 0.0], [0.1, 0.3], [5.0, 5.1], [5.2, 4.9], [4.9, 5.0]];
/// let model = GaussianMixture::params().n_components(2).random_state(Some(0)).fit(x.view()).unwrap();
/// let labels = model.predict(x.view());
/// assert_eq!(labels[0], labels[1]);
/// assert_ne!(labels[0], labels[3]);
/// ```
pub struct GaussianMixture;

/// The shape of each component's covariance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CovarianceType {
    /// A full covariance matrix per component.
    Full,
    /// One full covariance matrix shared by every component.
    Tied,
    /// A variance per feature and component.
    Diag,
    /// One variance per component.
    Spherical,
}

/// Hyperparameters of [`GaussianMixture`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GaussianMixtureParams {
    /// Number of components (default 1).
    pub n_components: usize,
    /// Covariance shape: `full` (default), `tied`, `diag` or `spherical`.
    pub covariance_type: CovarianceType,
    /// Stop when the log-likelihood gains less than this (default 1e-3).
    pub tol: f64,
    /// Added to the covariances' diagonals, for stability (default 1e-6).
    pub reg_covar: f64,
    /// Most EM iterations (default 100).
    pub max_iter: u64,
    /// Runs from different seeds; the best is kept (default 1).
    pub n_init: u64,
    /// Seed for the k-means initialisation; `None` draws one.
    pub random_state: Option<u64>,
}

impl Default for GaussianMixtureParams {
    fn default() -> Self {
        GaussianMixtureParams {
            n_components: 1,
            covariance_type: CovarianceType::Full,
            tol: 1e-3,
            reg_covar: 1e-6,
            max_iter: 100,
            n_init: 1,
            random_state: None,
        }
    }
}

impl GaussianMixture {
    /// Hyperparameters with scikit-learn's defaults.
    pub fn params() -> GaussianMixtureParams {
        GaussianMixtureParams::default()
    }
}

impl GaussianMixtureParams {
    /// Sets `n_components`.
    pub fn n_components(mut self, n: usize) -> Self {
        self.n_components = n;
        self
    }

    /// Sets `random_state`.
    pub fn random_state(mut self, seed: Option<u64>) -> Self {
        self.random_state = seed;
        self
    }

    /// Fits the mixture to rows `x`.
    pub fn fit(&self, x: ArrayView2<'_, f64>) -> Result<FittedGaussianMixture> {
        self.check()?;
        check_data(x, x.nrows())?;
        if self.n_components > x.nrows() {
            return Err(Error::TooFewRows(format!(
                "n_components={} but there are only {} rows: ask for at most {} components",
                self.n_components,
                x.nrows(),
                x.nrows()
            )));
        }
        let seed = self.random_state.unwrap_or_else(crate::params::random_seed);
        self.fit_em(x, seed)
    }

    /// Expectation-maximisation as scikit-learn runs it, for every covariance type: k-means
    /// labels as the first responsibilities, then E and M steps until the mean log-likelihood
    /// gains less than `tol`; of `n_init` runs the most likely is kept.
    fn fit_em(&self, x: ArrayView2<'_, f64>, seed: u64) -> Result<FittedGaussianMixture> {
        let (n, k) = (x.nrows(), self.n_components);
        let mut best: Option<(f64, FittedGaussianMixture)> = None;
        for run in 0..self.n_init {
            let labels = crate::KMeans::params()
                .n_clusters(k)
                .random_state(Some(seed.wrapping_add(run)))
                .fit(x)?
                .predict(x);
            let mut resp = Array2::zeros((n, k));
            for (i, &l) in labels.iter().enumerate() {
                resp[[i, l]] = 1.0;
            }
            let mut model = self.m_step(x, &resp)?;
            let mut bound = f64::NEG_INFINITY;
            let mut bounds = Vec::new();
            for _ in 0..self.max_iter {
                let mut log_prob = model.weighted_log_prob(x);
                let mut total = 0.0;
                for mut row in log_prob.rows_mut() {
                    let max = row.fold(f64::NEG_INFINITY, |m, &v| m.max(v));
                    let norm = max + row.iter().map(|v| (v - max).exp()).sum::<f64>().ln();
                    total += norm;
                    row.mapv_inplace(|v| (v - norm).exp());
                }
                let new_bound = total / n as f64;
                bounds.push(new_bound);
                model = self.m_step(x, &log_prob)?;
                let change = new_bound - bound;
                bound = new_bound;
                if change.abs() < self.tol {
                    break;
                }
            }
            model.lower_bounds = bounds;
            if best.as_ref().is_none_or(|(b, _)| bound > *b) {
                best = Some((bound, model));
            }
        }
        Ok(best.expect("n_init is at least 1").1)
    }

    /// Weights, means and precision factors from responsibilities `resp` (rows × components).
    fn m_step(&self, x: ArrayView2<'_, f64>, resp: &Array2<f64>) -> Result<FittedGaussianMixture> {
        let ((n, d), k) = (x.dim(), self.n_components);
        let nk = resp.sum_axis(Axis(0)) + 10.0 * f64::EPSILON;
        let means = resp.t().dot(&x) / nk.view().insert_axis(Axis(1));
        let mut chol = Array3::zeros((k, d, d));
        match self.covariance_type {
            CovarianceType::Diag | CovarianceType::Spherical => {
                let vars: Vec<Array1<f64>> = (0..k)
                    .into_par_iter()
                    .map(|c| {
                        let diff = &x - &means.row(c);
                        let mut var = (&diff * &diff).t().dot(&resp.column(c)) / nk[c];
                        if self.covariance_type == CovarianceType::Spherical {
                            let mean = var.mean().expect("features");
                            var.fill(mean);
                        }
                        var
                    })
                    .collect();
                for (c, var) in vars.iter().enumerate() {
                    for (j, v) in var.iter().enumerate() {
                        chol[[c, j, j]] = 1.0 / (v + self.reg_covar).sqrt();
                    }
                }
            }
            CovarianceType::Tied => {
                let mut cov =
                    x.t().dot(&x) - means.t().dot(&(&means * &nk.view().insert_axis(Axis(1))));
                cov /= nk.sum();
                cov.diag_mut().mapv_inplace(|v| v + self.reg_covar);
                let l = precision_cholesky(cov)?;
                for c in 0..k {
                    chol.slice_mut(s![c, .., ..]).assign(&l);
                }
            }
            CovarianceType::Full => {
                let factors: Vec<Array2<f64>> = (0..k)
                    .into_par_iter()
                    .map(|c| {
                        let diff = &x - &means.row(c);
                        let weighted = &diff * &resp.column(c).insert_axis(Axis(1));
                        let mut cov = weighted.t().dot(&diff) / nk[c];
                        cov.diag_mut().mapv_inplace(|v| v + self.reg_covar);
                        precision_cholesky(cov)
                    })
                    .collect::<Result<_>>()?;
                for (c, l) in factors.iter().enumerate() {
                    chol.slice_mut(s![c, .., ..]).assign(l);
                }
            }
        }
        if chol.iter().any(|v| !v.is_finite()) {
            return Err(singular());
        }
        Ok(FittedGaussianMixture {
            weights: nk / n as f64,
            means,
            precisions_cholesky: chol,
            params: self.clone(),
            lower_bounds: Vec::new(),
        })
    }
}

/// The lower Cholesky factor of the inverse of covariance `cov`.
fn precision_cholesky(mut cov: Array2<f64>) -> Result<Array2<f64>> {
    use linfa_linalg::cholesky::{Cholesky, SolveC};
    let d = cov.nrows();
    let precision = cov.solvec(&Array2::eye(d)).map_err(|_| singular())?;
    precision.cholesky().map_err(|_| singular())
}

fn singular() -> Error {
    Error::Fit(
        "a component's covariance is singular: raise reg_covar or use fewer components".into(),
    )
}

impl Params for GaussianMixtureParams {
    const ALGORITHM: &'static str = "gaussian-mixture";
    fn check(&self) -> Result<()> {
        if self.n_components == 0 {
            return Err(params::invalid("n_components", 0, "a positive integer"));
        }
        if self.max_iter == 0 || self.n_init == 0 {
            let name = if self.max_iter == 0 {
                "max_iter"
            } else {
                "n_init"
            };
            return Err(params::invalid(name, 0, "a positive integer"));
        }
        params::positive("tol", self.tol)?;
        params::non_negative("reg_covar", self.reg_covar)
    }
}

impl Estimator for GaussianMixtureParams {
    const TASK: Task = Task::Clustering;
    const SUMMARY: &'static str = "Gaussian mixture (EM, k-means initialisation)";
    const NEEDS_SCALING: bool = true;
    type Model = FittedGaussianMixture;
    fn fit_rows(&self, x: ArrayView2<'_, f64>) -> Result<FittedGaussianMixture> {
        self.fit(x)
    }
}

/// A fitted [`GaussianMixture`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FittedGaussianMixture {
    /// Component weights (scikit-learn `weights_`).
    pub weights: Array1<f64>,
    /// Component means, components × features (`means_`).
    pub means: Array2<f64>,
    /// Lower Cholesky factors L of each component's precision matrix, `P = L·Lᵀ`.
    pub precisions_cholesky: Array3<f64>,
    /// The hyperparameters it was fitted with.
    pub params: GaussianMixtureParams,
    /// The mean log-likelihood of the rows at each EM iteration of the kept run, before that
    /// iteration's M step (scikit-learn `lower_bounds_`).
    pub lower_bounds: Vec<f64>,
}

impl FittedGaussianMixture {
    /// Per component, `log w + log N(x | μ, Σ)` without its quadratic term.
    fn constants(&self) -> Array1<f64> {
        let d = self.means.ncols() as f64;
        let log_det: Array1<f64> = self
            .precisions_cholesky
            .outer_iter()
            .map(|l| l.diag().mapv(f64::ln).sum())
            .collect();
        self.weights.mapv(f64::ln) + log_det - 0.5 * d * (2.0 * std::f64::consts::PI).ln()
    }

    /// Weighted log-likelihood of each row under each component, rows × components.
    pub fn weighted_log_prob(&self, x: ArrayView2<'_, f64>) -> Array2<f64> {
        let constants = self.constants();
        let columns: Vec<Array1<f64>> = self
            .precisions_cholesky
            .outer_iter()
            .into_par_iter()
            .enumerate()
            .map(|(k, l)| {
                let y = (&x - &self.means.row(k)).dot(&l);
                constants[k] - 0.5 * (&y * &y).sum_axis(Axis(1))
            })
            .collect();
        let mut out = Array2::zeros((x.nrows(), self.means.nrows()));
        for (k, column) in columns.into_iter().enumerate() {
            out.column_mut(k).assign(&column);
        }
        out
    }

    /// Each component's probability for each row, rows × components.
    pub fn predict_proba(&self, x: ArrayView2<'_, f64>) -> Array2<f64> {
        let mut p = self.weighted_log_prob(x);
        crate::classifier::softmax_rows(&mut p);
        p
    }

    /// The most likely component of each row.
    pub fn predict(&self, x: ArrayView2<'_, f64>) -> Vec<usize> {
        argmax_rows(&self.weighted_log_prob(x))
    }
}

impl Fitted for FittedGaussianMixture {
    fn predict_rows(&self, x: ArrayView2<'_, f64>) -> Predictions {
        Predictions::Clusters(self.predict(x))
    }

    fn scores(&self, x: ArrayView2<'_, f64>) -> Array2<f64> {
        self.predict_proba(x)
    }

    /// `lower_bound` per EM iteration, steps 1 to the iterations run; none for full
    /// covariances.
    fn curves(&self) -> Vec<Curve> {
        if self.lower_bounds.is_empty() {
            return Vec::new();
        }
        vec![Curve::from_values("lower_bound", &self.lower_bounds)]
    }
}

impl Export for FittedGaussianMixture {
    fn algorithm(&self) -> &str {
        GaussianMixtureParams::ALGORITHM
    }

    fn hyperparameters(&self) -> serde_json::Value {
        self.params.to_json()
    }

    fn task(&self) -> Task {
        Task::Clustering
    }

    fn n_features(&self) -> usize {
        self.means.ncols()
    }

    /// `scores` are the component probabilities (scikit-learn's `predict_proba`); `label` the
    /// most likely component.
    fn write(&self, g: &mut Graph, x: &str) {
        let (k, d) = self.means.dim();
        let f32s = |a: &[f64]| a.iter().map(|&v| v as f32).collect::<Vec<_>>();
        let means = g.constant_f32(
            "means",
            &[k as u64, d as u64],
            f32s(self.means.as_slice().expect("standard layout")),
        );
        let chol = self.precisions_cholesky.as_standard_layout();
        let chol = g.constant_f32(
            "precisions_cholesky",
            &[k as u64, d as u64, d as u64],
            f32s(chol.as_slice().expect("standard layout")),
        );
        let axis1 = g.constant_i64("axis1", &[1], &[1]);
        let axis2 = g.constant_i64("axis2", &[1], &[2]);
        let axes23 = g.constant_i64("axes23", &[2], &[2, 3]);
        // (x − μ_k) as [N, K, 1, d], times L_k [K, d, d]: [N, K, 1, d].
        g.node("Unsqueeze", &[x, &axis1], &["rows"], vec![]);
        g.node("Sub", &["rows", &means], &["centred"], vec![]);
        g.node("Unsqueeze", &["centred", &axis2], &["centred_rows"], vec![]);
        g.node("MatMul", &["centred_rows", &chol], &["whitened"], vec![]);
        g.node("Mul", &["whitened", "whitened"], &["whitened_sq"], vec![]);
        g.node(
            "ReduceSum",
            &["whitened_sq", &axes23],
            &["quadratic"],
            vec![("keepdims", Attr::Int(0))],
        );
        let half = g.constant_f32("minus_half", &[1], [-0.5]);
        let constants = g.constant_f32(
            "component_constants",
            &[k as u64],
            f32s(&self.constants().to_vec()),
        );
        g.node("Mul", &["quadratic", &half], &["half_quadratic"], vec![]);
        g.node(
            "Add",
            &["half_quadratic", &constants],
            &["log_prob"],
            vec![],
        );
        g.node(
            "Softmax",
            &["log_prob"],
            &["scores"],
            vec![("axis", Attr::Int(1))],
        );
        g.node(
            "ArgMax",
            &["log_prob"],
            &["label"],
            vec![("axis", Attr::Int(1)), ("keepdims", Attr::Int(0))],
        );
        g.output("label", ElemType::Int64, &[Dim::batch()]);
        g.output(
            "scores",
            ElemType::Float,
            &[Dim::batch(), Dim::Fixed(k as u64)],
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_covariance_type_separates_two_groups_and_bad_ones_list_the_choices() {
        let x = ndarray::array![
            [0.0, 0.1],
            [0.2, 0.0],
            [0.1, 0.3],
            [0.3, 0.2],
            [5.0, 5.1],
            [5.2, 4.9],
            [4.9, 5.0],
            [5.1, 5.3]
        ];
        for kind in ["full", "tied", "diag", "spherical"] {
            let mut params = GaussianMixture::params()
                .n_components(2)
                .random_state(Some(1));
            params.set("covariance_type", kind).unwrap();
            let labels = params.fit(x.view()).unwrap().predict(x.view());
            assert!(
                labels[..4].iter().all(|&l| l == labels[0]),
                "{kind}: {labels:?}"
            );
            assert!(
                labels[4..].iter().all(|&l| l != labels[0]),
                "{kind}: {labels:?}"
            );
        }
        let err = GaussianMixture::params()
            .set("covariance_type", "blocked")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(r#"one of "full", "tied", "diag", "spherical""#),
            "{err}"
        );
    }

    #[test]
    fn em_records_the_lower_bound_per_iteration() {
        // Two overlapping groups, so that EM takes a few iterations.
        let x = Array2::from_shape_fn((200, 2), |(i, j)| {
            let centre = if i % 2 == 0 { 0.0 } else { 1.5 };
            centre + ((i * 37 + j * 101) % 97) as f64 / 40.0
        });
        let mut params = GaussianMixture::params()
            .n_components(2)
            .random_state(Some(3));
        params.tol = 1e-6;
        for kind in ["full", "tied", "diag", "spherical"] {
            params.set("covariance_type", kind).unwrap();
            let model = params.fit(x.view()).unwrap();
            let bounds = &model.lower_bounds;
            assert!(bounds.len() > 2, "{kind}: {bounds:?}");
            assert!(
                bounds.windows(2).all(|w| w[1] >= w[0] - 1e-9),
                "{kind}: EM never lowers the likelihood: {bounds:?}"
            );
            // Converged: the final model's mean log-likelihood is the last bound, within tol.
            let log_prob = model.weighted_log_prob(x.view());
            let likelihood = log_prob
                .rows()
                .into_iter()
                .map(|r| {
                    let max = r.fold(f64::NEG_INFINITY, |m, &v| m.max(v));
                    max + r.iter().map(|v| (v - max).exp()).sum::<f64>().ln()
                })
                .sum::<f64>()
                / 200.0;
            let last = *bounds.last().unwrap();
            assert!(
                (likelihood - last).abs() < 1e-5,
                "{kind}: {likelihood} vs {last}"
            );
            let curves = Fitted::curves(&model);
            assert_eq!(curves[0].name, "lower_bound");
            assert_eq!(
                curves[0].points.last().unwrap(),
                &(bounds.len() as u64, last)
            );
        }
    }
}
