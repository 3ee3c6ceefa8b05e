use anyhow::{Context, Result, bail};
use skiff_pack::image::{ServerBinary, ServerImage, write_server_image};
use skiff_pack::oci::Platform;
use skiff_pack::registry::{PlatformChoice, PushReport};
use skiff_pack::{Reference, media};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct Args {
    /// The model: an ONNX file, an MLflow model folder (an MLmodel file with the onnx
    /// flavour), or a registered MLflow model (models:/NAME/VERSION, models:/NAME@ALIAS, fetched
    /// through --mlflow and checked first)
    model: String,
    /// Where the image goes: oci:DIR[:TAG] (a local layout), oci-archive:FILE[:TAG] (a layout
    /// in one tar file, for devices offline) or docker://HOST/REPO[:TAG] (a registry); a
    /// component or a module may also go to a file (model.wasm)
    #[arg(short, long)]
    output: String,
    /// What to pack the model into: a container image with skiff's server, a WebAssembly
    /// component (wasm32-wasip2) that carries its own engine and runs on any WASI runtime, or
    /// the same as a WASI preview-1 module for runtimes without the component model
    #[arg(long, value_enum, default_value_t = Format::Image)]
    format: Format,
    /// The name the image serves the model as (default: the model file's stem)
    #[arg(long)]
    name: Option<String>,
    /// Build on this base image (docker://HOST/REPO[:TAG] or oci:DIR[:TAG]) instead of an empty
    /// one: skiff's layers go on top, its entrypoint replaces the base's command; with several
    /// platforms, each goes on the base's image for that platform
    #[arg(long, value_name = "IMAGE")]
    base: Option<String>,
    /// The server binary to put in the image (default: the static one installed with skiff);
    /// with --base, e.g. a glibc build with ONNX Runtime for a CUDA base
    #[arg(long, value_name = "PATH")]
    server: Option<PathBuf>,
    /// Platforms to build the image for, comma separated (linux/amd64, linux/arm64); several
    /// make a multi-platform image (an image index) whose platforms share the model layer
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "linux/amd64",
        value_name = "OS/ARCH,..."
    )]
    platform: Vec<String>,
    /// Leave out the SBOM (an SPDX 2.3 document of the server's crates and the model, attached
    /// to the image as a referrer)
    #[arg(long)]
    no_sbom: bool,
    /// Attach build provenance: an in-toto statement (SLSA provenance v1) naming the model, the
    /// server and the base by digest, the skiff version and SOURCE_DATE_EPOCH
    #[arg(long)]
    provenance: bool,
    /// Talk plain HTTP to registries (for a local registry without TLS)
    #[arg(long)]
    insecure: bool,
    /// Components: also compile the component ahead of time for these architectures
    /// (x86_64, aarch64; Linux), so that loading it takes milliseconds instead of seconds. The
    /// code goes beside a component file (model.x86_64.cwasm) or into the artifact as one
    /// layer per architecture; a pull for one platform fetches only its own
    #[arg(long, value_delimiter = ',', value_name = "ARCH,...")]
    precompile: Vec<String>,
    /// Components: carry the ONNX file and parse it in each new instance, instead of the model
    /// loaded at pack time into the component's initial memory (the default, which lets a
    /// fresh instance answer at once)
    #[arg(long)]
    no_preinit: bool,
    /// Print the result as JSON
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    mlflow: super::mlflow_source::MlflowSourceArgs,
}

/// The tag of what is built in the staging layout before it is copied or pushed.
const BUILT: &str = "skiff";

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// An OCI image: a static server, the model, from scratch (or --base)
    Image,
    /// A WebAssembly component exporting skiff:model/predictor
    Component,
    /// A WebAssembly core module (wasm32-wasip1), a command for WASI preview-1 runtimes
    /// (WasmEdge, WAMR, wasmi, Node.js, `wasmtime run`): it reads an Open Inference Protocol
    /// infer request on stdin and writes the answer on stdout (`metadata` as its argument: the
    /// model's metadata); the model is loaded at pack time
    Module,
    /// A CNCF ModelPack artifact: the model alone, as KitOps, modctl and Kubernetes image
    /// volumes read it (served by skiff serve, or skiff-server --model-dir on a mounted volume)
    Modelpack,
}

