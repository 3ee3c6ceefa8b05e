//! The command line's flags for components, shared by `skiff` and `skiff-server`.

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
    #[cfg(feature = "compiler")]
    #[arg(long, env = "SKIFF_WASM_CACHE", value_name = "DIR")]
    pub wasm_cache: Option<std::path::PathBuf>,
    /// Components: keep no compiled code; compile at every start (precompiled code that comes
    /// with a component is still used)
    #[cfg(feature = "compiler")]
    #[arg(long, conflicts_with = "wasm_cache")]
    pub no_wasm_cache: bool,
}

impl WasmArgs {
    /// The options these flags set.
    pub fn options(&self) -> crate::ComponentOptions {
        crate::ComponentOptions {
            deadline: std::time::Duration::from_millis(self.wasm_deadline_ms),
            memory: (self.wasm_memory_mb as usize) << 20,
            #[cfg(feature = "compiler")]
            cache: if self.no_wasm_cache {
                None
            } else {
                self.wasm_cache
                    .clone()
                    .or_else(crate::precompiled::default_cache)
            },
            ..crate::ComponentOptions::default()
        }
    }
}
