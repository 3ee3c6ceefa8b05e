//! `skiff fit|tune|cv --logdir`: TensorBoard's own reader (`EventAccumulator`) and tbparse read
//! back every value skiff says it wrote, float32-exact, and the HParams sessions; a corrupted
//! record is refused by the reader, which shows the checksums are the ones it checks.

use super::{example, ok, python, skiff};
use serde_json::Value;
use std::path::Path;

/// What TensorBoard's reader (`tensorboard`) and tbparse (`tbparse`) saw under `logdir`.
fn read(logdir: &Path) -> Value {
    let out = python()
        .arg(example("../tests/tensorboard_read.py"))
        .arg(logdir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "reading {} failed: {}",
        logdir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn json_of(args: &[&str], logdir: &Path) -> Value {
    serde_json::from_str(&ok(skiff()
        .args(args)
        .arg("--logdir")
        .arg(logdir)
        .arg("--json")
        .output()
        .unwrap()))
    .unwrap()
}

/// Points as TensorBoard stores them: float32.
fn as_float32(points: impl IntoIterator<Item = (u64, f64)>) -> Vec<(u64, f32)> {
    points
        .into_iter()
        .map(|(step, v)| (step, v as f32))
        .collect()
}

/// A scalar's points as a reader saw them (float32 values, which JSON carries as decimals
/// that read back as the same float32).
fn scalar(run: &Value, tag: &str) -> Vec<(u64, f32)> {
    let points = run["scalars"][tag]
        .as_array()
        .unwrap_or_else(|| panic!("no scalar {tag} in {run}"));
    points
        .iter()
        .map(|p| (p[0].as_u64().unwrap(), p[1].as_f64().unwrap() as f32))
        .collect()
}

/// Asserts a reader saw hyperparameter `name` as skiff's JSON has it: numbers as numbers,
/// truth values as such, lists as their JSON text.
fn assert_hparam(run: &Value, name: &str, want: &Value, reader: &str) {
    let got = &run["hparams"][name];
    let same = match want {
        Value::Number(n) => got.as_f64() == n.as_f64(),
        Value::Bool(b) => got.as_bool() == Some(*b),
        Value::String(s) => got.as_str() == Some(s),
        other => got.as_str() == Some(other.to_string().as_str()),
    };
    assert!(
        same,
        "{reader}: hparam {name} is {got}, skiff fitted {want}"
    );
}

#[test]
fn tensorboard_reads_every_value_a_fit_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let logdir = dir.path().join("runs");
    let model = dir.path().join("mlp.onnx");
    let fit = json_of(
        &[
            "fit",
            "mlp-classifier",
            "--data",
            example("iris/train.csv").to_str().unwrap(),
            "--target",
            "species",
            "-o",
            model.to_str().unwrap(),
            "--set",
            "max_iter=40",
            "--set",
            "random_state=0",
            "--set",
            "hidden_layer_sizes=16,8",
            "--run-name",
            "mlp",
        ],
        &logdir,
    );
    let loss: Vec<(u64, f64)> = serde_json::from_value(fit["curves"]["loss"].clone()).unwrap();
    assert_eq!(loss.len(), 40, "one loss per epoch of max_iter=40: {fit}");
    assert_eq!(loss[0].0, 1, "epochs count from 1");
    let seen = read(&logdir);
    for reader in ["tensorboard", "tbparse"] {
        let run = &seen[reader]["mlp"];
        assert_eq!(scalar(run, "loss"), as_float32(loss.clone()), "{reader}");
        assert_eq!(
            scalar(run, "training_accuracy"),
            as_float32([(0, fit["training_accuracy"].as_f64().unwrap())]),
            "{reader}"
        );
        for (name, value) in fit["hyperparameters"].as_object().unwrap() {
            if !value.is_null() {
                assert_hparam(run, name, value, reader);
            }
        }
        assert_hparam(run, "target", &"species".into(), reader);
        assert_hparam(run, "rows", &fit["rows"], reader);
    }
    assert_eq!(seen["tensorboard"]["mlp"]["status"], "STATUS_SUCCESS");

    // A flipped byte in a loss value: the reader drops that record rather than show a wrong
    // number, which it can only do by checking the record's CRC against skiff's.
    let file = std::fs::read_dir(logdir.join("mlp"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("events.out.tfevents.")
        })
        .expect("an event file");
    let mut bytes = std::fs::read(&file).unwrap();
    let (start, len) = records(&bytes)
        .into_iter()
        .nth(5)
        .expect("file version, hparams, then losses");
    let value_at = start + len - 4;
    let stored = f32::from_le_bytes(bytes[value_at..value_at + 4].try_into().unwrap());
    assert_eq!(
        stored,
        as_float32(loss.clone())[3].1,
        "record 5 is epoch 4's loss"
    );
    bytes[value_at + 3] ^= 0x40;
    let corrupted = f32::from_le_bytes(bytes[value_at..value_at + 4].try_into().unwrap());
    std::fs::write(&file, &bytes).unwrap();
    let seen = read(&logdir);
    let losses = scalar(&seen["tensorboard"]["mlp"], "loss");
    assert!(
        losses.len() < loss.len() && !losses.iter().any(|&(_, v)| v == corrupted),
        "TensorBoard read a record whose checksum no longer matches: {losses:?}"
    );
}

/// The payloads' (offset, length) in a file of TFRecords.
fn records(bytes: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 12 <= bytes.len() {
        let len = u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap()) as usize;
        out.push((at + 12, len));
        at += 12 + len + 4;
    }
    out
}

