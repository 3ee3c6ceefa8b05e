//! Histogram gradient boosting: scikit-learn's `HistGradientBoostingClassifier` and
//! `HistGradientBoostingRegressor`.
//!
//! Features are binned once ([`bins`]); each iteration fits one tree per raw score (one, or
//! one per class for more than two classes) to the loss's gradients and hessians ([`grow`]),
//! leaf-wise up to `max_leaf_nodes`, and adds it, shrunk by `learning_rate`. Gaps (NaN) are
//! a bin of their own and each split learns where they go; features named categorical hold
//! category codes and split on sets of categories. Early stopping (on above 10,000 rows by
//! default) holds out `validation_fraction` of the rows and stops when the loss on them has
//! not improved by `tol` for `n_iter_no_change` iterations.
//!
//! Histograms are built and splits searched over features in parallel; every sum is taken in
//! one thread in row order, so a seed gives the same model whatever the thread count.
//!
//! The model exports as one `TreeEnsembleRegressor` computing the raw scores (the baseline
//! in `base_values`), then a sigmoid (as a softmax of `[0, score]`) or a softmax for
//! classifiers. Natively the scores are summed as that op sums them (float32, tree by tree),
//! so labels agree with the graph's.

mod bins;
mod grow;
mod trees;

pub use bins::FeatureBins;
pub use trees::{Node, Rule, Tree};

use crate::catalog::{Curve, Estimator, Fitted, Predictions};
use crate::classifier::{argmax_rows, classifier_outputs, softmax_rows};
use crate::labels::{ClassLabels, ClassTarget};
use crate::params::{self, Params};
use crate::{Error, Export, Result, Task};
use grow::{GrowOptions, Scratch, grow};
use ndarray::{Array2, ArrayView2, Axis, s};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use skiff_onnx::{Attr, Dim, ElemType, Graph};

// Hyperparameters
// ---------------------------------------------------------------------------------------------

/// Whether to stop early: `"auto"` (on above 10,000 rows), `true` or `false`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Value", into = "Value")]
pub enum EarlyStopping {
    /// On where there are more than 10,000 rows (default).
    Auto,
    /// Always.
    On,
    /// Never.
    Off,
}

impl TryFrom<Value> for EarlyStopping {
    type Error = String;
    fn try_from(value: Value) -> std::result::Result<Self, String> {
        match value {
            Value::String(s) if s == "auto" => Ok(EarlyStopping::Auto),
            Value::Bool(true) => Ok(EarlyStopping::On),
            Value::Bool(false) => Ok(EarlyStopping::Off),
            _ => Err("expected \"auto\", true or false".into()),
        }
    }
}

impl From<EarlyStopping> for Value {
    fn from(e: EarlyStopping) -> Value {
        match e {
            EarlyStopping::Auto => Value::from("auto"),
            EarlyStopping::On => Value::Bool(true),
            EarlyStopping::Off => Value::Bool(false),
        }
    }
}

/// Which features hold category codes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Value", into = "Value")]
pub enum CategoricalFeatures {
    /// A table's text columns (default): `skiff fit` encodes each as one column of codes and
    /// names those columns.
    FromDtype,
    /// These feature indices.
    Indices(Vec<usize>),
}

impl TryFrom<Value> for CategoricalFeatures {
    type Error = String;
    fn try_from(value: Value) -> std::result::Result<Self, String> {
        let expected = || "expected \"from_dtype\" or feature indices such as 0,3".to_string();
        match value {
            Value::String(s) if s == "from_dtype" => Ok(CategoricalFeatures::FromDtype),
            Value::String(s) => s
                .split(',')
                .map(|i| i.trim().parse::<usize>().map_err(|_| expected()))
                .collect::<std::result::Result<_, _>>()
                .map(CategoricalFeatures::Indices),
            Value::Number(n) => n
                .as_u64()
                .map(|i| CategoricalFeatures::Indices(vec![i as usize]))
                .ok_or_else(expected),
            Value::Array(items) => items
                .iter()
                .map(|v| v.as_u64().map(|i| i as usize).ok_or_else(expected))
                .collect::<std::result::Result<_, _>>()
                .map(CategoricalFeatures::Indices),
            _ => Err(expected()),
        }
    }
}

impl From<CategoricalFeatures> for Value {
    fn from(c: CategoricalFeatures) -> Value {
        match c {
            CategoricalFeatures::FromDtype => Value::from("from_dtype"),
            CategoricalFeatures::Indices(i) => Value::from(i),
        }
    }
}

