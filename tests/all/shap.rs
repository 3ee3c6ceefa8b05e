//! `skiff explain shap` agrees with the shap package: TreeExplainer on scikit-learn's trees,
//! forests and boosting (converted by skl2onnx), LinearExplainer on its linear models, and
//! shap's TreeSHAP on the very trees of skiff's own files; each row's values add up to its
//! score.

use crate::*;
use serde_json::Value;

/// `skiff explain shap MODEL --data DATA --background BACKGROUND --json`, parsed.
fn shap_json(model: &Path, data: &Path, background: &Path) -> Value {
    let text = ok(skiff()
        .args(["explain", "shap"])
        .arg(model)
        .arg("--data")
        .arg(data)
        .arg("--background")
        .arg(background)
        .arg("--json")
        .output()
        .unwrap());
    serde_json::from_str(&text).unwrap()
}

/// A JSON array of numbers, nested any depth, flattened.
fn flat(v: &Value) -> Vec<f64> {
    match v {
        Value::Array(items) => items.iter().flat_map(flat).collect(),
        other => vec![other.as_f64().unwrap()],
    }
}

/// `ours` (rows x features x outputs) within `tolerance` of `theirs`, which has all of ours'
/// outputs or only the last (shap gives a binary margin model one output).
fn assert_close(what: &str, ours: &[f64], theirs: &[f64], n_outputs: usize, tolerance: f64) {
    let theirs_outputs = n_outputs * theirs.len() / ours.len();
    let skip = n_outputs - theirs_outputs;
    let ours: Vec<f64> = (ours.chunks(n_outputs))
        .flat_map(|o| o[skip..].to_vec())
        .collect();
    assert_eq!(ours.len(), theirs.len(), "{what}");
    let scale = theirs.iter().fold(1f64, |m, v| m.max(v.abs()));
    for (i, (a, b)) in ours.iter().zip(theirs).enumerate() {
        assert!(
            (a - b).abs() <= tolerance * scale,
            "{what}: value {i} is {a}, shap's {b}"
        );
    }
}

#[test]
fn shap_values_agree_with_the_shap_package_on_scikit_learn_models() {
    let dir = tempfile::tempdir().unwrap();
    let out = python()
        .arg(example("../tests/shap_scikit_learn.py"))
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reference: Value = serde_json::from_slice(&out.stdout).unwrap();
    let names = reference.as_object().unwrap().keys();
    assert_eq!(names.len(), 7);
    for name in names {
        let file = |suffix: &str| dir.path().join(format!("{name}{suffix}"));
        let ours = shap_json(&file(".onnx"), &file("-test.csv"), &file("-train.csv"));
        let method = if name.starts_with("logistic") || name.starts_with("linear") {
            "linear"
        } else {
            "tree"
        };
        assert_eq!(ours["method"], method, "{name}");
        let features: Vec<&str> = (ours["features"].as_array().unwrap().iter())
            .map(|f| f.as_str().unwrap())
            .collect();
        assert_eq!(features, ["f0", "f1", "f2", "f3", "f4", "f5"], "{name}");
        assert_eq!(ours["rows"], 40);
        let n_outputs = ours["outputs"].as_array().unwrap().len();
        // The file's weights are float32, scikit-learn's float64.
        assert_close(
            name,
            &flat(&ours["values"]),
            &flat(&reference[name]["values"]),
            n_outputs,
            1e-6,
        );
        assert_close(
            &format!("{name} base values"),
            &flat(&ours["base_values"]),
            &flat(&reference[name]["base"]),
            n_outputs,
            1e-6,
        );
    }
}

#[test]
fn tree_shap_on_skiffs_own_trees_agrees_with_shap_and_adds_up_to_the_scores() {
    let dir = tempfile::tempdir().unwrap();
    let (train, test) = (
        example("../tests/data/wine/train.csv"),
        example("../tests/data/wine/test.csv"),
    );
    for (algorithm, set) in [
        ("random-forest-classifier", "n_estimators=20"),
        ("hist-gradient-boosting-classifier", "max_iter=15"),
        ("decision-tree-regressor", "max_depth=6"),
    ] {
        let model = dir.path().join(format!("{algorithm}.onnx"));
        // The regressor predicts alcohol from the other measurements.
        let target = if algorithm.ends_with("regressor") {
            "alcohol"
        } else {
            "cultivar"
        };
        let mut fit = skiff();
        fit.args(["fit", algorithm, "--data"]).arg(&train);
        fit.args(["--target", target, "--set", set, "-o"])
            .arg(&model);
        if target == "alcohol" {
            fit.args(["--drop", "cultivar"]);
        }
        ok(fit.output().unwrap());
        let out = python()
            .arg(example("../tests/shap_same_trees.py"))
            .args([&model, &train, &test])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let reference: Value = serde_json::from_slice(&out.stdout).unwrap();
        let ours = shap_json(&model, &test, &train);
        assert_eq!(ours["features"], reference["features"], "{algorithm}");
        let n_outputs = ours["outputs"].as_array().unwrap().len();
        let values = flat(&ours["values"]);
        assert_close(
            algorithm,
            &values,
            &flat(&reference["values"]),
            n_outputs,
            1e-9,
        );
        // Additivity: base values plus a row's values are the row's scores.
        let base = flat(&ours["base_values"]);
        let scores = flat(&reference["scores"]);
        let n_features = reference["features"].as_array().unwrap().len();
        for (r, row) in values.chunks(n_features * n_outputs).enumerate() {
            for o in 0..n_outputs {
                let sum: f64 =
                    base[o] + (0..n_features).map(|j| row[j * n_outputs + o]).sum::<f64>();
                let score = scores[r * n_outputs + o];
                assert!(
                    (sum - score).abs() <= 1e-5 * score.abs().max(1.0),
                    "{algorithm}: row {r} output {o} adds up to {sum}, its score is {score}"
                );
            }
        }
    }
}

