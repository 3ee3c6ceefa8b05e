//! MLflow, live: one `mlflow server` (mlflow==3.17.2, sqlite backend, loopback) shared by the
//! module; `skiff fit|tune --mlflow` logs to it and MLflow's own Python client reads back every
//! parameter, the metric histories, the tags and the registered version; `pyfunc` predictions
//! on logged and exported models equal `skiff predict`'s.

use crate::{example, fails_with, ok, python, skiff};
use skiff_testing::{MlflowServer, free_port};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The module's server, started by the first test that needs it. The guard it runs under
/// stops it when the test process ends.
fn server() -> &'static MlflowServer {
    static SERVER: OnceLock<MlflowServer> = OnceLock::new();
    SERVER.get_or_init(|| MlflowServer::start(&python_path(), &[], &[]))
}

fn python_path() -> PathBuf {
    PathBuf::from(std::env::var_os("SKIFF_TEST_PYTHON").unwrap_or_else(|| {
        panic!("SKIFF_TEST_PYTHON is not set: run the tests with scripts/test.sh, which installs mlflow")
    }))
}

/// Runs `script` with `args` on the test Python, with MLflow pointed at `url`, and returns the
/// JSON it prints last.
fn py_json(
    script: &str,
    url: &str,
    args: &[&str],
    server_log: &dyn Fn() -> String,
) -> serde_json::Value {
    let out = python()
        .args(["-c", script])
        .args(args)
        .env("MLFLOW_TRACKING_URI", url)
        .env("MLFLOW_DISABLE_TELEMETRY", "true")
        .output()
        .expect("python runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "python failed: {}\n{}\nserver log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        stdout,
        server_log()
    );
    serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("python printed no JSON ({e}): {stdout}"))
}

/// `skiff predict --proba` as (label, probabilities) per row.
fn skiff_predictions(model: &Path, data: &Path) -> Vec<(String, Vec<f64>)> {
    let text = crate::predict(model, data, &["--proba"]);
    let (header, rows) = crate::read_csv(&text);
    assert_eq!(header[0], "prediction", "{text}");
    rows.into_iter()
        .map(|row| {
            let probabilities = row[1..].iter().map(|p| p.parse().unwrap()).collect();
            (row[0].clone(), probabilities)
        })
        .collect()
}

/// Asserts pyfunc's `{"label": [...], "probabilities": [[...]]}` equals skiff's predictions.
fn assert_same_predictions(pyfunc: &serde_json::Value, skiff: &[(String, Vec<f64>)]) {
    let labels = pyfunc["label"].as_array().expect("pyfunc's labels");
    let probabilities = pyfunc["probabilities"]
        .as_array()
        .expect("pyfunc's probabilities");
    assert_eq!(labels.len(), skiff.len(), "{pyfunc}");
    for (row, (label, expected)) in skiff.iter().enumerate() {
        assert_eq!(
            labels[row].as_str(),
            Some(label.as_str()),
            "row {row}: {pyfunc}"
        );
        let got: Vec<f64> = probabilities[row]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_f64().unwrap())
            .collect();
        assert_eq!(got.len(), expected.len(), "row {row}");
        for (g, e) in got.iter().zip(expected) {
            assert!(
                (g - e).abs() < 1e-6,
                "row {row}: pyfunc {got:?}, skiff {expected:?}"
            );
        }
    }
}

/// `value` flattened as skiff's run record flattens hyperparameters: `a.b` names, strings
/// unquoted, other values as JSON text, nulls left out.
fn flatten(
    prefix: &str,
    value: &serde_json::Value,
    out: &mut serde_json::Map<String, serde_json::Value>,
) {
    match value {
        serde_json::Value::Object(members) => {
            for (name, member) in members {
                let name = if prefix.is_empty() {
                    name.clone()
                } else {
                    format!("{prefix}.{name}")
                };
                flatten(&name, member, out);
            }
        }
        serde_json::Value::Null => {}
        serde_json::Value::String(text) => {
            out.insert(prefix.into(), text.clone().into());
        }
        other => {
            out.insert(prefix.into(), other.to_string().into());
        }
    }
}

