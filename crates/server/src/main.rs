//! `skiff-server`: serves ONNX models over the Open Inference Protocol.
//!
//! This is the binary inside skiff's images: built statically (musl) with only the runtime and
//! the host, so the image needs nothing else. Its flags are `skiff serve`'s (one definition,
//! `skiff_host::cli`), each also an environment variable, so a pod is tuned by its
//! environment alone:
//!
//! ```text
//! skiff-server [OPTIONS] [MODEL.onnx | MODEL.wasm | DIR]...
//! skiff-server --model_dir /mnt/models --model_name iris --http_port 8080 --grpc_port 8081
//! skiff-server --probe http://127.0.0.1:8080/v2/health/ready
//! ```
//!
//! It listens on every interface: REST on `--http-port`, else `PORT`, else 8080; gRPC on
//! `--grpc-port` (8081 by default). `--backend` (or `SKIFF_BACKEND`) is auto, tract, ort or
//! cuda, as for `skiff serve`; the static build in scratch images has tract only, a glibc
//! build on a CUDA base image all four.
//!
//! Built with the `component` feature (the arm64 server is), it also serves model components
//! (`skiff pack --format component --precompile aarch64`) from the code precompiled for its
//! machine beside them: wasmtime's runtime without a compiler, for devices that never compile.

use clap::Parser;
use skiff_host::cli::{EngineArgs, ServeArgs};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

// musl's allocator serialises threads; mimalloc keeps a loaded server fast.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The port gRPC listens on unless told otherwise (KServe's).
const GRPC_PORT: u16 = 8081;

/// Serves ONNX models over the Open Inference Protocol (REST and gRPC).
#[derive(Parser)]
#[command(name = "skiff-server", version)]
struct Cli {
    /// ONNX files (served by file stem, or --name) and model folders (one .onnx file, or a
    /// repository: <name>/<version>/model.onnx)
    #[arg(required_unless_present_any = ["probe", "model_dir"])]
    models: Vec<PathBuf>,
    /// Ask URL once and exit 0 when it answers 200, else 1: an exec probe or image
    /// HEALTHCHECK where the image has no curl. A path alone (/v2/health/ready) asks this
    /// server's own address, as its flags and environment set it
    #[arg(long, value_name = "URL|PATH")]
    probe: Option<String>,
    #[command(flatten)]
    serve: ServeArgs,
    #[command(flatten)]
    engine: EngineArgs,
    #[cfg(feature = "component")]
    #[command(flatten)]
    wasm: skiff_component::cli::WasmArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(url) = &cli.probe {
        let url = match (url.starts_with('/'), http_addr(&cli)) {
            (false, _) => url.clone(),
            (true, Ok(mut addr)) => {
                if addr.ip().is_unspecified() {
                    addr.set_ip(IpAddr::V4(Ipv4Addr::LOCALHOST));
                }
                format!("http://{addr}{url}")
            }
            (true, Err(e)) => {
                eprintln!("skiff-server: {e}");
                return ExitCode::FAILURE;
            }
        };
        return match skiff_host::cli::probe(&url, Duration::from_secs(3)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("skiff-server: probe failed: {e}");
                ExitCode::FAILURE
            }
        };
    }
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("skiff-server: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Every interface: the server runs in a container or on a device.
const ANY: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);

/// The REST address: --addr, else every interface and --http-port, else `PORT`, else 8080.
fn http_addr(cli: &Cli) -> Result<SocketAddr, String> {
    let port = match std::env::var("PORT") {
        Ok(p) => p
            .parse::<u16>()
            .map_err(|_| format!("PORT={p:?} is not a port number"))?,
        Err(_) => 8080,
    };
    Ok(cli.serve.http_addr(ANY, port))
}

/// A model file served as `name` (or its stem): an ONNX file, or a component with its code
/// precompiled for this machine beside it.
#[cfg(feature = "component")]
fn file_source(cli: &Cli, path: &std::path::Path, name: Option<&str>) -> skiff_host::Source {
    let (path, backend, wasm) = (path.to_path_buf(), cli.engine.options(), cli.wasm.options());
    skiff_host::Source::Model {
        name: name.map_or_else(|| skiff_host::cli::stem(&path), str::to_string),
        load: std::sync::Arc::new(move || {
            skiff_component::load_file(&path, &backend, &wasm).map_err(Into::into)
        }),
    }
}

fn run(cli: Cli) -> Result<(), String> {
    // Containers collect stderr as lines: no colours off a terminal; --log-format json for
    // collectors; --log-level debug (or RUST_LOG) logs each request.
    cli.serve.init_logs(&[
        "skiff_host",
        "skiff_runtime",
        "skiff_server",
        "skiff_component",
    ])?;
    let http = http_addr(&cli)?;
    let grpc = cli.serve.grpc_addr(ANY, Some(GRPC_PORT));
    let options = cli.engine.options();
    let name = cli.serve.name.as_deref();
    if name.is_some() && cli.models.len() + usize::from(cli.serve.model_dir.is_some()) > 1 {
        return Err("--name names a single model; each of several sources keeps its own".into());
    }
    let mut sources = Vec::new();
    for path in &cli.models {
        #[cfg(feature = "component")]
        if path.is_file() {
            sources.push(file_source(&cli, path, name));
            continue;
        }
        sources
            .push(skiff_host::cli::path_source(path, name, &options).map_err(|e| e.to_string())?);
    }
    sources.extend(
        cli.serve
            .model_dir_source(&options)
            .map_err(|e| e.to_string())?,
    );
    let sources = skiff_host::Sources::new(sources);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(http)
            .await
            .map_err(|e| format!("cannot listen on {http}: {e}"))?;
        let mut listeners = skiff_host::Listeners::new(listener);
        if let Some(grpc) = grpc {
            let listener = tokio::net::TcpListener::bind(grpc)
                .await
                .map_err(|e| format!("cannot listen for gRPC on {grpc}: {e}"))?;
            listeners = listeners.with_grpc(listener);
        }
        tracing::debug!(addr = %http, grpc = ?grpc, "listening; loading the models");
        skiff_host::serve_with_reload(
            listeners,
            sources,
            cli.serve.options(),
            skiff_host::shutdown_signal(),
        )
        .await
        .map_err(|e| e.to_string())
    })
}
