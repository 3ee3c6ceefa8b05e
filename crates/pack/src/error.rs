//! Errors of `skiff-pack`.

use std::path::PathBuf;

/// What can go wrong while packing, pushing or pulling an image.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An image reference that cannot be parsed.
    #[error("invalid image reference {reference:?}: {reason}")]
    InvalidReference {
        /// The reference as written.
        reference: String,
        /// What is wrong and how to write it.
        reason: String,
    },

    /// A file system operation failed.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        /// What was being done (`read`, `write`, ...).
        action: &'static str,
        /// The path it was done to.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// A directory that is not an OCI image layout.
    #[error("{} is not an OCI image layout: {reason} (create it with skiff pack)", dir.display())]
    NotALayout {
        /// The directory.
        dir: PathBuf,
        /// What is missing or wrong.
        reason: String,
    },

    /// A tag missing from a layout's index.json.
    #[error("tag {tag:?} not found in {} (tags: {available})", dir.display())]
    TagNotFound {
        /// The layout directory.
        dir: PathBuf,
        /// The tag asked for.
        tag: String,
        /// The tags there are, comma separated (or `none`).
        available: String,
    },

    /// A blob whose content does not match its descriptor.
    #[error("blob {digest} is corrupt: {reason} (delete it and pack or pull the image again)")]
    CorruptBlob {
        /// The digest the blob should have.
        digest: String,
        /// Size or digest mismatch.
        reason: String,
    },

    /// A digest that is not `sha256:` followed by 64 lower case hex digits.
    #[error("unsupported digest {0:?}: only sha256 digests (sha256:<64 hex digits>) are supported")]
    InvalidDigest(String),

    /// A JSON document that cannot be parsed or written.
    #[error("invalid {what}: {source}")]
    Json {
        /// Which document.
        what: String,
        /// The underlying error.
        #[source]
        source: serde_json::Error,
    },

    /// An image without the expected content.
    #[error("image {image} has no {what} (pack it with skiff pack)")]
    MissingContent {
        /// The image, as `oci:DIR:TAG`.
        image: String,
        /// What is missing.
        what: String,
    },

    /// An input the caller gave that cannot be used.
    #[error("{0}")]
    Invalid(String),

    /// A credentials file that cannot be used.
    #[error("cannot use credentials in {}: {reason} (fix or remove the entry, or log in again)", path.display())]
    Credentials {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// A registry operation that failed.
    #[error("{0}")]
    Registry(String),

    /// A key that cannot be used, or a signature that does not verify.
    #[error("{0}")]
    Signature(String),
}

/// Result with [`Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn json(what: impl Into<String>, source: serde_json::Error) -> Self {
        Error::Json {
            what: what.into(),
            source,
        }
    }
}
