//! Training records for the tools people watch and track training with: TensorBoard's event
//! files ([`tensorboard`]) and MLflow's tracking server and model format ([`mlflow`]).
//!
//! A fit, a search or a cross-validation becomes one [`Run`]: its parameters, its final
//! metrics and the curves training produced; each sink writes the same record its own way.

pub mod mlflow;
pub mod tensorboard;

/// What went wrong, in one line that names the problem and the fix.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Error(pub String);

/// This crate's results.
pub type Result<T> = std::result::Result<T, Error>;

/// One quantity recorded during training: `(step, value)` pairs, steps increasing.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The metric's name, e.g. `loss`, `validation_score`.
    pub name: String,
    /// The values, each at its step (epoch, iteration, tree count, candidate).
    pub points: Vec<(u64, f64)>,
}

/// What one `skiff fit`, `tune` or `cv` records.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Run {
    /// The command that made it: `fit`, `tune` or `cv`.
    pub command: String,
    /// The estimator's CLI name, e.g. `mlp-classifier`.
    pub algorithm: String,
    /// Hyperparameters and inputs, as text (MLflow's params, TensorBoard's hparams).
    pub params: Vec<(String, String)>,
    /// Final values, e.g. `training_accuracy`, `cv_accuracy_mean`.
    pub metrics: Vec<(String, f64)>,
    /// Values recorded along the way.
    pub curves: Vec<Series>,
    /// `skiff.*` tags: what made the run and from what.
    pub tags: Vec<(String, String)>,
    /// Runs within this one: a search's candidates, each with its values as `params` and its
    /// scores as `metrics`.
    pub children: Vec<Run>,
}