const READ_RUN: &str = r#"
import json, sys
import numpy as np, pandas as pd
import mlflow
from mlflow import MlflowClient
run_id, name, test_csv = sys.argv[1], sys.argv[2], sys.argv[3]
c = MlflowClient()
run = c.get_run(run_id)
loss = c.get_metric_history(run_id, "loss")
version = c.get_model_version(name, "1")
model = mlflow.pyfunc.load_model(f"models:/{name}/1")
features = [s.name for s in model.metadata.get_input_schema().inputs]
test = pd.read_csv(test_csv)
x = test[["sepal_length", "sepal_width", "petal_length", "petal_width"]].to_numpy(np.float32)
out = model.predict(x)
print(json.dumps({
    "status": run.info.status,
    "run_name": run.info.run_name,
    "experiment": c.get_experiment(run.info.experiment_id).name,
    "params": run.data.params,
    "metrics": run.data.metrics,
    "tags": run.data.tags,
    "loss": [[m.step, m.value] for m in loss],
    "version": {"version": version.version, "source": version.source,
                "run_id": version.run_id, "status": version.status},
    "outputs": [o.model_id for o in run.outputs.model_outputs],
    "inputs": features,
    "label": [str(v) for v in out["label"]],
    "probabilities": out["probabilities"].tolist(),
}))
"#;

#[test]
fn a_fit_logs_every_param_its_loss_per_epoch_and_a_registered_model_that_predicts_as_skiff() {
    let server = server();
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("iris-mlp.onnx");
    let max_iter = 25;
    let out = ok(skiff()
        .args(["fit", "mlp-classifier", "--data"])
        .arg(example("iris/train.csv"))
        .args([
            "--target",
            "species",
            "--set",
            &format!("max_iter={max_iter}"),
        ])
        .args(["--set", "random_state=0", "-o"])
        .arg(&model)
        .args(["--mlflow", &server.url(), "--experiment", "skiff-iris"])
        .args(["--run-name", "mlp-25", "--register", "iris-mlp", "--json"])
        .env("USER", "skiff-tester")
        .output()
        .unwrap());
    let fit: serde_json::Value = serde_json::from_str(&out).unwrap();
    // not converged in 25 epochs: the loss curve has exactly max_iter points
    assert!(
        fit["warnings"]
            .to_string()
            .contains("Maximum iterations (25)"),
        "{fit}"
    );
    let run_id = fit["mlflow"]["run_id"]
        .as_str()
        .expect("the run id in --json");
    let model_id = fit["mlflow"]["model_id"]
        .as_str()
        .expect("the logged model's id");
    assert_eq!(fit["mlflow"]["registered"]["version"], "1", "{fit}");

    let test_csv = example("iris/test.csv");
    let got = py_json(
        READ_RUN,
        &server.url(),
        &[run_id, "iris-mlp", test_csv.to_str().unwrap()],
        &|| server.log_text(),
    );
    assert_eq!(got["status"], "FINISHED");
    assert_eq!(got["run_name"], "mlp-25");
    assert_eq!(got["experiment"], "skiff-iris");

    // every parameter: the hyperparameters as `skiff fit --json` reports them, the
    // preprocessing, and the table's
    let mut expected = serde_json::Map::new();
    flatten("", &fit["hyperparameters"], &mut expected);
    flatten("", &fit["preprocessing"], &mut expected);
    for (name, value) in [
        ("data", example("iris/train.csv").display().to_string()),
        ("rows", fit["rows"].to_string()),
        ("features", "4".to_string()),
        ("target", "species".to_string()),
    ] {
        expected.insert(name.into(), value.into());
    }
    assert_eq!(got["params"], serde_json::Value::Object(expected));
    assert_eq!(got["params"]["max_iter"], "25");

    let loss = got["loss"].as_array().unwrap();
    let steps: Vec<u64> = loss.iter().map(|p| p[0].as_u64().unwrap()).collect();
    assert_eq!(steps, (1..=max_iter).collect::<Vec<u64>>(), "{loss:?}");
    let values: Vec<f64> = loss.iter().map(|p| p[1].as_f64().unwrap()).collect();
    assert!(
        values.iter().all(|v| v.is_finite() && *v > 0.0),
        "{values:?}"
    );
    assert!(
        values[max_iter as usize - 1] < values[0],
        "adam lowers the loss: {values:?}"
    );
    // each epoch's loss is the one the fit reports
    let curve: Vec<(u64, f64)> = serde_json::from_value(fit["curves"]["loss"].clone()).unwrap();
    assert_eq!(curve.len(), values.len());
    for ((step, want), got) in curve.iter().zip(&values) {
        assert!(
            (want - got).abs() <= 1e-12 * want.abs(),
            "epoch {step}: {want} vs {got}"
        );
    }
    // the run's latest `loss` is the last epoch's
    assert_eq!(
        got["metrics"]["loss"].as_f64(),
        Some(values[max_iter as usize - 1])
    );
    let accuracy = got["metrics"]["training_accuracy"].as_f64().unwrap();
    assert!((accuracy - fit["training_accuracy"].as_f64().unwrap()).abs() < 1e-12);

    let tags = &got["tags"];
    assert_eq!(tags["skiff.command"], "fit");
    assert_eq!(tags["skiff.algorithm"], "mlp-classifier");
    assert_eq!(tags["mlflow.runName"], "mlp-25");
    assert_eq!(tags["mlflow.source.name"], "skiff");
    assert_eq!(tags["mlflow.source.type"], "LOCAL");
    assert_eq!(tags["mlflow.user"], "skiff-tester");

    assert_eq!(
        got["version"],
        serde_json::json!({"version": "1", "source": format!("models:/{model_id}"),
                           "run_id": run_id, "status": "READY"})
    );
    assert_eq!(got["outputs"], serde_json::json!([model_id]));
    assert_eq!(got["inputs"], serde_json::json!(["X"]));
    assert_same_predictions(&got, &skiff_predictions(&model, &test_csv));
}

