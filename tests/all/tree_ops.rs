//! skiff's tree ensemble kernels answer as onnxruntime does on every layout of
//! `TreeEnsembleClassifier` and `TreeEnsembleRegressor`: several hundred small random graphs
//! (`tests/zoo/tree_ops.py`) covering two-class models with one score column or two, every
//! post_transform, base_values of each length, class_ids naming one class or all, int64 and
//! string labels, every nodes_mode and NaN tracking, each run in onnxruntime and in tract.

use crate::*;
use serde_json::Value;
use skiff_runtime::{Model, Tensor, TensorData};

#[test]
fn tree_ensembles_answer_as_onnxruntime_on_every_layout() {
    let dir = tempfile::tempdir().unwrap();
    let out = python()
        .arg(example("../tests/zoo/tree_ops.py"))
        .arg(dir.path())
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "tests/zoo/tree_ops.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cases: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("cases.json")).unwrap())
            .unwrap();
    assert!(cases.len() > 300, "only {} cases", cases.len());
    let mut failures = Vec::new();
    let mut binary_classifiers = 0;
    for case in &cases {
        let name = case["name"].as_str().unwrap();
        binary_classifiers += usize::from(name.starts_with("clf_c2"));
        let rows = case["rows"].as_array().unwrap();
        let x: Vec<f32> = rows
            .iter()
            .flat_map(|r| r.as_array().unwrap())
            .map(number)
            .collect();
        let input =
            Tensor::new(vec![rows.len(), x.len() / rows.len()], TensorData::Fp32(x)).unwrap();
        let model = match Model::from_path(&dir.path().join(case["model"].as_str().unwrap())) {
            Ok(model) => model,
            Err(e) => {
                failures.push(format!("{name}: does not load: {e}"));
                continue;
            }
        };
        let outputs = model.run(vec![input]).unwrap();
        for (spec, tensor) in model.outputs().iter().zip(&outputs) {
            let expected = flatten(&case["outputs"][&spec.name]);
            if let Some(diff) = first_difference(&tensor.data, &expected) {
                failures.push(format!("{name}: {} {diff}", spec.name));
            }
        }
    }
    assert!(
        binary_classifiers > 100,
        "only {binary_classifiers} two-class cases"
    );
    assert!(
        failures.is_empty(),
        "{} of {} tree ensembles differ from onnxruntime:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

pub(crate) fn flatten(v: &Value) -> Vec<Value> {
    match v {
        Value::Array(items) => items.iter().flat_map(flatten).collect(),
        other => vec![other.clone()],
    }
}

/// A number of the generator's JSON: NaN and infinities are named.
pub(crate) fn number(v: &Value) -> f32 {
    match v {
        Value::String(s) => s.parse().unwrap(),
        v => v.as_f64().unwrap() as f32,
    }
}

/// Where `got` first differs from `expected`: labels exactly, floats within 1e-5 relative,
/// NaN and infinities where onnxruntime has them.
pub(crate) fn first_difference(got: &TensorData, expected: &[Value]) -> Option<String> {
    if got.len() != expected.len() {
        return Some(format!(
            "has {} values, onnxruntime {}",
            got.len(),
            expected.len()
        ));
    }
    (0..expected.len()).find_map(|i| {
        let e = &expected[i];
        let (same, g) = match got {
            TensorData::Fp32(v) => {
                let (g, e) = (v[i], number(e));
                let same =
                    g == e || g.is_nan() && e.is_nan() || (g - e).abs() <= 1e-5 * (1.0 + e.abs());
                (same, g.to_string())
            }
            TensorData::Int64(v) => (e.as_i64() == Some(v[i]), v[i].to_string()),
            TensorData::Bytes(v) => (e.as_str() == Some(&v[i]), v[i].clone()),
            other => return Some(format!("has {:?} values", other.datatype())),
        };
        (!same).then(|| format!("[{i}] is {g}, onnxruntime {e}"))
    })
}
