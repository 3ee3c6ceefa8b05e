//! `skiff serve`: the Open Inference Protocol over HTTP, against a real server process.

use crate::*;
use serde_json::{Value, json};
use skiff_testing::{KeepAliveClient, Outcome, free_port, http_json, http_post_raw, wait_for_200};
use std::process::{Child, Stdio};
use std::time::Duration;

/// A server process (`skiff serve`, or `wasmtime serve`) on a free loopback port, killed on
/// drop.
pub struct Server {
    child: Child,
    pub base: String,
    log: tempfile::NamedTempFile,
    _cache: Option<tempfile::TempDir>,
}

impl Server {
    /// Starts `skiff serve` and waits until it is ready.
    pub fn start(model: &str, extra: &[&str]) -> Server {
        let mut server = Server::spawn(model, extra);
        server.wait_for_200("/v2/health/ready");
        server
    }

    /// Starts `skiff serve` without waiting for it.
    pub fn spawn(model: &str, extra: &[&str]) -> Server {
        let port = free_port();
        let mut command = skiff();
        command
            .args(["serve", model, "--addr", &format!("127.0.0.1:{port}")])
            .args(extra);
        Server::launch(command, port, None)
    }

    /// Starts `wasmtime serve COMPONENT`, plain (no flags but the address), and waits until it
    /// is ready. Its compilation cache is kept in a folder that goes with the server.
    pub fn wasmtime(component: &Path) -> Server {
        let port = free_port();
        let cache = tempfile::tempdir().unwrap();
        let mut command = crate::component::venv_tool("wasmtime");
        command
            .args(["serve", "--addr", &format!("127.0.0.1:{port}")])
            .arg(component)
            .env("XDG_CACHE_HOME", cache.path());
        let mut server = Server::launch(command, port, Some(cache));
        server.wait_for_200("/v2/health/ready");
        server
    }

    pub fn launch(mut command: Command, port: u16, cache: Option<tempfile::TempDir>) -> Server {
        let log = tempfile::NamedTempFile::new().unwrap();
        let child = command
            .stdout(Stdio::null())
            .stderr(log.reopen().unwrap())
            .spawn()
            .unwrap();
        Server {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log,
            _cache: cache,
        }
    }

    /// Waits until `path` answers 200, failing with the server's log if it exits or never does.
    pub fn wait_for_200(&mut self, path: &str) {
        // Loading compiles a component's engine (megabytes of wasm) before the server is ready.
        self.wait_for_200_within(path, Duration::from_secs(90));
    }

    /// As [`Server::wait_for_200`], for servers that load many models first.
    pub fn wait_for_200_within(&mut self, path: &str, timeout: Duration) {
        let url = format!("{}{path}", self.base);
        let log_path = self.log.path().to_path_buf();
        let child = &mut self.child;
        wait_for_200(
            &url,
            timeout,
            || child.try_wait().unwrap().is_some(),
            || std::fs::read_to_string(&log_path).unwrap_or_default(),
        );
    }

    pub fn get(&self, path: &str) -> (u16, Value) {
        http_json("GET", &format!("{}{path}", self.base), None)
    }

    pub fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        http_json("POST", &format!("{}{path}", self.base), Some(body))
    }
}

impl Server {
    /// Sends SIGTERM, as Kubernetes does to stop a pod.
    pub fn terminate(&self) {
        self.signal("-TERM");
    }

