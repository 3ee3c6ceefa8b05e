//! WASI preview-1 modules (`skiff pack --format module`), for runtimes without the component
//! model: one core module that imports nothing beyond `wasi_snapshot_preview1` and carries its
//! model loaded at pack time; a command that answers an Open Inference Protocol request on
//! stdin as `skiff serve` answers it over HTTP, in `wasmtime run`, in Node.js's own `node:wasi`
//! and in the wasmi interpreter.

use crate::component::{all_test_rows, assert_close, venv_tool, wasm_tools_validate};
use crate::*;
use serde_json::{Value, json};
use skiff_testing::http_json;
use std::io::Write;
use std::process::Stdio;

/// A WASI preview-1 runtime.
#[derive(Debug, Clone, Copy)]
enum Host {
    /// `wasmtime run`.
    Wasmtime,
    /// Node.js's `node:wasi` (tests/component/run-module.mjs).
    Node,
    /// wasmi, an interpreter (`SKIFF_TEST_WASMI`, installed by scripts/test.sh).
    Wasmi,
}

const HOSTS: [Host; 3] = [Host::Wasmtime, Host::Node, Host::Wasmi];

fn tool(var: &str) -> std::ffi::OsString {
    std::env::var_os(var).unwrap_or_else(|| {
        panic!("{var} is not set: run the tests with scripts/test.sh, which installs it")
    })
}

impl Host {
    /// Runs `module` with `args`, `stdin` written to it.
    fn run(self, module: &Path, args: &[&str], stdin: &[u8]) -> Output {
        let mut command = match self {
            Host::Wasmtime => {
                let mut command = venv_tool("wasmtime");
                command.arg("run");
                command
            }
            Host::Node => {
                let mut command = Command::new(tool("SKIFF_TEST_NODE"));
                command
                    .arg("--no-warnings")
                    .arg(example("../tests/component/run-module.mjs"));
                command
            }
            Host::Wasmi => Command::new(tool("SKIFF_TEST_WASMI")),
        };
        let mut child = command
            .arg(module)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {self:?}: {e}"));
        child.stdin.take().unwrap().write_all(stdin).unwrap();
        child.wait_with_output().unwrap()
    }

    /// The answer of a run that must succeed, as JSON.
    fn answer(self, module: &Path, args: &[&str], stdin: &[u8]) -> Value {
        let out = self.run(module, args, stdin);
        assert!(
            out.status.success(),
            "{self:?} {args:?}: {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{self:?} {args:?}: {e}: {:?}", out.stdout))
    }
}

/// `skiff pack MODEL --format module -o OUT --json`.
fn pack_module(model: &Path, out: &Path) -> Value {
    let said = ok(skiff()
        .args(["pack", "--format", "module", "--json"])
        .arg(model)
        .arg("-o")
        .arg(out)
        .output()
        .unwrap());
    serde_json::from_str(&said).unwrap()
}

/// What a module imports and exports, by `wasm-tools print`.
fn imports_and_exports(module: &Path) -> (Vec<String>, Vec<String>) {
    let out = venv_tool("wasm-tools")
        .arg("print")
        .arg(module)
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let quoted = |line: &str, n: usize| line.split('"').nth(n).unwrap_or_default().to_string();
    let imports = text
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("(import "))
        .map(|l| format!("{}#{}", quoted(l, 1), quoted(l, 3)))
        .collect();
    let exports = text
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("(export "))
        .map(|l| quoted(l, 1))
        .collect();
    (imports, exports)
}

