//! `skiff serve --grpc-addr`: the Open Inference Protocol over gRPC beside REST, against a real
//! server process and the real Triton clients.

use crate::serve::Server;
use crate::*;
use serde_json::{Value, json};
use skiff_testing::free_port;
use std::time::Duration;

/// Starts `skiff serve MODEL --grpc-addr ...` and returns it with its gRPC address.
fn start(model: &str, extra: &[&str]) -> (Server, String) {
    let grpc = format!("127.0.0.1:{}", free_port());
    let mut args = vec!["--grpc-addr", &grpc];
    args.extend_from_slice(extra);
    (Server::start(model, &args), grpc)
}

/// Runs a Python script from tests/ with `args`, `stdin` on its standard input; fails with its
/// output unless it exits 0 and prints `done`.
fn run_script(script: &str, args: &[&str], stdin: &[u8], done: &str) -> String {
    use std::io::Write;
    let mut child = python()
        .arg(example("../tests").join(script))
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python runs");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success() && report.contains(done),
        "{script} failed:\n{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    report
}

/// Runs Python code with the test venv; returns its stdout, failing with stderr if it fails.
fn python_code(code: &str) -> String {
    let out = python().args(["-c", code]).output().expect("python runs");
    assert!(
        out.status.success(),
        "python failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn tritonclient_grpc_passes_the_conformance_checks() {
    let dir = tempfile::tempdir().unwrap();
    let model = iris_model(dir.path());
    let (server, grpc) = start(
        model.to_str().unwrap(),
        &["--max-elements", "4000", "--max-body-bytes", "100000"],
    );
    let expected = crate::serve::iris_expectations(&model, dir.path());
    run_script(
        "tritonclient_grpc_conformance.py",
        &[&grpc, "iris", expected.to_str().unwrap(), "4000", "100000"],
        b"",
        "all checks passed",
    );
    // gRPC requests are counted beside REST's, under the HTTP status of the same outcome.
    let (_, metrics) = skiff_testing::http_text(&format!("{}/metrics", server.base));
    for line in [
        "skiff_inference_requests_total{model=\"iris\",version=\"1\",outcome=\"success\",status=\"200\"}",
        "skiff_inference_requests_total{model=\"iris\",version=\"1\",outcome=\"failure\",status=\"400\"}",
        "skiff_inference_requests_total{model=\"(unknown)\",version=\"\",outcome=\"failure\",status=\"404\"}",
        "skiff_inference_requests_total{model=\"iris\",version=\"1\",outcome=\"failure\",status=\"413\"}",
    ] {
        assert!(metrics.contains(line), "{line} missing from\n{metrics}");
    }
}

#[test]
fn rest_and_grpc_answer_alike_for_every_conformance_case() {
    let _exclusive = exclusive();
    let root = example("..");
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    let mut jobs = Vec::new();
    let cases = crate::conformance::catalog();
    for (i, case) in cases.iter().enumerate() {
        let data = root.join(&case.dataset);
        let (_, model, inputs, _) =
            crate::conformance::fit_case(case, &data.join("train.csv"), &data.join("test.csv"));
        let version = repo.join(format!("case{i}/1"));
        std::fs::create_dir_all(&version).unwrap();
        std::fs::write(version.join("model.onnx"), model).unwrap();
        // JSON has no NaN: serde writes a gap as null, which the script reads back as NaN.
        let inputs: Vec<Value> = inputs
            .iter()
            .map(|(name, t)| {
                json!({
                    "name": name,
                    "shape": t.shape,
                    "datatype": t.data.datatype().to_string(),
                    "data": serde_json::to_value(&t.data).unwrap(),
                })
            })
            .collect();
        jobs.push(json!({ "id": case.id(), "model": format!("case{i}"), "inputs": inputs }));
    }
    let grpc = format!("127.0.0.1:{}", free_port());
    let mut server = Server::spawn(repo.to_str().unwrap(), &["--grpc-addr", &grpc]);
    server.wait_for_200_within("/v2/health/ready", Duration::from_secs(300));
    let report = run_script(
        "grpc_rest_parity.py",
        &[server.base.trim_start_matches("http://"), &grpc],
        &serde_json::to_vec(&jobs).unwrap(),
        "cases answered alike",
    );
    eprintln!("{report}");
    assert!(
        report.contains(&format!("all {} cases answered alike", cases.len())),
        "{report}"
    );
    // Text inputs (BYTES) went both ways: the penguins cases take the table's columns.
    assert!(
        cases.iter().any(|c| c.dataset.ends_with("penguins")),
        "the catalog has a case with text inputs"
    );
}

#[test]
fn grpc_readiness_turns_off_while_draining_then_both_listeners_close() {
    let dir = tempfile::tempdir().unwrap();
    let model = iris_model(dir.path());
    let (mut server, grpc) = start(model.to_str().unwrap(), &["--drain-seconds", "3"]);
    let client = format!(
        "import time, numpy as np, tritonclient.grpc as g\n\
         c = g.InferenceServerClient(url={grpc:?})\n"
    );
    assert_eq!(
        python_code(&format!("{client}print(c.is_server_ready())")).trim(),
        "True"
    );
    server.terminate();
    // Readiness turns false at once, and requests are still answered while draining.
    let during = python_code(&format!(
        "{client}\
         deadline = time.time() + 2\n\
         while c.is_server_ready() and time.time() < deadline: time.sleep(0.05)\n\
         x = g.InferInput('X', [1, 4], 'FP32'); x.set_data_from_numpy(np.ones((1, 4), np.float32))\n\
         print(c.is_server_ready(), c.is_server_live(), c.infer('iris', [x]).as_numpy('label').shape)"
    ));
    assert_eq!(during.trim(), "False True (1,)", "{}", server.log_text());
    assert!(
        server.wait_exit(Duration::from_secs(15)),
        "{}",
        server.log_text()
    );
    // Both listeners are gone once the server has exited.
    for address in [grpc.as_str(), server.base.trim_start_matches("http://")] {
        assert!(
            std::net::TcpStream::connect(address).is_err(),
            "{address} still accepts connections"
        );
    }
}

#[test]
fn the_repository_extension_over_grpc_lists_loads_and_unloads() {
    let dir = tempfile::tempdir().unwrap();
    let model = iris_model(dir.path());
    let repo = dir.path().join("repo");
    for name in ["iris", "flowers"] {
        std::fs::create_dir_all(repo.join(name).join("1")).unwrap();
        std::fs::copy(&model, repo.join(name).join("1/model.onnx")).unwrap();
    }
    let (server, grpc) = start(repo.to_str().unwrap(), &["--model-control"]);
    // Triton's own client calls for the extension; every answer printed as JSON.
    let report = python_code(&format!(
        r#"
import json, tritonclient.grpc as g
from tritonclient.utils import InferenceServerException
c = g.InferenceServerClient("{grpc}")
def index(**kw):
    return sorted((m.get("name"), m.get("state", ""), m.get("reason", "")) for m in c.get_model_repository_index(as_json=True, **kw).get("models", []))
out = {{"before": index()}}
c.unload_model("flowers")
out["unloaded"] = index()
out["flowers_ready"] = c.is_model_ready("flowers")
c.load_model("flowers")
out["reloaded"] = index()
out["flowers_ready_again"] = c.is_model_ready("flowers")
try:
    c.load_model("roses")
except InferenceServerException as e:
    out["roses"] = [e.status(), e.message()]
print(json.dumps(out))
"#
    ));
    let out: Value = serde_json::from_str(report.trim()).unwrap();
    let ready = json!([["flowers", "READY", ""], ["iris", "READY", ""]]);
    assert_eq!(out["before"], ready, "{out}");
    assert_eq!(
        out["unloaded"],
        json!([
            ["flowers", "UNAVAILABLE", "unloaded"],
            ["iris", "READY", ""]
        ]),
        "{out}"
    );
    assert_eq!(out["flowers_ready"], false, "{out}");
    assert_eq!(out["reloaded"], ready, "{out}");
    assert_eq!(out["flowers_ready_again"], true, "{out}");
    assert_eq!(out["roses"][0], "StatusCode.NOT_FOUND", "{out}");
    // REST sees the same repository.
    assert_eq!(server.post("/v2/repository/index", &json!({})).0, 200);

    // Without --model-control, gRPC refuses as REST does: PERMISSION_DENIED, saying how.
    let (_other, grpc) = start(repo.to_str().unwrap(), &[]);
    let refused = python_code(&format!(
        r#"
import tritonclient.grpc as g
from tritonclient.utils import InferenceServerException
try:
    g.InferenceServerClient("{grpc}").unload_model("iris")
except InferenceServerException as e:
    print(e.status(), e.message())
"#
    ));
    assert!(
        refused.starts_with("StatusCode.PERMISSION_DENIED"),
        "{refused}"
    );
    assert!(refused.contains("--model-control"), "{refused}");
}

#[test]
fn kserves_grpc_client_infers_with_typed_and_raw_contents() {
    let dir = tempfile::tempdir().unwrap();
    let model = iris_model(dir.path());
    let (server, grpc) = start(model.to_str().unwrap(), &[]);
    let python = std::env::var_os("SKIFF_TEST_KSERVE_PYTHON").unwrap_or_else(|| {
        panic!("SKIFF_TEST_KSERVE_PYTHON is not set: run the tests with scripts/test.sh, which makes KServe's venv")
    });
    let out = Command::new(python)
        .arg(example("../tests/kserve_grpc_infer.py"))
        .args([&grpc, "iris"])
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "KServe's client failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (&got["live"], &got["ready"], &got["model_ready"]),
        (&json!(true), &json!(true), &json!(true))
    );
    // The same answer as REST gives, through either kind of contents.
    let x = [
        [5.1, 3.5, 1.4, 0.2],
        [6.7, 3.1, 4.7, 1.5],
        [7.7, 2.6, 6.9, 2.3],
    ];
    let body = json!({"inputs": [{"name": "X", "shape": [3, 4], "datatype": "FP32", "data": x}]});
    let (status, rest) = server.post("/v2/models/iris/infer", &body);
    assert_eq!(status, 200, "{rest}");
    let output = |name: &str| {
        rest["outputs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["name"] == name)
            .unwrap()["data"]
            .clone()
    };
    for (kind, id) in [("typed", "k0"), ("raw", "k1")] {
        let answer = &got[kind];
        assert_eq!(answer["id"], id, "{got}");
        assert_eq!(answer["model_name"], "iris", "{got}");
        assert_eq!(answer["label"], output("label"), "{kind}: {got}");
        let flat: Vec<f64> = answer["probabilities"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|row| row.as_array().unwrap().iter().map(|v| v.as_f64().unwrap()))
            .collect();
        let expected: Vec<f64> = output("probabilities")
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        // FP32 both ways: the same float32 values, printed at different precisions.
        let as_f32 = |v: &[f64]| v.iter().map(|&v| v as f32).collect::<Vec<_>>();
        assert_eq!(as_f32(&flat), as_f32(&expected), "{kind}");
    }
}
