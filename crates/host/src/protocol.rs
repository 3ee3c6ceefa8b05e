//! Open Inference Protocol (KServe v2) request and response bodies, with Triton's binary
//! tensor data extension, and their conversion to the runtime's tensors.
//!
//! A request body is a JSON header, optionally followed by raw tensor bytes: the header's length
//! is in the `Inference-Header-Content-Length` HTTP header, and each input sent that way has a
//! `binary_data_size` parameter instead of `data`. Responses use the same layout for outputs
//! that asked for `binary_data` (or all outputs, with the request's `binary_data_output`).

use http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use skiff_runtime::{DataType, IoSpec, Model, Tensor, TensorData};
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

/// An error answered as `{"error": "..."}` with a 4xx or 5xx status.
#[derive(Debug)]
pub struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) message: String,
}

impl ApiError {
    /// An error with any status.
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }

    /// A 400 Bad Request.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The JSON body, `{"error": "..."}`.
    pub fn body(&self) -> Value {
        json!({ "error": self.message })
    }
}

impl From<skiff_runtime::Error> for ApiError {
    /// Input the model refuses is the caller's to fix (400); anything else failed inside (500).
    fn from(e: skiff_runtime::Error) -> ApiError {
        match e {
            skiff_runtime::Error::BadInput(m) => ApiError::bad_request(m),
            other => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, other.to_string()),
        }
    }
}

/// The 404 of a path the protocol does not have.
pub fn no_such_endpoint() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "no such endpoint (see /v2)")
}

/// The 405 of a path asked with the wrong method.
pub fn method_not_allowed(method: &str, path: &str) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("{method} is not allowed on {path} (see /v2)"),
    )
}

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

/// `POST /v2/models/{name}/infer` body (its JSON part).
#[derive(Debug, Deserialize)]
pub struct InferRequest {
    /// Echoed in the response.
    #[serde(default)]
    pub id: Option<String>,
    /// Request parameters (`binary_data_output`).
    #[serde(default)]
    pub parameters: Map<String, Value>,
    /// One entry per model input.
    pub inputs: Vec<RequestInput>,
    /// Which outputs to return; all when absent.
    #[serde(default)]
    pub outputs: Option<Vec<RequestOutput>>,
}

/// One input tensor of a request.
#[derive(Debug, Deserialize)]
pub struct RequestInput {
    /// The model input's name.
    pub name: String,
    /// Dimensions.
    pub shape: Vec<i64>,
    /// Element type of the data.
    pub datatype: String,
    /// Input parameters (`binary_data_size`).
    #[serde(default)]
    pub parameters: Map<String, Value>,
    /// Row-major elements, flat or nested (absent when sent as binary data).
    pub data: Option<FlatData>,
}

/// One requested output.
#[derive(Debug, Deserialize)]
pub struct RequestOutput {
    /// The output's name.
    pub name: String,
    /// Output parameters (`binary_data`).
    #[serde(default)]
    pub parameters: Map<String, Value>,
}

/// The JSON part of a response to an inference request.
#[derive(Debug, Serialize)]
pub struct InferResponse {
    /// The model that answered.
    pub model_name: String,
    /// Its version.
    pub model_version: String,
    /// The request's id, if it had one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The outputs.
    pub outputs: Vec<ResponseOutput>,
}

/// One output tensor of a response.
#[derive(Debug, Serialize)]
pub struct ResponseOutput {
    /// The output's name.
    pub name: String,
    /// Dimensions.
    pub shape: Vec<usize>,
    /// Element type.
    pub datatype: DataType,
    /// `binary_data_size` when the data follows the JSON header as bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Value>,
    /// Row-major elements, flat (absent when sent as binary data).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<TensorData>,
}

