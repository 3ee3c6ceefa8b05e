use anyhow::{Context, Result, bail};
use skiff_host::{Options, Repository};
use skiff_pack::Reference;
use skiff_runtime::Model;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

#[derive(clap::Args)]
pub struct Args {
    /// Models to serve: ONNX files or WebAssembly components (served by file stem), model
    /// repositories (DIR/<name>/<version>/model.onnx), images in local layouts (oci:DIR:TAG),
    /// images in a registry (docker://HOST/REPO:TAG, pulled and verified first), MLflow model
    /// folders (an MLmodel file with the onnx flavour, served by folder name), or registered
    /// MLflow models (models:/NAME/VERSION, models:/NAME@ALIAS: fetched through --mlflow and
    /// checked first, served as NAME)
    #[arg(required = true)]
    models: Vec<String>,
    /// Talk plain HTTP to registries (for a local registry without TLS)
    #[arg(long)]
    insecure: bool,
    /// The name clients use in /v2/models/NAME, when serving one model
    #[arg(long)]
    name: Option<String>,
    /// Address to listen on
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// Largest request body in bytes (413 beyond it)
    #[arg(long, default_value_t = Options::default().max_body_bytes)]
    max_body_bytes: usize,
    /// Most tensor elements in one request (413 beyond it)
    #[arg(long, default_value_t = Options::default().max_elements)]
    max_elements: usize,
    /// Inference requests served at once (503 with Retry-After beyond it)
    #[arg(long, default_value_t = Options::default().max_concurrency)]
    max_concurrency: usize,
    /// Longest time one inference may take, in milliseconds (504 beyond it; no limit by default)
    #[arg(long)]
    timeout_ms: Option<u64>,
    /// Batch concurrent requests to one model, waiting at most this many microseconds for
    /// more rows after the first request (dynamic batching; off by default)
    #[arg(long, value_name = "MICROSECONDS")]
    batch_delay_us: Option<u64>,
    /// With --batch-delay-us: run a batch as soon as it has this many rows
    #[arg(long, default_value_t = 64)]
    batch_max_rows: usize,
    /// Names of the metrics at /metrics: skiff (skiff_*, OpenMetrics) or triton (Triton's
    /// nv_inference_* counters, for dashboards built for Triton)
    #[arg(long, default_value = "skiff", value_parser = ["skiff", "triton"])]
    metrics_names: String,
    /// Log level: error, warn, info, or debug for a line per request (RUST_LOG overrides)
    #[arg(long, default_value = "info")]
    log_level: String,
    /// Seconds readiness answers 503 before shutdown stops accepting requests (SIGTERM, Ctrl-C)
    #[arg(long, default_value_t = Options::default().drain.as_secs_f64())]
    drain_seconds: f64,
    #[command(flatten)]
    backend: super::BackendArgs,
    #[command(flatten)]
    mlflow: super::mlflow_source::MlflowSourceArgs,
}

