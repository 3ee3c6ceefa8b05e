//! skiff's table preprocessing kernels (`Imputer`, `OneHotEncoder`, `LabelEncoder`) answer as
//! onnxruntime does: one-node graphs over their attribute layouts and input types
//! (`tests/zoo/encode_ops.py`), each run in onnxruntime and in tract. The zoo runs them as
//! skl2onnx writes them, inside whole pipelines.

use crate::tree_ops::{first_difference, flatten, number};
use crate::*;
use serde_json::Value;
use skiff_runtime::{Model, Tensor, TensorData};

#[test]
fn preprocessing_ops_answer_as_onnxruntime() {
    let dir = tempfile::tempdir().unwrap();
    let out = python()
        .arg(example("../tests/zoo/encode_ops.py"))
        .arg(dir.path())
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "tests/zoo/encode_ops.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cases: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("cases.json")).unwrap())
            .unwrap();
    assert!(cases.len() >= 16, "only {} cases", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let name = case["name"].as_str().unwrap();
        let input = &case["input"];
        let values = input["values"].as_array().unwrap();
        let shape: Vec<usize> = input["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_u64().unwrap() as usize)
            .collect();
        let data = match input["datatype"].as_str().unwrap() {
            "FP32" => TensorData::Fp32(values.iter().map(number).collect()),
            "INT64" => TensorData::Int64(values.iter().map(|v| v.as_i64().unwrap()).collect()),
            "BYTES" => TensorData::Bytes(
                values
                    .iter()
                    .map(|v| v.as_str().unwrap().to_string())
                    .collect(),
            ),
            other => panic!("{name}: input type {other}"),
        };
        let model = match Model::from_path(&dir.path().join(case["model"].as_str().unwrap())) {
            Ok(model) => model,
            Err(e) => {
                failures.push(format!("{name}: does not load: {e}"));
                continue;
            }
        };
        match model.run(vec![Tensor::new(shape, data).unwrap()]) {
            Ok(outputs) => {
                if let Some(diff) =
                    first_difference(&outputs[0].data, &flatten(&case["outputs"]["Y"]))
                {
                    failures.push(format!("{name}: {diff}"));
                }
            }
            Err(e) => failures.push(format!("{name}: does not run: {e}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} ops differ from onnxruntime:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