pub fn run(args: Args) -> Result<()> {
    let destination = Reference::parse(&args.output)?;
    if matches!(args.format, Format::Component | Format::Module) {
        return pack_component(args, destination);
    }
    if !args.precompile.is_empty() {
        bail!(
            "--precompile is for components: an image's server runs the ONNX file natively (drop --precompile, or pack --format component)"
        );
    }
    if args.no_preinit {
        bail!(
            "--no-preinit is for components: an image's server loads the ONNX file once at start (drop --no-preinit, or pack --format component)"
        );
    }
    if let Reference::File(_) = destination {
        if args.format == Format::Modelpack {
            bail!(
                "-o {:?} is neither oci:DIR[:TAG], oci-archive:FILE[:TAG] nor docker://HOST/REPO[:TAG]: a ModelPack artifact goes into a layout, an archive or a registry",
                args.output
            );
        }
        bail!(
            "-o {:?} is neither oci:DIR[:TAG], oci-archive:FILE[:TAG] nor docker://HOST/REPO[:TAG]",
            args.output
        );
    }
    // Refuse to pack what the server could not load.
    let scratch = tempfile::tempdir().context("cannot create a temporary directory")?;
    let (bytes, model, name) = read_model(&args, scratch.path())?;
    if args.format == Format::Modelpack {
        refuse_image_flags(&args, "a ModelPack artifact holds the model alone")?;
        let staging = tempfile::tempdir().context("cannot create a temporary directory")?;
        let mut artifact = skiff_pack::modelpack::ModelPackModel::new(&name, "", &bytes);
        artifact.created = skiff_pack::image::created_from_env()?;
        artifact.labels = artifact_annotations(&model, &name);
        skiff_pack::modelpack::write_modelpack(staging.path(), BUILT, &artifact)?;
        attach_referrers(&args, staging.path(), &artifact.labels, &bytes, &name, &[])?;
        return deliver(&args, staging.path(), destination);
    }
    let platforms = args
        .platform
        .iter()
        .map(|p| Platform::parse(p))
        .collect::<skiff_pack::Result<Vec<_>>>()?;
    if platforms.len() > 1 && args.server.is_some() {
        bail!(
            "--server is one binary for one platform: pass a single --platform with it, or leave it out"
        );
    }
    // The base's image for each platform built, and no more.
    let base_platforms = match &platforms[..] {
        [one] => PlatformChoice::One(one.clone()),
        _ => PlatformChoice::All,
    };
    let paths = match args.server.clone() {
        Some(path) => vec![path],
        None => platforms
            .iter()
            .map(crate::runtime_files::server_binary)
            .collect::<Result<Vec<_>>>()?,
    };
    let image = ServerImage {
        servers: platforms
            .into_iter()
            .zip(&paths)
            .map(|(platform, path)| ServerBinary { platform, path })
            .collect(),
        model: &bytes,
        model_name: &name,
        version: env!("CARGO_PKG_VERSION"),
        labels: labels(&model)?,
    };

    // Built in a staging layout, with the base pulled in beside it, then copied or pushed.
    let staging = tempfile::tempdir().context("cannot create a temporary directory")?;
    write_server_image(staging.path(), BUILT, &image)?;
    let mut opts = crate::progress::registry_options(args.insecure);
    if let Some(base) = &args.base {
        opts.platform = base_platforms;
        let unpacked = tempfile::tempdir().context("cannot create a temporary directory")?;
        match super::unpack_archive(Reference::parse_image(base)?, unpacked.path())? {
            Reference::Registry {
                registry,
                repository,
                tag,
            } => {
                super::block_on(skiff_pack::registry::pull(
                    &registry,
                    &repository,
                    &tag,
                    staging.path(),
                    "base",
                    &opts,
                ))??;
            }
            Reference::Layout { dir, tag } => {
                skiff_pack::Layout::open(staging.path())?.copy_image(
                    &skiff_pack::Layout::open(&dir)?,
                    &tag,
                    "base",
                )?;
            }
            Reference::File(_) | Reference::Archive { .. } => bail!(
                "--base {base:?} is not an image: pass docker://HOST/REPO[:TAG], oci:DIR[:TAG] or oci-archive:FILE[:TAG]"
            ),
        }
        skiff_pack::base::rebase(staging.path(), BUILT, "base", base)?;
    }
    attach_referrers(
        &args,
        staging.path(),
        &image.labels,
        image.model,
        image.model_name,
        &image.servers,
    )?;
    deliver(&args, staging.path(), destination)
}

