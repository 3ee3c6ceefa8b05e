use anyhow::{Context, Result};
use skiff_pack::Reference;
use skiff_runtime::Model;
use std::net::SocketAddr;

#[derive(clap::Args)]
pub struct Args {
    /// The model: an ONNX file, or an image in a local layout (oci:DIR:TAG)
    model: String,
    /// The name clients use in /v2/models/NAME (default: the file's stem or the image's model name)
    #[arg(long)]
    name: Option<String>,
    /// Address to listen on
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
}

pub fn run(args: Args) -> Result<()> {
    let (model, default_name) = match Reference::parse(&args.model)? {
        Reference::File(path) => {
            let name = path
                .file_stem()
                .map_or("model".into(), |s| s.to_string_lossy().into_owned());
            (Model::from_path(&path)?, name)
        }
        Reference::Layout { dir, tag } => {
            let bytes = skiff_pack::image::read_model(&dir, &tag)?;
            let (_, manifest) = skiff_pack::Layout::open(&dir)?.resolve(&tag)?;
            let name = manifest
                .annotations
                .and_then(|a| a.get(skiff_pack::media::SKIFF_MODEL_NAME).cloned())
                .unwrap_or_else(|| "model".into());
            (Model::from_bytes(&args.model, &bytes)?, name)
        }
        Reference::Registry { .. } => {
            anyhow::bail!(
                "serving straight from a registry is not supported yet: skiff pull it into oci:DIR:TAG first"
            )
        }
    };
    let name = args.name.unwrap_or(default_name);
    super::block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.addr)
            .await
            .with_context(|| {
                format!(
                    "cannot listen on {} (is the port in use? pick another with --addr)",
                    args.addr
                )
            })?;
        eprintln!(
            "serving model {name:?} on http://{}/v2/models/{name}",
            listener.local_addr()?
        );
        skiff_host::serve(
            listener,
            skiff_host::Repository::single(&name, model),
            shutdown_signal(),
        )
        .await?;
        Ok(())
    })?
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
