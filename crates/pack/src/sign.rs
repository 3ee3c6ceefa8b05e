//! cosign-compatible image signatures: ECDSA P-256 keys, the "simple signing" payload, and the
//! signature manifests cosign stores in registries.
//!
//! # Keys
//!
//! `cosign generate-key-pair` writes `cosign.key`, PEM `ENCRYPTED SIGSTORE PRIVATE KEY` (older
//! cosign: `ENCRYPTED COSIGN PRIVATE KEY`) whose body is JSON:
//! `{"kdf":{"name":"scrypt","params":{"N":65536,"r":8,"p":1},"salt":B64},"cipher":{"name":"nacl/secretbox","nonce":B64},"ciphertext":B64}`
//! (go-securesystemslib's `encrypted` package): a 32-byte key is derived from the password with
//! scrypt, and the ciphertext is the NaCl secretbox (XSalsa20-Poly1305, tag first) of the PKCS#8
//! DER private key. cosign reads the password from `COSIGN_PASSWORD`. `cosign.pub` is a PKIX
//! `PUBLIC KEY` PEM.
//!
//! # What is signed
//!
//! The signed bytes are the simple signing payload ([`simple_signing_payload`]), compact JSON in
//! this order, with `optional` null when no annotations were given:
//! `{"critical":{"identity":{"docker-reference":"HOST/REPO"},"image":{"docker-manifest-digest":"sha256:..."},"type":"cosign container image signature"},"optional":null}`.
//! The signature is ECDSA P-256 over SHA-256 of those bytes, ASN.1 DER, base64.
//!
//! # How cosign 3.1 stores signatures in a registry
//!
//! - **Tag form** (`cosign sign --key K --new-bundle-format=false`; `cosign verify` reads it when
//!   no bundle is attached, or with `--new-bundle-format=false`): an image manifest tagged
//!   `sha256-<hex>.sig` ([`signature_tag`]) in the image's repository. Its config is an OCI image
//!   config (`application/vnd.oci.image.config.v1+json`) listing each payload as a diff id; each
//!   signature is one layer of media type [`media::COSIGN_SIMPLE_SIGNING`] holding the payload,
//!   with the signature in the annotation [`media::COSIGN_SIGNATURE_ANNOTATION`]. Signing again
//!   appends a layer (and a diff id and history entry) to the same manifest.
//! - **Referrer form of the same** (`--new-bundle-format=false --registry-referrers-mode=oci-1-1`,
//!   with `COSIGN_EXPERIMENTAL=1`): the same manifest, with config media type
//!   [`media::COSIGN_SIGNATURE_ARTIFACT`] (so that is its artifact type; no `artifactType` field)
//!   and a `subject` naming the image; on a registry without the referrers API it goes into the
//!   `sha256-<hex>` fallback index. `cosign verify` 3.1 has no flag to read it back.
//! - **Bundle form, cosign 3's default** (`cosign sign --key K`): a referrer manifest with
//!   `artifactType` [`media::SIGSTORE_BUNDLE_V03`], the empty config
//!   (`application/vnd.oci.empty.v1+json`, `{}`), annotations `dev.sigstore.bundle.content:
//!   dsse-envelope` and `dev.sigstore.bundle.predicateType: https://sigstore.dev/cosign/sign/v1`,
//!   and one layer of the same media type holding a Sigstore bundle 0.3 JSON: a DSSE envelope
//!   (`payloadType` `application/vnd.in-toto+json`) of an in-toto statement whose subject is the
//!   image digest and whose `predicateType` is `https://sigstore.dev/cosign/sign/v1`, signed over
//!   DSSE's pre-authentication encoding, and `verificationMaterial.publicKey.hint`. On a registry
//!   without the referrers API it is listed in the `sha256-<hex>` fallback index.
//!   [`verify_signature_manifest`] verifies this form with a key too.
//!
//! Key-based signing needs `--use-signing-config=false --tlog-upload=false` (cosign 3 otherwise
//! wants a signing config with Rekor), and verifying such a signature
//! `cosign verify --key cosign.pub --insecure-ignore-tlog=true`.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use crypto_secretbox::aead::{Aead, KeyInit};
use crypto_secretbox::{Key, Nonce, XSalsa20Poly1305};
use p256::ecdsa::signature::{Signer, Verifier};
use p256::ecdsa::{DerSignature, Signature};
use p256::pkcs8::der::pem::{self, LineEnding};
use p256::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use rand_core::{OsRng, RngCore};
use serde::{Deserialize, Serialize};

pub use p256::ecdsa::{SigningKey, VerifyingKey};

use crate::error::{Error, Result};
use crate::media;
use crate::oci::{Descriptor, ImageManifest, sha256_digest, valid_digest};

/// PEM label of the private keys cosign 2 and later write.
pub const SIGSTORE_PRIVATE_KEY_PEM: &str = "ENCRYPTED SIGSTORE PRIVATE KEY";
/// PEM label of the private keys older cosign wrote (same content).
pub const COSIGN_PRIVATE_KEY_PEM: &str = "ENCRYPTED COSIGN PRIVATE KEY";
/// `critical.type` of cosign's simple signing payload.
pub const SIMPLE_SIGNING_TYPE: &str = "cosign container image signature";
/// `predicateType` of the in-toto statement cosign 3 signs for an image (bundle form).
pub const COSIGN_SIGN_PREDICATE: &str = "https://sigstore.dev/cosign/sign/v1";
/// DSSE `payloadType` of an in-toto statement.
const IN_TOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";

