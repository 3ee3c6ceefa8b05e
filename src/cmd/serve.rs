use anyhow::{Context, Result, bail};
use skiff_host::cli::{ServeArgs, stem};
use skiff_host::{Source, Sources};
use skiff_pack::Reference;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::sync::Arc;

#[derive(clap::Args)]
pub struct Args {
    /// Models to serve: ONNX files or WebAssembly components (served by file stem), model
    /// repositories (DIR/<name>/<version>/model.onnx), images in local layouts (oci:DIR:TAG)
    /// or archives (oci-archive:FILE.tar[:TAG]),
    /// images in a registry (docker://HOST/REPO:TAG, pulled and verified first), MLflow model
    /// folders (an MLmodel file with the onnx flavour, served by folder name), or registered
    /// MLflow models (models:/NAME/VERSION, models:/NAME@ALIAS: fetched through --mlflow and
    /// checked first, served as NAME)
    #[arg(required_unless_present = "model_dir")]
    models: Vec<String>,
    /// Talk plain HTTP to registries (for a local registry without TLS)
    #[arg(long, env = "SKIFF_INSECURE")]
    insecure: bool,
    /// Serve only images signed with this public key (cosign.pub): an image in a registry is
    /// checked, then pulled by the digest its signature names; unsigned, tampered or otherwise
    /// signed images are refused
    #[arg(long, env = "SKIFF_VERIFY_KEY", value_name = "PATH")]
    verify_key: Option<std::path::PathBuf>,
    /// Also answer POST /v2/models/NAME/explain (and KServe's POST /v1/models/NAME:explain)
    /// with SHAP values measured from these rows: CSV with a header row, like the training data
    #[arg(long, value_name = "TRAIN.csv")]
    explain_background: Option<std::path::PathBuf>,
    #[command(flatten)]
    serve: ServeArgs,
    #[command(flatten)]
    backend: super::BackendArgs,
    #[command(flatten)]
    mlflow: super::mlflow_source::MlflowSourceArgs,
}

pub fn run(mut args: Args) -> Result<()> {
    let mut options = args.serve.options();
    if let Some(path) = &args.explain_background {
        // Read once; each model picks its columns from it when first explained.
        let table = skiff_data::Table::from_path(path)?;
        let path = path.clone();
        args.backend.explain = true;
        options.explain_background = Some(skiff_host::Background(Arc::new(move |model| {
            super::predict::input_from_table(model, &path, &table, &[])
                .map(|rows| rows.tensors)
                .map_err(|e| format!("{e:#}"))
        })));
    }
    args.serve
        .init_logs(&["skiff", "skiff_host", "skiff_runtime", "skiff_component"])
        .map_err(anyhow::Error::msg)?;
    let name = args.serve.name.as_deref();
    let count = args.models.len() + usize::from(args.serve.model_dir.is_some());
    if name.is_some() && count > 1 {
        bail!("--name names a single model; serving {count} sources, each keeps its own name");
    }
    // Images in registries are pulled once, verified, into a folder that lives as long as the
    // server; they are then served like local layouts (and reloaded from there on SIGHUP).
    let pulled = tempfile::tempdir().context("cannot create a folder for pulled images")?;
    let verify_key = match &args.verify_key {
        Some(path) => {
            if args.serve.model_dir.is_some() {
                bail!(
                    "--verify-key checks signed images (docker://, oci:); a --model-dir folder carries no signature"
                );
            }
            Some(super::sign::verifying_key(path)?)
        }
        None => None,
    };
    let mut sources = Vec::new();
    for (i, source) in args.models.iter().enumerate() {
        let scratch = pulled.path().join(i.to_string());
        let mut verified_digest = None;
        if let Some(key) = &verify_key {
            if !matches!(
                Reference::parse(source)?,
                Reference::Registry { .. } | Reference::Layout { .. }
            ) {
                bail!(
                    "--verify-key checks signed images (docker://HOST/REPO:TAG, oci:DIR:TAG); {source} is not one"
                );
            }
            let verified = super::sign::verify_image(source, key, args.insecure)?;
            tracing::info!(
                "verified the signature of {source} ({}, {})",
                verified.digest,
                verified.found_in
            );
            verified_digest = Some(verified.digest);
        }
        if let Some(found) = super::mlflow_source::find(source, &args.mlflow, &scratch)? {
            let file = super::mlflow_source::model_file(&found.dir)?;
            sources.push(model_source(
                name.unwrap_or(&found.name),
                &file,
                &args.backend,
            ));
            continue;
        }
        let source = match Reference::parse(source)? {
            Reference::Registry {
                registry,
                repository,
                tag,
            } => {
                let opts = crate::progress::registry_options(args.insecure);
                // What was verified is what is served: pulled by its digest, not the tag.
                let reference = verified_digest.as_deref().unwrap_or(&tag);
                let manifest = super::block_on(skiff_pack::registry::pull(
                    &registry,
                    &repository,
                    reference,
                    &scratch,
                    "served",
                    &opts,
                ))??;
                tracing::info!("pulled {source} ({})", manifest.digest);
                format!("oci:{}:served", scratch.display())
            }
            archive @ Reference::Archive { .. } => {
                super::unpack_archive(archive, &scratch)?.to_string()
            }
            _ => source.clone(),
        };
        sources.push(self::source(&source, name, &args.backend)?);
    }
    sources.extend(
        args.serve
            .model_dir_source(&args.backend.options())
            .map_err(|e| anyhow::anyhow!("{e}"))?,
    );
    let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let addr = args.serve.http_addr(loopback, DEFAULT_PORT);
    let grpc_addr = args.serve.grpc_addr(loopback, None);
    super::block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| {
            format!("cannot listen on {addr} (is the port in use? pick another with --addr)")
        })?;
        let addr = listener.local_addr()?;
        tracing::debug!("listening on http://{addr}; loading the models");
        let mut listeners = skiff_host::Listeners::new(listener);
        if let Some(grpc_addr) = grpc_addr {
            let grpc = tokio::net::TcpListener::bind(grpc_addr)
                .await
                .with_context(|| {
                    format!(
                        "cannot listen for gRPC on {grpc_addr} (is the port in use? pick another with --grpc-addr)"
                    )
                })?;
            tracing::debug!("gRPC listening on {}", grpc.local_addr()?);
            listeners = listeners.with_grpc(grpc);
        }
        // The server answers liveness while the models load (readiness once they have).
        skiff_host::serve_with_reload(
            listeners,
            Sources::new(sources),
            options,
            skiff_host::shutdown_signal(),
        )
        .await?;
        drop(pulled);
        Ok(())
    })?
}

