//! Push images from a layout to a registry and pull them back, over the distribution API.
//!
//! Each blob is checked with HEAD before it is uploaded (or mounted from another repository),
//! the manifest goes up byte for byte as stored (so its digest does not change), and downloads
//! land in a temporary file and move into the layout only after their size and sha256 check
//! out. The requests, with their retries, resumed uploads and logins, are the `transport` module's.

use std::path::{Path, PathBuf};

use oci_client::RegistryOperation;
use serde::Deserialize;

use crate::auth::AuthEnv;
use crate::error::{Error, Result};
use crate::inspect::Inspection;
use crate::layout::Layout;
use crate::media;
use crate::oci::{Descriptor, ImageIndex, ImageManifest, Platform, sha256_digest};
use crate::referrers;
use crate::transport::Session;
pub use crate::transport::{Progress, ProgressSink};

/// How to talk to the registry.
#[derive(Debug, Clone, Default)]
pub struct PushOptions {
    /// Use plain http instead of https.
    pub insecure: bool,
    /// Where to look for credentials; `None` reads the process environment.
    pub auth_env: Option<AuthEnv>,
    /// Told about each blob as it moves, for progress bars.
    pub progress: Option<ProgressSink>,
    /// Which image of a multi-platform index a pull or inspect takes.
    pub platform: PlatformChoice,
}

/// Which images of a multi-platform index a pull takes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum PlatformChoice {
    /// This machine's platform, as docker and skopeo take by default.
    #[default]
    Host,
    /// One platform.
    One(Platform),
    /// Every platform, and the index itself, so that the image keeps its digest.
    All,
}

impl PlatformChoice {
    /// Parses `os/architecture[/variant]` or `all`.
    pub fn parse(text: &str) -> Result<PlatformChoice> {
        if text.trim() == "all" {
            return Ok(PlatformChoice::All);
        }
        Platform::parse_any(text).map(PlatformChoice::One)
    }

    /// The platform to pick out of an index (every platform's is wanted for `All`, and the
    /// host's stands for them where only one can be read).
    fn wanted(&self) -> Platform {
        match self {
            PlatformChoice::One(p) => p.clone(),
            PlatformChoice::Host | PlatformChoice::All => Platform::host(),
        }
    }
}

/// A session with `registry/repository` (about `reference`, a tag or digest), logged in for
/// `op` with the credentials `opts` finds; `action` names what it is for in errors.
pub(crate) async fn connect(
    registry: &str,
    repository: &str,
    reference: &str,
    opts: &PushOptions,
    op: RegistryOperation,
    action: &str,
) -> Result<Session> {
    let s = Session::new(
        registry,
        repository,
        reference,
        opts.insecure,
        opts.auth_env.as_ref(),
    )?;
    s.login(op, action).await?;
    Ok(s)
}

/// What a push did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushReport {
    /// Digest of the pushed manifest (the same as in the layout).
    pub manifest_digest: String,
    /// URL of the manifest in the registry.
    pub manifest_url: String,
    /// Bytes of the image's blobs uploaded (layers and config; the manifest and the referrers
    /// are not counted).
    pub bytes_uploaded: u64,
    /// Blobs the registry already had in the repository.
    pub blobs_skipped: usize,
    /// Blobs mounted from another repository of the registry instead of uploaded.
    pub blobs_mounted: usize,
    /// Referrers of the image (SBOMs, provenance, signatures) pushed with it.
    pub referrers: usize,
}

