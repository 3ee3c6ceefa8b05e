//! Real tables: text columns and gaps, fitted with no flags, exported in one graph with an input
//! per column, and served alike by every engine; bad tables get one-line errors.

use crate::serve::Server;
use crate::*;
use serde_json::{Value, json};

/// The penguins test split, changed as new data comes: an island training never saw, a bill
/// length and a sex missing (as empty cells, besides the NA cells it already has).
fn penguins_test_with_surprises(dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(example("../tests/data/penguins/test.csv")).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let header: Vec<&str> = lines[0].split(',').collect();
    let column = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let (island, bill, sex) = (column("island"), column("bill_length_mm"), column("sex"));
    let mut edit = |line: usize, at: usize, value: &str| {
        let mut cells: Vec<String> = lines[line].split(',').map(str::to_string).collect();
        cells[at] = value.to_string();
        lines[line] = cells.join(",");
    };
    edit(1, island, "Anvers");
    edit(2, bill, "");
    edit(3, sex, "");
    let path = dir.join("test.csv");
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    path
}

/// What scikit-learn's ColumnTransformer + LogisticRegression pipeline scores on the penguins
/// test split, fitted live, and onnxruntime's labels for `model` on `rows`, its inputs fed as
/// `skiff predict` feeds them (text as written, numbers with gaps as NaN).
const SKLEARN_AND_ONNXRUNTIME: &str = r#"
import json, sys
import numpy as np, onnxruntime as ort, pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

train_csv, test_csv, model, rows = sys.argv[1:]
train, test = pd.read_csv(train_csv), pd.read_csv(test_csv)
text = ["island", "sex"]
numbers = [c for c in train.columns if c not in text + ["species"]]
pipeline = make_pipeline(ColumnTransformer([
    ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numbers),
    ("cat", make_pipeline(SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")), text),
]), LogisticRegression())
pipeline.fit(train.drop(columns="species"), train["species"])
accuracy = float((pipeline.predict(test.drop(columns="species")) == test["species"]).mean())

raw = pd.read_csv(rows, dtype=str, keep_default_na=False)
session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
feeds = {}
for i in session.get_inputs():
    cells = raw[i.name].to_numpy().reshape(-1, 1)
    if i.type == "tensor(string)":
        feeds[i.name] = cells.astype(object)
    else:
        feeds[i.name] = pd.to_numeric(raw[i.name], errors="coerce").to_numpy(np.float32).reshape(-1, 1)
labels = session.run(["label"], feeds)[0].tolist()
print(json.dumps({"accuracy": accuracy, "labels": labels}))
"#;

fn labels_of(csv: &str) -> Vec<String> {
    let (header, rows) = read_csv(csv);
    let at = header.iter().position(|h| h == "prediction").unwrap();
    rows.into_iter().map(|r| r[at].clone()).collect()
}

#[test]
fn raw_penguins_fit_with_no_flags_score_as_scikit_learn_and_every_engine_labels_alike() {
    let dir = tempfile::tempdir().unwrap();
    let train = example("../tests/data/penguins/train.csv");
    let test = example("../tests/data/penguins/test.csv");
    let model = dir.path().join("penguins.onnx");
    let summary: Value = serde_json::from_str(&ok(skiff()
        .args(["fit", "logistic-regression", "--data"])
        .arg(&train)
        .args(["--target", "species", "--json", "-o"])
        .arg(&model)
        .output()
        .unwrap()))
    .unwrap();
    assert_eq!(summary["columns"]["categorical"], json!(["island", "sex"]));
    assert_eq!(
        summary["columns"]["numeric"],
        json!([
            "bill_length_mm",
            "bill_depth_mm",
            "flipper_length_mm",
            "body_mass_g",
            "year"
        ])
    );
    assert_eq!(summary["preprocessing"]["scaler"], "standard-scaler");
    assert_eq!(summary["warnings"], json!([]), "{summary}");

    let eval: Value = serde_json::from_str(&ok(skiff()
        .arg("eval")
        .arg(&model)
        .arg("--data")
        .arg(&test)
        .args(["--target", "species", "--json"])
        .output()
        .unwrap()))
    .unwrap();
    let accuracy = eval["metrics"]["accuracy"].as_f64().unwrap();

    let rows = penguins_test_with_surprises(dir.path());
    let out = python()
        .args(["-c", SKLEARN_AND_ONNXRUNTIME])
        .args([&train, &test, &model, &rows])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let python: Value = serde_json::from_slice(&out.stdout).unwrap();
    let sklearn = python["accuracy"].as_f64().unwrap();
    assert!(
        (accuracy - sklearn).abs() <= 0.02,
        "skiff's test accuracy {accuracy:.4} is more than 0.02 from scikit-learn's {sklearn:.4}"
    );
    let expected: Vec<String> = serde_json::from_value(python["labels"].clone()).unwrap();

    for backend in ["tract", "ort"] {
        let got = labels_of(&predict(&model, &rows, &["--backend", backend]));
        assert_eq!(got, expected, "skiff predict --backend {backend}");
    }
    let component = dir.path().join("penguins.wasm");
    crate::component::pack_component(&model, &component);
    assert_eq!(
        labels_of(&predict(&component, &rows, &[])),
        expected,
        "the component"
    );

    // The server: one named input per column, text as BYTES and numbers as FP32 (null for a
    // gap: JSON has no NaN).
    let server = Server::start(model.to_str().unwrap(), &[]);
    let (status, metadata) = server.get("/v2/models/penguins");
    assert_eq!(status, 200, "{metadata}");
    let names: Vec<&str> = metadata["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "island",
            "bill_length_mm",
            "bill_depth_mm",
            "flipper_length_mm",
            "body_mass_g",
            "sex",
            "year"
        ]
    );
    let text = std::fs::read_to_string(&rows).unwrap();
    let (header, cells) = read_csv(&text);
    let inputs: Vec<Value> = metadata["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|input| {
            let name = input["name"].as_str().unwrap();
            let at = header.iter().position(|h| h == name).unwrap();
            let column = cells.iter().map(|r| r[at].as_str());
            let data: Vec<Value> = match input["datatype"].as_str().unwrap() {
                "BYTES" => column.map(|c| json!(c)).collect(),
                _ => column
                    .map(|c| c.parse::<f64>().map_or(Value::Null, |v| json!(v)))
                    .collect(),
            };
            json!({ "name": name, "datatype": input["datatype"], "shape": [cells.len(), 1], "data": data })
        })
        .collect();
    let (status, answer) = server.post(
        "/v2/models/penguins/infer",
        &json!({ "inputs": inputs, "outputs": [{ "name": "label" }] }),
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["outputs"][0]["data"], json!(expected), "the server");

    let (status, answer) = server.post(
        "/v2/models/penguins/infer",
        &json!({ "inputs": inputs[1..] }),
    );
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().contains("island"),
        "a missing input is named: {answer}"
    );
    let mut extra = inputs.clone();
    let mut stray = inputs[0].clone();
    stray["name"] = json!("flipper_colour");
    extra.push(stray);
    let (status, answer) = server.post("/v2/models/penguins/infer", &json!({ "inputs": extra }));
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().contains("flipper_colour"),
        "an extra input is named: {answer}"
    );
}

