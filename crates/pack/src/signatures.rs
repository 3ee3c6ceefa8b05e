//! Signing images where they live and checking their signatures: `skiff sign`, `skiff verify`
//! and `skiff serve --verify-key`. The cryptography and cosign's formats are [`crate::sign`]'s.
//!
//! A signature goes up in both of cosign's legacy forms: the manifest tagged
//! `sha256-<hex>.sig` that `cosign verify` reads (signing again adds a layer to it, as cosign
//! does), and the same signature as a referrer of the image, which push and pull carry along
//! with the SBOM and the provenance. Verification accepts either, and cosign 3's own sigstore
//! bundles (referrers) too: an image signed by cosign verifies in skiff.

use std::collections::BTreeMap;
use std::path::Path;

use oci_client::RegistryOperation;

use crate::error::{Error, Result};
use crate::layout::Layout;
use crate::media;
use crate::oci::{Descriptor, ImageManifest};
use crate::referrers::Artifact;
use crate::registry::{
    BlobLocations, Moved, PushOptions, connect, fetch_manifest, fetch_top, list_referrers,
    parse_manifest, push_referrers, upload_blobs,
};
use crate::sign::{self, SignedPayload, SigningKey, VerifiedSignature, VerifyingKey};
use crate::transport::Session;

/// Signature blobs larger than this are not signatures (cosign's are a few hundred bytes).
const MAX_SIGNATURE_BLOB: u64 = 1 << 20;

/// What `sign` wrote.
#[derive(Debug, Clone)]
pub struct Signed {
    /// The digest of the image signed (its manifest, or its index).
    pub digest: String,
    /// The tag of cosign's signature manifest.
    pub tag: String,
    /// The signature's referrer.
    pub referrer: Descriptor,
}

/// A signature that checked out, and where it was found.
#[derive(Debug, Clone)]
pub struct Verified {
    /// The digest of the image verified: serve and pull by this digest, not by the tag.
    pub digest: String,
    /// The signature.
    pub signature: VerifiedSignature,
    /// Where: `tag sha256-<hex>.sig` or `referrer sha256:...`.
    pub found_in: String,
}

/// Whether a referrer listed so may hold a signature: not one of the other artifacts skiff
/// attaches. (The list's artifact type alone does not tell: cosign 3 lists its bundles under
/// the empty config's media type on registries without the referrers API.)
fn may_be_signature(referrer: &Descriptor) -> bool {
    !matches!(
        referrer.artifact_type.as_deref(),
        Some(media::SPDX_JSON | media::IN_TOTO)
    )
}

/// Whether a referrer's manifest is a signature: cosign's signature artifact, or its sigstore
/// bundle.
fn is_signature(manifest: &ImageManifest) -> bool {
    matches!(
        manifest
            .artifact_type
            .as_deref()
            .unwrap_or(&manifest.config.media_type),
        media::COSIGN_SIGNATURE_ARTIFACT | media::SIGSTORE_BUNDLE_V03
    )
}

/// Signs the image `reference` names in `registry/repository` with `key`.
pub async fn sign(
    registry: &str,
    repository: &str,
    reference: &str,
    key: &SigningKey,
    opts: &PushOptions,
) -> Result<Signed> {
    let s = connect(
        registry,
        repository,
        reference,
        opts,
        RegistryOperation::Push,
        "sign",
    )
    .await?;
    let top = fetch_top(&s, reference).await?;
    let subject = Descriptor::of_digest(&top.media_type, &top.digest, top.bytes.len() as u64);
    let payload = sign::simple_signing_payload(&format!("{registry}/{repository}"), &top.digest);
    let signed = SignedPayload {
        signature: sign::sign(key, &payload),
        payload,
    };

    // cosign's tag: the signatures already there, and this one after them.
    let tag = sign::signature_tag(&top.digest);
    let mut signatures = match s.get_manifest(&tag, &[media::OCI_MANIFEST]).await {
        Ok((bytes, _)) => {
            let manifest = parse_manifest(&s, &bytes)?;
            let blobs = fetch_blobs(&s, &manifest).await?;
            sign::read_signatures(&manifest, |d| blob_of(&blobs, d))?
        }
        Err(e) if e.status() == Some(404) => Vec::new(),
        Err(e) => return Err(s.error("sign", e)),
    };
    signatures.push(signed.clone());
    let (manifest, blobs) = sign::signature_manifest(&signatures)?;
    let staging = tempfile::tempdir().map_err(|e| Error::io("create", std::env::temp_dir(), e))?;
    let layout = Layout::create_or_open(staging.path())?;
    for (desc, bytes) in &blobs {
        layout.write_blob(&desc.media_type, bytes)?;
    }
    let descs: Vec<&Descriptor> = blobs.iter().map(|(d, _)| d).collect();
    let mut moved = Moved::default();
    upload_blobs(
        &s,
        &layout,
        &descs,
        &BlobLocations::default(),
        opts,
        &mut moved,
    )
    .await?;
    let bytes = serde_json::to_vec(&manifest).map_err(|e| Error::json("signature manifest", e))?;
    s.put_manifest(&tag, media::OCI_MANIFEST, bytes.into())
        .await
        .map_err(|e| s.error("sign", e))?;

    // The same signature as a referrer, which travels with the image.
    let (manifest, blobs) = sign::signature_referrer(&subject, &[signed])?;
    let referrer = layout.attach(&Artifact { manifest, blobs })?;
    push_referrers(&s, &layout, &top.digest, opts, &mut moved).await?;
    Ok(Signed {
        digest: top.digest,
        tag,
        referrer,
    })
}

