//! `skiff fairness` agrees with Fairlearn: the same MetricFrame (overall, by group, min, max,
//! difference and ratio by both methods), demographic parity and equalized odds, on skiff's
//! own predictions, with and without weights, for one sensitive feature and intersectional
//! groups, for a classifier and a regressor.

use crate::*;
use serde_json::Value;

/// Writes a table where the outcome depends on the groups, for a classifier (`y`, 0/1) and a
/// regressor (`amount`), with a column of row weights.
const DATA: &str = r#"
import sys
import numpy as np, pandas as pd
rng = np.random.default_rng(0)
out = sys.argv[1]
for split, n in [("train", 800), ("test", 400)]:
    sex = rng.choice(["female", "male"], n, p=[0.4, 0.6])
    race = rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2])
    x = np.round(rng.normal(size=(n, 3)), 3)
    shift = (sex == "male") * 0.8 + (race == "c") * -0.6
    y = (x[:, 0] + 0.5 * x[:, 1] + shift + rng.normal(scale=0.8, size=n) > 0.4).astype(int)
    amount = np.round(10 + 3 * x[:, 0] + 2 * shift + rng.normal(scale=2, size=n), 3)
    table = pd.DataFrame({"x0": x[:, 0], "x1": x[:, 1], "x2": x[:, 2], "sex": sex, "race": race})
    table.assign(y=y).to_csv(f"{out}/{split}_y.csv", index=False)
    table.assign(amount=amount).to_csv(f"{out}/{split}_amount.csv", index=False)
    if split == "test":
        weights = np.round(rng.uniform(0.2, 3.0, n), 3)
        table.assign(y=y, amount=amount, weight=weights).to_csv(f"{out}/test.csv", index=False)
"#;

/// Fairlearn's frame of skiff's predictions (argv: test.csv, predictions.csv, target, weighted,
/// sensitive columns, metrics), as skiff's --json writes its frame.
const FAIRLEARN: &str = r#"
import json, sys
import numpy as np, pandas as pd
from fairlearn.metrics import (MetricFrame, count, demographic_parity_difference, demographic_parity_ratio,
    equalized_odds_difference, equalized_odds_ratio, false_negative_rate, false_positive_rate, mean_prediction,
    selection_rate, true_negative_rate, true_positive_rate)
from sklearn.metrics import (accuracy_score, balanced_accuracy_score, f1_score, mean_absolute_error,
    mean_squared_error, precision_score, r2_score, root_mean_squared_error)

test_csv, predictions_csv, target, weighted, sensitive, metrics = sys.argv[1:]
test, predicted = pd.read_csv(test_csv), pd.read_csv(predictions_csv)["prediction"]
if target != "y":  # skiff's float32 values, as the shortest text that reads back as them
    predicted = predicted.astype(np.float32).astype(np.float64)
functions = {
    "accuracy": accuracy_score, "balanced_accuracy": balanced_accuracy_score, "selection_rate": selection_rate,
    "tpr": true_positive_rate, "fpr": false_positive_rate, "tnr": true_negative_rate, "fnr": false_negative_rate,
    "precision": lambda t, p, **k: precision_score(t, p, zero_division=0, **k), "f1": f1_score, "count": count,
    "r2": r2_score, "mae": mean_absolute_error, "mse": mean_squared_error, "rmse": root_mean_squared_error,
    "mean_prediction": mean_prediction,
}
names = metrics.split(",")
weights = test["weight"].to_numpy() if weighted == "1" else None
sensitive = test[sensitive.split(",")]
params = {m: {"sample_weight": weights} for m in names if m != "count" and weights is not None}
frame = MetricFrame(metrics={m: functions[m] for m in names}, y_true=test[target], y_pred=predicted,
                    sensitive_features=sensitive, sample_params=params)
def values(series):
    return [None if pd.isna(series[m]) else float(series[m]) for m in names]
by_group = frame.by_group
report = {
    "overall": values(frame.overall),
    "groups": [[str(k) for k in (key if isinstance(key, tuple) else (key,))] for key in by_group.index],
    "by_group": [values(by_group.loc[key]) for key in by_group.index],
    "group_min": values(frame.group_min()), "group_max": values(frame.group_max()),
}
for method in ["between_groups", "to_overall"]:
    report[method] = {"difference": values(frame.difference(method=method)), "ratio": values(frame.ratio(method=method))}
    if target == "y":
        args = dict(sensitive_features=sensitive, method=method, sample_weight=weights)
        report[method]["parity"] = {
            "demographic_parity_difference": demographic_parity_difference(test[target], predicted, **args),
            "demographic_parity_ratio": demographic_parity_ratio(test[target], predicted, **args),
            "equalized_odds_difference": equalized_odds_difference(test[target], predicted, **args),
            "equalized_odds_ratio": equalized_odds_ratio(test[target], predicted, **args),
        }
print(json.dumps(report))
"#;

