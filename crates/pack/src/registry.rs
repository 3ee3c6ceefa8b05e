//! Push images from a layout to a registry and pull them back, over the distribution API.
//!
//! Built on oci-client's blob-level calls: each blob is checked with HEAD before it is
//! uploaded, the manifest goes up byte for byte as stored (so its digest does not change),
//! downloads land in a temporary file and move into the layout only after their size and
//! sha256 check out, and every registry call is retried a few times on 5xx, 429 and
//! connection errors.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::StreamExt as _;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::{Client, RegistryOperation};
use serde::Deserialize;
use tokio::io::AsyncWrite;

use crate::auth::{AuthEnv, RegistryAuth};
use crate::error::{Error, Result};
use crate::inspect::Inspection;
use crate::layout::{Descriptor, ImageIndex, ImageManifest, Layout, Platform, sha256_digest};
use crate::media;

/// How to talk to the registry.
#[derive(Debug, Clone, Default)]
pub struct PushOptions {
    /// Use plain http instead of https.
    pub insecure: bool,
    /// Where to look for credentials; `None` reads the process environment.
    pub auth_env: Option<AuthEnv>,
    /// Told about each blob as it moves, for progress bars.
    pub progress: Option<ProgressSink>,
}

/// Hears how blob transfers go: a progress bar's feed.
pub trait Progress: Send + Sync {
    /// A transfer of `size` bytes of `digest` starts (again, after a retry).
    fn begin(&self, digest: &str, size: u64);
    /// `bytes` more of `digest` moved.
    fn advance(&self, digest: &str, bytes: u64);
    /// The transfer of `digest` is done.
    fn end(&self, digest: &str);
}

/// A shared [`Progress`].
#[derive(Clone)]
pub struct ProgressSink(pub std::sync::Arc<dyn Progress>);

impl std::fmt::Debug for ProgressSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ProgressSink")
    }
}

/// What a push did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushReport {
    /// Digest of the pushed manifest (the same as in the layout).
    pub manifest_digest: String,
    /// URL of the manifest in the registry.
    pub manifest_url: String,
    /// Bytes of blobs uploaded (layers and config; the manifest is not counted).
    pub bytes_uploaded: u64,
    /// Blobs the registry already had in the repository.
    pub blobs_skipped: usize,
    /// Blobs mounted from another repository of the registry instead of uploaded.
    pub blobs_mounted: usize,
}

const TRIES: u32 = 3;
/// Bytes per upload request when a progress bar watches.
const UPLOAD_CHUNK: usize = 1 << 20;
const FIRST_BACKOFF: Duration = Duration::from_millis(250);

/// Everything a registry call needs to say what went wrong.
struct Session {
    client: Client,
    image: oci_client::Reference,
    registry: String,
    repository: String,
    auth: RegistryAuth,
    auth_file: Option<PathBuf>,
    insecure: bool,
}

impl Session {
    fn new(
        registry: &str,
        repository: &str,
        reference: &str,
        opts: &PushOptions,
    ) -> Result<Session> {
        let (auth, auth_file) = match &opts.auth_env {
            Some(env) => env.lookup(registry)?,
            None => AuthEnv::from_process().lookup(registry)?,
        };
        let image = if reference.starts_with("sha256:") {
            oci_client::Reference::with_digest(registry.into(), repository.into(), reference.into())
        } else {
            oci_client::Reference::with_tag(registry.into(), repository.into(), reference.into())
        };
        // oci-client is built without a TLS provider (no aws-lc); ring is the one we ship
        let _ = rustls::crypto::ring::default_provider().install_default();
        let config = ClientConfig {
            protocol: if opts.insecure {
                ClientProtocol::Http
            } else {
                ClientProtocol::Https
            },
            platform_resolver: Some(Box::new(oci_client::client::linux_amd64_resolver)),
            connect_timeout: Some(Duration::from_secs(15)),
            read_timeout: Some(Duration::from_secs(120)),
            user_agent: concat!("skiff/", env!("CARGO_PKG_VERSION")),
            ..ClientConfig::default()
        };
        let client = Client::try_from(config).map_err(|e| {
            Error::Registry(format!(
                "cannot set up an http client for registry {registry}: {}",
                one_line(&e)
            ))
        })?;
        Ok(Session {
            client,
            image,
            registry: registry.to_string(),
            repository: repository.to_string(),
            auth,
            auth_file,
            insecure: opts.insecure,
        })
    }

