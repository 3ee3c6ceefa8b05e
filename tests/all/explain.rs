//! `skiff explain` agrees with scikit-learn's `sklearn.inspection` on the same ONNX file:
//! scikit-learn's forests, converted by skl2onnx and run by onnxruntime inside a scikit-learn
//! estimator, against skiff running the file on tract.

use crate::*;
use serde_json::Value;

/// Fits a forest classifier (two classes) and a forest regressor, writes them through
/// skl2onnx with their test splits, and prints scikit-learn's permutation importance
/// (n_repeats=50) and partial dependence (brute) of each ONNX file, run by onnxruntime.
const SKLEARN: &str = r#"
import json, sys
import numpy as np, onnxruntime as ort, pandas as pd
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.datasets import make_classification, make_regression
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.inspection import partial_dependence, permutation_importance

out = sys.argv[1]

class Onnx(BaseEstimator):
    """An ONNX file as a fitted scikit-learn estimator, run by onnxruntime."""
    def __init__(self, path=None):
        self.path = path
    def fit(self, X, y=None):
        self.session_ = ort.InferenceSession(self.path, providers=["CPUExecutionProvider"])
        if is_classifier:
            self.classes_ = np.unique(y)
        return self
    def _run(self, X, output):
        return self.session_.run([output], {"input": np.asarray(X, dtype=np.float32)})[0]

class OnnxClassifier(ClassifierMixin, Onnx):
    def predict(self, X):
        return self._run(X, "label")
    def predict_proba(self, X):
        return self._run(X, "probabilities").astype(np.float64)

class OnnxRegressor(RegressorMixin, Onnx):
    def predict(self, X):
        return self._run(X, "variable").ravel().astype(np.float64)

report = {}
for kind in ["classifier", "regressor"]:
    is_classifier = kind == "classifier"
    if is_classifier:
        X, y = make_classification(n_samples=600, n_features=5, n_informative=3, n_redundant=0, random_state=0)
        est = RandomForestClassifier(n_estimators=30, max_depth=6, random_state=0)
        options, wrapper, scoring = {"zipmap": False}, OnnxClassifier, "accuracy"
    else:
        X, y = make_regression(n_samples=600, n_features=5, n_informative=3, noise=5.0, random_state=0)
        est = RandomForestRegressor(n_estimators=30, max_depth=6, random_state=0)
        options, wrapper, scoring = None, OnnxRegressor, "neg_mean_absolute_error"
    X = np.round(X, 4)
    columns = [f"f{i}" for i in range(5)]
    est.fit(X[:400], y[:400])
    onx = convert_sklearn(est, initial_types=[("input", FloatTensorType([None, 5]))], options=options)
    path = f"{out}/{kind}.onnx"
    open(path, "wb").write(onx.SerializeToString())
    test = pd.DataFrame(X[400:], columns=columns)
    test["y"] = y[400:]
    test.to_csv(f"{out}/{kind}.csv", index=False)
    Xt = test[columns].to_numpy()
    model = wrapper(path).fit(Xt, test["y"].to_numpy())
    pi = permutation_importance(model, Xt, test["y"].to_numpy(), scoring=scoring, n_repeats=50, random_state=0)
    baseline = float(model.score(Xt, test["y"])) if is_classifier else float(-np.mean(np.abs(model.predict(Xt) - test["y"])))
    pd_ = partial_dependence(model, Xt, [0], grid_resolution=20, percentiles=(0.05, 0.95), method="brute", kind="average")
    report[kind] = {
        "scoring": scoring,
        "baseline": baseline,
        "mean": pi.importances_mean.tolist(),
        "std": pi.importances_std.tolist(),
        "grid": pd_["grid_values"][0].tolist(),
        "average": pd_["average"].tolist(),
    }
print(json.dumps(report))
"#;

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

