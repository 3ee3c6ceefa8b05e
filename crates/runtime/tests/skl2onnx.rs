//! skl2onnx's files run in skiff-runtime with onnxruntime's outputs.
//!
//! The fixtures and their test rows live in tests/fixtures/skl2onnx (see its make.py). One
//! Python process (`SKIFF_TEST_PYTHON`, with onnxruntime and numpy) runs them all in
//! onnxruntime; each test runs one fixture in skiff-runtime on each backend (tract, and ONNX
//! Runtime's CPU provider loaded by skiff) and compares: labels identical, numbers within 1e-4
//! absolute plus 1e-4 relative, both against onnxruntime's Python outputs and between the two
//! backends.

use serde_json::Value;
use skiff_runtime::{BackendKind, BackendOptions, Model, Tensor, TensorData};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

const ABS_TOL: f64 = 1e-4;
const REL_TOL: f64 = 1e-4;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/skl2onnx")
}

fn manifest() -> &'static Value {
    static MANIFEST: OnceLock<Value> = OnceLock::new();
    MANIFEST.get_or_init(|| {
        let text = std::fs::read_to_string(fixtures().join("inputs.json")).unwrap();
        serde_json::from_str(&text).unwrap()
    })
}

/// onnxruntime's outputs for every fixture, from one Python process shared by all tests.
fn onnxruntime_outputs() -> &'static Value {
    static OUTPUTS: OnceLock<Value> = OnceLock::new();
    OUTPUTS.get_or_init(|| {
        let python = std::env::var_os("SKIFF_TEST_PYTHON").unwrap_or_else(|| {
            panic!("SKIFF_TEST_PYTHON is not set (a Python with onnxruntime and numpy): run scripts/test.sh")
        });
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/onnxruntime_outputs.py");
        let out = Command::new(&python)
            .arg(&script)
            .arg(fixtures())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.to_string_lossy()));
        assert!(
            out.status.success(),
            "onnxruntime script failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    })
}

fn rows(model: &str) -> Tensor {
    let dataset = manifest()["models"][model]
        .as_str()
        .unwrap_or_else(|| panic!("{model} is not in inputs.json"));
    let rows = manifest()["datasets"][dataset].as_array().unwrap();
    let width = rows[0].as_array().unwrap().len();
    let data: Vec<f32> = rows
        .iter()
        .flat_map(|r| r.as_array().unwrap())
        .map(|v| v.as_f64().unwrap() as f32)
        .collect();
    Tensor::new(vec![rows.len(), width], TensorData::Fp32(data)).unwrap()
}

fn close(got: f64, want: f64) -> bool {
    (got - want).abs() <= ABS_TOL + REL_TOL * want.abs()
}

/// Runs `model` in skiff-runtime on tract and on ONNX Runtime, and compares every output with
/// onnxruntime's and the two backends' outputs with each other.
fn matches_onnxruntime(model: &str) {
    let tract = on_backend(model, BackendKind::Tract);
    let ort = on_backend(model, BackendKind::Ort);
    for (t, o) in tract.iter().zip(&ort) {
        assert_eq!(
            t.shape, o.shape,
            "{model}: tract and ONNX Runtime shapes differ"
        );
        match (&t.data, &o.data) {
            (TensorData::Fp32(t), TensorData::Fp32(o)) => {
                for (i, (t, o)) in t.iter().zip(o).enumerate() {
                    assert!(
                        close(*t as f64, *o as f64),
                        "{model}: [{i}] is {t} on tract, {o} on ONNX Runtime"
                    );
                }
            }
            (t, o) => assert_eq!(t, o, "{model}: tract and ONNX Runtime differ"),
        }
    }
}

