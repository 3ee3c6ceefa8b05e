//! The exported file runs in ONNX Runtime and agrees with `skiff predict`.

use crate::*;

fn onnxruntime(model: &std::path::Path, data: &std::path::Path) -> serde_json::Value {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ort_run.py");
    let out = python()
        .arg(script)
        .arg(model)
        .arg(data)
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "onnxruntime failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn onnxruntime_agrees_with_skiff_predict_on_every_test_row() {
    let dir = tempfile::tempdir().unwrap();
    let model = iris_model(dir.path());
    let test = example("iris/test.csv");
    let ort = onnxruntime(&model, &test);

    assert_eq!(ort["inputs"][0]["name"], "X");
    assert_eq!(ort["inputs"][0]["type"], "tensor(float)");
    assert_eq!(ort["inputs"][0]["shape"][1], 4);
    assert_eq!(ort["outputs"]["label"]["type"], "tensor(string)");
    assert_eq!(ort["outputs"]["probabilities"]["type"], "tensor(float)");
    let meta = &ort["metadata"];
    assert_eq!(meta["skiff.algorithm"], "logistic-regression");
    assert_eq!(
        meta["skiff.classes"],
        r#"["setosa","versicolor","virginica"]"#
    );
    assert!(
        meta["skiff.hyperparameters"]
            .as_str()
            .unwrap()
            .contains("\"C\":1.0")
    );
    assert!(
        meta["skiff.training_metric"]
            .as_str()
            .unwrap()
            .contains("accuracy")
    );
    assert_eq!(meta["skiff.version"], env!("CARGO_PKG_VERSION"));

    let out = predict(&model, &test, &["--proba"]);
    let (_, rows) = read_csv(&out);
    let labels = ort["outputs"]["label"]["values"].as_array().unwrap();
    let probabilities = ort["outputs"]["probabilities"]["values"]
        .as_array()
        .unwrap();
    assert_eq!(rows.len(), labels.len());
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(
            row[0],
            labels[i].as_str().unwrap(),
            "row {i}: label differs"
        );
        for (j, theirs) in probabilities[i].as_array().unwrap().iter().enumerate() {
            let theirs = theirs.as_f64().unwrap();
            let ours: f64 = row[j + 1].parse().unwrap();
            assert!(
                (ours - theirs).abs() <= 1e-5 + 1e-4 * theirs.abs(),
                "row {i} class {j}: skiff {ours} vs onnxruntime {theirs}"
            );
        }
    }
}

#[test]
fn onnxruntime_returns_integer_labels_as_int64() {
    let dir = tempfile::tempdir().unwrap();
    let data = relabelled_iris(dir.path(), ["0", "1", "2"]);
    let model = dir.path().join("numeric.onnx");
    ok(fit(&data, "species", &model));
    let ort = onnxruntime(&model, &data);
    assert_eq!(ort["outputs"]["label"]["type"], "tensor(int64)");
    let (_, rows) = read_csv(&predict(&model, &data, &[]));
    let theirs: Vec<String> = ort["outputs"]["label"]["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.to_string())
        .collect();
    let ours: Vec<String> = rows.into_iter().map(|r| r[0].clone()).collect();
    assert_eq!(ours, theirs);
}
