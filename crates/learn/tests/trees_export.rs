//! Trees and forests exported to ONNX give, in skiff's runtime, the labels and values they give
//! natively.
//!
//! `onnxruntime_agrees_with_native_predictions` writes every case as `NAME.onnx` and `NAME.json`
//! (inputs and native predictions) and has `trees_onnxruntime.py` check them in ONNX Runtime,
//! with the Python that `SKIFF_TEST_PYTHON` names (scripts/test.sh sets it); without it, that
//! test fails. `SKIFF_TREES_OUT=dir` keeps the files of every case in `dir`.

use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use skiff_learn::{
    CategoricalFeatures, ClassTarget, DecisionTreeClassifier, DecisionTreeRegressor, Export,
    ExportInfo, HistGradientBoostingClassifier, HistGradientBoostingRegressor, MaxFeatures,
    RandomForestClassifier, RandomForestRegressor, RegressionLoss,
};
use skiff_runtime::{Tensor, TensorData};
use std::path::{Path, PathBuf};

fn iris() -> (Array2<f64>, ClassTarget, Vec<String>) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/iris/train.csv");
    let table = skiff_data::Table::from_path(path.as_ref()).unwrap();
    let features = table.columns_except("species");
    let x = table.features(&features).unwrap();
    let y = ClassTarget::from_cells(&table.column("species").unwrap()).unwrap();
    (x, y, features)
}

/// y = sin(x0) + x1² - 0.5·x2 + noise, from a seeded generator.
fn synthetic_regression(n: usize) -> (Array2<f64>, Vec<f64>) {
    let mut rng = ChaCha8Rng::seed_from_u64(17);
    let x = Array2::from_shape_fn((n, 3), |_| rng.random_range(-3.0f64..3.0));
    let y = x
        .outer_iter()
        .map(|r| r[0].sin() + r[1] * r[1] - 0.5 * r[2] + rng.random_range(-0.1..0.1))
        .collect();
    (x, y)
}

/// Two noisy blobs with integer labels -3 and 7.
fn binary_ints(n: usize) -> (Array2<f64>, ClassTarget) {
    let mut rng = ChaCha8Rng::seed_from_u64(23);
    let labels: Vec<&str> = (0..n)
        .map(|i| if i % 2 == 0 { "-3" } else { "7" })
        .collect();
    let x = Array2::from_shape_fn((n, 2), |(i, _)| {
        (i % 2) as f64 * 1.2 + rng.random_range(0.0..1.5)
    });
    (x, ClassTarget::from_cells(&labels).unwrap())
}

fn info(n_features: usize) -> ExportInfo {
    ExportInfo {
        feature_names: (0..n_features).map(|i| format!("f{i}")).collect(),
        target: "y".into(),
        training_metric: None,
    }
}

fn run(bytes: &[u8], x: &Array2<f64>) -> Vec<Tensor> {
    let model = skiff_runtime::Model::from_bytes("tree.onnx", bytes).unwrap();
    let input = Tensor::new(
        vec![x.nrows(), x.ncols()],
        TensorData::Fp32(x.iter().map(|&v| v as f32).collect()),
    )
    .unwrap();
    model.run(vec![input]).unwrap()
}

fn labels_of(t: &Tensor) -> Vec<String> {
    match &t.data {
        TensorData::Bytes(v) => v.clone(),
        TensorData::Int64(v) => v.iter().map(i64::to_string).collect(),
        other => panic!("labels are {:?}", other.datatype()),
    }
}

fn floats_of(t: &Tensor) -> Vec<f32> {
    match &t.data {
        TensorData::Fp32(v) => v.clone(),
        other => panic!("values are {:?}", other.datatype()),
    }
}

fn close(native: f64, onnx: f32) -> bool {
    (native - onnx as f64).abs() <= 1e-5 + 1e-4 * native.abs()
}

