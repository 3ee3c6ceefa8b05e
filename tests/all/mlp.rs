//! skiff's fitted MLP is scikit-learn's model: its weights, copied out of the exported file into
//! a scikit-learn `MLPClassifier`/`MLPRegressor`'s `coefs_` and `intercepts_`, give the
//! probabilities `skiff predict` gives (to 1e-5), and the regressor's values.

use crate::*;

/// Copies the Gemm weights of an exported MLP into scikit-learn's estimator and prints
/// scikit-learn's predictions on the test rows, as JSON.
const SKLEARN: &str = r#"
import json, sys
import numpy as np, onnx, pandas as pd
from onnx import numpy_helper
from sklearn.neural_network import MLPClassifier, MLPRegressor

model_path, train, test, target, kind, activation = sys.argv[1:]
model = onnx.load(model_path)
weights = {i.name: numpy_helper.to_array(i).astype(np.float64) for i in model.graph.initializer}
layers = [(weights[n.input[1]], weights[n.input[2]]) for n in model.graph.node if n.op_type == "Gemm"]
train, test = pd.read_csv(train), pd.read_csv(test)
X, y = train.drop(columns=target).to_numpy(), train[target]
hidden = tuple(w.shape[1] for w, _ in layers[:-1])
est = (MLPClassifier if kind == "classifier" else MLPRegressor)(
    hidden_layer_sizes=hidden, activation=activation, max_iter=1, random_state=0)
import warnings
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    est.fit(X, y)  # sets classes_, n_layers_ and out_activation_
est.coefs_ = [w for w, _ in layers]
est.intercepts_ = [b for _, b in layers]
Xt = test.drop(columns=target).to_numpy()
out = est.predict_proba(Xt) if kind == "classifier" else est.predict(Xt).reshape(-1, 1)
print(json.dumps({"values": out.tolist(), "classes": [str(c) for c in getattr(est, "classes_", [])]}))
"#;

fn check(kind: &str, algorithm: &str, dataset: &str, target: &str, set: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("mlp.onnx");
    let (train, test) = (
        example("..").join(dataset).join("train.csv"),
        example("..").join(dataset).join("test.csv"),
    );
    let mut fit = skiff();
    fit.args(["fit", algorithm, "--data"])
        .arg(&train)
        .args(["--target", target, "-o"])
        .arg(&model);
    for s in set {
        fit.args(["--set", s]);
    }
    ok(fit.output().unwrap());
    let activation = set
        .iter()
        .find_map(|s| s.strip_prefix("activation="))
        .unwrap_or("relu");
    let out = python()
        .args(["-c", SKLEARN])
        .arg(&model)
        .arg(&train)
        .arg(&test)
        .args([target, kind, activation])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sklearn: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let predicted = dir.path().join("predicted.csv");
    let mut predict = skiff();
    predict
        .args(["predict"])
        .arg(&model)
        .arg("--data")
        .arg(&test)
        .arg("-o")
        .arg(&predicted);
    if kind == "classifier" {
        predict.arg("--proba");
    }
    ok(predict.output().unwrap());
    let (header, rows) = read_csv(&std::fs::read_to_string(&predicted).unwrap());
    let columns: Vec<usize> = if kind == "classifier" {
        let classes = sklearn["classes"].as_array().unwrap();
        classes
            .iter()
            .map(|c| {
                let name = format!("p_{}", c.as_str().unwrap());
                header
                    .iter()
                    .position(|h| *h == name)
                    .unwrap_or_else(|| panic!("no column {name} in {header:?}"))
            })
            .collect()
    } else {
        vec![header.len() - 1]
    };
    let expected = sklearn["values"].as_array().unwrap();
    assert_eq!(rows.len(), expected.len());
    let mut largest: f64 = 0.0;
    for (row, want) in rows.iter().zip(expected) {
        for (&c, want) in columns.iter().zip(want.as_array().unwrap()) {
            let (got, want) = (row[c].parse::<f64>().unwrap(), want.as_f64().unwrap());
            // Probabilities to 1e-5; values, computed in float32 by the graph, to 1e-4 of their
            // size.
            let tolerance = if kind == "classifier" {
                1e-5
            } else {
                1e-4 * want.abs().max(1.0)
            };
            assert!(
                (got - want).abs() <= tolerance,
                "{algorithm} on {dataset}: skiff {got} vs scikit-learn {want}"
            );
            largest = largest.max((got - want).abs());
        }
    }
    eprintln!("{algorithm} on {dataset} {set:?}: largest difference {largest:.2e}");
}

#[test]
fn scikit_learn_with_skiffs_mlp_weights_predicts_the_same() {
    check(
        "classifier",
        "mlp-classifier",
        "examples/iris",
        "species",
        &["random_state=0", "max_iter=500"],
    );
    check(
        "classifier",
        "mlp-classifier",
        "tests/data/breast_cancer",
        "diagnosis",
        &[
            "random_state=1",
            "activation=tanh",
            "hidden_layer_sizes=20,10",
            "solver=lbfgs",
        ],
    );
    check(
        "regressor",
        "mlp-regressor",
        "tests/data/diabetes",
        "progression",
        &[
            "random_state=0",
            "activation=logistic",
            "solver=lbfgs",
            "max_iter=300",
        ],
    );
}
