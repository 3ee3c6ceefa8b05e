use anyhow::{Context, Result, bail};
use skiff_pack::Reference;
use skiff_pack::inspect::Inspection;

#[derive(clap::Args)]
pub struct Args {
    /// The image: docker://HOST/REPO[:TAG|@sha256:...] (or HOST/REPO:TAG), or oci:DIR[:TAG]
    image: String,
    /// Talk plain HTTP to the registry (for a local registry without TLS)
    #[arg(long)]
    insecure: bool,
    /// Print the result as JSON
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> Result<()> {
    let unpacked = tempfile::tempdir().context("cannot create a temporary directory")?;
    let reference = Reference::parse_image(&args.image)?;
    let archive = matches!(reference, Reference::Archive { .. }).then(|| reference.to_string());
    let mut inspection = match super::unpack_archive(reference, unpacked.path())? {
        Reference::Layout { dir, tag } => Inspection::from_layout(&dir, &tag)?,
        Reference::Registry {
            registry,
            repository,
            tag,
        } => {
            let opts = crate::progress::registry_options(args.insecure);
            super::block_on(skiff_pack::registry::inspect(
                &registry,
                &repository,
                &tag,
                &opts,
            ))??
        }
        Reference::File(_) | Reference::Archive { .. } => bail!(
            "{:?} is not an image: pass docker://HOST/REPO[:TAG], oci:DIR[:TAG] or oci-archive:FILE[:TAG]",
            args.image
        ),
    };
    if let Some(archive) = archive {
        inspection.reference = archive;
    }
    if args.json {
        return super::print_json(&serde_json::to_value(&inspection)?);
    }
    say!("{}", inspection.reference)?;
    say!(
        "digest     {} ({})",
        inspection.digest,
        inspection.media_type
    )?;
    if inspection.platforms.is_empty() {
        say!("platforms  none (an artifact)")?;
    } else {
        say!("platforms  {}", inspection.platforms.join(", "))?;
    }
    if inspection.manifest_digest != inspection.digest {
        say!(
            "manifest   {} ({})",
            inspection.manifest_digest,
            inspection.platform
        )?;
    }
    if let Some(created) = &inspection.created {
        say!("created    {created}")?;
    }
    for (title, map) in [
        ("labels", &inspection.labels),
        ("annotations", &inspection.annotations),
    ] {
        say!("{title}:")?;
        for (key, value) in map {
            say!("  {key}={value}")?;
        }
    }
    say!("layers:")?;
    for layer in &inspection.layers {
        say!(
            "  {} {:>10} bytes  {}",
            layer.digest,
            layer.size,
            layer.media_type
        )?;
    }
    if !inspection.referrers.is_empty() {
        say!("referrers:")?;
        for referrer in &inspection.referrers {
            say!(
                "  {} {:>10} bytes  {}",
                referrer.digest,
                referrer.size,
                referrer
                    .artifact_type
                    .as_deref()
                    .unwrap_or(&referrer.media_type)
            )?;
        }
    }
    Ok(())
}