#[test]
fn a_module_answers_on_stdin_in_wasmtime_node_and_wasmi_as_skiff_serve_does() {
    let dir = tempfile::tempdir().unwrap();
    let model = iris_model(dir.path());
    let module = dir.path().join("iris.wasm");
    let packed = pack_module(&model, &module);
    let bytes = std::fs::read(&module).unwrap();
    assert_eq!(packed["bytes"], bytes.len(), "{packed}");
    assert!(bytes.starts_with(b"\0asm\x01\0\0\0"), "not a core module");
    wasm_tools_validate(&module).unwrap();
    let (imports, exports) = imports_and_exports(&module);
    assert!(!imports.is_empty());
    for import in &imports {
        assert!(
            import.starts_with("wasi_snapshot_preview1#"),
            "a module imports only WASI preview 1, not {import}"
        );
    }
    assert!(exports.contains(&"_start".to_string()), "{exports:?}");
    assert!(
        !exports.iter().any(|e| e.contains("wizer")),
        "the initialiser is gone once it has run: {exports:?}"
    );
    // The model is loaded, not carried as a file to parse at every start.
    let onnx = std::fs::read(&model).unwrap();
    assert!(!bytes.windows(onnx.len()).any(|w| w == onnx));

    let skiff = crate::serve::Server::start(model.to_str().unwrap(), &[]);
    let all = all_test_rows();
    let request = serde_json::to_vec(&all).unwrap();
    let (status, infer) = http_json(
        "POST",
        &format!("{}/v2/models/iris/infer", skiff.base),
        Some(&all),
    );
    assert_eq!(status, 200, "{infer}");
    let (_, mut metadata) = http_json("GET", &format!("{}/v2/models/iris", skiff.base), None);
    // Only the engine differs: tract inside wasm.
    metadata["parameters"]["backend"] = json!("tract");
    let wrong = json!({"inputs": [{"name": "Y", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]});
    let (status, refused) = http_json(
        "POST",
        &format!("{}/v2/models/iris/infer", skiff.base),
        Some(&wrong),
    );
    assert_eq!(status, 400, "{refused}");

    for host in HOSTS {
        assert_close(
            &host.answer(&module, &[], &request),
            &infer,
            &format!("{host:?} infer"),
        );
        assert_close(
            &host.answer(&module, &["infer"], &request),
            &infer,
            &format!("{host:?} infer"),
        );
        assert_close(
            &host.answer(&module, &["metadata"], b""),
            &metadata,
            &format!("{host:?} metadata"),
        );
        // A request the model refuses: skiff serve's message, on one line of stderr.
        let out = host.run(&module, &[], &serde_json::to_vec(&wrong).unwrap());
        assert_eq!(out.status.code(), Some(1), "{host:?}: {out:?}");
        assert!(out.stdout.is_empty(), "{host:?}: {out:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stderr).trim_end(),
            format!("error: {}", refused["error"].as_str().unwrap()),
            "{host:?}"
        );
        let out = host.run(&module, &["explain"], b"");
        assert_eq!(out.status.code(), Some(2), "{host:?}: {out:?}");
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(
            said.trim_end().lines().count() == 1 && said.contains("usage:"),
            "{host:?}: {said}"
        );
    }
}

/// Packing a module to an OCI layout gives a wasm artifact whose config says `wasip1`, with the
/// same module as a file (packing is reproducible).
#[test]
fn a_module_goes_into_an_oci_layout_as_a_wasip1_wasm_artifact() {
    let dir = tempfile::tempdir().unwrap();
    let model = iris_model(dir.path());
    let module = dir.path().join("iris.wasm");
    pack_module(&model, &module);
    let layout = dir.path().join("layout");
    ok(skiff()
        .args(["pack", "--format", "module"])
        .arg(&model)
        .arg("-o")
        .arg(format!("oci:{}:v1", layout.display()))
        .output()
        .unwrap());
    let manifest = crate::image::blob_json(&layout, &crate::image::tagged_digest(&layout, "v1"));
    assert_eq!(
        manifest["config"]["mediaType"],
        "application/vnd.wasm.config.v0+json"
    );
    let config = crate::image::blob_json(&layout, manifest["config"]["digest"].as_str().unwrap());
    assert_eq!(config["os"], "wasip1", "{config}");
    assert_eq!(config["architecture"], "wasm", "{config}");
    assert!(config.get("component").is_none(), "{config}");
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1, "{manifest}");
    assert_eq!(layers[0]["mediaType"], "application/wasm");
    let hex = layers[0]["digest"]
        .as_str()
        .unwrap()
        .strip_prefix("sha256:")
        .unwrap();
    assert!(
        std::fs::read(layout.join("blobs/sha256").join(hex)).unwrap()
            == std::fs::read(&module).unwrap(),
        "packing the same model twice gives different modules"
    );
}

#[test]
fn module_errors_are_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let model = iris_model(dir.path());
    let out = dir.path().join("iris.wasm");
    let pack = |extra: &[&str]| {
        let mut args = vec![
            "pack",
            model.to_str().unwrap(),
            "--format",
            "module",
            "-o",
            out.to_str().unwrap(),
        ];
        args.extend(extra);
        run(&args)
    };
    fails_with(
        pack(&["--precompile", "x86_64"]),
        &["--precompile is for components"],
    );
    fails_with(pack(&["--no-preinit"]), &["--no-preinit is for components"]);
    fails_with(
        pack(&["--platform", "linux/arm64"]),
        &["--platform is for images", "a module"],
    );
    let empty = tempfile::tempdir().unwrap();
    fails_with(
        skiff()
            .args(["pack", "--format", "module", "-o"])
            .arg(&out)
            .arg(&model)
            .env("SKIFF_RUNTIME_DIR", empty.path())
            .output()
            .unwrap(),
        &["module engine", "images/build-guest.sh"],
    );
    assert!(!out.exists(), "nothing is written when packing fails");

    // skiff hosts components and ONNX files, and says so of a module.
    pack_module(&model, &out);
    fails_with(
        skiff()
            .arg("predict")
            .arg(&out)
            .arg("--data")
            .arg(example("iris/test.csv"))
            .output()
            .unwrap(),
        &["core module", "wasmtime run", "--format component"],
    );
}