/// The hyperparameters both estimators share, named as in scikit-learn (flattened into each
/// one's).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Boosting {
    /// Shrinkage of each tree's leaves (default 0.1).
    pub learning_rate: f64,
    /// Boosting iterations, at most (default 100).
    pub max_iter: usize,
    /// Leaves of a tree, at most (default 31; None: no limit).
    pub max_leaf_nodes: Option<usize>,
    /// Depth of a tree, at most (default None).
    pub max_depth: Option<usize>,
    /// Fewest rows in a leaf (default 20).
    pub min_samples_leaf: usize,
    /// L2 penalty on leaf values (default 0).
    pub l2_regularization: f64,
    /// Bins for a feature's values, at most, 2 to 255 (default 255); missing values get one
    /// more.
    pub max_bins: usize,
    /// Features holding category codes (default `"from_dtype"`: a table's text columns; None:
    /// none).
    pub categorical_features: Option<CategoricalFeatures>,
    /// Stop when the validation loss stops improving (default `"auto"`).
    pub early_stopping: EarlyStopping,
    /// Share of rows held out for early stopping (default 0.1; None: the training loss).
    pub validation_fraction: Option<f64>,
    /// Iterations without improvement before stopping (default 10).
    pub n_iter_no_change: usize,
    /// The improvement that counts (default 1e-7).
    pub tol: f64,
    /// Seed of the binning subsample and the validation split (default None: random).
    pub random_state: Option<u64>,
}

impl Default for Boosting {
    fn default() -> Self {
        Boosting {
            learning_rate: 0.1,
            max_iter: 100,
            max_leaf_nodes: Some(31),
            max_depth: None,
            min_samples_leaf: 20,
            l2_regularization: 0.0,
            max_bins: 255,
            categorical_features: Some(CategoricalFeatures::FromDtype),
            early_stopping: EarlyStopping::Auto,
            validation_fraction: Some(0.1),
            n_iter_no_change: 10,
            tol: 1e-7,
            random_state: None,
        }
    }
}

impl Boosting {
    fn check(&self) -> Result<()> {
        params::positive("learning_rate", self.learning_rate)?;
        if self.max_iter < 1 {
            return Err(params::invalid("max_iter", 0, "an integer of at least 1"));
        }
        if let Some(n) = self.max_leaf_nodes.filter(|&n| n < 2) {
            return Err(params::invalid(
                "max_leaf_nodes",
                n,
                "an integer of at least 2, or None",
            ));
        }
        if self.max_depth == Some(0) {
            return Err(params::invalid(
                "max_depth",
                0,
                "a positive integer or None",
            ));
        }
        if self.min_samples_leaf < 1 {
            return Err(params::invalid(
                "min_samples_leaf",
                0,
                "an integer of at least 1",
            ));
        }
        params::non_negative("l2_regularization", self.l2_regularization)?;
        if !(2..=255).contains(&self.max_bins) {
            return Err(params::invalid(
                "max_bins",
                self.max_bins,
                "an integer from 2 to 255",
            ));
        }
        if let Some(f) = self
            .validation_fraction
            .filter(|f| !(f.is_finite() && *f > 0.0 && *f < 1.0))
        {
            return Err(params::invalid(
                "validation_fraction",
                f,
                "a number between 0 and 1 (exclusive), or None",
            ));
        }
        if self.n_iter_no_change < 1 {
            return Err(params::invalid(
                "n_iter_no_change",
                0,
                "an integer of at least 1",
            ));
        }
        params::non_negative("tol", self.tol)
    }

    fn set_categorical(&mut self, features: &[usize]) {
        if self.categorical_features == Some(CategoricalFeatures::FromDtype) {
            self.categorical_features = Some(CategoricalFeatures::Indices(features.to_vec()));
        }
    }

    /// Which of `n_features` features are categorical.
    fn categorical_mask(&self, n_features: usize) -> Result<Vec<bool>> {
        let mut mask = vec![false; n_features];
        if let Some(CategoricalFeatures::Indices(indices)) = &self.categorical_features {
            for &i in indices {
                if i >= n_features {
                    return Err(params::invalid(
                        "categorical_features",
                        i,
                        &format!("feature indices below {n_features}"),
                    ));
                }
                mask[i] = true;
            }
        }
        Ok(mask)
    }
}

/// The loss of a classifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClassLoss {
    /// Binomial or multinomial log loss (default and only choice).
    #[default]
    LogLoss,
}

/// The loss of a regressor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegressionLoss {
    /// Half the squared error (default).
    #[default]
    SquaredError,
    /// The absolute error; leaves take the median residual of their rows.
    AbsoluteError,
}

// The boosting loop
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy)]
enum Loss {
    Binary,
    Multinomial(usize),
    Squared,
    Absolute,
}

impl Loss {
    /// Whether every hessian is 1 (histograms then count rows instead of summing them).
    fn constant_hessian(self) -> bool {
        matches!(self, Loss::Squared | Loss::Absolute)
    }

    fn n_scores(self) -> usize {
        match self {
            Loss::Multinomial(k) => k,
            _ => 1,
        }
    }

    /// The constant raw scores that minimise the loss.
    fn baseline(self, y: &[f64]) -> Vec<f64> {
        let eps = f64::EPSILON;
        match self {
            Loss::Binary => {
                let p = (y.iter().sum::<f64>() / y.len() as f64).clamp(eps, 1.0 - eps);
                vec![(p / (1.0 - p)).ln()]
            }
            Loss::Multinomial(k) => {
                let mut logs = vec![0.0; k];
                for &c in y {
                    logs[c as usize] += 1.0;
                }
                for v in &mut logs {
                    *v = (*v / y.len() as f64).clamp(eps, 1.0 - eps).ln();
                }
                let mean = logs.iter().sum::<f64>() / k as f64;
                logs.iter().map(|v| v - mean).collect()
            }
            Loss::Squared => vec![y.iter().sum::<f64>() / y.len() as f64],
            Loss::Absolute => vec![median(y.to_vec())],
        }
    }

