//! Model components (`skiff pack --format component`): valid by `wasm-tools`, importing
//! nothing beyond `wasi:http/proxy`; answering in wasmtime's CLI (`run --invoke`, and `serve`
//! as a complete Open Inference Protocol server), in Node.js through jco and in skiff's own
//! host as native skiff does; carrying their model loaded at pack time (pre-initialised);
//! bounded in time and memory in skiff's host; pushed to and pulled from a registry as OCI wasm
//! artifacts. (Every catalog estimator's component is checked in
//! skiff's host, `wasmtime serve` and jco by the conformance suite.)

use crate::*;
use serde_json::{Value, json};
use skiff_runtime::{Model, Tensor, TensorData};
use skiff_testing::http_json;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

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

/// The interfaces the `wasi:http/proxy` world imports, as wit/deps/http.wit says.
fn proxy_world_imports() -> Vec<String> {
    let wit = std::fs::read_to_string(example("../wit/deps/http.wit")).unwrap();
    let package = wit
        .lines()
        .find_map(|l| l.strip_prefix("package wasi:http@"))
        .and_then(|l| l.strip_suffix(';'))
        .unwrap()
        .to_string();
    let world = &wit[wit.find("world proxy {").unwrap()..];
    let world = &world[..world.find('}').unwrap()];
    let imports: Vec<String> = world
        .lines()
        .filter_map(|l| l.trim().strip_prefix("import "))
        .map(|name| {
            let name = name.trim_end_matches(';');
            match name.contains(':') {
                true => name.to_string(),
                false => format!("wasi:http/{name}@{package}"),
            }
        })
        .collect();
    assert!(imports.len() > 5, "{imports:?}");
    imports
}

/// `wasm-tools validate COMPONENT`: what it said when it refuses the file.
pub fn wasm_tools_validate(component: &Path) -> Result<(), String> {
    let out = venv_tool("wasm-tools")
        .arg("validate")
        .arg(component)
        .output()
        .unwrap();
    match out.status.success() {
        true => Ok(()),
        false => Err(String::from_utf8_lossy(&out.stderr).trim().to_string()),
    }
}

/// `skiff pack MODEL --format component -o OUT`.
pub fn pack_component(model: &Path, out: &Path) {
    pack_precompiled(model, out, &[]);
}

