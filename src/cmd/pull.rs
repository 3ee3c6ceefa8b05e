use anyhow::{Result, bail};
use skiff_pack::Reference;
use skiff_pack::registry::PlatformChoice;

#[derive(clap::Args)]
pub struct Args {
    /// The image to pull: docker://HOST/REPO[:TAG|@DIGEST]
    source: String,
    /// Where to put it: a folder (an OCI image layout, tagged as the source) or oci:DIR[:TAG]
    #[arg(short, long)]
    output: String,
    /// Which image of a multi-platform index to pull: os/architecture[/variant], or `all` to
    /// keep the index and every platform's image (default: this machine's platform)
    #[arg(long, value_name = "PLATFORM")]
    platform: Option<String>,
    /// Talk plain HTTP to the registry (for a local registry without TLS)
    #[arg(long)]
    insecure: bool,
}

pub fn run(args: Args) -> Result<()> {
    let Reference::Registry {
        registry,
        repository,
        tag,
    } = Reference::parse_image(&args.source)?
    else {
        bail!(
            "pull takes a registry image, docker://HOST/REPO[:TAG|@DIGEST] (got {:?})",
            args.source
        );
    };
    // A plain folder is a layout, tagged as the source is.
    let (dir, local_tag) = match Reference::parse(&args.output)? {
        Reference::Layout { dir, tag } => (dir, tag),
        Reference::File(dir) if !tag.starts_with("sha256:") => (dir, tag.clone()),
        Reference::File(dir) => (dir, "latest".to_string()),
        Reference::Registry { .. } => bail!(
            "-o must be a local folder or image layout, DIR or oci:DIR[:TAG] (got {:?}); to copy between registries, pull then push",
            args.output
        ),
    };
    let mut opts = crate::progress::registry_options(args.insecure);
    if let Some(platform) = &args.platform {
        opts.platform = PlatformChoice::parse(platform)?;
    }
    let manifest = super::block_on(skiff_pack::registry::pull(
        &registry,
        &repository,
        &tag,
        &dir,
        &local_tag,
        &opts,
    ))??;
    say!(
        "pulled {} into oci:{}:{local_tag}",
        manifest.digest,
        dir.display()
    )?;
    Ok(())
}
