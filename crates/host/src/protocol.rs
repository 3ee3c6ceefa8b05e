//! Open Inference Protocol (KServe v2) request and response bodies, and their conversion to
//! the runtime's tensors.

use crate::ApiError;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use skiff_runtime::{DataType, IoSpec, Tensor, TensorData};

/// `POST /v2/models/{name}/infer` body.
#[derive(Debug, Deserialize)]
pub struct InferRequest {
    /// Echoed in the response.
    #[serde(default)]
    pub id: Option<String>,
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
    /// Element type of `data`.
    pub datatype: String,
    /// Row-major elements, flat or nested.
    pub data: Option<Value>,
}

/// One requested output.
#[derive(Debug, Deserialize)]
pub struct RequestOutput {
    /// The output's name.
    pub name: String,
}

/// The response to an inference request.
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
    /// Row-major elements, flat.
    pub data: Value,
}

/// Converts a request input into the tensor the model's input `spec` takes.
///
/// Numbers of any numeric datatype are accepted for a numeric input and converted to its type
/// (FP64 data into an FP32 input, say); strings only for BYTES inputs, booleans for BOOL.
pub fn to_tensor(input: RequestInput, spec: &IoSpec) -> Result<Tensor, ApiError> {
    let name = &input.name;
    let declared = DataType::parse(&input.datatype).ok_or_else(|| {
        ApiError::bad_request(format!(
            "input {name:?} has unknown datatype {:?} (use one of BOOL, INT32, INT64, FP32, FP64, BYTES)",
            input.datatype
        ))
    })?;
    let numeric = |t: DataType| {
        matches!(
            t,
            DataType::Int32 | DataType::Int64 | DataType::Fp32 | DataType::Fp64
        )
    };
    if declared != spec.datatype && !(numeric(declared) && numeric(spec.datatype)) {
        return Err(ApiError::bad_request(format!(
            "input {name:?} must be {}, got datatype {declared}",
            spec.datatype
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
    let data = input
        .data
        .ok_or_else(|| ApiError::bad_request(format!("input {name:?} has no \"data\"")))?;
    let mut flat = Vec::with_capacity(expected.min(1 << 20));
    flatten(data, &mut flat);
    if flat.len() != expected {
        return Err(ApiError::bad_request(format!(
            "input {name:?} has shape {:?} ({expected} elements) but {} data elements",
            input.shape,
            flat.len()
        )));
    }
    let bad =
        |what: &str| ApiError::bad_request(format!("input {name:?}: every element must be {what}"));
    let data = match spec.datatype {
        DataType::Fp32 => TensorData::Fp32(
            flat.iter()
                .map(|v| v.as_f64().map(|f| f as f32))
                .collect::<Option<_>>()
                .ok_or_else(|| bad("a number"))?,
        ),
        DataType::Fp64 => TensorData::Fp64(
            flat.iter()
                .map(Value::as_f64)
                .collect::<Option<_>>()
                .ok_or_else(|| bad("a number"))?,
        ),
        DataType::Int64 => TensorData::Int64(
            flat.iter()
                .map(Value::as_i64)
                .collect::<Option<_>>()
                .ok_or_else(|| bad("an integer"))?,
        ),
        DataType::Int32 => TensorData::Int32(
            flat.iter()
                .map(|v| v.as_i64().and_then(|i| i32::try_from(i).ok()))
                .collect::<Option<_>>()
                .ok_or_else(|| bad("a 32-bit integer"))?,
        ),
        DataType::Bool => TensorData::Bool(
            flat.iter()
                .map(Value::as_bool)
                .collect::<Option<_>>()
                .ok_or_else(|| bad("true or false"))?,
        ),
        DataType::Bytes => TensorData::Bytes(
            flat.into_iter()
                .map(|v| match v {
                    Value::String(s) => Some(s),
                    _ => None,
                })
                .collect::<Option<_>>()
                .ok_or_else(|| bad("a string"))?,
        ),
    };
    Tensor::new(shape, data).map_err(|e| ApiError::bad_request(e.to_string()))
}

fn flatten(value: Value, out: &mut Vec<Value>) {
    match value {
        Value::Array(items) => items.into_iter().for_each(|v| flatten(v, out)),
        other => out.push(other),
    }
}

/// Converts a model output into its response entry.
pub fn from_tensor(name: &str, tensor: Tensor) -> ResponseOutput {
    let datatype = tensor.data.datatype();
    let data = match tensor.data {
        TensorData::Bool(v) => Value::from(v),
        TensorData::Int32(v) => Value::from(v),
        TensorData::Int64(v) => Value::from(v),
        TensorData::Fp32(v) => Value::from(v),
        TensorData::Fp64(v) => Value::from(v),
        TensorData::Bytes(v) => Value::from(v),
    };
    ResponseOutput {
        name: name.to_string(),
        shape: tensor.shape,
        datatype,
        data,
    }
}
