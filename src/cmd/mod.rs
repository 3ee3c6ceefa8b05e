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
    /// component (`skiff pack --format component`) in wasmtime, with the code precompiled for
    /// this machine beside it (`iris.x86_64.cwasm` beside `iris.wasm`) where there is some.
    pub fn load(&self, path: &std::path::Path) -> anyhow::Result<skiff_runtime::Model> {
        let read = |path: &std::path::Path| {
            std::fs::read(path).map_err(|source| skiff_runtime::Error::Io {
                path: path.display().to_string(),
                source,
            })
        };
        let bytes = read(path)?;
        let mut offered = Vec::new();
        if skiff_component::is_component(&bytes)
            && let Some(target) = skiff_component::precompiled::host_target()
        {
            let beside = skiff_component::precompiled::beside(path, &target);
            if beside.is_file() {
                offered.push(skiff_component::precompiled::Offered {
                    origin: beside.display().to_string(),
                    file: read(&beside)?,
                });
            }
        }
        self.load_bytes(&path.display().to_string(), &bytes, &offered)
    }

    /// [`BackendArgs::load`] for a model in memory, with any precompiled code `offered` for
    /// it; `source_name` names it in errors.
    pub fn load_bytes(
        &self,
        source_name: &str,
        bytes: &[u8],
        offered: &[skiff_component::precompiled::Offered],
    ) -> anyhow::Result<skiff_runtime::Model> {
        if skiff_component::is_component(bytes) {
            return Ok(skiff_component::load(
                source_name,
                bytes,
                offered,
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
    /// Components: where compiled code is kept between runs, so that a component compiles once
    /// per machine [default: $XDG_CACHE_HOME/skiff/wasmtime or ~/.cache/skiff/wasmtime]
    #[arg(long, env = "SKIFF_WASM_CACHE", value_name = "DIR")]
    pub wasm_cache: Option<std::path::PathBuf>,
    /// Components: keep no compiled code; compile at every start (precompiled code that comes
    /// with a component is still used)
    #[arg(long, conflicts_with = "wasm_cache")]
    pub no_wasm_cache: bool,
}

impl WasmArgs {
    pub fn options(&self) -> skiff_component::ComponentOptions {
        skiff_component::ComponentOptions {
            deadline: std::time::Duration::from_millis(self.wasm_deadline_ms),
            memory: (self.wasm_memory_mb as usize) << 20,
            cache: if self.no_wasm_cache {
                None
            } else {
                self.wasm_cache
                    .clone()
                    .or_else(skiff_component::precompiled::default_cache)
            },
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
