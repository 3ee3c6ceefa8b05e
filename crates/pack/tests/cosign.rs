//! skiff's signatures against the real cosign (3.1, `$SKIFF_TEST_COSIGN`): keys both ways, blob
//! signatures both ways, and image signatures in a real registry (`docker-registry` on loopback,
//! images and manifests moved with `$SKIFF_TEST_ORAS`). Missing tools fail the tests.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use skiff_pack::oci::{Descriptor, ImageIndex, ImageManifest};
use skiff_pack::sign::{
    self, SignatureFormat, SignedPayload, generate_key_pair, load_signing_key, load_verifying_key,
    signature_manifest, signature_tag, simple_signing_payload, verify_signature_manifest,
};
use skiff_testing::Registry;

const PASSWORD: &str = "correct horse";

fn tool(var: &str) -> PathBuf {
    let path = std::env::var_os(var).unwrap_or_else(|| {
        panic!("{var} is not set: point it at the binary (scripts/test.sh installs it)")
    });
    PathBuf::from(path)
}

/// Runs a tool in `dir` with cosign's password in the environment; panics with its output
/// unless it succeeds.
fn run(var: &str, dir: &Path, args: &[&str]) -> Output {
    let output = try_run(var, dir, args);
    assert!(
        output.status.success(),
        "{var} {args:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn try_run(var: &str, dir: &Path, args: &[&str]) -> Output {
    Command::new(tool(var))
        .args(args)
        .current_dir(dir)
        .env("COSIGN_PASSWORD", PASSWORD)
        .env("HOME", dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run ${var} ({e})"))
}

fn cosign(dir: &Path, args: &[&str]) -> Output {
    run("SKIFF_TEST_COSIGN", dir, args)
}

fn oras(dir: &Path, args: &[&str]) -> Output {
    run("SKIFF_TEST_ORAS", dir, args)
}

/// `cosign generate-key-pair` in `dir`: cosign.key, cosign.pub.
fn cosign_key_pair(dir: &Path) {
    cosign(dir, &["generate-key-pair"]);
    assert!(dir.join("cosign.key").exists() && dir.join("cosign.pub").exists());
}

#[test]
fn a_cosign_key_signs_what_cosign_verify_blob_accepts() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    cosign_key_pair(dir);
    let private = std::fs::read(dir.join("cosign.key")).unwrap();
    let key = load_signing_key(&private, Some(PASSWORD.as_bytes())).unwrap();
    let public = load_verifying_key(&std::fs::read(dir.join("cosign.pub")).unwrap()).unwrap();
    assert_eq!(key.verifying_key(), &public);

    let err = load_signing_key(&private, Some(b"not it")).unwrap_err();
    assert!(err.to_string().contains("wrong password"), "{err}");

    let digest = "sha256:104da796bd845aaa6a60637e78e69fb710efe6e412a2d890da268257d4d044f2";
    let payload = simple_signing_payload("127.0.0.1:5000/iris", digest);
    std::fs::write(dir.join("payload.json"), &payload).unwrap();
    std::fs::write(dir.join("payload.sig"), sign::sign(&key, &payload)).unwrap();
    let verify_blob = [
        "verify-blob",
        "--key",
        "cosign.pub",
        "--signature",
        "payload.sig",
        "--insecure-ignore-tlog=true",
        "payload.json",
    ];
    cosign(dir, &verify_blob);

    // The same check fails once the payload changes: cosign really checks skiff's signature.
    std::fs::write(
        dir.join("payload.json"),
        simple_signing_payload("x/y", digest),
    )
    .unwrap();
    assert!(
        !try_run("SKIFF_TEST_COSIGN", dir, &verify_blob)
            .status
            .success()
    );
}

#[test]
fn a_skiff_key_is_read_by_cosign_and_verifies_cosign_blob_signatures() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (private, public) = generate_key_pair(PASSWORD.as_bytes()).unwrap();
    std::fs::write(dir.join("skiff.key"), &private).unwrap();
    std::fs::write(dir.join("skiff.pub"), &public).unwrap();

    let derived = cosign(dir, &["public-key", "--key", "skiff.key"]).stdout;
    assert_eq!(
        load_verifying_key(&derived).unwrap(),
        load_verifying_key(&public).unwrap()
    );

    std::fs::write(dir.join("blob"), b"model bytes").unwrap();
    cosign(
        dir,
        &[
            "sign-blob",
            "--key",
            "skiff.key",
            "--use-signing-config=false",
            "--tlog-upload=false",
            "--new-bundle-format=false",
            "--output-signature",
            "blob.sig",
            "-y",
            "blob",
        ],
    );
    let signature = std::fs::read_to_string(dir.join("blob.sig")).unwrap();
    let key = load_verifying_key(&public).unwrap();
    sign::verify(&key, b"model bytes", &signature).unwrap();
    assert!(sign::verify(&key, b"model bytez", &signature).is_err());
}