#[test]
fn a_search_logs_each_candidates_score_at_its_step() {
    let server = server();
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("tuned.onnx");
    let out = ok(skiff()
        .args(["tune", "logistic-regression", "--data"])
        .arg(example("iris/train.csv"))
        .args([
            "--target",
            "species",
            "--grid",
            "C=0.001,0.01,0.1,1,10,100",
            "-o",
        ])
        .arg(&model)
        .args([
            "--mlflow",
            &server.url(),
            "--experiment",
            "skiff-tune",
            "--json",
        ])
        .output()
        .unwrap());
    let tune: serde_json::Value = serde_json::from_str(&out).unwrap();
    let run_id = tune["mlflow"]["run_id"]
        .as_str()
        .expect("the run id in --json");
    let got = py_json(
        r#"
import json, sys
from mlflow import MlflowClient
c = MlflowClient()
run = c.get_run(sys.argv[1])
h = c.get_metric_history(sys.argv[1], "candidate_accuracy_mean")
children = c.search_runs([run.info.experiment_id],
                         filter_string=f"tags.mlflow.parentRunId = '{sys.argv[1]}'")
print(json.dumps({"curve": [[m.step, m.value] for m in h], "params": run.data.params,
                  "metrics": run.data.metrics, "tags": run.data.tags,
                  "outputs": [o.model_id for o in run.outputs.model_outputs],
                  "children": [{"params": r.data.params, "metrics": r.data.metrics,
                                "status": r.info.status} for r in children]}))
"#,
        &server.url(),
        &[run_id],
        &|| server.log_text(),
    );
    let candidates = tune["candidates"].as_array().unwrap();
    let curve = got["curve"].as_array().unwrap();
    assert_eq!(curve.len(), candidates.len(), "{got}");
    for (i, (point, candidate)) in curve.iter().zip(candidates).enumerate() {
        assert_eq!(point[0].as_u64(), Some(i as u64));
        let (logged, mean) = (
            point[1].as_f64().unwrap(),
            candidate["mean"].as_f64().unwrap(),
        );
        assert!(
            (logged - mean).abs() < 1e-12,
            "candidate {i}: {logged} vs {mean}"
        );
    }
    let best = tune["best"]["mean"].as_f64().unwrap();
    assert!((got["metrics"]["best_accuracy_mean"].as_f64().unwrap() - best).abs() < 1e-12);
    assert_eq!(got["params"]["candidates"], "6");
    // The five best candidates as nested runs, as MLflow's autologging logs a search.
    let children = got["children"].as_array().unwrap();
    assert_eq!(children.len(), 5, "{got}");
    let mut ranks: Vec<u64> = candidates
        .iter()
        .map(|c| c["rank"].as_u64().unwrap())
        .collect();
    ranks.sort();
    for child in children {
        assert_eq!(child["status"], "FINISHED");
        let candidate = candidates
            .iter()
            .find(|c| {
                let logged = child["params"]["C"].as_str().unwrap().parse::<f64>().ok();
                c["params"]["C"].as_f64() == logged
            })
            .unwrap_or_else(|| panic!("a child run of no candidate: {child}"));
        let mean = child["metrics"]["accuracy_mean"].as_f64().unwrap();
        assert!((mean - candidate["mean"].as_f64().unwrap()).abs() < 1e-12);
        assert!(candidate["rank"].as_u64().unwrap() <= ranks[4], "{child}");
    }
    assert_eq!(got["params"]["scoring"], "accuracy");
    assert_eq!(got["tags"]["skiff.command"], "tune");
    assert_eq!(got["outputs"].as_array().unwrap().len(), 1, "{got}");
}