/// Copies what was built in the staging layout to the layout or registry `destination` names,
/// with its referrers, and reports it.
fn deliver(args: &Args, staging: &Path, destination: Reference) -> Result<()> {
    match destination {
        Reference::Layout { dir, tag } => {
            let manifest = skiff_pack::Layout::create_or_open(&dir)?.copy_image(
                &skiff_pack::Layout::open(staging)?,
                BUILT,
                &tag,
            )?;
            report(
                args.json,
                &format!("oci:{}:{tag}", dir.display()),
                &manifest.digest,
                None,
            )
        }
        Reference::Registry {
            registry,
            repository,
            tag,
        } => push_staged(
            staging,
            &crate::progress::registry_options(args.insecure),
            (&registry, &repository, &tag),
            args.json,
            &args.output,
        ),
        Reference::Archive { file, tag } => {
            let layout = tempfile::tempdir().context("cannot create a temporary directory")?;
            let manifest = skiff_pack::Layout::create_or_open(layout.path())?.copy_image(
                &skiff_pack::Layout::open(staging)?,
                BUILT,
                &tag,
            )?;
            skiff_pack::archive::write(layout.path(), &file)?;
            report(
                args.json,
                &format!("oci-archive:{}:{tag}", file.display()),
                &manifest.digest,
                None,
            )
        }
        Reference::File(_) => unreachable!("rejected above"),
    }
}

/// The component compiled ahead of time for each of `architectures`, as (header, file).
fn precompile(
    component: &[u8],
    architectures: &[String],
) -> Result<Vec<(skiff_component::precompiled::Header, Vec<u8>)>> {
    use skiff_component::precompiled;
    let mut targets: Vec<String> = Vec::new();
    for architecture in architectures {
        let target = precompiled::target_triple(architecture.trim()).map_err(anyhow::Error::msg)?;
        if !targets.contains(&target) {
            targets.push(target);
        }
    }
    let bar = crate::progress::CountBar::new("precompiled targets");
    bar.set_total(targets.len());
    let compiled = targets
        .iter()
        .map(|target| {
            let compiled =
                precompiled::precompile(component, target).map_err(anyhow::Error::msg)?;
            bar.inc();
            Ok(compiled)
        })
        .collect();
    bar.clear();
    compiled
}

/// Refuses the flags that only images take, saying `why` the format at hand has no use for them.
fn refuse_image_flags(args: &Args, why: &str) -> Result<()> {
    let image_only = [
        ("--base", args.base.is_some()),
        ("--server", args.server.is_some()),
        ("--platform", args.platform != ["linux/amd64"]),
    ];
    if let Some((flag, _)) = image_only.iter().find(|(_, given)| *given) {
        bail!("{flag} is for images: {why} (drop {flag}, or pack --format image)");
    }
    Ok(())
}

