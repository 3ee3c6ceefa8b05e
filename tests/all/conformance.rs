//! The conformance suite: every case of `tests/conformance.json` (an estimator, a dataset,
//! hyperparameters and scikit-learn's equivalent) is fitted natively, exported, and run in
//! skiff's runtime on both backends (tract, and ONNX Runtime's CPU provider loaded by skiff) and
//! in ONNX Runtime from Python, and packed into a component that runs in Node.js (jco), in
//! skiff's own host for the first case of each estimator and of each data set, and in plain
//! `wasmtime serve` (over the Open Inference Protocol) for the first case of each data set:
//! compiling a component takes seconds, the engine inside is the same in every host, and
//! what differs between hosts (their input and HTTP glue) depends on a data set's inputs, not
//! on the model. Native,
//! tract, ONNX Runtime and the component in each host must agree:
//! values within 1e-5 + 1e-4·|value|, labels identical except rows whose two best scores are
//! within 1e-5 of each other (at most 1% of a case). The native test metric must be within
//! 0.03 of scikit-learn's, fitted live with the same hyperparameters on the same split (a
//! case may allow more, with a written reason, never more than 0.1).

use crate::*;
use serde::Deserialize;
use serde_json::{Value, json};
use skiff_data::Table;
use skiff_learn::{Task, metrics};
use skiff_runtime::{BackendKind, BackendOptions, Model, Tensor, TensorData};
use std::collections::BTreeMap;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Case {
    estimator: String,
    pub(crate) dataset: String,
    target: String,
    #[serde(default)]
    set: BTreeMap<String, String>,
    /// Scale the features first (`standard`, `min-max` or `robust`), in the exported graph too.
    scale: Option<skiff_learn::Scale>,
    /// Columns left out (`--drop`).
    #[serde(default)]
    drop: Vec<String>,
    /// scikit-learn's estimator with the same hyperparameters, as a Python expression.
    sklearn: String,
    /// Allowed distance from scikit-learn's metric (default 0.03).
    metric_tolerance: Option<f64>,
    /// Why a case needs more than the default.
    reason: Option<String>,
}

impl Case {
    pub(crate) fn id(&self) -> String {
        let dataset = self.dataset.rsplit('/').next().unwrap();
        let mut set: Vec<String> = self.set.iter().map(|(k, v)| format!("{k}={v}")).collect();
        if let Some(scale) = self.scale {
            set.insert(0, format!("--scale {}", scale.as_str()));
        }
        if !self.drop.is_empty() {
            set.insert(0, format!("--drop {}", self.drop.join(",")));
        }
        format!("{} on {dataset} [{}]", self.estimator, set.join(" "))
    }
}

/// What the native model predicted on a case's test rows.
pub(crate) struct Native {
    task: Task,
    labels: Vec<String>,
    values: ndarray::Array2<f64>,
    metric: f64,
}

