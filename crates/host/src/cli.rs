//! The server's command line, one definition for `skiff serve` and for `skiff-server`, the
//! server inside skiff's images: every flag is also an environment variable (`SKIFF_...`),
//! so a pod is tuned by its environment alone, and KServe's conventional arguments
//! (`--model_dir`, `--model_name`, `--http_port`, `--grpc_port`) are accepted as they are
//! written in a ServingRuntime.

use crate::{Batching, Options, Source};
use skiff_runtime::{BackendKind, BackendOptions, GraphOptimization};
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How the server listens, its limits, and its logs.
#[derive(clap::Args, Debug, Clone)]
pub struct ServeArgs {
    /// A folder of models a platform mounted (KServe: /mnt/models): the one .onnx file in it
    /// (an MLflow model folder's too), or a model repository (<name>/<version>/model.onnx)
    #[arg(
        long,
        visible_alias = "model_dir",
        env = "SKIFF_MODEL_DIR",
        value_name = "DIR"
    )]
    pub model_dir: Option<PathBuf>,
    /// The name clients use in /v2/models/NAME, when serving one model
    #[arg(long, visible_alias = "model_name", env = "SKIFF_MODEL_NAME")]
    pub name: Option<String>,
    /// Address the REST API listens on [default: 127.0.0.1:8080 for `skiff serve`; every
    /// interface and $PORT or 8080 in images]
    #[arg(long, env = "SKIFF_ADDR", value_name = "HOST:PORT")]
    pub addr: Option<SocketAddr>,
    /// The REST API's port, on the default interface (KServe's --http_port)
    #[arg(
        long,
        visible_alias = "http_port",
        env = "SKIFF_HTTP_PORT",
        value_name = "PORT",
        conflicts_with = "addr"
    )]
    pub http_port: Option<u16>,
    /// Address the gRPC API listens on [default: off for `skiff serve`; every interface, port
    /// 8081, in images]
    #[arg(long, env = "SKIFF_GRPC_ADDR", value_name = "HOST:PORT")]
    pub grpc_addr: Option<SocketAddr>,
    /// The gRPC API's port, on the default interface (KServe's --grpc_port)
    #[arg(
        long,
        visible_alias = "grpc_port",
        env = "SKIFF_GRPC_PORT",
        value_name = "PORT",
        conflicts_with = "grpc_addr"
    )]
    pub grpc_port: Option<u16>,
    /// Largest request body in bytes (413 beyond it)
    #[arg(long, env = "SKIFF_MAX_BODY_BYTES", default_value_t = Options::default().max_body_bytes)]
    pub max_body_bytes: usize,
    /// Most tensor elements in one request (413 beyond it)
    #[arg(long, env = "SKIFF_MAX_ELEMENTS", default_value_t = Options::default().max_elements)]
    pub max_elements: usize,
    /// Inference requests served at once (503 with Retry-After beyond it)
    #[arg(long, env = "SKIFF_MAX_CONCURRENCY", default_value_t = Options::default().max_concurrency,
          value_parser = at_least_one)]
    pub max_concurrency: usize,
    /// Longest time one inference may take, in milliseconds (504 beyond it; no limit by default)
    #[arg(long, env = "SKIFF_TIMEOUT_MS", value_name = "MS",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout_ms: Option<u64>,
    /// Batch concurrent requests to one model, waiting at most this many microseconds for
    /// more rows after the first request (dynamic batching; off by default)
    #[arg(long, env = "SKIFF_BATCH_DELAY_US", value_name = "MICROSECONDS")]
    pub batch_delay_us: Option<u64>,
    /// With --batch-delay-us: run a batch as soon as it has this many rows
    #[arg(long, env = "SKIFF_BATCH_MAX_ROWS", default_value_t = 64,
          value_parser = at_least_one)]
    pub batch_max_rows: usize,
    /// Seconds readiness answers 503 before shutdown stops accepting requests (SIGTERM, Ctrl-C)
    #[arg(long, env = "SKIFF_DRAIN_SECONDS", default_value_t = Options::default().drain.as_secs_f64(),
          value_parser = seconds)]
    pub drain_seconds: f64,
    /// Let clients load and unload models (POST /v2/repository/models/NAME/load, .../unload)
    #[arg(long, env = "SKIFF_MODEL_CONTROL")]
    pub model_control: bool,
    /// Names of the metrics at /metrics: skiff (skiff_*, OpenMetrics) or triton (Triton's
    /// nv_inference_* counters, for dashboards built for Triton)
    #[arg(
        long,
        env = "SKIFF_METRICS_NAMES",
        default_value = "skiff",
        value_name = "skiff|triton"
    )]
    pub metrics_names: crate::MetricsNames,
    /// Log level: error, warn, info, or debug for a line per request (RUST_LOG overrides)
    #[arg(long, env = "SKIFF_LOG_LEVEL", default_value = "info", value_name = "LEVEL",
          value_parser = ["error", "warn", "info", "debug", "trace"])]
    pub log_level: String,
    /// Log lines as text, or as JSON objects for log collectors
    #[arg(long, env = "SKIFF_LOG_FORMAT", default_value = "text", value_name = "text|json",
          value_parser = ["text", "json"])]
    pub log_format: String,
}