/// `--format component`: the model plugged into the component engine; `--format module`: the
/// model loaded into the module engine.
fn pack_component(args: Args, destination: Reference) -> Result<()> {
    let module = args.format == Format::Module;
    let what = if module { "a module" } else { "a component" };
    refuse_image_flags(
        &args,
        &format!("{what} runs on any platform with a WASI runtime"),
    )?;
    if args.provenance {
        bail!(
            "--provenance is for images and ModelPack artifacts: {what} carries no referrers yet (drop --provenance)"
        );
    }
    if module && !args.precompile.is_empty() {
        bail!(
            "--precompile is for components: WASI preview-1 runtimes compile or interpret a module themselves (drop --precompile)"
        );
    }
    if module && args.no_preinit {
        bail!(
            "--no-preinit is for components: a module can only carry its model loaded, having no import to get it through (drop --no-preinit)"
        );
    }
    let scratch = tempfile::tempdir().context("cannot create a temporary directory")?;
    let (bytes, model, name) = read_model(&args, scratch.path())?;
    let engine_path = match module {
        true => crate::runtime_files::module_engine()?,
        false => crate::runtime_files::component_engine()?,
    };
    let engine = std::fs::read(&engine_path)
        .with_context(|| format!("cannot read {}", engine_path.display()))?;
    let cache = skiff_component::precompiled::default_cache();
    let component = if module {
        // A command: the model is loaded into its initial state, as it has no weights import.
        skiff_component::preinit::preinitialise_module(&engine, &name, &bytes, cache.as_deref())
            .map_err(anyhow::Error::msg)?
    } else if args.no_preinit {
        skiff_pack::component::compose(&engine, &name, &bytes)?
    } else {
        // The model is loaded into the engine's initial state: the weights need only its name.
        let engine =
            skiff_component::preinit::preinitialise(&engine, &name, &bytes, cache.as_deref())
                .map_err(anyhow::Error::msg)?;
        skiff_pack::component::compose(&engine, &name, &[])?
    };
    let precompiled = precompile(&component, &args.precompile)?;
    let layers: Vec<_> = precompiled
        .iter()
        .map(|(header, file)| skiff_pack::component::Precompiled {
            target: &header.target,
            wasmtime: &header.wasmtime,
            engine: &header.engine,
            file,
        })
        .collect();
    match destination {
        Reference::File(path) => {
            let mut written = Vec::new();
            for (header, file) in &precompiled {
                let beside = skiff_component::precompiled::beside(&path, &header.target);
                skiff_data::write_atomic(&beside, file)
                    .with_context(|| format!("cannot write {}", beside.display()))?;
                written.push(beside);
            }
            // Code an earlier pack left beside this file was made from another component.
            for arch in skiff_component::precompiled::ARCHITECTURES {
                let stale = skiff_component::precompiled::beside(&path, arch);
                if !written.contains(&stale) && stale.is_file() {
                    std::fs::remove_file(&stale)
                        .with_context(|| format!("cannot remove the stale {}", stale.display()))?;
                }
            }
            skiff_data::write_atomic(&path, &component)
                .with_context(|| format!("cannot write {}", path.display()))?;
            let digest = skiff_pack::oci::sha256_digest(&component);
            if args.json {
                return super::print_json(&serde_json::json!({
                    "image": path,
                    "digest": digest,
                    "bytes": component.len(),
                    "precompiled": written,
                }));
            }
            say!(
                "wrote {} ({} bytes, {digest})",
                path.display(),
                component.len()
            )?;
            for (beside, (header, file)) in written.iter().zip(&precompiled) {
                say!(
                    "wrote {} ({} bytes, for {})",
                    beside.display(),
                    file.len(),
                    header.target
                )?;
            }
            Ok(())
        }
        destination => {
            let staging = tempfile::tempdir().context("cannot create a temporary directory")?;
            skiff_pack::component::write_artifact(
                staging.path(),
                BUILT,
                &component,
                &layers,
                artifact_annotations(&model, &name),
            )?;
            deliver(&args, staging.path(), destination)
        }
    }
}

