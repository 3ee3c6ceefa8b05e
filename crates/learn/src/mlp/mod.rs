//! Multi-layer perceptrons (scikit-learn's `MLPClassifier` and `MLPRegressor`), trained as
//! scikit-learn 1.9 trains them: Glorot-uniform initial weights, then minibatch Adam or SGD
//! (momentum, Nesterov, the learning-rate schedules, stopping after `n_iter_no_change` epochs
//! without an improvement of `tol`, early stopping on a held-out share) or L-BFGS over all the
//! weights at once (`crate::lbfgs`, with `max_iter` and `max_fun`).
//!
//! `network` holds the arithmetic (forward pass, loss, back-propagation, the exported graph),
//! `train` the solvers, `fitted` the fitted models. Randomness (initial weights, the
//! validation split, each epoch's order) comes from one ChaCha8 generator seeded with
//! `random_state`, or with a seed drawn from the OS-seeded hasher when there is none; nothing
//! runs in parallel, so a seed gives the same model whatever the number of threads. The
//! stream differs from numpy's, so a seed gives another model than scikit-learn's.

mod fitted;
mod network;
mod train;

#[cfg(test)]
mod tests;

pub use fitted::{FittedMlpClassifier, FittedMlpRegressor};
pub use train::Training;

use crate::catalog::Estimator;
use crate::params::{self, Params};
use crate::{ClassTarget, Result, Task};
use ndarray::ArrayView2;
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};

/// The hidden layers' activation function (scikit-learn's `activation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    /// `identity`: f(x) = x.
    Identity,
    /// `logistic`: the sigmoid, f(x) = 1 / (1 + exp(−x)).
    Logistic,
    /// `tanh`: f(x) = tanh(x).
    Tanh,
    /// `relu`: f(x) = max(0, x).
    Relu,
}

/// How the weights are optimised (scikit-learn's `solver`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Solver {
    /// `lbfgs`: quasi-Newton over all the rows at once.
    Lbfgs,
    /// `sgd`: minibatch stochastic gradient descent with momentum.
    Sgd,
    /// `adam`: minibatch Adam.
    Adam,
}

/// The step size schedule of the `sgd` solver (scikit-learn's `learning_rate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LearningRate {
    /// `constant`: `learning_rate_init` throughout.
    Constant,
    /// `invscaling`: `learning_rate_init / (t + 1)^power_t` after `t` rows seen.
    Invscaling,
    /// `adaptive`: divided by 5 each time `n_iter_no_change` epochs fail to improve by `tol`.
    Adaptive,
}

/// Hyperparameters of [`MlpClassifier`] and [`MlpRegressor`], named and defaulted as in
/// scikit-learn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MlpParams {
    /// Units per hidden layer (default `[100]`); set from text as `100`, `50,20` or
    /// `(50, 20)`.
    #[serde(deserialize_with = "layer_sizes")]
    pub hidden_layer_sizes: Vec<usize>,
    /// The hidden layers' activation (default relu).
    pub activation: Activation,
    /// The optimiser (default adam).
    pub solver: Solver,
    /// L2 penalty on the weights, 0 or more (default 0.0001).
    pub alpha: f64,
    /// Rows per minibatch for sgd and adam; `None` (scikit-learn's `auto`) is
    /// `min(200, rows)`, and more than the rows is clipped to the rows (default None).
    #[serde(deserialize_with = "batch_size")]
    pub batch_size: Option<usize>,
    /// sgd's step size schedule (default constant).
    pub learning_rate: LearningRate,
    /// The first step size of sgd and adam, positive (default 0.001).
    pub learning_rate_init: f64,
    /// The exponent of the `invscaling` schedule, 0 or more (default 0.5).
    pub power_t: f64,
    /// Most epochs (sgd, adam) or iterations (lbfgs), at least 1 (default 200).
    pub max_iter: u64,
    /// Shuffle the rows before each epoch (default true).
    pub shuffle: bool,
    /// Seed of every random choice; `None` draws one (default).
    pub random_state: Option<u64>,
    /// The improvement of the loss (or validation score) that counts, 0 or more; for lbfgs
    /// the gradient's largest component at convergence (default 1e-4).
    pub tol: f64,
    /// sgd's momentum, 0 to 1 (default 0.9).
    pub momentum: f64,
    /// Use Nesterov's momentum with sgd (default true).
    pub nesterovs_momentum: bool,
    /// Hold out `validation_fraction` of the rows and stop when their score stops improving,
    /// keeping the best weights (sgd, adam; default false).
    pub early_stopping: bool,
    /// The share held out for early stopping, from 0 up to 1 (default 0.1).
    pub validation_fraction: f64,
    /// Adam's decay of the first moment, from 0 up to 1 (default 0.9).
    pub beta_1: f64,
    /// Adam's decay of the second moment, from 0 up to 1 (default 0.999).
    pub beta_2: f64,
    /// Adam's guard against division by zero, positive (default 1e-8).
    pub epsilon: f64,
    /// Epochs without an improvement of `tol` before stopping, at least 1 (default 10).
    pub n_iter_no_change: u64,
    /// Most evaluations of the loss for lbfgs, at least 1 (default 15000).
    pub max_fun: u64,
}