    /// Gradients and hessians of each raw score (score-major: `[k * n + i]`); returns the
    /// mean loss of `raw`, computed from the same exponentials and equal to [`Loss::mean`]'s:
    /// the same blocks of rows ([`crate::blocks`]), their sums added in block order.
    fn gradients(self, y: &[f64], raw: &Array2<f64>, g: &mut [f32], h: &mut [f32]) -> f64 {
        let n = y.len();
        let blocks = crate::blocks::rows(n, LOSS_CHUNK);
        let sums: Vec<f64> = blocks
            .par_iter()
            .zip(score_blocks(g, n, &blocks))
            .zip(score_blocks(h, n, &blocks))
            .map(|((rows, mut g), mut h)| {
                self.block(
                    &y[rows.clone()],
                    raw.slice(s![rows.clone(), ..]),
                    |i, j, gi, hi| {
                        g[j][i] = gi;
                        h[j][i] = hi;
                    },
                )
            })
            .collect();
        sums.into_iter().fold(0.0, |total, sum| total + sum) / n as f64
    }

    /// The mean loss of raw scores `raw` for targets `y`, summed over blocks of rows in
    /// parallel as [`Loss::gradients`] sums it, so it does not depend on the thread count.
    fn mean(self, y: &[f64], raw: &Array2<f64>) -> f64 {
        let n = y.len();
        let loss = |rows: std::ops::Range<usize>| {
            self.block(&y[rows.clone()], raw.slice(s![rows, ..]), |_, _, _, _| {})
        };
        crate::blocks::fold(n, LOSS_CHUNK, loss, 0.0, |total, sum| total + sum) / n as f64
    }

    /// The summed loss of the rows of one block, `raw` their scores and `y` their targets,
    /// calling `each(i, j, gradient, hessian)` for each row i and raw score j on the way.
    /// [`Loss::gradients`] and [`Loss::mean`] share it, so their losses are the same numbers.
    #[inline(always)]
    fn block(
        self,
        y: &[f64],
        raw: ArrayView2<'_, f64>,
        mut each: impl FnMut(usize, usize, f32, f32),
    ) -> f64 {
        match self {
            Loss::Binary => {
                // ln(1 + e^r) - y r = ln(1 + e^-r) + (1 - y) r: the sigmoid's e^-r serves
                // both, and the logarithms are summed as the logarithm of their product.
                let (mut linear, mut logs) = (0.0, LnSum::default());
                for (i, (&r, &y)) in raw.column(0).iter().zip(y).enumerate() {
                    let q = 1.0 + (-r).exp();
                    let p = 1.0 / q;
                    each(i, 0, (p - y) as f32, (p * (1.0 - p)) as f32);
                    if q.is_finite() {
                        logs.add(q);
                        linear += (1.0 - y) * r;
                    } else {
                        // r below -709: ln(1 + e^-r) is -r to the last bit.
                        linear -= y * r;
                    }
                }
                linear + logs.value()
            }
            Loss::Multinomial(k) => {
                let mut e = vec![0.0; k];
                let mut sum = 0.0;
                for (i, (r, &c)) in raw.outer_iter().zip(y).enumerate() {
                    let max = r.fold(f64::NEG_INFINITY, |m, &v| m.max(v));
                    for (e, v) in e.iter_mut().zip(&r) {
                        *e = (v - max).exp();
                    }
                    let total: f64 = e.iter().sum();
                    for (j, e) in e.iter().enumerate() {
                        let p = e / total;
                        let g = p - f64::from(j == c as usize);
                        each(i, j, g as f32, (p * (1.0 - p)) as f32);
                    }
                    sum += max + total.ln() - r[c as usize];
                }
                sum
            }
            Loss::Squared => {
                let mut sum = 0.0;
                for (i, (&r, &y)) in raw.column(0).iter().zip(y).enumerate() {
                    each(i, 0, (r - y) as f32, 1.0);
                    sum += 0.5 * (y - r).powi(2);
                }
                sum
            }
            Loss::Absolute => {
                let mut sum = 0.0;
                for (i, (&r, &y)) in raw.column(0).iter().zip(y).enumerate() {
                    each(i, 0, if r > y { 1.0 } else { -1.0 }, 1.0);
                    sum += (y - r).abs();
                }
                sum
            }
        }
    }
}

/// Rows a block of a loss's sum holds a whole number of (see [`crate::blocks::rows`]).
const LOSS_CHUNK: usize = 4096;

