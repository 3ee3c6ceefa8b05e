//! skiff's model engine as a WASI preview-1 command, for hosts without the component model
//! (WasmEdge, WAMR, wasmi, Node.js's `node:wasi`, `wasmtime run`): `skiff pack --format module`
//! writes it with the model already loaded.
//!
//! ```text
//! wasmtime run iris.wasm < request.json      # an Open Inference Protocol infer request
//! wasmtime run iris.wasm metadata            # the model's metadata
//! ```
//!
//! The answer is the JSON body `skiff serve` would send, on stdout. A request the model refuses,
//! or a model that fails, gives one line on stderr and exit status 1; a wrong command line,
//! status 2.
//!
//! Pre-initialisation (`skiff_component::preinit::preinitialise_module`) calls
//! [`initialize`] once at pack time, with the model's name as the one argument and the ONNX
//! file on stdin, and snapshots the instance: the module starts with the model parsed and
//! optimised, and imports nothing beyond `wasi_snapshot_preview1`.

mod loaded;

use std::io::{Read, Write};
use std::process::ExitCode;
use std::sync::OnceLock;

use loaded::Loaded;
use skiff_host::Request;
use skiff_host::protocol::{MAX_BODY_BYTES, MAX_ELEMENTS};

static LOADED: OnceLock<Result<Loaded, String>> = OnceLock::new();

const USAGE: &str =
    "usage: MODULE [infer | metadata] (infer reads an Open Inference Protocol request on stdin)";

/// Loads the model: its name is the one argument, the ONNX file comes on stdin. A model that
/// cannot load exits with status 1, having said why on stderr.
#[unsafe(export_name = "wizer-initialize")]
pub extern "C" fn initialize() {
    // The constructors `_start` runs first: tract registers its kernels in them (`inventory`).
    // They run again at `_start`, and tract's registrations are idempotent.
    unsafe extern "C" {
        fn __wasm_call_ctors();
    }
    // SAFETY: the linker's constructors, run before anything else in this instance.
    unsafe { __wasm_call_ctors() };
    let name = std::env::args().nth(1).unwrap_or_default();
    let loaded = LOADED.get_or_init(|| {
        Loaded::new(name, || {
            let mut bytes = Vec::new();
            std::io::stdin()
                .read_to_end(&mut bytes)
                .map_err(|e| format!("cannot read the model on stdin: {e}"))?;
            Ok(bytes)
        })
    });
    if let Err(e) = loaded {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn main() -> ExitCode {
    let loaded = match LOADED.get() {
        Some(Ok(loaded)) => loaded,
        Some(Err(e)) => return fail(e),
        None => {
            return fail(
                "this is skiff's engine without a model: pack one with `skiff pack MODEL --format module`",
            );
        }
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (method, path, body) = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        [] | ["infer"] => match read_request() {
            Ok(body) => ("POST", format!("/v2/models/{}/infer", loaded.name), body),
            Err(e) => return fail(&e),
        },
        ["metadata"] => ("GET", format!("/v2/models/{}", loaded.name), Vec::new()),
        ["-h" | "--help" | "help"] => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        _ => {
            eprintln!("error: unknown arguments {args:?}; {USAGE}");
            return ExitCode::from(2);
        }
    };
    let reply = skiff_host::answer(
        &loaded.repo,
        Request {
            method,
            path: &path,
            header_length: None,
            content_type: Some("application/json"),
            body: &body,
        },
        MAX_ELEMENTS,
    );
    if !reply.status.is_success() {
        let message = serde_json::from_slice::<serde_json::Value>(&reply.body)
            .ok()
            .and_then(|v| v.get("error")?.as_str().map(str::to_owned))
            .unwrap_or_else(|| String::from_utf8_lossy(&reply.body).into_owned());
        return fail(&message);
    }
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(&reply.body)
        .and_then(|()| stdout.write_all(b"\n"))
        .and_then(|()| stdout.flush())
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&format!("cannot write the answer: {e}")),
    }
}

/// The request on stdin, refused beyond the size `skiff serve` takes.
fn read_request() -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    std::io::stdin()
        .take(MAX_BODY_BYTES as u64 + 1)
        .read_to_end(&mut body)
        .map_err(|e| format!("cannot read the request on stdin: {e}"))?;
    if body.len() > MAX_BODY_BYTES {
        return Err(format!(
            "the request is larger than {MAX_BODY_BYTES} bytes: send fewer rows at a time"
        ));
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(format!(
            "no request on stdin: send an Open Inference Protocol infer request ({USAGE})"
        ));
    }
    Ok(body)
}

fn fail(message: &str) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::FAILURE
}