#[test]
fn a_table_with_text_columns_gets_a_value_per_column_adding_up_to_its_probabilities() {
    let dir = tempfile::tempdir().unwrap();
    let (train, test) = (
        example("../tests/data/penguins/train.csv"),
        example("../tests/data/penguins/test.csv"),
    );
    let fit = |algorithm: &str, set: &str| -> PathBuf {
        let model = dir.path().join(format!("{algorithm}.onnx"));
        ok(skiff()
            .args(["fit", algorithm, "--data"])
            .arg(&train)
            .args(["--target", "species", "--set", set, "-o"])
            .arg(&model)
            .output()
            .unwrap());
        model
    };
    let forest = fit("random-forest-classifier", "n_estimators=25");
    let ours = shap_json(&forest, &test, &train);
    let mut features: Vec<&str> = (ours["features"].as_array().unwrap().iter())
        .map(|f| f.as_str().unwrap())
        .collect();
    features.sort_unstable();
    assert_eq!(
        features,
        [
            "bill_depth_mm",
            "bill_length_mm",
            "body_mass_g",
            "flipper_length_mm",
            "island",
            "sex",
            "year"
        ]
    );
    assert_eq!(
        ours["outputs"],
        serde_json::json!(["Adelie", "Chinstrap", "Gentoo"])
    );
    assert_eq!(ours["transform"], Value::Null);
    // The forest's scores are its probabilities: values and base add up to `skiff predict`'s.
    let predicted = ok(skiff()
        .arg("predict")
        .arg(&forest)
        .arg("--data")
        .arg(&test)
        .arg("--proba")
        .output()
        .unwrap());
    let (header, rows) = read_csv(&predicted);
    assert_eq!(header[1..], ["p_Adelie", "p_Chinstrap", "p_Gentoo"]);
    let base = flat(&ours["base_values"]);
    let values = flat(&ours["values"]);
    assert_eq!(rows.len(), 86);
    for (r, (row, predicted)) in values.chunks(7 * 3).zip(&rows).enumerate() {
        for o in 0..3 {
            let sum: f64 = base[o] + (0..7).map(|j| row[j * 3 + o]).sum::<f64>();
            let p: f64 = predicted[1 + o].parse().unwrap();
            assert!(
                (sum - p).abs() < 1e-5,
                "row {r} class {o}: {sum} against {p}"
            );
        }
    }

    // Without --background, the rows explained are the background.
    let text = ok(skiff()
        .args(["explain", "shap"])
        .arg(&forest)
        .arg("--data")
        .arg(&test)
        .output()
        .unwrap());
    assert!(
        text.contains("measured from the 86 rows explained"),
        "{text}"
    );
    assert!(
        text.contains("island") && text.contains("base value"),
        "{text}"
    );

    // Models without a tree ensemble or a linear part are refused in one line.
    let mlp = fit("mlp-classifier", "max_iter=5");
    let knn = fit("knn-classifier", "n_neighbors=3");
    for (model, why) in [(&mlp, "matrix products"), (&knn, "neither a tree ensemble")] {
        fails_with(
            skiff()
                .args(["explain", "shap"])
                .arg(model)
                .arg("--data")
                .arg(&test)
                .output()
                .unwrap(),
            &["cannot explain", why, "skiff explain importance"],
        );
    }
}