/// Where the cases write their files: `SKIFF_TREES_OUT`, or nowhere.
fn env_out() -> Option<PathBuf> {
    std::env::var_os("SKIFF_TREES_OUT").map(PathBuf::from)
}

fn save(
    out: Option<&Path>,
    name: &str,
    bytes: &[u8],
    x: &Array2<f64>,
    predictions: serde_json::Value,
) {
    let Some(dir) = out else {
        return;
    };
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join(format!("{name}.onnx")), bytes).unwrap();
    let rows: Vec<Vec<f64>> = x.outer_iter().map(|r| r.to_vec()).collect();
    let json = serde_json::json!({ "x": rows, "native": predictions });
    std::fs::write(dir.join(format!("{name}.json")), json.to_string()).unwrap();
}

fn check_classifier(
    out: Option<&Path>,
    name: &str,
    bytes: &[u8],
    x: &Array2<f64>,
    labels: Vec<String>,
    proba: Array2<f64>,
) -> f64 {
    let outputs = run(bytes, x);
    assert_eq!(outputs.len(), 2, "{name}: label and probabilities");
    assert_eq!(labels_of(&outputs[0]), labels, "{name}: labels");
    assert_eq!(outputs[1].shape, vec![x.nrows(), proba.ncols()], "{name}");
    let onnx = floats_of(&outputs[1]);
    let mut max_diff: f64 = 0.0;
    for (native, onnx) in proba.iter().zip(&onnx) {
        assert!(close(*native, *onnx), "{name}: {native} vs {onnx}");
        max_diff = max_diff.max((native - *onnx as f64).abs());
    }
    let rows: Vec<Vec<f64>> = proba.outer_iter().map(|r| r.to_vec()).collect();
    save(
        out,
        name,
        bytes,
        x,
        serde_json::json!({ "label": labels, "probabilities": rows }),
    );
    max_diff
}

fn check_regressor(
    out: Option<&Path>,
    name: &str,
    bytes: &[u8],
    x: &Array2<f64>,
    values: Vec<f64>,
) -> f64 {
    let outputs = run(bytes, x);
    assert_eq!(outputs.len(), 1);
    assert_eq!(outputs[0].shape, vec![x.nrows(), 1], "{name}");
    let onnx = floats_of(&outputs[0]);
    let mut max_diff: f64 = 0.0;
    for (native, onnx) in values.iter().zip(&onnx) {
        assert!(close(*native, *onnx), "{name}: {native} vs {onnx}");
        max_diff = max_diff.max((native - *onnx as f64).abs());
    }
    save(
        out,
        name,
        bytes,
        x,
        serde_json::json!({ "variable": values }),
    );
    max_diff
}

#[test]
fn decision_tree_classifier_on_iris_runs_the_same_in_onnx() {
    decision_tree_classifier_on_iris_runs_the_same_in_onnx_case(env_out().as_deref());
}

fn decision_tree_classifier_on_iris_runs_the_same_in_onnx_case(out: Option<&Path>) {
    let (x, y, _) = iris();
    let m = DecisionTreeClassifier::params().fit(x.view(), &y).unwrap();
    assert_eq!(m.score(x.view(), &y.indices).unwrap(), 1.0);
    let bytes = m.to_onnx(&info(4)).to_bytes();
    let model = skiff_runtime::Model::from_bytes("t.onnx", &bytes).unwrap();
    assert_eq!(
        model.metadata()["skiff.algorithm"],
        "decision-tree-classifier"
    );
    assert_eq!(model.metadata()["skiff.task"], "classification");
    assert_eq!(
        model.class_labels().unwrap(),
        ["setosa", "versicolor", "virginica"]
    );
    let labels = m.predict(x.view()).unwrap();
    let proba = m.predict_proba(x.view()).unwrap();
    check_classifier(
        out,
        "decision_tree_classifier_iris",
        &bytes,
        &x,
        labels,
        proba,
    );

    let shallow = DecisionTreeClassifier::params()
        .max_depth(Some(2))
        .criterion(skiff_learn::ClassCriterion::Entropy)
        .fit(x.view(), &y)
        .unwrap();
    let bytes = shallow.to_onnx(&info(4)).to_bytes();
    check_classifier(
        out,
        "decision_tree_classifier_iris_depth2",
        &bytes,
        &x,
        shallow.predict(x.view()).unwrap(),
        shallow.predict_proba(x.view()).unwrap(),
    );
}