/// Checks an inference request's `Content-Type` and returns the JSON header's length when the
/// type carries it (`application/vnd.sagemaker-triton.binary+json;json-header-size=N`, the
/// binary tensor format under SageMaker's name).
///
/// JSON (`application/json`, any `+json` type), Triton's binary tensor format
/// (`application/octet-stream`, or any type with [`HEADER_LENGTH`]) and no type at all are
/// served. So is `application/x-www-form-urlencoded`, which `curl -d` sends: Triton's and
/// KServe's own examples post JSON that way. Anything else gets 415.
pub fn check_content_type<'a>(
    content_type: Option<&'a str>,
    header_length: Option<&str>,
) -> Result<Option<&'a str>, ApiError> {
    let Some(content_type) = content_type.filter(|t| !t.trim().is_empty()) else {
        return Ok(None);
    };
    let mut parts = content_type.split(';');
    let essence = parts.next().unwrap_or("").trim().to_ascii_lowercase();
    let json_header_size = parts.find_map(|p| {
        let (key, value) = p.split_once('=')?;
        (key.trim().eq_ignore_ascii_case("json-header-size")).then(|| value.trim())
    });
    let served = essence == "application/json"
        || essence.starts_with("application/") && essence.ends_with("+json")
        || essence == "application/octet-stream"
        || essence == "application/x-www-form-urlencoded"
        || header_length.is_some();
    if !served {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "content type {content_type:?} is not served: send the request as application/json, or as binary tensors with the {HEADER_LENGTH} header"
            ),
        ));
    }
    Ok(json_header_size)
}

/// Splits a request body into its JSON header and the binary data after it.
pub fn split_body<'b>(
    body: &'b [u8],
    header_length: Option<&str>,
) -> Result<(&'b [u8], &'b [u8]), ApiError> {
    let Some(length) = header_length else {
        return Ok((body, &[]));
    };
    let length: usize = length.trim().parse().map_err(|_| {
        ApiError::bad_request(format!("{HEADER_LENGTH} {length:?} is not a byte count"))
    })?;
    if length > body.len() {
        return Err(ApiError::bad_request(format!(
            "{HEADER_LENGTH} is {length} but the body has only {} bytes",
            body.len()
        )));
    }
    Ok(body.split_at(length))
}

/// The wire element types of the protocol (a superset of what models take).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wire {
    Bool,
    U8,
    U16,
    U32,
    U64,
    I8,
    I16,
    I32,
    I64,
    F32,
    F64,
    Bytes,
}

impl Wire {
    fn parse(name: &str) -> Option<Wire> {
        Some(match name {
            "BOOL" => Wire::Bool,
            "UINT8" => Wire::U8,
            "UINT16" => Wire::U16,
            "UINT32" => Wire::U32,
            "UINT64" => Wire::U64,
            "INT8" => Wire::I8,
            "INT16" => Wire::I16,
            "INT32" => Wire::I32,
            "INT64" => Wire::I64,
            "FP32" => Wire::F32,
            "FP64" => Wire::F64,
            "BYTES" => Wire::Bytes,
            _ => return None,
        })
    }

    /// Bytes per element in binary data; `None` for BYTES (length-prefixed).
    fn width(self) -> Option<usize> {
        match self {
            Wire::Bool | Wire::U8 | Wire::I8 => Some(1),
            Wire::U16 | Wire::I16 => Some(2),
            Wire::U32 | Wire::I32 | Wire::F32 => Some(4),
            Wire::U64 | Wire::I64 | Wire::F64 => Some(8),
            Wire::Bytes => None,
        }
    }
}

/// Elements as decoded from the wire, before conversion to the model input's type.
enum Elements {
    Int(Vec<i128>),
    Float(Vec<f64>),
    Bool(Vec<bool>),
    Str(Vec<String>),
}

impl Elements {
    fn len(&self) -> usize {
        match self {
            Elements::Int(v) => v.len(),
            Elements::Float(v) => v.len(),
            Elements::Bool(v) => v.len(),
            Elements::Str(v) => v.len(),
        }
    }
}

