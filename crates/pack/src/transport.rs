//! The distribution API over HTTP: every request skiff makes of a registry, with its retries.
//!
//! oci-client does the login (the token handshake a registry's `WWW-Authenticate` asks for),
//! except with an identity token, which oci-client cannot send: then this module trades it at
//! the challenge's realm for an access token (distribution's OAuth2 `refresh_token` grant).
//! The requests themselves go through this module, because a careful client needs what
//! oci-client's calls do not give: the `Retry-After` of a 429 or 503, an upload that goes on
//! from the registry's offset after a chunk fails instead of starting the blob again, and a
//! download that asks for the rest of a blob with `Range` after its connection drops.
//!
//! Each request is sent with the credentials of the login; a 401 logs in again, once, as a
//! token that expired during a long push needs; 429, 5xx and dropped connections are tried
//! again [`TRIES`] times in all, waiting what `Retry-After` asks (up to [`MAX_WAIT`]) or else
//! backing off; every other status is final.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::{Client, RegistryOperation};
use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{RequestBuilder, Response, StatusCode, Url};
use tokio::io::{AsyncWrite, AsyncWriteExt as _};

use crate::auth::{AuthEnv, Credential, RegistryAuth};
use crate::error::{Error, Result};
use crate::media;
use crate::oci::Descriptor;

/// Tries per request (and failures in a row per upload) before giving up.
pub(crate) const TRIES: u32 = 3;
/// The first wait between tries when the registry names none; each next one is 4 times longer.
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
/// The longest `Retry-After` skiff waits; a registry asking for more is reported instead.
pub(crate) const MAX_WAIT: Duration = Duration::from_secs(60);
/// Bytes per upload request: what a failed request costs to send again.
pub(crate) const UPLOAD_CHUNK: usize = 1 << 20;

/// What went wrong with a request.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The registry answered with an error status.
    Status {
        code: u16,
        /// The body, at most a few kilobytes of it: distribution's `{"errors": [...]}`.
        body: String,
        /// What the registry's `Retry-After` asked for.
        retry_after: Option<Duration>,
    },
    /// No answer: the connection failed or dropped, or timed out.
    Transport(reqwest::Error),
    /// The login failed before any request (oci-client's token handshake).
    Login(OciDistributionError),
    /// The registry broke the protocol (a missing `Location`, an answer we cannot read).
    Protocol(String),
    /// Writing what came down failed.
    Local(Error),
}

impl Failure {
    /// Worth trying again: the registry is busy or the connection dropped.
    fn transient(&self) -> bool {
        match self {
            Failure::Status { code, .. } => *code == 429 || *code >= 500,
            Failure::Transport(e) | Failure::Login(OciDistributionError::RequestError(e)) => {
                let text = chain_text(e);
                !is_tls_mismatch(&text)
                    && !is_http_to_https(&text)
                    && (e.is_connect() || e.is_timeout() || e.is_request() || e.is_body())
            }
            Failure::Login(e) => Failure::from_login(e).is_some_and(|f| f.transient()),
            Failure::Protocol(_) | Failure::Local(_) => false,
        }
    }

    pub(crate) fn status(&self) -> Option<u16> {
        match self {
            Failure::Status { code, .. } => Some(*code),
            Failure::Login(e) => Failure::from_login(e).and_then(|f| f.status()),
            _ => None,
        }
    }

    /// A login error as the request failure it stands for, where it is one.
    fn from_login(e: &OciDistributionError) -> Option<Failure> {
        Some(match e {
            OciDistributionError::UnauthorizedError { .. } => Failure::Status {
                code: 401,
                body: String::new(),
                retry_after: None,
            },
            OciDistributionError::ServerError { code, message, .. } => Failure::Status {
                code: *code,
                body: message.clone(),
                retry_after: None,
            },
            OciDistributionError::RegistryError { envelope, .. } => Failure::Status {
                code: envelope
                    .errors
                    .iter()
                    .map(|e| match &e.code {
                        OciErrorCode::Unauthorized => 401,
                        OciErrorCode::Denied => 403,
                        OciErrorCode::Toomanyrequests => 429,
                        OciErrorCode::Other(code) if code == "UNAVAILABLE" => 503,
                        _ => 400,
                    })
                    .next()
                    .unwrap_or(400),
                body: serde_json::to_string(envelope).unwrap_or_default(),
                retry_after: None,
            },
            _ => return None,
        })
    }