#[test]
fn random_forest_classifier_on_iris_runs_the_same_in_onnx() {
    random_forest_classifier_on_iris_runs_the_same_in_onnx_case(env_out().as_deref());
}

fn random_forest_classifier_on_iris_runs_the_same_in_onnx_case(out: Option<&Path>) {
    let (x, y, _) = iris();
    let m = RandomForestClassifier::params()
        .random_state(Some(0))
        .fit(x.view(), &y)
        .unwrap();
    assert_eq!(m.trees.len(), 100);
    assert!(m.score(x.view(), &y.indices).unwrap() > 0.97);
    let bytes = m.to_onnx(&info(4)).to_bytes();
    let diff = check_classifier(
        out,
        "random_forest_classifier_iris",
        &bytes,
        &x,
        m.predict(x.view()).unwrap(),
        m.predict_proba(x.view()).unwrap(),
    );
    eprintln!("random forest classifier, iris: max |native - onnx| = {diff:e}");
}

#[test]
fn binary_integer_labels_run_the_same_in_onnx() {
    binary_integer_labels_run_the_same_in_onnx_case(env_out().as_deref());
}

fn binary_integer_labels_run_the_same_in_onnx_case(out: Option<&Path>) {
    let (x, y) = binary_ints(200);
    let tree = DecisionTreeClassifier::params()
        .min_samples_leaf(5)
        .fit(x.view(), &y)
        .unwrap();
    let bytes = tree.to_onnx(&info(2)).to_bytes();
    check_classifier(
        out,
        "decision_tree_classifier_binary",
        &bytes,
        &x,
        tree.predict(x.view()).unwrap(),
        tree.predict_proba(x.view()).unwrap(),
    );
    let forest = RandomForestClassifier::params()
        .n_estimators(30)
        .max_depth(Some(4))
        .random_state(Some(4))
        .fit(x.view(), &y)
        .unwrap();
    let labels = forest.predict(x.view()).unwrap();
    assert!(labels.iter().any(|l| l == "-3") && labels.iter().any(|l| l == "7"));
    let bytes = forest.to_onnx(&info(2)).to_bytes();
    check_classifier(
        out,
        "random_forest_classifier_binary",
        &bytes,
        &x,
        labels,
        forest.predict_proba(x.view()).unwrap(),
    );
}

#[test]
fn decision_tree_regressor_runs_the_same_in_onnx() {
    decision_tree_regressor_runs_the_same_in_onnx_case(env_out().as_deref());
}

fn decision_tree_regressor_runs_the_same_in_onnx_case(out: Option<&Path>) {
    let (x, y) = synthetic_regression(400);
    let m = DecisionTreeRegressor::params().fit(x.view(), &y).unwrap();
    assert_eq!(m.score(x.view(), &y).unwrap(), 1.0);
    let bytes = m.to_onnx(&info(3)).to_bytes();
    let model = skiff_runtime::Model::from_bytes("t.onnx", &bytes).unwrap();
    assert_eq!(model.metadata()["skiff.task"], "regression");
    assert_eq!(
        model.metadata()["skiff.algorithm"],
        "decision-tree-regressor"
    );
    check_regressor(
        out,
        "decision_tree_regressor",
        &bytes,
        &x,
        m.predict(x.view()).unwrap(),
    );
    let (test_x, test_y) = synthetic_regression(200);
    let pruned = DecisionTreeRegressor::params()
        .min_samples_leaf(5)
        .fit(x.view(), &y)
        .unwrap();
    assert!(pruned.score(test_x.view(), &test_y).unwrap() > 0.8);
    let bytes = pruned.to_onnx(&info(3)).to_bytes();
    check_regressor(
        out,
        "decision_tree_regressor_leaf5",
        &bytes,
        &test_x,
        pruned.predict(test_x.view()).unwrap(),
    );
}