/// A score-major buffer (`[j * n + i]`) cut at `blocks` of rows: each block's share of every
/// raw score's column.
fn score_blocks<'a>(
    buffer: &'a mut [f32],
    n: usize,
    blocks: &[std::ops::Range<usize>],
) -> Vec<Vec<&'a mut [f32]>> {
    let mut shares: Vec<Vec<&mut [f32]>> = blocks.iter().map(|_| Vec::new()).collect();
    for mut column in buffer.chunks_mut(n.max(1)) {
        for (share, rows) in shares.iter_mut().zip(blocks) {
            let (head, rest) = std::mem::take(&mut column).split_at_mut(rows.len());
            share.push(head);
            column = rest;
        }
    }
    shares
}

/// A sum of logarithms of terms of at least 1, taken as the logarithm of their product: a
/// multiplication a term instead of a logarithm. The product is kept as a mantissa below
/// 2^512 and a power of two, so it never overflows.
struct LnSum {
    mantissa: f64,
    exponent: i64,
}

impl Default for LnSum {
    fn default() -> Self {
        LnSum {
            mantissa: 1.0,
            exponent: 0,
        }
    }
}

impl LnSum {
    /// 2^512.
    const LIMIT: f64 = 1.340_780_792_994_259_7e154;

    fn add(&mut self, mut term: f64) {
        if term >= Self::LIMIT {
            term = self.take_exponent(term);
        }
        self.mantissa *= term;
        if self.mantissa >= Self::LIMIT {
            self.mantissa = self.take_exponent(self.mantissa);
        }
    }

    /// `x`'s mantissa, in [1, 2), its power of two added to the exponent (`x` normal, positive).
    fn take_exponent(&mut self, x: f64) -> f64 {
        let bits = x.to_bits();
        self.exponent += ((bits >> 52) & 0x7ff) as i64 - 1023;
        f64::from_bits((bits & ((1 << 52) - 1)) | (1023 << 52))
    }

    fn value(&self) -> f64 {
        self.mantissa.ln() + self.exponent as f64 * std::f64::consts::LN_2
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// A fitted boosted ensemble.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Boosted {
    /// The trees, iteration by iteration, each iteration's one per raw score.
    pub trees: Vec<Tree>,
    /// Raw scores: 1, or one per class for more than two classes.
    pub n_scores: usize,
    /// The raw scores before any tree.
    pub baseline: Vec<f64>,
    /// How each feature was binned.
    pub bins: Vec<FeatureBins>,
    /// Which features are categorical.
    pub categorical: Vec<bool>,
    /// Iterations run (fewer than `max_iter` where early stopping stopped them).
    pub n_iter: usize,
    /// The mean loss on the training rows (those not held out) before the first iteration
    /// and after each: `n_iter + 1` values, scikit-learn's `train_score_` with the sign
    /// turned (scikit-learn keeps it only where early stopping ran).
    pub train_loss: Vec<f64>,
    /// The mean loss on the held-out rows likewise, where early stopping held rows out
    /// (scikit-learn's `validation_score_` with the sign turned); empty otherwise.
    pub validation_loss: Vec<f64>,
    /// The raw scores of the rows it was fitted on, in their order, summed as [`Boosted::raw`]
    /// sums them: kept from the fit (never saved), so scoring the training rows needs no
    /// second pass through the trees.
    #[serde(skip)]
    fitted: Option<Array2<f64>>,
}

impl Boosted {
    /// The raw scores of each row, [N, n_scores], summed as the exported op sums them:
    /// float32, tree after tree, then the baseline.
    pub fn raw(&self, x: ArrayView2<'_, f64>) -> Array2<f64> {
        // Chunks of rows in parallel; within one, tree after tree over its rows, so a tree
        // stays in cache while the rows pass through it, and each row's sum still adds the
        // trees in order.
        const CHUNK: usize = 1024;
        let k = self.n_scores;
        let mut sums = vec![0f32; x.nrows() * k];
        sums.par_chunks_mut(CHUNK * k)
            .enumerate()
            .for_each(|(c, sums)| {
                let rows = x.slice(ndarray::s![c * CHUNK..c * CHUNK + sums.len() / k, ..]);
                for (t, tree) in self.trees.iter().enumerate() {
                    for (row, s) in rows.outer_iter().zip(sums.chunks_mut(k)) {
                        s[t % k] += tree.predict(|f| row[f], &self.bins) as f32;
                    }
                }
            });
        Array2::from_shape_fn((x.nrows(), k), |(i, j)| {
            (sums[i * k + j] + self.baseline[j] as f32) as f64
        })
    }

    /// The raw scores of the rows it was fitted on, as [`Boosted::raw`] would give them;
    /// none for a model that was not fitted in this process.
    pub(crate) fn fitted_raw(&self) -> Option<&Array2<f64>> {
        self.fitted.as_ref()
    }

    /// `train_loss` and (where rows were held out) `validation_loss` by iteration, step 0
    /// being the baseline before the first tree.
    pub fn curves(&self) -> Vec<Curve> {
        let curve = |name: &str, values: &[f64]| Curve {
            name: name.into(),
            points: (0..).zip(values.iter().copied()).collect(),
        };
        let mut curves = vec![curve("train_loss", &self.train_loss)];
        if !self.validation_loss.is_empty() {
            curves.push(curve("validation_loss", &self.validation_loss));
        }
        curves
    }