/// scrypt cost cosign uses (N = 2^16, r = 8, p = 1), as go-securesystemslib's default.
const SCRYPT_LOG_N: u8 = 16;
const SCRYPT_R: u32 = 8;
const SCRYPT_P: u32 = 1;

fn key_error(reason: impl std::fmt::Display) -> Error {
    Error::Signature(reason.to_string())
}

/// The encrypted key document inside an `ENCRYPTED SIGSTORE PRIVATE KEY` PEM (field order as
/// cosign writes it).
#[derive(Serialize, Deserialize)]
struct EncryptedKey {
    kdf: Kdf,
    cipher: Cipher,
    ciphertext: String,
}

#[derive(Serialize, Deserialize)]
struct Kdf {
    name: String,
    params: ScryptParams,
    salt: String,
}

#[derive(Serialize, Deserialize)]
struct ScryptParams {
    #[serde(rename = "N")]
    n: u64,
    r: u32,
    p: u32,
}

#[derive(Serialize, Deserialize)]
struct Cipher {
    name: String,
    nonce: String,
}

fn scrypt_key(password: &[u8], salt: &[u8], params: &ScryptParams) -> Result<[u8; 32]> {
    // Bounded so that a hostile key file cannot ask for gigabytes of memory.
    let log_n = match params.n {
        n if n.is_power_of_two() && (2..=1 << 20).contains(&n) => n.trailing_zeros() as u8,
        n => {
            return Err(key_error(format!(
                "private key asks for scrypt N = {n}: only powers of two up to 2^20 are supported (generate the key again)"
            )));
        }
    };
    if params.r == 0 || params.r > 32 || params.p == 0 || params.p > 16 {
        return Err(key_error(format!(
            "private key asks for scrypt r = {}, p = {}: only r <= 32 and p <= 16 are supported (generate the key again)",
            params.r, params.p
        )));
    }
    let scrypt_params = scrypt::Params::new(log_n, params.r, params.p, 32).map_err(key_error)?;
    let mut key = [0u8; 32];
    scrypt::scrypt(password, salt, &scrypt_params, &mut key).map_err(key_error)?;
    Ok(key)
}

fn decode_base64(what: &str, text: &str) -> Result<Vec<u8>> {
    BASE64
        .decode(text.trim())
        .map_err(|e| key_error(format!("{what} is not base64: {e}")))
}

/// Loads a private key: cosign's encrypted `cosign.key` (`ENCRYPTED SIGSTORE PRIVATE KEY` or the
/// older `ENCRYPTED COSIGN PRIVATE KEY`) with its password, or an unencrypted PKCS#8 `PRIVATE KEY`
/// or SEC1 `EC PRIVATE KEY`. Only ECDSA P-256 keys are supported (cosign's default). Without a
/// password an encrypted key is tried with the empty one, as cosign does.
pub fn load_signing_key(pem_bytes: &[u8], password: Option<&[u8]>) -> Result<SigningKey> {
    let (label, der) = decode_pem(pem_bytes, "private key")?;
    match label.as_str() {
        SIGSTORE_PRIVATE_KEY_PEM | COSIGN_PRIVATE_KEY_PEM => {
            let plain = decrypt_key(&der, password.unwrap_or_default(), password.is_some())?;
            pkcs8_signing_key(&plain)
        }
        "PRIVATE KEY" => pkcs8_signing_key(&der),
        "EC PRIVATE KEY" => p256::SecretKey::from_sec1_der(&der)
            .map(SigningKey::from)
            .map_err(|e| {
                key_error(format!(
                    "EC PRIVATE KEY is not an ECDSA P-256 key ({e}); only P-256 keys are supported"
                ))
            }),
        other => Err(key_error(format!(
            "a PEM {other:?} is not a private key (use cosign.key from cosign generate-key-pair or skiff keygen, or a PKCS#8 PRIVATE KEY)"
        ))),
    }
}

fn decode_pem(pem_bytes: &[u8], what: &str) -> Result<(String, Vec<u8>)> {
    let text =
        std::str::from_utf8(pem_bytes).map_err(|_| key_error(format!("{what} is not PEM text")))?;
    // Tolerate text around the block, as Go's pem.Decode does.
    let start = text
        .find("-----BEGIN ")
        .ok_or_else(|| key_error(format!("{what} is not PEM (no -----BEGIN line)")))?;
    let end = text[start..]
        .find("-----END ")
        .and_then(|at| {
            let rest = &text[start + at..];
            rest[9..]
                .find("-----")
                .map(|close| start + at + 9 + close + 5)
        })
        .ok_or_else(|| key_error(format!("{what} is not PEM (no -----END line)")))?;
    let (label, der) = pem::decode_vec(&text.as_bytes()[start..end])
        .map_err(|e| key_error(format!("{what} is not valid PEM: {e}")))?;
    Ok((label.to_string(), der))
}

