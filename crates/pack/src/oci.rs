//! The OCI data types skiff reads and writes: descriptors, image manifests and indexes (image-spec
//! 1.1, with `subject`, `artifactType` and `data` for referrers and artifacts), platforms, and the
//! checks on digests and tags. The media types are [`crate::media`]'s; this module depends on
//! nothing else of the crate.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::error::{Error, Result};
use crate::media;

/// A content descriptor (image-spec `descriptor.md`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// Media type of the referenced content.
    pub media_type: String,
    /// `sha256:<hex>` of the content.
    pub digest: String,
    /// Size of the content in bytes.
    pub size: u64,
    /// Platform, on manifests listed in an index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    /// Artifact type, for artifacts (and the manifests a referrers list names).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// The content itself, base64, for small blobs embedded in their descriptor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
}

impl Descriptor {
    /// Describes `bytes` with `media_type`.
    pub fn for_bytes(media_type: &str, bytes: &[u8]) -> Descriptor {
        Descriptor {
            media_type: media_type.to_string(),
            digest: sha256_digest(bytes),
            size: bytes.len() as u64,
            platform: None,
            annotations: None,
            artifact_type: None,
            data: None,
        }
    }

    /// The descriptor without platform, annotations or embedded data: what a `subject` names.
    pub fn bare(&self) -> Descriptor {
        Descriptor::of_digest(&self.media_type, &self.digest, self.size)
    }

    /// Describes content of `media_type` known by its digest and size.
    pub fn of_digest(media_type: &str, digest: &str, size: u64) -> Descriptor {
        Descriptor {
            media_type: media_type.to_string(),
            digest: digest.to_string(),
            size,
            platform: None,
            annotations: None,
            artifact_type: None,
            data: None,
        }
    }
}

/// A platform (`architecture`, `os`, optional `variant`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    /// GOARCH value, e.g. `amd64`.
    pub architecture: String,
    /// GOOS value, e.g. `linux`.
    pub os: String,
    /// CPU variant, e.g. `v8`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl Platform {
    /// The platforms skiff builds server images for, as `os/architecture`.
    pub const SUPPORTED: [&str; 2] = ["linux/amd64", "linux/arm64"];

    /// Parses `os/architecture` (one of [`Platform::SUPPORTED`]). arm64 is `v8`, as docker
    /// and the OCI image spec name it.
    pub fn parse(text: &str) -> Result<Platform> {
        let supported = Platform::SUPPORTED.join(", ");
        match text.trim().split_once('/') {
            Some((os, architecture)) if Platform::SUPPORTED.contains(&text.trim()) => {
                Ok(Platform::new(os, architecture))
            }
            _ => Err(Error::Invalid(format!(
                "platform {text:?} is not supported (use one or more of {supported}, separated by commas)"
            ))),
        }
    }

    /// Parses any `os/architecture[/variant]`, for choosing among another image's platforms.
    pub fn parse_any(text: &str) -> Result<Platform> {
        let parts: Vec<&str> = text.trim().split('/').collect();
        let named =
            |s: &&str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        match parts[..] {
            [os, architecture] if [os, architecture].iter().all(named) => Ok(Platform {
                architecture: architecture.into(),
                os: os.into(),
                variant: None,
            }),
            [os, architecture, variant] if [os, architecture, variant].iter().all(named) => {
                Ok(Platform {
                    architecture: architecture.into(),
                    os: os.into(),
                    variant: Some(variant.into()),
                })
            }
            _ => Err(Error::Invalid(format!(
                "platform {text:?} is not os/architecture[/variant] (e.g. linux/amd64 or linux/arm64/v8)"
            ))),
        }
    }

    /// `os/architecture`, with the variant skiff gives the architecture (`v8` for arm64).
    fn new(os: &str, architecture: &str) -> Platform {
        Platform {
            architecture: architecture.to_string(),
            os: os.to_string(),
            variant: (architecture == "arm64").then(|| "v8".to_string()),
        }
    }

    /// The platform of the machine skiff runs on.
    pub fn host() -> Platform {
        let architecture = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            other => other,
        };
        Platform::new("linux", architecture)
    }

    /// Whether an image for `self` serves a request for `wanted`: the same os and architecture,
    /// and the same variant where both name one.
    pub fn matches(&self, wanted: &Platform) -> bool {
        self.os == wanted.os
            && self.architecture == wanted.architecture
            && (self.variant.is_none()
                || wanted.variant.is_none()
                || self.variant == wanted.variant)
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        match &self.variant {
            Some(variant) => write!(f, "/{variant}"),
            None => Ok(()),
        }
    }
}

/// An image manifest (image-spec `manifest.md`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageManifest {
    /// Always 2.
    pub schema_version: u32,
    /// [`media::OCI_MANIFEST`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// Artifact type, for artifacts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// The config blob.
    pub config: Descriptor,
    /// Layers, base first.
    pub layers: Vec<Descriptor>,
    /// The manifest this one refers to (an SBOM's image, a signature's image).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// An image index (image-spec `image-index.md`); `index.json` is one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageIndex {
    /// Always 2.
    pub schema_version: u32,
    /// [`media::OCI_INDEX`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// Artifact type, for an index that is an artifact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// The manifests.
    pub manifests: Vec<Descriptor>,
    /// The manifest this index refers to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

impl Default for ImageIndex {
    fn default() -> Self {
        ImageIndex {
            schema_version: 2,
            media_type: Some(media::OCI_INDEX.to_string()),
            artifact_type: None,
            manifests: Vec::new(),
            subject: None,
            annotations: None,
        }
    }
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(bytes))
}

/// Whether `digest` is `sha256:` and 64 lower case hex digits (no path tricks possible).
pub fn valid_digest(digest: &str) -> bool {
    digest.strip_prefix("sha256:").is_some_and(|hex| {
        hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// Tags: `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}` (distribution spec).
pub fn valid_tag(tag: &str) -> bool {
    let mut chars = tag.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphanumeric() || c == '_' => {}
        _ => return false,
    }
    tag.len() <= 128 && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}