/// Pushes the image tagged `tag` in the layout to `registry/repository:dest_tag`.
pub async fn push(
    layout_dir: &Path,
    tag: &str,
    registry: &str,
    repository: &str,
    dest_tag: &str,
    opts: &PushOptions,
) -> Result<PushReport> {
    if !crate::oci::valid_tag(dest_tag) {
        return Err(Error::Invalid(format!(
            "tag {dest_tag:?} is not valid (letters, digits, '_', '.', '-'; at most 128; not starting with '.' or '-')"
        )));
    }
    let layout = Layout::open(layout_dir)?;
    // A multi-platform image goes up platform by platform, each manifest by digest, and its
    // index last, under the tag: the tag never names a manifest the registry lacks.
    let top = layout.tagged(tag)?;
    let (manifest_desc, platforms) = if top.media_type == media::OCI_INDEX {
        (top.clone(), layout.read_index(&top)?.manifests)
    } else {
        let (desc, _) = layout.resolve(tag)?;
        (desc.clone(), vec![desc])
    };
    let manifests = platforms
        .iter()
        .map(|desc| layout.read_manifest(desc))
        .collect::<Result<Vec<_>>>()?;
    let blobs: Vec<&Descriptor> = manifests
        .iter()
        .flat_map(|m| std::iter::once(&m.config).chain(&m.layers))
        .collect();
    let manifest_bytes = layout.read_blob(&manifest_desc)?;
    let s = connect(
        registry,
        repository,
        dest_tag,
        opts,
        RegistryOperation::Push,
        "push",
    )
    .await?;

    let mut locations = BlobLocations::load();
    let mut moved = Moved::default();
    upload_blobs(&s, &layout, &blobs, &locations, opts, &mut moved).await?;

    let upload_manifest = |reference: String, desc: &Descriptor, bytes: Vec<u8>| {
        let content_type = desc.media_type.clone();
        let s = &s;
        async move {
            if !content_type.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(Error::Invalid(format!(
                    "media type {content_type:?} of {tag} in {} is not valid (pack the image again)",
                    layout_dir.display()
                )));
            }
            s.put_manifest(&reference, &content_type, bytes.into())
                .await
                .map_err(|e| s.error("push", e))
        }
    };
    if top.media_type == media::OCI_INDEX {
        for desc in &platforms {
            upload_manifest(desc.digest.clone(), desc, layout.read_blob(desc)?).await?;
        }
    }
    let (manifest_url, _) =
        upload_manifest(dest_tag.to_string(), &manifest_desc, manifest_bytes).await?;

    // The registry must name the manifest by the digest the layout has.
    let remote = s
        .manifest_digest(dest_tag, &[&manifest_desc.media_type])
        .await
        .map_err(|e| s.error("push", e))?;
    if remote != manifest_desc.digest {
        return Err(Error::Registry(format!(
            "registry {registry} stored the manifest as {remote}, not {} (the registry rewrote it; push to another registry)",
            manifest_desc.digest
        )));
    }
    for desc in &blobs {
        locations.record(registry, repository, &desc.digest);
    }
    locations.save();
    // The counts are the image's; its referrers (small documents) are counted apart.
    let referrers = push_referrers(
        &s,
        &layout,
        &manifest_desc.digest,
        opts,
        &mut Moved::default(),
    )
    .await?;
    Ok(PushReport {
        manifest_digest: manifest_desc.digest,
        manifest_url,
        bytes_uploaded: moved.bytes_uploaded,
        blobs_skipped: moved.blobs_skipped,
        blobs_mounted: moved.blobs_mounted,
        referrers,
    })
}

/// What moved to a registry.
#[derive(Default)]
pub(crate) struct Moved {
    bytes_uploaded: u64,
    blobs_skipped: usize,
    blobs_mounted: usize,
}

/// Uploads the blobs the repository lacks, each once: skipped where the registry has it,
/// mounted where another of its repositories lends it, else uploaded from the layout.
pub(crate) async fn upload_blobs(
    s: &Session,
    layout: &Layout,
    blobs: &[&Descriptor],
    locations: &BlobLocations,
    opts: &PushOptions,
    moved: &mut Moved,
) -> Result<()> {
    let mut seen = std::collections::BTreeSet::new();
    'blobs: for &desc in blobs {
        if !seen.insert(desc.digest.clone()) {
            continue;
        }
        let exists = s
            .blob_exists(&desc.digest)
            .await
            .map_err(|e| s.error("push", e))?;
        if exists {
            tracing::debug!(digest = %desc.digest, "registry has the blob, skipping");
            moved.blobs_skipped += 1;
            continue;
        }
        // Another repository of this registry that skiff pushed it to or pulled it from can
        // lend it: a mount moves no bytes. A refused mount just means an upload.
        for from in locations.sources(&s.registry, &s.repository, &desc.digest) {
            match s.mount(&desc.digest, &from).await {
                Ok(true) => {
                    tracing::info!(digest = %desc.digest, from, "mounted blob");
                    moved.blobs_mounted += 1;
                    continue 'blobs;
                }
                Ok(false) => tracing::debug!(digest = %desc.digest, from, "mount refused"),
                Err(e) => tracing::debug!(digest = %desc.digest, from, error = ?e, "mount failed"),
            }
        }
        let data = bytes::Bytes::from(layout.read_blob(desc)?);
        tracing::info!(digest = %desc.digest, size = desc.size, "uploading blob");
        s.upload(desc, data, opts.progress.as_ref())
            .await
            .map_err(|e| s.error("push", e))?;
        moved.bytes_uploaded += desc.size;
    }
    Ok(())
}

