/// `println!` that returns the error instead of panicking: output piped into `head` ends the
/// command quietly (see `main`).
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)
    }};
}

pub mod algorithms;
pub mod bench;
pub mod cv;
pub mod dp;
pub mod eval;
pub mod explain;
pub mod export;
pub mod fairness;
pub mod fit;
pub mod inspect;
pub mod k8s;
pub mod mlflow_source;
pub mod pack;
pub mod predict;
pub mod pull;
pub mod push;
pub mod select;
pub mod serve;
pub mod sign;
pub mod table;
pub mod track;
pub mod tune;

use anyhow::Context;
pub use skiff_component::cli::WasmArgs;
pub use skiff_host::cli::{EngineArgs, OrtArgs};
use skiff_runtime::BackendOptions;

/// Which engine runs the model, and its settings.
#[derive(clap::Args, Debug, Clone)]
pub struct BackendArgs {
    #[command(flatten)]
    pub engine: EngineArgs,
    #[command(flatten)]
    pub wasm: WasmArgs,
    /// Keep ONNX files in memory for explanations (`skiff serve --explain-background`).
    #[arg(skip)]
    pub explain: bool,
}

impl BackendArgs {
    pub fn options(&self) -> BackendOptions {
        BackendOptions {
            explain: self.explain,
            ..self.engine.options()
        }
    }

    /// The model in the file at `path`: an ONNX file on the backend chosen, or a WebAssembly
    /// component (`skiff pack --format component`) in wasmtime, with the code precompiled for
    /// this machine beside it (`iris.x86_64.cwasm` beside `iris.wasm`) where there is some.
    pub fn load(&self, path: &std::path::Path) -> anyhow::Result<skiff_runtime::Model> {
        Ok(skiff_component::load_file(
            path,
            &self.options(),
            &self.wasm.options(),
        )?)
    }

    /// [`BackendArgs::load`] for a model in memory, with any precompiled code `offered` for
    /// it; `source_name` names it in errors.
    pub fn load_bytes(
        &self,
        source_name: &str,
        bytes: &[u8],
        offered: &[skiff_component::precompiled::Offered],
    ) -> anyhow::Result<skiff_runtime::Model> {
        Ok(skiff_component::load_any(
            source_name,
            bytes,
            offered,
            &self.options(),
            &self.wasm.options(),
        )?)
    }
}

/// An `oci-archive:FILE[:TAG]` reference unpacked into the folder `scratch`, as the layout
/// there; any other reference as it is.
pub fn unpack_archive(
    reference: skiff_pack::Reference,
    scratch: &std::path::Path,
) -> anyhow::Result<skiff_pack::Reference> {
    Ok(match reference {
        skiff_pack::Reference::Archive { file, tag } => {
            skiff_pack::archive::extract(&file, scratch)?;
            skiff_pack::Reference::Layout {
                dir: scratch.to_path_buf(),
                tag,
            }
        }
        other => other,
    })
}

/// A current-thread tokio runtime for the commands that talk to the network.
pub fn block_on<F: std::future::Future>(future: F) -> anyhow::Result<F::Output> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    Ok(runtime.block_on(future))
}

/// Prints `value` as one line of JSON on stdout.
pub fn print_json(value: &serde_json::Value) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, value)?;
    writeln!(out)?;
    Ok(())
}
