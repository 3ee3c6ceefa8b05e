//! Test support shared by skiff's test suites: a real `docker-registry` on loopback, free
//! ports, and the external tools the end-to-end tests drive. A missing tool fails the test
//! with the command that installs it; nothing is ever skipped.

#![deny(missing_docs)]

pub mod proxy;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A registry child process (`docker-registry serve`, or one with the referrers API), killed on
/// drop.
pub struct Registry {
    child: Child,
    port: u16,
    log: PathBuf,
    dir: tempfile::TempDir,
    /// What runs, for messages.
    name: &'static str,
}

impl Registry {
    /// Starts a registry on a free loopback port, with htpasswd basic auth when given.
    pub fn start(htpasswd: Option<&Path>) -> Registry {
        let auth = htpasswd
            .map(|p| {
                format!(
                    "auth: {{htpasswd: {{realm: skiff, path: {}}}}}\n",
                    p.display()
                )
            })
            .unwrap_or_default();
        Registry::start_with_auth(&auth)
    }

    /// Starts a registry on a free loopback port that takes bearer tokens from a token server
    /// (distribution's `auth: token:`): it sends clients to `realm` for `service`, and accepts
    /// JWTs from `issuer` signed with a key that a certificate in `rootcertbundle` (PEM) holds.
    pub fn start_with_token_auth(
        realm: &str,
        service: &str,
        issuer: &str,
        rootcertbundle: &Path,
    ) -> Registry {
        Registry::start_with_auth(&format!(
            "auth: {{token: {{realm: \"{realm}\", service: \"{service}\", issuer: \"{issuer}\", rootcertbundle: {}}}}}\n",
            rootcertbundle.display()
        ))
    }

    /// Starts a registry whose config has `auth`, a YAML `auth:` line (or nothing).
    fn start_with_auth(auth: &str) -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let config = format!(
            "version: 0.1\nlog: {{level: info}}\nstorage: {{filesystem: {{rootdirectory: {}}}}}\nhttp: {{addr: 127.0.0.1:{port}}}\n{auth}",
            dir.path().join("storage").display()
        );
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).unwrap();
        let log = dir.path().join("registry.log");
        let log_file = std::fs::File::create(&log).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start docker-registry ({e}): install it with `apt-get install -y docker-registry`")
            });
        let mut registry = Registry {
            child,
            port,
            log,
            dir,
            name: "docker-registry",
        };
        registry.wait_ready();
        registry
    }

    /// Starts a registry that implements the OCI distribution spec 1.1's referrers API
    /// (`GET /v2/NAME/referrers/DIGEST`, `OCI-Subject` on a manifest push), which Debian's
    /// docker-registry (distribution 2.8) lacks: `$SKIFF_TEST_OCI11_REGISTRY`
    /// (ferro-oci-server, which scripts/test.sh installs), storing in a temporary directory.
    pub fn start_oci11() -> Registry {
        let program = std::env::var_os("SKIFF_TEST_OCI11_REGISTRY").unwrap_or_else(|| {
            panic!("SKIFF_TEST_OCI11_REGISTRY is not set: run the tests through scripts/test.sh, which installs ferro-oci-server (cargo install --locked ferro-oci-server@1.0.0)")
        });
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let log = dir.path().join("registry.log");
        let log_file = std::fs::File::create(&log).unwrap();
        let child = Command::new(&program)
            .env("FERRO_OCI_LISTEN", format!("127.0.0.1:{port}"))
            .env("FERRO_OCI_STORAGE_DIR", dir.path().join("storage"))
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {} ({e})", program.to_string_lossy()));
        let mut registry = Registry {
            child,
            port,
            log,
            dir,
            name: "ferro-oci-server",
        };
        registry.wait_ready();
        registry
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Polls GET /v2/ for at most 10 s; 200 or 401 means it is serving.
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("{} exited with {status}: {}", self.name, self.log_text());
            }
            if let Ok(mut conn) = TcpStream::connect(("127.0.0.1", self.port)) {
                conn.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                let _ = conn.write_all(b"GET /v2/ HTTP/1.0\r\nHost: localhost\r\n\r\n");
                let mut head = [0u8; 12];
                if conn.read_exact(&mut head).is_ok() {
                    let head = String::from_utf8_lossy(&head);
                    if head.ends_with("200") || head.ends_with("401") {
                        return;
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "{} did not answer GET /v2/ within 10 s: {}",
            self.name,
            self.log_text()
        );
    }

    /// Where the registry stores the blob `sha256:HEX` on disk (the filesystem driver's
    /// layout), for tests that damage what it serves.
    pub fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").expect("a sha256 digest");
        self.dir
            .path()
            .join("storage/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }

    /// What the registry logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs `program` with `args`, failing the test (with the package that provides it) when the
/// program is missing.
pub fn run_tool(program: &str, package: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {program} ({e}): install it with `apt-get install -y {package}`")
        })
}