/// Converts a request input into the tensor the model's input `spec` takes; `binary` is the
/// rest of the body after the JSON header, from which binary inputs take their bytes in order.
///
/// Numbers of any numeric datatype are accepted for a numeric input and converted to its type
/// (FP64 data into an FP32 input, INT64 into FP32, ...); an integer input refuses fractional
/// numbers and values out of its range. Strings only for BYTES inputs, booleans for BOOL.
pub fn to_tensor(
    input: RequestInput,
    spec: &IoSpec,
    binary: &mut &[u8],
) -> Result<Tensor, ApiError> {
    let name = &input.name;
    let wire = Wire::parse(&input.datatype).ok_or_else(|| {
        ApiError::bad_request(format!(
            "input {name:?} has unknown or unsupported datatype {:?} (use BOOL, UINT8..64, INT8..64, FP32, FP64 or BYTES)",
            input.datatype
        ))
    })?;
    let numeric = |t: DataType| {
        matches!(
            t,
            DataType::Int32 | DataType::Int64 | DataType::Fp32 | DataType::Fp64
        )
    };
    let compatible = match wire {
        Wire::Bool => spec.datatype == DataType::Bool,
        Wire::Bytes => spec.datatype == DataType::Bytes,
        _ => numeric(spec.datatype),
    };
    if !compatible {
        return Err(ApiError::bad_request(format!(
            "input {name:?} must be {}, got datatype {}",
            spec.datatype, input.datatype
        )));
    }
    let shape = input
        .shape
        .iter()
        .map(|&d| usize::try_from(d))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| {
            ApiError::bad_request(format!(
                "input {name:?} has a negative dimension in shape {:?}",
                input.shape
            ))
        })?;
    let expected = shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "input {name:?} has shape {:?}: too many elements",
                input.shape
            ))
        })?;
    let elements = match (input.parameters.get("binary_data_size"), input.data) {
        (Some(size), None) => {
            let size = size
                .as_u64()
                .and_then(|s| usize::try_from(s).ok())
                .ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "input {name:?}: binary_data_size must be a byte count"
                    ))
                })?;
            if size > binary.len() {
                return Err(ApiError::bad_request(format!(
                    "input {name:?}: binary_data_size is {size} but only {} bytes of binary data remain",
                    binary.len()
                )));
            }
            let (bytes, rest) = binary.split_at(size);
            *binary = rest;
            decode_binary(name, wire, bytes, expected)?
        }
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request(format!(
                "input {name:?} has both \"data\" and binary_data_size: send one"
            )));
        }
        (None, Some(data)) => decode_json(name, wire, data)?,
        (None, None) => {
            return Err(ApiError::bad_request(format!(
                "input {name:?} has no \"data\""
            )));
        }
    };
    if elements.len() != expected {
        return Err(ApiError::bad_request(format!(
            "input {name:?} has shape {:?} ({expected} elements) but {} data elements",
            input.shape,
            elements.len()
        )));
    }
    let data = convert(name, elements, spec.datatype)?;
    Tensor::new(shape, data).map_err(|e| ApiError::bad_request(e.to_string()))
}

/// A request's `data`, flattened while it is parsed: nested lists cost no tree of values.
#[derive(Debug, Default)]
pub struct FlatData(Vec<Scalar>);

impl FlatData {
    /// Booleans, as the gRPC form's typed contents carry them.
    #[cfg(feature = "server")]
    pub(crate) fn bools(v: impl IntoIterator<Item = bool>) -> FlatData {
        FlatData(v.into_iter().map(Scalar::Bool).collect())
    }

    /// Signed integers.
    #[cfg(feature = "server")]
    pub(crate) fn ints(v: impl IntoIterator<Item = i64>) -> FlatData {
        FlatData(v.into_iter().map(Scalar::Int).collect())
    }

    /// Unsigned integers.
    #[cfg(feature = "server")]
    pub(crate) fn uints(v: impl IntoIterator<Item = u64>) -> FlatData {
        FlatData(v.into_iter().map(Scalar::UInt).collect())
    }

    /// Floats.
    #[cfg(feature = "server")]
    pub(crate) fn floats(v: impl IntoIterator<Item = f64>) -> FlatData {
        FlatData(v.into_iter().map(Scalar::Float).collect())
    }

    /// Strings.
    #[cfg(feature = "server")]
    pub(crate) fn strings(v: impl IntoIterator<Item = String>) -> FlatData {
        FlatData(v.into_iter().map(Scalar::Str).collect())
    }
}

/// One element of [`FlatData`].
#[derive(Debug, Clone, PartialEq)]
enum Scalar {
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(String),
    /// `null`: a missing value, NaN in a float tensor (JSON has no NaN).
    Null,
    /// An object: never a valid element.
    Other,
}

