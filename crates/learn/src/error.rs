use thiserror::Error;

/// Errors fitting or using an estimator.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// A hyperparameter is out of its valid range.
    #[error("invalid hyperparameter {name}={value}: {expected}")]
    InvalidParam {
        /// scikit-learn's name for it.
        name: String,
        /// The value given.
        value: String,
        /// What is valid.
        expected: String,
    },
    /// No estimator has this name.
    #[error("unknown estimator {name:?} (valid: {valid})")]
    UnknownAlgorithm {
        /// The name given.
        name: String,
        /// Valid names, comma separated.
        valid: String,
    },
    /// A hyperparameter name the estimator does not have.
    #[error("{algorithm} has no hyperparameter {name:?} (valid: {valid})")]
    UnknownParam {
        /// The estimator.
        algorithm: &'static str,
        /// The name given.
        name: String,
        /// Valid names, comma separated.
        valid: String,
    },
    /// Features and target disagree in length, or there are no rows.
    #[error("{0}")]
    Shape(String),
    /// The target has fewer than two distinct classes.
    #[error("target has a single class ({0:?}): a classifier needs at least two")]
    SingleClass(String),
    /// A feature value is NaN or infinite.
    #[error("features contain NaN or infinite values: clean or impute them first")]
    NonFinite,
    /// The target does not suit the estimator's task.
    #[error("{0}")]
    Target(String),
    /// More clusters or neighbours asked for than there are rows.
    #[error("{0}")]
    TooFewRows(String),
    /// The table could not be read, or a column is missing or not numeric.
    #[error(transparent)]
    Data(#[from] skiff_data::Error),
    /// A column does not suit its preprocessing step, or holds a value the step refuses.
    #[error("{0}")]
    Column(String),
    /// Cross-validation or a search cannot run as asked: too few rows or class members for the
    /// folds, a scoring that does not suit the estimator, a bad grid.
    #[error("{0}")]
    Selection(String),
    /// The optimiser failed.
    #[error("fit failed: {0}")]
    Fit(String),
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
