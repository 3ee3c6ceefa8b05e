//! Backends: tract everywhere, ONNX Runtime (CPU here; CUDA where a GPU is) when it is
//! installed; the choice visible in the log and the model metadata, and never a silent
//! fallback when a backend is asked for by name.
//!
//! `scripts/test.sh` points `ORT_DYLIB_PATH` at the CPU-only onnxruntime wheel of the test venv.

use crate::serve::Server;
use crate::*;
use serde_json::{Value, json};

/// Every output of one infer of the first iris test rows.
fn infer(server: &Server, name: &str) -> Vec<Value> {
    let (x, _) = serve::test_rows(10);
    let body =
        json!({ "inputs": [{ "name": "X", "shape": [10, 4], "datatype": "FP32", "data": x }] });
    let (status, response) = server.post(&format!("/v2/models/{name}/infer"), &body);
    assert_eq!(status, 200, "{response}");
    response["outputs"].as_array().unwrap().clone()
}

#[test]
fn the_backend_is_chosen_per_model_logged_and_reported_by_the_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let model = iris_model(dir.path());
    let repo = dir.path().join("repo");
    for name in ["on-tract", "on-ort"] {
        std::fs::create_dir_all(repo.join(name).join("1")).unwrap();
        std::fs::copy(&model, repo.join(name).join("1/model.onnx")).unwrap();
    }
    std::fs::write(
        repo.join("on-ort/config.json"),
        r#"{"backend": "ort", "instances": 2}"#,
    )
    .unwrap();
    // The server-wide choice is auto: no GPU here, so tract.
    let server = Server::start(repo.to_str().unwrap(), &[]);
    for (name, backend) in [("on-tract", "tract"), ("on-ort", "onnxruntime-cpu")] {
        let (status, meta) = server.get(&format!("/v2/models/{name}"));
        assert_eq!(status, 200);
        assert_eq!(meta["parameters"]["backend"], backend, "{meta}");
        assert!(
            server
                .log_text()
                .contains(&format!("\"{name}\" (versions [1], on {backend})")),
            "{}",
            server.log_text()
        );
        serve::assert_infers_iris(|p, b| server.post(p, b), name);
    }
    // Same labels, same probabilities to 1e-4.
    let (tract, ort) = (infer(&server, "on-tract"), infer(&server, "on-ort"));
    assert_eq!(tract[0], ort[0]);
    let probabilities = |o: &Value| -> Vec<f64> {
        o["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect()
    };
    for (t, o) in probabilities(&tract[1]).iter().zip(probabilities(&ort[1])) {
        assert!((t - o).abs() <= 1e-4, "tract {t}, ONNX Runtime {o}");
    }
}

#[test]
fn cuda_asked_for_without_a_gpu_is_an_error_not_a_fallback() {
    let dir = tempfile::tempdir().unwrap();
    let model = iris_model(dir.path());
    let model = model.to_str().unwrap();
    let data = example("iris/test.csv");
    let data = data.to_str().unwrap();
    // The CPU-only wheel: ONNX Runtime loads, but has no CUDA provider.
    fails_with(
        run(&["serve", model, "--backend", "cuda", "--addr", "127.0.0.1:0"]),
        &["no CUDA provider", "onnxruntime-gpu"],
    );
    fails_with(
        run(&["predict", model, "--data", data, "--backend", "cuda"]),
        &["no CUDA provider"],
    );
    // No ONNX Runtime at all: ort and cuda say where it is looked for; auto runs on tract.
    for backend in ["ort", "cuda"] {
        fails_with(
            skiff()
                .args(["predict", model, "--data", data, "--backend", backend])
                .env("ORT_DYLIB_PATH", dir.path().join("missing.so"))
                .output()
                .unwrap(),
            &["ORT_DYLIB_PATH", "missing.so", "libonnxruntime.so"],
        );
    }
    let auto = ok(skiff()
        .args(["predict", model, "--data", data])
        .env("ORT_DYLIB_PATH", dir.path().join("missing.so"))
        .output()
        .unwrap());
    assert_eq!(
        auto,
        predict(model.as_ref(), data.as_ref(), &["--backend", "ort"])
    );
}

