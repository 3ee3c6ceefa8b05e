//! `skiff keygen`, `skiff sign` and `skiff verify`: cosign-compatible image signatures.

use anyhow::{Context, Result, bail};
use skiff_pack::Reference;
use skiff_pack::sign::{SigningKey, VerifyingKey};
use std::path::{Path, PathBuf};

/// cosign's variable for the password of its key files.
const PASSWORD_VAR: &str = "COSIGN_PASSWORD";

#[derive(clap::Args)]
pub struct KeygenArgs {
    /// Write PREFIX.key (the private key, encrypted with $COSIGN_PASSWORD, in cosign's format)
    /// and PREFIX.pub (the public key)
    #[arg(long, default_value = "cosign", value_name = "PREFIX")]
    output_key_prefix: PathBuf,
}

#[derive(clap::Args)]
pub struct SignArgs {
    /// The image to sign: docker://HOST/REPO[:TAG|@sha256:...] (or HOST/REPO:TAG)
    image: String,
    /// The private key: cosign's (cosign.key, its password in $COSIGN_PASSWORD) or a PKCS#8
    /// P-256 PEM
    #[arg(long, value_name = "PATH")]
    key: PathBuf,
    /// Talk plain HTTP to the registry (for a local registry without TLS)
    #[arg(long)]
    insecure: bool,
    /// Print the result as JSON
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
pub struct VerifyArgs {
    /// The image: docker://HOST/REPO[:TAG|@sha256:...] (or HOST/REPO:TAG), or oci:DIR[:TAG]
    image: String,
    /// The public key (cosign.pub)
    #[arg(long, value_name = "PATH")]
    key: PathBuf,
    /// Talk plain HTTP to the registry (for a local registry without TLS)
    #[arg(long)]
    insecure: bool,
    /// Print the result as JSON
    #[arg(long)]
    json: bool,
}

fn password() -> Option<Vec<u8>> {
    std::env::var_os(PASSWORD_VAR).map(|p| p.into_encoded_bytes())
}

pub fn keygen(args: KeygenArgs) -> Result<()> {
    let with = |ext: &str| {
        let mut path = args.output_key_prefix.clone().into_os_string();
        path.push(ext);
        PathBuf::from(path)
    };
    let (private, public) = (with(".key"), with(".pub"));
    for path in [&private, &public] {
        if path.exists() {
            bail!(
                "{} exists: move it away or pick another --output-key-prefix",
                path.display()
            );
        }
    }
    let Some(password) = password() else {
        bail!(
            "set {PASSWORD_VAR} to the password that encrypts the private key (it may be empty), as for cosign"
        );
    };
    let (private_pem, public_pem) = skiff_pack::sign::generate_key_pair(&password)?;
    write_private(&private, &private_pem)?;
    skiff_data::write_atomic(&public, &public_pem)
        .with_context(|| format!("cannot write {}", public.display()))?;
    say!(
        "wrote {} (private, keep it secret) and {} (public)",
        private.display(),
        public.display()
    )?;
    Ok(())
}

/// Writes the private key readable by its owner only.
fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let cannot = || format!("cannot write {}", path.display());
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(cannot)?;
    file.write_all(bytes).with_context(cannot)?;
    file.sync_all().with_context(cannot)
}

fn read(path: &Path, what: &str) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read the {what} {}", path.display()))
}

/// The private key at `path`, decrypted with $COSIGN_PASSWORD where it is encrypted.
fn signing_key(path: &Path) -> Result<SigningKey> {
    let pem = read(path, "private key")?;
    skiff_pack::sign::load_signing_key(&pem, password().as_deref())
        .with_context(|| path.display().to_string())
}

/// The public key at `path`.
pub fn verifying_key(path: &Path) -> Result<VerifyingKey> {
    let pem = read(path, "public key")?;
    skiff_pack::sign::load_verifying_key(&pem).with_context(|| path.display().to_string())
}

pub fn sign(args: SignArgs) -> Result<()> {
    let Reference::Registry {
        registry,
        repository,
        tag,
    } = Reference::parse_image(&args.image)?
    else {
        bail!(
            "skiff sign signs images in a registry ({:?} is not one): push it, then sign docker://HOST/REPO:TAG",
            args.image
        );
    };
    let key = signing_key(&args.key)?;
    let opts = crate::progress::registry_options(args.insecure);
    let signed = super::block_on(skiff_pack::signatures::sign(
        &registry,
        &repository,
        &tag,
        &key,
        &opts,
    ))??;
    let image = format!("{registry}/{repository}@{}", signed.digest);
    if args.json {
        return super::print_json(&serde_json::json!({
            "image": image,
            "digest": signed.digest,
            "tag": signed.tag,
            "referrer": signed.referrer.digest,
        }));
    }
    say!(
        "signed {image} (tag {}, referrer {})",
        signed.tag,
        signed.referrer.digest
    )?;
    Ok(())
}

/// Checks the signature of the image `image` names with the public key `key`.
pub fn verify_image(
    image: &str,
    key: &VerifyingKey,
    insecure: bool,
) -> Result<skiff_pack::signatures::Verified> {
    let unpacked = tempfile::tempdir().context("cannot create a temporary directory")?;
    Ok(
        match super::unpack_archive(Reference::parse_image(image)?, unpacked.path())? {
            Reference::Registry {
                registry,
                repository,
                tag,
            } => {
                let opts = crate::progress::registry_options(insecure);
                super::block_on(skiff_pack::signatures::verify(
                    &registry,
                    &repository,
                    &tag,
                    key,
                    &opts,
                ))??
            }
            Reference::Layout { dir, tag } => {
                skiff_pack::signatures::verify_layout(&dir, &tag, key)?
            }
            Reference::File(_) | Reference::Archive { .. } => {
                bail!(
                    "{image:?} is not an image: pass docker://HOST/REPO[:TAG], oci:DIR[:TAG] or oci-archive:FILE[:TAG]"
                )
            }
        },
    )
}

pub fn verify(args: VerifyArgs) -> Result<()> {
    let key = verifying_key(&args.key)?;
    let verified = verify_image(&args.image, &key, args.insecure)?;
    let payload: serde_json::Value =
        serde_json::from_slice(&verified.signature.payload).unwrap_or_default();
    if args.json {
        return super::print_json(&serde_json::json!({
            "image": args.image,
            "digest": verified.digest,
            "verified": true,
            "signature": verified.found_in,
            "payload": payload,
        }));
    }
    say!(
        "verified {} ({}): signed by {} ({})",
        args.image,
        verified.digest,
        args.key.display(),
        verified.found_in
    )?;
    Ok(())
}
