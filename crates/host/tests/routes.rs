//! The server's routes in process: each request through the router as axum would hand it on,
//! with a real model (scikit-learn's logistic regression on iris, converted by skl2onnx).

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::{Value, json};
use skiff_host::{Options, Repository};
use tower::ServiceExt;

fn model() -> skiff_runtime::Model {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/skl2onnx/logistic_regression.onnx");
    skiff_runtime::Model::from_path(&path).unwrap()
}

fn router(options: Options) -> axum::Router {
    let mut repo = Repository::single("iris", model());
    repo.insert("iris", 3, model()).unwrap();
    skiff_host::router(repo, options)
}

/// Sends one request and returns the status, the headers and the body as JSON (or as a
/// string when it is not JSON).
async fn call(
    router: &axum::Router,
    method: &str,
    path: &str,
    body: Option<Body>,
    content_type: Option<&str>,
) -> (StatusCode, axum::http::HeaderMap, Value) {
    let mut request = Request::builder().method(method).uri(path);
    if let Some(content_type) = content_type {
        request = request.header(header::CONTENT_TYPE, content_type);
    }
    let request = request.body(body.unwrap_or_else(Body::empty)).unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    let value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (parts.status, parts.headers, value)
}

async fn get(router: &axum::Router, path: &str) -> (StatusCode, Value) {
    let (status, _, body) = call(router, "GET", path, None, None).await;
    (status, body)
}

async fn post(router: &axum::Router, path: &str, body: &Value) -> (StatusCode, Value) {
    let body = Body::from(serde_json::to_vec(body).unwrap());
    let (status, _, body) = call(router, "POST", path, Some(body), Some("application/json")).await;
    (status, body)
}

fn rows(n: usize) -> Value {
    let x: Vec<[f32; 4]> = [
        [5.1, 3.5, 1.4, 0.2],
        [6.7, 3.1, 4.7, 1.5],
        [7.7, 2.6, 6.9, 2.3],
    ]
    .into_iter()
    .cycle()
    .take(n)
    .collect();
    json!({"id": "r", "inputs": [{"name": "X", "shape": [n, 4], "datatype": "FP32", "data": x}]})
}

#[tokio::test]
async fn health_metadata_and_readiness() {
    let router = router(Options::default());
    assert_eq!(
        get(&router, "/v2/health/live").await,
        (StatusCode::OK, json!({"live": true}))
    );
    assert_eq!(
        get(&router, "/v2/health/ready").await,
        (StatusCode::OK, json!({"ready": true}))
    );
    let (status, meta) = get(&router, "/v2").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(meta["name"], "skiff");
    let extensions = meta["extensions"].as_array().unwrap();
    assert!(extensions.contains(&json!("binary_tensor_data")), "{meta}");
    assert!(extensions.contains(&json!("model_repository")), "{meta}");

    let (status, meta) = get(&router, "/v2/models/iris").await;
    assert_eq!(status, StatusCode::OK, "{meta}");
    assert_eq!(meta["versions"], json!(["1", "3"]));
    assert_eq!(meta["inputs"][0]["name"], "X");
    assert_eq!(meta["inputs"][0]["datatype"], "FP32");
    assert_eq!(meta["inputs"][0]["shape"], json!([-1, 4]));
    assert_eq!(
        get(&router, "/v2/models/iris/versions/3/ready").await,
        (StatusCode::OK, json!({"name": "iris", "ready": true}))
    );
    let (status, error) = get(&router, "/v2/models/iris/versions/2/ready").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        error["error"].as_str().unwrap().contains("versions: 1, 3"),
        "{error}"
    );
    let (status, error) = get(&router, "/v2/models/roses").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        error["error"].as_str().unwrap().contains("served: iris"),
        "{error}"
    );
}