fn pkcs8_signing_key(der: &[u8]) -> Result<SigningKey> {
    SigningKey::from_pkcs8_der(der).map_err(|e| {
        key_error(format!(
            "private key is not an ECDSA P-256 key ({e}); only P-256 keys are supported"
        ))
    })
}

fn decrypt_key(document: &[u8], password: &[u8], password_given: bool) -> Result<Vec<u8>> {
    let encrypted: EncryptedKey = serde_json::from_slice(document).map_err(|e| {
        key_error(format!(
            "encrypted private key is not cosign's JSON ({e}); generate it again"
        ))
    })?;
    if encrypted.kdf.name != "scrypt" || encrypted.cipher.name != "nacl/secretbox" {
        return Err(key_error(format!(
            "encrypted private key uses {} + {}: only scrypt + nacl/secretbox (cosign's) are supported",
            encrypted.kdf.name, encrypted.cipher.name
        )));
    }
    let salt = decode_base64("private key salt", &encrypted.kdf.salt)?;
    let nonce = decode_base64("private key nonce", &encrypted.cipher.nonce)?;
    let ciphertext = decode_base64("private key ciphertext", &encrypted.ciphertext)?;
    if nonce.len() != 24 {
        return Err(key_error(format!(
            "private key nonce has {} bytes, not 24 (generate the key again)",
            nonce.len()
        )));
    }
    let key = scrypt_key(password, &salt, &encrypted.kdf.params)?;
    XSalsa20Poly1305::new(Key::from_slice(&key))
        .decrypt(Nonce::from_slice(&nonce), ciphertext.as_slice())
        .map_err(|_| {
            key_error(if password_given {
                "wrong password for the private key (COSIGN_PASSWORD must be the password the key was generated with)"
            } else {
                "the private key is encrypted: give its password (set COSIGN_PASSWORD)"
            })
        })
}

/// Loads a public key: PEM `PUBLIC KEY` (PKIX), as `cosign.pub`. Only ECDSA P-256.
pub fn load_verifying_key(pem_bytes: &[u8]) -> Result<VerifyingKey> {
    let (label, der) = decode_pem(pem_bytes, "public key")?;
    if label != "PUBLIC KEY" {
        return Err(key_error(format!(
            "a PEM {label:?} is not a public key (use cosign.pub, a PEM PUBLIC KEY)"
        )));
    }
    VerifyingKey::from_public_key_der(&der).map_err(|e| {
        key_error(format!(
            "public key is not an ECDSA P-256 key ({e}); only P-256 keys are supported"
        ))
    })
}

/// The PEM `PUBLIC KEY` (PKIX) of `key`, as cosign writes `cosign.pub`.
pub fn public_key_pem(key: &VerifyingKey) -> Result<Vec<u8>> {
    key.to_public_key_pem(LineEnding::LF)
        .map(String::into_bytes)
        .map_err(|e| key_error(format!("cannot encode the public key: {e}")))
}

/// A new P-256 key pair: the private key encrypted with `password` in cosign's format
/// (`ENCRYPTED SIGSTORE PRIVATE KEY`, scrypt N = 2^16, r = 8, p = 1, NaCl secretbox), which
/// cosign reads with `COSIGN_PASSWORD`, and the PEM public key.
pub fn generate_key_pair(password: &[u8]) -> Result<(Vec<u8>, Vec<u8>)> {
    let key = SigningKey::random(&mut OsRng);
    let der = key
        .to_pkcs8_der()
        .map_err(|e| key_error(format!("cannot encode the private key: {e}")))?;
    let mut salt = [0u8; 32];
    let mut nonce = [0u8; 24];
    OsRng.fill_bytes(&mut salt);
    OsRng.fill_bytes(&mut nonce);
    let params = ScryptParams {
        n: 1 << SCRYPT_LOG_N,
        r: SCRYPT_R,
        p: SCRYPT_P,
    };
    let secret = scrypt_key(password, &salt, &params)?;
    let ciphertext = XSalsa20Poly1305::new(Key::from_slice(&secret))
        .encrypt(Nonce::from_slice(&nonce), der.as_bytes())
        .map_err(|_| key_error("cannot encrypt the private key"))?;
    let document = EncryptedKey {
        kdf: Kdf {
            name: "scrypt".into(),
            params,
            salt: BASE64.encode(salt),
        },
        cipher: Cipher {
            name: "nacl/secretbox".into(),
            nonce: BASE64.encode(nonce),
        },
        ciphertext: BASE64.encode(ciphertext),
    };
    let json = serde_json::to_vec(&document).map_err(|e| Error::json("private key", e))?;
    let private = pem::encode_string(SIGSTORE_PRIVATE_KEY_PEM, LineEnding::LF, &json)
        .map_err(|e| key_error(format!("cannot encode the private key: {e}")))?;
    Ok((private.into_bytes(), public_key_pem(key.verifying_key())?))
}

#[derive(Serialize, Deserialize)]
struct SimpleSigning {
    critical: Critical,
    optional: Option<BTreeMap<String, serde_json::Value>>,
}

