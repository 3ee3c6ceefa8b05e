use thiserror::Error;

/// Errors loading or running a model.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// The bytes are not an ONNX model.
    #[error(
        "{source_name} is not an ONNX model ({reason}): pass a .onnx file written by skiff fit or an ONNX exporter"
    )]
    NotOnnx {
        /// The file or source given.
        source_name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The model is ONNX, but uses something the runtime cannot run.
    #[error("cannot run {source_name}: {reason}")]
    Unsupported {
        /// The file or source given.
        source_name: String,
        /// What is missing.
        reason: String,
    },
    /// The model has no part SHAP values can be computed for.
    #[error(
        "cannot explain {source_name}: {reason}; SHAP values here are for tree ensembles and linear models (skiff explain importance and pdp work on any model)"
    )]
    NotExplainable {
        /// The file or source given.
        source_name: String,
        /// What it has instead.
        reason: String,
    },
    /// The backend asked for cannot run here.
    #[error("{0}")]
    Backend(String),
    /// The inputs do not fit the model.
    #[error("{0}")]
    BadInput(String),
    /// Inference failed.
    #[error("inference failed: {0}")]
    Run(String),
    /// Reading the model file failed.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The path given.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