#[tokio::test]
async fn inference_in_json_and_binary_tensors() {
    let router = router(Options::default());
    let (status, answer) = post(&router, "/v2/models/iris/infer", &rows(3)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["model_name"], "iris");
    assert_eq!(answer["model_version"], "3");
    assert_eq!(answer["id"], "r");
    let label = answer["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == "output_label")
        .unwrap();
    assert_eq!(label["shape"], json!([3]));
    assert_eq!(label["data"], json!(["setosa", "versicolor", "virginica"]));

    // Triton's binary extension: the JSON header's length in a header, raw FP32 bytes after it,
    // the label asked for in binary too.
    let x: Vec<f32> = vec![5.1, 3.5, 1.4, 0.2, 7.7, 2.6, 6.9, 2.3];
    let header = serde_json::to_vec(&json!({
        "inputs": [{"name": "X", "shape": [2, 4], "datatype": "FP32", "parameters": {"binary_data_size": 32}}],
        "outputs": [{"name": "output_label", "parameters": {"binary_data": true}}],
    }))
    .unwrap();
    let mut body = header.clone();
    body.extend(x.iter().flat_map(|v| v.to_le_bytes()));
    let request = Request::post("/v2/models/iris/versions/1/infer")
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header("inference-header-content-length", header.len())
        .body(Body::from(body))
        .unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let length: usize = response.headers()["inference-header-content-length"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    let head: Value = serde_json::from_slice(&bytes[..length]).unwrap();
    let output = &head["outputs"][0];
    assert_eq!(output["name"], "output_label", "{head}");
    assert_eq!(output["datatype"], "BYTES");
    // BYTES elements: each a 4-byte little-endian length, then the bytes.
    let (mut tail, mut labels) = (&bytes[length..], Vec::new());
    while let [a, b, c, d, rest @ ..] = tail {
        let n = u32::from_le_bytes([*a, *b, *c, *d]) as usize;
        labels.push(String::from_utf8(rest[..n].to_vec()).unwrap());
        tail = &rest[n..];
    }
    assert_eq!(labels, ["setosa", "virginica"]);
}

#[tokio::test]
async fn mistakes_get_4xx_json_errors() {
    let router = router(Options {
        max_elements: 40,
        ..Options::default()
    });
    // Method, path, body, content type, the status expected and what the error must say.
    type Case = (
        &'static str,
        &'static str,
        Option<Body>,
        Option<&'static str>,
        StatusCode,
        &'static str,
    );
    let cases: Vec<Case> = vec![
        (
            "POST",
            "/v2/models/iris/infer",
            Some(Body::from("{not json")),
            Some("application/json"),
            StatusCode::BAD_REQUEST,
            "",
        ),
        (
            "POST",
            "/v2/models/iris/infer",
            Some(Body::from(rows(11).to_string())),
            Some("application/json"),
            StatusCode::PAYLOAD_TOO_LARGE,
            "40",
        ),
        (
            "POST",
            "/v2/models/tulips/infer",
            Some(Body::from(rows(1).to_string())),
            Some("application/json"),
            StatusCode::NOT_FOUND,
            "tulips",
        ),
        (
            "GET",
            "/v2/models/iris/infer",
            None,
            None,
            StatusCode::METHOD_NOT_ALLOWED,
            "GET is not allowed",
        ),
        (
            "GET",
            "/v3",
            None,
            None,
            StatusCode::NOT_FOUND,
            "no such endpoint",
        ),
        // A server given fixed models cannot load others, whatever it is told.
        (
            "POST",
            "/v2/repository/models/iris/unload",
            None,
            None,
            StatusCode::FORBIDDEN,
            "--model-control",
        ),
    ];
    for (method, path, body, content_type, expected, says) in cases {
        let (status, _, error) = call(&router, method, path, body, content_type).await;
        assert_eq!(status, expected, "{method} {path}: {error}");
        let message = error["error"].as_str().unwrap_or_else(|| panic!("{error}"));
        assert!(message.contains(says), "{method} {path}: {message}");
    }
    let wrong_shape =
        json!({"inputs": [{"name": "X", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]}]});
    let (status, error) = post(&router, "/v2/models/iris/infer", &wrong_shape).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
}

#[tokio::test]
async fn the_repository_index_lists_the_models_served() {
    let router = router(Options::default());
    let (status, index) = post(&router, "/v2/repository/index", &json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        index,
        json!([
            {"name": "iris", "version": "1", "state": "READY", "reason": ""},
            {"name": "iris", "version": "3", "state": "READY", "reason": ""},
        ])
    );
}