    /// Adds the `TreeEnsembleRegressor` computing the raw scores of `x` into `output`.
    fn write(&self, g: &mut Graph, x: &str, output: &str) {
        g.ml_node(
            "TreeEnsembleRegressor",
            &[x],
            &[output],
            trees::ensemble_attrs(&self.trees, self.n_scores, &self.baseline, &self.bins),
        );
    }
}

/// Rows held out for early stopping: `fraction` of them (rounded up), drawn with `rng`, in
/// each class's proportion for classifiers. Returns (training rows, validation rows).
fn validation_split(
    y: &[f64],
    fraction: f64,
    stratify: bool,
    rng: &mut ChaCha8Rng,
) -> (Vec<usize>, Vec<usize>) {
    let n = y.len();
    let mut order: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        order.swap(i, rng.random_range(0..=i));
    }
    let n_val = ((fraction * n as f64).ceil() as usize).clamp(1, n - 1);
    let mut held = vec![false; n];
    if stratify {
        let mut classes: std::collections::BTreeMap<u64, Vec<usize>> = Default::default();
        for &i in &order {
            classes.entry(y[i] as u64).or_default().push(i);
        }
        for rows in classes.values() {
            let take = (fraction * rows.len() as f64).round() as usize;
            for &i in rows.iter().take(take.min(rows.len().saturating_sub(1))) {
                held[i] = true;
            }
        }
    } else {
        for &i in order.iter().take(n_val) {
            held[i] = true;
        }
    }
    (0..n).partition(|&i| !held[i])
}