#[test]
fn a_bad_model_config_names_the_file_and_the_fields() {
    let dir = tempfile::tempdir().unwrap();
    let model = iris_model(dir.path());
    let repo = dir.path().join("repo");
    std::fs::create_dir_all(repo.join("iris/1")).unwrap();
    std::fs::copy(&model, repo.join("iris/1/model.onnx")).unwrap();
    let config = repo.join("iris/config.json");
    for (text, needles) in [
        (r#"{"backend": "gpu"}"#, &["config.json", "gpu"][..]),
        (
            r#"{"threads": 4}"#,
            &["config.json", "threads", "intra_op_threads"],
        ),
        ("backend = ort", &["config.json", "not JSON"]),
    ] {
        std::fs::write(&config, text).unwrap();
        fails_with(
            run(&["serve", repo.to_str().unwrap(), "--addr", "127.0.0.1:0"]),
            needles,
        );
    }
}

#[test]
fn the_gpu_check_runs_its_cpu_steps_then_stops_where_cuda_is_missing() {
    let _exclusive = exclusive();
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("results.md");
    let ort = std::path::PathBuf::from(
        std::env::var_os("ORT_DYLIB_PATH").expect("scripts/test.sh sets ORT_DYLIB_PATH"),
    );
    let out = std::process::Command::new("bash")
        .arg(example("../scripts/gpu-check.sh"))
        .arg(env!("CARGO_BIN_EXE_skiff"))
        .arg(ort.parent().unwrap())
        .arg(&results)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("stopping: CUDA cannot run here: the ONNX Runtime at")
            && stderr.contains("has no CUDA provider"),
        "{stderr}"
    );
    // Every catalog case and every skl2onnx fixture agreed on tract and ONNX Runtime's CPU.
    let report = std::fs::read_to_string(&results).unwrap();
    assert!(report.contains("(CPU parity: ok)"), "{report}");
    let cases: Vec<Value> = serde_json::from_str(
        &std::fs::read_to_string(example("../tests/conformance.json")).unwrap(),
    )
    .unwrap();
    let fixtures = std::fs::read_dir(example("../tests/fixtures/skl2onnx"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension() == Some("onnx".as_ref()))
        .count();
    let agreeing = report
        .lines()
        .filter(|l| l.contains("| onnxruntime-cpu |") && l.contains("| yes |"))
        .count();
    assert_eq!(agreeing, cases.len() + fixtures, "{report}");
    assert!(!report.contains("| NO |"), "{report}");
}

#[test]
fn bench_compares_the_backends_and_times_each_batch_size() {
    let dir = tempfile::tempdir().unwrap();
    let model = iris_model(dir.path());
    let data = example("iris/test.csv");
    let out = ok(skiff()
        .args(["bench"])
        .arg(&model)
        .arg("--data")
        .arg(&data)
        .args(["--batch-sizes", "1,100", "--seconds", "0.05", "--json"])
        .output()
        .unwrap());
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let events =
        |event: &str| -> Vec<&Value> { lines.iter().filter(|l| l["event"] == event).collect() };
    let loaded: Vec<&Value> = events("load").iter().map(|l| &l["backend"]).collect();
    assert_eq!(loaded, [&json!("tract"), &json!("onnxruntime-cpu")]);
    let agreement = events("agreement");
    assert_eq!(agreement.len(), 1);
    assert_eq!(agreement[0]["agrees"], true, "{}", agreement[0]);
    assert_eq!(agreement[0]["rows"], 38, "every test row is compared");
    let timed: Vec<(String, u64)> = events("throughput")
        .iter()
        .map(|l| {
            assert!(l["rows_per_second"].as_f64().unwrap() > 0.0, "{l}");
            assert!(l["runs"].as_u64().unwrap() >= 3, "{l}");
            (
                l["backend"].as_str().unwrap().into(),
                l["batch"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        timed,
        [
            ("tract".into(), 1),
            ("onnxruntime-cpu".into(), 1),
            ("tract".into(), 100),
            ("onnxruntime-cpu".into(), 100)
        ]
    );
    let model = model.to_str().unwrap();
    fails_with(
        run(&["bench", model, "--batch-sizes", "1,0"]),
        &["--batch-sizes", "at least one row"],
    );
    fails_with(run(&["bench", model, "--seconds", "0"]), &["--seconds"]);
}