#[test]
fn print_pipeline_shows_the_kinds_and_steps_and_flags_change_them() {
    let train = example("../tests/data/penguins/train.csv");
    let show = |extra: &[&str]| {
        ok(skiff()
            .args(["fit", "knn-classifier", "--data"])
            .arg(&train)
            .args(["--target", "species", "--print-pipeline"])
            .args(extra)
            .output()
            .unwrap())
    };
    let default = show(&[]);
    for needle in [
        "categorical columns: island, sex",
        "\"strategy\":\"median\"",
        "standard-scaler",
        "\"strategy\":\"most_frequent\"",
        "one-hot-encoder",
        "\"handle_unknown\":\"ignore\"",
        "knn-classifier",
    ] {
        assert!(default.contains(needle), "{needle:?} not in:\n{default}");
    }
    let changed = show(&[
        "--impute",
        "mean",
        "--scale",
        "robust",
        "--encode",
        "ordinal",
        "--categorical",
        "year",
        "--set",
        "n_neighbors=3",
    ]);
    for needle in [
        "categorical columns: island, sex, year",
        "\"strategy\":\"mean\"",
        "robust-scaler",
        "ordinal-encoder",
        "\"n_neighbors\":3",
    ] {
        assert!(changed.contains(needle), "{needle:?} not in:\n{changed}");
    }
}

#[test]
fn bad_tables_get_one_line_errors_that_name_the_column_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let train = example("../tests/data/penguins/train.csv");
    let fit_with = |data: &Path, extra: &[&str]| {
        skiff()
            .args(["fit", "logistic-regression", "--data"])
            .arg(data)
            .args(["--target", "species", "-o"])
            .arg(dir.path().join("m.onnx"))
            .args(extra)
            .output()
            .unwrap()
    };
    fails_with(
        fit_with(&train, &["--numeric", "island"]),
        &["island", "\"Biscoe\"", "--categorical island"],
    );
    // A column with no values, and one that names its rows.
    let text = std::fs::read_to_string(&train).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    let with_columns = |name: &str, cell: &dyn Fn(usize) -> String| {
        let path = dir.path().join(format!("{name}.csv"));
        let body: Vec<String> = std::iter::once(format!("{header},{name}"))
            .chain(
                text.lines()
                    .skip(1)
                    .enumerate()
                    .map(|(i, l)| format!("{l},{}", cell(i))),
            )
            .collect();
        std::fs::write(&path, body.join("\n")).unwrap();
        path
    };
    let empty = with_columns("notes", &|_| String::new());
    fails_with(fit_with(&empty, &[]), &["\"notes\"", "--drop notes"]);
    let ids = with_columns("tag", &|i| format!("N{i}A{}", i * 7));
    fails_with(fit_with(&ids, &[]), &["\"tag\"", "--drop tag"]);
    ok(fit_with(&ids, &["--drop", "tag"]));
    fails_with(
        fit_with(&train, &["--set", "encoder.handle_unknown=maybe"]),
        &["handle_unknown", "ignore"],
    );
    fails_with(
        fit_with(&train, &["--set", "scaler.with_mean=false"]),
        &["scaler", "num_imputer"],
    );
    // Gradient boosting's histograms hold 255 categories of a column, no more.
    let many = with_columns("code", &|i| format!("c{}", i.min(256)));
    let boost = |extra: &[&str]| {
        skiff()
            .args(["fit", "hist-gradient-boosting-classifier", "--data"])
            .arg(&many)
            .args(["--target", "species", "-o"])
            .arg(dir.path().join("gbm.onnx"))
            .args(extra)
            .output()
            .unwrap()
    };
    fails_with(
        boost(&[]),
        &[
            "\"code\"",
            "257 categories",
            "--encode onehot",
            "--drop code",
        ],
    );
    ok(boost(&["--drop", "code"]));
    assert_only_files(
        dir.path(),
        &["notes.csv", "tag.csv", "code.csv", "m.onnx", "gbm.onnx"],
    );
}
