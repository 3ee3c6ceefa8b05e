//! Identity tokens (docker's `identitytoken`) against a real registry (`docker-registry`,
//! distribution 2.8, with `auth: token:`) and a token server that follows distribution's
//! OAuth2 token spec (`token_server.py`, run by `SKIFF_TEST_PYTHON`, which has PyJWT and
//! cryptography). Missing tools fail the test: they are never skipped.

use std::collections::BTreeMap;
use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use base64::Engine as _;
use skiff_pack::auth::AuthEnv;
use skiff_pack::image::{ServerBinary, ServerImage, read_model, write_server_image};
use skiff_pack::oci::Platform;
use skiff_pack::registry::{PushOptions, pull, push};
use skiff_testing::Registry;

const SERVICE: &str = "skiff-test-registry";
const ISSUER: &str = "skiff-test-token-issuer";
const REFRESH_TOKEN: &str = "refresh-3b9f0c1e-good";

/// `token_server.py` on a free loopback port, killed on drop; what it printed about each
/// token request is kept.
struct TokenServer {
    child: Child,
    port: u16,
    requests: Arc<Mutex<Vec<String>>>,
}

impl TokenServer {
    /// Starts the server; it writes its signing certificate to `cert` before it listens.
    fn start(cert: &Path) -> TokenServer {
        let python = std::env::var_os("SKIFF_TEST_PYTHON").unwrap_or_else(|| {
            panic!("SKIFF_TEST_PYTHON is not set (a Python with PyJWT and cryptography, tests/requirements.txt): run scripts/test.sh")
        });
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/token_server.py");
        let mut child = Command::new(&python)
            .arg(&script)
            .arg(cert)
            .args([ISSUER, SERVICE, REFRESH_TOKEN])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run SKIFF_TEST_PYTHON {python:?}: {e}"));
        let stdout = child.stdout.take().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (port_tx, port_rx) = mpsc::channel();
        let kept = requests.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                match line.strip_prefix("listening ") {
                    Some(port) => {
                        let _ = port_tx.send(port.parse::<u16>().unwrap());
                    }
                    None => kept.lock().unwrap().push(line),
                }
            }
        });
        let port = match port_rx.recv_timeout(Duration::from_secs(20)) {
            Ok(port) => port,
            Err(_) => {
                let _ = child.kill();
                let status = child.wait().unwrap();
                panic!(
                    "token_server.py did not listen within 20 s ({status}); does SKIFF_TEST_PYTHON have PyJWT and cryptography (tests/requirements.txt)?"
                );
            }
        };
        TokenServer {
            child,
            port,
            requests,
        }
    }

    fn realm(&self) -> String {
        format!("http://127.0.0.1:{}/token", self.port)
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Packs an image with a dummy executable and dummy model bytes; returns (layout, model).
fn pack(dir: &Path, tag: &str) -> (PathBuf, Vec<u8>) {
    let server = dir.join("skiff-server");
    std::fs::write(&server, b"\x7fELF dummy server, not really runnable").unwrap();
    let model = b"dummy onnx model bytes".repeat(1000);
    let layout = dir.join("image");
    let image = ServerImage {
        servers: vec![ServerBinary {
            platform: Platform::parse("linux/amd64").unwrap(),
            path: &server,
        }],
        model: &model,
        model_name: "iris",
        version: "0.1.0",
        labels: BTreeMap::new(),
    };
    write_server_image(&layout, tag, &image).unwrap();
    (layout, model)
}

fn insecure(auth_env: AuthEnv) -> PushOptions {
    PushOptions {
        insecure: true,
        auth_env: Some(auth_env),
        ..PushOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_token_logs_in_through_the_token_server() {
    let tmp = tempfile::tempdir().unwrap();
    let cert = tmp.path().join("token-signer.pem");
    let tokens = TokenServer::start(&cert);
    let registry = Registry::start_with_token_auth(&tokens.realm(), SERVICE, ISSUER, &cert);
    let host = registry.host();
    let (layout, model) = pack(tmp.path(), "v1");

    // without credentials the registry refuses: it really wants a token
    let anonymous = push(
        &layout,
        "v1",
        &host,
        "team/iris",
        "v1",
        &insecure(AuthEnv::empty()),
    )
    .await;
    assert!(anonymous.is_err(), "{anonymous:?}");

    // what `docker login` writes for an OAuth2 registry
    let docker = tmp.path().join("docker");
    std::fs::create_dir_all(&docker).unwrap();
    let write_config = |token: &str| {
        let auth = base64::engine::general_purpose::STANDARD.encode("<token>:");
        std::fs::write(
            docker.join("config.json"),
            format!(r#"{{"auths":{{"{host}":{{"auth":"{auth}","identitytoken":"{token}"}}}}}}"#),
        )
        .unwrap();
    };
    let with_config = insecure(AuthEnv::empty().with("DOCKER_CONFIG", &docker));

    write_config(REFRESH_TOKEN);
    let report = push(&layout, "v1", &host, "team/iris", "v1", &with_config)
        .await
        .unwrap();
    assert_eq!(report.blobs_skipped, 0, "{report:?}");
    let pulled = tmp.path().join("pulled");
    let desc = pull(&host, "team/iris", "v1", &pulled, "v1", &with_config)
        .await
        .unwrap();
    assert_eq!(desc.digest, report.manifest_digest);
    assert_eq!(read_model(&pulled, "v1").unwrap(), model);

    // the refresh_token grant of distribution's oauth.md, for push and for pull
    let requests = tokens.requests();
    let form = "content_type=application/x-www-form-urlencoded";
    for scope in ["team/iris:pull,push", "team/iris:pull"] {
        let expected = format!(
            "grant refresh_token client_id=skiff service={SERVICE} scope=repository:{scope} token=good {form}"
        );
        assert!(requests.contains(&expected), "{expected} in {requests:#?}");
    }

    // a refused identity token: one line that names the registry and says what to do
    write_config("refresh-revoked");
    for result in [
        push(&layout, "v1", &host, "team/iris", "v2", &with_config)
            .await
            .map(|_| ()),
        pull(
            &host,
            "team/iris",
            "v1",
            &tmp.path().join("refused"),
            "v1",
            &with_config,
        )
        .await
        .map(|_| ()),
    ] {
        let err = result.unwrap_err().to_string();
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.contains(&format!("registry {host} refused the identity token"))
                && err.contains("config.json")
                && err.contains("token server answered HTTP 400: invalid_grant")
                && err.contains(&format!("log in again with docker login {host}")),
            "{err}"
        );
    }
    assert!(
        tokens
            .requests()
            .iter()
            .any(|r| r.ends_with(&format!("token=bad {form}"))),
        "{:#?}",
        tokens.requests()
    );
}