impl<'de> Deserialize<'de> for FlatData {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut elements = Vec::new();
        deserializer.deserialize_any(Flatten(&mut elements))?;
        Ok(FlatData(elements))
    }
}

struct Flatten<'a>(&'a mut Vec<Scalar>);

impl<'de> serde::de::DeserializeSeed<'de> for Flatten<'_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Flatten<'_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("tensor data: numbers, booleans or strings, in a flat or nested list")
    }
    fn visit_bool<E>(self, v: bool) -> Result<(), E> {
        self.0.push(Scalar::Bool(v));
        Ok(())
    }
    fn visit_i64<E>(self, v: i64) -> Result<(), E> {
        self.0.push(Scalar::Int(v));
        Ok(())
    }
    fn visit_u64<E>(self, v: u64) -> Result<(), E> {
        self.0.push(Scalar::UInt(v));
        Ok(())
    }
    fn visit_f64<E>(self, v: f64) -> Result<(), E> {
        self.0.push(Scalar::Float(v));
        Ok(())
    }
    fn visit_str<E>(self, v: &str) -> Result<(), E> {
        self.0.push(Scalar::Str(v.to_string()));
        Ok(())
    }
    fn visit_string<E>(self, v: String) -> Result<(), E> {
        self.0.push(Scalar::Str(v));
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        self.0.push(Scalar::Null);
        Ok(())
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Flatten(&mut *self.0))?.is_some() {}
        Ok(())
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        use serde::de::IgnoredAny;
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        self.0.push(Scalar::Other);
        Ok(())
    }
}

fn decode_json(name: &str, wire: Wire, data: FlatData) -> Result<Elements, ApiError> {
    let bad =
        |what: &str| ApiError::bad_request(format!("input {name:?}: every element must be {what}"));
    let flat = data.0;
    Ok(match wire {
        Wire::Bool => Elements::Bool(
            flat.into_iter()
                .map(|v| match v {
                    Scalar::Bool(b) => Some(b),
                    _ => None,
                })
                .collect::<Option<_>>()
                .ok_or_else(|| bad("true or false"))?,
        ),
        Wire::Bytes => Elements::Str(
            flat.into_iter()
                .map(|v| match v {
                    Scalar::Str(s) => Some(s),
                    _ => None,
                })
                .collect::<Option<_>>()
                .ok_or_else(|| bad("a string"))?,
        ),
        Wire::F32 | Wire::F64 => Elements::Float(
            flat.into_iter()
                .map(|v| match v {
                    Scalar::Float(f) => Some(f),
                    Scalar::Int(i) => Some(i as f64),
                    Scalar::UInt(u) => Some(u as f64),
                    Scalar::Null => Some(f64::NAN),
                    _ => None,
                })
                .collect::<Option<_>>()
                .ok_or_else(|| bad("a number (or null for a missing value)"))?,
        ),
        _ => Elements::Int(
            flat.into_iter()
                .map(|v| match v {
                    Scalar::Int(i) => Some(i128::from(i)),
                    Scalar::UInt(u) => Some(i128::from(u)),
                    _ => None,
                })
                .collect::<Option<_>>()
                .ok_or_else(|| bad("an integer"))?,
        ),
    })
}