/// Asserts `ours` (skiff's JSON numbers, null for NaN) equals Fairlearn's to 1e-12.
fn assert_close(what: &str, ours: &Value, theirs: &Value) {
    let as_list = |v: &Value| -> Vec<Option<f64>> {
        match v {
            Value::Array(items) => items.iter().map(Value::as_f64).collect(),
            other => vec![other.as_f64()],
        }
    };
    let (a, b) = (as_list(ours), as_list(theirs));
    assert_eq!(a.len(), b.len(), "{what}: {ours} vs Fairlearn's {theirs}");
    for (x, y) in a.iter().zip(&b) {
        match (x, y) {
            (Some(x), Some(y)) => assert!(
                (x - y).abs() <= 1e-12 * y.abs().max(1.0),
                "{what}: {ours} vs Fairlearn's {theirs}"
            ),
            (None, None) => {}
            _ => panic!("{what}: {ours} vs Fairlearn's {theirs}"),
        }
    }
}

#[test]
fn fairness_agrees_with_fairlearn_for_classifiers_and_regressors() {
    let dir = tempfile::tempdir().unwrap();
    let made = python()
        .args(["-c", DATA])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let test = dir.path().join("test.csv");
    let cases: &[(&str, &str, &str)] = &[
        (
            "logistic-regression",
            "y",
            "accuracy,balanced_accuracy,selection_rate,tpr,fpr,tnr,fnr,precision,f1,count",
        ),
        (
            "linear-regression",
            "amount",
            "r2,mae,mse,rmse,mean_prediction,count",
        ),
    ];
    for &(algorithm, target, metrics) in cases {
        let model = dir.path().join(format!("{target}.onnx"));
        ok(skiff()
            .args(["fit", algorithm, "--data"])
            .arg(dir.path().join(format!("train_{target}.csv")))
            .args(["--target", target, "-o"])
            .arg(&model)
            .output()
            .unwrap());
        let predictions = dir.path().join(format!("{target}_predicted.csv"));
        ok(skiff()
            .arg("predict")
            .arg(&model)
            .arg("--data")
            .arg(&test)
            .arg("-o")
            .arg(&predictions)
            .output()
            .unwrap());
        for sensitive in ["sex", "sex,race"] {
            for weighted in [false, true] {
                let reference = python()
                    .args(["-c", FAIRLEARN])
                    .arg(&test)
                    .arg(&predictions)
                    .args([target, if weighted { "1" } else { "0" }, sensitive, metrics])
                    .output()
                    .unwrap();
                assert!(
                    reference.status.success(),
                    "{}",
                    String::from_utf8_lossy(&reference.stderr)
                );
                let reference: Value = serde_json::from_slice(&reference.stdout).unwrap();
                for method in ["between_groups", "to_overall"] {
                    let mut command = skiff();
                    command
                        .arg("fairness")
                        .arg(&model)
                        .arg("--data")
                        .arg(&test)
                        .args([
                            "--target",
                            target,
                            "--sensitive",
                            sensitive,
                            "--metrics",
                            metrics,
                            "--method",
                            method,
                            "--json",
                        ]);
                    if weighted {
                        command.args(["--sample-weight", "weight"]);
                    }
                    let frame: Value =
                        serde_json::from_str(&ok(command.output().unwrap())).unwrap();
                    let case = format!("{target} by {sensitive}, weighted {weighted}, {method}");
                    assert_close(
                        &format!("{case}: overall"),
                        &frame["overall"],
                        &reference["overall"],
                    );
                    let groups = frame["by_group"].as_array().unwrap();
                    let names: Vec<Value> = groups.iter().map(|g| g["values"].clone()).collect();
                    assert_eq!(
                        Value::from(names),
                        reference["groups"],
                        "{case}: the groups, in Fairlearn's order"
                    );
                    for (group, theirs) in
                        groups.iter().zip(reference["by_group"].as_array().unwrap())
                    {
                        assert_close(
                            &format!("{case}: group {}", group["values"]),
                            &group["metrics"],
                            theirs,
                        );
                    }
                    assert_close(
                        &format!("{case}: group_min"),
                        &frame["group_min"],
                        &reference["group_min"],
                    );
                    assert_close(
                        &format!("{case}: group_max"),
                        &frame["group_max"],
                        &reference["group_max"],
                    );
                    assert_close(
                        &format!("{case}: difference"),
                        &frame["difference"],
                        &reference[method]["difference"],
                    );
                    assert_close(
                        &format!("{case}: ratio"),
                        &frame["ratio"],
                        &reference[method]["ratio"],
                    );
                    if target == "y" {
                        for (name, theirs) in reference[method]["parity"].as_object().unwrap() {
                            assert_close(
                                &format!("{case}: {name}"),
                                &frame["parity"][name],
                                theirs,
                            );
                        }
                    }
                }
            }
        }
    }
    // A label that is not there, and a column that is not there: one line with the fix.
    let model = dir.path().join("y.onnx");
    for (sensitive, extra, needle) in [
        ("sex", &["--pos-label", "yes"][..], "--pos-label"),
        ("religion", &[][..], "religion"),
    ] {
        let mut command = skiff();
        command.arg("fairness").arg(&model).arg("--data").arg(&test);
        command
            .args(["--target", "y", "--sensitive", sensitive])
            .args(extra);
        fails_with(command.output().unwrap(), &[needle]);
    }
}
