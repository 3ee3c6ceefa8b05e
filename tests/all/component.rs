//! Model components (`skiff pack --format component`): valid by `wasm-tools`, and answering in
//! Node.js through jco as native skiff does. (Every catalog estimator's component is checked
//! by the conformance suite.)

use crate::*;
use serde_json::{Value, json};
use skiff_runtime::{Model, Tensor, TensorData};
use std::collections::BTreeMap;

/// A tool installed in the tests' Python environment (`scripts/test.sh` installs them).
pub fn venv_tool(name: &str) -> Command {
    let python = std::env::var_os("SKIFF_TEST_PYTHON").unwrap_or_else(|| {
        panic!("SKIFF_TEST_PYTHON is not set: run the tests with scripts/test.sh, which installs {name}")
    });
    let path = Path::new(&python).with_file_name(name);
    assert!(
        path.is_file(),
        "{} is missing: run scripts/test.sh, which installs it",
        path.display()
    );
    Command::new(path)
}

/// `skiff pack MODEL --format component -o OUT`.
pub fn pack_component(model: &Path, out: &Path) {
    ok(skiff()
        .args(["pack", "--format", "component"])
        .arg(model)
        .arg("-o")
        .arg(out)
        .output()
        .unwrap());
}

/// Runs each job (`{"id", "component", "inputs"}`, see tests/component/predict.mjs) in Node.js
/// through jco, all in one process; returns what each answered, by id.
pub fn jco_predict(jobs: &[Value]) -> BTreeMap<String, Value> {
    let var = |name: &str| {
        std::env::var_os(name).unwrap_or_else(|| {
            panic!("{name} is not set: run the tests with scripts/test.sh, which installs Node.js and jco")
        })
    };
    let (node, npm) = (var("SKIFF_TEST_NODE"), var("SKIFF_TEST_NPM"));
    // Inside the folder with node_modules, so that the transpiled modules find jco's shims.
    let dir = tempfile::tempdir_in(&npm).unwrap();
    let script = dir.path().join("predict.mjs");
    std::fs::copy(example("../tests/component/predict.mjs"), &script).unwrap();
    let jobs_file = dir.path().join("jobs.json");
    std::fs::write(&jobs_file, serde_json::to_vec(jobs).unwrap()).unwrap();
    let out = Command::new(node)
        .arg(&script)
        .arg(&jobs_file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "jco: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A job for [`jco_predict`]: `rows` of fp32 features into the model's one input.
pub fn fp32_job(id: &str, component: &Path, input: &str, rows: usize, data: &[f32]) -> Value {
    json!({
        "id": id,
        "component": component,
        "inputs": [{
            "name": input,
            "datatype": "fp32",
            "shape": [rows, data.len() / rows.max(1)],
            "data": data,
        }],
    })
}

#[test]
fn a_component_is_valid_and_answers_in_jco_as_native_skiff_does() {
    let dir = tempfile::tempdir().unwrap();
    let model = iris_model(dir.path());
    let component = dir.path().join("iris.wasm");
    pack_component(&model, &component);

    let validate = venv_tool("wasm-tools")
        .arg("validate")
        .arg(&component)
        .output()
        .unwrap();
    assert!(
        validate.status.success(),
        "{}",
        String::from_utf8_lossy(&validate.stderr)
    );
    let wit = venv_tool("wasm-tools")
        .args(["component", "wit"])
        .arg(&component)
        .output()
        .unwrap();
    let wit = String::from_utf8(wit.stdout).unwrap();
    assert!(wit.contains("export skiff:model/predictor@0.1.0;"), "{wit}");
    // The model is inside: nothing but WASI is left to import.
    for line in wit
        .lines()
        .filter(|l| l.trim_start().starts_with("import "))
    {
        let name = line.trim().trim_start_matches("import ");
        assert!(
            name.starts_with("wasi:") || name.starts_with("skiff:model/types@"),
            "{line}"
        );
    }

    let (header, rows) = read_csv(&std::fs::read_to_string(example("iris/test.csv")).unwrap());
    let features: Vec<f32> = rows
        .iter()
        .flat_map(|r| {
            r[..header.len() - 1]
                .iter()
                .map(|v| v.parse::<f32>().unwrap())
        })
        .collect();
    let native = Model::from_path(&model).unwrap();
    let expected = native
        .run(vec![
            Tensor::new(
                vec![rows.len(), header.len() - 1],
                TensorData::Fp32(features.clone()),
            )
            .unwrap(),
        ])
        .unwrap();
    let input = native.inputs()[0].name.clone();
    let answers = jco_predict(&[
        fp32_job("rows", &component, &input, rows.len(), &features),
        fp32_job("unnamed", &component, "", 1, &features[..4]),
        fp32_job("short", &component, &input, 1, &features[..3]),
        fp32_job("stranger", &component, "petals", 1, &features[..4]),
        json!({"id": "describe", "component": component}),
    ]);

    let rows_answer = &answers["rows"];
    for (spec, tensor) in native.outputs().iter().zip(&expected) {
        let got = &rows_answer[&spec.name];
        match &tensor.data {
            TensorData::Bytes(labels) => assert_eq!(got, &json!(labels), "{}", spec.name),
            TensorData::Fp32(values) => {
                let got: Vec<f64> = serde_json::from_value(got.clone()).unwrap();
                assert_eq!(got.len(), values.len());
                for (g, v) in got.iter().zip(values) {
                    let v = f64::from(*v);
                    assert!((g - v).abs() <= 1e-6 + 1e-5 * v.abs(), "{g} vs {v}");
                }
            }
            other => panic!("iris gives no {other:?}"),
        }
    }
    assert_eq!(answers["unnamed"]["label"][0], rows_answer["label"][0]);
    assert_eq!(answers["short"]["error"]["tag"], "bad-input");
    let message = answers["short"]["error"]["val"].as_str().unwrap();
    assert!(message.contains("[1, 3]"), "{message}");
    assert_eq!(answers["stranger"]["error"]["tag"], "bad-input");
    assert!(
        answers["stranger"]["error"]["val"]
            .as_str()
            .unwrap()
            .contains("no input \"petals\""),
        "{}",
        answers["stranger"]
    );
    let described = &answers["describe"]["describe"];
    assert_eq!(described["name"], "iris");
    assert_eq!(
        described["labels"],
        json!(["setosa", "versicolor", "virginica"])
    );
    assert_eq!(described["inputs"][0]["shape"], json!([-1, 4]));
    assert_eq!(described["inputs"][0]["datatype"], "fp32");
}

#[test]
fn component_packing_errors_are_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let model = iris_model(dir.path());
    let out = dir.path().join("iris.wasm");
    let pack = |extra: &[&str]| {
        let mut args = vec!["pack", model.to_str().unwrap(), "--format", "component"];
        args.extend(extra);
        run(&args)
    };
    fails_with(
        pack(&["--platform", "linux/arm64", "-o", out.to_str().unwrap()]),
        &["--platform is for images"],
    );
    fails_with(
        pack(&["--base", "oci:base:1", "-o", out.to_str().unwrap()]),
        &["--base is for images"],
    );
    let not_onnx = dir.path().join("not.onnx");
    std::fs::write(&not_onnx, "not a model").unwrap();
    fails_with(
        run(&[
            "pack",
            not_onnx.to_str().unwrap(),
            "--format",
            "component",
            "-o",
            out.to_str().unwrap(),
        ]),
        &["not.onnx"],
    );
    let empty = tempfile::tempdir().unwrap();
    fails_with(
        skiff()
            .args([
                "pack",
                model.to_str().unwrap(),
                "--format",
                "component",
                "-o",
            ])
            .arg(&out)
            .env("SKIFF_RUNTIME_DIR", empty.path())
            .output()
            .unwrap(),
        &["component engine", "images/build-guest.sh"],
    );
    assert!(!out.exists(), "nothing is written when packing fails");
}
