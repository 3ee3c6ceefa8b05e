//! `skiff-server`: serves one ONNX model over the Open Inference Protocol.
//!
//! This is the binary inside skiff's images: built statically (musl) with only the runtime and
//! the host, so the image needs nothing else.
//!
//! ```text
//! skiff-server [--name NAME] [--addr HOST:PORT] [--backend KIND] MODEL.onnx
//! ```
//!
//! Without `--addr` it listens on 0.0.0.0 and the port in `PORT` (default 8080). `--backend`
//! (or `SKIFF_BACKEND`) is auto, tract, ort or cuda, as for `skiff serve`; the static build in
//! scratch images has tract only, a glibc build on a CUDA base image all four.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

// musl's allocator serialises threads; mimalloc keeps a loaded server fast.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const USAGE: &str = "usage: skiff-server [--name NAME] [--addr HOST:PORT] [--backend auto|tract|ort|cuda] MODEL.onnx";

struct Args {
    model: PathBuf,
    name: Option<String>,
    addr: SocketAddr,
    backend: skiff_runtime::BackendKind,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let (mut model, mut name, mut addr) = (None, None, None);
    let mut backend = std::env::var("SKIFF_BACKEND").ok();
    while let Some(arg) = args.next() {
        let mut value = |flag: &str| {
            args.next()
                .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))
        };
        match arg.as_str() {
            "--name" => name = Some(value("--name")?),
            "--backend" => backend = Some(value("--backend")?),
            "--addr" => {
                let v = value("--addr")?;
                addr =
                    Some(v.parse().map_err(|_| {
                        format!("--addr {v:?} is not HOST:PORT (e.g. 0.0.0.0:8080)")
                    })?);
            }
            "-h" | "--help" => return Err(USAGE.to_string()),
            flag if flag.starts_with('-') => return Err(format!("unknown option {flag}\n{USAGE}")),
            _ if model.is_none() => model = Some(PathBuf::from(arg)),
            _ => return Err(format!("one model only\n{USAGE}")),
        }
    }
    let model = model.ok_or_else(|| USAGE.to_string())?;
    let addr = match addr {
        Some(a) => a,
        None => {
            let port = match std::env::var("PORT") {
                Ok(p) => p
                    .parse::<u16>()
                    .map_err(|_| format!("PORT={p:?} is not a port number"))?,
                Err(_) => 8080,
            };
            SocketAddr::from(([0, 0, 0, 0], port))
        }
    };
    let backend = match backend {
        Some(b) => b.parse().map_err(|e| format!("{e}"))?,
        None => skiff_runtime::BackendKind::default(),
    };
    Ok(Args {
        model,
        name,
        addr,
        backend,
    })
}

fn main() -> ExitCode {
    // Containers collect stderr as lines: no colours; RUST_LOG=skiff_host=debug logs each request.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,skiff_host=info,skiff_server=info".into()),
        )
        .with_ansi(false)
        .init();
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("skiff-server: {message}");
            return ExitCode::from(2);
        }
    };
    let name = args.name.unwrap_or_else(|| {
        args.model
            .file_stem()
            .map_or("model".into(), |s| s.to_string_lossy().into_owned())
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let result = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(args.addr)
            .await
            .map_err(|e| format!("cannot listen on {}: {e}", args.addr))?;
        tracing::info!(model = %name, addr = %args.addr, "listening; loading the model");
        let (path, name) = (args.model.clone(), name.clone());
        let backend = skiff_runtime::BackendOptions::new(args.backend);
        let load: skiff_host::Loader = std::sync::Arc::new(move || {
            let model = skiff_runtime::Model::load_path(&path, &backend)?;
            Ok(skiff_host::Repository::single(&name, model))
        });
        let options = skiff_host::Options::default();
        skiff_host::serve_with_reload(listener, load, options, skiff_host::shutdown_signal())
            .await
            .map_err(|e| e.to_string())
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("skiff-server: {e}");
            ExitCode::FAILURE
        }
    }
}