#[derive(Serialize, Deserialize)]
struct Critical {
    identity: Identity,
    image: ImageClaim,
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Serialize, Deserialize)]
struct Identity {
    #[serde(rename = "docker-reference")]
    docker_reference: String,
}

#[derive(Serialize, Deserialize)]
struct ImageClaim {
    #[serde(rename = "docker-manifest-digest")]
    docker_manifest_digest: String,
}

/// The JSON cosign signs for an image: `docker_reference` is the repository without tag or digest
/// (`127.0.0.1:5000/iris`, as cosign writes it) and `manifest_digest` the signed manifest's
/// `sha256:...`. Byte for byte what `cosign sign` writes without `-a` annotations.
pub fn simple_signing_payload(docker_reference: &str, manifest_digest: &str) -> Vec<u8> {
    let payload = SimpleSigning {
        critical: Critical {
            identity: Identity {
                docker_reference: docker_reference.to_string(),
            },
            image: ImageClaim {
                docker_manifest_digest: manifest_digest.to_string(),
            },
            kind: SIMPLE_SIGNING_TYPE.to_string(),
        },
        optional: None,
    };
    serde_json::to_vec(&payload).expect("a struct of strings serializes")
}

/// Signs `payload`: base64 of the ASN.1 DER ECDSA P-256 SHA-256 signature, as cosign stores it.
pub fn sign(key: &SigningKey, payload: &[u8]) -> String {
    let signature: DerSignature = key.sign(payload);
    BASE64.encode(signature.as_bytes())
}

/// Checks that `signature_b64` (base64 ASN.1 DER, as cosign writes it) is `key`'s signature of
/// `payload`.
pub fn verify(key: &VerifyingKey, payload: &[u8], signature_b64: &str) -> Result<()> {
    let der = BASE64.decode(signature_b64.trim()).map_err(|e| {
        Error::Signature(format!(
            "signature is not base64 ({e}); expected cosign's base64 DER signature"
        ))
    })?;
    let signature = Signature::from_der(&der).map_err(|e| {
        Error::Signature(format!(
            "signature is not an ASN.1 DER ECDSA signature ({e})"
        ))
    })?;
    key.verify(payload, &signature).map_err(|_| {
        Error::Signature(
            "signature does not match: the payload was changed or signed by another key (check the public key)"
                .into(),
        )
    })
}

/// Checks that a (verified) simple signing payload is cosign's and names `manifest_digest`.
pub fn check_payload(payload: &[u8], manifest_digest: &str) -> Result<()> {
    let parsed: SimpleSigning = serde_json::from_slice(payload).map_err(|e| {
        Error::Signature(format!(
            "signed payload is not cosign's simple signing JSON ({e})"
        ))
    })?;
    if parsed.critical.kind != SIMPLE_SIGNING_TYPE {
        return Err(Error::Signature(format!(
            "signed payload has type {:?}, not {SIMPLE_SIGNING_TYPE:?}",
            parsed.critical.kind
        )));
    }
    let named = parsed.critical.image.docker_manifest_digest;
    if named != manifest_digest {
        return Err(Error::Signature(format!(
            "signature is for image {named}, not {manifest_digest} (sign this image)"
        )));
    }
    Ok(())
}

/// The tag cosign stores an image's signature manifest under: `sha256-<hex>.sig`.
pub fn signature_tag(manifest_digest: &str) -> String {
    format!("{}.sig", manifest_digest.replacen(':', "-", 1))
}

/// One signed payload: the payload bytes and the base64 signature over them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedPayload {
    /// The signed bytes (a [`simple_signing_payload`]).
    pub payload: Vec<u8>,
    /// Base64 ASN.1 DER ECDSA signature of `payload`.
    pub signature: String,
}

/// The config of a signature manifest: an OCI image config listing each payload as a diff id,
/// in cosign's field order (go-containerregistry's `empty.Image` with layers appended).
#[derive(Serialize)]
struct SignatureConfig<'a> {
    architecture: &'a str,
    created: &'a str,
    history: Vec<History<'a>>,
    os: &'a str,
    rootfs: RootFs,
    config: BTreeMap<String, String>,
}

#[derive(Serialize)]
struct History<'a> {
    created: &'a str,
}

#[derive(Serialize)]
struct RootFs {
    #[serde(rename = "type")]
    kind: &'static str,
    diff_ids: Vec<String>,
}

/// A signature manifest and its blobs (config first, then the payload layers), each with its
/// descriptor, for the caller to write before the manifest.
pub type SignatureArtifact = (ImageManifest, Vec<(Descriptor, Vec<u8>)>);

/// Go's zero time, which cosign's signature configs carry.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// The signature manifest cosign writes under [`signature_tag`] (the tag form), with one layer
/// per signature, in order (cosign appends a new signature to the existing ones: pass those
/// first, see [`read_signatures`]). Returns the manifest and its blobs (config first, then the
/// payload layers) for the caller to write before the manifest.
pub fn signature_manifest(signatures: &[SignedPayload]) -> Result<SignatureArtifact> {
    build_signature_manifest(signatures, media::OCI_CONFIG, None)
}