    /// Runs a registry call, retrying transient failures; a 401 (a token that expired during a
    /// long push or pull) logs in again for `op`, once, and runs the call again.
    async fn call<T, E, F, Fut>(&self, what: &str, op: RegistryOperation, mut f: F) -> Result<T, E>
    where
        E: Transient + From<OciDistributionError> + std::fmt::Debug,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        match retry(what, &mut f).await {
            Err(e) if e.unauthorized() => {
                tracing::info!(
                    "{what}: the registry refused the credentials it gave; logging in again"
                );
                retry(what, || self.client.auth(&self.image, &self.auth, op)).await?;
                retry(what, f).await
            }
            result => result,
        }
    }

    /// Logs in (or finds out no login is needed) and keeps the credentials for later calls.
    async fn login(&self, op: RegistryOperation, action: &str) -> Result<()> {
        self.client
            .store_auth_if_needed(self.image.resolve_registry(), &self.auth)
            .await;
        retry(action, || self.client.auth(&self.image, &self.auth, op))
            .await
            .map_err(|e| self.error(action, e))?;
        Ok(())
    }

    /// Turns an oci-client error into one line that names the registry and the fix.
    fn error(&self, action: &str, e: OciDistributionError) -> Error {
        let r = &self.registry;
        let status = status_of(&e);
        let message = if status == Some(401) {
            match &self.auth_file {
                None => format!(
                    "registry {r} refused the {action}: 401 unauthorized (log in with docker login {r} or set REGISTRY_AUTH_FILE)"
                ),
                Some(file) => format!(
                    "registry {r} refused the {action}: 401 unauthorized with the credentials from {} (log in again with docker login {r})",
                    file.display()
                ),
            }
        } else if status == Some(403) {
            format!(
                "registry {r} refused the {action}: 403 forbidden (check that your account may access {})",
                self.repository
            )
        } else if let OciDistributionError::AuthenticationFailure(reason) = &e {
            format!(
                "registry {r} refused the login for the {action}: {} (log in with docker login {r})",
                flatten(reason)
            )
        } else if !self.insecure && is_tls_mismatch(&e) {
            format!(
                "registry {r} does not speak https ({}); if it serves plain http, pass --insecure",
                root_cause(&e)
            )
        } else if self.insecure && is_http_to_https(&e) {
            format!("registry {r} only speaks https: drop --insecure")
        } else if is_connect(&e) {
            format!(
                "cannot connect to registry {r}: {} (check the host and port, and that the registry is running)",
                root_cause(&e)
            )
        } else if status == Some(404)
            || has_code(
                &e,
                &[OciErrorCode::ManifestUnknown, OciErrorCode::NameUnknown],
            )
        {
            format!(
                "registry {r} has no {}:{} (check the repository and tag)",
                self.repository,
                self.image.digest().or(self.image.tag()).unwrap_or("latest")
            )
        } else if let OciDistributionError::RegistryError { envelope, .. } = &e {
            format!(
                "registry {r} failed the {action}: {} ({})",
                describe_envelope(envelope),
                failure_hint(&e)
            )
        } else if let OciDistributionError::ServerError { code, message, .. } = &e {
            let body = serde_json::from_str::<oci_client::errors::OciEnvelope>(message)
                .map(|envelope| describe_envelope(&envelope))
                .unwrap_or_else(|_| flatten(message).chars().take(200).collect());
            format!(
                "registry {r} failed the {action}: HTTP {code}: {body} ({})",
                failure_hint(&e)
            )
        } else {
            format!("registry {r} failed the {action}: {}", one_line(&e))
        };
        Error::Registry(message)
    }
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
    if !crate::reference::valid_tag(dest_tag) {
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
    let s = Session::new(registry, repository, dest_tag, opts)?;
    s.login(RegistryOperation::Push, "push").await?;

    let mut locations = BlobLocations::load();
    let mut bytes_uploaded = 0;
    let mut blobs_skipped = 0;
    let mut blobs_mounted = 0;
    let mut seen = std::collections::BTreeSet::new();
    'blobs: for &desc in &blobs {
        if !seen.insert(desc.digest.clone()) {
            continue;
        }
        let exists = s
            .call("blob check", RegistryOperation::Push, || {
                s.client.blob_exists(&s.image, &desc.digest)
            })
            .await
            .map_err(|e| s.error("push", e))?;
        if exists {
            tracing::debug!(digest = %desc.digest, "registry has the blob, skipping");
            blobs_skipped += 1;
            continue;
        }
        // Another repository of this registry that skiff pushed it to or pulled it from can
        // lend it: a mount moves no bytes. A refused mount just means an upload.
        for from in locations.sources(registry, repository, &desc.digest) {
            let source = oci_client::Reference::with_tag(
                registry.to_string(),
                from.clone(),
                "latest".into(),
            );
            match s.client.mount_blob(&s.image, &source, &desc.digest).await {
                Ok(()) => {
                    tracing::info!(digest = %desc.digest, from, "mounted blob");
                    blobs_mounted += 1;
                    continue 'blobs;
                }
                Err(e) => tracing::debug!(digest = %desc.digest, from, error = %e, "mount refused"),
            }
        }
        let data = bytes::Bytes::from(layout.read_blob(desc)?);
        tracing::info!(digest = %desc.digest, size = desc.size, "uploading blob");
        s.call("blob upload", RegistryOperation::Push, || async {
            let Some(progress) = &opts.progress else {
                return s
                    .client
                    .push_blob(&s.image, data.clone(), &desc.digest)
                    .await;
            };
            // Fed in chunks, so that a progress bar moves as the registry takes them.
            progress.0.begin(&desc.digest, desc.size);
            let (sink, digest) = (progress.clone(), desc.digest.clone());
            let chunks: Vec<bytes::Bytes> = (0..data.len())
                .step_by(UPLOAD_CHUNK)
                .map(|at| data.slice(at..data.len().min(at + UPLOAD_CHUNK)))
                .collect();
            let stream = futures_util::stream::iter(chunks).map(move |chunk| {
                sink.0.advance(&digest, chunk.len() as u64);
                Ok(chunk)
            });
            let pushed = s
                .client
                .push_blob_stream(&s.image, stream, &desc.digest, Some(desc.size))
                .await;
            progress.0.end(&desc.digest);
            pushed
        })
        .await
        .map_err(|e| s.error("push", e))?;
        bytes_uploaded += desc.size;
    }

    let upload_manifest = |image: oci_client::Reference, desc: &Descriptor, bytes: Vec<u8>| {
        let content_type = desc.media_type.clone();
        let s = &s;
        async move {
            if !content_type.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(Error::Invalid(format!(
                    "media type {content_type:?} of {tag} in {} is not valid (pack the image again)",
                    layout_dir.display()
                )));
            }
            s.call("manifest upload", RegistryOperation::Push, || {
                s.client.push_manifest_raw(
                    &image,
                    bytes.clone(),
                    // visible ascii always makes a header value
                    content_type
                        .parse()
                        .expect("visible ascii is a valid header value"),
                )
            })
            .await
            .map_err(|e| s.error("push", e))
        }
    };
    if top.media_type == media::OCI_INDEX {
        for desc in &platforms {
            let image = s.image.clone_with_digest(desc.digest.clone());
            upload_manifest(image, desc, layout.read_blob(desc)?).await?;
        }
    }
    let manifest_url = upload_manifest(s.image.clone(), &manifest_desc, manifest_bytes).await?;

    // The registry must name the manifest by the digest the layout has.
    let remote = s
        .call("manifest check", RegistryOperation::Push, || {
            s.client.fetch_manifest_digest(&s.image, &s.auth)
        })
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
    Ok(PushReport {
        manifest_digest: manifest_desc.digest,
        manifest_url,
        bytes_uploaded,
        blobs_skipped,
        blobs_mounted,
    })
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
    let s = Session::new(registry, repository, reference, opts)?;
    s.login(RegistryOperation::Pull, "pull").await?;
    let Resolved {
        bytes,
        digest,
        media_type,
        manifest,
        ..
    } = resolve_manifest(&s, reference).await?;
    // created only now, so a failed login or a missing tag leaves no empty layout behind
    let layout = Layout::create_or_open(layout_dir)?;

    let mut seen = std::collections::BTreeSet::new();
    for desc in std::iter::once(&manifest.config).chain(&manifest.layers) {
        if !seen.insert(desc.digest.clone()) || layout.has_blob(desc) {
            continue;
        }
        layout.blob_path(&desc.digest)?;
        let tmp = s
            .call("blob download", RegistryOperation::Pull, || {
                download(&s, &layout, desc, opts.progress.as_ref())
            })
            .await
            .map_err(|e| match e {
                // Name the blob: the layers of one image fail alike only by chance.
                Downloaded::Registry(e) => match s.error("pull", e) {
                    Error::Registry(m) => Error::Registry(format!("{m} (blob {})", desc.digest)),
                    other => other,
                },
                Downloaded::Local(e) => e,
            })?;
        layout
            .import_blob(tmp, desc)
            .map_err(|e| Error::Registry(format!("registry {registry} sent a bad blob: {e}")))?;
    }

    let mut desc = layout.write_blob(&media_type, &bytes)?;
    if desc.digest != digest {
        return Err(Error::Registry(format!(
            "registry {registry} sent a manifest that hashes to {}, not {digest} (try again, or report it to the registry's operator)",
            desc.digest
        )));
    }
    desc.platform = platform_of(&layout, &manifest.config);
    layout.tag(&desc, tag)?;
    let mut locations = BlobLocations::load();
    for blob in std::iter::once(&manifest.config).chain(&manifest.layers) {
        locations.record(registry, repository, &blob.digest);
    }
    locations.save();
    Ok(desc)
}