pub fn run(args: Args) -> Result<()> {
    init_logs(&args.log_level)?;
    if args.name.is_some() && args.models.len() > 1 {
        bail!(
            "--name names a single model; serving {} sources, each keeps its own name",
            args.models.len()
        );
    }
    // Images in registries are pulled once, verified, into a folder that lives as long as the
    // server; they are then served like local layouts (and reloaded from there on SIGHUP).
    let pulled = tempfile::tempdir().context("cannot create a folder for pulled images")?;
    let mut sources = Vec::new();
    for (i, source) in args.models.iter().enumerate() {
        let scratch = pulled.path().join(i.to_string());
        if let Some(found) = super::mlflow_source::find(source, &args.mlflow, &scratch)? {
            sources.push((found.dir.display().to_string(), Some(found.name)));
            continue;
        }
        sources.push(match Reference::parse(source)? {
            Reference::Registry {
                registry,
                repository,
                tag,
            } => {
                let opts = crate::progress::registry_options(args.insecure);
                let manifest = super::block_on(skiff_pack::registry::pull(
                    &registry,
                    &repository,
                    &tag,
                    &scratch,
                    "served",
                    &opts,
                ))??;
                eprintln!("pulled {source} ({})", manifest.digest);
                (format!("oci:{}:served", scratch.display()), None)
            }
            _ => (source.clone(), None),
        });
    }
    let name = args.name.clone();
    let backend = args.backend.clone();
    let load_all = move || -> Result<Repository> {
        let mut repo = Repository::default();
        for (source, default_name) in &sources {
            let name = name.as_deref().or(default_name.as_deref());
            repo.merge(load(source, name, &backend)?)?;
        }
        Ok(repo)
    };
    if !(args.drain_seconds.is_finite() && args.drain_seconds >= 0.0) {
        bail!(
            "--drain-seconds {} must be a number of seconds, 0 or more",
            args.drain_seconds
        );
    }
    if args.timeout_ms == Some(0) {
        bail!("--timeout-ms must be at least 1; leave it out for no limit");
    }
    let options = Options {
        max_body_bytes: args.max_body_bytes,
        max_elements: args.max_elements,
        max_concurrency: args.max_concurrency,
        timeout: args.timeout_ms.map(Duration::from_millis),
        batching: args.batch_delay_us.map(|us| skiff_host::Batching {
            max_rows: args.batch_max_rows.max(1),
            max_delay: Duration::from_micros(us),
        }),
        drain: Duration::from_secs_f64(args.drain_seconds),
        metrics_names: args
            .metrics_names
            .parse()
            .map_err(|e: String| anyhow::anyhow!(e))?,
    };
    super::block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.addr)
            .await
            .with_context(|| {
                format!(
                    "cannot listen on {} (is the port in use? pick another with --addr)",
                    args.addr
                )
            })?;
        let addr = listener.local_addr()?;
        // The server answers liveness while the models load (readiness once they have).
        let reload: skiff_host::Loader = Arc::new(move || {
            let repo = load_all()?;
            for (name, versions, backend) in repo.describe() {
                eprintln!(
                    "serving model {name:?} (versions {versions:?}, on {backend}) at http://{addr}/v2/models/{name}"
                );
            }
            Ok(repo)
        });
        skiff_host::serve_with_reload(listener, reload, options, skiff_host::shutdown_signal())
            .await?;
        drop(pulled);
        Ok(())
    })?
}

/// Logs to stderr at `level` for skiff's own crates (dependencies only warn), unless RUST_LOG
/// says otherwise.
fn init_logs(level: &str) -> Result<()> {
    use std::io::IsTerminal;
    let directives = match std::env::var("RUST_LOG") {
        Ok(directives) => directives,
        Err(_) => match level {
            "error" | "warn" => level.to_string(),
            "info" | "debug" | "trace" => {
                format!("warn,skiff={level},skiff_host={level},skiff_runtime={level}")
            }
            other => bail!("--log-level {other:?} is not one of error, warn, info, debug, trace"),
        },
    };
    let filter = tracing_subscriber::EnvFilter::try_new(&directives)
        .map_err(|e| anyhow::anyhow!("invalid RUST_LOG {directives:?}: {e}"))?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    Ok(())
}

/// One source as a repository: a file, a repository directory, or an image layout.
fn load(source: &str, name: Option<&str>, backend: &super::BackendArgs) -> Result<Repository> {
    let single =
        |default: String, model: Model| Repository::single(name.unwrap_or(&default), model);
    Ok(match Reference::parse(source)? {
        Reference::File(path) if path.join(skiff_mlops::mlflow::model::MLMODEL).is_file() => {
            let file = super::mlflow_source::model_file(&path)?;
            single(stem(&path), backend.load(&file)?)
        }
        Reference::File(path) if path.is_dir() => {
            if name.is_some() {
                bail!(
                    "--name does not apply to a model repository ({source}): its folders name the models"
                );
            }
            Repository::load_dir(&path, &backend.options())?
        }
        Reference::File(path) => single(stem(&path), backend.load(&path)?),
        Reference::Layout { dir, tag } => {
            let bytes = skiff_pack::image::read_model(&dir, &tag)?;
            let (_, manifest) = skiff_pack::Layout::open(&dir)?.resolve(&tag)?;
            let image_name = manifest
                .annotations
                .and_then(|a| a.get(skiff_pack::media::SKIFF_MODEL_NAME).cloned())
                .unwrap_or_else(|| "model".into());
            single(image_name, backend.load_bytes(source, &bytes)?)
        }
        Reference::Registry { .. } => bail!("{source} is in a registry: pull it before loading it"),
    })
}

fn stem(path: &Path) -> String {
    path.file_stem()
        .map_or("model".into(), |s| s.to_string_lossy().into_owned())
}
