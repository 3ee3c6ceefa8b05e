//! A client of MLflow's REST API (`/api/2.0/mlflow/...`) and of the artifact proxy a tracking
//! server runs (`/api/2.0/mlflow-artifacts/...`), with MLflow's authentication variables and
//! retries of what a restart or a busy server makes fail.

use crate::{Error, Result};
use serde_json::Value;
use std::time::Duration;

/// Tries per call: the first, then retries after 0.5, 1 and 2 seconds.
const TRIES: u32 = 4;
const FIRST_BACKOFF: Duration = Duration::from_millis(500);

/// A tracking server at one URL.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    /// `http(s)://HOST[:PORT][/PREFIX]`, without a trailing slash.
    base: String,
    auth: Auth,
}

#[derive(Clone)]
enum Auth {
    None,
    /// `MLFLOW_TRACKING_USERNAME` and `MLFLOW_TRACKING_PASSWORD`.
    Basic(String, String),
    /// `MLFLOW_TRACKING_TOKEN`.
    Bearer(String),
}

/// How a call failed: the server's own answer (status, MLflow's `error_code` and message), or
/// no answer at all.
enum Failure {
    Api {
        status: u16,
        code: String,
        message: String,
    },
    Transport(String),
}

impl Failure {
    /// Worth another try: no answer, or an answer that says "later".
    fn transient(&self) -> bool {
        match self {
            Failure::Transport(_) => true,
            Failure::Api { status, .. } => matches!(status, 429 | 502 | 503 | 504),
        }
    }
}

impl Client {
    /// A client of the tracking server at `url` (`http://HOST:PORT`, as `MLFLOW_TRACKING_URI`
    /// gives it), authenticated as MLflow's environment variables say.
    pub fn new(url: &str) -> Result<Client> {
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let auth = match (
            env("MLFLOW_TRACKING_TOKEN"),
            env("MLFLOW_TRACKING_USERNAME"),
            env("MLFLOW_TRACKING_PASSWORD"),
        ) {
            (Some(token), _, _) => Auth::Bearer(token),
            (None, Some(user), Some(password)) => Auth::Basic(user, password),
            (None, Some(_), None) | (None, None, Some(_)) => {
                return Err(Error(
                    "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD go together: set both, \
                     or neither"
                        .into(),
                ));
            }
            (None, None, None) => Auth::None,
        };
        Client::with_auth(url, auth)
    }

