//! The model zoo: models users bring, written by the converters they use (skl2onnx,
//! onnxmltools for XGBoost and LightGBM, PyTorch's exporter), each answering as onnxruntime
//! does in `skiff predict` and `skiff serve` on both backends, and as a component.
//!
//! `tests/zoo/make.py` fits and converts them live and records onnxruntime's answers; labels
//! must be identical and every value within 1e-4 (plus 1e-5 relative). The server is asked by
//! Triton's own client (`tests/zoo/triton_check.py`), with binary tensors (NaN cells included)
//! and JSON.

use crate::serve::Server;
use crate::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

/// The zoo, made once for the tests that share it.
struct Zoo {
    dir: tempfile::TempDir,
    cases: Vec<Value>,
}

fn zoo() -> &'static Zoo {
    static ZOO: OnceLock<Zoo> = OnceLock::new();
    ZOO.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let out = python()
            .arg(example("../tests/zoo/make.py"))
            .arg(dir.path())
            .output()
            .expect("python runs");
        assert!(
            out.status.success(),
            "tests/zoo/make.py failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let manifest = std::fs::read_to_string(dir.path().join("manifest.json")).unwrap();
        let cases: Vec<Value> = serde_json::from_str(&manifest).unwrap();
        // Every converter writes every model at opsets skiff runs; one that could not would
        // be listed here with the converter's reason.
        let unsupported: Vec<String> = cases
            .iter()
            .filter_map(|c| Some(format!("{}: {}", c["id"], c.get("unsupported")?)))
            .collect();
        assert!(
            unsupported.is_empty(),
            "the converters could not write:\n{}",
            unsupported.join("\n")
        );
        Zoo { dir, cases }
    })
}

impl Zoo {
    fn path(&self, case: &Value, key: &str) -> PathBuf {
        self.dir.path().join(case[key].as_str().unwrap())
    }
}

fn id(case: &Value) -> &str {
    case["id"].as_str().unwrap()
}

/// `skiff predict` on a case's CSV rows: where it differs from onnxruntime, if anywhere.
fn predict_differs(zoo: &Zoo, case: &Value, backend: &str) -> Option<String> {
    let proba = !case["proba_output"].is_null();
    let mut command = skiff();
    command
        .arg("predict")
        .arg(zoo.path(case, "model"))
        .arg("--data")
        .arg(zoo.path(case, "data"))
        .args(["--backend", backend]);
    if proba {
        command.arg("--proba");
    }
    let out = command.output().unwrap();
    if !out.status.success() {
        return Some(String::from_utf8_lossy(&out.stderr).trim().to_string());
    }
    let (header, rows) = read_csv(&String::from_utf8(out.stdout).unwrap());
    let csv_rows: Vec<usize> = case["csv_rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i.as_u64().unwrap() as usize)
        .collect();
    if rows.len() != csv_rows.len() {
        return Some(format!("{} rows, expected {}", rows.len(), csv_rows.len()));
    }
    // The expected columns, in order: label (and probabilities), else every output's values.
    let outputs = &case["outputs"];
    let mut expected: Vec<(String, Vec<Value>)> = Vec::new();
    let mut add = |name: &str, column_names: Vec<String>| {
        let values: Vec<Vec<Value>> = outputs[name]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_array().cloned().unwrap_or_else(|| vec![v.clone()]))
            .collect();
        for (j, column) in column_names.into_iter().enumerate() {
            expected.push((
                column,
                csv_rows.iter().map(|&r| values[r][j].clone()).collect(),
            ));
        }
    };
    if let Some(label) = case["label_output"].as_str() {
        add(label, vec!["prediction".into()]);
        if proba {
            let classes = case["classes"].as_array().unwrap().iter();
            let names = classes
                .map(|c| format!("p_{}", c.as_str().unwrap()))
                .collect();
            add(case["proba_output"].as_str().unwrap(), names);
        }
    } else {
        // skiff writes the outputs in the model's order; the manifest's keys are sorted.
        let mut names: Vec<&String> = outputs.as_object().unwrap().keys().collect();
        names.sort_by_key(|n| {
            header
                .iter()
                .position(|h| h == *n || h.starts_with(&format!("{n}_")))
        });
        for name in names {
            let width = outputs[name][0].as_array().map_or(1, Vec::len);
            let columns = match (case["task"].as_str(), width) {
                (Some("regressor"), 1) => vec!["prediction".to_string()],
                (_, 1) => vec![name.clone()],
                (_, w) => (0..w).map(|j| format!("{name}_{j}")).collect(),
            };
            add(name, columns);
        }
    }
    let expected_header: Vec<&String> = expected.iter().map(|(h, _)| h).collect();
    if header.iter().collect::<Vec<_>>() != expected_header {
        return Some(format!("header {header:?}, expected {expected_header:?}"));
    }
    for (i, row) in rows.iter().enumerate() {
        for (cell, (column, values)) in row.iter().zip(&expected) {
            let same = match &values[i] {
                Value::Number(e) => cell.parse::<f64>().is_ok_and(|g| {
                    let e = e.as_f64().unwrap();
                    (g - e).abs() <= 1e-4 + 1e-5 * e.abs()
                }),
                Value::String(e) => cell == e,
                other => cell == &other.to_string(),
            };
            if !same {
                return Some(format!(
                    "row {} column {column}: {cell}, onnxruntime {}",
                    csv_rows[i], values[i]
                ));
            }
        }
    }
    None
}

