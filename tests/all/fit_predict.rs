//! `skiff fit` and `skiff predict` on iris.

use crate::*;

#[test]
fn iris_test_accuracy_is_at_least_093() {
    let dir = tempfile::tempdir().unwrap();
    let model = iris_model(dir.path());
    let test = example("iris/test.csv");
    let out = predict(&model, &test, &[]);
    let (header, predictions) = read_csv(&out);
    assert_eq!(header, ["prediction"]);
    let (test_header, rows) = read_csv(&std::fs::read_to_string(&test).unwrap());
    let species = test_header.iter().position(|h| h == "species").unwrap();
    assert_eq!(predictions.len(), rows.len());
    let correct = predictions
        .iter()
        .zip(&rows)
        .filter(|(p, r)| p[0] == r[species])
        .count();
    let accuracy = correct as f64 / rows.len() as f64;
    assert!(accuracy >= 0.93, "test accuracy {accuracy:.3} < 0.93");
}

#[test]
fn fit_prints_a_summary_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("m.onnx");
    let train = example("iris/train.csv");
    let args = [
        "fit",
        "logistic-regression",
        "--data",
        train.to_str().unwrap(),
        "--target",
        "species",
    ];
    let text = ok(skiff()
        .args(args)
        .args(["-o", model.to_str().unwrap()])
        .output()
        .unwrap());
    for needle in [
        "112 rows",
        "4 features",
        "3 classes",
        "setosa, versicolor, virginica",
        "training accuracy: 0.9",
    ] {
        assert!(text.contains(needle), "summary lacks {needle:?}:\n{text}");
    }
    let json = ok(skiff()
        .args(args)
        .args(["-o", model.to_str().unwrap(), "--json", "--set", "C=0.5"])
        .output()
        .unwrap());
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["rows"], 112);
    assert_eq!(
        v["classes"],
        serde_json::json!(["setosa", "versicolor", "virginica"])
    );
    assert_eq!(v["hyperparameters"]["C"], 0.5);
    assert!(v["training_accuracy"].as_f64().unwrap() > 0.9);
}

#[test]
fn predict_matches_columns_by_name_and_writes_probabilities() {
    let dir = tempfile::tempdir().unwrap();
    let model = iris_model(dir.path());
    // The test rows with columns reversed and the target first: matched by name, not position.
    let (header, rows) = read_csv(&std::fs::read_to_string(example("iris/test.csv")).unwrap());
    let reorder = |r: &Vec<String>| r.iter().rev().cloned().collect::<Vec<_>>().join(",");
    let shuffled = std::iter::once(reorder(&header))
        .chain(rows.iter().map(reorder))
        .collect::<Vec<_>>()
        .join("\n");
    let data = dir.path().join("shuffled.csv");
    std::fs::write(&data, shuffled + "\n").unwrap();
    let preds = dir.path().join("preds.csv");
    let out = predict(&model, &data, &["--proba", "-o", preds.to_str().unwrap()]);
    assert!(out.is_empty(), "with -o nothing goes to stdout");
    let (header, predictions) = read_csv(&std::fs::read_to_string(&preds).unwrap());
    assert_eq!(
        header,
        ["prediction", "p_setosa", "p_versicolor", "p_virginica"]
    );
    let plain = predict(&model, &example("iris/test.csv"), &[]);
    let (_, plain) = read_csv(&plain);
    for (row, plain) in predictions.iter().zip(&plain) {
        assert_eq!(row[0], plain[0], "column order changed the prediction");
        let p: Vec<f64> = row[1..].iter().map(|v| v.parse().unwrap()).collect();
        assert!(
            (p.iter().sum::<f64>() - 1.0).abs() < 1e-5,
            "probabilities {p:?} do not sum to 1"
        );
        let best = ["setosa", "versicolor", "virginica"][p
            .iter()
            .enumerate()
            .fold(0, |b, (i, v)| if *v > p[b] { i } else { b })];
        assert_eq!(row[0], best);
    }
}

#[test]
fn integer_labels_come_back_as_integers() {
    let dir = tempfile::tempdir().unwrap();
    let data = relabelled_iris(dir.path(), ["10", "20", "30"]);
    let model = dir.path().join("numeric.onnx");
    ok(fit(&data, "species", &model));
    let out = predict(&model, &data, &["--proba"]);
    let (header, rows) = read_csv(&out);
    assert_eq!(header, ["prediction", "p_10", "p_20", "p_30"]);
    assert!(
        rows.iter()
            .all(|r| ["10", "20", "30"].contains(&r[0].as_str())),
        "{out}"
    );
}

#[test]
fn algorithms_lists_every_estimator_with_its_defaults() {
    let json = ok(skiff().args(["algorithms", "--json"]).output().unwrap());
    let list: serde_json::Value = serde_json::from_str(&json).unwrap();
    let find = |name: &str| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == name)
            .unwrap_or_else(|| panic!("{name} not listed: {json}"))
            .clone()
    };
    assert_eq!(find("logistic-regression")["hyperparameters"]["C"], 1.0);
    assert_eq!(find("logistic-regression")["task"], "classification");
    assert_eq!(find("ridge")["hyperparameters"]["alpha"], 1.0);
    assert_eq!(find("elastic-net")["hyperparameters"]["l1_ratio"], 0.5);
    assert_eq!(find("lasso")["task"], "regression");
    let text = ok(skiff().arg("algorithms").output().unwrap());
    assert!(text.contains("ridge (regression)"), "{text}");
    assert!(text.contains("alpha=1.0"), "{text}");
}

