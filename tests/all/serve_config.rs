//! The server's configuration: the model repository extension, every flag as an environment
//! variable, KServe's conventional arguments, and JSON logs.

use crate::serve::{Server, assert_infers_iris, test_rows};
use crate::*;
use serde_json::{Value, json};
use skiff_testing::{free_port, http_json};
use std::sync::atomic::{AtomicBool, Ordering};

/// A Triton-style repository in `dir/repo` with the given models (version 1 each) of the
/// iris model.
fn repository(dir: &Path, models: &[(&str, &str)]) -> PathBuf {
    let model = iris_model(dir);
    let repo = dir.join("repo");
    for (name, version) in models {
        std::fs::create_dir_all(repo.join(name).join(version)).unwrap();
        std::fs::copy(&model, repo.join(name).join(version).join("model.onnx")).unwrap();
    }
    repo
}

fn index(server: &Server, body: &Value) -> Vec<(String, String, String)> {
    let (status, entries) = server.post("/v2/repository/index", body);
    assert_eq!(status, 200, "{entries}");
    let mut entries: Vec<_> = entries
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let text = |key: &str| e[key].as_str().unwrap_or_default().to_string();
            (text("name"), text("state"), text("reason"))
        })
        .collect();
    entries.sort();
    entries
}

fn entry(name: &str, state: &str, reason: &str) -> (String, String, String) {
    (name.into(), state.into(), reason.into())
}

#[test]
fn the_model_repository_extension_lists_loads_and_unloads_models() {
    let dir = tempfile::tempdir().unwrap();
    let repo = repository(dir.path(), &[("iris", "1"), ("flowers", "1")]);
    let server = Server::start(repo.to_str().unwrap(), &["--model-control"]);
    let (_, meta) = server.get("/v2");
    assert!(
        meta["extensions"]
            .as_array()
            .unwrap()
            .contains(&json!("model_repository")),
        "{meta}"
    );
    let ready = || vec![entry("flowers", "READY", ""), entry("iris", "READY", "")];
    assert_eq!(index(&server, &json!({})), ready());

    // Unloaded: gone for new requests, listed as unloaded, the other model undisturbed.
    assert_eq!(
        server.post("/v2/repository/models/flowers/unload", &json!({})),
        (200, json!({}))
    );
    let (status, error) = server.post("/v2/models/flowers/infer", &json!({"inputs": []}));
    assert_eq!(status, 404, "{error}");
    assert_infers_iris(|p, b| server.post(p, b), "iris");
    assert_eq!(
        index(&server, &json!({})),
        vec![
            entry("flowers", "UNAVAILABLE", "unloaded"),
            entry("iris", "READY", "")
        ]
    );
    assert_eq!(
        index(&server, &json!({"ready": true})),
        vec![entry("iris", "READY", "")]
    );

    // A model copied into the repository while serving is listed, then loaded by name.
    std::fs::create_dir_all(repo.join("tulips/2")).unwrap();
    std::fs::copy(
        repo.join("iris/1/model.onnx"),
        repo.join("tulips/2/model.onnx"),
    )
    .unwrap();
    assert!(index(&server, &json!({})).contains(&entry("tulips", "UNAVAILABLE", "not loaded")));
    for name in ["tulips", "flowers"] {
        let path = format!("/v2/repository/models/{name}/load");
        assert_eq!(server.post(&path, &json!({})), (200, json!({})));
        assert_infers_iris(|p, b| server.post(p, b), name);
    }
    let (x, _) = test_rows(1);
    let body = json!({"inputs": [{"name": "X", "shape": [1, 4], "datatype": "FP32", "data": x}]});
    assert_eq!(
        server.post("/v2/models/tulips/infer", &body).1["model_version"],
        "2"
    );
    assert!(index(&server, &json!({})).contains(&entry("tulips", "READY", "")));

    // Mistakes get 4xx errors that say what is wrong.
    let (status, error) = server.post("/v2/repository/models/roses/load", &json!({}));
    assert_eq!(status, 404, "{error}");
    assert!(
        error["error"]
            .as_str()
            .unwrap()
            .contains("flowers, iris, tulips"),
        "{error}"
    );
    let with_config = json!({"parameters": {"config": "{\"backend\": \"onnxruntime\"}"}});
    let (status, error) = server.post("/v2/repository/models/iris/load", &with_config);
    assert_eq!(status, 400, "{error}");
    let (status, error) = server.post("/v2/repository/index", &json!({"ready": "yes"}));
    assert_eq!(status, 400, "{error}");
    // A model whose file went bad fails to load and the version being served stays.
    std::fs::write(repo.join("iris/1/model.onnx"), b"not onnx").unwrap();
    let (status, error) = server.post("/v2/repository/models/iris/load", &json!({}));
    assert_eq!(status, 400, "{error}");
    assert!(
        error["error"]
            .as_str()
            .unwrap()
            .starts_with("cannot load model \"iris\""),
        "{error}"
    );
    assert_infers_iris(|p, b| server.post(p, b), "iris");
}

#[test]
fn loading_and_unloading_are_refused_unless_model_control_is_on() {
    let dir = tempfile::tempdir().unwrap();
    let repo = repository(dir.path(), &[("iris", "1")]);
    let server = Server::start(repo.to_str().unwrap(), &[]);
    assert_eq!(index(&server, &json!({})), vec![entry("iris", "READY", "")]);
    for action in ["load", "unload"] {
        let path = format!("/v2/repository/models/iris/{action}");
        let (status, error) = server.post(&path, &json!({}));
        assert_eq!(status, 403, "{error}");
        assert!(
            error["error"].as_str().unwrap().contains("--model-control"),
            "{error}"
        );
    }
    assert_infers_iris(|p, b| server.post(p, b), "iris");
}