impl Default for MlpParams {
    fn default() -> Self {
        MlpParams {
            hidden_layer_sizes: vec![100],
            activation: Activation::Relu,
            solver: Solver::Adam,
            alpha: 0.0001,
            batch_size: None,
            learning_rate: LearningRate::Constant,
            learning_rate_init: 0.001,
            power_t: 0.5,
            max_iter: 200,
            shuffle: true,
            random_state: None,
            tol: 1e-4,
            momentum: 0.9,
            nesterovs_momentum: true,
            early_stopping: false,
            validation_fraction: 0.1,
            beta_1: 0.9,
            beta_2: 0.999,
            epsilon: 1e-8,
            n_iter_no_change: 10,
            max_fun: 15000,
        }
    }
}

const LAYER_SIZES_EXPECTED: &str =
    "layer sizes: a positive integer or a comma-separated list such as 50,20";

/// `hidden_layer_sizes` from a JSON list, one integer, or text such as `50,20` or `(50, 20)`
/// (what `--set hidden_layer_sizes=50,20` gives).
fn layer_sizes<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<usize>, D::Error> {
    struct Sizes;

    impl<'de> Visitor<'de> for Sizes {
        type Value = Vec<usize>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(LAYER_SIZES_EXPECTED)
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Vec<usize>, E> {
            usize::try_from(v)
                .map(|v| vec![v])
                .map_err(|_| E::invalid_value(de::Unexpected::Unsigned(v), &self))
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Vec<usize>, E> {
            match u64::try_from(v) {
                Ok(v) => self.visit_u64(v),
                Err(_) => Err(E::invalid_value(de::Unexpected::Signed(v), &self)),
            }
        }

        fn visit_str<E: de::Error>(self, text: &str) -> Result<Vec<usize>, E> {
            let inner = text
                .trim()
                .trim_start_matches(['(', '['])
                .trim_end_matches([')', ']']);
            let mut parts: Vec<&str> = inner.split(',').map(str::trim).collect();
            // Python's one-element tuple `(50,)` ends with a comma.
            if parts.len() > 1 && parts.last() == Some(&"") {
                parts.pop();
            }
            if parts == [""] {
                return Ok(Vec::new());
            }
            parts
                .iter()
                .map(|p| p.parse::<usize>())
                .collect::<Result<_, _>>()
                .map_err(|_| E::invalid_value(de::Unexpected::Str(text), &self))
        }

        fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<usize>, A::Error> {
            let mut sizes = Vec::new();
            while let Some(size) = seq.next_element::<usize>()? {
                sizes.push(size);
            }
            Ok(sizes)
        }
    }

    deserializer.deserialize_any(Sizes)
}

/// `batch_size` from null, `"auto"` (both `None`) or an integer.
fn batch_size<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<usize>, D::Error> {
    use serde_json::Value;
    match Value::deserialize(deserializer)? {
        Value::Null => Ok(None),
        Value::String(text) if text == "auto" => Ok(None),
        Value::Number(n) if n.as_u64().is_some_and(|n| usize::try_from(n).is_ok()) => {
            Ok(n.as_u64().map(|n| n as usize))
        }
        other => Err(de::Error::custom(format!(
            "invalid batch_size {other}, expected {BATCH_SIZE_EXPECTED}"
        ))),
    }
}

const BATCH_SIZE_EXPECTED: &str = "a positive integer, or None (auto) for min(200, rows)";

impl MlpParams {
    /// Checks every value's range.
    fn check(&self) -> Result<()> {
        if self.hidden_layer_sizes.contains(&0) {
            return Err(params::invalid(
                "hidden_layer_sizes",
                serde_json::json!(self.hidden_layer_sizes),
                "positive layer sizes",
            ));
        }
        params::non_negative("alpha", self.alpha)?;
        if self.batch_size == Some(0) {
            return Err(params::invalid("batch_size", 0, BATCH_SIZE_EXPECTED));
        }
        params::positive("learning_rate_init", self.learning_rate_init)?;
        params::non_negative("power_t", self.power_t)?;
        for (name, value) in [
            ("max_iter", self.max_iter),
            ("n_iter_no_change", self.n_iter_no_change),
            ("max_fun", self.max_fun),
        ] {
            if value == 0 {
                return Err(params::invalid(name, 0, "a positive integer"));
            }
        }
        params::non_negative("tol", self.tol)?;
        if !(0.0..=1.0).contains(&self.momentum) {
            return Err(params::invalid(
                "momentum",
                self.momentum,
                "a number from 0 to 1",
            ));
        }
        for (name, value) in [
            ("validation_fraction", self.validation_fraction),
            ("beta_1", self.beta_1),
            ("beta_2", self.beta_2),
        ] {
            if !(0.0..1.0).contains(&value) {
                return Err(params::invalid(
                    name,
                    value,
                    "a number from 0 up to (not including) 1",
                ));
            }
        }
        params::positive("epsilon", self.epsilon)
    }
}

/// Multi-layer perceptron classifier (scikit-learn's `MLPClassifier`): hidden layers of
/// `activation`, then one logistic unit for two classes or a softmax over more, trained on the
/// log-loss plus an L2 penalty.
///
/// ```
/// use skiff_learn::{ClassTarget, MlpClassifier, Solver};
/// use ndarray::array;
///
/// let x = array![[0.0, 0.1], [0.2, 0.0], [3.0, 3.1], [3.2, 2.9]];
/// let y = ClassTarget::from_cells(&["cold", "cold", "hot", "hot"]).unwrap();
/// let model = MlpClassifier::params()
///     .hidden_layer_sizes(vec![8])
///     .solver(Solver::Lbfgs)
///     .random_state(Some(0))
///     .fit(x.view(), &y)
///     .unwrap();
/// assert_eq!(model.predict(x.view()).unwrap(), vec!["cold", "cold", "hot", "hot"]);
/// ```
pub struct MlpClassifier;

/// Multi-layer perceptron regressor (scikit-learn's `MLPRegressor` with its default
/// `squared_error` loss): hidden layers of `activation`, then one linear unit, trained on half
/// the mean squared error plus an L2 penalty.
///
/// ```
/// use skiff_learn::{MlpRegressor, Solver};
/// use ndarray::Array2;
///
/// let x = Array2::from_shape_fn((40, 1), |(i, _)| i as f64 / 20.0 - 1.0);
/// let y: Vec<f64> = x.column(0).iter().map(|v| v * v).collect();
/// let model = MlpRegressor::params()
///     .hidden_layer_sizes(vec![10])
///     .activation(skiff_learn::Activation::Tanh)
///     .solver(Solver::Lbfgs)
///     .random_state(Some(1))
///     .fit(x.view(), &y)
///     .unwrap();
/// assert!(model.score(x.view(), &y).unwrap() > 0.95);
/// ```
pub struct MlpRegressor;

/// [`MlpParams`] of a classifier.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MlpClassifierParams(pub MlpParams);

/// [`MlpParams`] of a regressor.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MlpRegressorParams(pub MlpParams);

impl MlpClassifier {
    /// Hyperparameters with scikit-learn's defaults.
    pub fn params() -> MlpClassifierParams {
        MlpClassifierParams::default()
    }
}

impl MlpRegressor {
    /// Hyperparameters with scikit-learn's defaults.
    pub fn params() -> MlpRegressorParams {
        MlpRegressorParams::default()
    }
}

macro_rules! setters {
    ($($name:ident: $type:ty),* $(,)?) => {
        $(
            #[doc = concat!("Sets `", stringify!($name), "`.")]
            pub fn $name(mut self, $name: $type) -> Self {
                self.0.$name = $name;
                self
            }
        )*
    };
}

macro_rules! mlp_setters {
    () => {
        setters! {
            hidden_layer_sizes: Vec<usize>,
            activation: Activation,
            solver: Solver,
            alpha: f64,
            batch_size: Option<usize>,
            learning_rate: LearningRate,
            learning_rate_init: f64,
            power_t: f64,
            max_iter: u64,
            shuffle: bool,
            random_state: Option<u64>,
            tol: f64,
            momentum: f64,
            nesterovs_momentum: bool,
            early_stopping: bool,
            validation_fraction: f64,
            beta_1: f64,
            beta_2: f64,
            epsilon: f64,
            n_iter_no_change: u64,
            max_fun: u64,
        }
    };
}

impl MlpClassifierParams {
    mlp_setters!();
}

impl MlpRegressorParams {
    mlp_setters!();
}

impl Params for MlpClassifierParams {
    const ALGORITHM: &'static str = "mlp-classifier";
    fn check(&self) -> Result<()> {
        self.0.check()
    }
}

impl Params for MlpRegressorParams {
    const ALGORITHM: &'static str = "mlp-regressor";
    fn check(&self) -> Result<()> {
        self.0.check()
    }
}

impl Estimator for MlpClassifierParams {
    const TASK: Task = Task::Classification;
    const SUMMARY: &'static str = "Multi-layer perceptron on the log-loss (adam, sgd or lbfgs)";
    const NEEDS_SCALING: bool = true;
    type Model = FittedMlpClassifier;
    fn fit_classes(&self, x: ArrayView2<'_, f64>, y: &ClassTarget) -> Result<Self::Model> {
        self.fit(x, y)
    }
}

impl Estimator for MlpRegressorParams {
    const TASK: Task = Task::Regression;
    const SUMMARY: &'static str =
        "Multi-layer perceptron on the squared error (adam, sgd or lbfgs)";
    const NEEDS_SCALING: bool = true;
    type Model = FittedMlpRegressor;
    fn fit_values(&self, x: ArrayView2<'_, f64>, y: &[f64]) -> Result<Self::Model> {
        self.fit(x, y)
    }
}