/// `skiff pack MODEL --format component -o OUT`, its code precompiled for each of
/// `architectures` beside it.
fn pack_precompiled(model: &Path, out: &Path, architectures: &[&str]) {
    let mut pack = skiff();
    pack.args(["pack", "--format", "component"]);
    if !architectures.is_empty() {
        pack.args(["--precompile", &architectures.join(",")]);
    }
    ok(pack.arg(model).arg("-o").arg(out).output().unwrap());
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
fn a_component_is_valid_and_answers_in_wasmtime_and_jco_as_native_skiff_does() {
    let dir = tempfile::tempdir().unwrap();
    let model = iris_model(dir.path());
    let component = dir.path().join("iris.wasm");
    pack_component(&model, &component);

    wasm_tools_validate(&component).unwrap();
    let wit = venv_tool("wasm-tools")
        .args(["component", "wit"])
        .arg(&component)
        .output()
        .unwrap();
    let wit = String::from_utf8(wit.stdout).unwrap();
    assert!(wit.contains("export skiff:model/predictor@0.1.0;"), "{wit}");
    assert!(
        wit.contains("export wasi:http/incoming-handler@0.2.12;"),
        "{wit}"
    );
    // The model is inside, and nothing is imported beyond the wasi:http/proxy world (so plain
    // `wasmtime serve` and Spin run it); skiff:model/types holds only types.
    let proxy = proxy_world_imports();
    for line in wit
        .lines()
        .filter(|l| l.trim_start().starts_with("import "))
    {
        let name = line
            .trim()
            .trim_start_matches("import ")
            .trim_end_matches(';');
        assert!(
            proxy.iter().any(|p| p == name) || name == "skiff:model/types@0.1.0",
            "{name} is not in wasi:http/proxy ({proxy:?})"
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

    // wasmtime's own CLI, another host: the first five rows, as a WAVE call.
    let five: Vec<String> = features[..20].iter().map(|v| format!("{v:?}")).collect();
    let call = format!(
        "predict([{{name: \"{input}\", shape: [5, 4], data: fp32([{}])}}])",
        five.join(", ")
    );
    // `-S http`: the component imports wasi:http's types, which `wasmtime run` links on request.
    let out = venv_tool("wasmtime")
        .args(["run", "-S", "http", "--invoke", &call])
        .arg(&component)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success() && said.starts_with("ok(["),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let wave_list = |after: &str| -> String {
        let start = said
            .find(after)
            .unwrap_or_else(|| panic!("no {after} in {said}"))
            + after.len();
        said[start..start + said[start..].find(']').unwrap()].to_string()
    };
    let TensorData::Bytes(labels) = &expected[0].data else {
        panic!("iris labels are strings")
    };
    let quoted: Vec<String> = labels[..5].iter().map(|l| format!("{l:?}")).collect();
    assert_eq!(wave_list("data: bytes(["), quoted.join(", "), "{said}");
    let TensorData::Fp32(probabilities) = &expected[1].data else {
        panic!("iris probabilities are fp32")
    };
    let got: Vec<f32> = wave_list("data: fp32([")
        .split(", ")
        .map(|v| v.parse().unwrap())
        .collect();
    assert_eq!(got.len(), 15, "{said}");
    for (g, v) in got.iter().zip(probabilities) {
        assert!((g - v).abs() <= 1e-6 + 1e-5 * v.abs(), "{g} vs {v}");
    }

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
fn wasmtime_serve_alone_answers_the_inference_protocol_as_skiff_serve_does() {
    let dir = tempfile::tempdir().unwrap();
    let model = iris_model(dir.path());
    let component = dir.path().join("iris.wasm");
    pack_component(&model, &component);

    // Plain `wasmtime serve`: no -S flags, nothing but the component.
    let wasmtime = crate::serve::Server::wasmtime(&component);
    let skiff = crate::serve::Server::start(model.to_str().unwrap(), &[]);
    // Triton's client: metadata, readiness, binary and JSON tensors, and the errors it reports.
    crate::serve::assert_tritonclient_conformance(&wasmtime, &model, "iris");

    // Every answer, whole, as skiff serve gives it (floats within rounding).
    let all = all_test_rows();
    let requests = [
        ("GET", "/v2", None),
        ("GET", "/v2/health/live", None),
        ("GET", "/v2/models/iris/ready", None),
        ("GET", "/v2/models/iris/versions/1", None),
        ("POST", "/v2/models/iris/infer", Some(&all)),
        ("POST", "/v2/models/iris/versions/1/infer", Some(&all)),
        ("GET", "/v2/models/iris/versions/2", None),
        ("GET", "/v2/models/other", None),
        ("GET", "/v2/models/iris/infer", None),
        ("GET", "/elsewhere", None),
    ];
    for (method, path, body) in requests {
        let (status, got) = http_json(method, &format!("{}{path}", wasmtime.base), body);
        let (expected_status, mut expected) =
            http_json(method, &format!("{}{path}", skiff.base), body);
        assert_eq!(status, expected_status, "{method} {path}: {got}");
        if path.ends_with("/iris") || path.ends_with("/versions/1") {
            // Only the engine differs: tract inside wasm, where skiff serve says "tract".
            assert_eq!(got["parameters"]["backend"], "tract", "{got}");
            expected["parameters"]["backend"] = json!("tract");
        }
        if path == "/v2" {
            // A component serves the model it holds: no repository to load others from.
            let extensions = expected["extensions"].as_array_mut().unwrap();
            assert!(
                extensions.contains(&json!("model_repository")),
                "{expected}"
            );
            extensions.retain(|e| e != "model_repository");
        }
        assert_close(&got, &expected, &format!("{method} {path}"));
    }
}

/// An infer request (id `all`) of every iris test row, as FP64.
pub fn all_test_rows() -> Value {
    let (_, rows) = read_csv(&std::fs::read_to_string(example("iris/test.csv")).unwrap());
    let x: Vec<Vec<f64>> = rows
        .iter()
        .map(|r| r[..4].iter().map(|v| v.parse().unwrap()).collect())
        .collect();
    json!({ "id": "all", "inputs": [{ "name": "X", "shape": [x.len(), 4], "datatype": "FP64", "data": x }] })
}

/// `got` equals `expected`, numbers within 1e-6 + 1e-5 of their size.
pub fn assert_close(got: &Value, expected: &Value, what: &str) {
    match (got, expected) {
        (Value::Number(g), Value::Number(e)) => {
            let (g, e) = (g.as_f64().unwrap(), e.as_f64().unwrap());
            assert!((g - e).abs() <= 1e-6 + 1e-5 * e.abs(), "{what}: {g} vs {e}");
        }
        (Value::Array(g), Value::Array(e)) => {
            assert_eq!(g.len(), e.len(), "{what}: {got} vs {expected}");
            g.iter().zip(e).for_each(|(g, e)| assert_close(g, e, what));
        }
        (Value::Object(g), Value::Object(e)) => {
            assert_eq!(
                g.keys().collect::<Vec<_>>(),
                e.keys().collect::<Vec<_>>(),
                "{what}: {got} vs {expected}"
            );
            g.values()
                .zip(e.values())
                .for_each(|(g, e)| assert_close(g, e, what));
        }
        _ => assert_eq!(got, expected, "{what}"),
    }
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
    let image = format!("oci:{}", dir.path().join("img").display());
    fails_with(
        run(&[
            "pack",
            model.to_str().unwrap(),
            "-o",
            &image,
            "--no-preinit",
        ]),
        &["--no-preinit is for components"],
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

/// The model is loaded at pack time and kept in the component's initial memory, so that a
/// fresh instance (`wasmtime serve` makes one per request) answers without parsing it: the ONNX
/// file is no longer inside, packing the same model again gives the same bytes, and the
/// component answers as the file does. `--no-preinit` still carries the file.
#[test]
fn a_packed_component_holds_its_model_loaded_and_answers_as_its_onnx_file() {
    let dir = tempfile::tempdir().unwrap();
    let model = iris_model(dir.path());
    let onnx = std::fs::read(&model).unwrap();
    let [loaded, again, raw] = ["iris.wasm", "again.wasm", "raw.wasm"].map(|f| dir.path().join(f));
    pack_component(&model, &loaded);
    pack_component(&model, &again);
    ok(skiff()
        .args(["pack", "--format", "component", "--no-preinit"])
        .arg(&model)
        .arg("-o")
        .arg(&raw)
        .output()
        .unwrap());
    let bytes = |path: &Path| std::fs::read(path).unwrap();
    let holds_file = |path: &Path| bytes(path).windows(onnx.len()).any(|w| w == onnx);
    assert!(
        bytes(&loaded) == bytes(&again),
        "packing the same model twice gives different components"
    );
    assert!(holds_file(&raw), "--no-preinit carries the ONNX file");
    assert!(
        !holds_file(&loaded),
        "a pre-initialised component carries the loaded model, not the file"
    );
    wasm_tools_validate(&loaded).unwrap();

    let data = example("iris/test.csv");
    let predict = |model: &Path| {
        ok(skiff()
            .arg("predict")
            .arg(model)
            .arg("--data")
            .arg(&data)
            .arg("--proba")
            .output()
            .unwrap())
    };
    // Loading at pack time changes nothing the engine computes; beside native tract, wasm's
    // floats differ in the last bits.
    let (native, answers) = (predict(&model), predict(&loaded));
    assert_eq!(answers, predict(&raw));
    assert_eq!(answers.lines().next(), native.lines().next());
    for (got, expected) in answers.lines().zip(native.lines()).skip(1) {
        let (got, expected): (Vec<&str>, Vec<&str>) =
            (got.split(',').collect(), expected.split(',').collect());
        assert_eq!(got[0], expected[0]);
        for (g, e) in got[1..].iter().zip(&expected[1..]) {
            let (g, e): (f64, f64) = (g.parse().unwrap(), e.parse().unwrap());
            assert!((g - e).abs() < 1e-5, "{got:?} vs {expected:?}");
        }
    }
    assert_eq!(answers.lines().count(), native.lines().count());

    // A fresh instance per request, every one answering from the snapshot.
    let server = crate::serve::Server::wasmtime(&loaded);
    for _ in 0..3 {
        crate::serve::assert_infers_iris(|p, b| server.post(p, b), "iris");
    }
}

/// A model the engine cannot load is refused when packing, in one line, not at the first
/// request; so is an engine that is not one. Both engines: the component's, and the module's
/// (`--format module`).
#[test]
fn pre_initialising_a_model_the_engine_cannot_load_fails_in_one_line() {
    use skiff_component::preinit::{preinitialise, preinitialise_module};
    let (component, module) = (component_engine(), module_engine());
    for (kind, err) in [
        (
            "component",
            preinitialise(&component, "broken", b"not onnx", Some(&wasm_cache())),
        ),
        (
            "module",
            preinitialise_module(&module, "broken", b"not onnx", Some(&wasm_cache())),
        ),
    ] {
        let err = err.unwrap_err();
        assert!(
            err.starts_with(&format!("the {kind} engine cannot load the model: "))
                && err.contains("broken is not an ONNX model")
                && !err.contains('\n'),
            "{err}"
        );
    }
    for err in [
        preinitialise(&module, "x", b"", None),
        preinitialise_module(&component, "x", b"", None),
    ] {
        let err = err.unwrap_err();
        assert!(
            err.contains("cannot be pre-initialised") && err.contains("images/build-guest.sh"),
            "{err}"
        );
    }
}

/// The misbehaving test component (tests/component/misbehaving), built by scripts/test.sh.
fn misbehaving_component() -> PathBuf {
    let path = PathBuf::from(std::env::var_os("SKIFF_TEST_MISBEHAVING").unwrap_or_else(|| {
        panic!("SKIFF_TEST_MISBEHAVING is not set: run the tests with scripts/test.sh, which builds it")
    }));
    assert!(path.is_file(), "{} is missing", path.display());
    path
}

#[test]
fn skiff_serves_and_predicts_with_a_component_as_with_its_onnx_file() {
    let dir = tempfile::tempdir().unwrap();
    let model = iris_model(dir.path());
    let component = dir.path().join("iris.wasm");
    pack_component(&model, &component);

    let server = crate::serve::Server::start(component.to_str().unwrap(), &[]);
    crate::serve::assert_infers_iris(|p, b| server.post(p, b), "iris");
    let (status, meta) = server.get("/v2/models/iris");
    assert_eq!(status, 200, "{meta}");
    assert_eq!(meta["parameters"]["backend"], "wasmtime");
    assert_eq!(
        meta["inputs"],
        json!([{ "name": "X", "datatype": "FP32", "shape": [-1, 4] }])
    );
    // A request that does not fit is the client's error, as for the ONNX file.
    let bad = json!({ "inputs": [{ "name": "X", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3] }] });
    let (status, body) = server.post("/v2/models/iris/infer", &bad);
    assert_eq!(status, 400, "{body}");

    let test = example("iris/test.csv");
    let predict = |m: &Path| {
        ok(skiff()
            .arg("predict")
            .arg(m)
            .arg("--data")
            .arg(&test)
            .output()
            .unwrap())
    };
    assert_eq!(predict(&component), predict(&model));
}

#[test]
fn a_guest_that_loops_runs_out_of_memory_or_panics_costs_only_its_request() {
    let _exclusive = exclusive();
    let dir = tempfile::tempdir().unwrap();
    let model = iris_model(dir.path());
    let iris = dir.path().join("iris.wasm");
    pack_component(&model, &iris);
    let misbehaving = misbehaving_component();
    let mut server = crate::serve::Server::spawn(
        iris.to_str().unwrap(),
        &[
            misbehaving.to_str().unwrap(),
            "--wasm-deadline-ms",
            "300",
            "--wasm-memory-mb",
            "64",
        ],
    );
    server.wait_for_200("/v2/health/ready");
    let x = |v: f64| json!({ "inputs": [{ "name": "x", "shape": [1, 1], "datatype": "FP32", "data": [v] }] });
    let path = "/v2/models/misbehaving_model/infer";
    let (status, body) = server.post(path, &x(5.0));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["outputs"][0]["data"], json!([10.0]));

    // Good requests to both models go on while the bad ones are stopped.
    let stop = std::sync::atomic::AtomicBool::new(false);
    let base = server.base.clone();
    std::thread::scope(|scope| {
        let good = scope.spawn(|| {
            let mut served = 0;
            let (features, _) = crate::serve::test_rows(1);
            let iris_body = json!({ "inputs": [{ "name": "X", "shape": [1, 4], "datatype": "FP32", "data": features }] });
            for _ in 0..10_000 {
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                let (s, b) = http_json("POST", &format!("{base}/v2/models/iris/infer"), Some(&iris_body));
                assert_eq!(s, 200, "a good request failed beside a bad one: {b}");
                let (s, b) = http_json("POST", &format!("{base}{path}"), Some(&x(7.0)));
                assert_eq!(s, 200, "a good request failed beside a bad one: {b}");
                served += 2;
            }
            served
        });
        for (trigger, needle, within) in [
            (1.0, "deadline of 300 ms", Duration::from_secs(1)),
            (2.0, "memory limit of 64 MiB", Duration::from_secs(5)),
            (3.0, "told to panic", Duration::from_secs(5)),
        ] {
            let started = std::time::Instant::now();
            let (status, body) = server.post(path, &x(trigger));
            let took = started.elapsed();
            assert_eq!(status, 500, "{body}");
            let error = body["error"].as_str().unwrap_or_default();
            assert!(error.contains(needle), "{error}");
            assert!(took < within, "stopped after {took:?}: {error}");
            eprintln!("input {trigger}: stopped after {took:?}: {error}");
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let served = good.join().unwrap();
        assert!(
            served >= 4,
            "only {served} good requests ran beside the bad ones"
        );
    });
    // The model still answers: a fresh instance replaced the stopped one.
    let (status, body) = server.post(path, &x(4.0));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["outputs"][0]["data"], json!([8.0]));
}

#[test]
fn a_component_goes_through_a_registry_as_a_wasm_artifact_verified_on_the_way_back() {
    let dir = tempfile::tempdir().unwrap();
    let model = iris_model(dir.path());
    let file = dir.path().join("iris.wasm");
    pack_component(&model, &file);
    let registry = skiff_testing::Registry::start(None);
    let remote = format!("docker://{}/edge/iris:v1", registry.host());
    let pushed = pack_json(&model, &remote, &["--format", "component"]);

    // What runwasi, wkg and oci-client read: a wasm config and the component as the layer.
    let raw = crate::image::skopeo(
        dir.path(),
        &["inspect", "--raw", "--tls-verify=false", &remote],
    );
    assert_eq!(
        pushed["digest"].as_str().unwrap(),
        skiff_pack::oci::sha256_digest(&raw.stdout)
    );
    let manifest: Value = serde_json::from_slice(&raw.stdout).unwrap();
    assert_eq!(
        manifest["config"]["mediaType"],
        "application/vnd.wasm.config.v0+json"
    );
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1, "{manifest}");
    assert_eq!(layers[0]["mediaType"], "application/wasm");
    // the layer is the component, byte for byte as packed to a file
    let component = std::fs::read(&file).unwrap();
    assert_eq!(
        layers[0]["digest"],
        skiff_pack::oci::sha256_digest(&component)
    );
    assert_eq!(manifest["annotations"]["dev.skiff.model.name"], "iris");
    let config = crate::image::skopeo(
        dir.path(),
        &[
            "inspect",
            "--config",
            "--raw",
            "--tls-verify=false",
            &remote,
        ],
    );
    let config: Value = serde_json::from_slice(&config.stdout).unwrap();
    assert_eq!(config["architecture"], "wasm");
    assert_eq!(config["os"], "wasip2");
    assert_eq!(config["layerDigests"][0], layers[0]["digest"]);
    assert!(
        config["component"]["exports"]
            .as_array()
            .unwrap()
            .contains(&json!("skiff:model/predictor@0.1.0")),
        "{config}"
    );

    // Pulled back, and served straight from the registry.
    let pulled = dir.path().join("pulled");
    ok(run(&[
        "pull",
        &remote,
        "-o",
        &format!("oci:{}:v1", pulled.display()),
        "--insecure",
    ]));
    let server = crate::serve::Server::start(&remote, &["--insecure"]);
    crate::serve::assert_infers_iris(|p, b| server.post(p, b), "iris");
    let (_, meta) = server.get("/v2/models/iris");
    assert_eq!(meta["parameters"]["backend"], "wasmtime");
    drop(server);

    // A component changed in the registry's storage is refused, naming its digest.
    let digest = layers[0]["digest"].as_str().unwrap();
    let blob = registry.blob_file(digest);
    let mut tampered = std::fs::read(&blob).unwrap();
    let last = tampered.len() - 1;
    tampered[last] ^= 0xff;
    std::fs::write(&blob, &tampered).unwrap();
    let out = dir.path().join("tampered");
    fails_with(
        run(&[
            "pull",
            &remote,
            "-o",
            &format!("oci:{}:v1", out.display()),
            "--insecure",
        ]),
        &[digest],
    );
    assert!(!out.exists());
}

/// Runs `skiff predict COMPONENT` on the iris test rows with the component crate's logs on and
/// compiled code kept in `cache`; returns (stdout, stderr).
fn predict_logged(component: &Path, cache: &Path) -> (String, String) {
    let out = skiff()
        .arg("predict")
        .arg(component)
        .arg("--data")
        .arg(example("iris/test.csv"))
        .env("SKIFF_WASM_CACHE", cache)
        .env("RUST_LOG", "skiff_component=info")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    (String::from_utf8(out.stdout).unwrap(), stderr)
}

/// Rewrites the header of the precompiled file at `path` as another skiff would have written
/// it: code from another wasmtime, compiled with other settings.
fn from_another_engine(path: &Path) {
    let file = std::fs::read(path).unwrap();
    let (mut header, code) = skiff_component::precompiled::decode(&file).unwrap();
    header.wasmtime = "47.0.1".into();
    header.engine = "0".repeat(64);
    let rewritten = skiff_component::precompiled::encode(&header, code);
    std::fs::write(path, rewritten).unwrap();
}

#[test]
fn a_precompiled_component_loads_without_compiling_and_stale_code_is_passed_by() {
    let dir = tempfile::tempdir().unwrap();
    let model = iris_model(dir.path());
    let component = dir.path().join("iris.wasm");
    let packed: Value = serde_json::from_str(&ok(skiff()
        .args(["pack", "--format", "component", "--json"])
        .arg(&model)
        .arg("-o")
        .arg(&component)
        .args(["--precompile", "x86_64,aarch64"])
        .output()
        .unwrap()))
    .unwrap();
    let beside = |arch: &str| dir.path().join(format!("iris.{arch}.cwasm"));
    assert_eq!(
        packed["precompiled"],
        json!([beside("x86_64"), beside("aarch64")])
    );
    let wasm = std::fs::read(&component).unwrap();
    for (arch, target) in [
        ("x86_64", "x86_64-unknown-linux-gnu"),
        ("aarch64", "aarch64-unknown-linux-gnu"),
    ] {
        let file = std::fs::read(beside(arch)).unwrap();
        let (header, code) = skiff_component::precompiled::decode(&file).unwrap();
        assert_eq!(header.target, target);
        assert_eq!(header.component, skiff_pack::oci::sha256_digest(&wasm));
        // wasmtime's own precompiled format: an ELF object for the target's machine
        assert_eq!(&code[..4], b"\x7fELF");
        let machine = u16::from_le_bytes([code[18], code[19]]);
        assert_eq!(machine, if arch == "x86_64" { 62 } else { 183 }, "{arch}");
    }
    let native = predict(&model, &example("iris/test.csv"), &[]);

    // This machine's code is loaded as it is: nothing compiles, nothing goes to the cache.
    let host = skiff_component::precompiled::host_target().unwrap();
    let cache = dir.path().join("cache");
    let (answers, log) = predict_logged(&component, &cache);
    assert_eq!(answers, native);
    assert!(
        log.contains("loaded precompiled code from") && !log.contains("compiling"),
        "{log}"
    );
    assert!(!cache.exists());

    // Without it, the first load compiles and keeps the code; the next loads that.
    let own = beside(host.split('-').next().unwrap());
    let kept = dir.path().join("kept.cwasm");
    std::fs::rename(&own, &kept).unwrap();
    let (answers, log) = predict_logged(&component, &cache);
    assert_eq!(answers, native);
    assert!(log.contains("compiling"), "{log}");
    assert_eq!(std::fs::read_dir(&cache).unwrap().count(), 1);
    let (answers, log) = predict_logged(&component, &cache);
    assert_eq!(answers, native);
    assert!(
        log.contains("loaded compiled code from the cache") && !log.contains("compiling"),
        "{log}"
    );

    // Code from another engine, or made from another component, is passed by with one line
    // that says why, and the component is compiled as if it had none.
    std::fs::rename(&kept, &own).unwrap();
    from_another_engine(&own);
    let fresh = dir.path().join("fresh-cache");
    let (answers, log) = predict_logged(&component, &fresh);
    assert_eq!(answers, native);
    let warnings: Vec<&str> = log.lines().filter(|l| l.contains("WARN")).collect();
    assert_eq!(warnings.len(), 1, "{log}");
    assert!(
        warnings[0].contains("ignoring") && warnings[0].contains("wasmtime 47.0.1"),
        "{log}"
    );
    assert!(log.contains("compiling"), "{log}");

    let other_model = dir.path().join("other.onnx");
    ok(skiff()
        .args(["fit", "gaussian-nb", "--target", "species", "--data"])
        .arg(example("iris/train.csv"))
        .arg("-o")
        .arg(&other_model)
        .output()
        .unwrap());
    let other = dir.path().join("other.wasm");
    pack_precompiled(&other_model, &other, &["x86_64"]);
    std::fs::copy(dir.path().join("other.x86_64.cwasm"), &own).unwrap();
    let out = skiff()
        .arg("predict")
        .arg(&component)
        .arg("--data")
        .arg(example("iris/test.csv"))
        .env("SKIFF_WASM_CACHE", &fresh)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8(out.stdout).unwrap(), native);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("compiled from another component"),
        "{stderr}"
    );

    // Packed again without --precompile: no code from the earlier component stays beside it.
    pack_component(&model, &component);
    assert!(!beside("x86_64").exists() && !beside("aarch64").exists());

    // Only Linux on x86-64 and arm64, named plainly.
    fails_with(
        run(&[
            "pack",
            "--format",
            "component",
            model.to_str().unwrap(),
            "-o",
            dir.path().join("x.wasm").to_str().unwrap(),
            "--precompile",
            "riscv64",
        ]),
        &[
            "cannot precompile for riscv64",
            "--precompile x86_64,aarch64",
        ],
    );
    fails_with(
        run(&[
            "pack",
            model.to_str().unwrap(),
            "-o",
            &format!("oci:{}", dir.path().join("img").display()),
            "--precompile",
            "x86_64",
        ]),
        &["--precompile is for components"],
    );
}

#[test]
fn precompiled_code_on_a_noexec_mount_is_read_instead_of_mapped() {
    let dir = tempfile::tempdir().unwrap();
    let model = iris_model(dir.path());
    let component = dir.path().join("iris.wasm");
    let host = skiff_component::precompiled::host_target().unwrap();
    let arch = host.split('-').next().unwrap();
    pack_precompiled(&model, &component, &[arch]);
    let native = predict(&model, &example("iris/test.csv"), &[]);

    // A mount without execute rights (as /tmp and volumes often are): the file cannot be
    // mapped executable, so it is read and copied, and nothing compiles. The mount lives in a
    // mount namespace of the command's own.
    let mount = dir.path().join("noexec");
    std::fs::create_dir(&mount).unwrap();
    let script = format!(
        "mount -t tmpfs -o noexec tmpfs '{m}' && cp '{c}' '{p}' '{m}/' && exec '{skiff}' predict '{m}/iris.wasm' --data '{data}' --no-wasm-cache",
        m = mount.display(),
        c = component.display(),
        p = dir.path().join(format!("iris.{arch}.cwasm")).display(),
        skiff = env!("CARGO_BIN_EXE_skiff"),
        data = example("iris/test.csv").display(),
    );
    let out = Command::new("unshare")
        .args(["--user", "--map-root-user", "--mount", "sh", "-c", &script])
        .env("RUST_LOG", "skiff_component=debug")
        .output()
        .expect("unshare (util-linux) runs");
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), native);
    assert!(
        log.contains("cannot map")
            && log.contains("loaded precompiled code")
            && !log.contains("compiling"),
        "{log}"
    );
}