/// Sends large requests from several threads at once until one is refused for the concurrency
/// limit (bounded), and returns that answer; every other answer must be a 200.
pub fn concurrency_limit_refusal(base: &str, name: &str) -> Value {
    let (x, _) = test_rows(1);
    let rows: Vec<Value> = std::iter::repeat_n(json!(x[0]), 20_000).collect();
    let body = json!({"inputs": [{"name": "X", "shape": [rows.len(), 4], "datatype": "FP32", "data": rows}]});
    let url = format!("{base}/v2/models/{name}/infer");
    let refused = AtomicBool::new(false);
    let answers = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..6 {
            s.spawn(|| {
                for _ in 0..30 {
                    if refused.load(Ordering::Relaxed) {
                        return;
                    }
                    let (status, answer) = http_json("POST", &url, Some(&body));
                    if status == 503 {
                        refused.store(true, Ordering::Relaxed);
                        answers.lock().unwrap().push((status, answer));
                        return;
                    }
                    assert_eq!(status, 200, "{answer}");
                }
            });
        }
    });
    let answers = answers.into_inner().unwrap();
    let (_, answer) = answers
        .first()
        .expect("no request was refused at a concurrency limit of 1");
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("concurrency limit"),
        "{answer}"
    );
    answer.clone()
}

/// A folder as KServe mounts a model at /mnt/models: the file alone.
pub fn kserve_mount(dir: &Path) -> PathBuf {
    let mount = dir.join("mnt-models");
    std::fs::create_dir_all(&mount).unwrap();
    std::fs::copy(iris_model(dir), mount.join("model.onnx")).unwrap();
    mount
}

#[test]
fn the_server_is_configured_by_its_environment_alone() {
    let dir = tempfile::tempdir().unwrap();
    let mount = kserve_mount(dir.path());
    let port = free_port();
    let mut command = skiff();
    command
        .arg("serve")
        .env("SKIFF_MODEL_DIR", &mount)
        .env("SKIFF_MODEL_NAME", "flower")
        .env("SKIFF_HTTP_PORT", port.to_string())
        .env("SKIFF_MAX_CONCURRENCY", "1")
        .env("SKIFF_LOG_FORMAT", "json")
        .env("SKIFF_LOG_LEVEL", "debug")
        .env_remove("RUST_LOG");
    let mut server = Server::launch(command, port, None);
    server.wait_for_200("/v2/health/ready");
    assert_infers_iris(|p, b| server.post(p, b), "flower");
    concurrency_limit_refusal(&server.base, "flower");
    // Every line is a JSON object a log collector reads: the request lines at debug level too.
    let log = server.log_text();
    let lines: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}\n{log}")))
        .collect();
    assert!(
        lines
            .iter()
            .any(|l| l["level"] == "DEBUG" && l["message"] == "infer"),
        "{log}"
    );
    assert!(
        lines.iter().any(|l| l["message"]
            .as_str()
            .unwrap_or_default()
            .contains("serving model \"flower\"")),
        "{log}"
    );
}

#[test]
fn kserves_conventional_arguments_serve_a_mounted_folder() {
    let dir = tempfile::tempdir().unwrap();
    let mount = kserve_mount(dir.path());
    let port = free_port();
    let mut command = skiff();
    command.args([
        "serve",
        &format!("--model_dir={}", mount.display()),
        "--model_name=flower",
        &format!("--http_port={port}"),
    ]);
    let mut server = Server::launch(command, port, None);
    server.wait_for_200("/v2/health/ready");
    assert_infers_iris(|p, b| server.post(p, b), "flower");

    // Two models in one folder: not a repository, not one model either.
    std::fs::copy(mount.join("model.onnx"), mount.join("other.onnx")).unwrap();
    let out = run(&[
        "serve",
        "--model-dir",
        mount.to_str().unwrap(),
        "--addr",
        "127.0.0.1:0",
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("holds 2 .onnx files"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
}

#[test]
fn under_kserves_asynchronous_loading_the_server_waits_for_its_model_folder() {
    let dir = tempfile::tempdir().unwrap();
    let model = iris_model(dir.path());
    let mount = dir.path().join("mnt-models");
    let port = free_port();
    let mut command = skiff();
    command
        .args(["serve", "--model-dir", mount.to_str().unwrap()])
        .args(["--addr", &format!("127.0.0.1:{port}")])
        .env("MODEL_INIT_MODE", "async");
    let mut server = Server::launch(command, port, None);
    server.wait_for_200("/v2/health/live");
    assert_eq!(
        server.get("/v2/health/ready"),
        (503, json!({"ready": false}))
    );
    // The model image's files appear.
    let staged = dir.path().join("staged");
    std::fs::create_dir_all(&staged).unwrap();
    std::fs::copy(&model, staged.join("model.onnx")).unwrap();
    std::fs::rename(&staged, &mount).unwrap();
    server.wait_for_200("/v2/health/ready");
    assert_infers_iris(|p, b| server.post(p, b), "model");

    // Without it, a missing folder is a one-line error at once.
    let out = run(&[
        "serve",
        "--model-dir",
        dir.path().join("nowhere").to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot read the model folder"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
}