fn at_least_one(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("{text:?} is not a whole number, 1 or more")),
    }
}

fn seconds(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(s) if s.is_finite() && s >= 0.0 => Ok(s),
        _ => Err(format!("{text:?} is not a number of seconds, 0 or more")),
    }
}

impl ServeArgs {
    /// The server's limits and behaviour.
    pub fn options(&self) -> Options {
        Options {
            max_body_bytes: self.max_body_bytes,
            max_elements: self.max_elements,
            max_concurrency: self.max_concurrency,
            timeout: self.timeout_ms.map(Duration::from_millis),
            batching: self.batch_delay_us.map(|us| Batching {
                max_rows: self.batch_max_rows,
                max_delay: Duration::from_micros(us),
            }),
            drain: Duration::from_secs_f64(self.drain_seconds),
            model_control: self.model_control,
            metrics_names: self.metrics_names,
            explain_background: None,
        }
    }

    /// Where the REST API listens: `--addr`, else `host` and `--http-port` or `port`.
    pub fn http_addr(&self, host: IpAddr, port: u16) -> SocketAddr {
        self.addr
            .unwrap_or_else(|| SocketAddr::new(host, self.http_port.unwrap_or(port)))
    }

    /// Where the gRPC API listens: `--grpc-addr`, else `host` and `--grpc-port` or `port`;
    /// `None` when neither is given and there is no default port.
    pub fn grpc_addr(&self, host: IpAddr, port: Option<u16>) -> Option<SocketAddr> {
        self.grpc_addr.or_else(|| {
            self.grpc_port
                .or(port)
                .map(|port| SocketAddr::new(host, port))
        })
    }

    /// The folder of `--model-dir` as a source, serving its one model as `--name` (default:
    /// the file's stem). Under KServe's asynchronous model loading (`MODEL_INIT_MODE=async`,
    /// a model image mounted while the server starts) it waits up to 10 minutes for the folder
    /// to be filled, answering liveness meanwhile.
    pub fn model_dir_source(
        &self,
        options: &BackendOptions,
    ) -> Result<Option<Source>, crate::LoadError> {
        let wait = match std::env::var("MODEL_INIT_MODE").as_deref() {
            Ok("async") => Duration::from_secs(600),
            _ => Duration::ZERO,
        };
        self.model_dir
            .as_deref()
            .map(|dir| Source::mounted(dir, self.name.as_deref(), options, wait).checked())
            .transpose()
    }

    /// Logs to stderr, as text (coloured on a terminal) or JSON lines: `--log-level` for
    /// `crates` (dependencies only warn), unless RUST_LOG says otherwise.
    pub fn init_logs(&self, crates: &[&str]) -> Result<(), String> {
        use std::io::IsTerminal;
        let directives = match std::env::var("RUST_LOG") {
            Ok(directives) => directives,
            Err(_) if matches!(self.log_level.as_str(), "error" | "warn") => self.log_level.clone(),
            Err(_) => std::iter::once("warn".to_string())
                .chain(crates.iter().map(|c| format!("{c}={}", self.log_level)))
                .collect::<Vec<_>>()
                .join(","),
        };
        let filter = tracing_subscriber::EnvFilter::try_new(&directives)
            .map_err(|e| format!("invalid RUST_LOG {directives:?}: {e}"))?;
        let logs = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr);
        if self.log_format == "json" {
            logs.json().flatten_event(true).init();
        } else {
            logs.with_ansi(std::io::stderr().is_terminal()).init();
        }
        Ok(())
    }
}