/// The cases of `tests/conformance.json`.
pub(crate) fn catalog() -> Vec<Case> {
    let path = example("../tests/conformance.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

const ATOL: f64 = 1e-5;
const RTOL: f64 = 1e-4;

#[test]
fn every_case_agrees_natively_on_both_backends_in_onnxruntime_and_with_scikit_learn() {
    let _exclusive = exclusive();
    let root = example("..");
    let mut cases: Vec<Case> = serde_json::from_str(
        &std::fs::read_to_string(root.join("tests/conformance.json")).unwrap(),
    )
    .unwrap();
    // SKIFF_CONFORMANCE_ONLY=TEXT runs only the cases whose id holds TEXT, while working on
    // one estimator; the full suite runs without it.
    if let Some(only) = std::env::var_os("SKIFF_CONFORMANCE_ONLY") {
        let only = only.to_string_lossy();
        cases.retain(|c| c.id().contains(only.as_ref()));
        assert!(
            !cases.is_empty(),
            "no case matches SKIFF_CONFORMANCE_ONLY={only}"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    let mut jobs = Vec::new();
    let mut component_jobs = Vec::new();
    let mut natives = Vec::new();
    let mut served_datasets = std::collections::HashSet::new();
    let mut hosted_estimators = std::collections::HashSet::new();
    let engine = component_engine();
    for (i, case) in cases.iter().enumerate() {
        let tolerance = case.metric_tolerance.unwrap_or(0.03);
        assert!(
            tolerance <= 0.1 && (tolerance <= 0.03 || case.reason.is_some()),
            "{}: a metric tolerance above 0.03 needs a reason, and 0.1 is the most",
            case.id()
        );
        let train = root.join(&case.dataset).join("train.csv");
        let test = root.join(&case.dataset).join("test.csv");
        let (native, model_bytes, inputs, sklearn) = fit_case(case, &train, &test);
        let model_path = dir.path().join(format!("case{i}.onnx"));
        std::fs::write(&model_path, &model_bytes).unwrap();
        // tract and ONNX Runtime's CPU provider, each through skiff's runtime.
        let tensors: Vec<Tensor> = inputs.iter().map(|(_, t)| t.clone()).collect();
        let run = |model: &Model| {
            let outputs = model.run(tensors.clone()).unwrap();
            let named: BTreeMap<String, Value> = model
                .outputs()
                .iter()
                .zip(&outputs)
                .map(|(spec, t)| (spec.name.clone(), serde_json::to_value(&t.data).unwrap()))
                .collect();
            named
        };
        for backend in [BackendKind::Tract, BackendKind::Ort] {
            let model = Model::load("case", &model_bytes, &BackendOptions::new(backend))
                .unwrap_or_else(|e| panic!("{}: cannot load on {backend}: {e}", case.id()));
            compare(
                &case.id(),
                &model.backend(),
                &native,
                &run(&model),
                &mut failures,
            );
        }
        let component = dir.path().join(format!("case{i}.wasm"));
        let composed = skiff_pack::component::compose(&engine, "case", &model_bytes).unwrap();
        std::fs::write(&component, &composed).unwrap();
        if let Err(e) = crate::component::wasm_tools_validate(&component) {
            failures.push(format!("{}: wasm-tools validate: {e}", case.id()));
        }
        // The component in skiff's own host, for the first case of each estimator and of each
        // data set: compiling a component takes seconds, and jco runs every case's.
        let new_dataset = served_datasets.insert(case.dataset.clone());
        if hosted_estimators.insert(case.estimator.clone()) || new_dataset {
            let hosted = skiff_component::load("case", &composed, &[], &Default::default())
                .unwrap_or_else(|e| panic!("{}: skiff cannot host its component: {e}", case.id()));
            compare(
                &case.id(),
                "component (skiff)",
                &native,
                &run(&hosted),
                &mut failures,
            );
        }
        // JSON has no NaN: a missing number travels as null.
        let wire = |kserve: bool| -> Vec<Value> {
            inputs
                .iter()
                .map(|(name, t)| {
                    let datatype = t.data.datatype().to_string();
                    json!({
                        "name": name,
                        "shape": t.shape,
                        "datatype": if kserve { datatype } else { datatype.to_lowercase() },
                        "data": serde_json::to_value(&t.data).unwrap(),
                    })
                })
                .collect()
        };
        if new_dataset {
            let server = crate::serve::Server::wasmtime(&component);
            let (status, answer) =
                server.post("/v2/models/case/infer", &json!({ "inputs": wire(true) }));
            drop(server);
            assert_eq!(status, 200, "{}: wasmtime serve: {answer}", case.id());
            let served: BTreeMap<String, Value> = answer["outputs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|o| (o["name"].as_str().unwrap().to_string(), o["data"].clone()))
                .collect();
            compare(
                &case.id(),
                "component (wasmtime serve)",
                &native,
                &served,
                &mut failures,
            );
        }
        component_jobs.push(json!({
            "id": i.to_string(),
            "component": component,
            "inputs": wire(false),
        }));
        jobs.push(json!({
            "id": i.to_string(),
            "model": model_path,
            "inputs": wire(true),
            "train": train,
            "test": test,
            "target": case.target,
            "drop": case.drop,
            "task": native.task,
            "sklearn": sklearn,
        }));
        natives.push(native);
    }
    // ONNX Runtime and scikit-learn, all cases in one Python process.
    let mut child = python()
        .arg(root.join("tests/conformance.py"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    serde_json::to_writer(child.stdin.take().unwrap(), &jobs).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "tests/conformance.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let results: BTreeMap<String, Value> = serde_json::from_slice(&out.stdout).unwrap();
    // Each model as a component, in Node.js.
    let components = crate::component::jco_predict(&component_jobs);
    let mut report = Vec::new();
    for (i, (case, native)) in cases.iter().zip(&natives).enumerate() {
        let result = &results[&i.to_string()];
        let onnx: BTreeMap<String, Value> = serde_json::from_value(result["onnx"].clone()).unwrap();
        let onnx = onnx.into_iter().map(|(k, v)| (k, flatten(&v))).collect();
        compare(&case.id(), "onnxruntime", native, &onnx, &mut failures);
        let component: BTreeMap<String, Value> =
            serde_json::from_value(components[&i.to_string()].clone()).unwrap();
        compare(
            &case.id(),
            "component (jco)",
            native,
            &component,
            &mut failures,
        );
        let sklearn = result["sklearn_metric"].as_f64().unwrap();
        let tolerance = case.metric_tolerance.unwrap_or(0.03);
        report.push(format!(
            "{}: skiff {:.4}, scikit-learn {sklearn:.4}",
            case.id(),
            native.metric
        ));
        if (native.metric - sklearn).abs() > tolerance {
            failures.push(format!(
                "{}: test metric {:.4} is more than {tolerance} from scikit-learn's {sklearn:.4}",
                case.id(),
                native.metric
            ));
        }
    }
    eprintln!("{}", report.join("\n"));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Fits a case natively; returns its test predictions, the exported model and the test rows.
/// Fits `case` as `skiff fit` does; returns the native predictions on the test rows, the
/// exported model, its inputs for the test rows (by input name), and scikit-learn's pipeline
/// for the same fit.
pub(crate) fn fit_case(
    case: &Case,
    train: &std::path::Path,
    test: &std::path::Path,
) -> (Native, Vec<u8>, Vec<(String, Tensor)>, String) {
    // The same code as `skiff fit`: the estimator by name, the target read for its task, every
    // other column a feature, preprocessing for text and gaps.
    let spec = skiff_learn::FitSpec {
        algorithm: case.estimator.clone(),
        target: Some(case.target.clone()),
        set: case.set.clone().into_iter().collect(),
        scale: case.scale,
        drop: case.drop.clone(),
        ..Default::default()
    };
    let report = skiff_learn::fit_table(&Table::from_path(train).unwrap(), &spec)
        .unwrap_or_else(|e| panic!("{}: {e}", case.id()));
    let model = &report.model;
    let bytes = report.to_onnx().to_bytes();
    let mut test = Table::from_path(test).unwrap();
    let keep: Vec<bool> = test
        .column(&case.target)
        .unwrap()
        .iter()
        .map(|c| !test.is_missing(c))
        .collect();
    test.retain_rows(&keep);
    let x_test = report
        .features_of(&test)
        .unwrap_or_else(|e| panic!("{}: {e}", case.id()));
    let inputs = model_inputs(&report, &test, &x_test);
    let sklearn = sklearn_pipeline(case, &report);
    let y_test: Vec<String> = test
        .column(&case.target)
        .unwrap()
        .iter()
        .map(|c| c.to_string())
        .collect();
    let values = model.scores(x_test.view());
    // The first metric `skiff eval` reports: accuracy, R², or (against the true classes) the
    // adjusted Rand index.
    let (labels, metric) = match model.predict_rows(x_test.view()) {
        skiff_learn::Predictions::Classes(p) => {
            let classes = model.classes().unwrap();
            let labels: Vec<String> = p.iter().map(|&i| classes.name(i)).collect();
            let metric = metrics::classification(&y_test, &labels)[0];
            (labels, metric)
        }
        skiff_learn::Predictions::Values(v) => {
            let truth: Vec<f64> = y_test.iter().map(|t| t.parse().unwrap()).collect();
            (Vec::new(), metrics::regression(&truth, &v)[0])
        }
        skiff_learn::Predictions::Clusters(c) => {
            let labels = c.iter().map(|c| c.to_string()).collect();
            let scores = metrics::clustering(Some(x_test.view()), &c, Some(&y_test));
            (labels, *scores.last().unwrap())
        }
    };
    let (_, metric) = metric;
    let native = Native {
        task: report.algorithm.task(),
        labels,
        values,
        metric,
    };
    (native, bytes, inputs, sklearn)
}

/// The test rows as the exported model's inputs: `X` for a table of numbers; for a table with
/// text or gaps, each column as `skiff predict` feeds it (text as written, numbers as float32
/// with NaN for gaps).
fn model_inputs(
    report: &skiff_learn::FitReport,
    test: &Table,
    x: &ndarray::Array2<f64>,
) -> Vec<(String, Tensor)> {
    if report.transformer.is_none() {
        let data = TensorData::Fp32(x.iter().map(|&v| v as f32).collect());
        return vec![(
            "X".into(),
            Tensor::new(vec![x.nrows(), x.ncols()], data).unwrap(),
        )];
    }
    report
        .columns
        .iter()
        .map(|(name, kind)| {
            let data = match test.values(name, *kind).unwrap() {
                skiff_data::Values::Numbers(v) => {
                    TensorData::Fp32(v.iter().map(|&v| v as f32).collect())
                }
                skiff_data::Values::Text(_) => TensorData::Bytes(
                    test.column(name)
                        .unwrap()
                        .iter()
                        .map(|c| c.to_string())
                        .collect(),
                ),
            };
            let tensor = Tensor::new(vec![test.n_rows(), 1], data).unwrap();
            (name.clone(), tensor)
        })
        .collect()
}

/// The scikit-learn pipeline a user would write for the same fit: the case's estimator, behind
/// the case's scaler, or behind a ColumnTransformer like skiff's for a table with text or gaps.
fn sklearn_pipeline(case: &Case, report: &skiff_learn::FitReport) -> String {
    let scaler = |scale: skiff_learn::Scale| match scale {
        skiff_learn::Scale::Standard => "StandardScaler()",
        skiff_learn::Scale::MinMax => "MinMaxScaler()",
        skiff_learn::Scale::Robust => "RobustScaler()",
    };
    let Some(transformer) = &report.transformer else {
        return match case.scale {
            None => case.sklearn.clone(),
            Some(s) => format!("make_pipeline({}, {})", scaler(s), case.sklearn),
        };
    };
    let names = |kind| skiff_learn::preprocess::names_of(&report.columns, kind);
    let mut parts = Vec::new();
    if let Some(numeric) = &transformer.numeric {
        let mut steps = Vec::new();
        if numeric.imputer.is_some() {
            steps.push("SimpleImputer(strategy='median')");
        }
        if let Some(s) = &numeric.scaler {
            steps.push(scaler(s.kind));
        }
        let steps = if steps.is_empty() {
            "'passthrough'".to_string()
        } else {
            format!("make_pipeline({})", steps.join(", "))
        };
        parts.push(format!(
            "('num', {steps}, {:?})",
            names(skiff_data::Kind::Numeric)
        ));
    }
    if let Some(first) = transformer.categorical.first() {
        let imputer = if first.fill.is_some() {
            "SimpleImputer(strategy='most_frequent'), "
        } else {
            ""
        };
        let encoder = if first.encoder.one_hot {
            "OneHotEncoder(handle_unknown='ignore')"
        } else {
            "OrdinalEncoder(handle_unknown='use_encoded_value', unknown_value=-1)"
        };
        parts.push(format!(
            "('cat', make_pipeline({imputer}{encoder}), {:?})",
            names(skiff_data::Kind::Categorical)
        ));
    }
    // An estimator taking categories natively is told which features hold their codes.
    let estimator = case.sklearn.replace(
        "categorical_features=CODES",
        &format!("categorical_features={:?}", transformer.category_codes()),
    );
    format!(
        "make_pipeline(ColumnTransformer([{}]), {estimator})",
        parts.join(", "),
    )
}

/// A nested JSON array as one flat array.
fn flatten(v: &Value) -> Value {
    fn walk(v: &Value, out: &mut Vec<Value>) {
        match v {
            Value::Array(items) => items.iter().for_each(|i| walk(i, out)),
            other => out.push(other.clone()),
        }
    }
    let mut out = Vec::new();
    walk(v, &mut out);
    Value::Array(out)
}

/// Checks one runtime's outputs (name → flat JSON array) against the native predictions.
fn compare(
    id: &str,
    runtime: &str,
    native: &Native,
    outputs: &BTreeMap<String, Value>,
    failures: &mut Vec<String>,
) {
    let values_name = match native.task {
        Task::Classification => "probabilities",
        Task::Regression => "variable",
        Task::Clustering => "scores",
    };
    let Some(Value::Array(values)) = outputs.get(values_name) else {
        failures.push(format!("{id}: {runtime} has no {values_name} output"));
        return;
    };
    if values.len() != native.values.len() {
        failures.push(format!(
            "{id}: {runtime} {values_name} has {} values, native {}",
            values.len(),
            native.values.len()
        ));
        return;
    }
    let mut worst = (0.0, 0);
    for (i, (v, n)) in values.iter().zip(native.values.iter()).enumerate() {
        let v = v.as_f64().unwrap_or(f64::NAN);
        let excess = (v - n).abs() / (ATOL + RTOL * n.abs());
        if excess > worst.0 || excess.is_nan() {
            worst = (excess, i);
        }
    }
    if worst.0 > 1.0 || worst.0.is_nan() {
        let i = worst.1;
        failures.push(format!(
            "{id}: {runtime} {values_name}[{i}] = {} but native {} (beyond {ATOL} + {RTOL}·|v|)",
            values[i],
            native.values.iter().nth(i).unwrap()
        ));
    }
    if native.labels.is_empty() {
        return;
    }
    let Some(Value::Array(labels)) = outputs.get("label") else {
        failures.push(format!("{id}: {runtime} has no label output"));
        return;
    };
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let width = native.values.ncols();
    let mut ties = 0;
    for (row, (label, expected)) in labels.iter().zip(&native.labels).enumerate() {
        if text(label) == *expected {
            continue;
        }
        let mut scores: Vec<f64> = native.values.row(row).to_vec();
        scores.sort_by(|a, b| b.total_cmp(a));
        if width > 1 && (scores[0] - scores[1]).abs() < 1e-5 {
            ties += 1;
        } else {
            failures.push(format!(
                "{id}: {runtime} labels row {row} {} but native {expected}",
                text(label)
            ));
            return;
        }
    }
    if ties * 100 > native.labels.len() {
        failures.push(format!(
            "{id}: {runtime} differs on {ties} near-tied rows, more than 1%"
        ));
    }
}