fn decode_binary(
    name: &str,
    wire: Wire,
    bytes: &[u8],
    expected: usize,
) -> Result<Elements, ApiError> {
    let Some(width) = wire.width() else {
        return decode_strings(name, bytes).map(Elements::Str);
    };
    if bytes.len() != expected.saturating_mul(width) {
        return Err(ApiError::bad_request(format!(
            "input {name:?}: {} bytes of binary data do not hold {expected} elements of {width} bytes",
            bytes.len()
        )));
    }
    let chunks = bytes.chunks_exact(width);
    fn arr<const N: usize>(c: &[u8]) -> [u8; N] {
        c.try_into().expect("chunks_exact gives N bytes")
    }
    Ok(match wire {
        Wire::Bool => Elements::Bool(chunks.map(|c| c[0] != 0).collect()),
        Wire::U8 => Elements::Int(chunks.map(|c| i128::from(c[0])).collect()),
        Wire::I8 => Elements::Int(chunks.map(|c| i128::from(c[0] as i8)).collect()),
        Wire::U16 => Elements::Int(
            chunks
                .map(|c| i128::from(u16::from_le_bytes(arr(c))))
                .collect(),
        ),
        Wire::I16 => Elements::Int(
            chunks
                .map(|c| i128::from(i16::from_le_bytes(arr(c))))
                .collect(),
        ),
        Wire::U32 => Elements::Int(
            chunks
                .map(|c| i128::from(u32::from_le_bytes(arr(c))))
                .collect(),
        ),
        Wire::I32 => Elements::Int(
            chunks
                .map(|c| i128::from(i32::from_le_bytes(arr(c))))
                .collect(),
        ),
        Wire::U64 => Elements::Int(
            chunks
                .map(|c| i128::from(u64::from_le_bytes(arr(c))))
                .collect(),
        ),
        Wire::I64 => Elements::Int(
            chunks
                .map(|c| i128::from(i64::from_le_bytes(arr(c))))
                .collect(),
        ),
        Wire::F32 => Elements::Float(
            chunks
                .map(|c| f64::from(f32::from_le_bytes(arr(c))))
                .collect(),
        ),
        Wire::F64 => Elements::Float(chunks.map(|c| f64::from_le_bytes(arr(c))).collect()),
        Wire::Bytes => unreachable!("BYTES has no fixed width"),
    })
}

/// BYTES elements in binary data: each a 4-byte little-endian length, then that many bytes.
fn decode_strings(name: &str, mut bytes: &[u8]) -> Result<Vec<String>, ApiError> {
    let truncated =
        || ApiError::bad_request(format!("input {name:?}: BYTES binary data is truncated"));
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let (len, rest) = bytes.split_first_chunk::<4>().ok_or_else(truncated)?;
        let len = u32::from_le_bytes(*len) as usize;
        if len > rest.len() {
            return Err(truncated());
        }
        let (s, rest) = rest.split_at(len);
        out.push(String::from_utf8(s.to_vec()).map_err(|_| {
            ApiError::bad_request(format!("input {name:?}: BYTES element is not UTF-8"))
        })?);
        bytes = rest;
    }
    Ok(out)
}

fn convert(name: &str, elements: Elements, target: DataType) -> Result<TensorData, ApiError> {
    let range =
        |what: &str| ApiError::bad_request(format!("input {name:?}: a value does not fit {what}"));
    let fractional = || {
        ApiError::bad_request(format!(
            "input {name:?} is {target}: every element must be an integer"
        ))
    };
    let ints = |v: Vec<f64>| -> Result<Vec<i128>, ApiError> {
        v.into_iter()
            .map(|f| {
                if f.fract() == 0.0 && f.is_finite() {
                    Ok(f as i128)
                } else {
                    Err(fractional())
                }
            })
            .collect()
    };
    Ok(match (elements, target) {
        (Elements::Bool(v), DataType::Bool) => TensorData::Bool(v),
        (Elements::Str(v), DataType::Bytes) => TensorData::Bytes(v),
        (Elements::Float(v), DataType::Fp32) => {
            TensorData::Fp32(v.into_iter().map(|f| f as f32).collect())
        }
        (Elements::Float(v), DataType::Fp64) => TensorData::Fp64(v),
        (Elements::Int(v), DataType::Fp32) => {
            TensorData::Fp32(v.into_iter().map(|i| i as f32).collect())
        }
        (Elements::Int(v), DataType::Fp64) => {
            TensorData::Fp64(v.into_iter().map(|i| i as f64).collect())
        }
        (Elements::Int(v), DataType::Int64) => TensorData::Int64(
            v.into_iter()
                .map(i64::try_from)
                .collect::<Result<_, _>>()
                .map_err(|_| range("INT64"))?,
        ),
        (Elements::Int(v), DataType::Int32) => TensorData::Int32(
            v.into_iter()
                .map(i32::try_from)
                .collect::<Result<_, _>>()
                .map_err(|_| range("INT32"))?,
        ),
        (Elements::Float(v), DataType::Int64) => TensorData::Int64(
            ints(v)?
                .into_iter()
                .map(i64::try_from)
                .collect::<Result<_, _>>()
                .map_err(|_| range("INT64"))?,
        ),
        (Elements::Float(v), DataType::Int32) => TensorData::Int32(
            ints(v)?
                .into_iter()
                .map(i32::try_from)
                .collect::<Result<_, _>>()
                .map_err(|_| range("INT32"))?,
        ),
        (_, target) => {
            return Err(ApiError::bad_request(format!(
                "input {name:?} must be {target}"
            )));
        }
    })
}

