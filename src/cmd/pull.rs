use anyhow::{Result, bail};
use skiff_pack::Reference;
use skiff_pack::registry::PushOptions;

#[derive(clap::Args)]
pub struct Args {
    /// The image to pull: docker://HOST/REPO[:TAG|@DIGEST]
    source: String,
    /// Where to put it: oci:DIR[:TAG]
    #[arg(short, long)]
    output: String,
    /// Talk plain HTTP to the registry (for a local registry without TLS)
    #[arg(long)]
    insecure: bool,
}

pub fn run(args: Args) -> Result<()> {
    let Reference::Registry {
        registry,
        repository,
        tag,
    } = Reference::parse_destination(&args.source)?
    else {
        bail!(
            "pull takes a registry image, docker://HOST/REPO[:TAG] (got {:?})",
            args.source
        );
    };
    let Reference::Layout {
        dir,
        tag: local_tag,
    } = Reference::parse(&args.output)?
    else {
        bail!(
            "-o must be a local image layout, oci:DIR[:TAG] (got {:?})",
            args.output
        );
    };
    let opts = PushOptions {
        insecure: args.insecure,
        ..Default::default()
    };
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
