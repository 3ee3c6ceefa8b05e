//! `skiff serve`'s OpenAPI documents: the server's, and one per model whose schemas hold the
//! model's inputs; schemathesis generates requests from each and checks every answer against
//! it on a live server.

use crate::serve::Server;
use crate::*;
use serde_json::{Value, json};

/// schemathesis' checks: no 5xx, and statuses, content types and bodies as documented.
const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance";

/// Runs schemathesis on the document at `document` (a path on `server`) and returns the
/// requests it made with their statuses (from its HAR report), failing with its report when a
/// check fails.
fn schemathesis(server: &Server, document: &str) -> Vec<(String, String, u16)> {
    let dir = tempfile::tempdir().unwrap();
    let har = dir.path().join("run.har");
    let out = crate::component::venv_tool("st")
        .arg("run")
        .arg(format!("{}{document}", server.base))
        .args(["--checks", CHECKS])
        .args(["--phases", "examples,coverage,fuzzing"])
        // Bounded: at most this many generated cases per operation, a fixed seed.
        .args(["--max-examples", "40", "--seed", "7"])
        // One worker: hypothesis describes its strategies with Python's ast, which is not safe
        // across threads on Python 3.11.
        .args(["--request-timeout", "10", "--workers", "1"])
        .args(["--report", "har", "--report-har-path"])
        .arg(&har)
        .current_dir(dir.path())
        .env("NO_COLOR", "1")
        .output()
        .expect("schemathesis runs");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "schemathesis found faults in {document}:\n{report}\n{}\nserver log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        server.log_text()
    );
    let har: Value = serde_json::from_str(&std::fs::read_to_string(&har).unwrap()).unwrap();
    har["log"]["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["request"]["method"].as_str().unwrap().to_string(),
                e["request"]["url"].as_str().unwrap().to_string(),
                e["response"]["status"].as_u64().unwrap() as u16,
            )
        })
        .collect()
}

/// How many of `requests` went to a path ending in `suffix` with `method` and got 200.
fn answered(requests: &[(String, String, u16)], method: &str, suffix: &str) -> usize {
    requests
        .iter()
        .filter(|(m, url, status)| m == method && url.ends_with(suffix) && *status == 200)
        .count()
}

#[test]
fn openapi_documents_hold_the_models_inputs_and_schemathesis_finds_no_fault() {
    let dir = tempfile::tempdir().unwrap();
    let model = iris_model(dir.path());
    let server = Server::start(model.to_str().unwrap(), &[]);

    let (status, document) = server.get("/v2/docs/openapi.json");
    assert_eq!(status, 200);
    assert!(document["openapi"].as_str().unwrap().starts_with("3."));
    for path in [
        "/v2/models/{name}/infer",
        "/v2/models/{name}/versions/{version}/infer",
        "/v2/repository/index",
        "/v2/repository/models/{name}/load",
        "/v2/repository/models/{name}/unload",
        "/invocations",
        "/ping",
        "/metrics",
    ] {
        assert!(
            document["paths"][path].is_object(),
            "{path} is not documented"
        );
    }

    let (status, iris) = server.get("/v2/models/iris/docs/openapi.json");
    assert_eq!(status, 200);
    assert_eq!(
        server.get("/v2/models/iris/versions/1/docs/openapi.json").1,
        iris
    );
    assert_eq!(server.get("/v2/models/nope/docs/openapi.json").0, 404);
    let input = &iris["components"]["schemas"]["inference_request"]["properties"]["inputs"]["items"]
        ["properties"];
    assert_eq!(input["name"]["enum"], json!(["X"]));
    assert_eq!(input["datatype"]["enum"], json!(["FP32"]));
    assert_eq!(input["shape"]["enum"], json!([[1, 4]]));
    assert_eq!(input["data"]["items"]["items"]["type"], "number");

    let requests = schemathesis(&server, "/v2/docs/openapi.json");
    assert!(requests.len() > 50, "{} requests", requests.len());
    let requests = schemathesis(&server, "/v2/models/iris/docs/openapi.json");
    // The model's document leads schemathesis to requests the model answers.
    for (method, suffix) in [
        ("POST", "/v2/models/iris/infer"),
        ("POST", "/v2/models/iris/versions/1/infer"),
        ("POST", "/invocations"),
    ] {
        assert!(
            answered(&requests, method, suffix) > 0,
            "no generated {method} {suffix} was answered 200"
        );
    }
}

#[test]
fn openapi_document_of_a_table_model_takes_its_named_text_and_number_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("penguins.onnx");
    ok(fit(
        &example("../tests/data/penguins/train.csv"),
        "species",
        &model,
    ));
    let server = Server::start(model.to_str().unwrap(), &[]);
    let (status, penguins) = server.get("/v2/models/penguins/docs/openapi.json");
    assert_eq!(status, 200);
    let inputs = &penguins["components"]["schemas"]["inference_request"]["properties"]["inputs"];
    let variants = inputs["items"]["oneOf"].as_array().unwrap();
    assert_eq!(inputs["minItems"], variants.len());
    let island = variants
        .iter()
        .find(|v| v["properties"]["name"]["enum"] == json!(["island"]))
        .expect("an input named island");
    assert_eq!(island["properties"]["datatype"]["enum"], json!(["BYTES"]));
    assert_eq!(
        island["properties"]["data"]["items"]["items"]["type"],
        "string"
    );
    let requests = schemathesis(&server, "/v2/models/penguins/docs/openapi.json");
    assert!(answered(&requests, "POST", "/invocations") > 0);
}

#[test]
fn inputs_with_different_rows_get_400_not_500() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("penguins.onnx");
    ok(fit(
        &example("../tests/data/penguins/train.csv"),
        "species",
        &model,
    ));
    let server = Server::start(model.to_str().unwrap(), &[]);
    let mut inputs = json!({
        "island": [["Biscoe"]], "sex": [["male"]], "bill_length_mm": [[45.0]],
        "bill_depth_mm": [[15.0]], "flipper_length_mm": [[210.0]], "body_mass_g": [[4500.0]],
    });
    inputs["year"] = json!([[2008.0], [2009.0]]);
    let (status, answer) = server.post("/invocations", &json!({ "inputs": inputs }));
    assert_eq!(status, 400, "{answer}");
    let message = answer["message"].as_str().unwrap();
    assert!(
        message.contains("\"year\" has 2 rows") && message.contains("same rows"),
        "{message}"
    );
}
