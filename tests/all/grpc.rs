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