/// The port `skiff serve` listens on without --addr or --http-port.
const DEFAULT_PORT: u16 = 8080;

/// A model file (ONNX or a component) served as `name`.
fn model_source(name: &str, file: &Path, backend: &super::BackendArgs) -> Source {
    let (file, backend) = (file.to_path_buf(), backend.clone());
    Source::Model {
        name: name.to_string(),
        load: Arc::new(move || backend.load(&file).map_err(Into::into)),
    }
}

/// One source given on the command line: a file, an MLflow model folder, a repository
/// directory, or an image layout.
fn source(source: &str, name: Option<&str>, backend: &super::BackendArgs) -> Result<Source> {
    Ok(match Reference::parse(source)? {
        Reference::File(path) if path.join(skiff_mlops::mlflow::model::MLMODEL).is_file() => {
            let file = super::mlflow_source::model_file(&path)?;
            model_source(name.unwrap_or(&stem(&path)), &file, backend)
        }
        Reference::File(path) if path.is_dir() => {
            if name.is_some() {
                bail!(
                    "--name does not apply to a model repository ({source}): its folders name the models"
                );
            }
            Source::Dir {
                dir: path,
                options: backend.options(),
            }
        }
        Reference::File(path) => {
            if !path.exists() {
                bail!("{} does not exist", path.display());
            }
            model_source(name.unwrap_or(&stem(&path)), &path, backend)
        }
        Reference::Layout { dir, tag } => {
            let (_, manifest) = skiff_pack::Layout::open(&dir)?.resolve(&tag)?;
            let image_name = manifest
                .annotations
                .and_then(|a| a.get(skiff_pack::media::SKIFF_MODEL_NAME).cloned())
                .unwrap_or_else(|| "model".into());
            let (source, backend) = (source.to_string(), backend.clone());
            Source::Model {
                name: name.unwrap_or(&image_name).to_string(),
                load: Arc::new(move || {
                    let bytes = skiff_pack::image::read_model(&dir, &tag)?;
                    let offered = skiff_pack::component::read_precompiled(
                        &dir,
                        &tag,
                        std::env::consts::ARCH,
                    )?
                    .into_iter()
                    .map(|(origin, path)| skiff_component::precompiled::Offered { origin, path })
                    .collect::<Vec<_>>();
                    Ok(backend.load_bytes(&source, &bytes, &offered)?)
                }),
            }
        }
        Reference::Registry { .. } => bail!("{source} is in a registry: pull it before loading it"),
        Reference::Archive { .. } => bail!("{source} is an archive: unpack it before loading it"),
    })
}