/// The linux/amd64 image manifest a reference names, and the index it came through, if any.
struct Resolved {
    /// The manifest's bytes as the registry sent them, their digest and media type.
    bytes: Vec<u8>,
    digest: String,
    media_type: String,
    manifest: ImageManifest,
    /// What the reference names: the index, or the manifest itself.
    top_digest: String,
    top_media_type: String,
    /// The platforms an index lists (`os/architecture`); empty for a single manifest.
    platforms: Vec<String>,
}

/// Fetches the manifest `reference` names, following an index to its linux/amd64 entry, and
/// checks every digest and size on the way.
async fn resolve_manifest(s: &Session, reference: &str) -> Result<Resolved> {
    const ACCEPT: [&str; 4] = [
        media::OCI_MANIFEST,
        media::OCI_INDEX,
        media::DOCKER_MANIFEST,
        media::DOCKER_MANIFEST_LIST,
    ];
    let (registry, repository) = (&s.registry, &s.repository);
    let (bytes, digest) = s
        .call("manifest download", RegistryOperation::Pull, || {
            s.client.pull_manifest_raw(&s.image, &s.auth, &ACCEPT)
        })
        .await
        .map_err(|e| s.error("pull", e))?;
    let (mut bytes, mut digest) = (bytes.to_vec(), digest);
    check_manifest_digest(registry, &bytes, &digest, None)?;
    let mut media_type = media_type_of(&bytes)
        .map_err(|e| Error::json(format!("manifest of {repository} from {registry}"), e))?;
    let (top_digest, top_media_type) = (digest.clone(), media_type.clone());
    let mut platforms = Vec::new();

    if media_type == media::OCI_INDEX || media_type == media::DOCKER_MANIFEST_LIST {
        let index: ImageIndex = serde_json::from_slice(&bytes)
            .map_err(|e| Error::json(format!("image index of {repository} from {registry}"), e))?;
        platforms = index
            .manifests
            .iter()
            .filter_map(|m| m.platform.as_ref())
            .map(|p| format!("{}/{}", p.os, p.architecture))
            .collect();
        let entry = index
            .manifests
            .iter()
            .find(|m| m.platform.as_ref().is_some_and(|p| p.os == "linux" && p.architecture == "amd64"))
            .cloned()
            .ok_or_else(|| {
                Error::Registry(format!(
                    "registry {registry} has no linux/amd64 image under {repository}:{reference} (skiff images are linux/amd64)"
                ))
            })?;
        let by_digest = s.image.clone_with_digest(entry.digest.clone());
        let (b, d) = s
            .call("manifest download", RegistryOperation::Pull, || {
                s.client.pull_manifest_raw(&by_digest, &s.auth, &ACCEPT)
            })
            .await
            .map_err(|e| s.error("pull", e))?;
        bytes = b.to_vec();
        digest = d;
        check_manifest_digest(registry, &bytes, &digest, Some(&entry))?;
        media_type = entry.media_type;
    }
    let manifest: ImageManifest = serde_json::from_slice(&bytes)
        .map_err(|e| Error::json(format!("manifest of {repository} from {registry}"), e))?;
    Ok(Resolved {
        bytes,
        digest,
        media_type,
        manifest,
        top_digest,
        top_media_type,
        platforms,
    })
}

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
    let s = Session::new(registry, repository, reference, opts)?;
    s.login(RegistryOperation::Pull, "inspect").await?;
    let resolved = resolve_manifest(&s, reference).await?;
    let config = &resolved.manifest.config;
    if config.size > MAX_CONFIG {
        return Err(Error::Registry(format!(
            "registry {registry} lists a config of {} bytes for {repository}:{reference}; skiff reads configs up to {MAX_CONFIG} bytes",
            config.size
        )));
    }
    let bytes = s
        .call("config download", RegistryOperation::Pull, || async {
            let mut bytes = Vec::new();
            let out = LimitedWriter {
                inner: &mut bytes,
                left: config.size,
                progress: None,
            };
            s.client
                .pull_blob(&s.image, config.digest.as_str(), out)
                .await?;
            Ok::<_, OciDistributionError>(bytes)
        })
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
    Inspection::new(
        format!("docker://{registry}/{repository}:{reference}"),
        (resolved.top_digest, resolved.top_media_type),
        resolved.platforms,
        resolved.digest,
        &resolved.manifest,
        &bytes,
    )
}

