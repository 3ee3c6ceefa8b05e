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
pub mod eval;
pub mod export;
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
pub mod table;
pub mod track;
pub mod tune;

use anyhow::Context;
use skiff_runtime::{BackendKind, BackendOptions, GraphOptimization};

/// Which engine runs the model, and its ONNX Runtime settings.
#[derive(clap::Args, Debug, Clone)]
#[command(next_help_heading = "Backend")]
pub struct BackendArgs {
    /// Engine: auto (CUDA through ONNX Runtime when it has the provider and a GPU answers,
    /// else tract), tract (pure Rust), ort (ONNX Runtime, CPU) or cuda (ONNX Runtime, GPU; an
    /// error when it cannot start). ONNX Runtime is found at ORT_DYLIB_PATH, in the system's
    /// library folders or in a Python onnxruntime(-gpu) package
    #[arg(
        long,
        env = "SKIFF_BACKEND",
        default_value = "auto",
        value_name = "auto|tract|ort|cuda"
    )]
    pub backend: BackendKind,
    #[command(flatten)]
    pub ort: OrtArgs,
    #[command(flatten)]
    pub wasm: WasmArgs,
}

impl BackendArgs {
    pub fn options(&self) -> BackendOptions {
        self.ort.options(self.backend)
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
    #[arg(long, value_name = "MS", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub wasm_deadline_ms: u64,
    /// Components: the most memory one instance may hold, in MiB
    #[arg(long, value_name = "MIB", default_value_t = 512, value_parser = clap::value_parser!(u64).range(1..=4096))]
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

/// ONNX Runtime's settings (tract ignores them).
#[derive(clap::Args, Debug, Clone)]
#[command(next_help_heading = "Backend")]
pub struct OrtArgs {
    /// ONNX Runtime: threads one run may use [default: 1]
    #[arg(long, value_name = "N")]
    pub intra_op_threads: Option<usize>,
    /// ONNX Runtime: graph optimisation level [default: all]
    #[arg(long, value_name = "disable|basic|extended|all")]
    pub graph_optimization: Option<GraphOptimization>,
    /// ONNX Runtime: the CUDA device to run on
    #[arg(long, default_value_t = 0, value_name = "ID")]
    pub cuda_device: u32,
    /// ONNX Runtime: sessions that run requests side by side [default: CPU cores; 1 on CUDA]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub instances: Option<u32>,
    /// ONNX Runtime: bind inputs and outputs before each run (I/O binding; saves copies of
    /// large batches on a GPU)
    #[arg(long)]
    pub io_binding: bool,
}

impl OrtArgs {
    pub fn options(&self, backend: BackendKind) -> BackendOptions {
        BackendOptions {
            backend,
            intra_op_threads: self.intra_op_threads,
            graph_optimization: self.graph_optimization,
            cuda_device: self.cuda_device,
            instances: self.instances.map(|n| n as usize),
            io_binding: self.io_binding,
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
