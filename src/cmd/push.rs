use anyhow::{Result, bail};
use skiff_pack::Reference;

#[derive(clap::Args)]
pub struct Args {
    /// The image to push: oci:DIR[:TAG]
    source: String,
    /// Where to: [docker://]HOST/REPO[:TAG]
    destination: String,
    /// Talk plain HTTP to the registry (for a local registry without TLS)
    #[arg(long)]
    insecure: bool,
    /// Print the result as JSON
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> Result<()> {
    let Reference::Layout { dir, tag } = Reference::parse(&args.source)? else {
        bail!(
            "push takes a local image layout, oci:DIR[:TAG], as its source (got {:?})",
            args.source
        );
    };
    let Reference::Registry {
        registry,
        repository,
        tag: dest_tag,
    } = Reference::parse_destination(&args.destination)?
    else {
        bail!(
            "push's destination must be a registry, [docker://]HOST/REPO[:TAG] (got {:?})",
            args.destination
        );
    };
    let opts = crate::progress::registry_options(args.insecure);
    let pushed = super::block_on(skiff_pack::registry::push(
        &dir,
        &tag,
        &registry,
        &repository,
        &dest_tag,
        &opts,
    ))??;
    let image = format!("{registry}/{repository}:{dest_tag}");
    super::pack::report(args.json, &image, &pushed.manifest_digest, Some(&pushed))
}
