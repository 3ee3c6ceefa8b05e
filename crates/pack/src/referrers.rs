//! Referrers: artifacts about an image (an SBOM, a provenance statement, a signature), each an
//! OCI 1.1 artifact manifest whose `subject` names the image's manifest.
//!
//! In an image layout a referrer is an untagged entry of `index.json` (with its
//! `artifactType`), as oras keeps them. A registry that implements the referrers API
//! (`GET /v2/NAME/referrers/DIGEST`) lists them itself and says so with `OCI-Subject` when one
//! is pushed; for one that does not (distribution 2.8), the client keeps the list in an image
//! index tagged `sha256-<hex of the subject digest>`: the distribution spec's referrers tag
//! schema, which oras and cosign read too. [`crate::registry`] does both.

use std::collections::BTreeMap;

use base64::Engine as _;

use crate::media;
use crate::oci::{Descriptor, ImageManifest};

/// An artifact ready to be attached: its manifest (with `subject` set) and every blob it names.
#[derive(Debug, Clone)]
pub struct Artifact {
    /// The artifact's manifest.
    pub manifest: ImageManifest,
    /// The config and layers, with their bytes.
    pub blobs: Vec<(Descriptor, Vec<u8>)>,
}

impl Artifact {
    /// An artifact of `artifact_type` about `subject`, carrying `layers` (descriptor with its
    /// annotations, and bytes), with the empty config (`{}`, embedded in its descriptor) as
    /// image-spec 1.1 asks of artifacts without a config of their own.
    pub fn new(
        artifact_type: &str,
        subject: &Descriptor,
        layers: Vec<(Descriptor, Vec<u8>)>,
        annotations: BTreeMap<String, String>,
    ) -> Artifact {
        let mut config = Descriptor::for_bytes(media::OCI_EMPTY, media::EMPTY_JSON);
        config.data = Some(base64::engine::general_purpose::STANDARD.encode(media::EMPTY_JSON));
        let manifest = ImageManifest {
            schema_version: 2,
            media_type: Some(media::OCI_MANIFEST.to_string()),
            artifact_type: Some(artifact_type.to_string()),
            config: config.clone(),
            layers: layers.iter().map(|(d, _)| d.clone()).collect(),
            subject: Some(subject.bare()),
            annotations: (!annotations.is_empty()).then_some(annotations),
        };
        let mut blobs = vec![(config, media::EMPTY_JSON.to_vec())];
        blobs.extend(layers);
        Artifact { manifest, blobs }
    }

    /// The manifest's bytes, as stored and pushed.
    pub fn manifest_bytes(&self) -> crate::Result<Vec<u8>> {
        serde_json::to_vec(&self.manifest).map_err(|e| crate::Error::json("artifact manifest", e))
    }
}

/// The entry a referrers list holds for the artifact manifest `manifest` stored as `desc`:
/// its media type, digest and size, with the artifact type and the manifest's annotations.
pub fn entry(desc: &Descriptor, manifest: &ImageManifest) -> Descriptor {
    let mut entry = desc.bare();
    entry.artifact_type = manifest
        .artifact_type
        .clone()
        .or_else(|| Some(manifest.config.media_type.clone()));
    entry.annotations = manifest.annotations.clone();
    entry
}

/// The tag that holds the referrers of `subject_digest` in a registry without the referrers
/// API: `sha256-<hex>`.
pub fn fallback_tag(subject_digest: &str) -> String {
    subject_digest.replacen(':', "-", 1)
}