/// Two-class tree classifiers converted by skl2onnx once answered one label for every row on
/// tract while their probabilities were right; each two-class tree model (scikit-learn's
/// forests and boosters, XGBoost's, LightGBM's) now gives onnxruntime's labels.
#[test]
fn binary_tree_classifiers_answer_onnxruntimes_labels() {
    let zoo = zoo();
    let binary_trees: Vec<&Value> = zoo
        .cases
        .iter()
        .filter(|c| id(c).contains("_binary") && id(c).contains("classifier"))
        .filter(|c| {
            let tree_models = ["forest", "trees", "tree", "boost", "xgb", "lgbm"];
            tree_models.iter().any(|k| id(c).contains(k))
        })
        .collect();
    assert!(
        binary_trees.len() >= 16,
        "{} binary tree cases",
        binary_trees.len()
    );
    let mut failures = Vec::new();
    for case in binary_trees {
        let labels: std::collections::BTreeSet<String> = case["outputs"]
            [case["label_output"].as_str().unwrap()]
        .as_array()
        .unwrap()
        .iter()
        .map(Value::to_string)
        .collect();
        assert_eq!(
            labels.len(),
            2,
            "{}: onnxruntime answers {labels:?}",
            id(case)
        );
        if let Some(diff) = predict_differs(zoo, case, "tract") {
            failures.push(format!("{}: {diff}", id(case)));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_zoo_model_predicts_as_onnxruntime_on_both_backends() {
    let zoo = zoo();
    let mut failures = Vec::new();
    for case in &zoo.cases {
        for backend in ["tract", "ort"] {
            if let Some(diff) = predict_differs(zoo, case, backend) {
                failures.push(format!("{} (skiff predict, {backend}): {diff}", id(case)));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_zoo_model_is_served_as_onnxruntime_answers_on_both_backends() {
    let zoo = zoo();
    let models: Vec<PathBuf> = zoo.cases.iter().map(|c| zoo.path(c, "model")).collect();
    let mut failures = Vec::new();
    for backend in ["tract", "ort"] {
        let server = serve_all(&models, &["--backend", backend]);
        if let Some(report) = triton_check(&server, &zoo.dir.path().join("manifest.json")) {
            failures.push(format!("skiff serve --backend {backend}:\n{report}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Each model packed into a component and served by skiff in wasmtime, a few components to a
/// server: each one's engine reserves its own instance pool.
#[test]
fn every_zoo_model_answers_as_onnxruntime_in_a_component() {
    let _exclusive = exclusive();
    let zoo = zoo();
    let engine = component_engine();
    let dir = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    for (group, cases) in zoo.cases.chunks(COMPONENTS_PER_SERVER).enumerate() {
        let mut wasm = Vec::new();
        for case in cases {
            let model = std::fs::read(zoo.path(case, "model")).unwrap();
            // As `skiff pack` makes it: the model loaded into the engine's initial state.
            let loaded = skiff_component::preinit::preinitialise(
                &engine,
                id(case),
                &model,
                Some(&wasm_cache()),
            )
            .unwrap_or_else(|e| panic!("{}: {e}", id(case)));
            let composed = skiff_pack::component::compose(&loaded, id(case), &[]).unwrap();
            let path = dir.path().join(format!("{}.wasm", id(case)));
            std::fs::write(&path, composed).unwrap();
            wasm.push(path);
        }
        let manifest = dir.path().join(format!("manifest{group}.json"));
        std::fs::write(&manifest, serde_json::to_string(cases).unwrap()).unwrap();
        let server = serve_all(&wasm, &[]);
        if let Some(report) = triton_check(&server, &manifest) {
            failures.push(format!("skiff serve of components:\n{report}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// How many components one test server loads.
const COMPONENTS_PER_SERVER: usize = 8;

/// `skiff serve` of every file, each under its stem, ready.
fn serve_all(models: &[PathBuf], extra: &[&str]) -> Server {
    let (first, rest) = models.split_first().unwrap();
    let mut args: Vec<&str> = rest.iter().map(|p| p.to_str().unwrap()).collect();
    args.extend(extra);
    let mut server = Server::spawn(first.to_str().unwrap(), &args);
    // Components compile their engine when they load: seconds each.
    server.wait_for_200_within("/v2/health/ready", Duration::from_secs(600));
    server
}

/// Runs tests/zoo/triton_check.py against `server` for the cases of `manifest`; its report
/// when a check failed.
fn triton_check(server: &Server, manifest: &Path) -> Option<String> {
    let out = python()
        .arg(example("../tests/zoo/triton_check.py"))
        .arg(server.base.trim_start_matches("http://"))
        .arg(manifest)
        .output()
        .expect("python runs");
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    (!out.status.success()).then(|| {
        let failed: Vec<&str> = report.lines().filter(|l| !l.starts_with("ok")).collect();
        format!(
            "{}{}",
            failed.join("\n"),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}
