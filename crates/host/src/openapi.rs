//! The OpenAPI 3 document of the server's REST API (`GET /v2/docs/openapi.json`), and the same
//! document for one model (`GET /v2/models/{name}/docs/openapi.json`), whose inference schemas
//! hold that model's inputs so that generated clients and API testers send requests it takes.
//!
//! The document is skiff's own (`openapi.json`, embedded in the binary); its inference schemas
//! follow the Open Inference Protocol's REST specification (`open_inference_rest.yaml` in
//! github.com/kserve/open-inference-protocol, Apache-2.0), with the statuses skiff answers.

use serde_json::{Value, json};
use skiff_runtime::{DataType, IoSpec, Model};
use std::sync::LazyLock;

static DOCUMENT: LazyLock<Value> = LazyLock::new(|| {
    let mut document: Value = serde_json::from_str(include_str!("openapi.json"))
        .expect("the embedded OpenAPI document is JSON");
    document["info"]["version"] = json!(env!("CARGO_PKG_VERSION"));
    document
});

/// The server's OpenAPI document.
pub fn document() -> &'static Value {
    &DOCUMENT
}

/// The document for model `name` (of `versions`): its name and versions as the only values
/// of the model paths' parameters, and its inputs and outputs in the inference schemas.
///
/// A variable dimension (the rows) is 1 in the inference request's schema, as a schema cannot
/// tie `shape` to the length of `data`; the server takes any number of rows laid out the same
/// way, and `/invocations`, which reads shapes off nested lists, is given up to 16 rows. A
/// model of several inputs has each request entry be one of them (OpenAPI 3.0 cannot ask for
/// each exactly once, so generated requests may repeat one and get 400); its `/invocations`
/// schema, an object keyed by input name, names each once.
pub fn for_model(name: &str, versions: &[u64], model: &Model) -> Value {
    let mut document = DOCUMENT.clone();
    document["info"]["title"] = json!(format!("skiff inference server: model {name}"));
    let versions: Vec<String> = versions.iter().map(u64::to_string).collect();
    if let Some(paths) = document["paths"].as_object_mut() {
        for (path, item) in paths.iter_mut() {
            if !path.starts_with("/v2/models/") && !path.starts_with("/v1/models/") {
                continue;
            }
            for parameter in item["parameters"].as_array_mut().into_iter().flatten() {
                match parameter["name"].as_str() {
                    Some("name") => parameter["schema"]["enum"] = json!([name]),
                    Some("version") => parameter["schema"]["enum"] = json!(versions),
                    _ => {}
                }
            }
        }
    }
    let schemas = &mut document["components"]["schemas"];
    schemas["inference_request"] = inference_request(model);
    schemas["invocations_request"] = invocations_request(model);
    document
}

fn inference_request(model: &Model) -> Value {
    let inputs: Vec<Value> = model.inputs().iter().map(request_input).collect();
    let n = inputs.len();
    let items = match <[Value; 1]>::try_from(inputs) {
        Ok([one]) => one,
        Err(inputs) => json!({ "oneOf": inputs }),
    };
    let outputs: Vec<&str> = model.outputs().iter().map(|o| o.name.as_str()).collect();
    json!({
        "type": "object",
        "properties": {
            "id": { "type": "string" },
            "parameters": {
                "type": "object",
                "properties": { "binary_data_output": { "type": "boolean" } },
            },
            "inputs": { "type": "array", "items": items, "minItems": n, "maxItems": n },
            "outputs": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "name": { "type": "string", "enum": outputs },
                        "parameters": {
                            "type": "object",
                            "properties": { "binary_data": { "type": "boolean" } },
                        },
                    },
                    "required": ["name"],
                },
            },
        },
        "required": ["inputs"],
    })
}