/// Converts a model output into its response entry; with `binary`, its bytes are appended to
/// `tail` and the entry carries `binary_data_size` instead of `data`.
pub fn from_tensor(name: &str, tensor: Tensor, binary: bool, tail: &mut Vec<u8>) -> ResponseOutput {
    let datatype = tensor.data.datatype();
    let shape = tensor.shape;
    if binary {
        let start = tail.len();
        match tensor.data {
            TensorData::Bool(v) => tail.extend(v.iter().map(|&b| u8::from(b))),
            TensorData::Int32(v) => v
                .iter()
                .for_each(|x| tail.extend_from_slice(&x.to_le_bytes())),
            TensorData::Int64(v) => v
                .iter()
                .for_each(|x| tail.extend_from_slice(&x.to_le_bytes())),
            TensorData::Fp32(v) => v
                .iter()
                .for_each(|x| tail.extend_from_slice(&x.to_le_bytes())),
            TensorData::Fp64(v) => v
                .iter()
                .for_each(|x| tail.extend_from_slice(&x.to_le_bytes())),
            TensorData::Bytes(v) => v.iter().for_each(|s| {
                tail.extend_from_slice(&(s.len() as u32).to_le_bytes());
                tail.extend_from_slice(s.as_bytes());
            }),
        }
        let size = tail.len() - start;
        return ResponseOutput {
            name: name.to_string(),
            shape,
            datatype,
            parameters: Some(serde_json::json!({ "binary_data_size": size })),
            data: None,
        };
    }

    ResponseOutput {
        name: name.to_string(),
        shape,
        datatype,
        parameters: None,
        data: Some(tensor.data),
    }
}

/// Whether a parameter map says `key: true`.
pub fn flag(parameters: &Map<String, Value>, key: &str) -> bool {
    parameters
        .get(key)
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

/// The request's inputs as the model's tensors, in the model's input order; binary inputs
/// take their bytes from `binary` in the order the request lists them.
pub fn decode_inputs(
    model_name: &str,
    model: &Model,
    inputs: Vec<RequestInput>,
    mut binary: &[u8],
    max_elements: usize,
) -> Result<(Vec<Tensor>, usize), ApiError> {
    let mut by_name: BTreeMap<String, RequestInput> = BTreeMap::new();
    let mut order = Vec::new();
    for input in inputs {
        order.push(input.name.clone());
        if let Some(dup) = by_name.insert(input.name.clone(), input) {
            return Err(ApiError::bad_request(format!(
                "input {:?} given twice",
                dup.name
            )));
        }
    }
    if let Some(extra) = order
        .iter()
        .find(|n| !model.inputs().iter().any(|i| &i.name == *n))
    {
        return Err(ApiError::bad_request(format!(
            "model {:?} has no input {extra:?} (inputs: {})",
            model_name,
            input_names(model)
        )));
    }
    // Binary inputs take their bytes in the order the request lists them.
    let mut decoded = BTreeMap::new();
    let mut elements = 0usize;
    for name in &order {
        let spec = model
            .inputs()
            .iter()
            .find(|i| &i.name == name)
            .expect("checked above");
        let input = by_name.remove(name).expect("present");
        let tensor = to_tensor(input, spec, &mut binary)?;
        elements = elements.saturating_add(tensor.data.len());
        if elements > max_elements {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("request has more than {} tensor elements", max_elements),
            ));
        }
        decoded.insert(name.clone(), tensor);
    }
    let mut tensors = Vec::with_capacity(model.inputs().len());
    for spec in model.inputs() {
        tensors.push(decoded.remove(&spec.name).ok_or_else(|| {
            ApiError::bad_request(format!(
                "missing input {:?} ({} {:?})",
                spec.name, spec.datatype, spec.shape
            ))
        })?);
    }

    Ok((tensors, elements))
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