/// Pushes the referrers the layout holds for `subject_digest` (after the subject, which
/// registries want first); returns how many.
pub(crate) async fn push_referrers(
    s: &Session,
    layout: &Layout,
    subject_digest: &str,
    opts: &PushOptions,
    moved: &mut Moved,
) -> Result<usize> {
    let found = layout.referrers(subject_digest)?;
    let locations = BlobLocations::default();
    for entry in &found {
        let manifest = layout.read_manifest(entry)?;
        let blobs: Vec<&Descriptor> = std::iter::once(&manifest.config)
            .chain(&manifest.layers)
            .collect();
        upload_blobs(s, layout, &blobs, &locations, opts, moved).await?;
        let bytes = layout.read_blob(entry)?;
        let (_, listed) = s
            .put_manifest(&entry.digest, &entry.media_type, bytes.into())
            .await
            .map_err(|e| s.error("push", e))?;
        if !listed {
            add_to_fallback_list(s, subject_digest, entry).await?;
        }
    }
    Ok(found.len())
}

/// Adds `entry` to the referrers tag schema's list of `subject_digest` (a registry without the
/// referrers API).
async fn add_to_fallback_list(s: &Session, subject_digest: &str, entry: &Descriptor) -> Result<()> {
    let tag = referrers::fallback_tag(subject_digest);
    let mut list = match s.get_manifest(&tag, &[media::OCI_INDEX]).await {
        Ok((bytes, _)) => serde_json::from_slice::<ImageIndex>(&bytes).map_err(|e| {
            Error::json(
                format!(
                    "referrers list {tag} of {} from {}",
                    s.repository, s.registry
                ),
                e,
            )
        })?,
        Err(e) if e.status() == Some(404) => ImageIndex::default(),
        Err(e) => return Err(s.error("push", e)),
    };
    if list.manifests.iter().any(|m| m.digest == entry.digest) {
        return Ok(());
    }
    list.manifests.push(entry.clone());
    let bytes = serde_json::to_vec(&list).map_err(|e| Error::json("referrers list", e))?;
    s.put_manifest(&tag, media::OCI_INDEX, bytes.into())
        .await
        .map_err(|e| s.error("push", e))?;
    Ok(())
}

/// The referrers of `subject_digest`: the registry's referrers API, or else the referrers tag
/// schema's list.
pub(crate) async fn list_referrers(s: &Session, subject_digest: &str) -> Result<Vec<Descriptor>> {
    let what = || {
        format!(
            "referrers of {subject_digest} in {} from {}",
            s.repository, s.registry
        )
    };
    if let Some(bytes) = s
        .get_referrers(subject_digest)
        .await
        .map_err(|e| s.error("list referrers", e))?
    {
        let list: ImageIndex =
            serde_json::from_slice(&bytes).map_err(|e| Error::json(what(), e))?;
        return Ok(list.manifests);
    }
    match s
        .get_manifest(
            &referrers::fallback_tag(subject_digest),
            &[media::OCI_INDEX],
        )
        .await
    {
        Ok((bytes, _)) => Ok(serde_json::from_slice::<ImageIndex>(&bytes)
            .map_err(|e| Error::json(what(), e))?
            .manifests),
        Err(e) if e.status() == Some(404) => Ok(Vec::new()),
        Err(e) => Err(s.error("list referrers", e)),
    }
}