#[test]
fn importance_and_partial_dependence_agree_with_scikit_learn_on_the_same_onnx_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = python()
        .args(["-c", SKLEARN])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sklearn: Value = serde_json::from_slice(&out.stdout).unwrap();
    for kind in ["classifier", "regressor"] {
        let reference = &sklearn[kind];
        let model = dir.path().join(format!("{kind}.onnx"));
        let data = dir.path().join(format!("{kind}.csv"));
        let scoring = reference["scoring"].as_str().unwrap();
        let skiff_json = |args: &[&str]| -> Value {
            let text = ok(skiff()
                .arg("explain")
                .args(&args[..1])
                .arg(&model)
                .arg("--data")
                .arg(&data)
                .args(&args[1..])
                .arg("--json")
                .output()
                .unwrap());
            serde_json::from_str(&text).unwrap()
        };
        let importance = skiff_json(&[
            "importance",
            "--target",
            "y",
            "--scoring",
            scoring,
            "--n-repeats",
            "50",
        ]);
        let baseline = importance["baseline"].as_f64().unwrap();
        let expected = reference["baseline"].as_f64().unwrap();
        assert!(
            (baseline - expected).abs() <= 1e-6 * expected.abs().max(1.0),
            "{kind}: baseline {baseline} vs scikit-learn's {expected}"
        );
        let (means, stds) = (floats(&reference["mean"]), floats(&reference["std"]));
        let features = importance["importances"].as_array().unwrap();
        assert_eq!(features.len(), 5, "{importance}");
        for (j, feature) in features.iter().enumerate() {
            assert_eq!(feature["feature"], format!("f{j}"));
            assert_eq!(feature["raw"].as_array().unwrap().len(), 50);
            let (mean, std) = (
                feature["mean"].as_f64().unwrap(),
                feature["std"].as_f64().unwrap(),
            );
            // Different shuffles of the same rows: the two means' difference within three of
            // its standard errors.
            let error = ((std * std + stds[j] * stds[j]) / 50.0).sqrt();
            assert!(
                (mean - means[j]).abs() <= 3.0 * error + 1e-9,
                "{kind} f{j}: importance {mean} ± {std} vs scikit-learn's {} ± {}",
                means[j],
                stds[j]
            );
        }
        // The informative features matter and the rest do not, as scikit-learn finds.
        let top = |m: &[f64]| (0..5).max_by(|&a, &b| m[a].total_cmp(&m[b])).unwrap();
        let ours: Vec<f64> = features
            .iter()
            .map(|f| f["mean"].as_f64().unwrap())
            .collect();
        assert_eq!(top(&ours), top(&means), "{kind}: {ours:?} vs {means:?}");

        let pdp = skiff_json(&[
            "pdp",
            "--feature",
            "f0",
            "--target",
            "y",
            "--grid-resolution",
            "20",
        ]);
        let grid = floats(&pdp["grid_values"]);
        let expected_grid = floats(&reference["grid"]);
        assert_eq!(grid.len(), expected_grid.len());
        for (g, e) in grid.iter().zip(&expected_grid) {
            assert!(
                (g - e).abs() <= 1e-9 * e.abs().max(1.0),
                "{kind}: grid {grid:?} vs {expected_grid:?}"
            );
        }
        let average: Vec<Vec<f64>> = pdp["average"]
            .as_array()
            .unwrap()
            .iter()
            .map(floats)
            .collect();
        let expected: Vec<Vec<f64>> = reference["average"]
            .as_array()
            .unwrap()
            .iter()
            .map(floats)
            .collect();
        assert_eq!(
            average.len(),
            expected.len(),
            "{kind}: one line per output as scikit-learn"
        );
        // To 1e-6 of the line's scale: the model computes in float32, and tract and
        // onnxruntime add a forest's leaves in different orders (a float32 ulp of 64 is 8e-6).
        let scale = expected
            .iter()
            .flatten()
            .fold(1.0f64, |m, e| m.max(e.abs()));
        for (a, e) in average.iter().flatten().zip(expected.iter().flatten()) {
            assert!(
                (a - e).abs() <= 1e-6 * scale,
                "{kind}: {average:?} vs {expected:?}"
            );
        }
    }
}

#[test]
fn a_table_with_text_columns_is_explained_column_by_column_and_plotted() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("penguins.onnx");
    let (train, test) = (
        example("../tests/data/penguins/train.csv"),
        example("../tests/data/penguins/test.csv"),
    );
    ok(skiff()
        .args(["fit", "logistic-regression", "--data"])
        .arg(&train)
        .args(["--target", "species", "-o"])
        .arg(&model)
        .output()
        .unwrap());
    // `skiff explain KIND penguins.onnx --data test.csv ARGS...`
    let explain = |kind: &str, args: &[&str]| {
        let mut command = skiff();
        command
            .args(["explain", kind])
            .arg(&model)
            .arg("--data")
            .arg(&test);
        command.args(args).output().unwrap()
    };
    let text = ok(explain("importance", &["--target", "species", "--json"]));
    let importance: Value = serde_json::from_str(&text).unwrap();
    let names: Vec<&str> = importance["importances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["feature"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"island") && names.contains(&"bill_length_mm"),
        "{names:?}"
    );
    assert!(!names.contains(&"species"));
    let plot = dir.path().join("island.svg");
    let plot_arg = plot.to_str().unwrap();
    let text = ok(explain("pdp", &["--feature", "island", "--plot", plot_arg]));
    // One row per island, one column per species' probability, each row's adding up to 1.
    let (header, rows) = read_csv(&text);
    assert_eq!(header, ["island", "Adelie", "Chinstrap", "Gentoo"]);
    let islands: Vec<&str> = rows.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(islands, ["Biscoe", "Dream", "Torgersen"]);
    for row in &rows {
        let total: f64 = row[1..].iter().map(|p| p.parse::<f64>().unwrap()).sum();
        assert!((total - 1.0).abs() < 1e-5, "{row:?}");
    }
    // A text column's gaps (NA) are no value of its grid.
    let (_, rows) = read_csv(&ok(explain("pdp", &["--feature", "sex"])));
    let sexes: Vec<&str> = rows.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(sexes, ["female", "male"]);
    let svg = std::fs::read_to_string(&plot).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("Torgersen") && svg.contains("Gentoo"));

    // Bad requests: one line naming the fix, nothing written.
    let bad_plot = dir.path().join("island.png");
    let bad_arg = bad_plot.to_str().unwrap();
    fails_with(
        explain("pdp", &["--feature", "island", "--plot", bad_arg]),
        &["draws SVG", ".svg"],
    );
    fails_with(
        explain("pdp", &["--feature", "wingspan"]),
        &["no feature \"wingspan\"", "island"],
    );
    fails_with(
        explain("importance", &["--target", "species", "--scoring", "r2"]),
        &["--scoring r2", "accuracy"],
    );
    assert!(!bad_plot.exists());
}