    /// How long to wait before the next try, or `None` when the registry asks for longer
    /// than skiff waits.
    fn wait(&self, backoff: Duration) -> Option<Duration> {
        match self {
            Failure::Status {
                retry_after: Some(after),
                ..
            } => (*after <= MAX_WAIT).then_some(*after),
            _ => Some(backoff),
        }
    }
}

/// The one retry policy of every request, login, upload and download: [`TRIES`] tries in all,
/// only after a transient failure, waiting what the registry's `Retry-After` asks (up to
/// [`MAX_WAIT`]) or else backing off 250 ms, 1 s, 4 s.
struct Retry<'a> {
    what: &'a str,
    tries: u32,
    failures: u32,
    backoff: Duration,
}

impl<'a> Retry<'a> {
    fn new(what: &'a str, tries: u32) -> Retry<'a> {
        Retry {
            what,
            tries,
            failures: 0,
            backoff: FIRST_BACKOFF,
        }
    }

    /// After `failure`: waits and returns `Ok` where another try is due, else gives the
    /// failure back.
    async fn after(&mut self, failure: Failure) -> Result<(), Failure> {
        self.failures += 1;
        if self.failures >= self.tries || !failure.transient() {
            return Err(failure);
        }
        let Some(wait) = failure.wait(self.backoff) else {
            return Err(failure);
        };
        tracing::warn!(attempt = self.failures, error = ?failure, "{} failed, trying again in {wait:?}", self.what);
        tokio::time::sleep(wait).await;
        self.backoff *= 4;
        Ok(())
    }
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

/// A connection to one repository of a registry, logged in for one operation.
pub(crate) struct Session {
    http: reqwest::Client,
    /// Only for the login handshake.
    oci: Client,
    image: oci_client::Reference,
    /// `http(s)://HOST/v2/REPOSITORY/`.
    base: Url,
    pub(crate) registry: String,
    pub(crate) repository: String,
    auth: Credential,
    auth_file: Option<PathBuf>,
    insecure: bool,
    /// The operation logged in for, and its bearer token if the registry gave one.
    login: Mutex<(RegistryOperation, Option<String>)>,
}

impl Session {
    pub(crate) fn new(
        registry: &str,
        repository: &str,
        reference: &str,
        insecure: bool,
        auth_env: Option<&AuthEnv>,
    ) -> Result<Session> {
        let (auth, auth_file) = match auth_env {
            Some(env) => env.lookup(registry)?,
            None => AuthEnv::from_process().lookup(registry)?,
        };
        let image = if reference.starts_with("sha256:") {
            oci_client::Reference::with_digest(registry.into(), repository.into(), reference.into())
        } else {
            oci_client::Reference::with_tag(registry.into(), repository.into(), reference.into())
        };
        // built without a TLS provider (no aws-lc); ring is the one we ship
        let _ = rustls::crypto::ring::default_provider().install_default();
        let user_agent = concat!("skiff/", env!("CARGO_PKG_VERSION"));
        let (connect_timeout, read_timeout) = (Duration::from_secs(15), Duration::from_secs(120));
        let cannot = |e: &(dyn std::error::Error + 'static)| {
            Error::Registry(format!(
                "cannot set up an http client for registry {registry}: {}",
                one_line(e)
            ))
        };
        let oci = Client::try_from(ClientConfig {
            protocol: if insecure {
                ClientProtocol::Http
            } else {
                ClientProtocol::Https
            },
            connect_timeout: Some(connect_timeout),
            read_timeout: Some(read_timeout),
            user_agent,
            ..ClientConfig::default()
        })
        .map_err(|e| cannot(&e))?;
        let http = reqwest::Client::builder()
            .user_agent(user_agent)
            .connect_timeout(connect_timeout)
            .read_timeout(read_timeout)
            .build()
            .map_err(|e| cannot(&e))?;
        let scheme = if insecure { "http" } else { "https" };
        let base = Url::parse(&format!(
            "{scheme}://{}/v2/{repository}/",
            image.resolve_registry()
        ))
        .map_err(|e| Error::Registry(format!("registry {registry} makes no valid URL: {e}")))?;
        Ok(Session {
            http,
            oci,
            image,
            base,
            registry: registry.to_string(),
            repository: repository.to_string(),
            auth,
            auth_file,
            insecure,
            login: Mutex::new((RegistryOperation::Pull, None)),
        })
    }

    /// Logs in for `op` (or finds out no login is needed), for the calls that follow.
    pub(crate) async fn login(&self, op: RegistryOperation, action: &str) -> Result<()> {
        self.login_for(op).await.map_err(|e| self.error(action, e))
    }

    async fn login_for(&self, op: RegistryOperation) -> Result<(), Failure> {
        let mut retry = Retry::new("login", TRIES);
        loop {
            let token = match &self.auth {
                Credential::Registry(auth) => self
                    .oci
                    .auth(&self.image, auth, op)
                    .await
                    .map_err(Failure::Login),
                Credential::IdentityToken(refresh) => self.identity_login(refresh, op).await,
            };
            match token {
                Ok(token) => {
                    *self.login.lock().unwrap_or_else(|e| e.into_inner()) = (op, token);
                    return Ok(());
                }
                Err(failure) => retry.after(failure).await?,
            }
        }
    }

    /// Trades an identity token for an access token, as distribution's OAuth2 token spec has
    /// it: `GET /v2/` names the token server (`Bearer realm=...,service=...`), and a form POST
    /// of `grant_type=refresh_token` there answers with the `access_token`. `None` when the
    /// registry asks for no login.
    async fn identity_login(
        &self,
        refresh: &str,
        op: RegistryOperation,
    ) -> Result<Option<String>, Failure> {
        let refused =
            |reason: String| Failure::Login(OciDistributionError::AuthenticationFailure(reason));
        let v2 = self
            .base
            .join("/v2/")
            .map_err(|e| Failure::Protocol(format!("no valid URL for /v2/: {e}")))?;
        let r = self.http.get(v2).send().await.map_err(Failure::Transport)?;
        if r.status() == StatusCode::TOO_MANY_REQUESTS || r.status().is_server_error() {
            return Err(failure_of(r).await);
        }
        let Some(challenge) = header(r.headers(), "www-authenticate") else {
            return Ok(None);
        };
        let challenges = http_auth::parse_challenges(challenge).map_err(|e| {
            Failure::Protocol(format!("cannot read WWW-Authenticate {challenge:?}: {e}"))
        })?;
        let Some(bearer) = challenges
            .iter()
            .find(|c| c.scheme.eq_ignore_ascii_case("bearer"))
        else {
            return Err(refused(format!(
                "it asks for {challenge:?}, not for a bearer token, so an identity token cannot log in"
            )));
        };
        let param = |name: &str| {
            bearer
                .params
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.to_unescaped())
        };
        let realm = param("realm").ok_or_else(|| {
            Failure::Protocol(format!("its WWW-Authenticate {challenge:?} has no realm"))
        })?;
        let realm = Url::parse(&realm)
            .map_err(|e| Failure::Protocol(format!("its token realm {realm:?} is no URL: {e}")))?;
        let scope = match op {
            RegistryOperation::Pull => format!("repository:{}:pull", self.repository),
            RegistryOperation::Push => format!("repository:{}:pull,push", self.repository),
        };
        let mut form = vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh),
            ("client_id", "skiff"),
            ("scope", &scope),
        ];
        let service = param("service");
        if let Some(service) = &service {
            form.push(("service", service));
        }
        let r = self
            .http
            .post(realm)
            .form(&form)
            .send()
            .await
            .map_err(Failure::Transport)?;
        let status = r.status();
        if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
            return Err(failure_of(r).await);
        }
        let body = r.text().await.map_err(Failure::Transport)?;
        if !status.is_success() {
            // RFC 6749's `{"error", "error_description"}`, or whatever the server said
            let said = serde_json::from_str::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| {
                    let error = v["error"].as_str()?.to_string();
                    Some(match v["error_description"].as_str() {
                        Some(d) => format!("{error}: {}", flatten(d)),
                        None => error,
                    })
                })
                .unwrap_or_else(|| describe_body(&body));
            return Err(refused(format!(
                "its token server answered HTTP {}: {said}",
                status.as_u16()
            )));
        }
        #[derive(serde::Deserialize)]
        struct Answer {
            access_token: Option<String>,
            // what GET token servers answer with; some answer a POST with it too
            token: Option<String>,
        }
        let answer: Answer = serde_json::from_str(&body).map_err(|e| {
            Failure::Protocol(format!("its token server answered with no token JSON: {e}"))
        })?;
        match answer.access_token.or(answer.token) {
            Some(token) if !token.is_empty() => Ok(Some(token)),
            _ => Err(Failure::Protocol(
                "its token server answered with no access_token".into(),
            )),
        }
    }

    /// `PATH` (relative to the repository) as a URL.
    fn url(&self, path: &str) -> Result<Url, Failure> {
        self.base
            .join(path)
            .map_err(|e| Failure::Protocol(format!("no valid URL for {path}: {e}")))
    }

    /// Sends a request to `url`, with the login's credentials where `url` is on the registry.
    /// `tries` bounds the tries for 429, 5xx and dropped connections; a 401 logs in again
    /// once. Any other answer, error statuses included, comes back for the caller to read.
    async fn send(
        &self,
        what: &str,
        tries: u32,
        build: impl Fn(&reqwest::Client) -> RequestBuilder,
    ) -> Result<Response, Failure> {
        let mut retry = Retry::new(what, tries);
        let mut renewed = false;
        loop {
            let failure = match self.authorize(build(&self.http)).send().await {
                Ok(r) if r.status() == StatusCode::UNAUTHORIZED && !renewed => {
                    tracing::info!(
                        "{what}: the registry refused the credentials it gave; logging in again"
                    );
                    renewed = true;
                    let op = self.login.lock().unwrap_or_else(|e| e.into_inner()).0;
                    self.login_for(op).await?;
                    continue;
                }
                Ok(r)
                    if r.status() == StatusCode::TOO_MANY_REQUESTS
                        || r.status().is_server_error() =>
                {
                    failure_of(r).await
                }
                Ok(r) => return Ok(r),
                Err(e) => Failure::Transport(e),
            };
            retry.after(failure).await?;
        }
    }

    fn authorize(&self, request: RequestBuilder) -> RequestBuilder {
        // Credentials go to the registry only, never to a host it redirects or points to.
        let Some(same_host) = request.try_clone().and_then(|r| r.build().ok()).map(|r| {
            r.url().host_str() == self.base.host_str() && r.url().port() == self.base.port()
        }) else {
            return request;
        };
        if !same_host {
            return request;
        }
        let token = self
            .login
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .1
            .clone();
        match (token, &self.auth) {
            (Some(token), _) => request.bearer_auth(token),
            (None, Credential::Registry(RegistryAuth::Basic(user, password))) => {
                request.basic_auth(user, Some(password))
            }
            (None, _) => request,
        }
    }

    /// Whether the repository has the blob.
    pub(crate) async fn blob_exists(&self, digest: &str) -> Result<bool, Failure> {
        let url = self.url(&format!("blobs/{digest}"))?;
        let r = self
            .send("blob check", TRIES, |h| h.head(url.clone()))
            .await?;
        match r.status() {
            s if s.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(failure_of(r).await),
        }
    }

    /// Asks the registry to mount the blob from another of its repositories; `false` when
    /// it would not.
    pub(crate) async fn mount(&self, digest: &str, from: &str) -> Result<bool, Failure> {
        let mut url = self.url("blobs/uploads/")?;
        url.query_pairs_mut()
            .append_pair("mount", digest)
            .append_pair("from", from);
        let r = self
            .send("blob mount", TRIES, |h| h.post(url.clone()))
            .await?;
        match r.status() {
            StatusCode::CREATED => Ok(true),
            StatusCode::ACCEPTED => {
                // It opened an upload instead; close it, the blob goes up the usual way.
                if let Ok(location) = self.location(&r) {
                    let _ = self
                        .send("upload cancel", 1, |h| h.delete(location.clone()))
                        .await;
                }
                Ok(false)
            }
            _ => Ok(false),
        }
    }

    /// Uploads a blob in chunks of [`UPLOAD_CHUNK`] bytes. A chunk that fails is not a lost
    /// upload: the registry says how much it holds, and the upload goes on from there; only
    /// an upload the registry no longer knows starts again from the first byte.
    pub(crate) async fn upload(
        &self,
        desc: &Descriptor,
        data: bytes::Bytes,
        progress: Option<&ProgressSink>,
    ) -> Result<(), Failure> {
        let started = |offset: u64| {
            if let Some(p) = progress {
                p.0.begin(&desc.digest, desc.size);
                p.0.advance(&desc.digest, offset);
            }
        };
        let mut location = self.start_upload().await?;
        let mut offset = 0usize;
        let mut retry = Retry::new("blob upload", TRIES);
        started(0);
        while offset < data.len() {
            let end = data.len().min(offset + UPLOAD_CHUNK);
            let chunk = data.slice(offset..end);
            let range = format!("{offset}-{}", end - 1);
            let sent = self
                .send("blob upload", 1, |h| {
                    h.patch(location.clone())
                        .header("Content-Type", "application/octet-stream")
                        .header("Content-Range", &range)
                        .body(chunk.clone())
                })
                .await;
            let failure = match sent {
                Ok(r) if r.status() == StatusCode::ACCEPTED => match self.location(&r) {
                    Ok(next) => {
                        location = next;
                        if let Some(p) = progress {
                            p.0.advance(&desc.digest, (end - offset) as u64);
                        }
                        offset = end;
                        retry = Retry::new("blob upload", TRIES);
                        continue;
                    }
                    Err(e) => e,
                },
                Ok(r) => failure_of(r).await,
                Err(e) => e,
            };
            // Then ask the registry where to go on from.
            retry.after(failure).await?;
            (location, offset) = match self.upload_status(&location).await {
                Ok(at) => at,
                Err(e) => {
                    tracing::info!(error = ?e, "the registry lost the upload; starting it again");
                    (self.start_upload().await?, 0)
                }
            };
            started(offset as u64);
        }
        let mut url = location.clone();
        url.query_pairs_mut().append_pair("digest", &desc.digest);
        let r = self
            .send("blob upload", TRIES, |h| {
                h.put(url.clone())
                    .header("Content-Type", "application/octet-stream")
                    .header("Content-Length", "0")
            })
            .await?;
        if let Some(p) = progress {
            p.0.end(&desc.digest);
        }
        if r.status() == StatusCode::CREATED {
            return Ok(());
        }
        // A finished upload whose answer was lost is unknown now; the blob tells.
        let failure = failure_of(r).await;
        if self.blob_exists(&desc.digest).await.unwrap_or(false) {
            return Ok(());
        }
        Err(failure)
    }

    async fn start_upload(&self) -> Result<Url, Failure> {
        let url = self.url("blobs/uploads/")?;
        let r = self
            .send("blob upload", TRIES, |h| {
                h.post(url.clone()).header("Content-Length", "0")
            })
            .await?;
        if r.status() != StatusCode::ACCEPTED {
            return Err(failure_of(r).await);
        }
        self.location(&r)
    }

    /// Where an upload stands: its next URL and how many bytes the registry holds.
    async fn upload_status(&self, location: &Url) -> Result<(Url, usize), Failure> {
        let r = self
            .send("upload status", TRIES, |h| h.get(location.clone()))
            .await?;
        if r.status() != StatusCode::NO_CONTENT && !r.status().is_success() {
            return Err(failure_of(r).await);
        }
        // `Range: 0-N` holds N + 1 bytes; no range, nothing yet.
        let held = match header(r.headers(), "range") {
            None => 0,
            Some(range) => range
                .split_once('-')
                .and_then(|(_, last)| last.parse::<usize>().ok())
                .map(|last| last + 1)
                .ok_or_else(|| Failure::Protocol(format!("upload status has range {range:?}")))?,
        };
        let next = self.location(&r).unwrap_or_else(|_| location.clone());
        Ok((next, held))
    }

    fn location(&self, r: &Response) -> Result<Url, Failure> {
        let location = header(r.headers(), "location")
            .ok_or_else(|| Failure::Protocol("an upload answer has no Location".into()))?;
        r.url()
            .join(location)
            .map_err(|e| Failure::Protocol(format!("upload Location {location:?}: {e}")))
    }

    /// Stores a manifest under `reference` (a tag or digest); returns its URL, and whether the
    /// registry answered with `OCI-Subject` (it lists the manifest as a referrer of its subject).
    pub(crate) async fn put_manifest(
        &self,
        reference: &str,
        media_type: &str,
        bytes: bytes::Bytes,
    ) -> Result<(String, bool), Failure> {
        let url = self.url(&format!("manifests/{reference}"))?;
        let r = self
            .send("manifest upload", TRIES, |h| {
                h.put(url.clone())
                    .header("Content-Type", media_type)
                    .body(bytes.clone())
            })
            .await?;
        if !r.status().is_success() {
            return Err(failure_of(r).await);
        }
        let listed = header(r.headers(), media::OCI_SUBJECT_HEADER).is_some();
        Ok((url.to_string(), listed))
    }

    /// The referrers API's list for `digest`, or `None` where the registry lacks the API
    /// (it answers 404: distribution 2.8, for one).
    pub(crate) async fn get_referrers(&self, digest: &str) -> Result<Option<Vec<u8>>, Failure> {
        /// A referrers list larger than a manifest can be is not one.
        const MAX_LIST: u64 = 4 << 20;
        let url = self.url(&format!("referrers/{digest}"))?;
        let r = self
            .send("referrers list", TRIES, |h| {
                h.get(url.clone()).header("Accept", media::OCI_INDEX)
            })
            .await?;
        if r.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !r.status().is_success() {
            return Err(failure_of(r).await);
        }
        let mut bytes = Vec::new();
        read_body(r, &mut bytes, 0, MAX_LIST, None).await?;
        Ok(Some(bytes))
    }

    /// The digest the registry gives the manifest `reference` names.
    pub(crate) async fn manifest_digest(
        &self,
        reference: &str,
        accept: &[&str],
    ) -> Result<String, Failure> {
        let url = self.url(&format!("manifests/{reference}"))?;
        let accept = accept.join(", ");
        let r = self
            .send("manifest check", TRIES, |h| {
                h.head(url.clone()).header("Accept", &accept)
            })
            .await?;
        if !r.status().is_success() {
            return Err(failure_of(r).await);
        }
        match header(r.headers(), "docker-content-digest") {
            Some(digest) => Ok(digest.to_string()),
            None => {
                let (bytes, _) = self
                    .get_manifest(reference, &accept.split(", ").collect::<Vec<_>>())
                    .await?;
                Ok(crate::oci::sha256_digest(&bytes))
            }
        }
    }

    /// The manifest `reference` names, as sent, and the digest the registry gives it.
    pub(crate) async fn get_manifest(
        &self,
        reference: &str,
        accept: &[&str],
    ) -> Result<(Vec<u8>, Option<String>), Failure> {
        /// Larger manifests are not images (distribution's own limit is 4 MiB).
        const MAX_MANIFEST: u64 = 4 << 20;
        let url = self.url(&format!("manifests/{reference}"))?;
        let accept = accept.join(", ");
        let r = self
            .send("manifest download", TRIES, |h| {
                h.get(url.clone()).header("Accept", &accept)
            })
            .await?;
        if !r.status().is_success() {
            return Err(failure_of(r).await);
        }
        let digest = header(r.headers(), "docker-content-digest").map(str::to_string);
        let mut bytes = Vec::new();
        read_body(r, &mut bytes, 0, MAX_MANIFEST, None).await?;
        Ok((bytes, digest))
    }

    /// Downloads the blob into `out`, at most `desc.size` bytes. A connection that drops
    /// midway is picked up where it stopped, with `Range`.
    pub(crate) async fn download<W: AsyncWrite + Unpin>(
        &self,
        desc: &Descriptor,
        out: &mut W,
        progress: Option<&ProgressSink>,
    ) -> Result<(), Failure> {
        let url = self.url(&format!("blobs/{}", desc.digest))?;
        let mut have = 0u64;
        let mut retry = Retry::new("blob download", TRIES);
        if let Some(p) = progress {
            p.0.begin(&desc.digest, desc.size);
        }
        loop {
            let range = format!("bytes={have}-");
            let r = self
                .send("blob download", TRIES, |h| {
                    let get = h.get(url.clone());
                    if have > 0 {
                        get.header("Range", &range)
                    } else {
                        get
                    }
                })
                .await?;
            if !r.status().is_success() {
                return Err(failure_of(r).await);
            }
            // A registry that ignores `Range` sends the whole blob again: skip what we have.
            let skip = if r.status() == StatusCode::PARTIAL_CONTENT {
                0
            } else {
                have
            };
            let sink = progress.map(|p| (p, desc.digest.as_str()));
            match read_body(r, out, skip, desc.size - have, sink).await {
                Ok(_) => {
                    if let Some(p) = progress {
                        p.0.end(&desc.digest);
                    }
                    return Ok(());
                }
                Err((n, failure)) => {
                    // Going on from what came down.
                    have += n;
                    retry.after(failure).await?;
                }
            }
        }
    }

    /// Turns a failure into one line that names the registry and the fix.
    pub(crate) fn error(&self, action: &str, failure: Failure) -> Error {
        let r = &self.registry;
        let status = failure.status();
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
        } else {
            match failure {
                Failure::Local(e) => return e,
                Failure::Login(OciDistributionError::AuthenticationFailure(reason))
                    if matches!(self.auth, Credential::IdentityToken(_)) =>
                {
                    format!(
                        "registry {r} refused the identity token{} for the {action}: {} (log in again with docker login {r})",
                        self.auth_file
                            .as_ref()
                            .map(|f| format!(" from {}", f.display()))
                            .unwrap_or_default(),
                        flatten(&reason)
                    )
                }
                Failure::Login(OciDistributionError::AuthenticationFailure(reason)) => format!(
                    "registry {r} refused the login for the {action}: {} (log in with docker login {r})",
                    flatten(&reason)
                ),
                Failure::Login(e) => match Failure::from_login(&e) {
                    Some(f) => return self.error(action, f),
                    None => self.transport_error(action, &e),
                },
                Failure::Transport(e) => self.transport_error(action, &e),
                Failure::Protocol(what) => format!(
                    "registry {r} broke the distribution protocol in the {action}: {what} (report it to the registry's operator)"
                ),
                Failure::Status {
                    code,
                    body,
                    retry_after,
                } => {
                    let codes = error_codes(&body);
                    let described = describe_body(&body);
                    if code == 404
                        || codes
                            .iter()
                            .any(|c| c == "MANIFEST_UNKNOWN" || c == "NAME_UNKNOWN")
                    {
                        format!(
                            "registry {r} has no {}:{} (check the repository and tag)",
                            self.repository,
                            self.image.digest().or(self.image.tag()).unwrap_or("latest")
                        )
                    } else if retry_after.is_some_and(|after| after > MAX_WAIT) {
                        format!(
                            "registry {r} failed the {action}: HTTP {code}: {described} and asks to wait {} s (Retry-After; skiff waits up to {} s): try again later",
                            retry_after.unwrap_or_default().as_secs(),
                            MAX_WAIT.as_secs()
                        )
                    } else if code == 429 || code >= 500 {
                        format!(
                            "registry {r} failed the {action}: HTTP {code}: {described} (still failing after {TRIES} tries: the registry is busy or down; try again later)"
                        )
                    } else {
                        format!(
                            "registry {r} failed the {action}: HTTP {code}: {described} (the registry refused the request; check the image reference)"
                        )
                    }
                }
            }
        };
        Error::Registry(message)
    }

    fn transport_error(&self, action: &str, e: &(dyn std::error::Error + 'static)) -> String {
        let r = &self.registry;
        let text = chain_text(e);
        if !self.insecure && is_tls_mismatch(&text) {
            format!(
                "registry {r} does not speak https ({}); if it serves plain http, pass --insecure",
                root_cause(e)
            )
        } else if self.insecure && is_http_to_https(&text) {
            format!("registry {r} only speaks https: drop --insecure")
        } else if text.contains("ConnectError")
            || text.contains("Connect,")
            || text.contains("TimedOut")
        {
            format!(
                "cannot connect to registry {r}: {} (check the host and port, and that the registry is running)",
                root_cause(e)
            )
        } else {
            format!(
                "registry {r} failed the {action}: {} (still failing after {TRIES} tries; try again later)",
                one_line(e)
            )
        }
    }
}