/// Downloads the referrers of `subject_digest` (each manifest, checked against its digest, and
/// its blobs) into the layout; returns how many.
async fn pull_referrers(
    s: &Session,
    layout: &Layout,
    subject_digest: &str,
    opts: &PushOptions,
) -> Result<usize> {
    let found = list_referrers(s, subject_digest).await?;
    for entry in &found {
        if !media::is_manifest(&entry.media_type) {
            tracing::debug!(digest = %entry.digest, media_type = %entry.media_type, "skipping a referrer that is not a manifest");
            continue;
        }
        let (bytes, manifest) = fetch_platform_manifest(s, entry).await?;
        if manifest.subject.as_ref().map(|d| d.digest.as_str()) != Some(subject_digest) {
            return Err(Error::Registry(format!(
                "registry {} lists {} as a referrer of {subject_digest}, but its manifest names another subject (report it to the registry's operator)",
                s.registry, entry.digest
            )));
        }
        pull_blobs(s, layout, &manifest, opts).await?;
        let blobs = std::iter::once(&manifest.config)
            .chain(&manifest.layers)
            .map(|d| Ok((d.clone(), layout.read_blob(d)?)))
            .collect::<Result<Vec<_>>>()?;
        layout.add_referrer(&bytes, &manifest, &blobs)?;
    }
    Ok(found.len())
}

/// Pulls `registry/repository` at `reference` (a tag or `sha256:` digest) into the layout at
/// `layout_dir` (created when missing), tags it `tag`, and returns the manifest's descriptor.
///
/// Every blob is checked (size and sha256) before it enters the layout; a pull that fails
/// leaves an existing layout as it was and removes one it created.
pub async fn pull(
    registry: &str,
    repository: &str,
    reference: &str,
    layout_dir: &Path,
    tag: &str,
    opts: &PushOptions,
) -> Result<Descriptor> {
    let created = !layout_dir.exists();
    let pulled = pull_into(registry, repository, reference, layout_dir, tag, opts).await;
    if pulled.is_err() && created && layout_dir.exists() {
        let _ = std::fs::remove_dir_all(layout_dir);
    }
    pulled
}

async fn pull_into(
    registry: &str,
    repository: &str,
    reference: &str,
    layout_dir: &Path,
    tag: &str,
    opts: &PushOptions,
) -> Result<Descriptor> {
    let s = connect(
        registry,
        repository,
        reference,
        opts,
        RegistryOperation::Pull,
        "pull",
    )
    .await?;
    let top = fetch_top(&s, reference).await?;
    // created only now, so a failed login or a missing tag leaves no empty layout behind
    let layout = Layout::create_or_open(layout_dir)?;
    let mut pulled = Vec::new();
    let desc = match &top.index {
        Some(index) if opts.platform == PlatformChoice::All => {
            for entry in index
                .manifests
                .iter()
                .filter(|m| media::is_manifest(&m.media_type))
            {
                let manifest = fetch_platform_manifest(&s, entry).await?;
                pull_blobs(&s, &layout, &manifest.1, opts).await?;
                layout.write_blob(&entry.media_type, &manifest.0)?;
                pulled.push(manifest.1);
            }
            layout.write_blob(&top.media_type, &top.bytes)?
        }
        Some(index) => {
            let entry = choose_platform(&s, reference, index, &opts.platform)?;
            let (bytes, manifest) = fetch_platform_manifest(&s, entry).await?;
            pull_blobs(&s, &layout, &manifest, opts).await?;
            pulled.push(manifest);
            let mut desc = layout.write_blob(&entry.media_type, &bytes)?;
            desc.platform = entry.platform.clone();
            desc
        }
        None => {
            let manifest = parse_manifest(&s, &top.bytes)?;
            pull_blobs(&s, &layout, &manifest, opts).await?;
            let mut desc = layout.write_blob(&top.media_type, &top.bytes)?;
            desc.platform = platform_of(&layout, &manifest.config);
            pulled.push(manifest);
            desc
        }
    };
    layout.tag(&desc, tag)?;
    // Referrers name the registry's top manifest: kept where the layout keeps it too.
    if desc.digest == top.digest {
        pull_referrers(&s, &layout, &top.digest, opts).await?;
    }
    let mut locations = BlobLocations::load();
    for blob in pulled
        .iter()
        .flat_map(|m| std::iter::once(&m.config).chain(&m.layers))
    {
        locations.record(registry, repository, &blob.digest);
    }
    locations.save();
    Ok(desc)
}