/// Boosts trees on rows `x` for targets `y` (class indices as numbers for classifiers).
fn boost(params: &Boosting, loss: Loss, x: ArrayView2<'_, f64>, y: &[f64]) -> Result<Boosted> {
    params.check()?;
    crate::check::check_gappy_data(x, y.len())?;
    let categorical = params.categorical_mask(x.ncols())?;
    let seed = params.random_state.unwrap_or_else(params::random_seed);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let early = match params.early_stopping {
        EarlyStopping::Auto => x.nrows() > 10_000,
        EarlyStopping::On => true,
        EarlyStopping::Off => false,
    };
    let stratify = matches!(loss, Loss::Binary | Loss::Multinomial(_));
    let split = match params.validation_fraction {
        Some(f) if early && x.nrows() >= 2 => Some(validation_split(y, f, stratify, &mut rng)),
        _ => None,
    };
    let selected = split.as_ref().map(|(train, _)| x.select(Axis(0), train));
    let x_train = selected.as_ref().map_or(x.view(), |s| s.view());
    let y_train: Vec<f64> = match &split {
        Some((train, _)) => train.iter().map(|&i| y[i]).collect(),
        None => y.to_vec(),
    };
    let val = split.as_ref().map(|(_, val)| {
        (
            x.select(Axis(0), val),
            val.iter().map(|&i| y[i]).collect::<Vec<f64>>(),
        )
    });
    let missing = params.max_bins as u8;
    let bins = bins::fit_bins(x_train, &categorical, params.max_bins, &mut rng)?;
    let binned = bins::bin_columns(x_train, &bins, missing);
    let n = y_train.len();
    let k = loss.n_scores();
    let baseline = loss.baseline(&y_train);
    let mut raw = Array2::from_shape_fn((n, k), |(_, j)| baseline[j]);
    let mut raw_val = val
        .as_ref()
        .map(|(xv, _)| Array2::from_shape_fn((xv.nrows(), k), |(_, j)| baseline[j]));
    // Each row's leaf values in float32, tree after tree, as `Boosted::raw` sums them.
    let mut sums = vec![0f32; n * k];
    let mut sums_val = vec![0f32; val.as_ref().map_or(0, |(xv, _)| xv.nrows() * k)];
    let options = GrowOptions {
        max_leaf_nodes: params.max_leaf_nodes,
        max_depth: params.max_depth,
        min_samples_leaf: params.min_samples_leaf,
        l2_regularization: params.l2_regularization,
        shrinkage: params.learning_rate,
        missing,
    };
    let mut model = Boosted {
        trees: Vec::new(),
        n_scores: k,
        baseline,
        bins,
        categorical,
        n_iter: 0,
        train_loss: Vec::new(),
        validation_loss: Vec::new(),
        fitted: None,
    };
    if let (Some((_, yv)), Some(rv)) = (&val, &raw_val) {
        model.validation_loss.push(loss.mean(yv, rv));
    }
    let (mut g, mut h) = (vec![0f32; n * k], vec![0f32; n * k]);
    let mut scratch = Scratch::default();
    loop {
        // The training loss of the raw scores so far comes with their gradients, from the
        // same exponentials, so it is recorded with or without early stopping; the last
        // iteration's gradients go unused.
        let train_loss = loss.gradients(&y_train, &raw, &mut g, &mut h);
        model.train_loss.push(train_loss);
        if early {
            let scores = if val.is_some() {
                &model.validation_loss
            } else {
                &model.train_loss
            };
            if should_stop(scores, params.n_iter_no_change, params.tol) {
                break;
            }
        }
        if model.n_iter == params.max_iter {
            break;
        }
        for j in 0..k {
            let hessians = (!loss.constant_hessian()).then(|| &h[j * n..(j + 1) * n]);
            let mut grown = grow(
                &binned,
                &model.bins,
                &g[j * n..(j + 1) * n],
                hessians,
                &options,
                &mut scratch,
            );
            if let Loss::Absolute = loss {
                let raw = &raw;
                let medians: Vec<f64> = grown
                    .leaves
                    .par_iter()
                    .map(|&(_, start, end)| {
                        let rows = &grown.rows[start..end];
                        median(
                            rows.iter()
                                .map(|&i| y_train[i as usize] - raw[[i as usize, 0]])
                                .collect(),
                        )
                    })
                    .collect();
                for (&(node, _, _), m) in grown.leaves.iter().zip(medians) {
                    grown.tree.nodes[node] = Node::Leaf {
                        value: params.learning_rate * m,
                    };
                }
            }
            let leaves: Vec<(&[u32], f64)> = grown
                .leaves
                .iter()
                .map(|&(node, start, end)| match grown.tree.nodes[node] {
                    Node::Leaf { value } => (&grown.rows[start..end], value),
                    _ => unreachable!("a leaf"),
                })
                .collect();
            // The leaves' rows are disjoint: the float64 and float32 sums update side by side.
            rayon::join(
                || {
                    for &(rows, value) in &leaves {
                        for &i in rows {
                            raw[[i as usize, j]] += value;
                        }
                    }
                },
                || {
                    for &(rows, value) in &leaves {
                        for &i in rows {
                            sums[i as usize * k + j] += value as f32;
                        }
                    }
                },
            );
            if let (Some((xv, _)), Some(rv)) = (&val, &mut raw_val) {
                let tree = &grown.tree;
                let bins = &model.bins;
                rv.axis_iter_mut(Axis(0))
                    .into_par_iter()
                    .zip(sums_val.par_chunks_mut(k))
                    .zip(xv.axis_iter(Axis(0)).into_par_iter())
                    .with_min_len(1024)
                    .for_each(|((mut r, s), row)| {
                        let value = tree.predict(|f| row[f], bins);
                        r[j] += value;
                        s[j] += value as f32;
                    });
            }
            scratch.give_rows(grown.rows);
            model.trees.push(grown.tree);
        }
        model.n_iter += 1;
        if let (Some((_, yv)), Some(rv)) = (&val, &raw_val) {
            model.validation_loss.push(loss.mean(yv, rv));
        }
    }
    // The training rows' scores back in the order of `x`: a training row's leaves are the
    // ones its value would reach, since a split's bins hold exactly the values up to its
    // threshold.
    let rows: Box<dyn Iterator<Item = usize>> = match &split {
        Some((train, val)) => Box::new(train.iter().chain(val).copied()),
        None => Box::new(0..n),
    };
    let mut fitted = Array2::zeros((x.nrows(), k));
    for (i, s) in rows.zip(sums.chunks(k).chain(sums_val.chunks(k))) {
        for j in 0..k {
            fitted[[i, j]] = (s[j] + model.baseline[j] as f32) as f64;
        }
    }
    model.fitted = Some(fitted);
    Ok(model)
}

/// scikit-learn's `_should_stop` on losses: none of the last `n_iter_no_change` is lower
/// than the one before them by more than `tol`.
fn should_stop(losses: &[f64], n_iter_no_change: usize, tol: f64) -> bool {
    let reference = n_iter_no_change + 1;
    if losses.len() < reference {
        return false;
    }
    let before = losses[losses.len() - reference] - tol;
    !losses[losses.len() - reference + 1..]
        .iter()
        .any(|&l| l < before)
}

// HistGradientBoostingClassifier
// ---------------------------------------------------------------------------------------------

/// Histogram gradient boosting for classes (scikit-learn's `HistGradientBoostingClassifier`).
///
/// ```
/// use skiff_learn::{ClassTarget, HistGradientBoostingClassifier};
/// use ndarray::Array2;
///
/// let x = Array2::from_shape_fn((200, 2), |(i, j)| if j == 0 { (i % 20) as f64 } else { f64::NAN });
/// let cells: Vec<&str> = (0..200).map(|i| if i % 20 < 10 { "low" } else { "high" }).collect();
/// let y = ClassTarget::from_cells(&cells).unwrap();
/// let model = HistGradientBoostingClassifier::params().fit(x.view(), &y).unwrap();
/// assert_eq!(model.predict(x.view()).unwrap(), cells);
/// ```
pub struct HistGradientBoostingClassifier;

impl HistGradientBoostingClassifier {
    /// Hyperparameters with scikit-learn's defaults.
    pub fn params() -> HistGradientBoostingClassifierParams {
        HistGradientBoostingClassifierParams::default()
    }
}