/// Reads a response's body into `out`, dropping its first `skip` bytes and refusing more than
/// `limit` after them; returns the bytes written, or those written before the failure and the
/// failure.
async fn read_body<W: AsyncWrite + Unpin>(
    mut r: Response,
    out: &mut W,
    mut skip: u64,
    limit: u64,
    progress: Option<(&ProgressSink, &str)>,
) -> Result<u64, (u64, Failure)> {
    let mut read = 0u64;
    loop {
        let mut chunk = match r.chunk().await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => return Ok(read),
            Err(e) => return Err((read, Failure::Transport(e))),
        };
        if skip > 0 {
            let dropped = skip.min(chunk.len() as u64);
            skip -= dropped;
            let _ = chunk.split_to(dropped as usize);
        }
        if read + chunk.len() as u64 > limit {
            return Err((
                read,
                Failure::Protocol(format!("the registry sent more than {limit} bytes")),
            ));
        }
        out.write_all(&chunk).await.map_err(|e| {
            (
                read,
                Failure::Local(Error::Registry(format!("cannot write a download: {e}"))),
            )
        })?;
        read += chunk.len() as u64;
        if let Some((sink, digest)) = progress {
            sink.0.advance(digest, chunk.len() as u64);
        }
    }
}

impl From<(u64, Failure)> for Failure {
    fn from((_, failure): (u64, Failure)) -> Self {
        failure
    }
}