/// Downloads an image's config and layers into the layout, each checked before it enters.
async fn pull_blobs(
    s: &Session,
    layout: &Layout,
    manifest: &ImageManifest,
    opts: &PushOptions,
) -> Result<()> {
    // Like an index's other platforms, code precompiled for other architectures stays behind
    // unless every platform is asked for.
    let wanted_arch = match &opts.platform {
        PlatformChoice::All => None,
        PlatformChoice::Host => Some(std::env::consts::ARCH),
        PlatformChoice::One(platform) => Some(platform.architecture.as_str()),
    };
    for desc in std::iter::once(&manifest.config).chain(&manifest.layers) {
        if layout.has_blob(desc) {
            continue;
        }
        if let Some(arch) = wanted_arch
            && desc.media_type == media::WASMTIME_PRECOMPILED
            && !crate::component::is_precompiled_for(desc, arch)
        {
            continue;
        }
        layout.blob_path(&desc.digest)?;
        let tmp = layout.temp_blob_file()?;
        let file = tmp
            .as_file()
            .try_clone()
            .map_err(|e| Error::io("open", tmp.path().to_path_buf(), e))?;
        let mut out = tokio::fs::File::from_std(file);
        s.download(desc, &mut out, opts.progress.as_ref())
            .await
            .map_err(|e| match s.error("pull", e) {
                // Name the blob: the layers of one image fail alike only by chance.
                Error::Registry(m) => Error::Registry(format!("{m} (blob {})", desc.digest)),
                other => other,
            })?;
        tokio::io::AsyncWriteExt::flush(&mut out)
            .await
            .map_err(|e| Error::io("write", tmp.path().to_path_buf(), e))?;
        layout.import_blob(tmp, desc).map_err(|e| {
            Error::Registry(format!("registry {} sent a bad blob: {e}", s.registry))
        })?;
    }
    Ok(())
}

/// What a reference names, as the registry sent it: a manifest, or an index.
pub(crate) struct Top {
    pub(crate) bytes: Vec<u8>,
    pub(crate) digest: String,
    pub(crate) media_type: String,
    pub(crate) index: Option<ImageIndex>,
}

pub(crate) async fn fetch_top(s: &Session, reference: &str) -> Result<Top> {
    let named = reference.starts_with("sha256:").then_some(reference);
    let (bytes, digest) = fetch_manifest(s, reference, named).await?;
    let media_type = media_type_of(&bytes).map_err(|e| {
        Error::json(
            format!("manifest of {} from {}", s.repository, s.registry),
            e,
        )
    })?;
    let index = if media::is_index(&media_type) {
        Some(serde_json::from_slice(&bytes).map_err(|e| {
            Error::json(
                format!("image index of {} from {}", s.repository, s.registry),
                e,
            )
        })?)
    } else {
        None
    };
    Ok(Top {
        bytes,
        digest,
        media_type,
        index,
    })
}

/// The entry of `index` for the platform `choice` names.
fn choose_platform<'a>(
    s: &Session,
    reference: &str,
    index: &'a ImageIndex,
    choice: &PlatformChoice,
) -> Result<&'a Descriptor> {
    let wanted = choice.wanted();
    let manifests = || {
        index
            .manifests
            .iter()
            .filter(|m| media::is_manifest(&m.media_type))
    };
    manifests()
        .find(|m| m.platform.as_ref().is_some_and(|p| p.matches(&wanted)))
        .ok_or_else(|| {
            let there: Vec<String> = manifests()
                .filter_map(|m| m.platform.as_ref().map(Platform::to_string))
                .collect();
            Error::Registry(format!(
                "registry {} has no {wanted} image under {}:{reference} (it has {}; pick one with --platform)",
                s.registry,
                s.repository,
                if there.is_empty() { "none".to_string() } else { there.join(", ") }
            ))
        })
}