/// An htpasswd file (bcrypt) with one user, written to `path`.
pub fn htpasswd(path: &Path, user: &str, password: &str) {
    let out = run_tool("htpasswd", "apache2-utils", &["-Bbn", user, password]);
    assert!(
        out.status.success(),
        "htpasswd failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(path, &out.stdout).unwrap();
}

/// Sends one HTTP request and returns the status and the body parsed as JSON (`Null` when the
/// body is not JSON). Statuses of 400 and above are returned, not raised.
pub fn http_json(
    method: &str,
    url: &str,
    body: Option<&serde_json::Value>,
) -> (u16, serde_json::Value) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    let response = match (method, body) {
        ("GET", _) => agent.get(url).call(),
        ("POST", Some(b)) => agent.post(url).send_json(b),
        ("POST", None) => agent.post(url).send_empty(),
        _ => panic!("unsupported method {method}"),
    };
    let mut response = response.unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
    )
}

/// Posts raw bytes of `content_type` (for malformed bodies) and returns status and JSON body.
pub fn http_post_raw(url: &str, content_type: &str, body: &[u8]) -> (u16, serde_json::Value) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut response = agent
        .post(url)
        .header("content-type", content_type)
        .send(body)
        .unwrap_or_else(|e| panic!("POST {url}: {e}"));
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
    )
}

/// Polls `url` until it answers 200, for at most `timeout`; panics with `describe()` (say, the
/// server's log) when it never does or when `exited()` reports the server gone.
pub fn wait_for_200(
    url: &str,
    timeout: Duration,
    mut exited: impl FnMut() -> bool,
    describe: impl Fn() -> String,
) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(2)))
        .build()
        .into();
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if exited() {
            panic!("the server exited before {url} answered: {}", describe());
        }
        if agent.get(url).call().is_ok_and(|r| r.status() == 200) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "{url} did not answer 200 within {timeout:?}: {}",
        describe()
    );
}

/// GETs `url` and returns the status and the body as text.
pub fn http_text(url: &str) -> (u16, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut response = agent
        .get(url)
        .call()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = response.status().as_u16();
    (
        status,
        response.body_mut().read_to_string().unwrap_or_default(),
    )
}

/// What became of one request sent by [`KeepAliveClient`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A whole response with this status.
    Answered(u16),
    /// A new connection was refused: the server had stopped accepting, nothing was sent.
    Refused,
    /// The request was written but no whole response came back: a lost request.
    Lost(String),
}

/// An HTTP/1.1 client on one keep-alive connection at a time, as load balancers and pooled
/// clients use them: it reconnects only after the server says `Connection: close` or closes.
/// Written on std's sockets so that each request's fate is known exactly.
pub struct KeepAliveClient {
    addr: std::net::SocketAddr,
    conn: Option<std::io::BufReader<std::net::TcpStream>>,
}

impl KeepAliveClient {
    /// A client of the server at `addr` (host:port).
    pub fn new(addr: &str) -> KeepAliveClient {
        KeepAliveClient {
            addr: addr.parse().expect("a socket address"),
            conn: None,
        }
    }

    /// POSTs a JSON `body` to `path`, reusing the open connection when there is one.
    pub fn post(&mut self, path: &str, body: &[u8]) -> Outcome {
        use std::io::{BufRead, Read, Write};
        if self.conn.is_none() {
            match std::net::TcpStream::connect_timeout(&self.addr, Duration::from_secs(5)) {
                Ok(tcp) => {
                    tcp.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
                    self.conn = Some(std::io::BufReader::new(tcp));
                }
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                    return Outcome::Refused;
                }
                Err(e) => return Outcome::Lost(format!("connect: {e}")),
            }
        }
        let conn = self.conn.as_mut().unwrap();
        let head = format!(
            "POST {path} HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
            self.addr,
            body.len()
        );
        let sent = conn
            .get_mut()
            .write_all(head.as_bytes())
            .and_then(|()| conn.get_mut().write_all(body));
        let response = sent.and_then(|()| {
            let mut status_line = String::new();
            conn.read_line(&mut status_line)?;
            let status: u16 = status_line
                .split(' ')
                .nth(1)
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| std::io::Error::other(format!("status line {status_line:?}")))?;
            let (mut length, mut close) = (0usize, false);
            loop {
                let mut line = String::new();
                if conn.read_line(&mut line)? == 0 {
                    return Err(std::io::ErrorKind::UnexpectedEof.into());
                }
                let line = line.trim_end().to_ascii_lowercase();
                if line.is_empty() {
                    break;
                }
                if let Some(v) = line.strip_prefix("content-length:") {
                    length = v.trim().parse().map_err(std::io::Error::other)?;
                }
                close |= line == "connection: close";
            }
            conn.read_exact(&mut vec![0; length])?;
            Ok((status, close))
        });
        match response {
            Ok((status, close)) => {
                if close {
                    self.conn = None;
                }
                Outcome::Answered(status)
            }
            Err(e) => {
                self.conn = None;
                Outcome::Lost(e.to_string())
            }
        }
    }
}