/// Which repositories of each registry are known to hold a blob, because skiff pushed it there
/// or pulled it from there: where a push to another repository can mount it from, as docker
/// remembers it. Kept in `$XDG_CACHE_HOME/skiff/blob-locations.json` (or `~/.cache/...`); it is
/// only a hint, so a missing or unreadable file means no hints and a failed write is ignored.
#[derive(Default, serde::Serialize, Deserialize)]
struct BlobLocations {
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

/// The codes and messages of a registry's error body, on one line.
fn describe_envelope(envelope: &oci_client::errors::OciEnvelope) -> String {
    let errors: Vec<String> = envelope
        .errors
        .iter()
        .map(|err| {
            let code = serde_json::to_value(&err.code)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_else(|| format!("{:?}", err.code));
            format!("{code}: {}", flatten(&err.message))
        })
        .collect();
    errors.join("; ")
}

/// What to do about a registry's error: wait, or look at the request.
fn failure_hint(e: &OciDistributionError) -> String {
    if e.transient() {
        format!("still failing after {TRIES} tries: the registry is busy or down; try again later")
    } else {
        "the registry refused the request; check the image reference".to_string()
    }
}

fn check_manifest_digest(
    registry: &str,
    bytes: &[u8],
    digest: &str,
    expected: Option<&Descriptor>,
) -> Result<()> {
    let actual = sha256_digest(bytes);
    let want = expected.map_or(digest, |d| d.digest.as_str());
    if actual != want || actual != digest {
        return Err(Error::Registry(format!(
            "registry {registry} sent a manifest that hashes to {actual}, not {want} (try again, or report it to the registry's operator)"
        )));
    }
    if let Some(d) = expected
        && d.size != bytes.len() as u64
    {
        return Err(Error::Registry(format!(
            "registry {registry} sent a manifest of {} bytes, not {} (try again, or report it to the registry's operator)",
            bytes.len(),
            d.size
        )));
    }
    Ok(())
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

#[derive(Debug)]
enum Downloaded {
    Registry(OciDistributionError),
    Local(Error),
}

impl From<OciDistributionError> for Downloaded {
    fn from(e: OciDistributionError) -> Self {
        Downloaded::Registry(e)
    }
}

impl Transient for Downloaded {
    fn unauthorized(&self) -> bool {
        matches!(self, Downloaded::Registry(e) if e.unauthorized())
    }

    fn transient(&self) -> bool {
        match self {
            Downloaded::Registry(e) => e.transient(),
            Downloaded::Local(_) => false,
        }
    }
}

/// Downloads one blob into a fresh temporary file in the layout, refusing more than `size` bytes.
async fn download(
    s: &Session,
    layout: &Layout,
    desc: &Descriptor,
    progress: Option<&ProgressSink>,
) -> Result<tempfile::NamedTempFile, Downloaded> {
    let tmp = layout.temp_blob_file().map_err(Downloaded::Local)?;
    let file = tmp
        .as_file()
        .try_clone()
        .map_err(|e| Downloaded::Local(Error::io("open", tmp.path().to_path_buf(), e)))?;
    let out = LimitedWriter {
        inner: tokio::fs::File::from_std(file),
        left: desc.size,
        progress: progress.map(|p| (p.clone(), desc.digest.clone())),
    };
    if let Some(p) = progress {
        p.0.begin(&desc.digest, desc.size);
    }
    let pulled = s
        .client
        .pull_blob(&s.image, desc.digest.as_str(), out)
        .await;
    if let Some(p) = progress {
        p.0.end(&desc.digest);
    }
    pulled?;
    Ok(tmp)
}

/// An `AsyncWrite` that fails once more than `left` bytes come in: a registry cannot fill
/// the disk by sending an endless blob.
struct LimitedWriter<W> {
    inner: W,
    left: u64,
    /// Told of every write, with the blob's digest.
    progress: Option<(ProgressSink, String)>,
}

impl<W: AsyncWrite + Unpin> AsyncWrite for LimitedWriter<W> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        if buf.len() as u64 > self.left {
            return Poll::Ready(Err(std::io::Error::other(
                "the registry sent more bytes than the descriptor's size",
            )));
        }
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = poll {
            self.left -= n as u64;
            if let Some((sink, digest)) = &self.progress {
                sink.0.advance(digest, n as u64);
            }
        }
        poll
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

trait Transient {
    fn transient(&self) -> bool;

    /// The registry refused the credentials (401).
    fn unauthorized(&self) -> bool {
        false
    }
}

impl Transient for OciDistributionError {
    fn unauthorized(&self) -> bool {
        status_of(self) == Some(401)
            || matches!(self, OciDistributionError::UnauthorizedError { .. })
    }

    fn transient(&self) -> bool {
        if is_tls_mismatch(self) || is_http_to_https(self) {
            return false;
        }
        match self {
            OciDistributionError::ServerError { code, .. } => *code >= 500 || *code == 429,
            // A 429 or 503 with an error body: distribution's TOOMANYREQUESTS and UNAVAILABLE.
            OciDistributionError::RegistryError { envelope, .. } => {
                envelope.errors.iter().any(|e| match &e.code {
                    OciErrorCode::Toomanyrequests => true,
                    OciErrorCode::Other(code) => code == "UNAVAILABLE",
                    _ => false,
                })
            }
            OciDistributionError::RequestError(e) => {
                e.is_connect()
                    || e.is_timeout()
                    || e.is_request()
                    || e.is_body()
                    || e.status()
                        .is_some_and(|s| s.as_u16() >= 500 || s.as_u16() == 429)
            }
            _ => false,
        }
    }
}

/// Runs `op` up to [`TRIES`] times, backing off between tries, while it fails transiently.
async fn retry<T, E, F, Fut>(what: &str, op: F) -> Result<T, E>
where
    E: Transient + std::fmt::Debug,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    retry_with(what, FIRST_BACKOFF, op).await
}

async fn retry_with<T, E, F, Fut>(what: &str, first_backoff: Duration, mut op: F) -> Result<T, E>
where
    E: Transient + std::fmt::Debug,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut backoff = first_backoff;
    let mut attempt = 1;
    loop {
        match op().await {
            Err(e) if attempt < TRIES && e.transient() => {
                tracing::warn!(attempt, error = ?e, "{what} failed, retrying in {backoff:?}");
                tokio::time::sleep(backoff).await;
                backoff *= 4;
                attempt += 1;
            }
            result => return result,
        }
    }
}