/// The manifest an index entry names, checked against the entry's digest and size.
pub(crate) async fn fetch_platform_manifest(
    s: &Session,
    entry: &Descriptor,
) -> Result<(Vec<u8>, ImageManifest)> {
    let (bytes, _) = fetch_manifest(s, &entry.digest, Some(&entry.digest)).await?;
    if entry.size != bytes.len() as u64 {
        return Err(Error::Registry(format!(
            "registry {} sent a manifest of {} bytes, not {} (try again, or report it to the registry's operator)",
            s.registry,
            bytes.len(),
            entry.size
        )));
    }
    let manifest = parse_manifest(s, &bytes)?;
    Ok((bytes, manifest))
}

pub(crate) fn parse_manifest(s: &Session, bytes: &[u8]) -> Result<ImageManifest> {
    serde_json::from_slice(bytes).map_err(|e| {
        Error::json(
            format!("manifest of {} from {}", s.repository, s.registry),
            e,
        )
    })
}

/// Downloads the manifest `reference` names and checks that it hashes to the digest the
/// registry gives it and to `expected`, where the digest is known beforehand.
pub(crate) async fn fetch_manifest(
    s: &Session,
    reference: &str,
    expected: Option<&str>,
) -> Result<(Vec<u8>, String)> {
    let registry = &s.registry;
    let (bytes, told) = s
        .get_manifest(reference, &MANIFEST_TYPES)
        .await
        .map_err(|e| s.error("pull", e))?;
    let actual = sha256_digest(&bytes);
    for want in [told.as_deref(), expected].into_iter().flatten() {
        if want != actual {
            return Err(Error::Registry(format!(
                "registry {registry} sent a manifest that hashes to {actual}, not {want} (try again, or report it to the registry's operator)"
            )));
        }
    }
    Ok((bytes, actual))
}

/// What a pull asks for, in the order registries expect in `Accept`.
const MANIFEST_TYPES: [&str; 4] = [
    media::OCI_MANIFEST,
    media::OCI_INDEX,
    media::DOCKER_MANIFEST,
    media::DOCKER_MANIFEST_LIST,
];

/// Reads an image's manifest and config from the registry, not its layers: what
/// `skiff inspect` shows.
pub async fn inspect(
    registry: &str,
    repository: &str,
    reference: &str,
    opts: &PushOptions,
) -> Result<Inspection> {
    /// Larger configs are not images skiff reads.
    const MAX_CONFIG: u64 = 4 << 20;
    let s = connect(
        registry,
        repository,
        reference,
        opts,
        RegistryOperation::Pull,
        "inspect",
    )
    .await?;
    let top = fetch_top(&s, reference).await?;
    let (digest, manifest, platforms) = match &top.index {
        Some(index) => {
            let entry = choose_platform(&s, reference, index, &opts.platform)?;
            let platforms = index
                .manifests
                .iter()
                .filter_map(|m| m.platform.as_ref().map(Platform::to_string))
                .collect();
            let (_, manifest) = fetch_platform_manifest(&s, entry).await?;
            (entry.digest.clone(), manifest, platforms)
        }
        None => (
            top.digest.clone(),
            parse_manifest(&s, &top.bytes)?,
            Vec::new(),
        ),
    };
    let config = &manifest.config;
    if config.size > MAX_CONFIG {
        return Err(Error::Registry(format!(
            "registry {registry} lists a config of {} bytes for {repository}:{reference}; skiff reads configs up to {MAX_CONFIG} bytes",
            config.size
        )));
    }
    let mut bytes = Vec::new();
    s.download(config, &mut bytes, None)
        .await
        .map_err(|e| s.error("inspect", e))?;
    if bytes.len() as u64 != config.size || sha256_digest(&bytes) != config.digest {
        return Err(Error::CorruptBlob {
            digest: config.digest.clone(),
            reason: format!(
                "registry {registry} sent {} bytes hashing to {}",
                bytes.len(),
                sha256_digest(&bytes)
            ),
        });
    }
    let referrers = list_referrers(&s, &top.digest).await?;
    Ok(Inspection {
        referrers,
        ..Inspection::new(
            format!("docker://{registry}/{repository}:{reference}"),
            (top.digest, top.media_type),
            platforms,
            digest,
            &manifest,
            &bytes,
        )?
    })
}