/// The same signature manifest as a referrer of `subject` (the signed image's manifest), as
/// `cosign sign --registry-referrers-mode=oci-1-1` writes it: config media type
/// [`media::COSIGN_SIGNATURE_ARTIFACT`] (its artifact type) and a `subject`.
pub fn signature_referrer(
    subject: &Descriptor,
    signatures: &[SignedPayload],
) -> Result<SignatureArtifact> {
    build_signature_manifest(
        signatures,
        media::COSIGN_SIGNATURE_ARTIFACT,
        Some(subject.bare()),
    )
}

fn build_signature_manifest(
    signatures: &[SignedPayload],
    config_media_type: &str,
    subject: Option<Descriptor>,
) -> Result<SignatureArtifact> {
    if signatures.is_empty() {
        return Err(Error::Signature(
            "a signature manifest needs at least one signature".into(),
        ));
    }
    let layers: Vec<(Descriptor, Vec<u8>)> = signatures
        .iter()
        .map(|signed| {
            let mut descriptor =
                Descriptor::for_bytes(media::COSIGN_SIMPLE_SIGNING, &signed.payload);
            descriptor.annotations = Some(BTreeMap::from([(
                media::COSIGN_SIGNATURE_ANNOTATION.to_string(),
                signed.signature.clone(),
            )]));
            (descriptor, signed.payload.clone())
        })
        .collect();
    let config = SignatureConfig {
        architecture: "",
        created: ZERO_TIME,
        history: layers
            .iter()
            .map(|_| History { created: ZERO_TIME })
            .collect(),
        os: "",
        rootfs: RootFs {
            kind: "layers",
            diff_ids: layers.iter().map(|(d, _)| d.digest.clone()).collect(),
        },
        config: BTreeMap::new(),
    };
    let config_bytes =
        serde_json::to_vec(&config).map_err(|e| Error::json("signature config", e))?;
    let config_descriptor = Descriptor::for_bytes(config_media_type, &config_bytes);
    let manifest = ImageManifest {
        schema_version: 2,
        media_type: Some(media::OCI_MANIFEST.to_string()),
        artifact_type: None,
        config: config_descriptor.clone(),
        layers: layers.iter().map(|(d, _)| d.clone()).collect(),
        subject,
        annotations: None,
    };
    let mut blobs = vec![(config_descriptor, config_bytes)];
    blobs.extend(layers);
    Ok((manifest, blobs))
}

/// Which of cosign's formats a verified signature came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SignatureFormat {
    /// A simple signing payload layer with the signature in its annotation (tag or referrer form).
    SimpleSigning,
    /// A Sigstore bundle 0.3 with a DSSE envelope of an in-toto statement (cosign 3's default).
    SigstoreBundle,
}

/// A signature that verified: the layer it is in, its format, and the signed payload (the simple
/// signing JSON, or the in-toto statement of a bundle).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedSignature {
    /// The layer of the signature manifest that holds it.
    pub layer: Descriptor,
    /// Its format.
    pub format: SignatureFormat,
    /// The payload the signature covers.
    pub payload: Vec<u8>,
}

/// The layers of a signature manifest that hold signatures (simple signing payloads and Sigstore
/// bundles): the blobs [`verify_signature_manifest`] reads, for a caller that fetches them first.
pub fn signature_layers(manifest: &ImageManifest) -> impl Iterator<Item = &Descriptor> {
    manifest.layers.iter().filter(|layer| {
        layer.media_type == media::COSIGN_SIMPLE_SIGNING
            || layer.media_type == media::SIGSTORE_BUNDLE_V03
    })
}

fn read_checked(
    layer: &Descriptor,
    read_blob: &mut impl FnMut(&Descriptor) -> Result<Vec<u8>>,
) -> Result<Vec<u8>> {
    let bytes = read_blob(layer)?;
    if bytes.len() as u64 != layer.size || sha256_digest(&bytes) != layer.digest {
        return Err(Error::CorruptBlob {
            digest: layer.digest.clone(),
            reason: format!(
                "signature layer has {} bytes with digest {}",
                bytes.len(),
                sha256_digest(&bytes)
            ),
        });
    }
    Ok(bytes)
}

/// The signed payloads of a tag-form or referrer-form signature manifest, in order (to append a
/// signature the way cosign does, pass them with the new one to [`signature_manifest`]).
pub fn read_signatures(
    manifest: &ImageManifest,
    mut read_blob: impl FnMut(&Descriptor) -> Result<Vec<u8>>,
) -> Result<Vec<SignedPayload>> {
    let mut out = Vec::new();
    for layer in &manifest.layers {
        if layer.media_type != media::COSIGN_SIMPLE_SIGNING {
            continue;
        }
        let Some(signature) = layer
            .annotations
            .as_ref()
            .and_then(|a| a.get(media::COSIGN_SIGNATURE_ANNOTATION))
        else {
            continue;
        };
        out.push(SignedPayload {
            payload: read_checked(layer, &mut read_blob)?,
            signature: signature.clone(),
        });
    }
    Ok(out)
}

/// What one layer turned out to be.
enum LayerOutcome {
    Verified(Vec<u8>),
    OtherKey,
    OtherImage(String),
    NotASignature,
}

