//! MLflow's scoring protocol beside the OIP, as `mlflow models serve` answers it for a model
//! with a tensor signature: `POST /invocations` with `{"inputs": ...}` (a dict of named
//! tensors, or one nested list for a single-input model) or `{"instances": [...]}` (rows), and
//! `{"predictions": {"OUTPUT": nested list, ...}}` back; `GET /ping`. Clients of an MLflow
//! deployment can switch to skiff without a change.
//!
//! A request becomes an OIP request for the one model served (shapes read off the nested
//! lists, types from the model's inputs), so the same decoding, limits and errors apply.

use crate::protocol::{ApiError, input_names};
use http::StatusCode;
use serde_json::{Map, Value, json};
use skiff_runtime::Model;

/// The OIP request body (JSON) for an MLflow scoring `body`, for `model`.
pub fn to_infer_request(model: &Model, body: &[u8]) -> Result<Vec<u8>, ApiError> {
    let request: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON in the request body: {e}")))?;
    let Value::Object(request) = request else {
        return Err(ApiError::bad_request(
            "the request body is not a JSON object: send {\"inputs\": ...} or {\"instances\": [...]}",
        ));
    };
    let inputs = model.inputs();
    let named: Map<String, Value> = if let Some(given) = request.get("inputs") {
        match given {
            Value::Object(tensors) => tensors.clone(),
            other if inputs.len() == 1 => Map::from_iter([(inputs[0].name.clone(), other.clone())]),
            _ => {
                return Err(ApiError::bad_request(format!(
                    "the model reads {} inputs ({}): send \"inputs\" as an object of named tensors",
                    inputs.len(),
                    input_names(model)
                )));
            }
        }
    } else if let Some(instances) = request.get("instances") {
        instances_to_tensors(model, instances)?
    } else if request.contains_key("dataframe_split") || request.contains_key("dataframe_records") {
        return Err(ApiError::bad_request(
            "skiff serves ONNX models by their tensor signature: send {\"inputs\": {NAME: \
             [[...]]}} or {\"instances\": [...]} instead of a dataframe",
        ));
    } else {
        return Err(ApiError::bad_request(
            "the request has neither \"inputs\" nor \"instances\": send {\"inputs\": {NAME: [[...]]}}",
        ));
    };
    let mut tensors = Vec::new();
    for spec in inputs {
        let Some(data) = named.get(&spec.name) else {
            return Err(ApiError::bad_request(format!(
                "input {:?} is missing: the model reads {}",
                spec.name,
                input_names(model)
            )));
        };
        let mut shape = shape_of(data);
        // A column sent flat, for an input of shape [N, 1].
        if shape.len() + 1 == spec.shape.len() && spec.shape.last() == Some(&1) {
            shape.push(1);
        }
        tensors.push(json!({
            "name": spec.name,
            "shape": shape,
            "datatype": spec.datatype.as_str(),
            "data": data,
        }));
    }
    if let Some(unknown) = named
        .keys()
        .find(|n| !inputs.iter().any(|spec| &spec.name == *n))
    {
        return Err(ApiError::bad_request(format!(
            "the model has no input {unknown:?}: it reads {}",
            input_names(model)
        )));
    }
    Ok(json!({ "inputs": tensors }).to_string().into_bytes())
}

/// The `{"predictions": ...}` answer for an OIP response body (JSON, no binary data): every
/// output by name, its data nested by its shape, as MLflow's pyfunc for ONNX returns them.
pub fn predictions(oip_response: &[u8]) -> Result<Value, ApiError> {
    let response: Value = serde_json::from_slice(oip_response).map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot read the model's answer: {e}"),
        )
    })?;
    let mut predictions = Map::new();
    for output in response["outputs"].as_array().into_iter().flatten() {
        let name = output["name"].as_str().unwrap_or_default().to_string();
        let shape: Vec<usize> = output["shape"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|d| d.as_u64().map(|d| d as usize))
            .collect();
        let data = output["data"].as_array().cloned().unwrap_or_default();
        predictions.insert(name, nest(&data, &shape));
    }
    Ok(json!({ "predictions": predictions }))
}