#[test]
fn precompiled_code_travels_in_the_artifact_and_a_pull_takes_only_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let model = iris_model(dir.path());
    let registry = skiff_testing::Registry::start(None);
    let remote = format!("docker://{}/edge/iris:pre", registry.host());
    pack_json(
        &model,
        &remote,
        &["--format", "component", "--precompile", "x86_64,aarch64"],
    );
    let raw = crate::image::skopeo(
        dir.path(),
        &["inspect", "--raw", "--tls-verify=false", &remote],
    );
    let manifest: Value = serde_json::from_slice(&raw.stdout).unwrap();
    let layers = manifest["layers"].as_array().unwrap();
    let types: Vec<&str> = layers
        .iter()
        .map(|l| l["mediaType"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "application/wasm",
            "application/vnd.dev.skiff.wasmtime.precompiled.v1",
            "application/vnd.dev.skiff.wasmtime.precompiled.v1"
        ]
    );
    let targets: Vec<&str> = layers[1..]
        .iter()
        .map(|l| {
            l["annotations"]["dev.skiff.wasmtime.target"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(
        targets,
        ["x86_64-unknown-linux-gnu", "aarch64-unknown-linux-gnu"]
    );
    for layer in &layers[1..] {
        assert_eq!(layer["annotations"]["dev.skiff.wasmtime.version"], "48.0.8");
        assert_eq!(
            layer["annotations"]["dev.skiff.wasmtime.engine"]
                .as_str()
                .unwrap()
                .len(),
            64
        );
    }

    // A pull for this machine leaves the other architecture's code in the registry.
    let host_arch = std::env::consts::ARCH;
    let (own, other) = if host_arch == "x86_64" {
        (&layers[1], &layers[2])
    } else {
        (&layers[2], &layers[1])
    };
    let pulled = dir.path().join("pulled");
    ok(run(&[
        "pull",
        &remote,
        "-o",
        &format!("oci:{}:pre", pulled.display()),
        "--insecure",
    ]));
    let blob = |layer: &Value| {
        let digest = layer["digest"].as_str().unwrap();
        pulled
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:"))
    };
    assert!(blob(own).is_file());
    assert!(!blob(other).exists());
    assert!(blob(&layers[0]).is_file());

    // Served from the registry and from the layout, on this machine's code.
    for source in [remote.clone(), format!("oci:{}:pre", pulled.display())] {
        let cache = tempfile::tempdir().unwrap();
        let server = crate::serve::Server::start(
            &source,
            &["--insecure", "--wasm-cache", cache.path().to_str().unwrap()],
        );
        crate::serve::assert_infers_iris(|p, b| server.post(p, b), "iris");
        let log = server.log_text();
        assert!(
            log.contains("loaded precompiled code from oci:") && !log.contains("compiling"),
            "{source}: {log}"
        );
    }
}

/// The static arm64 server serving `component`, as an edge device runs it: under qemu-user
/// here, on loopback. Returned once it listens, or has exited; qemu takes a moment to start, so
/// a port another test took meanwhile is tried again with others.
fn arm64_server(component: &Path) -> crate::serve::Server {
    for _ in 0..3 {
        let (port, grpc_port) = (skiff_testing::free_port(), skiff_testing::free_port());
        let mut command = Command::new("qemu-aarch64-static");
        command
            .arg(crate::image::runtime_dir().join("linux-arm64/skiff-server"))
            .arg(component)
            .args(["--addr", &format!("127.0.0.1:{port}")])
            .args(["--grpc-addr", &format!("127.0.0.1:{grpc_port}")])
            .env("RUST_LOG", "skiff_component=info");
        let mut server = crate::serve::Server::launch(command, port, None);
        for _ in 0..2400 {
            if server.exited() {
                if server.log_text().contains("cannot listen") {
                    break;
                }
                return server;
            }
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return server;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(server.exited(), "{}", server.log_text());
    }
    panic!("the arm64 server found no free port in three tries");
}

#[test]
fn the_arm64_server_serves_a_precompiled_component_under_qemu() {
    let dir = tempfile::tempdir().unwrap();
    let model = iris_model(dir.path());
    let component = dir.path().join("iris.wasm");
    pack_precompiled(&model, &component, &["aarch64"]);
    let code = dir.path().join("iris.aarch64.cwasm");
    assert!(code.is_file());

    let mut server = arm64_server(&component);
    server.wait_for_200_within("/v2/health/ready", Duration::from_secs(120));
    let log = server.log_text();
    assert!(
        log.contains("loaded precompiled code from") && log.contains("iris.aarch64.cwasm"),
        "{log}"
    );
    crate::serve::assert_infers_iris(|p, b| server.post(p, b), "iris");

    // Every test row's answer, as native skiff serves the ONNX file (floats within rounding).
    let native = crate::serve::Server::start(model.to_str().unwrap(), &[]);
    let all = all_test_rows();
    let (status, got) = server.post("/v2/models/iris/infer", &all);
    assert_eq!(status, 200, "{got}");
    let (_, expected) = native.post("/v2/models/iris/infer", &all);
    assert_close(&got, &expected, "an infer of the iris test rows");
    drop(server);

    // Without its code the server cannot compile the component: it says how to pack it, and
    // exits.
    std::fs::remove_file(&code).unwrap();
    let mut server = arm64_server(&component);
    assert!(!server.wait_exit(Duration::from_secs(120)));
    let log = server.log_text();
    let errors: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("skiff-server:"))
        .collect();
    assert_eq!(errors.len(), 1, "{log}");
    assert!(
        errors[0].contains("runs only precompiled components")
            && errors[0].contains("--precompile aarch64"),
        "{log}"
    );
}