/// Which repositories of each registry are known to hold a blob, because skiff pushed it there
/// or pulled it from there: where a push to another repository can mount it from, as docker
/// remembers it. Kept in `$XDG_CACHE_HOME/skiff/blob-locations.json` (or `~/.cache/...`); it is
/// only a hint, so a missing or unreadable file means no hints and a failed write is ignored.
#[derive(Default, serde::Serialize, Deserialize)]
pub(crate) struct BlobLocations {
    /// registry → digest → repositories, most recent last.
    registries: std::collections::BTreeMap<String, std::collections::BTreeMap<String, Vec<String>>>,
}

impl BlobLocations {
    /// Repositories remembered per blob; the oldest is forgotten beyond this.
    const MAX_REPOSITORIES: usize = 8;

    fn path() -> Option<PathBuf> {
        let cache = std::env::var_os("XDG_CACHE_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
        Some(cache.join("skiff").join("blob-locations.json"))
    }

    fn load() -> BlobLocations {
        Self::path()
            .and_then(|p| std::fs::read(p).ok())
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default()
    }

    /// Other repositories of `registry` known to hold `digest`, most recent first.
    fn sources(&self, registry: &str, repository: &str, digest: &str) -> Vec<String> {
        self.registries
            .get(registry)
            .and_then(|blobs| blobs.get(digest))
            .map(|repos| {
                repos
                    .iter()
                    .rev()
                    .filter(|r| *r != repository)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    fn record(&mut self, registry: &str, repository: &str, digest: &str) {
        let repos = self
            .registries
            .entry(registry.to_string())
            .or_default()
            .entry(digest.to_string())
            .or_default();
        repos.retain(|r| r != repository);
        repos.push(repository.to_string());
        if repos.len() > Self::MAX_REPOSITORIES {
            repos.remove(0);
        }
    }

    fn save(&self) {
        let Some(path) = Self::path() else { return };
        let written = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| {
                let bytes = serde_json::to_vec(self).map_err(std::io::Error::other)?;
                skiff_data::write_atomic(&path, &bytes)
            });
        if let Err(e) = written {
            tracing::debug!(path = %path.display(), error = %e, "cannot remember blob locations");
        }
    }
}

fn media_type_of(bytes: &[u8]) -> serde_json::Result<String> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Typed {
        #[serde(default)]
        media_type: Option<String>,
        #[serde(default)]
        manifests: Option<serde_json::Value>,
    }
    let typed: Typed = serde_json::from_slice(bytes)?;
    Ok(match (typed.media_type, typed.manifests) {
        (Some(t), _) => t,
        (None, Some(_)) => media::OCI_INDEX.to_string(),
        (None, None) => media::OCI_MANIFEST.to_string(),
    })
}

fn platform_of(layout: &Layout, config: &Descriptor) -> Option<Platform> {
    let bytes = layout.read_blob(config).ok()?;
    let platform: Platform = serde_json::from_slice(&bytes).ok()?;
    Some(platform)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types_are_sniffed() {
        assert_eq!(
            media_type_of(br#"{"schemaVersion":2,"manifests":[]}"#).unwrap(),
            media::OCI_INDEX
        );
        assert_eq!(
            media_type_of(br#"{"schemaVersion":2,"config":{}}"#).unwrap(),
            media::OCI_MANIFEST
        );
        assert_eq!(
            media_type_of(
                br#"{"mediaType":"application/vnd.docker.distribution.manifest.v2+json"}"#
            )
            .unwrap(),
            media::DOCKER_MANIFEST
        );
    }
}