/// MLflow's error body: `{"error_code": ..., "message": ...}`.
pub fn error_body(error: &ApiError) -> Value {
    let code = match error.status() {
        StatusCode::BAD_REQUEST | StatusCode::PAYLOAD_TOO_LARGE => "INVALID_PARAMETER_VALUE",
        StatusCode::NOT_FOUND => "RESOURCE_DOES_NOT_EXIST",
        StatusCode::SERVICE_UNAVAILABLE | StatusCode::GATEWAY_TIMEOUT => "TEMPORARILY_UNAVAILABLE",
        _ => "INTERNAL_ERROR",
    };
    json!({ "error_code": code, "message": error.body()["error"] })
}

/// Rows (`instances`) as tensors: rows of values for a single-input model, or rows of
/// `{input: value}` objects stacked input by input.
fn instances_to_tensors(model: &Model, instances: &Value) -> Result<Map<String, Value>, ApiError> {
    let Value::Array(rows) = instances else {
        return Err(ApiError::bad_request("\"instances\" is not a list of rows"));
    };
    if rows.iter().all(Value::is_object) && !rows.is_empty() {
        let mut columns: Map<String, Value> = Map::new();
        for row in rows {
            for (name, value) in row.as_object().into_iter().flatten() {
                if let Value::Array(column) = columns
                    .entry(name.clone())
                    .or_insert_with(|| Value::Array(Vec::new()))
                {
                    column.push(value.clone());
                }
            }
        }
        return Ok(columns);
    }
    match model.inputs() {
        [one] => Ok(Map::from_iter([(one.name.clone(), instances.clone())])),
        _ => Err(ApiError::bad_request(format!(
            "the model reads {} inputs ({}): send \"instances\" as rows of {{NAME: value}} objects",
            model.inputs().len(),
            input_names(model)
        ))),
    }
}

/// The dimensions of nested lists, read along the first element at each depth (the OIP
/// decoder then checks that every element fits them).
fn shape_of(data: &Value) -> Vec<i64> {
    let mut shape = Vec::new();
    let mut at = data;
    while let Value::Array(items) = at {
        shape.push(items.len() as i64);
        match items.first() {
            Some(first) => at = first,
            None => break,
        }
    }
    shape
}

/// Flat row-major `data` as nested lists of `shape`.
fn nest(data: &[Value], shape: &[usize]) -> Value {
    match shape {
        [] | [_] => Value::Array(data.to_vec()),
        [_, inner @ ..] => {
            let stride: usize = inner.iter().product::<usize>().max(1);
            Value::Array(
                data.chunks(stride)
                    .map(|chunk| nest(chunk, inner))
                    .collect(),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_lists_keep_their_shape_both_ways() {
        let data = json!([[1, 2, 3], [4, 5, 6]]);
        assert_eq!(shape_of(&data), [2, 3]);
        assert_eq!(shape_of(&json!(["a", "b"])), [2]);
        assert_eq!(shape_of(&json!([])), [0]);
        let flat: Vec<Value> = (1..=6).map(|v| json!(v)).collect();
        assert_eq!(nest(&flat, &[2, 3]), data);
        assert_eq!(nest(&flat, &[6]), json!([1, 2, 3, 4, 5, 6]));
        assert_eq!(
            nest(&flat, &[3, 1, 2]),
            json!([[[1, 2]], [[3, 4]], [[5, 6]]])
        );
    }

    #[test]
    fn predictions_name_every_output() {
        let oip = json!({
            "model_name": "iris", "model_version": "1",
            "outputs": [
                {"name": "label", "shape": [2], "datatype": "BYTES", "data": ["a", "b"]},
                {"name": "probabilities", "shape": [2, 2], "datatype": "FP32", "data": [0.25, 0.75, 1.0, 0.0]},
            ]
        });
        let answer = predictions(oip.to_string().as_bytes()).unwrap();
        assert_eq!(
            answer,
            json!({"predictions": {"label": ["a", "b"], "probabilities": [[0.25, 0.75], [1.0, 0.0]]}})
        );
    }
}