/// Which engine runs ONNX models, and ONNX Runtime's settings.
#[derive(clap::Args, Debug, Clone)]
#[command(next_help_heading = "Backend")]
pub struct EngineArgs {
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
    #[allow(missing_docs)]
    #[command(flatten)]
    pub ort: OrtArgs,
}

impl EngineArgs {
    /// The backend options these flags choose.
    pub fn options(&self) -> BackendOptions {
        self.ort.options(self.backend)
    }
}

/// ONNX Runtime's settings (tract ignores them).
#[derive(clap::Args, Debug, Clone)]
#[command(next_help_heading = "Backend")]
pub struct OrtArgs {
    /// ONNX Runtime: threads one run may use [default: 1]
    #[arg(long, env = "SKIFF_INTRA_OP_THREADS", value_name = "N")]
    pub intra_op_threads: Option<usize>,
    /// ONNX Runtime: graph optimisation level [default: all]
    #[arg(
        long,
        env = "SKIFF_GRAPH_OPTIMIZATION",
        value_name = "disable|basic|extended|all"
    )]
    pub graph_optimization: Option<GraphOptimization>,
    /// ONNX Runtime: the CUDA device to run on
    #[arg(
        long,
        env = "SKIFF_CUDA_DEVICE",
        default_value_t = 0,
        value_name = "ID"
    )]
    pub cuda_device: u32,
    /// ONNX Runtime: sessions that run requests side by side [default: CPU cores; 1 on CUDA]
    #[arg(long, env = "SKIFF_INSTANCES", value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub instances: Option<u32>,
    /// ONNX Runtime: bind inputs and outputs before each run (I/O binding; saves copies of
    /// large batches on a GPU)
    #[arg(long, env = "SKIFF_IO_BINDING")]
    pub io_binding: bool,
}

impl OrtArgs {
    /// The backend options for `backend` with these settings.
    pub fn options(&self, backend: BackendKind) -> BackendOptions {
        BackendOptions {
            backend,
            intra_op_threads: self.intra_op_threads,
            graph_optimization: self.graph_optimization,
            cuda_device: self.cuda_device,
            instances: self.instances.map(|n| n as usize),
            io_binding: self.io_binding,
            explain: false,
        }
    }
}

/// A model file or folder given on the command line as a source: a folder as
/// [`Source::mounted`], a file served as `name` or its stem.
pub fn path_source(
    path: &Path,
    name: Option<&str>,
    options: &BackendOptions,
) -> Result<Source, crate::LoadError> {
    if path.is_dir() {
        return Source::mounted(path, name, options, Duration::ZERO).checked();
    }
    if !path.exists() {
        return Err(format!("{} does not exist", path.display()).into());
    }
    Ok(Source::file(
        &name.map_or_else(|| stem(path), str::to_string),
        path,
        options,
    ))
}

/// A file's name without its extension, or `model`.
pub fn stem(path: &Path) -> String {
    path.file_stem()
        .map_or("model".into(), |s| s.to_string_lossy().into_owned())
}

/// Asks `url` (`http://HOST:PORT/PATH`) once; `Ok` when it answers 200 within `timeout`. For
/// exec probes and image health checks, where there is no curl.
pub fn probe(url: &str, timeout: Duration) -> Result<(), String> {
    let rest = url.strip_prefix("http://").ok_or_else(|| {
        format!("{url:?} is not an http:// URL (e.g. http://127.0.0.1:8080/v2/health/ready)")
    })?;
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path };
    let addr = authority
        .to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
        .ok_or_else(|| format!("{authority:?} in {url:?} is not HOST:PORT"))?;
    let mut stream = TcpStream::connect_timeout(&addr, timeout)
        .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    let io = |e: std::io::Error| format!("{url}: {e}");
    stream.set_read_timeout(Some(timeout)).map_err(io)?;
    stream.set_write_timeout(Some(timeout)).map_err(io)?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n"
    )
    .map_err(io)?;
    let mut head = [0u8; 64];
    let mut read = 0;
    while read < 12 {
        match stream.read(&mut head[read..]).map_err(io)? {
            0 => break,
            n => read += n,
        }
    }
    let status_line = String::from_utf8_lossy(&head[..read]);
    match status_line.split_whitespace().nth(1) {
        Some("200") => Ok(()),
        Some(status) => Err(format!("{url} answered {status}")),
        None => Err(format!("{url} did not answer HTTP")),
    }
}