/// Hyperparameters of [`HistGradientBoostingClassifier`], named as in scikit-learn.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct HistGradientBoostingClassifierParams {
    /// The loss (log_loss).
    pub loss: ClassLoss,
    /// The boosting hyperparameters.
    #[serde(flatten)]
    pub boosting: Boosting,
}

impl HistGradientBoostingClassifierParams {
    /// Fits rows `x` (NaN for gaps) to classes `y`.
    pub fn fit(
        &self,
        x: ArrayView2<'_, f64>,
        y: &ClassTarget,
    ) -> Result<FittedHistGradientBoostingClassifier> {
        let n_classes = y.classes.len();
        let loss = if n_classes <= 2 {
            Loss::Binary
        } else {
            Loss::Multinomial(n_classes)
        };
        let targets: Vec<f64> = y.indices.iter().map(|&c| c as f64).collect();
        let model = boost(&self.boosting, loss, x, &targets)?;
        Ok(FittedHistGradientBoostingClassifier {
            model,
            classes: y.classes.clone(),
            n_features: x.ncols(),
            params: self.clone(),
        })
    }
}

/// A fitted [`HistGradientBoostingClassifier`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FittedHistGradientBoostingClassifier {
    /// The trees.
    pub model: Boosted,
    /// The classes, in the column order of the probabilities.
    pub classes: ClassLabels,
    /// How many features a row has.
    pub n_features: usize,
    /// The hyperparameters it was fitted with.
    pub params: HistGradientBoostingClassifierParams,
}

impl FittedHistGradientBoostingClassifier {
    /// Each row's class scores: `[0, raw]` for two classes, the raw scores for more.
    fn class_scores(&self, x: ArrayView2<'_, f64>) -> Result<Array2<f64>> {
        crate::tree::check_columns(x, self.n_features)?;
        Ok(self.scores_of(self.model.raw(x)))
    }

    /// Class scores from raw scores.
    fn scores_of(&self, raw: Array2<f64>) -> Array2<f64> {
        if self.model.n_scores == 1 {
            Array2::from_shape_fn(
                (raw.nrows(), 2),
                |(i, j)| if j == 0 { 0.0 } else { raw[[i, 0]] },
            )
        } else {
            raw
        }
    }

    /// Class probabilities, rows × classes.
    pub fn predict_proba(&self, x: ArrayView2<'_, f64>) -> Result<Array2<f64>> {
        let mut scores = self.class_scores(x)?;
        softmax_rows(&mut scores);
        Ok(scores)
    }

    /// The predicted class of each row, as text.
    pub fn predict(&self, x: ArrayView2<'_, f64>) -> Result<Vec<String>> {
        Ok(argmax_rows(&self.class_scores(x)?)
            .into_iter()
            .map(|i| self.classes.name(i))
            .collect())
    }
}

impl Params for HistGradientBoostingClassifierParams {
    const ALGORITHM: &'static str = "hist-gradient-boosting-classifier";
    fn check(&self) -> Result<()> {
        self.boosting.check()
    }
}

impl Estimator for HistGradientBoostingClassifierParams {
    const TASK: Task = Task::Classification;
    const SUMMARY: &'static str =
        "histogram gradient boosting (255 bins, leaf-wise trees, native gaps and categories)";
    const TAKES_GAPS_AND_CATEGORIES: bool = true;
    type Model = FittedHistGradientBoostingClassifier;
    fn set_categorical(&mut self, features: &[usize]) {
        self.boosting.set_categorical(features);
    }
    fn fit_classes(
        &self,
        x: ArrayView2<'_, f64>,
        y: &ClassTarget,
    ) -> Result<FittedHistGradientBoostingClassifier> {
        self.fit(x, y)
    }
}

impl Fitted for FittedHistGradientBoostingClassifier {
    fn predict_rows(&self, x: ArrayView2<'_, f64>) -> Predictions {
        Predictions::Classes(argmax_rows(
            &self.class_scores(x).expect("the model's features"),
        ))
    }

    fn scores(&self, x: ArrayView2<'_, f64>) -> Array2<f64> {
        self.predict_proba(x).expect("the model's features")
    }

    fn fit_predictions(&self) -> Option<Predictions> {
        let raw = self.model.fitted_raw()?;
        Some(Predictions::Classes(argmax_rows(
            &self.scores_of(raw.clone()),
        )))
    }

    fn curves(&self) -> Vec<Curve> {
        self.model.curves()
    }
}