const PREDICT_EXPORT: &str = r#"
import json, sys
import numpy as np, pandas as pd
import mlflow, onnxruntime as ort
model_dir, test_csv = sys.argv[1], sys.argv[2]
model = mlflow.pyfunc.load_model(model_dir)
specs = model.metadata.get_input_schema().inputs
session = ort.InferenceSession(f"{model_dir}/model.onnx")
raw = pd.read_csv(test_csv, dtype=str, keep_default_na=False)
if [s.name for s in specs] == ["X"]:
    names = json.loads(model.metadata.metadata["skiff.feature_names"])
    feed = {"X": raw[names].astype(np.float64).to_numpy(np.float32)}
else:
    feed = {}
    for s in specs:
        column = raw[s.name]
        if s.type == np.dtype(str):
            values = column.to_numpy(str)
        else:
            values = np.array([np.nan if v in ("", "NA") else float(v) for v in column], s.type)
        feed[s.name] = values.reshape(-1, 1)
out = model.predict(feed)
print(json.dumps({
    "inputs": [s.name for s in specs],
    "dtypes": [str(s.type) for s in specs],
    "onnx_inputs": [i.name for i in session.get_inputs()],
    "metadata": model.metadata.metadata,
    "label": [str(v) for v in out["label"]],
    "probabilities": out["probabilities"].tolist(),
}))
"#;

/// `skiff export mlflow MODEL -o FOLDER --json`, which must succeed; its JSON.
fn export_mlflow(model: &Path, folder: &Path) -> serde_json::Value {
    let out = ok(skiff()
        .args(["export", "mlflow"])
        .arg(model)
        .arg("-o")
        .arg(folder)
        .arg("--json")
        .output()
        .unwrap());
    serde_json::from_str(&out).unwrap()
}