    fn with_auth(url: &str, auth: Auth) -> Result<Client> {
        let base = url.trim_end_matches('/');
        if !(base.starts_with("http://") || base.starts_with("https://")) || base.len() < 9 {
            return Err(Error(format!(
                "MLflow tracking URI {url:?} is not http(s)://HOST[:PORT]: skiff talks to an \
                 `mlflow server` over its REST API (MLflow 3.13+ refuses local mlruns/ stores)"
            )));
        }
        // built without a TLS provider (no aws-lc); ring is the one skiff ships
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .user_agent(concat!("skiff/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(300))
            .build()
            .map_err(|e| Error(format!("cannot set up an http client for MLflow: {e}")))?;
        Ok(Client {
            http,
            base: base.to_string(),
            auth,
        })
    }

    /// The server's URL, as given.
    pub fn url(&self) -> &str {
        &self.base
    }

    /// `GET /api/2.0/mlflow/ENDPOINT?QUERY`, e.g. `experiments/get-by-name`.
    pub async fn get(&self, endpoint: &str, query: &[(&str, &str)]) -> Result<Value> {
        self.json(reqwest::Method::GET, endpoint, query, None).await
    }

    /// As [`Client::get`], `None` where the server says the thing does not exist.
    pub async fn get_if_exists(
        &self,
        endpoint: &str,
        query: &[(&str, &str)],
    ) -> Result<Option<Value>> {
        self.call(
            reqwest::Method::GET,
            endpoint,
            query,
            None,
            "RESOURCE_DOES_NOT_EXIST",
        )
        .await
    }

    /// `POST /api/2.0/mlflow/ENDPOINT` with a JSON body.
    pub async fn post(&self, endpoint: &str, body: &Value) -> Result<Value> {
        self.json(reqwest::Method::POST, endpoint, &[], Some(body))
            .await
    }

    /// As [`Client::post`], `None` where the server says the thing exists already (another
    /// client created it first).
    pub async fn post_unless_exists(&self, endpoint: &str, body: &Value) -> Result<Option<Value>> {
        let method = reqwest::Method::POST;
        self.call(method, endpoint, &[], Some(body), "RESOURCE_ALREADY_EXISTS")
            .await
    }

    /// `PATCH /api/2.0/mlflow/ENDPOINT` with a JSON body.
    pub async fn patch(&self, endpoint: &str, body: &Value) -> Result<Value> {
        self.json(reqwest::Method::PATCH, endpoint, &[], Some(body))
            .await
    }

    /// Uploads `bytes` to the artifact proxy at `path` (a `mlflow-artifacts:/PATH` location's
    /// path).
    pub async fn upload(&self, path: &str, bytes: Vec<u8>) -> Result<()> {
        let url = self.artifacts(path);
        let body = bytes::Bytes::from(bytes);
        self.send(|| {
            self.request(reqwest::Method::PUT, &url)
                .header("content-type", "application/octet-stream")
                .body(body.clone())
        })
        .await
        .map_err(|f| self.error(&url, f))?;
        Ok(())
    }

    /// Downloads the artifact at `path` from the artifact proxy.
    pub async fn download(&self, path: &str) -> Result<Vec<u8>> {
        let url = self.artifacts(path);
        self.send(|| self.request(reqwest::Method::GET, &url))
            .await
            .map_err(|f| self.error(&url, f))
    }

    /// The files and folders directly under `path` on the artifact proxy: `(path, is_dir,
    /// size)`, paths relative to `path`.
    pub async fn list(&self, path: &str) -> Result<Vec<(String, bool, Option<u64>)>> {
        let url = format!("{}/api/2.0/mlflow-artifacts/artifacts", self.base);
        let body = self
            .send(|| {
                self.request(reqwest::Method::GET, &url)
                    .query(&[("path", path)])
            })
            .await
            .map_err(|f| self.error(&url, f))?;
        let listing = parse(&url, &body)?;
        Ok(listing["files"]
            .as_array()
            .map(|files| {
                files
                    .iter()
                    .filter_map(|f| {
                        Some((
                            f["path"].as_str()?.to_string(),
                            f["is_dir"].as_bool().unwrap_or(false),
                            f["file_size"]
                                .as_u64()
                                .or_else(|| f["file_size"].as_str()?.parse().ok()),
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn json(
        &self,
        method: reqwest::Method,
        endpoint: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<Value> {
        let answer = self.call(method, endpoint, query, body, "").await?;
        Ok(answer.expect("only a tolerated error code answers None"))
    }

    /// Calls the REST API; `None` where MLflow answers with the error code `tolerated`.
    async fn call(
        &self,
        method: reqwest::Method,
        endpoint: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
        tolerated: &str,
    ) -> Result<Option<Value>> {
        let url = self.api(endpoint);
        let body = body.map(|b| b.to_string());
        let answer = self
            .send(|| {
                let mut request = self.request(method.clone(), &url).query(query);
                if let Some(body) = &body {
                    request = request
                        .header("content-type", "application/json")
                        .body(body.clone());
                }
                request
            })
            .await;
        match answer {
            Ok(answer) => parse(&url, &answer).map(Some),
            Err(Failure::Api { code, .. }) if !tolerated.is_empty() && code == tolerated => {
                Ok(None)
            }
            Err(failure) => Err(self.error(&url, failure)),
        }
    }

    fn api(&self, endpoint: &str) -> String {
        format!("{}/api/2.0/mlflow/{endpoint}", self.base)
    }

    fn artifacts(&self, path: &str) -> String {
        let path: Vec<String> = path
            .trim_start_matches('/')
            .split('/')
            .map(percent_encode)
            .collect();
        format!(
            "{}/api/2.0/mlflow-artifacts/artifacts/{}",
            self.base,
            path.join("/")
        )
    }

    fn request(&self, method: reqwest::Method, url: &str) -> reqwest::RequestBuilder {
        let request = self.http.request(method, url);
        match &self.auth {
            Auth::None => request,
            Auth::Basic(user, password) => request.basic_auth(user, Some(password)),
            Auth::Bearer(token) => request.bearer_auth(token),
        }
    }

    /// Sends what `build` makes, again after a pause while the failure is transient, and
    /// returns the body of a 2xx answer.
    async fn send(
        &self,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> std::result::Result<Vec<u8>, Failure> {
        let mut backoff = FIRST_BACKOFF;
        let mut attempt = 1;
        loop {
            let failure = match build().send().await {
                Ok(response) => {
                    let status = response.status();
                    match response.bytes().await {
                        Ok(body) if status.is_success() => return Ok(body.to_vec()),
                        Ok(body) => api_failure(status.as_u16(), &body),
                        Err(e) => Failure::Transport(one_line(&e)),
                    }
                }
                Err(e) => Failure::Transport(one_line(&e)),
            };
            if attempt == TRIES || !failure.transient() {
                return Err(failure);
            }
            tokio::time::sleep(backoff).await;
            backoff *= 2;
            attempt += 1;
        }
    }

    fn error(&self, url: &str, failure: Failure) -> Error {
        Error(match failure {
            Failure::Transport(e) => format!(
                "cannot reach the MLflow tracking server at {} after {TRIES} tries ({e}): start \
                 it, or point --mlflow / MLFLOW_TRACKING_URI at a running one",
                self.base
            ),
            Failure::Api {
                status: 401 | 403,
                message,
                ..
            } => format!(
                "the MLflow tracking server at {} refused skiff's credentials ({message}): set \
                 MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD, or MLFLOW_TRACKING_TOKEN",
                self.base
            ),
            Failure::Api {
                status,
                code,
                message,
            } => format!("MLflow answered {status} {code} to {url}: {message}"),
        })
    }
}

fn api_failure(status: u16, body: &[u8]) -> Failure {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let field = |name: &str| {
        parsed
            .as_ref()
            .and_then(|v| v[name].as_str())
            .map(str::to_string)
    };
    let message = field("message").unwrap_or_else(|| {
        let text = String::from_utf8_lossy(body);
        text.split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .chars()
            .take(200)
            .collect()
    });
    Failure::Api {
        status,
        code: field("error_code").unwrap_or_default(),
        message,
    }
}

fn parse(url: &str, body: &[u8]) -> Result<Value> {
    if body.is_empty() {
        return Ok(Value::Object(Default::default()));
    }
    serde_json::from_slice(body).map_err(|e| {
        Error(format!(
            "{url} answered something that is not JSON ({e}): is it an MLflow tracking server?"
        ))
    })
}

/// The error and its causes on one line.
fn one_line(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut next = e.source();
    while let Some(cause) = next {
        let text = cause.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = cause.source();
    }
    parts
        .join(": ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// `segment` with everything but unreserved characters percent-encoded.
fn percent_encode(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracking_uris_must_be_http() {
        for bad in ["", "mlruns", "file:///tmp/mlruns", "databricks", "http://"] {
            let err = Client::with_auth(bad, Auth::None)
                .err()
                .expect(bad)
                .to_string();
            assert!(err.contains("http(s)://HOST"), "{err}");
        }
        let client = Client::with_auth("http://127.0.0.1:5000/", Auth::None).unwrap();
        assert_eq!(client.url(), "http://127.0.0.1:5000");
        assert_eq!(
            client.artifacts("1/abc/artifacts/model/MLmodel"),
            "http://127.0.0.1:5000/api/2.0/mlflow-artifacts/artifacts/1/abc/artifacts/model/MLmodel"
        );
        assert_eq!(percent_encode("a b%"), "a%20b%25");
    }

    #[tokio::test]
    async fn a_server_that_is_down_is_one_line_after_retries() {
        // A port nothing listens on: bound, then closed.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let client = Client::with_auth(&format!("http://127.0.0.1:{port}"), Auth::None).unwrap();
        let started = std::time::Instant::now();
        let err = client
            .get("experiments/get-by-name", &[("experiment_name", "x")])
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("cannot reach the MLflow tracking server"),
            "{err}"
        );
        assert!(err.contains("after 4 tries"), "{err}");
        assert!(!err.contains('\n'), "{err}");
        assert!(started.elapsed() >= Duration::from_millis(3500));
    }
}
