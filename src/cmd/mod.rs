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
    /// component (`skiff pack --format component`) in wasmtime.
    pub fn load(&self, path: &std::path::Path) -> anyhow::Result<skiff_runtime::Model> {
        let bytes = std::fs::read(path).map_err(|source| skiff_runtime::Error::Io {
            path: path.display().to_string(),
            source,
        })?;
        self.load_bytes(&path.display().to_string(), &bytes)
    }

    /// [`BackendArgs::load`] for a model in memory; `source_name` names it in errors.
    pub fn load_bytes(
        &self,
        source_name: &str,
        bytes: &[u8],
    ) -> anyhow::Result<skiff_runtime::Model> {
        if skiff_component::is_component(bytes) {
            return Ok(skiff_component::load(
                source_name,
                bytes,
                &self.wasm.options(),
            )?);
        }
        Ok(skiff_runtime::Model::load(
            source_name,
            bytes,
            &self.options(),
        )?)
    }
}

/// How WebAssembly components run (ONNX files ignore these).
#[derive(clap::Args, Debug, Clone)]
#[command(next_help_heading = "Backend")]
pub struct WasmArgs {
    /// Components: the longest one prediction may run, in milliseconds; a guest past it is
    /// stopped and the request fails
    #[arg(long, env = "SKIFF_WASM_DEADLINE_MS", value_name = "MS", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub wasm_deadline_ms: u64,
    /// Components: the most memory one instance may hold, in MiB
    #[arg(long, env = "SKIFF_WASM_MEMORY_MB", value_name = "MIB", default_value_t = 512, value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub wasm_memory_mb: u64,
}

impl WasmArgs {
    pub fn options(&self) -> skiff_component::ComponentOptions {
        skiff_component::ComponentOptions {
            deadline: std::time::Duration::from_millis(self.wasm_deadline_ms),
            memory: (self.wasm_memory_mb as usize) << 20,
            ..skiff_component::ComponentOptions::default()
        }
    }
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