/// Runs `model` on `backend` and checks its outputs against onnxruntime's Python outputs.
fn on_backend(model: &str, backend: BackendKind) -> Vec<Tensor> {
    let skiff = Model::load_path(&fixtures().join(model), &BackendOptions::new(backend))
        .unwrap_or_else(|e| panic!("skiff-runtime cannot load {model} on {backend}: {e}"));
    let served_by = match backend {
        BackendKind::Tract => "tract",
        _ => "onnxruntime-cpu",
    };
    assert_eq!(skiff.backend(), served_by, "{model}");
    let outputs = skiff.run(vec![rows(model)]).unwrap();
    check_against_onnxruntime(model, &skiff, &outputs);
    outputs
}

fn check_against_onnxruntime(model: &str, skiff: &Model, outputs: &[Tensor]) {
    let model = &format!("{model} on {}", skiff.backend());
    let expected = onnxruntime_outputs()[model.split(' ').next().unwrap()]
        .as_object()
        .unwrap();
    assert_eq!(
        skiff.outputs().len(),
        expected.len(),
        "{model}: output count differs from onnxruntime"
    );
    for (spec, got) in skiff.outputs().iter().zip(outputs) {
        let want = &expected[&spec.name];
        let want_shape: Vec<usize> = want["shape"]
            .as_array()
            .unwrap_or_else(|| panic!("{model}: onnxruntime has no output {:?}", spec.name))
            .iter()
            .map(|d| d.as_u64().unwrap() as usize)
            .collect();
        assert_eq!(got.shape, want_shape, "{model}: shape of {}", spec.name);
        let want = want["data"].as_array().unwrap();
        match &got.data {
            TensorData::Bytes(labels) => {
                let want: Vec<&str> = want.iter().map(|v| v.as_str().unwrap()).collect();
                assert_eq!(*labels, want, "{model}: {}", spec.name);
            }
            TensorData::Int64(labels) => {
                let want: Vec<i64> = want.iter().map(|v| v.as_i64().unwrap()).collect();
                assert_eq!(*labels, want, "{model}: {}", spec.name);
            }
            TensorData::Fp32(values) => {
                for (i, (g, w)) in values.iter().zip(want).enumerate() {
                    let w = w.as_f64().unwrap();
                    assert!(
                        close(*g as f64, w),
                        "{model}: {}[{i}] is {g}, onnxruntime says {w}",
                        spec.name
                    );
                }
            }
            other => panic!(
                "{model}: {} has unexpected type {}",
                spec.name,
                other.datatype()
            ),
        }
    }
}

#[test]
fn every_fixture_has_a_test() {
    let tested = [
        "logistic_regression.onnx",
        "random_forest_classifier.onnx",
        "random_forest_regressor.onnx",
        "decision_tree_regressor.onnx",
        "gradient_boosting_classifier.onnx",
        "gradient_boosting_regressor.onnx",
        "linear_svc.onnx",
        "svc_rbf.onnx",
        "svc_binary_poly.onnx",
        "svr.onnx",
        "kmeans.onnx",
        "scaler_logistic_regression.onnx",
        "mlp_torch_style.onnx",
    ];
    let mut listed: Vec<&str> = manifest()["models"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    listed.sort();
    let mut tested = tested.to_vec();
    tested.sort();
    assert_eq!(listed, tested);
}

#[test]
fn logistic_regression_string_labels_and_zipmap_probabilities() {
    matches_onnxruntime("logistic_regression.onnx");
}

#[test]
fn random_forest_classifier_string_labels() {
    matches_onnxruntime("random_forest_classifier.onnx");
}

#[test]
fn random_forest_regressor_tree_ensemble() {
    matches_onnxruntime("random_forest_regressor.onnx");
}

#[test]
fn decision_tree_regressor_tree_ensemble() {
    matches_onnxruntime("decision_tree_regressor.onnx");
}

#[test]
fn gradient_boosting_classifier_int_labels_softmax() {
    matches_onnxruntime("gradient_boosting_classifier.onnx");
}

#[test]
fn gradient_boosting_regressor_base_values() {
    matches_onnxruntime("gradient_boosting_regressor.onnx");
}

#[test]
fn linear_svc_string_labels() {
    matches_onnxruntime("linear_svc.onnx");
}

#[test]
fn svc_rbf_three_classes_one_vs_one_scores() {
    matches_onnxruntime("svc_rbf.onnx");
}

#[test]
fn svc_poly_two_classes_score_layout() {
    matches_onnxruntime("svc_binary_poly.onnx");
}

#[test]
fn svr_rbf_regressor() {
    matches_onnxruntime("svr.onnx");
}

#[test]
fn kmeans_labels_and_distances() {
    matches_onnxruntime("kmeans.onnx");
}

#[test]
fn standard_scaler_pipeline_scaler_op() {
    matches_onnxruntime("scaler_logistic_regression.onnx");
}

#[test]
fn mlp_as_pytorch_exports_it() {
    matches_onnxruntime("mlp_torch_style.onnx");
}

#[test]
fn onnx_runtime_settings_change_how_it_runs_not_what_it_answers() {
    let options = BackendOptions {
        backend: BackendKind::Ort,
        intra_op_threads: Some(2),
        graph_optimization: Some(skiff_runtime::GraphOptimization::Disable),
        instances: Some(3),
        io_binding: true,
        ..BackendOptions::default()
    };
    for model in ["random_forest_classifier.onnx", "mlp_torch_style.onnx"] {
        let skiff = Model::load_path(&fixtures().join(model), &options).unwrap();
        // More requests at once than sessions: some wait for a free one.
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    let outputs = skiff.run(vec![rows(model)]).unwrap();
                    check_against_onnxruntime(model, &skiff, &outputs);
                });
            }
        });
    }
}