#[test]
fn a_server_explains_rows_as_the_command_line_does() {
    let dir = tempfile::tempdir().unwrap();
    let (train, test) = (
        example("../tests/data/penguins/train.csv"),
        example("../tests/data/penguins/test.csv"),
    );
    for (algorithm, set) in [
        ("random-forest-classifier", "n_estimators=15"),
        ("mlp-classifier", "max_iter=5"),
    ] {
        ok(skiff()
            .args(["fit", algorithm, "--data"])
            .arg(&train)
            .args(["--target", "species", "--set", set, "-o"])
            .arg(dir.path().join(format!("{algorithm}.onnx")))
            .output()
            .unwrap());
    }
    let forest = dir.path().join("random-forest-classifier.onnx");
    // Five test rows without gaps (JSON has no NaN), as a CSV for the command line.
    let (header, rows) = read_csv(&std::fs::read_to_string(&test).unwrap());
    let rows: Vec<Vec<String>> = (rows.into_iter())
        .filter(|r| r.iter().all(|c| !c.is_empty() && c != "NA"))
        .take(5)
        .collect();
    let csv = dir.path().join("rows.csv");
    let lines: Vec<String> = std::iter::once(header.join(","))
        .chain(rows.iter().map(|r| r.join(",")))
        .collect();
    std::fs::write(&csv, lines.join("\n") + "\n").unwrap();
    let cli = shap_json(&forest, &csv, &train);

    let server = crate::serve::Server::start(
        forest.to_str().unwrap(),
        &["--explain-background", train.to_str().unwrap()],
    );
    let column = |name: &str| header.iter().position(|h| h == name).unwrap();
    let text = ["island", "sex"];
    let inputs: Vec<Value> = (header.iter())
        .filter(|h| *h != "species")
        .map(|name| {
            let cells = rows.iter().map(|r| r[column(name)].clone());
            let (datatype, data): (&str, Vec<Value>) = if text.contains(&name.as_str()) {
                ("BYTES", cells.map(Value::from).collect())
            } else {
                (
                    "FP32",
                    cells
                        .map(|c| Value::from(c.parse::<f64>().unwrap()))
                        .collect(),
                )
            };
            serde_json::json!({"name": name, "shape": [5, 1], "datatype": datatype, "data": data})
        })
        .collect();
    let request = serde_json::json!({ "inputs": inputs });
    let (status, served) = server.post("/v2/models/random-forest-classifier/explain", &request);
    assert_eq!(status, 200, "{served}");
    for key in ["method", "features", "outputs", "base_values", "values"] {
        assert_eq!(served[key], cli[key], "{key}");
    }
    // The same rows as KServe's v1 instances.
    let instances: Vec<Value> = (rows.iter())
        .map(|r| {
            let mut row = serde_json::Map::new();
            for (name, input) in header.iter().zip(r) {
                if name != "species" {
                    let value = match input.parse::<f64>() {
                        Ok(v) if !text.contains(&name.as_str()) => Value::from(v),
                        _ => Value::from(input.as_str()),
                    };
                    row.insert(name.clone(), value);
                }
            }
            Value::Object(row)
        })
        .collect();
    let (status, v1) = server.post(
        "/v1/models/random-forest-classifier:explain",
        &serde_json::json!({ "instances": instances }),
    );
    assert_eq!(status, 200, "{v1}");
    assert_eq!(v1["values"], served["values"]);
    // Values and base values add up to the probabilities the server infers.
    let (status, inferred) = server.post("/v2/models/random-forest-classifier/infer", &request);
    assert_eq!(status, 200, "{inferred}");
    let outputs = inferred["outputs"].as_array().unwrap();
    let probabilities = outputs
        .iter()
        .find(|o| o["name"] == "probabilities")
        .unwrap();
    let probabilities = flat(&probabilities["data"]);
    let (base, values) = (flat(&served["base_values"]), flat(&served["values"]));
    for r in 0..5 {
        for o in 0..3 {
            let sum = base[o] + (0..7).map(|j| values[(r * 7 + j) * 3 + o]).sum::<f64>();
            let p = probabilities[r * 3 + o];
            assert!(
                (sum - p).abs() < 1e-5,
                "row {r} class {o}: {sum} against {p}"
            );
        }
    }
    drop(server);

    // A model with no SHAP values, and a server started without background rows: 400s that
    // say what to do.
    let mlp = dir.path().join("mlp-classifier.onnx");
    let server = crate::serve::Server::start(
        mlp.to_str().unwrap(),
        &["--explain-background", train.to_str().unwrap()],
    );
    let (status, error) = server.post("/v2/models/mlp-classifier/explain", &request);
    assert_eq!(status, 400, "{error}");
    assert!(
        error["error"].as_str().unwrap().contains("cannot explain"),
        "{error}"
    );
    drop(server);
    let server = crate::serve::Server::start(forest.to_str().unwrap(), &[]);
    let (status, error) = server.post("/v2/models/random-forest-classifier/explain", &request);
    assert_eq!(status, 400, "{error}");
    assert!(
        error["error"]
            .as_str()
            .unwrap()
            .contains("--explain-background"),
        "{error}"
    );
}
