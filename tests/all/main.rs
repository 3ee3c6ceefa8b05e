//! End-to-end tests of the `skiff` command: one binary, one module per area.
//!
//! They drive the real tools a user would: ONNX Runtime and kubernetes-validate (Python, from
//! `SKIFF_TEST_PYTHON`), `docker-registry`, `skopeo`, `umoci` and `runc`. `scripts/test.sh`
//! installs all of them and builds the image's static server (`SKIFF_RUNTIME_DIR`); a missing
//! one fails the test.

mod archive;
mod backends;
mod ci_example;
mod cli_errors;
mod component;
mod conformance;
mod dp;
mod encode_ops;
mod explain;
mod fairness;
mod fit_predict;
mod grpc;
mod image;
mod k8s;
mod mlflow;
mod mlp;
mod module;
mod onnxruntime;
mod registry_faults;
mod select;
mod serve;
mod serve_config;
mod serve_metrics;
mod serve_openapi;
mod shap;
mod supply_chain;
mod tables;
mod tensorboard;
mod tree_ops;
mod zoo;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Held by the tests that load every core for a while (the conformance suite, the GPU check's
/// CPU steps) and by those whose assertions depend on the server being scheduled promptly
/// (shutdown under load), so the two kinds never overlap on a small CI machine.
pub fn exclusive() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Where components compiled by one test are found by the next: a compile cache of the tests'
/// own (bounded in size by skiff), not the user's.
pub fn wasm_cache() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("wasm-cache")
}

/// The component engine `skiff pack --format component` plugs models into.
pub fn component_engine() -> Vec<u8> {
    engine("wasm32-wasip2/skiff-guest.wasm")
}

/// The same engine as a WASI preview-1 command, for `skiff pack --format module`.
pub fn module_engine() -> Vec<u8> {
    engine("wasm32-wasip1/skiff-module.wasm")
}

fn engine(relative: &str) -> Vec<u8> {
    let dir = std::env::var_os("SKIFF_RUNTIME_DIR").expect("SKIFF_RUNTIME_DIR is set");
    std::fs::read(Path::new(&dir).join(relative)).unwrap_or_else(|e| {
        panic!("{relative}: {e} (images/build-guest.sh builds it; scripts/test.sh does)")
    })
}

/// The `skiff` binary under test.
pub fn skiff() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_skiff"));
    command.env("SKIFF_WASM_CACHE", wasm_cache());
    command
}

/// Runs `skiff args...` and returns its output.
pub fn run(args: &[&str]) -> Output {
    skiff().args(args).output().expect("skiff runs")
}

/// Asserts success and returns stdout.
pub fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "skiff failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Asserts a failure with a one-line error on stderr that contains every `needle`.
pub fn fails_with(out: Output, needles: &[&str]) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).trim_end().to_string();
    assert!(
        !out.status.success(),
        "skiff succeeded, expected an error: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "skiff panicked: {stderr}");
    assert_eq!(
        stderr.lines().count(),
        1,
        "expected a one-line error, got:\n{stderr}"
    );
    for needle in needles {
        assert!(
            stderr.contains(needle),
            "error {stderr:?} does not mention {needle:?}"
        );
    }
    stderr
}

/// A file under `examples/`.
pub fn example(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(path)
}

/// `skiff fit logistic-regression --data DATA --target TARGET -o MODEL`.
pub fn fit(data: &Path, target: &str, model: &Path) -> Output {
    skiff()
        .args(["fit", "logistic-regression", "--data"])
        .arg(data)
        .args(["--target", target, "-o"])
        .arg(model)
        .output()
        .expect("skiff runs")
}

/// `skiff predict MODEL --data DATA EXTRA...`, which must succeed; returns its stdout.
pub fn predict(model: &Path, data: &Path, extra: &[&str]) -> String {
    ok(skiff()
        .arg("predict")
        .arg(model)
        .arg("--data")
        .arg(data)
        .args(extra)
        .output()
        .expect("skiff runs"))
}

/// `skiff pack MODEL -o DEST --insecure --json EXTRA...`, which must succeed; returns its JSON.
pub fn pack_json(model: &Path, dest: &str, extra: &[&str]) -> serde_json::Value {
    let out = ok(skiff()
        .arg("pack")
        .arg(model)
        .args(["-o", dest, "--insecure", "--json"])
        .args(extra)
        .output()
        .expect("skiff runs"));
    serde_json::from_str(&out).unwrap()
}

/// Fits logistic regression on the iris training split into `dir/iris.onnx`.
pub fn iris_model(dir: &Path) -> PathBuf {
    let model = dir.join("iris.onnx");
    ok(fit(&example("iris/train.csv"), "species", &model));
    model
}

/// The iris training split with its three species renamed to `labels`, as `dir/relabelled.csv`.
pub fn relabelled_iris(dir: &Path, labels: [&str; 3]) -> PathBuf {
    let iris = std::fs::read_to_string(example("iris/train.csv")).unwrap();
    let renamed = ["setosa", "versicolor", "virginica"]
        .iter()
        .zip(labels)
        .fold(iris, |text, (from, to)| text.replace(from, to));
    let path = dir.join("relabelled.csv");
    std::fs::write(&path, renamed).unwrap();
    path
}

/// The Python interpreter with onnxruntime that `scripts/test.sh` prepared.
pub fn python() -> Command {
    let python = std::env::var_os("SKIFF_TEST_PYTHON").unwrap_or_else(|| {
        panic!("SKIFF_TEST_PYTHON is not set: run the tests with scripts/test.sh, which installs onnxruntime")
    });
    Command::new(python)
}

/// Reads a CSV into its header and rows.
pub fn read_csv(text: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let mut lines = text.lines();
    let header = lines
        .next()
        .unwrap_or("")
        .split(',')
        .map(str::to_string)
        .collect();
    let rows = lines
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect();
    (header, rows)
}

/// No file in `dir` besides those in `expected`: failures leave nothing behind.
pub fn assert_only_files(dir: &Path, expected: &[&str]) {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut expected: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
    expected.sort();
    assert_eq!(
        names,
        expected,
        "unexpected files left in {}",
        dir.display()
    );
}
