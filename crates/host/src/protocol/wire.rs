//! The JSON bodies of inference requests and responses.

use super::FlatData;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use skiff_runtime::{DataType, TensorData};

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