#[test]
fn a_scaled_regressor_fits_evaluates_and_predicts() {
    let dir = tempfile::tempdir().unwrap();
    let data = example("../tests/data/diabetes");
    let model = dir.path().join("ridge.onnx");
    let summary = ok(skiff()
        .args(["fit", "ridge", "--scale", "standard", "--set", "alpha=0.5"])
        .args(["--data", data.join("train.csv").to_str().unwrap()])
        .args([
            "--target",
            "progression",
            "-o",
            model.to_str().unwrap(),
            "--json",
        ])
        .output()
        .unwrap());
    let summary: serde_json::Value = serde_json::from_str(&summary).unwrap();
    assert_eq!(summary["task"], "regression");
    assert_eq!(summary["hyperparameters"]["alpha"], 0.5);
    assert!(summary["training_r2"].as_f64().unwrap() > 0.4, "{summary}");
    let test = data.join("test.csv");
    let eval = ok(skiff()
        .args([
            "eval",
            model.to_str().unwrap(),
            "--data",
            test.to_str().unwrap(),
        ])
        .args(["--target", "progression", "--json"])
        .output()
        .unwrap());
    let eval: serde_json::Value = serde_json::from_str(&eval).unwrap();
    let r2 = eval["metrics"]["r2"].as_f64().unwrap();
    let rmse = eval["metrics"]["rmse"].as_f64().unwrap();
    assert!(r2 > 0.3 && r2 < 0.5, "{eval}");
    assert!(rmse > 40.0 && rmse < 70.0, "{eval}");
    assert_eq!(eval["rows"], 111);
    // predict writes one number per row, which agree with eval's error.
    let predictions = ok(skiff()
        .args([
            "predict",
            model.to_str().unwrap(),
            "--data",
            test.to_str().unwrap(),
        ])
        .output()
        .unwrap());
    let (_, rows) = read_csv(&std::fs::read_to_string(&test).unwrap());
    let predicted: Vec<f64> = predictions
        .lines()
        .skip(1)
        .map(|l| l.parse().unwrap())
        .collect();
    let truth: Vec<f64> = rows
        .iter()
        .map(|r| r.last().unwrap().parse().unwrap())
        .collect();
    let mse: f64 = predicted
        .iter()
        .zip(&truth)
        .map(|(p, t)| (p - t).powi(2))
        .sum::<f64>()
        / truth.len() as f64;
    assert!((mse.sqrt() - rmse).abs() < 1e-3, "{} vs {rmse}", mse.sqrt());
}

#[test]
fn a_clusterer_fits_without_a_target_and_evaluates_with_and_without_labels() {
    let dir = tempfile::tempdir().unwrap();
    let data = example("../tests/data/blobs");
    let model = dir.path().join("blobs.onnx");
    // The train file's label column is left out with --target; clusterers never learn from it.
    ok(skiff()
        .args([
            "fit",
            "kmeans",
            "--set",
            "n_clusters=4",
            "--set",
            "random_state=0",
        ])
        .args([
            "--data",
            data.join("train.csv").to_str().unwrap(),
            "--target",
            "blob",
        ])
        .args(["-o", model.to_str().unwrap()])
        .output()
        .unwrap());
    let test = data.join("test.csv");
    let eval = |extra: &[&str]| -> serde_json::Value {
        let out = ok(skiff()
            .args([
                "eval",
                model.to_str().unwrap(),
                "--data",
                test.to_str().unwrap(),
                "--json",
            ])
            .args(extra)
            .output()
            .unwrap());
        serde_json::from_str(&out).unwrap()
    };
    let labelled = eval(&["--target", "blob"]);
    assert_eq!(labelled["task"], "clustering");
    assert_eq!(
        labelled["metrics"]["adjusted_rand_index"], 1.0,
        "{labelled}"
    );
    let silhouette = labelled["metrics"]["silhouette"].as_f64().unwrap();
    assert!(silhouette > 0.5 && silhouette < 1.0, "{labelled}");
    let unlabelled = eval(&[]);
    assert_eq!(unlabelled["metrics"]["silhouette"], silhouette);
    assert!(unlabelled["metrics"].get("adjusted_rand_index").is_none());
}

/// Unscaled features (breast_cancer spans 1e-3 to 4e3) keep lbfgs from converging in 100
/// iterations, as in scikit-learn: the model is still fitted and written, and a warning on
/// stderr (and in `--json`) says how to converge.
#[test]
fn an_unconverged_logistic_regression_is_written_with_a_warning_that_says_to_scale() {
    let dir = tempfile::tempdir().unwrap();
    let data = example("../tests/data/breast_cancer/train.csv");
    let model = dir.path().join("m.onnx");
    let run = |extra: &[&str]| {
        skiff()
            .args(["fit", "logistic-regression", "--json", "--data"])
            .arg(&data)
            .args(["--target", "diagnosis", "-o"])
            .arg(&model)
            .args(extra)
            .output()
            .unwrap()
    };
    let out = run(&[]);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let summary: serde_json::Value = serde_json::from_str(&ok(out)).unwrap();
    for needle in [
        "warning",
        "did not converge",
        "max_iter=100",
        "--scale standard",
    ] {
        assert!(stderr.contains(needle), "{needle:?} not in {stderr:?}");
    }
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert_eq!(
        summary["warnings"].as_array().unwrap().len(),
        1,
        "{summary}"
    );
    let accuracy = summary["training_accuracy"].as_f64().unwrap();
    assert!(
        accuracy > 0.9,
        "an unconverged fit still separates the classes: {accuracy}"
    );
    assert!(model.exists());
    let out = run(&["--scale", "standard"]);
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_str(&ok(out)).unwrap();
    assert_eq!(summary["warnings"], serde_json::json!([]));
}
