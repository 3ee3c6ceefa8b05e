use thiserror::Error;

/// Errors setting up a server.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// A model in the repository could not be loaded.
    #[error("{0}")]
    Model(#[from] skiff_runtime::Error),
    /// The repository directory could not be read.
    #[error("cannot read model repository {path}: {source}")]
    Io {
        /// The directory.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A model's config.json is not valid.
    #[error("{0}")]
    Config(String),
    /// The repository has no models.
    #[error("no models in {0} (expected {0}/<name>/<version>/model.onnx)")]
    EmptyRepository(String),
    /// Two models would be served under one name.
    #[error("two models named {0:?}: give one another name")]
    DuplicateName(String),
    /// The first load of a served repository failed.
    #[error(transparent)]
    Load(LoadError),
    /// The listener failed.
    #[error("serving failed: {0}")]
    Serve(#[source] std::io::Error),
}

/// Result with this crate's [`Error`](enum@Error).
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A model loader's error.
pub type LoadError = Box<dyn std::error::Error + Send + Sync>;
