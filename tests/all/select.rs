//! Model selection: `skiff cv` scores each fold as scikit-learn's `cross_validate` does on the
//! same folds, `skiff tune` picks the grid point `GridSearchCV` picks and records it in the
//! model, and bad input gets one-line errors and no file.

use crate::*;
use serde_json::Value;

/// scikit-learn's fold scores and searches, computed live: `cv` prints the fold scores of
/// `cross_validate` for each case, `tune` GridSearchCV's best point and the metadata of the
/// model skiff wrote.
const SKLEARN: &str = r#"
import json, sys
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import GridSearchCV, KFold, StratifiedKFold, cross_validate
from sklearn.naive_bayes import GaussianNB
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder
from sklearn.tree import DecisionTreeClassifier

def read(path, target):
    d = pd.read_csv(path)
    return d.drop(columns=target), d[target]

mode = sys.argv[1]
if mode == "cv":
    iris, diabetes, penguins = sys.argv[2:]
    X, y = read(iris, "species")
    out = {}
    for name, est in [("gaussian-nb", GaussianNB()), ("logistic-regression", LogisticRegression())]:
        r = cross_validate(est, X, y, cv=StratifiedKFold(5, shuffle=False), scoring=["accuracy", "f1_macro"])
        out[name] = {"accuracy": r["test_accuracy"].tolist(), "f1_macro": r["test_f1_macro"].tolist()}
    X, y = read(diabetes, "progression")
    r = cross_validate(Ridge(), X, y, cv=KFold(5), scoring=["r2", "neg_mean_absolute_error"])
    out["ridge"] = {"r2": r["test_r2"].tolist(), "neg_mean_absolute_error": r["test_neg_mean_absolute_error"].tolist()}
    # A table with text and gaps: the preprocessing is fitted on each fold's training rows.
    X, y = read(penguins, "species")
    text = ["island", "sex"]
    numbers = [c for c in X.columns if c not in text]
    pipeline = make_pipeline(ColumnTransformer([
        ("num", SimpleImputer(strategy="median"), numbers),
        ("cat", make_pipeline(SimpleImputer(strategy="most_frequent"),
                              OneHotEncoder(handle_unknown="ignore", sparse_output=False)), text),
    ]), GaussianNB())
    r = cross_validate(pipeline, X, y, cv=StratifiedKFold(5), scoring=["accuracy", "neg_log_loss"])
    out["penguins"] = {"accuracy": r["test_accuracy"].tolist(), "neg_log_loss": r["test_neg_log_loss"].tolist()}
    print(json.dumps(out))
else:
    import onnxruntime as ort
    iris, model = sys.argv[2:]
    X, y = read(iris, "species")
    search = GridSearchCV(DecisionTreeClassifier(random_state=0),
                          {"max_depth": [1, 2, 3, 5], "min_samples_leaf": [1, 5]},
                          cv=StratifiedKFold(5, shuffle=False)).fit(X, y)
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    meta = session.get_modelmeta().custom_metadata_map
    print(json.dumps({"best_params": search.best_params_, "metadata": meta}))
"#;