/// An error answer, with as much of its body as describes it.
async fn failure_of(r: Response) -> Failure {
    let code = r.status().as_u16();
    let retry_after = header(r.headers(), "retry-after").and_then(parse_retry_after);
    let body = r.text().await.unwrap_or_default();
    Failure::Status {
        code,
        body: body.chars().take(4096).collect(),
        retry_after,
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v: &HeaderValue| v.to_str().ok())
}

/// `Retry-After` as seconds or as an HTTP date.
pub(crate) fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let wait = at.signed_duration_since(chrono::Utc::now());
    Some(wait.to_std().unwrap_or(Duration::ZERO))
}

/// distribution's error codes in a body (`{"errors": [{"code": ...}]}`).
fn error_codes(body: &str) -> Vec<String> {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            v["errors"].as_array().map(|errors| {
                errors
                    .iter()
                    .filter_map(|e| e["code"].as_str().map(str::to_string))
                    .collect()
            })
        })
        .unwrap_or_default()
}

/// A body's codes and messages on one line, or its first 200 characters.
fn describe_body(body: &str) -> String {
    let parsed = serde_json::from_str::<serde_json::Value>(body).ok();
    match parsed.as_ref().and_then(|v| v["errors"].as_array()) {
        Some(errors) if !errors.is_empty() => errors
            .iter()
            .map(|e| {
                format!(
                    "{}: {}",
                    e["code"].as_str().unwrap_or("?"),
                    flatten(e["message"].as_str().unwrap_or(""))
                )
            })
            .collect::<Vec<_>>()
            .join("; "),
        _ if body.trim().is_empty() => "no error body".into(),
        _ => flatten(body).chars().take(200).collect(),
    }
}