#[test]
fn random_forest_regressor_runs_the_same_in_onnx() {
    random_forest_regressor_runs_the_same_in_onnx_case(env_out().as_deref());
}

fn random_forest_regressor_runs_the_same_in_onnx_case(out: Option<&Path>) {
    let (x, y) = synthetic_regression(400);
    let (test_x, test_y) = synthetic_regression(200);
    let m = RandomForestRegressor::params()
        .n_estimators(50)
        .max_features(MaxFeatures::Fraction(0.67))
        .random_state(Some(8))
        .fit(x.view(), &y)
        .unwrap();
    assert!(m.score(test_x.view(), &test_y).unwrap() > 0.9);
    let bytes = m.to_onnx(&info(3)).to_bytes();
    let diff = check_regressor(
        out,
        "random_forest_regressor",
        &bytes,
        &test_x,
        m.predict(test_x.view()).unwrap(),
    );
    eprintln!("random forest regressor: max |native - onnx| = {diff:e}");
}

#[test]
fn unused_and_constant_features_still_load() {
    unused_and_constant_features_still_load_case(env_out().as_deref());
}

fn unused_and_constant_features_still_load_case(out: Option<&Path>) {
    // The last feature is constant, so no split uses it; the second forest is all leaves.
    let (x, y) = synthetic_regression(100);
    let mut wide = Array2::zeros((100, 4));
    wide.slice_mut(ndarray::s![.., ..3]).assign(&x);
    let m = DecisionTreeRegressor::params()
        .max_depth(Some(3))
        .fit(wide.view(), &y)
        .unwrap();
    assert!(m.tree.feature.iter().all(|&f| f < 3));
    let bytes = m.to_onnx(&info(4)).to_bytes();
    check_regressor(
        out,
        "decision_tree_regressor_unused_feature",
        &bytes,
        &wide,
        m.predict(wide.view()).unwrap(),
    );

    let flat = Array2::from_elem((6, 2), 1.0);
    let labels = ClassTarget::from_cells(&["a", "b", "a", "b", "a", "c"]).unwrap();
    let stumps = RandomForestClassifier::params()
        .n_estimators(3)
        .random_state(Some(0))
        .fit(flat.view(), &labels)
        .unwrap();
    assert!(stumps.trees.iter().all(|t| t.node_count() == 1));
    let bytes = stumps.to_onnx(&info(2)).to_bytes();
    check_classifier(
        out,
        "random_forest_classifier_all_leaves",
        &bytes,
        &flat,
        stumps.predict(flat.view()).unwrap(),
        stumps.predict_proba(flat.view()).unwrap(),
    );
}