/// An `mlflow server` child (sqlite backend store, artifacts proxied into a temp folder), or
/// an `mlflow models serve` scoring server, on a free loopback port. Runs under a small Python guard that kills the server's whole process
/// group (it starts uvicorn and a job runner) when the guard's stdin closes: on drop, or when
/// the test process ends, so a server held in a `static` does not outlive the tests either.
pub struct MlflowServer {
    child: Child,
    stdin: Option<std::process::ChildStdin>,
    port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

/// Starts `ARGV` in a new session, kills that session when stdin reaches EOF, and exits with
/// the server's status when it ends first.
const GUARD: &str = "import os, signal, subprocess, sys, threading\n\
p = subprocess.Popen(sys.argv[1:], start_new_session=True)\n\
def watch():\n    sys.stdin.read()\n    os.killpg(p.pid, signal.SIGKILL)\n    os._exit(0)\n\
threading.Thread(target=watch, daemon=True).start()\n\
sys.exit(p.wait())\n";

impl MlflowServer {
    /// Starts `python -m mlflow server` and waits (at most 90 s) for `/health`. `env` is added
    /// to the server's environment (e.g. what `--app-name basic-auth` needs); `extra` to its
    /// arguments.
    pub fn start(python: &Path, extra: &[&str], env: &[(&str, &str)]) -> MlflowServer {
        let dir = tempfile::tempdir().unwrap();
        let db = format!("sqlite:///{}", dir.path().join("mlflow.db").display());
        let artifacts = dir.path().join("artifacts").display().to_string();
        let mut args = vec!["server", "--backend-store-uri", &db];
        args.extend(["--artifacts-destination", &artifacts, "--workers", "1"]);
        args.extend(extra);
        MlflowServer::spawn(python, &args, env, "/health", dir)
    }

    /// Starts `python -m mlflow models serve -m MODEL_DIR --env-manager local` (the scoring
    /// server MLflow deploys a model with) and waits (at most 90 s) for `/ping`.
    pub fn models_serve(python: &Path, model_dir: &Path) -> MlflowServer {
        let dir = tempfile::tempdir().unwrap();
        let model = model_dir.display().to_string();
        // It runs uvicorn from PATH: the one beside the Python.
        let bin = python.parent().unwrap_or(Path::new("."));
        let path = std::env::join_paths(std::iter::once(bin.to_path_buf()).chain(
            std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
        ))
        .unwrap();
        let path = path.to_string_lossy().into_owned();
        let args = ["models", "serve", "-m", &model, "--env-manager", "local"];
        MlflowServer::spawn(python, &args, &[("PATH", &path)], "/ping", dir)
    }

    /// Runs `python -m mlflow ARGS --host 127.0.0.1 --port FREE` under the guard and waits
    /// for `health` to answer 200.
    fn spawn(
        python: &Path,
        args: &[&str],
        env: &[(&str, &str)],
        health: &str,
        dir: tempfile::TempDir,
    ) -> MlflowServer {
        let port = free_port();
        let log = dir.path().join("mlflow.log");
        let log_file = std::fs::File::create(&log).unwrap();
        let mut child = Command::new(python)
            .args(["-c", GUARD])
            .arg(python)
            .args(["-m", "mlflow"])
            .args(args)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .envs(env.iter().copied())
            .env("MLFLOW_DISABLE_TELEMETRY", "true")
            .stdin(Stdio::piped())
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start {} ({e}): point SKIFF_TEST_PYTHON at a Python with \
                     tests/requirements.txt installed (mlflow[auth]==3.17.2)",
                    python.display()
                )
            });
        let stdin = child.stdin.take();
        let mut server = MlflowServer {
            child,
            stdin,
            port,
            log,
            _dir: dir,
        };
        let url = format!("{}{health}", server.url());
        let log = server.log.clone();
        let child = &mut server.child;
        wait_for_200(
            &url,
            Duration::from_secs(90),
            || child.try_wait().ok().flatten().is_some(),
            || {
                format!(
                    "mlflow's log:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                )
            },
        );
        server
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// What the server logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for MlflowServer {
    fn drop(&mut self) {
        // EOF on the guard's stdin: it kills the server's process group and exits
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