/// Pushes a one-file artifact to `repo:v1` and returns its manifest digest.
fn push_image(dir: &Path, repo: &str, content: &str) -> String {
    std::fs::write(dir.join("file.txt"), content).unwrap();
    oras(
        dir,
        &["push", "--plain-http", &format!("{repo}:v1"), "file.txt"],
    );
    let out = oras(dir, &["resolve", "--plain-http", &format!("{repo}:v1")]);
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn fetch_manifest<T: serde::de::DeserializeOwned>(dir: &Path, reference: &str) -> T {
    let out = oras(dir, &["manifest", "fetch", "--plain-http", reference]);
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{reference}: {e}: {}", String::from_utf8_lossy(&out.stdout)))
}

fn fetch_blob(dir: &Path, repo: &str, descriptor: &Descriptor) -> Vec<u8> {
    let reference = format!("{repo}@{}", descriptor.digest);
    oras(
        dir,
        &["blob", "fetch", "--plain-http", "--output", "-", &reference],
    )
    .stdout
}

fn cosign_sign_image(dir: &Path, image: &str, legacy: bool) {
    let mut args = vec![
        "sign",
        "--key",
        "cosign.key",
        "--use-signing-config=false",
        "--tlog-upload=false",
        "--allow-http-registry",
        "-y",
    ];
    if legacy {
        args.push("--new-bundle-format=false");
    }
    args.push(image);
    cosign(dir, &args);
}

#[test]
fn image_signatures_in_a_registry_verify_both_ways() {
    let registry = Registry::start(None);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    cosign_key_pair(dir);
    let cosign_key = load_verifying_key(&std::fs::read(dir.join("cosign.pub")).unwrap()).unwrap();
    let (skiff_private, skiff_public) = generate_key_pair(PASSWORD.as_bytes()).unwrap();
    std::fs::write(dir.join("skiff.pub"), &skiff_public).unwrap();
    let skiff_key = load_signing_key(&skiff_private, Some(PASSWORD.as_bytes())).unwrap();

    // cosign signs, tag form: skiff finds and verifies the `.sig` manifest.
    let repo = format!("{}/signed", registry.host());
    let digest = push_image(dir, &repo, "signed by cosign");
    cosign_sign_image(dir, &format!("{repo}@{digest}"), true);
    let sig_ref = format!("{repo}:{}", signature_tag(&digest));
    let manifest: ImageManifest = fetch_manifest(dir, &sig_ref);
    let read = |d: &Descriptor| Ok(fetch_blob(dir, &repo, d));
    let verified = verify_signature_manifest(&manifest, &cosign_key, &digest, read).unwrap();
    assert_eq!(verified.format, SignatureFormat::SimpleSigning);
    assert_eq!(
        verified.payload,
        simple_signing_payload(&repo, &digest),
        "cosign signs exactly the payload skiff writes"
    );
    let err =
        verify_signature_manifest(&manifest, skiff_key.verifying_key(), &digest, read).unwrap_err();
    assert!(err.to_string().contains("not by this key"), "{err}");

    // cosign 3's default: a Sigstore bundle referrer, in the `sha256-<hex>` fallback index on a
    // registry without the referrers API.
    let repo = format!("{}/bundled", registry.host());
    let digest = push_image(dir, &repo, "signed by cosign 3");
    cosign_sign_image(dir, &format!("{repo}@{digest}"), false);
    let index: ImageIndex =
        fetch_manifest(dir, &format!("{repo}:{}", digest.replacen(':', "-", 1)));
    let referrer = &index.manifests[0];
    let manifest: ImageManifest = fetch_manifest(dir, &format!("{repo}@{}", referrer.digest));
    assert_eq!(
        manifest.artifact_type.as_deref(),
        Some(skiff_pack::media::SIGSTORE_BUNDLE_V03)
    );
    let read = |d: &Descriptor| Ok(fetch_blob(dir, &repo, d));
    let verified = verify_signature_manifest(&manifest, &cosign_key, &digest, read).unwrap();
    assert_eq!(verified.format, SignatureFormat::SigstoreBundle);
    let err =
        verify_signature_manifest(&manifest, skiff_key.verifying_key(), &digest, read).unwrap_err();
    assert!(err.to_string().contains("not by this key"), "{err}");

    // skiff signs: its `.sig` manifest, pushed as is, is what `cosign verify` accepts.
    let repo = format!("{}/skiffsigned", registry.host());
    let digest = push_image(dir, &repo, "signed by skiff");
    let payload = simple_signing_payload(&repo, &digest);
    let signed = SignedPayload {
        signature: sign::sign(&skiff_key, &payload),
        payload,
    };
    let (manifest, blobs) = signature_manifest(&[signed]).unwrap();
    for (i, (descriptor, bytes)) in blobs.iter().enumerate() {
        let file = format!("blob{i}");
        std::fs::write(dir.join(&file), bytes).unwrap();
        let reference = format!("{repo}@{}", descriptor.digest);
        oras(dir, &["blob", "push", "--plain-http", &reference, &file]);
    }
    std::fs::write(
        dir.join("sig-manifest.json"),
        serde_json::to_vec(&manifest).unwrap(),
    )
    .unwrap();
    let sig_ref = format!("{repo}:{}", signature_tag(&digest));
    oras(
        dir,
        &[
            "manifest",
            "push",
            "--plain-http",
            "--media-type",
            skiff_pack::media::OCI_MANIFEST,
            &sig_ref,
            "sig-manifest.json",
        ],
    );
    let image = format!("{repo}@{digest}");
    let verify = |key: &str| {
        try_run(
            "SKIFF_TEST_COSIGN",
            dir,
            &[
                "verify",
                "--key",
                key,
                "--insecure-ignore-tlog=true",
                "--allow-http-registry",
                &image,
            ],
        )
    };
    let accepted = verify("skiff.pub");
    assert!(
        accepted.status.success(),
        "cosign verify rejected skiff's signature: {}",
        String::from_utf8_lossy(&accepted.stderr)
    );
    assert!(
        !verify("cosign.pub").status.success(),
        "cosign verify accepted skiff's signature with another key"
    );
}
