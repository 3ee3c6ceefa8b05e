//! Request inputs into the model's tensors, in the model's types, and model outputs into
//! response entries.

use super::binary::decode_binary;
use super::json::decode_json;
use super::{ApiError, RequestInput, ResponseOutput, input_names};
use http::StatusCode;
use skiff_runtime::{DataType, IoSpec, Model, Tensor, TensorData};
use std::collections::BTreeMap;

/// The wire element types of the protocol (a superset of what models take).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Wire {
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
    pub(super) fn width(self) -> Option<usize> {
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
pub(super) enum Elements {
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