fn status_of(e: &OciDistributionError) -> Option<u16> {
    match e {
        OciDistributionError::UnauthorizedError { .. } => Some(401),
        OciDistributionError::ServerError { code, .. } => Some(*code),
        OciDistributionError::RequestError(e) => e.status().map(|s| s.as_u16()),
        OciDistributionError::RegistryError { envelope, .. } => {
            envelope.errors.iter().find_map(|e| match e.code {
                OciErrorCode::Unauthorized => Some(401),
                OciErrorCode::Denied => Some(403),
                _ => None,
            })
        }
        _ => None,
    }
}

fn has_code(e: &OciDistributionError, codes: &[OciErrorCode]) -> bool {
    matches!(e, OciDistributionError::RegistryError { envelope, .. }
        if envelope.errors.iter().any(|x| codes.contains(&x.code)))
}

fn is_connect(e: &OciDistributionError) -> bool {
    matches!(e, OciDistributionError::RequestError(r) if r.is_connect() || r.is_timeout())
}

/// https spoken to a plain http server: rustls reads `HTTP/1.1 400` as a corrupt record.
fn is_tls_mismatch(e: &OciDistributionError) -> bool {
    let chain = chain_text(e);
    chain.contains("InvalidContentType") || chain.contains("corrupt message")
}

