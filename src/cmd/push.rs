use anyhow::{Context, Result, bail};
use skiff_pack::Reference;

#[derive(clap::Args)]
pub struct Args {
    /// The image to push: oci:DIR[:TAG] or oci-archive:FILE[:TAG]
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
    let unpacked = tempfile::tempdir().context("cannot create a temporary directory")?;
    let Reference::Layout { dir, tag } =
        super::unpack_archive(Reference::parse(&args.source)?, unpacked.path())?
    else {
        bail!(
            "push takes a local image layout or archive, oci:DIR[:TAG] or oci-archive:FILE[:TAG], as its source (got {:?})",
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
