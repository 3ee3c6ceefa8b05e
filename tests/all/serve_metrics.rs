//! `skiff serve`'s /metrics as Prometheus reads it: requests, rows, model runs and their
//! durations per model and version, with dynamic batching on, under skiff's names and Triton's.

use crate::serve::{Server, test_rows};
use crate::*;
use serde_json::{Value, json};

/// Every sample of the server's /metrics, parsed by prometheus_client (the Python client's
/// own parser for the Content-Type the server answered), and that Content-Type.
fn scrape(server: &Server) -> (String, Vec<Value>) {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/metrics_scrape.py");
    let out = python()
        .arg(script)
        .arg(format!("{}/metrics", server.base))
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "/metrics does not parse: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let parsed: Value = serde_json::from_slice(&out.stdout).unwrap();
    (
        parsed["content_type"].as_str().unwrap().to_string(),
        parsed["samples"].as_array().unwrap().clone(),
    )
}

/// The value of the sample `name` with exactly `labels`, or a failure listing what there is.
fn sample(samples: &[Value], name: &str, labels: Value) -> f64 {
    samples
        .iter()
        .find(|s| s["name"] == name && s["labels"] == labels)
        .unwrap_or_else(|| {
            let names: Vec<String> = samples
                .iter()
                .filter(|s| s["name"] == name)
                .map(|s| s["labels"].to_string())
                .collect();
            panic!("no sample {name} {labels}; {name} has {names:?}")
        })["value"]
        .as_f64()
        .unwrap()
}

/// Starts iris with dynamic batching (50 ms to gather up to 1000 rows), sends 8 requests at
/// once (20 rows in all) and one bad request, and returns the server.
fn batched_server(extra: &[&str]) -> (tempfile::TempDir, Server) {
    let dir = tempfile::tempdir().unwrap();
    let model = iris_model(dir.path());
    let mut args = vec!["--batch-delay-us", "50000", "--batch-max-rows", "1000"];
    args.extend(extra);
    let server = Server::start(model.to_str().unwrap(), &args);
    let (x, _) = test_rows(8);
    std::thread::scope(|scope| {
        for n in [1, 2, 3, 4, 1, 2, 3, 4] {
            let (rows, server) = (&x[..n], &server);
            scope.spawn(move || {
                let body = json!({ "inputs": [{ "name": "X", "shape": [n, 4], "datatype": "FP32", "data": rows }] });
                let (status, response) = server.post("/v2/models/iris/infer", &body);
                assert_eq!(status, 200, "{response}");
            });
        }
    });
    let (status, _) = server.post("/v2/models/iris/infer", &json!({ "inputs": [] }));
    assert_eq!(status, 400);
    (dir, server)
}

#[test]
fn metrics_count_requests_rows_and_batched_runs_per_model_version() {
    let (_dir, server) = batched_server(&[]);
    let (content_type, samples) = scrape(&server);
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    let iris = json!({ "model": "iris", "version": "1" });
    let by_outcome = |outcome: &str, status: &str| json!({ "model": "iris", "version": "1", "outcome": outcome, "status": status });
    assert_eq!(
        sample(
            &samples,
            "skiff_inference_requests_total",
            by_outcome("success", "200")
        ),
        8.0
    );
    assert_eq!(
        sample(
            &samples,
            "skiff_inference_requests_total",
            by_outcome("failure", "400")
        ),
        1.0
    );
    assert_eq!(
        sample(&samples, "skiff_inference_rows_total", iris.clone()),
        20.0
    );
    let executions = sample(&samples, "skiff_inference_executions_total", iris.clone());
    assert!(
        (1.0..8.0).contains(&executions),
        "8 requests batched into {executions} runs"
    );
    // Every request that ran waited in the queue once; the run histogram counts runs.
    assert_eq!(
        sample(
            &samples,
            "skiff_inference_queue_duration_seconds_count",
            iris.clone()
        ),
        8.0
    );
    assert_eq!(
        sample(
            &samples,
            "skiff_inference_compute_duration_seconds_count",
            iris.clone()
        ),
        executions
    );
    assert_eq!(
        sample(
            &samples,
            "skiff_inference_request_duration_seconds_count",
            iris.clone()
        ),
        9.0
    );
    // The batch's first request waited for the others (up to 50 ms); it shows in the sum.
    let queued = sample(
        &samples,
        "skiff_inference_queue_duration_seconds_sum",
        iris.clone(),
    );
    assert!(queued > 0.001, "queue time {queued} s");
    assert_eq!(
        sample(&samples, "skiff_inference_requests_in_flight", json!({})),
        0.0
    );
}

#[test]
fn metrics_names_triton_exposes_tritons_counters() {
    let (_dir, server) = batched_server(&["--metrics-names", "triton"]);
    let (content_type, samples) = scrape(&server);
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let iris = json!({ "model": "iris", "version": "1" });
    // prometheus_client names a counter's sample `<family>_total` whatever the text said;
    // the family is the name the text carries.
    let value = |family: &str| {
        samples
            .iter()
            .find(|s| s["family"] == family && s["labels"] == iris)
            .unwrap_or_else(|| panic!("no {family} of iris 1"))["value"]
            .as_f64()
            .unwrap()
    };
    // The series' names as Prometheus stores them from this text: Triton's, no suffix.
    let (_, text) = skiff_testing::http_text(&format!("{}/metrics", server.base));
    for line in [
        "# TYPE nv_inference_request_success counter",
        "nv_inference_request_success{model=\"iris\",version=\"1\"} 8",
        "nv_inference_count{model=\"iris\",version=\"1\"} 20",
    ] {
        assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
    }
    assert_eq!(value("nv_inference_request_success"), 8.0);
    assert_eq!(value("nv_inference_request_failure"), 1.0);
    assert_eq!(value("nv_inference_count"), 20.0);
    let executions = value("nv_inference_exec_count");
    assert!((1.0..8.0).contains(&executions), "{executions} runs");
    for name in [
        "nv_inference_request_duration_us",
        "nv_inference_queue_duration_us",
        "nv_inference_compute_infer_duration_us",
    ] {
        assert!(value(name) > 0.0, "{name} is {}", value(name));
    }
    // Microseconds: the queue waited up to 50 ms per batch, far from a second.
    assert!(value("nv_inference_queue_duration_us") > 1000.0);
    for s in samples
        .iter()
        .filter(|s| s["family"].as_str().unwrap().starts_with("nv_"))
    {
        assert_eq!(s["type"], "counter", "{s}");
    }
    // skiff's own counters are not doubled under the second names; its histograms remain.
    assert!(
        !samples
            .iter()
            .any(|s| s["name"] == "skiff_inference_requests_total")
    );
    assert_eq!(
        sample(
            &samples,
            "skiff_inference_queue_duration_seconds_count",
            iris.clone()
        ),
        8.0
    );
}

#[test]
fn metrics_names_refuses_an_unknown_scheme() {
    let out = skiff()
        .args(["serve", "x.onnx", "--metrics-names", "nvidia"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--metrics-names") && stderr.contains("use skiff or triton"),
        "{stderr}"
    );
}