/// Attaches the SBOM (unless --no-sbom) and the provenance (--provenance) to what was built in
/// the staging layout: `model` served as `name` with skiff's `labels`, and each platform's
/// server where it is an image. They go with it to the layout or registry.
fn attach_referrers(
    args: &Args,
    staging: &Path,
    labels: &BTreeMap<String, String>,
    model: &[u8],
    name: &str,
    servers: &[ServerBinary<'_>],
) -> Result<()> {
    let layout = skiff_pack::Layout::open(staging)?;
    let subject = layout.tagged(BUILT)?;
    let created = skiff_pack::image::created_from_env()?;
    let servers = servers
        .iter()
        .map(|s| {
            let bytes = std::fs::read(s.path)
                .with_context(|| format!("cannot read {}", s.path.display()))?;
            Ok((s, bytes))
        })
        .collect::<Result<Vec<_>>>()?;
    if !args.no_sbom {
        let sbom = skiff_pack::sbom::spdx(&sbom_input(
            args, &subject, &created, labels, model, name, &servers,
        )?)?;
        let layer = skiff_pack::Descriptor::for_bytes(media::SPDX_JSON, &sbom);
        layout.attach(&skiff_pack::referrers::Artifact::new(
            media::SPDX_JSON,
            &subject,
            vec![(layer, sbom)],
            BTreeMap::from([(media::ANNOTATION_CREATED.to_string(), created.clone())]),
        ))?;
    }
    if args.provenance {
        use skiff_pack::provenance::{Input, Provenance};
        let model_uri = args
            .model
            .starts_with("models:/")
            .then(|| args.model.clone());
        let mut inputs = vec![Input::of_bytes("model", model_uri, model)];
        for (server, bytes) in &servers {
            inputs.push(Input::of_bytes(
                &format!("server {}", server.platform),
                None,
                bytes,
            ));
        }
        if let Some(base) = &args.base {
            inputs.push(Input {
                name: "base".into(),
                uri: Some(base.clone()),
                digest: layout.tagged("base")?.digest,
            });
        }
        let provenance = Provenance {
            subject: (args.output.clone(), subject.digest.clone()),
            parameters: BTreeMap::from([
                ("name".into(), name.into()),
                (
                    "format".into(),
                    clap::ValueEnum::to_possible_value(&args.format)
                        .map(|v| v.get_name().to_string())
                        .into(),
                ),
                (
                    "platforms".into(),
                    servers
                        .iter()
                        .map(|(s, _)| s.platform.to_string())
                        .collect::<Vec<_>>()
                        .into(),
                ),
            ]),
            inputs,
            skiff_version: env!("CARGO_PKG_VERSION").into(),
            source_date_epoch: skiff_pack::provenance::source_date_epoch()?,
        };
        layout.attach(&provenance.artifact(&subject, &created)?)?;
    }
    Ok(())
}

/// What the SBOM describes: the image (by the destination's repository and tag), the model
/// with skiff's labels, and each platform's server with the crates linked into it (the list
/// images/build-server.sh writes beside the binary).
fn sbom_input(
    args: &Args,
    subject: &skiff_pack::Descriptor,
    created: &str,
    labels: &BTreeMap<String, String>,
    model: &[u8],
    name: &str,
    servers: &[(&ServerBinary<'_>, Vec<u8>)],
) -> Result<skiff_pack::sbom::SbomInput> {
    use skiff_pack::oci::sha256_digest;
    use skiff_pack::sbom::{CRATES_FILE, SbomInput, SbomModel, SbomServer, read_crates};
    let (repository_url, tag) = match Reference::parse(&args.output)? {
        Reference::Registry {
            registry,
            repository,
            tag,
        } => (Some(format!("{registry}/{repository}")), Some(tag)),
        Reference::Layout { tag, .. } | Reference::Archive { tag, .. } => (None, Some(tag)),
        Reference::File(_) => (None, None),
    };
    let servers = servers
        .iter()
        .map(|(server, bytes)| {
            let list = server.path.with_file_name(CRATES_FILE);
            let crates = if list.is_file() {
                read_crates(&list)?
            } else {
                eprintln!(
                    "skiff: warning: no {CRATES_FILE} beside {}: the SBOM lists the server without its crates (build it with images/build-server.sh)",
                    server.path.display()
                );
                Vec::new()
            };
            Ok(SbomServer {
                platform: server.platform.clone(),
                digest: sha256_digest(bytes),
                size: bytes.len() as u64,
                crates,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(SbomInput {
        name: name.to_string(),
        digest: subject.digest.clone(),
        repository_url,
        tag,
        skiff_version: env!("CARGO_PKG_VERSION").into(),
        created: created.to_string(),
        model: SbomModel {
            path: match args.format {
                Format::Modelpack => skiff_pack::modelpack::MODEL_FILE.into(),
                _ => media::MODEL_PATH.into(),
            },
            digest: sha256_digest(model),
            size: model.len() as u64,
            labels: labels.clone(),
        },
        servers,
    })
}

/// Pushes what was built in the staging layout to `destination` (registry, repository, tag)
/// and reports it as `output`.
fn push_staged(
    staging: &std::path::Path,
    opts: &skiff_pack::registry::PushOptions,
    destination: (&str, &str, &str),
    json: bool,
    output: &str,
) -> Result<()> {
    let (registry, repository, tag) = destination;
    let pushed = super::block_on(skiff_pack::registry::push(
        staging, BUILT, registry, repository, tag, opts,
    ))??;
    report(json, output, &pushed.manifest_digest, Some(&pushed))
}

/// A component artifact's annotations: what an image's labels say, on the manifest.
fn artifact_annotations(model: &skiff_runtime::Model, name: &str) -> BTreeMap<String, String> {
    let mut annotations = labels(model).unwrap_or_default();
    annotations.insert(media::SKIFF_MODEL_NAME.into(), name.into());
    annotations.insert(media::ANNOTATION_TITLE.into(), name.into());
    annotations.insert(
        media::ANNOTATION_VERSION.into(),
        env!("CARGO_PKG_VERSION").into(),
    );
    annotations
}

/// The model `args` names, its bytes checked by loading them, and the name it is served as:
/// --name, else the registered MLflow model's or the folder's name, else the file's stem.
/// A registered model is downloaded into `scratch`.
fn read_model(args: &Args, scratch: &Path) -> Result<(Vec<u8>, skiff_runtime::Model, String)> {
    let (path, found_name) = match super::mlflow_source::find(&args.model, &args.mlflow, scratch)? {
        Some(found) => (
            super::mlflow_source::model_file(&found.dir)?,
            Some(found.name),
        ),
        None => (PathBuf::from(&args.model), None),
    };
    let bytes = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let model = skiff_runtime::Model::from_bytes(&path.display().to_string(), &bytes)?;
    let name = match (&args.name, found_name) {
        (Some(n), _) => n.clone(),
        (None, Some(found)) => found,
        (None, None) => path
            .file_stem()
            .map_or("model".into(), |s| s.to_string_lossy().into_owned()),
    };
    Ok((bytes, model, name))
}

/// Labels that say where skiff comes from and what the model is: its task, estimator, inputs,
/// outputs and training metrics.
fn labels(model: &skiff_runtime::Model) -> Result<BTreeMap<String, String>> {
    let mut labels = BTreeMap::from([
        (
            media::ANNOTATION_SOURCE.to_string(),
            env!("CARGO_PKG_REPOSITORY").to_string(),
        ),
        (
            media::SKIFF_MODEL_INPUTS.to_string(),
            serde_json::to_string(model.inputs())?,
        ),
        (
            media::SKIFF_MODEL_OUTPUTS.to_string(),
            serde_json::to_string(model.outputs())?,
        ),
    ]);
    // set by build.rs from the git checkout skiff was built in
    if let Some(revision) = option_env!("SKIFF_GIT_REVISION") {
        labels.insert(media::ANNOTATION_REVISION.to_string(), revision.to_string());
    }
    let metadata = model.metadata();
    for (key, label) in [
        (skiff_onnx::metadata::TASK, media::SKIFF_MODEL_TASK),
        (
            skiff_onnx::metadata::ALGORITHM,
            media::SKIFF_MODEL_ESTIMATOR,
        ),
    ] {
        if let Some(value) = metadata.get(key) {
            labels.insert(label.to_string(), value.clone());
        }
    }
    // {"name": ..., "value": ...}; a model from another tool may hold anything there, left out
    let metric = metadata
        .get(skiff_onnx::metadata::TRAINING_METRIC)
        .and_then(|v| serde_json::from_str::<serde_json::Value>(v).ok());
    if let Some(metric) = metric
        && let (Some(name), Some(value)) = (metric["name"].as_str(), metric.get("value"))
    {
        let metrics = serde_json::json!({ name: value });
        labels.insert(media::SKIFF_MODEL_METRICS.to_string(), metrics.to_string());
    }
    Ok(labels)
}

pub fn report(json: bool, image: &str, digest: &str, pushed: Option<&PushReport>) -> Result<()> {
    if json {
        let mut out =
            serde_json::json!({ "image": image, "digest": digest, "bytes_uploaded": null });
        if let Some(p) = pushed {
            out["bytes_uploaded"] = p.bytes_uploaded.into();
            out["blobs_skipped"] = p.blobs_skipped.into();
            out["blobs_mounted"] = p.blobs_mounted.into();
            out["referrers"] = p.referrers.into();
        }
        return super::print_json(&out);
    }
    match pushed {
        Some(p) => say!(
            "pushed {image}@{digest} ({} bytes uploaded; {} blobs already there, {} mounted; {} referrers)",
            p.bytes_uploaded,
            p.blobs_skipped,
            p.blobs_mounted,
            p.referrers
        )?,
        None => say!("wrote {image}@{digest}")?,
    }
    Ok(())
}