/// `skiff export mlflow` of `model`, then pyfunc's predictions on `test` against skiff's.
fn export_predicts_as_skiff(model: &Path, test: &Path, dir: &Path) -> serde_json::Value {
    let out_dir = dir.join("mlflow-model");
    let export = export_mlflow(model, &out_dir);
    assert_eq!(export["files"].as_array().unwrap().len(), 5, "{export}");
    let got = py_json(
        PREDICT_EXPORT,
        "http://127.0.0.1:9",
        &[out_dir.to_str().unwrap(), test.to_str().unwrap()],
        &String::new,
    );
    assert_eq!(
        got["inputs"], got["onnx_inputs"],
        "the signature names every input"
    );
    assert_eq!(got["metadata"]["skiff.sha256"], export["sha256"]);
    assert_same_predictions(&got, &skiff_predictions(model, test));
    got
}

#[test]
fn an_exported_model_predicts_as_skiff_for_numbers_and_for_text_with_gaps() {
    let dir = tempfile::tempdir().unwrap();
    let iris = crate::iris_model(dir.path());
    let got = export_predicts_as_skiff(&iris, &example("iris/test.csv"), dir.path());
    assert_eq!(got["inputs"], serde_json::json!(["X"]));

    // penguins: text columns and gaps, one input per column
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/penguins");
    let penguins = dir.path().join("penguins.onnx");
    ok(crate::fit(&data.join("train.csv"), "species", &penguins));
    let test = std::fs::read_to_string(data.join("test.csv")).unwrap();
    let mut lines: Vec<String> = test.lines().map(str::to_string).collect();
    // gaps in text and numeric columns, empty and NA
    lines[1] = "Chinstrap,Dream,,16.6,187.0,2900.0,,2007".into();
    lines[2] = "Gentoo,NA,46.5,NA,210.0,4550.0,NA,2007".into();
    let with_gaps = dir.path().join("penguins-test.csv");
    std::fs::write(&with_gaps, lines.join("\n") + "\n").unwrap();
    let table_dir = dir.path().join("table");
    std::fs::create_dir(&table_dir).unwrap();
    let got = export_predicts_as_skiff(&penguins, &with_gaps, &table_dir);
    let inputs: Vec<&str> = got["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for column in ["island", "bill_length_mm", "sex"] {
        assert!(inputs.contains(&column), "{inputs:?}");
    }
    assert!(
        got["dtypes"].to_string().contains("<U"),
        "text inputs are str: {got}"
    );
}

#[test]
fn a_server_that_is_down_is_one_line_and_the_model_is_still_written() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("iris.onnx");
    let url = format!("http://127.0.0.1:{}", free_port());
    let out = skiff()
        .args(["fit", "logistic-regression", "--data"])
        .arg(example("iris/train.csv"))
        .args(["--target", "species", "-o"])
        .arg(&model)
        .args(["--mlflow", &url, "--register", "iris"])
        .output()
        .unwrap();
    fails_with(
        out,
        &["cannot reach the MLflow tracking server", "after 4 tries"],
    );
    assert!(std::fs::metadata(&model).unwrap().len() > 0);

    // cv writes no model: refused before any work
    let out = skiff()
        .args(["cv", "logistic-regression", "--data"])
        .arg(example("iris/train.csv"))
        .args([
            "--target",
            "species",
            "--mlflow",
            &url,
            "--register",
            "iris",
        ])
        .output()
        .unwrap();
    fails_with(out, &["--register needs a model", "`skiff cv` writes none"]);
}

