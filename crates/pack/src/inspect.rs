//! What an image says about itself, read from its manifest and config only: `skiff inspect`.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::layout::Layout;
use crate::media;
use crate::oci::{Descriptor, ImageManifest};

/// An image's identity, platforms, labels, annotations and layers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Inspection {
    /// The reference inspected.
    pub reference: String,
    /// Digest of what the reference names: the index, or the manifest.
    pub digest: String,
    /// Media type of what the reference names.
    pub media_type: String,
    /// `os/architecture[/variant]` of each manifest in an index; the config's own for a
    /// single image.
    pub platforms: Vec<String>,
    /// Digest of the manifest whose details follow: this machine's platform's in an index.
    pub manifest_digest: String,
    /// That manifest's platform, from its config.
    pub platform: String,
    /// When the image was built (the config's `created`).
    pub created: Option<String>,
    /// The config's `Labels` (what `skopeo inspect` shows).
    pub labels: BTreeMap<String, String>,
    /// The manifest's annotations (what registries' pages show).
    pub annotations: BTreeMap<String, String>,
    /// The layers, base first.
    pub layers: Vec<Descriptor>,
    /// Artifacts about the image (SBOM, provenance, signatures): its referrers, each with its
    /// artifact type and annotations.
    pub referrers: Vec<Descriptor>,
}

#[derive(Deserialize)]
struct Config {
    #[serde(default)]
    created: Option<String>,
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    os: String,
    #[serde(default)]
    variant: Option<String>,
    #[serde(default)]
    config: Option<ContainerConfig>,
}

#[derive(Deserialize)]
struct ContainerConfig {
    #[serde(default, rename = "Labels")]
    labels: Option<BTreeMap<String, String>>,
}

impl Inspection {
    /// Builds the inspection from a manifest and its config's bytes; `top` is the digest and
    /// media type of what the reference names, `platforms` an index's entries.
    pub(crate) fn new(
        reference: String,
        top: (String, String),
        platforms: Vec<String>,
        manifest_digest: String,
        manifest: &ImageManifest,
        config: &[u8],
    ) -> Result<Inspection> {
        let parsed: Config = serde_json::from_slice(config)
            .map_err(|e| Error::json(format!("image config of {reference}"), e))?;
        // An artifact (a ModelPack model, a component) has no platform.
        let platform = if parsed.os.is_empty() {
            String::new()
        } else {
            crate::oci::Platform {
                architecture: parsed.architecture,
                os: parsed.os,
                variant: parsed.variant,
            }
            .to_string()
        };
        let platforms = if platforms.is_empty() && !platform.is_empty() {
            vec![platform.clone()]
        } else {
            platforms
        };
        Ok(Inspection {
            reference,
            digest: top.0,
            media_type: top.1,
            platforms,
            manifest_digest,
            platform,
            created: parsed.created,
            labels: parsed.config.and_then(|c| c.labels).unwrap_or_default(),
            annotations: manifest.annotations.clone().unwrap_or_default(),
            layers: manifest.layers.clone(),
            referrers: Vec::new(),
        })
    }

    /// Inspects the image tagged `tag` in the layout at `dir`.
    pub fn from_layout(dir: &Path, tag: &str) -> Result<Inspection> {
        let layout = Layout::open(dir)?;
        let top = layout.tagged(tag)?;
        let platforms = if media::is_index(&top.media_type) {
            let index = layout.read_index(&top)?;
            index
                .manifests
                .iter()
                .filter_map(|m| m.platform.as_ref().map(|p| p.to_string()))
                .collect()
        } else {
            Vec::new()
        };
        let (desc, manifest) = layout.resolve(tag)?;
        let config = layout.read_blob(&manifest.config)?;
        let referrers = layout.referrers(&top.digest)?;
        Ok(Inspection {
            referrers,
            ..Inspection::new(
                format!("oci:{}:{tag}", dir.display()),
                (top.digest, top.media_type),
                platforms,
                desc.digest,
                &manifest,
                &config,
            )?
        })
    }
}