    /// Sends a signal with kill(1).
    pub fn signal(&self, signal: &str) {
        let status = std::process::Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// What the server wrote to stderr so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }

    /// Whether the process has exited.
    pub fn exited(&mut self) -> bool {
        self.child.try_wait().unwrap().is_some()
    }

    /// Waits at most `timeout` for the process to exit and returns whether it exited cleanly.
    pub fn wait_exit(&mut self, timeout: Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        while std::time::Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("server still running {timeout:?} after SIGTERM");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The first `n` test rows' features and species.
pub fn test_rows(n: usize) -> (Vec<Vec<f64>>, Vec<String>) {
    let (_, rows) = read_csv(&std::fs::read_to_string(example("iris/test.csv")).unwrap());
    let rows = &rows[..n];
    (
        rows.iter()
            .map(|r| r[..4].iter().map(|v| v.parse().unwrap()).collect())
            .collect(),
        rows.iter().map(|r| r[4].clone()).collect(),
    )
}

/// Serves `source` (a file, folder or image reference) and asserts it answers iris infers.
pub fn assert_serves_iris(source: &str) {
    let server = Server::start(source, &[]);
    assert_infers_iris(|p, b| server.post(p, b), "iris");
}

/// Asserts an OIP infer over `base` answers the species of the first test rows.
pub fn assert_infers_iris(post: impl Fn(&str, &Value) -> (u16, Value), name: &str) {
    let (x, species) = test_rows(5);
    let body = json!({ "id": "r1", "inputs": [{ "name": "X", "shape": [5, 4], "datatype": "FP32", "data": x }] });
    let (status, response) = post(&format!("/v2/models/{name}/infer"), &body);
    assert_eq!(status, 200, "{response}");
    assert_eq!(response["model_name"], name);
    assert_eq!(response["id"], "r1");
    let label = response["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == "label")
        .unwrap();
    assert_eq!(label["datatype"], "BYTES");
    assert_eq!(label["shape"], json!([5]));
    assert_eq!(label["data"], json!(species));
}

#[test]
fn serves_the_open_inference_protocol() {
    let dir = tempfile::tempdir().unwrap();
    let model = iris_model(dir.path());
    let server = Server::start(model.to_str().unwrap(), &[]);

    assert_eq!(server.get("/v2/health/live").0, 200);
    assert_eq!(server.get("/v2/health/ready").0, 200);
    let (status, meta) = server.get("/v2");
    assert_eq!(status, 200);
    assert_eq!(meta["name"], "skiff");
    let (status, meta) = server.get("/v2/models/iris");
    assert_eq!(status, 200, "{meta}");
    assert_eq!(meta["platform"], "onnx_onnxv1");
    assert_eq!(
        meta["inputs"],
        json!([{ "name": "X", "datatype": "FP32", "shape": [-1, 4] }])
    );
    assert_eq!(
        meta["outputs"][0],
        json!({ "name": "label", "datatype": "BYTES", "shape": [-1] })
    );
    assert_eq!(
        meta["outputs"][1],
        json!({ "name": "probabilities", "datatype": "FP32", "shape": [-1, 3] })
    );
    assert_eq!(server.get("/v2/models/iris/ready").0, 200);
    assert_eq!(server.get("/v2/models/iris/versions/1/ready").0, 200);

    assert_infers_iris(|p, b| server.post(p, b), "iris");

    // Flat data, FP64 coerced to the FP32 input, and the outputs filter.
    let (x, species) = test_rows(2);
    let flat: Vec<f64> = x.concat();
    let body = json!({ "inputs": [{ "name": "X", "shape": [2, 4], "datatype": "FP64", "data": flat }], "outputs": [{ "name": "probabilities" }] });
    let (status, response) = server.post("/v2/models/iris/versions/1/infer", &body);
    assert_eq!(status, 200, "{response}");
    let outputs = response["outputs"].as_array().unwrap();
    assert_eq!(outputs.len(), 1);
    assert_eq!(outputs[0]["shape"], json!([2, 3]));
    let p: Vec<f64> = outputs[0]["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let names = ["setosa", "versicolor", "virginica"];
    for (row, truth) in p.chunks(3).zip(&species) {
        let best = (0..3).max_by(|&a, &b| row[a].total_cmp(&row[b])).unwrap();
        assert_eq!(names[best], truth);
    }
}

#[test]
fn bad_requests_get_4xx_json_errors() {
    let dir = tempfile::tempdir().unwrap();
    let model = iris_model(dir.path());
    let server = Server::start(model.to_str().unwrap(), &["--name", "flowers"]);
    let x = json!([[5.1, 3.5, 1.4, 0.2]]);
    let cases: Vec<(&str, Value, u16, &str)> = vec![
        (
            "/v2/models/flowers/infer",
            json!({ "inputs": [] }),
            400,
            "missing input \"X\"",
        ),
        (
            "/v2/models/iris/infer",
            json!({ "inputs": [] }),
            404,
            "not found",
        ),
        (
            "/v2/models/flowers/versions/7/infer",
            json!({ "inputs": [] }),
            404,
            "no version",
        ),
        (
            "/v2/models/flowers/infer",
            json!({ "inputs": [{ "name": "Y", "shape": [1, 4], "datatype": "FP32", "data": x }] }),
            400,
            "has no input \"Y\"",
        ),
        (
            "/v2/models/flowers/infer",
            json!({ "inputs": [{ "name": "X", "shape": [1, 4], "datatype": "BYTES", "data": x }] }),
            400,
            "must be FP32",
        ),
        (
            "/v2/models/flowers/infer",
            json!({ "inputs": [{ "name": "X", "shape": [2, 4], "datatype": "FP32", "data": x }] }),
            400,
            "8 elements",
        ),
        (
            "/v2/models/flowers/infer",
            json!({ "inputs": [{ "name": "X", "shape": [1, 5], "datatype": "FP32", "data": [1, 2, 3, 4, 5] }] }),
            400,
            "shape",
        ),
        (
            "/v2/models/flowers/infer",
            json!({ "inputs": [{ "name": "X", "shape": [4611686018427387904_i64, 4], "datatype": "FP32", "data": x }] }),
            400,
            "too many elements",
        ),
        (
            "/v2/models/flowers/infer",
            json!({ "inputs": [{ "name": "X", "shape": [1, 4], "datatype": "FP32" }] }),
            400,
            "no \"data\"",
        ),
        (
            "/v2/models/flowers/infer",
            json!({ "inputs": [{ "name": "X", "shape": [1, 4], "datatype": "FP32", "data": ["a", 1, 2, 3] }] }),
            400,
            "must be a number",
        ),
        (
            "/v2/models/flowers/infer",
            json!({ "inputs": [{ "name": "X", "shape": [1, 4], "datatype": "FP32", "data": x }], "outputs": [{ "name": "nope" }] }),
            400,
            "no output \"nope\"",
        ),
    ];
    for (path, body, status, needle) in cases {
        let (got, response) = server.post(path, &body);
        assert_eq!(got, status, "{path} {body}: {response}");
        let error = response["error"]
            .as_str()
            .unwrap_or_else(|| panic!("no error field: {response}"));
        assert!(
            error.contains(needle),
            "{body}: error {error:?} lacks {needle:?}"
        );
    }
    let infer = format!("{}/v2/models/flowers/infer", server.base);
    let (status, response) = http_post_raw(&infer, "application/json", b"{not json");
    assert_eq!(status, 400);
    assert!(
        response["error"]
            .as_str()
            .unwrap()
            .contains("invalid inference request")
    );
    // A body of another media type gets 415 with what to send instead.
    let body =
        json!({ "inputs": [{ "name": "X", "shape": [1, 4], "datatype": "FP32", "data": x }] });
    let body = body.to_string();
    for content_type in [
        "text/csv",
        "text/plain; charset=utf-8",
        "multipart/form-data; boundary=x",
    ] {
        let (status, response) = http_post_raw(&infer, content_type, body.as_bytes());
        assert_eq!(status, 415, "{content_type}: {response}");
        let error = response["error"].as_str().unwrap();
        assert!(error.contains("application/json"), "{error}");
    }
    // JSON under its own types, curl -d's form type (Triton's and KServe's examples post
    // that way) and SageMaker's name for binary tensors are served.
    for content_type in [
        "application/json; charset=utf-8".to_string(),
        "application/x-www-form-urlencoded".to_string(),
        format!(
            "application/vnd.sagemaker-triton.binary+json;json-header-size={}",
            body.len()
        ),
    ] {
        let (status, response) = http_post_raw(&infer, &content_type, body.as_bytes());
        assert_eq!(status, 200, "{content_type}: {response}");
    }
    assert_eq!(server.get("/v2/models/nope").0, 404);
    assert_eq!(server.get("/nowhere").0, 404);
    // The server is still serving after all of that.
    assert_infers_iris(|p, b| server.post(p, b), "flowers");
}

#[test]
fn tritonclient_passes_the_conformance_checks() {
    let dir = tempfile::tempdir().unwrap();
    let model = iris_model(dir.path());
    let server = Server::start(model.to_str().unwrap(), &[]);
    assert_tritonclient_conformance(&server, &model, "iris");
}

/// Runs tests/tritonclient_conformance.py (Triton's own client, binary and JSON tensors, and
/// its errors) against `server`, serving the iris `model` as `name`.
pub fn assert_tritonclient_conformance(server: &Server, model: &Path, name: &str) {
    let dir = tempfile::tempdir().unwrap();
    let expected_path = iris_expectations(model, dir.path());
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tritonclient_conformance.py");
    let address = server.base.trim_start_matches("http://");
    let out = python()
        .arg(script)
        .args([address, name])
        .arg(&expected_path)
        .output()
        .expect("python runs");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && report.contains("all checks passed"),
        "tritonclient conformance failed:\n{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Writes `dir/expected.json`: the first 8 iris test rows with the labels and probabilities
/// `skiff predict --proba` gives for them with `model`, for the conformance scripts.
pub fn iris_expectations(model: &Path, dir: &Path) -> PathBuf {
    let rows = dir.join("rows.csv");
    let (header, test) = read_csv(&std::fs::read_to_string(example("iris/test.csv")).unwrap());
    let lines: Vec<String> = std::iter::once(header.join(","))
        .chain(test[..8].iter().map(|r| r.join(",")))
        .collect();
    std::fs::write(&rows, lines.join("\n") + "\n").unwrap();
    let predicted = predict(model, &rows, &["--proba"]);
    let (_, predicted) = read_csv(&predicted);
    let expected = json!({
        "rows": test[..8].iter().map(|r| r[..4].iter().map(|v| v.parse::<f64>().unwrap()).collect::<Vec<_>>()).collect::<Vec<_>>(),
        "labels": predicted.iter().map(|r| r[0].clone()).collect::<Vec<_>>(),
        "probabilities": predicted.iter().map(|r| r[1..].iter().map(|v| v.parse::<f64>().unwrap()).collect::<Vec<_>>()).collect::<Vec<_>>(),
    });
    let expected_path = dir.join("expected.json");
    std::fs::write(&expected_path, expected.to_string()).unwrap();
    expected_path
}

#[test]
fn sigterm_turns_readiness_off_then_drains_and_exits() {
    let dir = tempfile::tempdir().unwrap();
    let model = iris_model(dir.path());
    let mut server = Server::start(model.to_str().unwrap(), &["--drain-seconds", "1.5"]);
    server.terminate();
    // Readiness answers 503 at once, while requests are still served during the drain.
    let deadline = std::time::Instant::now() + Duration::from_secs(1);
    while server.get("/v2/health/ready").0 != 503 {
        assert!(
            std::time::Instant::now() < deadline,
            "readiness still 200 after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(server.get("/v2/health/live").0, 200);
    // Load from 4 clients for the next second, inside the 1.5 s drain: every request answered.
    let until = std::time::Instant::now() + Duration::from_secs(1);
    let answered: usize = std::thread::scope(|scope| {
        let clients: Vec<_> = (0..4)
            .map(|_| {
                scope.spawn(|| {
                    let mut n = 0;
                    while std::time::Instant::now() < until {
                        assert_infers_iris(|p, b| server.post(p, b), "iris");
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        clients.into_iter().map(|c| c.join().unwrap()).sum()
    });
    assert!(
        answered > 20,
        "only {answered} requests answered during the drain"
    );
    assert!(
        server.wait_exit(Duration::from_secs(10)),
        "server did not exit cleanly"
    );
}

#[test]
fn sigterm_under_load_loses_no_accepted_request() {
    let _exclusive = exclusive();
    let dir = tempfile::tempdir().unwrap();
    let model = iris_model(dir.path());
    let mut server = Server::start(model.to_str().unwrap(), &["--drain-seconds", "1"]);
    let addr = server.base.trim_start_matches("http://").to_string();
    let (features, _) = test_rows(1);
    let body = serde_json::to_vec(&json!({"inputs": [
        {"name": "X", "shape": [1, 4], "datatype": "FP64", "data": features[0]}
    ]}))
    .unwrap();
    let terminated = std::sync::OnceLock::<std::time::Instant>::new();
    // 64 keep-alive clients (as many as the benchmark's) send requests back to back until the
    // server refuses a connection.
    let outcomes: Vec<(Outcome, std::time::Instant)> = std::thread::scope(|scope| {
        let clients: Vec<_> = (0..64)
            .map(|_| {
                scope.spawn(|| {
                    let mut client = KeepAliveClient::new(&addr);
                    let mut seen = Vec::new();
                    let deadline = std::time::Instant::now() + Duration::from_secs(30);
                    while std::time::Instant::now() < deadline {
                        let outcome = client.post("/v2/models/iris/infer", &body);
                        let refused = outcome == Outcome::Refused;
                        seen.push((outcome, std::time::Instant::now()));
                        if refused {
                            break;
                        }
                    }
                    seen
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(500));
        terminated.set(std::time::Instant::now()).unwrap();
        server.terminate();
        clients
            .into_iter()
            .flat_map(|c| c.join().unwrap())
            .collect()
    });
    let terminated = *terminated.get().unwrap();
    let lost: Vec<_> = outcomes
        .iter()
        .filter(|(o, _)| !matches!(o, Outcome::Answered(200) | Outcome::Refused))
        .collect();
    assert!(lost.is_empty(), "requests lost or failed: {lost:?}");
    let refused = outcomes
        .iter()
        .filter(|(o, _)| *o == Outcome::Refused)
        .count();
    assert_eq!(
        refused, 64,
        "each client should end on a refused connection"
    );
    let during_drain = outcomes
        .iter()
        .filter(|(o, at)| *o == Outcome::Answered(200) && *at > terminated)
        .count();
    assert!(
        during_drain > 50,
        "only {during_drain} requests answered after SIGTERM"
    );
    assert!(
        server.wait_exit(Duration::from_secs(10)),
        "server did not exit cleanly"
    );
}

#[test]
fn liveness_answers_while_the_models_load_and_readiness_once_they_have() {
    let dir = tempfile::tempdir().unwrap();
    let model = iris_model(dir.path());
    // A named pipe holds the load open until the test writes the model into it, as slow
    // storage would.
    let pipe = dir.path().join("iris-slow.onnx");
    let made = std::process::Command::new("mkfifo")
        .arg(&pipe)
        .status()
        .unwrap();
    assert!(made.success());
    let mut server = Server::spawn(pipe.to_str().unwrap(), &["--name", "iris"]);
    server.wait_for_200("/v2/health/live");
    assert_eq!(
        server.get("/v2/health/ready"),
        (503, json!({"ready": false}))
    );
    std::fs::write(&pipe, std::fs::read(&model).unwrap()).unwrap();
    server.wait_for_200("/v2/health/ready");
    assert_infers_iris(|p, b| server.post(p, b), "iris");
}

#[test]
fn serves_a_model_repository_with_versions_and_several_files() {
    let dir = tempfile::tempdir().unwrap();
    let model = iris_model(dir.path());
    let repo = dir.path().join("repo");
    for (name, version) in [("iris", "1"), ("iris", "3"), ("flowers", "2")] {
        std::fs::create_dir_all(repo.join(name).join(version)).unwrap();
        std::fs::copy(&model, repo.join(name).join(version).join("model.onnx")).unwrap();
    }
    std::fs::create_dir_all(repo.join("iris/notes")).unwrap();
    let other = dir.path().join("other.onnx");
    std::fs::copy(&model, &other).unwrap();
    let server = Server::start(repo.to_str().unwrap(), &[other.to_str().unwrap()]);

    let (status, meta) = server.get("/v2/models/iris");
    assert_eq!(status, 200);
    assert_eq!(meta["versions"], json!(["1", "3"]));
    for name in ["iris", "flowers", "other"] {
        assert_infers_iris(|p, b| server.post(p, b), name);
    }
    // The newest version answers unversioned requests; old ones stay reachable.
    let (x, _) = test_rows(1);
    let body =
        json!({ "inputs": [{ "name": "X", "shape": [1, 4], "datatype": "FP32", "data": x }] });
    assert_eq!(
        server.post("/v2/models/iris/infer", &body).1["model_version"],
        "3"
    );
    assert_eq!(
        server.post("/v2/models/iris/versions/1/infer", &body).1["model_version"],
        "1"
    );
    assert_eq!(server.get("/v2/models/iris/versions/2/ready").0, 404);
}

#[test]
fn oversized_requests_get_413() {
    let dir = tempfile::tempdir().unwrap();
    let model = iris_model(dir.path());
    let server = Server::start(
        model.to_str().unwrap(),
        &["--max-body-bytes", "2000", "--max-elements", "40"],
    );
    let big = vec![vec![1.0; 4]; 100];
    let body =
        json!({ "inputs": [{ "name": "X", "shape": [100, 4], "datatype": "FP32", "data": big }] });
    let (status, response) = server.post("/v2/models/iris/infer", &body);
    assert_eq!(status, 413, "{response}");
    assert!(
        response["error"]
            .as_str()
            .unwrap()
            .contains("larger than 2000 bytes")
    );
    let body = json!({ "inputs": [{ "name": "X", "shape": [11, 4], "datatype": "FP32", "data": vec![vec![1; 4]; 11] }] });
    let (status, response) = server.post("/v2/models/iris/infer", &body);
    assert_eq!(status, 413, "{response}");
    assert!(
        response["error"]
            .as_str()
            .unwrap()
            .contains("more than 40 tensor elements")
    );
    assert_infers_iris(|p, b| server.post(p, b), "iris");
}

#[test]
fn metrics_count_requests_by_model_and_status() {
    let dir = tempfile::tempdir().unwrap();
    let model = iris_model(dir.path());
    let server = Server::start(model.to_str().unwrap(), &["--log-level", "debug"]);
    assert_infers_iris(|p, b| server.post(p, b), "iris");
    assert_infers_iris(|p, b| server.post(p, b), "iris");
    assert_eq!(
        server
            .post("/v2/models/iris/infer", &json!({ "inputs": [] }))
            .0,
        400
    );
    assert_eq!(
        server
            .post("/v2/models/unknown/infer", &json!({ "inputs": [] }))
            .0,
        404
    );

    let (status, text) = skiff_testing::http_text(&format!("{}/metrics", server.base));
    assert_eq!(status, 200);
    for line in [
        "skiff_inference_requests_total{model=\"iris\",version=\"1\",outcome=\"success\",status=\"200\"} 2",
        "skiff_inference_requests_total{model=\"iris\",version=\"1\",outcome=\"failure\",status=\"400\"} 1",
        "skiff_inference_requests_total{model=\"(unknown)\",version=\"\",outcome=\"failure\",status=\"404\"} 1",
        "skiff_inference_request_duration_seconds_count{model=\"iris\",version=\"1\"} 3",
        "skiff_inference_requests_in_flight 0",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "/metrics lacks {line:?}:\n{text}"
        );
    }
    let load = text
        .lines()
        .find(|l| l.starts_with("skiff_model_load_seconds{model=\"iris\",version=\"1\"}"));
    let seconds: f64 = load
        .expect("load time of iris")
        .rsplit(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(seconds > 0.0 && seconds < 30.0, "load time {seconds}");
    // At debug level every request is one log line, and errors say what went wrong.
    let log = server.log_text();
    assert!(
        log.lines()
            .filter(|l| l.contains("infer") && l.contains("status=200"))
            .count()
            >= 2,
        "{log}"
    );
    assert!(log.contains("missing input"), "{log}");
}

#[test]
fn inference_past_the_timeout_gets_504() {
    let dir = tempfile::tempdir().unwrap();
    let model = iris_model(dir.path());
    let server = Server::start(model.to_str().unwrap(), &["--timeout-ms", "1"]);
    let rows = 400_000;
    let body = json!({ "inputs": [{ "name": "X", "shape": [rows, 4], "datatype": "FP32", "data": vec![5.0; rows * 4] }] });
    let (status, response) = server.post("/v2/models/iris/infer", &body);
    assert_eq!(status, 504, "{response}");
    assert!(
        response["error"]
            .as_str()
            .unwrap()
            .contains("longer than 1ms"),
        "{response}"
    );
}

#[test]
fn sighup_reloads_the_repository_without_dropping_requests() {
    let dir = tempfile::tempdir().unwrap();
    let model = iris_model(dir.path());
    let repo = dir.path().join("repo");
    std::fs::create_dir_all(repo.join("iris/1")).unwrap();
    std::fs::copy(&model, repo.join("iris/1/model.onnx")).unwrap();
    let server = Server::start(repo.to_str().unwrap(), &[]);
    assert_eq!(server.get("/v2/models/iris").1["versions"], json!(["1"]));

    // A broken file: the reload fails, and the server keeps what it had.
    std::fs::create_dir_all(repo.join("iris/2")).unwrap();
    std::fs::write(repo.join("iris/2/model.onnx"), "not onnx").unwrap();
    server.signal("-HUP");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !server.log_text().contains("reload failed") {
        assert!(
            std::time::Instant::now() < deadline,
            "no reload failure logged: {}",
            server.log_text()
        );
        assert_infers_iris(|p, b| server.post(p, b), "iris");
    }
    assert_eq!(server.get("/v2/models/iris").1["versions"], json!(["1"]));

    // A good new version: served after the reload, requests answered all along.
    std::fs::copy(&model, repo.join("iris/2/model.onnx")).unwrap();
    server.signal("-HUP");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while server.get("/v2/models/iris").1["versions"] != json!(["1", "2"]) {
        assert!(
            std::time::Instant::now() < deadline,
            "version 2 never appeared: {}",
            server.log_text()
        );
        assert_infers_iris(|p, b| server.post(p, b), "iris");
    }
    assert_infers_iris(|p, b| server.post(p, b), "iris");
}

#[test]
fn dynamic_batching_answers_each_request_with_its_own_rows() {
    let dir = tempfile::tempdir().unwrap();
    let model = iris_model(dir.path());
    let server = Server::start(
        model.to_str().unwrap(),
        &[
            "--batch-delay-us",
            "50000",
            "--batch-max-rows",
            "1000",
            "--log-level",
            "debug",
        ],
    );
    let (x, species) = test_rows(16);
    // 8 clients at once, each with its own slice of rows (1 to 8 rows).
    std::thread::scope(|scope| {
        let mut start = 0;
        for n in 1..=4 {
            for _ in 0..2 {
                let (rows, truth) = (&x[start..start + n], &species[start..start + n]);
                start = (start + n) % 8;
                let server = &server;
                scope.spawn(move || {
                    let body = json!({ "inputs": [{ "name": "X", "shape": [n, 4], "datatype": "FP32", "data": rows }] });
                    let (status, response) = server.post("/v2/models/iris/infer", &body);
                    assert_eq!(status, 200, "{response}");
                    let outputs = response["outputs"].as_array().unwrap();
                    assert_eq!(outputs[0]["data"], json!(truth), "labels of another request's rows");
                    assert_eq!(outputs[1]["shape"], json!([n, 3]));
                });
            }
        }
    });
    let log = server.log_text();
    let batched = log
        .lines()
        .filter(|l| l.contains("running a batch"))
        .any(|l| !l.contains("requests=1 "));
    assert!(batched, "no batch held more than one request:\n{log}");
}