fn sklearn(args: &[&std::ffi::OsStr]) -> Value {
    let out = python().args(["-c", SKLEARN]).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn cv_json(algorithm: &str, data: &Path, target: &str, extra: &[&str]) -> Value {
    serde_json::from_str(&ok(skiff()
        .args(["cv", algorithm, "--data"])
        .arg(data)
        .args(["--target", target, "--json"])
        .args(extra)
        .output()
        .unwrap()))
    .unwrap()
}

fn assert_folds_equal(skiff: &Value, sklearn: &Value, what: &str) {
    let got: Vec<f64> = serde_json::from_value(skiff["folds"].clone()).unwrap();
    let want: Vec<f64> = serde_json::from_value(sklearn.clone()).unwrap();
    assert_eq!(got.len(), want.len(), "{what}");
    for (fold, (g, w)) in got.iter().zip(&want).enumerate() {
        assert!(
            (g - w).abs() <= 1e-9,
            "{what}, fold {fold}: skiff {g} vs scikit-learn {w} (all: {got:?} vs {want:?})"
        );
    }
    let mean = want.iter().sum::<f64>() / want.len() as f64;
    let std = (want.iter().map(|w| (w - mean).powi(2)).sum::<f64>() / want.len() as f64).sqrt();
    assert!(
        (skiff["mean"].as_f64().unwrap() - mean).abs() <= 1e-9,
        "{what}"
    );
    assert!(
        (skiff["std"].as_f64().unwrap() - std).abs() <= 1e-9,
        "{what}"
    );
}

#[test]
fn cv_scores_each_fold_as_scikit_learn_cross_validate() {
    let iris = example("iris/train.csv");
    let diabetes = example("../tests/data/diabetes/train.csv");
    let penguins = example("../tests/data/penguins/train.csv");
    let reference = sklearn(&[
        "cv".as_ref(),
        iris.as_ref(),
        diabetes.as_ref(),
        penguins.as_ref(),
    ]);

    for algorithm in ["gaussian-nb", "logistic-regression"] {
        let report = cv_json(
            algorithm,
            &iris,
            "species",
            &["--stratified", "--scoring", "accuracy,f1_macro"],
        );
        assert_eq!(report["cv"]["splitter"], "StratifiedKFold");
        assert_eq!(report["rows"], 112);
        for metric in ["accuracy", "f1_macro"] {
            assert_folds_equal(
                &report["metrics"][metric],
                &reference[algorithm][metric],
                &format!("{algorithm} {metric}"),
            );
        }
        let folds = report["folds"].as_array().unwrap();
        assert_eq!(folds.len(), 5);
        assert!(folds.iter().all(|f| f["fit_time"].as_f64().unwrap() >= 0.0));
        let tested: u64 = folds.iter().map(|f| f["test_rows"].as_u64().unwrap()).sum();
        assert_eq!(tested, 112, "every row is tested once");
    }
    // A classifier is stratified without asking, as cross_val_score does with cv=5.
    let plain = cv_json("gaussian-nb", &iris, "species", &[]);
    assert_eq!(plain["cv"]["splitter"], "StratifiedKFold");
    assert_folds_equal(
        &plain["metrics"]["accuracy"],
        &reference["gaussian-nb"]["accuracy"],
        "gaussian-nb, default folds",
    );

    // A regressor gets plain k-fold.
    let report = cv_json(
        "ridge",
        &diabetes,
        "progression",
        &["--scoring", "r2,neg_mean_absolute_error"],
    );
    assert_eq!(report["cv"]["splitter"], "KFold");
    for metric in ["r2", "neg_mean_absolute_error"] {
        assert_folds_equal(
            &report["metrics"][metric],
            &reference["ridge"][metric],
            &format!("ridge {metric}"),
        );
    }

    let report = cv_json(
        "gaussian-nb",
        &penguins,
        "species",
        &["--scoring", "accuracy,neg_log_loss"],
    );
    for metric in ["accuracy", "neg_log_loss"] {
        assert_folds_equal(
            &report["metrics"][metric],
            &reference["penguins"][metric],
            &format!("penguins gaussian-nb {metric}"),
        );
    }

    // The text summary: mean ± std per metric.
    let text = ok(skiff()
        .args(["cv", "ridge", "--data"])
        .arg(&diabetes)
        .args(["--target", "progression"])
        .output()
        .unwrap());
    assert!(text.contains("5 folds"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("r2") && l.contains(" ± ")),
        "{text}"
    );
}

#[test]
fn tune_picks_grid_search_cvs_point_and_records_it_in_the_model() {
    let dir = tempfile::tempdir().unwrap();
    let iris = example("iris/train.csv");
    let model = dir.path().join("tuned.onnx");
    let tune = |extra: &[&str], model: &Path| -> Value {
        serde_json::from_str(&ok(skiff()
            .args(["tune", "decision-tree-classifier", "--data"])
            .arg(&iris)
            .args(["--target", "species"])
            .args([
                "--grid",
                "max_depth=1,2,3,5",
                "--grid",
                "min_samples_leaf=1,5",
            ])
            .args(["--set", "random_state=0", "--json", "-o"])
            .arg(model)
            .args(extra)
            .output()
            .unwrap()))
        .unwrap()
    };
    let report = tune(&[], &model);
    let reference = sklearn(&["tune".as_ref(), iris.as_ref(), model.as_ref()]);
    assert_eq!(
        report["best"]["params"], reference["best_params"],
        "{report}"
    );
    let candidates = report["candidates"].as_array().unwrap();
    assert_eq!(candidates.len(), 8);
    // ParameterGrid's order: names sorted, the last varying fastest.
    assert_eq!(
        candidates[1]["params"],
        serde_json::json!({"max_depth": 1, "min_samples_leaf": 5})
    );
    assert_eq!(report["hyperparameters"]["random_state"], 0);

    let search: Value =
        serde_json::from_str(reference["metadata"]["skiff.search"].as_str().unwrap()).unwrap();
    assert_eq!(search["params"], reference["best_params"]);
    assert_eq!(search["scoring"], "accuracy");
    assert_eq!(search["candidates"], 8);
    assert_eq!(search["folds"], 5);
    assert_eq!(search["mean_score"], report["best"]["mean"]);
    let hyperparameters: Value = serde_json::from_str(
        reference["metadata"]["skiff.hyperparameters"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        hyperparameters["max_depth"],
        reference["best_params"]["max_depth"]
    );

    // The text report: a row per candidate, the best, the file.
    let text = ok(skiff()
        .args(["tune", "decision-tree-classifier", "--data"])
        .arg(&iris)
        .args(["--target", "species", "--grid", "max_depth=1,3"])
        .arg("-o")
        .arg(dir.path().join("text.onnx"))
        .output()
        .unwrap());
    assert!(
        text.contains("rank") && text.contains("max_depth"),
        "{text}"
    );
    assert!(text.contains("best: max_depth=3"), "{text}");

    // A random search: as many candidates as asked, the same ones for the same seed.
    let random = |path: &str| {
        let report = tune(&["--random", "3", "--seed", "7"], &dir.path().join(path));
        assert_eq!(report["method"], "random");
        let params: Vec<Value> = report["candidates"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["params"].clone())
            .collect();
        assert_eq!(params.len(), 3);
        params
    };
    assert_eq!(random("a.onnx"), random("b.onnx"));
}

#[test]
fn bad_selection_input_is_a_one_line_error_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let iris = example("iris/train.csv");
    let diabetes = example("../tests/data/diabetes/train.csv");
    let model = dir.path().join("model.onnx");
    let tune = |extra: &[&str]| {
        skiff()
            .args(["tune", "decision-tree-classifier", "--data"])
            .arg(&iris)
            .args(["--target", "species", "-o"])
            .arg(&model)
            .args(extra)
            .output()
            .unwrap()
    };
    fails_with(tune(&["--grid", "max_depth"]), &["--grid", "NAME=V1,V2"]);
    fails_with(
        tune(&["--grid", "depth=1,2"]),
        &["no hyperparameter \"depth\"", "max_depth"],
    );
    fails_with(
        tune(&["--grid", "max_depth=1,deep"]),
        &["max_depth=deep", "whole number"],
    );
    fails_with(tune(&["--grid", "max_depth=1,,3"]), &["max_depth", "empty"]);
    fails_with(
        tune(&["--grid", "max_depth=2", "--folds", "500"]),
        &["112 rows", "500 folds"],
    );
    fails_with(
        tune(&["--grid", "max_depth=2", "--scoring", "r2"]),
        &["r2", "classifier", "accuracy"],
    );
    assert_only_files(dir.path(), &[]);

    let cv = |algorithm: &str, data: &Path, target: &str, extra: &[&str]| {
        skiff()
            .args(["cv", algorithm, "--data"])
            .arg(data)
            .args(["--target", target])
            .args(extra)
            .output()
            .unwrap()
    };
    fails_with(
        cv("ridge", &diabetes, "progression", &["--stratified"]),
        &["--stratified", "ridge"],
    );
    fails_with(
        cv("gaussian-nb", &iris, "species", &["--folds", "113"]),
        &["112 rows", "113 folds"],
    );
    fails_with(
        cv("gaussian-nb", &iris, "species", &["--folds", "1"]),
        &["2 folds or more"],
    );
    fails_with(
        cv("gaussian-nb", &iris, "species", &["--scoring", "f1"]),
        &["unknown scoring \"f1\"", "f1_macro"],
    );
    fails_with(
        cv("gaussian-nb", &iris, "species", &["--seed", "3"]),
        &["--shuffle"],
    );
    fails_with(cv("kmeans", &iris, "species", &[]), &["clusterer"]);
}
