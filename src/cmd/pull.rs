use anyhow::{Context, Result, bail};
use skiff_pack::Reference;
use skiff_pack::registry::PlatformChoice;

#[derive(clap::Args)]
pub struct Args {
    /// The image to pull: docker://HOST/REPO[:TAG|@DIGEST]
    source: String,
    /// Where to put it: a folder (an OCI image layout, tagged as the source), oci:DIR[:TAG], or
    /// oci-archive:FILE[:TAG] (the layout in one tar file)
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
    // A plain folder is a layout, tagged as the source is; an archive is written from one.
    let staging = tempfile::tempdir().context("cannot create a temporary directory")?;
    let mut archive = None;
    let (dir, local_tag) = match Reference::parse(&args.output)? {
        Reference::Layout { dir, tag } => (dir, tag),
        Reference::Archive { file, tag } => {
            archive = Some(file);
            (staging.path().join("layout"), tag)
        }
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
    if let Some(file) = archive {
        skiff_pack::archive::write(&dir, &file)?;
        say!(
            "pulled {} into oci-archive:{}:{local_tag}",
            manifest.digest,
            file.display()
        )?;
        return Ok(());
    }
    say!(
        "pulled {} into oci:{}:{local_tag}",
        manifest.digest,
        dir.display()
    )?;
    Ok(())
}