/// One input of the request: its name, datatype and shape (rows 1), and data nested by it.
fn request_input(spec: &IoSpec) -> Value {
    let shape: Vec<usize> = spec
        .shape
        .iter()
        .map(|&d| usize::try_from(d).unwrap_or(1))
        .collect();
    json!({
        "type": "object",
        "description": format!("Input {}: shape {:?}, -1 where the size varies (here 1).", spec.name, spec.shape),
        "properties": {
            "name": { "type": "string", "enum": [spec.name] },
            "datatype": { "type": "string", "enum": [spec.datatype.as_str()] },
            "shape": {
                "type": "array",
                "items": { "type": "integer" },
                "enum": [shape],
            },
            "data": nested(&shape, element(spec.datatype)),
        },
        "required": ["name", "shape", "datatype", "data"],
    })
}

fn invocations_request(model: &Model) -> Value {
    let rows = |spec: &IoSpec| {
        let inner: Vec<usize> = spec
            .shape
            .iter()
            .skip(1)
            .map(|&d| usize::try_from(d).unwrap_or(1))
            .collect();
        let mut rows = json!({
            "type": "array",
            "items": nested_rows(&inner, element(spec.datatype)),
            "minItems": 1,
            "maxItems": 16,
        });
        if spec.shape.first().is_some_and(|&d| d > 0) {
            rows["minItems"] = json!(spec.shape[0]);
            rows["maxItems"] = json!(spec.shape[0]);
        }
        rows
    };
    let inputs = match model.inputs() {
        [one] => rows(one),
        several => {
            let properties: serde_json::Map<String, Value> =
                several.iter().map(|s| (s.name.clone(), rows(s))).collect();
            let names: Vec<&str> = several.iter().map(|s| s.name.as_str()).collect();
            json!({ "type": "object", "properties": properties, "required": names })
        }
    };
    json!({
        "type": "object",
        "properties": { "inputs": inputs },
        "required": ["inputs"],
    })
}

/// Nested arrays of `shape`, `element` at the bottom; a scalar is a list of one.
fn nested(shape: &[usize], element: Value) -> Value {
    if shape.is_empty() {
        return json!({ "type": "array", "items": element, "minItems": 1, "maxItems": 1 });
    }
    nested_rows(shape, element)
}

fn nested_rows(shape: &[usize], element: Value) -> Value {
    shape.iter().rev().fold(
        element,
        |items, &n| json!({ "type": "array", "items": items, "minItems": n, "maxItems": n }),
    )
}

/// The JSON type of one element of `datatype`, with its range.
fn element(datatype: DataType) -> Value {
    match datatype {
        DataType::Bool => json!({ "type": "boolean" }),
        DataType::Int32 => json!({ "type": "integer", "minimum": i32::MIN, "maximum": i32::MAX }),
        DataType::Int64 => json!({ "type": "integer", "minimum": i64::MIN, "maximum": i64::MAX }),
        DataType::Fp32 => {
            json!({ "type": "number", "minimum": -f64::from(f32::MAX), "maximum": f64::from(f32::MAX) })
        }
        DataType::Fp64 => json!({ "type": "number" }),
        DataType::Bytes => json!({ "type": "string" }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_lists_every_route_the_server_serves() {
        let paths = document()["paths"].as_object().unwrap();
        for path in [
            "/v2",
            "/v2/health/live",
            "/v2/health/ready",
            "/v2/models/{name}",
            "/v2/models/{name}/ready",
            "/v2/models/{name}/infer",
            "/v2/models/{name}/versions/{version}/infer",
            "/v2/models/{name}/explain",
            "/v2/models/{name}/versions/{version}/explain",
            "/v1/models/{name}:explain",
            "/v2/docs/openapi.json",
            "/v2/models/{name}/docs/openapi.json",
            "/v2/repository/index",
            "/v2/repository/models/{name}/load",
            "/v2/repository/models/{name}/unload",
            "/metrics",
            "/invocations",
            "/ping",
        ] {
            assert!(paths.contains_key(path), "{path} missing");
        }
        assert!(document()["openapi"].as_str().unwrap().starts_with("3."));
    }

    #[test]
    fn nested_data_follows_the_shape() {
        let schema = nested(&[1, 4], json!({ "type": "number" }));
        assert_eq!(schema["minItems"], 1);
        assert_eq!(schema["items"]["maxItems"], 4);
        assert_eq!(schema["items"]["items"]["type"], "number");
    }
}
