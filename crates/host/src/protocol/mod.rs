//! Open Inference Protocol (KServe v2) request and response bodies, with Triton's binary
//! tensor data extension, and their conversion to the runtime's tensors.
//!
//! A request body is a JSON header, optionally followed by raw tensor bytes: the header's length
//! is in the `Inference-Header-Content-Length` HTTP header, and each input sent that way has a
//! `binary_data_size` parameter instead of `data`. Responses use the same layout for outputs
//! that asked for `binary_data` (or all outputs, with the request's `binary_data_output`).
//!
//! The parts: `error.rs` ([`ApiError`], every 4xx and 5xx), the wire types of requests and
//! responses (`wire.rs`), JSON tensor data parsed flat (`json.rs`), Triton's binary extension
//! (`binary.rs`), and the conversion of inputs to the model's tensors and back (`tensor.rs`);
//! this file holds the metadata answers and a decoded [`Inference`].

mod binary;
mod error;
mod json;
mod tensor;
mod wire;

pub use binary::{check_content_type, split_body};
pub use error::{ApiError, method_not_allowed, no_such_endpoint};
pub use json::FlatData;
pub use tensor::{decode_inputs, from_tensor, to_tensor};
pub use wire::{InferRequest, InferResponse, RequestInput, RequestOutput, ResponseOutput};

use serde_json::{Map, Value, json};
use skiff_runtime::{Model, Tensor};
use std::collections::BTreeMap;

/// The HTTP header that carries the JSON header's length in binary requests and responses.
pub const HEADER_LENGTH: &str = "inference-header-content-length";

/// The largest request body served by default, in bytes (64 MiB, as Triton); larger ones get
/// 413.
pub const MAX_BODY_BYTES: usize = 64 << 20;

/// The most tensor elements in one request by default, all inputs together; more get 413.
pub const MAX_ELEMENTS: usize = 16 << 20;

/// The protocol extensions `/v2` lists.
pub const EXTENSIONS: &[&str] = &["binary_tensor_data"];

/// `GET /v2`: the server's name, version and extensions.
pub fn server_metadata() -> Value {
    json!({ "name": "skiff", "version": env!("CARGO_PKG_VERSION"), "extensions": EXTENSIONS })
}

/// `GET /v2/models/{name}`: a model's versions, inputs, outputs, backend and, for a
/// classifier, its classes in probability-column order.
pub fn model_metadata(name: &str, versions: &[u64], model: &Model) -> Value {
    let versions: Vec<String> = versions.iter().map(u64::to_string).collect();
    let mut parameters = json!({ "backend": model.backend() });
    if let Some(classes) = model.class_labels() {
        parameters["classes"] = json!(classes);
    }
    json!({
        "name": name,
        "versions": versions,
        "platform": "onnx_onnxv1",
        "inputs": model.inputs(),
        "outputs": model.outputs(),
        "parameters": parameters,
    })
}

/// An inference request decoded for one model: its input tensors, in the model's input order,
/// and how to answer.
#[derive(Debug)]
pub struct Inference {
    /// The inputs, ready to run.
    pub tensors: Vec<Tensor>,
    /// Their elements, all together.
    pub elements: usize,
    id: Option<String>,
    /// Every output as binary data unless an output says otherwise.
    default_binary: bool,
    /// The outputs asked for, each with whether as binary data; all when `None`.
    wanted: Option<BTreeMap<String, bool>>,
}

/// An answer to an inference request: JSON, or a JSON header followed by binary output data.
#[derive(Debug)]
pub struct Answer {
    /// The whole body.
    pub body: Vec<u8>,
    /// The JSON header's length, for [`HEADER_LENGTH`], when binary data follows it; the
    /// body is then `application/octet-stream`, else `application/json`.
    pub header_length: Option<usize>,
}

impl Inference {
    /// Decodes the body of `POST /v2/models/{model_name}/infer`: its JSON part, and the binary
    /// data after it when `header_length` (the [`HEADER_LENGTH`] header) is given.
    pub fn decode(
        model_name: &str,
        model: &Model,
        body: &[u8],
        header_length: Option<&str>,
        max_elements: usize,
    ) -> Result<Inference, ApiError> {
        let (json_part, binary) = split_body(body, header_length)?;
        let request: InferRequest = serde_json::from_slice(json_part)
            .map_err(|e| ApiError::bad_request(format!("invalid inference request: {e}")))?;
        let (tensors, elements) =
            decode_inputs(model_name, model, request.inputs, binary, max_elements)?;
        let default_binary = flag(&request.parameters, "binary_data_output");
        let wanted: Option<BTreeMap<String, bool>> = request.outputs.map(|outputs| {
            outputs
                .into_iter()
                .map(|o| {
                    let binary = o
                        .parameters
                        .get("binary_data")
                        .and_then(|v| v.as_bool())
                        .unwrap_or(default_binary);
                    (o.name, binary)
                })
                .collect()
        });
        if let Some(unknown) = wanted
            .iter()
            .flat_map(|w| w.keys())
            .find(|w| !model.outputs().iter().any(|o| &o.name == *w))
        {
            return Err(ApiError::bad_request(format!(
                "model {model_name:?} has no output {unknown:?}"
            )));
        }
        Ok(Inference {
            tensors,
            elements,
            id: request.id,
            default_binary,
            wanted,
        })
    }

    /// The response to this request, from the model's `results`.
    pub fn answer(
        self,
        model_name: &str,
        version: u64,
        model: &Model,
        results: Vec<Tensor>,
    ) -> Answer {
        let mut tail = Vec::new();
        let mut outputs = Vec::new();
        for (spec, tensor) in model.outputs().iter().zip(results) {
            let binary = match &self.wanted {
                None => self.default_binary,
                Some(w) => match w.get(&spec.name) {
                    Some(&binary) => binary,
                    None => continue,
                },
            };
            outputs.push(from_tensor(&spec.name, tensor, binary, &mut tail));
        }
        let response = InferResponse {
            model_name: model_name.to_string(),
            model_version: version.to_string(),
            id: self.id,
            outputs,
        };
        let mut body = serde_json::to_vec(&response).expect("response serialises");
        if tail.is_empty() {
            return Answer {
                body,
                header_length: None,
            };
        }
        let header_length = Some(body.len());
        body.extend_from_slice(&tail);
        Answer {
            body,
            header_length,
        }
    }
}

/// Whether a parameter map says `key: true`.
pub fn flag(parameters: &Map<String, Value>, key: &str) -> bool {
    parameters
        .get(key)
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

/// The model's input names, comma separated, for errors.
pub(crate) fn input_names(model: &Model) -> String {
    model
        .inputs()
        .iter()
        .map(|i| i.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}