#[test]
fn basic_auth_takes_mlflows_variables_and_a_wrong_password_is_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let password = "skiff-test-secret-1";
    let config = dir.path().join("auth.ini");
    std::fs::write(
        &config,
        format!(
            "[mlflow]\ndefault_permission = READ\ndatabase_uri = sqlite:///{}\n\
             admin_username = admin\nadmin_password = {password}\n\
             authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n",
            dir.path().join("auth.db").display()
        ),
    )
    .unwrap();
    let server = MlflowServer::start(
        &python_path(),
        &["--app-name", "basic-auth"],
        &[
            ("MLFLOW_AUTH_CONFIG_PATH", config.to_str().unwrap()),
            ("MLFLOW_FLASK_SERVER_SECRET_KEY", "skiff-tests"),
        ],
    );
    let fit = |password: &str, model: &Path| {
        skiff()
            .args(["fit", "logistic-regression", "--data"])
            .arg(example("iris/train.csv"))
            .args(["--target", "species", "-o"])
            .arg(model)
            .args([
                "--mlflow",
                &server.url(),
                "--register",
                "iris-auth",
                "--json",
            ])
            .env("MLFLOW_TRACKING_USERNAME", "admin")
            .env("MLFLOW_TRACKING_PASSWORD", password)
            .env_remove("MLFLOW_TRACKING_TOKEN")
            .output()
            .unwrap()
    };
    let model = dir.path().join("a.onnx");
    let out: serde_json::Value = serde_json::from_str(&ok(fit(password, &model))).unwrap();
    assert_eq!(out["mlflow"]["registered"]["version"], "1", "{out}");

    let refused = dir.path().join("b.onnx");
    fails_with(
        fit("wrong-password", &refused),
        &["refused skiff's credentials", "MLFLOW_TRACKING_PASSWORD"],
    );
    assert!(
        refused.is_file(),
        "the model is written before MLflow is tried"
    );
}

/// `{"inputs": {COLUMN: [[value], ...]}}` for the first `n` complete rows of a CSV: numbers as
/// numbers, text as text, one [N, 1] tensor per column (the target left out).
fn invocation_of(csv: &Path, target: &str, n: usize) -> serde_json::Value {
    let (header, rows) = crate::read_csv(&std::fs::read_to_string(csv).unwrap());
    let rows: Vec<Vec<String>> = rows
        .into_iter()
        .filter(|row| row.iter().all(|cell| !cell.is_empty() && cell != "NA"))
        .take(n)
        .collect();
    assert_eq!(rows.len(), n, "{} has {n} complete rows", csv.display());
    let mut inputs = serde_json::Map::new();
    for (i, column) in header.iter().enumerate().filter(|(_, c)| *c != target) {
        let cells: Vec<serde_json::Value> = rows
            .iter()
            .map(|row| match row[i].parse::<f64>() {
                Ok(number) => serde_json::json!([number]),
                Err(_) => serde_json::json!([row[i]]),
            })
            .collect();
        inputs.insert(column.clone(), cells.into());
    }
    serde_json::json!({ "inputs": inputs })
}

/// Asserts two `{"predictions": {"label": [...], "probabilities": [[...]]}}` answers agree:
/// the same labels, probabilities within 1e-6.
fn assert_same_answers(want: &serde_json::Value, got: &serde_json::Value, what: &str) {
    let (want, got) = (&want["predictions"], &got["predictions"]);
    assert_eq!(want["label"], got["label"], "{what}: {got} vs {want}");
    let rows = |v: &serde_json::Value| -> Vec<Vec<f64>> {
        serde_json::from_value(v["probabilities"].clone()).unwrap()
    };
    let (want_p, got_p) = (rows(want), rows(got));
    assert_eq!(want_p.len(), got_p.len(), "{what}");
    for (w, g) in want_p.iter().flatten().zip(got_p.iter().flatten()) {
        assert!((w - g).abs() <= 1e-6, "{what}: {got} vs {want}");
    }
}

