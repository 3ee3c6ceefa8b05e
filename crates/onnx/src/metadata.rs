//! Keys of the `metadata_props` entries skiff writes into every model it exports.
//!
//! Values are plain strings; lists and maps are JSON. Readers (the runtime, `skiff predict`)
//! treat every key as optional, so models from other tools work too.

/// JSON array of the feature column names, in input order.
pub const FEATURE_NAMES: &str = "skiff.feature_names";
/// JSON array of the class labels (strings or integers), in probability-column order.
pub const CLASSES: &str = "skiff.classes";
/// Name of the target column the model was trained on.
pub const TARGET: &str = "skiff.target";
/// The estimator's CLI name, e.g. `logistic-regression`.
pub const ALGORITHM: &str = "skiff.algorithm";
/// The task: `classification`, `regression` or `clustering`.
pub const TASK: &str = "skiff.task";
/// JSON object of the hyperparameters the model was fitted with.
pub const HYPERPARAMETERS: &str = "skiff.hyperparameters";
/// The skiff version that trained the model.
pub const VERSION: &str = "skiff.version";
/// JSON object `{"numeric": [...], "categorical": [...]}`: how each input column was read,
/// for models with one input per column.
pub const COLUMNS: &str = "skiff.columns";
/// JSON object of the preprocessing steps in front of the estimator and their
/// hyperparameters, for models with one input per column.
pub const PREPROCESSING: &str = "skiff.preprocessing";
/// JSON object `{"name": ..., "value": ...}`: the metric measured on the training data.
pub const TRAINING_METRIC: &str = "skiff.training_metric";
/// JSON object: how a search chose the model's hyperparameters (`skiff tune`): the values
/// chosen, the scoring, the mean and standard deviation of their cross-validated score, and how
/// many candidates and folds were tried.
pub const SEARCH: &str = "skiff.search";