/// https spoken to a plain http server: rustls reads `HTTP/1.1 400` as a corrupt record.
fn is_tls_mismatch(chain: &str) -> bool {
    chain.contains("InvalidContentType") || chain.contains("corrupt message")
}

/// plain http spoken to an https server.
fn is_http_to_https(chain: &str) -> bool {
    chain.contains("HTTP request to an HTTPS server")
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

pub(crate) fn one_line(e: &(dyn std::error::Error + 'static)) -> String {
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
    fn retry_after_is_read_as_seconds_or_a_date() {
        assert_eq!(parse_retry_after("2"), Some(Duration::from_secs(2)));
        assert_eq!(parse_retry_after(" 0 "), Some(Duration::ZERO));
        let soon = (chrono::Utc::now() + chrono::Duration::seconds(30)).to_rfc2822();
        let wait = parse_retry_after(&soon.replace("+0000", "GMT")).unwrap();
        assert!((28..=30).contains(&wait.as_secs()), "{wait:?}");
        let past = "Wed, 21 Oct 2015 07:28:00 GMT";
        assert_eq!(parse_retry_after(past), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn busy_answers_are_worth_a_retry_and_others_are_not() {
        let status = |code, after: Option<u64>| Failure::Status {
            code,
            body: String::new(),
            retry_after: after.map(Duration::from_secs),
        };
        for code in [429, 500, 502, 503, 504] {
            assert!(status(code, None).transient(), "{code}");
        }
        for code in [400, 401, 403, 404, 405, 409, 416] {
            assert!(!status(code, None).transient(), "{code}");
        }
        let backoff = Duration::from_millis(250);
        assert_eq!(status(503, None).wait(backoff), Some(backoff));
        assert_eq!(
            status(429, Some(2)).wait(backoff),
            Some(Duration::from_secs(2))
        );
        assert_eq!(status(429, Some(3600)).wait(backoff), None);
    }

    #[test]
    fn error_bodies_are_described_on_one_line() {
        let body = r#"{"errors":[{"code":"UNAVAILABLE","message":"back\nsoon"},{"code":"DENIED","message":"no"}]}"#;
        assert_eq!(describe_body(body), "UNAVAILABLE: back soon; DENIED: no");
        assert_eq!(error_codes(body), ["UNAVAILABLE", "DENIED"]);
        assert_eq!(describe_body("  "), "no error body");
        assert_eq!(
            describe_body("<html>\n bad gateway</html>"),
            "<html> bad gateway</html>"
        );
    }
}