#[test]
fn a_large_request_answers_as_its_rows_do_one_by_one() {
    // 70,000 rows: enough work for the tree walks, and for tract's matrix products in the small
    // MLP (131 weights), to split the request over threads; each row alone runs on the calling
    // thread.
    for model in [
        "random_forest_classifier.onnx",
        "random_forest_regressor.onnx",
        "gradient_boosting_classifier.onnx",
        "mlp_torch_style.onnx",
    ] {
        let skiff = Model::load_path(
            &fixtures().join(model),
            &BackendOptions::new(BackendKind::Tract),
        )
        .unwrap();
        let few = rows(model);
        let (n, width) = (few.shape[0], few.shape[1]);
        let TensorData::Fp32(values) = &few.data else {
            unreachable!("fixture rows are float32")
        };
        let many = 70_000;
        let data: Vec<f32> = values.iter().copied().cycle().take(many * width).collect();
        let big = skiff
            .run(vec![
                Tensor::new(vec![many, width], TensorData::Fp32(data)).unwrap(),
            ])
            .unwrap();
        for r in 0..n {
            let row = Tensor::new(
                vec![1, width],
                TensorData::Fp32(values[r * width..][..width].to_vec()),
            );
            let alone = skiff.run(vec![row.unwrap()]).unwrap();
            // Row r comes back every n rows of the large request, the last time near its end.
            let at = r + (many - 1 - r) / n * n;
            for (big, alone) in big.iter().zip(&alone) {
                let per_row = alone.data.len();
                match (&big.data, &alone.data) {
                    (TensorData::Fp32(b), TensorData::Fp32(a)) => {
                        for (k, (b, a)) in b[at * per_row..][..per_row].iter().zip(a).enumerate() {
                            assert!(
                                close(*b as f64, *a as f64),
                                "{model}: row {at}, value {k}: {b} in the large request, {a} alone"
                            );
                        }
                    }
                    (TensorData::Bytes(b), TensorData::Bytes(a)) => {
                        assert_eq!(b[at], a[0], "{model}: row {at}");
                    }
                    (TensorData::Int64(b), TensorData::Int64(a)) => {
                        assert_eq!(b[at], a[0], "{model}: row {at}");
                    }
                    (b, a) => panic!("{model}: {} and {}", b.datatype(), a.datatype()),
                }
            }
        }
    }
}
