//! Why a model answers as it does, and whether it treats groups alike.
//!
//! - [`importance`]: permutation importance, as `sklearn.inspection.permutation_importance`.
//! - [`pdp`]: partial dependence by scikit-learn's brute method, its grid included.
//! - [`fairness`]: Fairlearn's `MetricFrame` and its parity measures.
//!
//! Importance and partial dependence work on any model: they change a model's inputs (a
//! [`Feature`] is a column of them) and call back for its score or its predictions, so they
//! know nothing of ONNX, backends or tables.

pub mod fairness;
mod feature;
pub mod importance;
pub mod pdp;

pub use feature::{Feature, Value};

/// What can go wrong while inspecting a model.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request does not fit the model or the data; the message names the fix.
    #[error("{0}")]
    Invalid(String),
    /// The model failed on changed inputs.
    #[error(transparent)]
    Model(#[from] skiff_runtime::Error),
}

/// This crate's results.
pub type Result<T> = std::result::Result<T, Error>;