#[test]
fn a_search_logs_each_candidate_as_an_hparams_session_and_cv_each_fold() {
    let dir = tempfile::tempdir().unwrap();
    let logdir = dir.path().join("runs");
    let iris = example("iris/train.csv");
    let tune = json_of(
        &[
            "tune",
            "decision-tree-classifier",
            "--data",
            iris.to_str().unwrap(),
            "--target",
            "species",
            "--grid",
            "max_depth=1,2,3",
            "--grid",
            "criterion=gini,entropy",
            "-o",
            dir.path().join("tree.onnx").to_str().unwrap(),
            "--run-name",
            "search",
        ],
        &logdir,
    );
    let cv = json_of(
        &[
            "cv",
            "gaussian-nb",
            "--data",
            iris.to_str().unwrap(),
            "--target",
            "species",
            "--run-name",
            "folds",
        ],
        &logdir,
    );
    let seen = read(&logdir);
    let candidates = tune["candidates"].as_array().unwrap();
    assert_eq!(candidates.len(), 6);
    for reader in ["tensorboard", "tbparse"] {
        let runs = &seen[reader];
        let means = candidates.iter().map(|c| c["mean"].as_f64().unwrap());
        assert_eq!(
            scalar(&runs["search"], "candidate_accuracy_mean"),
            as_float32((0..).zip(means)),
            "{reader}"
        );
        for (i, candidate) in candidates.iter().enumerate() {
            let session = &runs[format!("search/candidate-{i:03}")];
            for (name, value) in candidate["params"].as_object().unwrap() {
                assert_hparam(session, name, value, reader);
            }
            assert_eq!(
                scalar(session, "accuracy_mean"),
                as_float32([(0, candidate["mean"].as_f64().unwrap())]),
                "{reader}: candidate {i}"
            );
            let folds = candidate["folds"].as_array().unwrap();
            let folds = folds.iter().map(|f| f.as_f64().unwrap());
            assert_eq!(
                scalar(session, "fold_accuracy"),
                as_float32((0..).zip(folds)),
                "{reader}: candidate {i}"
            );
        }
        let folds = cv["folds"].as_array().unwrap();
        let folds = folds
            .iter()
            .map(|f| f["scores"]["accuracy"].as_f64().unwrap());
        assert_eq!(
            scalar(&runs["folds"], "fold_accuracy"),
            as_float32((0..).zip(folds)),
            "{reader}"
        );
        assert_eq!(
            scalar(&runs["folds"], "cv_accuracy_mean"),
            as_float32([(0, cv["metrics"]["accuracy"]["mean"].as_f64().unwrap())]),
            "{reader}"
        );
    }
}