/// Rows with gaps (NaN) in a numeric feature and a category-code feature, and the test rows
/// beyond: gaps, negative codes and a code training never saw.
fn gappy(n: usize, classes: usize) -> (Array2<f64>, ClassTarget, Vec<f64>, Array2<f64>) {
    let mut rng = ChaCha8Rng::seed_from_u64(31);
    let x = Array2::from_shape_fn((n, 3), |(i, j)| match j {
        0 if i % 5 == 0 => f64::NAN,
        0 => rng.random_range(-2.0..2.0),
        1 if i % 11 == 0 => f64::NAN,
        1 => (i % 6) as f64,
        _ => rng.random_range(0.0..1.0),
    });
    let score = |r: ndarray::ArrayView1<'_, f64>| {
        let a = if r[0].is_nan() { 1.5 } else { r[0] };
        let b = if r[1].is_nan() || r[1] == 2.0 || r[1] == 5.0 {
            1.0
        } else {
            -0.5
        };
        a + b + r[2]
    };
    let values: Vec<f64> = x.outer_iter().map(score).collect();
    let labels: Vec<String> = values
        .iter()
        .map(|v| {
            format!(
                "k{}",
                ((v + 3.0).max(0.0) as usize * classes / 7).min(classes - 1)
            )
        })
        .collect();
    let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
    let mut test = x.slice(ndarray::s![..40, ..]).to_owned();
    for (i, mut row) in test.outer_iter_mut().enumerate() {
        match i % 4 {
            0 => row[1] = -1.0,
            1 => row[1] = 9.0,
            2 => row[0] = f64::NAN,
            _ => {}
        }
    }
    (x, ClassTarget::from_cells(&labels).unwrap(), values, test)
}

#[test]
fn hist_gradient_boosting_runs_the_same_in_onnx() {
    hist_gradient_boosting_runs_the_same_in_onnx_case(env_out().as_deref());
}

fn hist_gradient_boosting_runs_the_same_in_onnx_case(out: Option<&Path>) {
    for classes in [2, 4] {
        let (x, y, _, test) = gappy(600, classes);
        let mut params = HistGradientBoostingClassifier::params();
        params.boosting.categorical_features = Some(CategoricalFeatures::Indices(vec![1]));
        params.boosting.max_iter = 30;
        let m = params.fit(x.view(), &y).unwrap();
        let bytes = m.to_onnx(&info(3)).to_bytes();
        check_classifier(
            out,
            &format!("hist_gradient_boosting_classifier_{classes}"),
            &bytes,
            &test,
            m.predict(test.view()).unwrap(),
            m.predict_proba(test.view()).unwrap(),
        );
    }
    for loss in [RegressionLoss::SquaredError, RegressionLoss::AbsoluteError] {
        let (x, _, values, test) = gappy(600, 2);
        let mut params = HistGradientBoostingRegressor::params();
        params.loss = loss;
        params.boosting.categorical_features = Some(CategoricalFeatures::Indices(vec![1]));
        let m = params.fit(x.view(), &values).unwrap();
        let bytes = m.to_onnx(&info(3)).to_bytes();
        check_regressor(
            out,
            &format!("hist_gradient_boosting_regressor_{loss:?}"),
            &bytes,
            &test,
            m.predict(test.view()).unwrap(),
        );
    }
}

#[test]
fn onnxruntime_agrees_with_native_predictions() {
    let python = std::env::var_os("SKIFF_TEST_PYTHON").unwrap_or_else(|| {
        panic!("SKIFF_TEST_PYTHON is not set: run the tests with scripts/test.sh, which installs onnxruntime")
    });
    let dir = std::env::temp_dir().join(format!("skiff-trees-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let out = Some(dir.as_path());
    decision_tree_classifier_on_iris_runs_the_same_in_onnx_case(out);
    random_forest_classifier_on_iris_runs_the_same_in_onnx_case(out);
    binary_integer_labels_run_the_same_in_onnx_case(out);
    decision_tree_regressor_runs_the_same_in_onnx_case(out);
    random_forest_regressor_runs_the_same_in_onnx_case(out);
    unused_and_constant_features_still_load_case(out);
    hist_gradient_boosting_runs_the_same_in_onnx_case(out);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/trees_onnxruntime.py");
    let result = std::process::Command::new(&python)
        .arg(&script)
        .arg(&dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.to_string_lossy()));
    let report = String::from_utf8_lossy(&result.stdout);
    eprintln!("{report}");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        result.status.success(),
        "onnxruntime disagrees:\n{report}{}",
        String::from_utf8_lossy(&result.stderr)
    );
    assert!(report.contains("0 failure(s)"), "{report}");
}