#[test]
fn skiff_serves_registered_models_and_model_folders_as_mlflow_models_serve_does() {
    let server = server();
    let url = server.url();
    let dir = tempfile::tempdir().unwrap();
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/penguins");
    let model = dir.path().join("penguins.onnx");
    ok(skiff()
        .args(["fit", "logistic-regression", "--data"])
        .arg(data.join("train.csv"))
        .args(["--target", "species", "-o"])
        .arg(&model)
        .args(["--mlflow", &url, "--register", "penguins-lr"])
        .output()
        .unwrap());
    let folder = dir.path().join("penguins-mlflow");
    export_mlflow(&model, &folder);
    py_json(
        "import mlflow\n\
         mlflow.MlflowClient().set_registered_model_alias('penguins-lr', 'champion', '1')\n\
         print('{}')",
        &url,
        &[],
        &|| server.log_text(),
    );
    let request = invocation_of(&data.join("test.csv"), "species", 12);

    // MLflow's own scoring server, on the folder skiff exported.
    let scoring = MlflowServer::models_serve(&python_path(), &folder);
    let (status, want) = skiff_testing::http_json(
        "POST",
        &format!("{}/invocations", scoring.url()),
        Some(&request),
    );
    assert_eq!(
        status,
        200,
        "mlflow models serve: {want}\n{}",
        scoring.log_text()
    );
    drop(scoring);

    // skiff serves the folder, the registered version (by number and by alias), and an image
    // packed from it: each answers MLflow's request as MLflow does, under the name it is known by.
    let layout = dir.path().join("image");
    let image = format!("oci:{}:v1", layout.display());
    let pack = ok(skiff()
        .args([
            "pack",
            "models:/penguins-lr/1",
            "--mlflow",
            &url,
            "-o",
            &image,
        ])
        .output()
        .unwrap());
    assert!(pack.contains("sha256:"), "{pack}");
    let sources = [
        (folder.display().to_string(), "penguins-mlflow"),
        ("models:/penguins-lr/1".to_string(), "penguins-lr"),
        ("models:/penguins-lr@champion".to_string(), "penguins-lr"),
        (image, "penguins-lr"),
    ];
    for (source, name) in sources {
        let served = crate::serve::Server::start(&source, &["--mlflow", &url]);
        let (status, _) = served.get(&format!("/v2/models/{name}"));
        assert_eq!(
            status,
            200,
            "{source} is served as {name}: {}",
            served.log_text()
        );
        let (status, got) = served.post("/invocations", &request);
        assert_eq!(status, 200, "{source}: {got}");
        assert_same_answers(&want, &got, &source);
        let (status, _) = served.get("/ping");
        assert_eq!(status, 200);
    }
}

#[test]
fn a_missing_version_an_unknown_server_and_a_changed_model_file_are_one_line() {
    let server = server();
    let url = server.url();
    fails_with(
        crate::run(&["serve", "models:/no-such-model/1", "--mlflow", &url]),
        &["has no version 1 of \"no-such-model\"", "--register"],
    );
    fails_with(
        skiff()
            .args(["serve", "models:/iris/1"])
            .env_remove("MLFLOW_TRACKING_URI")
            .output()
            .unwrap(),
        &["--mlflow URL", "MLFLOW_TRACKING_URI"],
    );
    fails_with(
        crate::run(&["serve", "models:/iris", "--mlflow", &url]),
        &["models:/NAME/VERSION"],
    );

    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("iris.onnx");
    ok(crate::fit(&example("iris/train.csv"), "species", &model));
    let folder = dir.path().join("iris-mlflow");
    export_mlflow(&model, &folder);
    // Another model put in its place: the checksum its MLmodel records no longer matches.
    let other = dir.path().join("other.onnx");
    ok(skiff()
        .args(["fit", "gaussian-nb", "--data"])
        .arg(example("iris/train.csv"))
        .args(["--target", "species", "-o"])
        .arg(&other)
        .output()
        .unwrap());
    std::fs::copy(&other, folder.join("model.onnx")).unwrap();
    for command in ["serve", "pack"] {
        let mut args = vec![command, folder.to_str().unwrap()];
        if command == "pack" {
            args.extend(["-o", "oci:/nonexistent/never:v1"]);
        }
        fails_with(
            crate::run(&args),
            &["does not match its MLmodel's skiff.sha256"],
        );
    }
}