/// Verifies that at least one signature in a fetched signature manifest (any of cosign's forms:
/// the `.sig` tag manifest, its referrer form, or a cosign 3 Sigstore bundle referrer) is `key`'s
/// over a payload naming `manifest_digest`. `read_blob` returns a layer's bytes (checked here
/// against the descriptor). Errors in one line: unsigned, signed by another key, or signed for
/// another image.
pub fn verify_signature_manifest(
    manifest: &ImageManifest,
    key: &VerifyingKey,
    manifest_digest: &str,
    mut read_blob: impl FnMut(&Descriptor) -> Result<Vec<u8>>,
) -> Result<VerifiedSignature> {
    if !valid_digest(manifest_digest) {
        return Err(Error::InvalidDigest(manifest_digest.to_string()));
    }
    let (mut other_key, mut other_image) = (0usize, None);
    for layer in signature_layers(manifest) {
        let bytes = read_checked(layer, &mut read_blob)?;
        let (format, outcome) = if layer.media_type == media::SIGSTORE_BUNDLE_V03 {
            (
                SignatureFormat::SigstoreBundle,
                check_bundle(key, &bytes, manifest_digest),
            )
        } else {
            let outcome = match layer
                .annotations
                .as_ref()
                .and_then(|a| a.get(media::COSIGN_SIGNATURE_ANNOTATION))
            {
                None => LayerOutcome::NotASignature,
                Some(signature) if verify(key, &bytes, signature).is_err() => {
                    LayerOutcome::OtherKey
                }
                Some(_) => match check_payload(&bytes, manifest_digest) {
                    Ok(()) => LayerOutcome::Verified(bytes),
                    Err(e) => LayerOutcome::OtherImage(e.to_string()),
                },
            };
            (SignatureFormat::SimpleSigning, outcome)
        };
        match outcome {
            LayerOutcome::Verified(payload) => {
                return Ok(VerifiedSignature {
                    layer: layer.clone(),
                    format,
                    payload,
                });
            }
            LayerOutcome::OtherKey => other_key += 1,
            LayerOutcome::OtherImage(reason) => other_image = Some(reason),
            LayerOutcome::NotASignature => {}
        }
    }
    Err(Error::Signature(match (other_image, other_key) {
        (Some(reason), _) => reason,
        (None, 0) => format!(
            "image {manifest_digest} is not signed (no cosign signature found; sign it with skiff or cosign sign --key)"
        ),
        (None, n) => format!(
            "image {manifest_digest} is signed, but not by this key ({n} signature(s) checked; check the public key)"
        ),
    }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Bundle {
    media_type: Option<String>,
    dsse_envelope: Option<Envelope>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope {
    payload: String,
    payload_type: String,
    signatures: Vec<EnvelopeSignature>,
}

#[derive(Deserialize)]
struct EnvelopeSignature {
    sig: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Statement {
    #[serde(default)]
    subject: Vec<StatementSubject>,
    #[serde(default)]
    predicate_type: String,
}

#[derive(Deserialize)]
struct StatementSubject {
    #[serde(default)]
    digest: BTreeMap<String, String>,
}

/// DSSE's pre-authentication encoding, the bytes a DSSE signature covers.
fn dsse_pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {payload_type} {} ",
        payload_type.len(),
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

fn check_bundle(key: &VerifyingKey, bytes: &[u8], manifest_digest: &str) -> LayerOutcome {
    let Ok(bundle) = serde_json::from_slice::<Bundle>(bytes) else {
        return LayerOutcome::NotASignature;
    };
    let Some(envelope) = bundle.dsse_envelope else {
        return LayerOutcome::NotASignature;
    };
    if bundle
        .media_type
        .is_some_and(|m| !m.starts_with("application/vnd.dev.sigstore.bundle"))
        || envelope.payload_type != IN_TOTO_PAYLOAD_TYPE
    {
        return LayerOutcome::NotASignature;
    }
    let Ok(payload) = BASE64.decode(envelope.payload.trim()) else {
        return LayerOutcome::NotASignature;
    };
    let signed = dsse_pae(&envelope.payload_type, &payload);
    if !envelope
        .signatures
        .iter()
        .any(|s| verify(key, &signed, &s.sig).is_ok())
    {
        return LayerOutcome::OtherKey;
    }
    let Ok(statement) = serde_json::from_slice::<Statement>(&payload) else {
        return LayerOutcome::OtherImage("signed bundle does not hold an in-toto statement".into());
    };
    if statement.predicate_type != COSIGN_SIGN_PREDICATE {
        // An attestation (SBOM, provenance) by the same key is not a signature of the image.
        return LayerOutcome::NotASignature;
    }
    let hex = manifest_digest.trim_start_matches("sha256:");
    if statement
        .subject
        .iter()
        .any(|s| s.digest.get("sha256").is_some_and(|d| d == hex))
    {
        LayerOutcome::Verified(payload)
    } else {
        let named: Vec<String> = statement
            .subject
            .iter()
            .filter_map(|s| s.digest.get("sha256").map(|d| format!("sha256:{d}")))
            .collect();
        LayerOutcome::OtherImage(format!(
            "signature is for image {}, not {manifest_digest} (sign this image)",
            if named.is_empty() {
                "none".to_string()
            } else {
                named.join(", ")
            }
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:104da796bd845aaa6a60637e78e69fb710efe6e412a2d890da268257d4d044f2";

    /// A fixed key, so unit tests do not pay for scrypt except where they test it.
    fn key() -> SigningKey {
        SigningKey::from_slice(&[7u8; 32]).unwrap()
    }

    #[test]
    fn payload_is_byte_for_byte_what_cosign_signs() {
        // Written by cosign 3.1.1 `sign --new-bundle-format=false` for 127.0.0.1:5917/demo.
        let cosign = br#"{"critical":{"identity":{"docker-reference":"127.0.0.1:5917/demo"},"image":{"docker-manifest-digest":"sha256:104da796bd845aaa6a60637e78e69fb710efe6e412a2d890da268257d4d044f2"},"type":"cosign container image signature"},"optional":null}"#;
        assert_eq!(
            simple_signing_payload("127.0.0.1:5917/demo", DIGEST),
            cosign.to_vec()
        );
    }

    #[test]
    fn signature_round_trips_and_rejects_another_key_and_a_changed_payload() {
        let payload = simple_signing_payload("example.com/iris", DIGEST);
        let signature = sign(&key(), &payload);
        verify(key().verifying_key(), &payload, &signature).unwrap();
        check_payload(&payload, DIGEST).unwrap();

        let other = SigningKey::from_slice(&[9u8; 32]).unwrap();
        let err = verify(other.verifying_key(), &payload, &signature).unwrap_err();
        assert!(err.to_string().contains("does not match"), "{err}");

        let mut flipped = payload.clone();
        flipped[20] ^= 1;
        assert!(verify(key().verifying_key(), &flipped, &signature).is_err());

        let err = check_payload(&payload, &DIGEST.replace("104d", "0000")).unwrap_err();
        assert!(err.to_string().contains("is for image"), "{err}");
    }

    #[test]
    fn generated_key_pair_loads_only_with_its_password() {
        let (private, public) = generate_key_pair(b"s3cret").unwrap();
        assert!(private.starts_with(b"-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n"));
        let signing = load_signing_key(&private, Some(b"s3cret")).unwrap();
        let verifying = load_verifying_key(&public).unwrap();
        assert_eq!(signing.verifying_key(), &verifying);

        let err = load_signing_key(&private, Some(b"wrong")).unwrap_err();
        assert!(err.to_string().contains("wrong password"), "{err}");
        assert!(!err.to_string().contains('\n'));
        let err = load_signing_key(&private, None).unwrap_err();
        assert!(err.to_string().contains("COSIGN_PASSWORD"), "{err}");
    }

    #[test]
    fn unencrypted_pkcs8_and_sec1_keys_load() {
        let pkcs8 = key().to_pkcs8_pem(LineEnding::LF).unwrap();
        let loaded = load_signing_key(pkcs8.as_bytes(), None).unwrap();
        assert_eq!(loaded.verifying_key(), key().verifying_key());

        let sec1 = p256::SecretKey::from_slice(&[7u8; 32])
            .unwrap()
            .to_sec1_der()
            .unwrap();
        let pem = pem::encode_string("EC PRIVATE KEY", LineEnding::LF, &sec1).unwrap();
        let loaded = load_signing_key(pem.as_bytes(), None).unwrap();
        assert_eq!(loaded.verifying_key(), key().verifying_key());

        let public = public_key_pem(key().verifying_key()).unwrap();
        let err = load_signing_key(&public, None).unwrap_err();
        assert!(err.to_string().contains("not a private key"), "{err}");
        assert!(load_verifying_key(b"not pem").is_err());
    }

    #[test]
    fn signature_manifest_verifies_and_names_what_is_wrong() {
        let payload = simple_signing_payload("example.com/iris", DIGEST);
        let signed = SignedPayload {
            signature: sign(&key(), &payload),
            payload,
        };
        let (manifest, blobs) = signature_manifest(std::slice::from_ref(&signed)).unwrap();
        let read = |d: &Descriptor| {
            Ok(blobs
                .iter()
                .find(|(b, _)| b.digest == d.digest)
                .unwrap()
                .1
                .clone())
        };
        let verified =
            verify_signature_manifest(&manifest, key().verifying_key(), DIGEST, read).unwrap();
        assert_eq!(verified.format, SignatureFormat::SimpleSigning);
        assert_eq!(verified.payload, signed.payload);
        assert_eq!(read_signatures(&manifest, read).unwrap(), vec![signed]);

        let other = SigningKey::from_slice(&[9u8; 32]).unwrap();
        let err =
            verify_signature_manifest(&manifest, other.verifying_key(), DIGEST, read).unwrap_err();
        assert!(err.to_string().contains("not by this key"), "{err}");

        let another = DIGEST.replace("104d", "0000");
        let err = verify_signature_manifest(&manifest, key().verifying_key(), &another, read)
            .unwrap_err();
        assert!(err.to_string().contains("is for image"), "{err}");

        let mut unsigned = manifest.clone();
        unsigned.layers.clear();
        let err =
            verify_signature_manifest(&unsigned, key().verifying_key(), DIGEST, read).unwrap_err();
        assert!(err.to_string().contains("not signed"), "{err}");

        let err = verify_signature_manifest(&manifest, key().verifying_key(), DIGEST, |_| {
            Ok(b"tampered".to_vec())
        })
        .unwrap_err();
        assert!(err.to_string().contains("corrupt"), "{err}");
    }

    #[test]
    fn signature_config_is_what_cosign_writes() {
        // cosign 3.1.1's config for one signature whose payload has this digest.
        let cosign = r#"{"architecture":"","created":"0001-01-01T00:00:00Z","history":[{"created":"0001-01-01T00:00:00Z"}],"os":"","rootfs":{"type":"layers","diff_ids":["sha256:2b2bf0b48f0aa6087ac4b7e2ac596d476da6b8bfba7f5092a9c881055b3d00c2"]},"config":{}}"#;
        let payload = simple_signing_payload("127.0.0.1:5917/demo", DIGEST);
        let signed = SignedPayload {
            signature: sign(&key(), &payload),
            payload,
        };
        let (manifest, blobs) = signature_manifest(std::slice::from_ref(&signed)).unwrap();
        assert_eq!(blobs[0].1, cosign.as_bytes());
        let subject = Descriptor::of_digest(media::OCI_MANIFEST, DIGEST, 583);
        let (referrer, referrer_blobs) = signature_referrer(&subject, &[signed]).unwrap();
        assert_eq!(referrer.config.media_type, media::COSIGN_SIGNATURE_ARTIFACT);
        assert_eq!(referrer.subject, Some(subject));
        assert_eq!(referrer_blobs[0].1, cosign.as_bytes());
        assert_eq!(manifest.config.media_type, media::OCI_CONFIG);
        assert_eq!(
            manifest.layers[0].digest,
            "sha256:2b2bf0b48f0aa6087ac4b7e2ac596d476da6b8bfba7f5092a9c881055b3d00c2"
        );
        assert_eq!(
            signature_tag(DIGEST),
            format!("sha256-{}.sig", &DIGEST[7..])
        );
    }

    #[test]
    fn a_cosign_3_bundle_verifies_for_its_image_only() {
        // Written by cosign 3.1.1 `sign --key` (the default bundle form) for DIGEST.
        let public = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEJKEGQx96O8kMoHIzEhk0YY7lhckk\nUr8LGA/g/03avGIe/htLayp4l6Z1RPerRLEh5vHF9aUn/12MeHFSkeJ9Tg==\n-----END PUBLIC KEY-----\n";
        let bundle = r#"{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","verificationMaterial":{"publicKey":{"hint":"CN6DWQTguYwMUIFxRI4VSLpGJQRP0EYBxQ+0FIVEDDQ="}},"dsseEnvelope":{"payload":"eyJfdHlwZSI6Imh0dHBzOi8vaW4tdG90by5pby9TdGF0ZW1lbnQvdjEiLCJzdWJqZWN0IjpbeyJkaWdlc3QiOnsic2hhMjU2IjoiMTA0ZGE3OTZiZDg0NWFhYTZhNjA2MzdlNzhlNjlmYjcxMGVmZTZlNDEyYTJkODkwZGEyNjgyNTdkNGQwNDRmMiJ9LCJhbm5vdGF0aW9ucyI6e319XSwicHJlZGljYXRlVHlwZSI6Imh0dHBzOi8vc2lnc3RvcmUuZGV2L2Nvc2lnbi9zaWduL3YxIiwicHJlZGljYXRlIjp7fX0=","payloadType":"application/vnd.in-toto+json","signatures":[{"sig":"MEQCIAWotQgX4XQaj8Hqnp1iIi7aTwIWbdznpAzOrzCzbE3QAiAyijVKmLM1qYNTE81IqFIO+FFWzrx7UHgt2RWPytGIbw=="}]}}"#;
        let cosign_key = load_verifying_key(public.as_bytes()).unwrap();
        let mut layer = Descriptor::for_bytes(media::SIGSTORE_BUNDLE_V03, bundle.as_bytes());
        layer.annotations = None;
        let manifest = ImageManifest {
            schema_version: 2,
            media_type: Some(media::OCI_MANIFEST.into()),
            artifact_type: Some(media::SIGSTORE_BUNDLE_V03.into()),
            config: Descriptor::for_bytes("application/vnd.oci.empty.v1+json", b"{}"),
            layers: vec![layer],
            subject: None,
            annotations: None,
        };
        let read = |_: &Descriptor| Ok(bundle.as_bytes().to_vec());
        let verified = verify_signature_manifest(&manifest, &cosign_key, DIGEST, read).unwrap();
        assert_eq!(verified.format, SignatureFormat::SigstoreBundle);

        let err =
            verify_signature_manifest(&manifest, key().verifying_key(), DIGEST, read).unwrap_err();
        assert!(err.to_string().contains("not by this key"), "{err}");
        let another = DIGEST.replace("104d", "0000");
        let err = verify_signature_manifest(&manifest, &cosign_key, &another, read).unwrap_err();
        assert!(err.to_string().contains("is for image"), "{err}");
    }
}