impl Export for FittedHistGradientBoostingClassifier {
    fn algorithm(&self) -> &str {
        HistGradientBoostingClassifierParams::ALGORITHM
    }
    fn hyperparameters(&self) -> Value {
        self.params.to_json()
    }
    fn task(&self) -> Task {
        Task::Classification
    }
    fn n_features(&self) -> usize {
        self.n_features
    }
    fn classes(&self) -> Option<&ClassLabels> {
        Some(&self.classes)
    }
    fn write(&self, g: &mut Graph, x: &str) {
        self.model.write(g, x, "boost_raw");
        if self.model.n_scores == 1 {
            // softmax([0, s]) is [1 - σ(s), σ(s)], and ArgMax gives ties to the first class,
            // as scikit-learn's predict does.
            g.node("Sub", &["boost_raw", "boost_raw"], &["boost_zero"], vec![]);
            g.node(
                "Concat",
                &["boost_zero", "boost_raw"],
                &["boost_scores"],
                vec![("axis", Attr::Int(1))],
            );
            classifier_outputs(g, &self.classes, "boost_scores", true);
        } else {
            classifier_outputs(g, &self.classes, "boost_raw", true);
        }
    }
}

// HistGradientBoostingRegressor
// ---------------------------------------------------------------------------------------------

/// Histogram gradient boosting for numbers (scikit-learn's `HistGradientBoostingRegressor`).
pub struct HistGradientBoostingRegressor;

impl HistGradientBoostingRegressor {
    /// Hyperparameters with scikit-learn's defaults.
    pub fn params() -> HistGradientBoostingRegressorParams {
        HistGradientBoostingRegressorParams::default()
    }
}

/// Hyperparameters of [`HistGradientBoostingRegressor`], named as in scikit-learn.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct HistGradientBoostingRegressorParams {
    /// The loss (default squared_error).
    pub loss: RegressionLoss,
    /// The boosting hyperparameters.
    #[serde(flatten)]
    pub boosting: Boosting,
}

impl HistGradientBoostingRegressorParams {
    /// Fits rows `x` (NaN for gaps) to numbers `y`.
    pub fn fit(
        &self,
        x: ArrayView2<'_, f64>,
        y: &[f64],
    ) -> Result<FittedHistGradientBoostingRegressor> {
        if y.iter().any(|v| !v.is_finite()) {
            return Err(Error::Target(
                "the target holds NaN or infinite values: leave those rows out".into(),
            ));
        }
        let loss = match self.loss {
            RegressionLoss::SquaredError => Loss::Squared,
            RegressionLoss::AbsoluteError => Loss::Absolute,
        };
        let model = boost(&self.boosting, loss, x, y)?;
        Ok(FittedHistGradientBoostingRegressor {
            model,
            n_features: x.ncols(),
            params: self.clone(),
        })
    }
}

/// A fitted [`HistGradientBoostingRegressor`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FittedHistGradientBoostingRegressor {
    /// The trees.
    pub model: Boosted,
    /// How many features a row has.
    pub n_features: usize,
    /// The hyperparameters it was fitted with.
    pub params: HistGradientBoostingRegressorParams,
}

impl FittedHistGradientBoostingRegressor {
    /// The prediction for each row.
    pub fn predict(&self, x: ArrayView2<'_, f64>) -> Result<Vec<f64>> {
        crate::tree::check_columns(x, self.n_features)?;
        Ok(self.model.raw(x).column(0).to_vec())
    }
}

impl Params for HistGradientBoostingRegressorParams {
    const ALGORITHM: &'static str = "hist-gradient-boosting-regressor";
    fn check(&self) -> Result<()> {
        self.boosting.check()
    }
}

impl Estimator for HistGradientBoostingRegressorParams {
    const TASK: Task = Task::Regression;
    const SUMMARY: &'static str =
        "histogram gradient boosting (255 bins, leaf-wise trees, native gaps and categories)";
    const TAKES_GAPS_AND_CATEGORIES: bool = true;
    type Model = FittedHistGradientBoostingRegressor;
    fn set_categorical(&mut self, features: &[usize]) {
        self.boosting.set_categorical(features);
    }
    fn fit_values(
        &self,
        x: ArrayView2<'_, f64>,
        y: &[f64],
    ) -> Result<FittedHistGradientBoostingRegressor> {
        self.fit(x, y)
    }
}

impl Fitted for FittedHistGradientBoostingRegressor {
    fn predict_rows(&self, x: ArrayView2<'_, f64>) -> Predictions {
        Predictions::Values(self.predict(x).expect("the model's features"))
    }

    fn scores(&self, x: ArrayView2<'_, f64>) -> Array2<f64> {
        self.model.raw(x)
    }

    fn fit_predictions(&self) -> Option<Predictions> {
        let raw = self.model.fitted_raw()?;
        Some(Predictions::Values(raw.column(0).to_vec()))
    }

    fn curves(&self) -> Vec<Curve> {
        self.model.curves()
    }
}

impl Export for FittedHistGradientBoostingRegressor {
    fn algorithm(&self) -> &str {
        HistGradientBoostingRegressorParams::ALGORITHM
    }
    fn hyperparameters(&self) -> Value {
        self.params.to_json()
    }
    fn task(&self) -> Task {
        Task::Regression
    }
    fn n_features(&self) -> usize {
        self.n_features
    }
    fn write(&self, g: &mut Graph, x: &str) {
        self.model.write(g, x, "variable");
        g.output("variable", ElemType::Float, &[Dim::batch(), Dim::Fixed(1)]);
    }
}

#[cfg(test)]
mod tests;