/// plain http spoken to an https server.
fn is_http_to_https(e: &OciDistributionError) -> bool {
    chain_text(e).contains("HTTP request to an HTTPS server")
}

fn chain_text(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = String::new();
    let mut next = Some(e);
    while let Some(err) = next {
        text.push_str(&format!("{err:?} {err} | "));
        next = err.source();
    }
    text
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut last = e;
    while let Some(next) = last.source() {
        last = next;
    }
    // OS messages start upper case ("Connection refused"); ours are lower case
    let text = flatten(&last.to_string());
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => text,
    }
}

fn one_line(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut next = e.source();
    while let Some(err) = next {
        let text = err.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = err.source();
    }
    flatten(&parts.join(": "))
}

fn flatten(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limited_writer_refuses_extra_bytes() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            use tokio::io::AsyncWriteExt;
            let mut w = LimitedWriter {
                inner: Vec::new(),
                left: 4,
                progress: None,
            };
            w.write_all(b"abcd").await.unwrap();
            assert!(w.write_all(b"e").await.is_err());
            assert_eq!(w.inner, b"abcd");
        });
    }

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

    #[test]
    fn server_errors_are_retried_and_client_errors_are_not() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        rt.block_on(async {
            let server = |code| OciDistributionError::ServerError {
                code,
                url: "u".into(),
                message: "m".into(),
            };
            let mut calls = 0;
            let r: Result<(), _> = retry_with("t", Duration::from_millis(1), || {
                calls += 1;
                std::future::ready(Err(server(503)))
            })
            .await;
            assert!(r.is_err());
            assert_eq!(calls, TRIES);

            let mut calls = 0;
            let r = retry_with("t", Duration::from_millis(1), || {
                calls += 1;
                std::future::ready(if calls < 2 { Err(server(429)) } else { Ok(7) })
            })
            .await;
            assert_eq!(r.unwrap(), 7);

            let mut calls = 0;
            let r: Result<(), _> = retry_with("t", Duration::from_millis(1), || {
                calls += 1;
                std::future::ready(Err(server(400)))
            })
            .await;
            assert!(r.is_err());
            assert_eq!(calls, 1);
        });
    }
}