/// Checks that the image `reference` names in `registry/repository` carries a signature by
/// `key` over its digest: cosign's `.sig` tag, or a signature referrer.
pub async fn verify(
    registry: &str,
    repository: &str,
    reference: &str,
    key: &VerifyingKey,
    opts: &PushOptions,
) -> Result<Verified> {
    let s = connect(
        registry,
        repository,
        reference,
        opts,
        RegistryOperation::Pull,
        "verify",
    )
    .await?;
    let (_, digest) = fetch_manifest(&s, reference, None).await?;
    let mut candidates = Vec::new();
    let tag = sign::signature_tag(&digest);
    match s.get_manifest(&tag, &[media::OCI_MANIFEST]).await {
        Ok((bytes, _)) => candidates.push((format!("tag {tag}"), parse_manifest(&s, &bytes)?)),
        Err(e) if e.status() == Some(404) => {}
        Err(e) => return Err(s.error("verify", e)),
    }
    for referrer in list_referrers(&s, &digest).await? {
        if may_be_signature(&referrer) && media::is_manifest(&referrer.media_type) {
            let (bytes, _) = fetch_manifest(&s, &referrer.digest, Some(&referrer.digest)).await?;
            let manifest = parse_manifest(&s, &bytes)?;
            if is_signature(&manifest) {
                candidates.push((format!("referrer {}", referrer.digest), manifest));
            }
        }
    }
    let mut checked: Vec<Candidate<'_>> = Vec::new();
    for (found_in, manifest) in candidates {
        let blobs = fetch_blobs(&s, &manifest).await?;
        checked.push((found_in, manifest, Box::new(move |d| blob_of(&blobs, d))));
    }
    let image = format!("docker://{registry}/{repository}:{reference}");
    let (signature, found_in) = best(&digest, key, checked, &image)?;
    Ok(Verified {
        digest,
        signature,
        found_in,
    })
}

/// Checks that the image tagged `tag` in the layout at `dir` carries a signature by `key`: one
/// that came with it from a registry (a referrer), or a `.sig` tag in the layout.
pub fn verify_layout(dir: &Path, tag: &str, key: &VerifyingKey) -> Result<Verified> {
    let layout = Layout::open(dir)?;
    let digest = layout.tagged(tag)?.digest;
    let mut candidates = Vec::new();
    let sig_tag = sign::signature_tag(&digest);
    if layout.tags()?.contains(&sig_tag) {
        let desc = layout.tagged(&sig_tag)?;
        candidates.push((format!("tag {sig_tag}"), layout.read_manifest(&desc)?));
    }
    for referrer in layout.referrers(&digest)? {
        let manifest = layout.read_manifest(&referrer)?;
        if is_signature(&manifest) {
            candidates.push((format!("referrer {}", referrer.digest), manifest));
        }
    }
    let checked: Vec<Candidate<'_>> = candidates
        .into_iter()
        .map(|(found_in, manifest)| {
            let read: BlobReader<'_> = Box::new(|d| layout.read_blob(d));
            (found_in, manifest, read)
        })
        .collect();
    let image = format!("oci:{}:{tag}", dir.display());
    let (signature, found_in) = best(&digest, key, checked, &image)?;
    Ok(Verified {
        digest,
        signature,
        found_in,
    })
}

/// Reads a blob of a signature manifest.
type BlobReader<'a> = Box<dyn Fn(&Descriptor) -> Result<Vec<u8>> + 'a>;

/// A signature manifest to check: where it was found, the manifest, and how to read its blobs.
type Candidate<'a> = (String, ImageManifest, BlobReader<'a>);

/// The first signature manifest that verifies; else the most telling reason none did (a
/// signature by another key says more than none at all).
fn best(
    digest: &str,
    key: &VerifyingKey,
    candidates: Vec<Candidate<'_>>,
    image: &str,
) -> Result<(VerifiedSignature, String)> {
    let mut last = None;
    for (found_in, manifest, read) in candidates {
        match sign::verify_signature_manifest(&manifest, key, digest, |d| read(d)) {
            Ok(signature) => return Ok((signature, found_in)),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        Error::Signature(format!(
            "{image} ({digest}) is not signed: no {} tag and no signature referrer (sign it with skiff sign --key KEY, or cosign sign)",
            sign::signature_tag(digest)
        ))
    }))
}

/// Downloads the small blobs a signature manifest names, each checked by the caller.
async fn fetch_blobs(s: &Session, manifest: &ImageManifest) -> Result<BTreeMap<String, Vec<u8>>> {
    let mut blobs = BTreeMap::new();
    for desc in sign::signature_layers(manifest) {
        if desc.size > MAX_SIGNATURE_BLOB {
            return Err(Error::Signature(format!(
                "registry {} lists a signature layer of {} bytes; signatures are small (the signature manifest is not cosign's)",
                s.registry, desc.size
            )));
        }
        let mut bytes = Vec::new();
        s.download(desc, &mut bytes, None)
            .await
            .map_err(|e| s.error("verify", e))?;
        blobs.insert(desc.digest.clone(), bytes);
    }
    Ok(blobs)
}

fn blob_of(blobs: &BTreeMap<String, Vec<u8>>, desc: &Descriptor) -> Result<Vec<u8>> {
    blobs
        .get(&desc.digest)
        .cloned()
        .ok_or_else(|| Error::Signature(format!("signature blob {} was not fetched", desc.digest)))
}
