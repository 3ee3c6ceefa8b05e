//! The image's SBOM: an SPDX 2.3 JSON document of what a server image holds.
//!
//! `images/build-server.sh` writes [`CRATES_FILE`] beside each server it builds: the crates
//! linked into that binary (proc-macros, which only run at compile time, are left out), with
//! their declared licences and, for crates.io crates, the sha256 that Cargo.lock records.
//! [`read_crates`] reads it; [`spdx()`] turns it, with the digests of the model and the servers,
//! into a document describing the image: the image (`CONTAINER`) contains the model and one
//! server per platform (`APPLICATION`), and each server depends on its crates (`LIBRARY`).
//!
//! ```
//! use std::collections::BTreeMap;
//! use skiff_pack::oci::{Platform, sha256_digest};
//! use skiff_pack::sbom::{Crate, SbomInput, SbomModel, SbomServer, spdx};
//!
//! # fn main() -> skiff_pack::Result<()> {
//! let model = b"onnx bytes";
//! let server = b"\x7fELF server";
//! let input = SbomInput {
//!     name: "iris".into(),
//!     digest: format!("sha256:{}", "ab".repeat(32)),
//!     repository_url: Some("ghcr.io/acme/iris".into()),
//!     tag: Some("v1".into()),
//!     skiff_version: "0.1.0".into(),
//!     created: "1970-01-01T00:00:00Z".into(),
//!     model: SbomModel {
//!         path: skiff_pack::media::MODEL_PATH.into(),
//!         digest: sha256_digest(model),
//!         size: model.len() as u64,
//!         labels: BTreeMap::from([("dev.skiff.model.task".into(), "classification".into())]),
//!     },
//!     servers: vec![SbomServer {
//!         platform: Platform::parse("linux/amd64")?,
//!         digest: sha256_digest(server),
//!         size: server.len() as u64,
//!         crates: vec![Crate {
//!             name: "serde".into(),
//!             version: "1.0.228".into(),
//!             license: Some("MIT/Apache-2.0".into()),
//!             repository: Some("https://github.com/serde-rs/serde".into()),
//!             crates_io: true,
//!             checksum: None,
//!         }],
//!     }],
//! };
//! let document = spdx(&input)?;
//! assert_eq!(document, spdx(&input)?, "the same input gives the same bytes");
//! let json: serde_json::Value = serde_json::from_slice(&document).unwrap();
//! assert_eq!(json["spdxVersion"], "SPDX-2.3");
//! # Ok(())
//! # }
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::media;
use crate::oci::{Platform, valid_digest};

/// Name of the crate list that `images/build-server.sh` writes beside each `skiff-server`.
pub const CRATES_FILE: &str = "skiff-server.crates.tsv";

/// Columns of [`CRATES_FILE`], tab separated, in this order.
const COLUMNS: [&str; 6] = [
    "name",
    "version",
    "license",
    "repository",
    "source",
    "checksum",
];

/// A crate linked into the server, as [`CRATES_FILE`] lists it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Crate {
    /// Package name, e.g. `serde`.
    pub name: String,
    /// Version, e.g. `1.0.228`.
    pub version: String,
    /// The licence as its Cargo.toml declares it (`MIT/Apache-2.0` included), if any.
    pub license: Option<String>,
    /// The repository its Cargo.toml names, if any.
    pub repository: Option<String>,
    /// Whether it came from crates.io (workspace and path crates did not).
    pub crates_io: bool,
    /// sha256 of the `.crate` file as Cargo.lock records it (64 lower case hex digits), for
    /// crates.io crates.
    pub checksum: Option<String>,
}

/// Reads a crate list written by `images/build-server.sh` ([`CRATES_FILE`]): lines of
/// name, version, licence, repository, source (`crates.io`, `path` or `other`) and checksum,
/// tab separated; empty fields are absent values; lines starting with `#` are comments.
pub fn read_crates(path: &Path) -> Result<Vec<Crate>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io("read", path, e))?;
    let mut crates = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let malformed = |reason: String| {
            Error::Invalid(format!(
                "{}:{}: {reason} (rebuild the server with images/build-server.sh to rewrite it)",
                path.display(),
                index + 1
            ))
        };
        let fields: Vec<&str> = line.split('\t').collect();
        let [name, version, license, repository, source, checksum] = fields[..] else {
            return Err(malformed(format!(
                "expected {} tab separated fields ({}), found {}",
                COLUMNS.len(),
                COLUMNS.join(", "),
                fields.len()
            )));
        };
        if name.is_empty() || version.is_empty() {
            return Err(malformed("a crate needs a name and a version".into()));
        }
        let crates_io = match source {
            "crates.io" => true,
            "path" | "other" => false,
            _ => {
                return Err(malformed(format!(
                    "unknown source {source:?} (crates.io, path or other)"
                )));
            }
        };
        let is_hex = |s: &str| {
            s.len() == 64
                && s.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        };
        if !checksum.is_empty() && !is_hex(checksum) {
            return Err(malformed(format!(
                "checksum {checksum:?} is not a sha256 (64 lower case hex digits)"
            )));
        }
        let some = |s: &str| (!s.is_empty()).then(|| s.to_string());
        crates.push(Crate {
            name: name.into(),
            version: version.into(),
            license: some(license),
            repository: some(repository),
            crates_io,
            checksum: some(checksum),
        });
    }
    Ok(crates)
}

/// What [`spdx()`] describes: one image, as `skiff pack` wrote it.
#[derive(Debug, Clone)]
pub struct SbomInput {
    /// The image's name: the model name, or the last part of the repository (`iris`).
    pub name: String,
    /// Digest of the image's manifest, or of its index when it has several platforms
    /// (`sha256:<hex>`): the image the SBOM describes and is attached to.
    pub digest: String,
    /// `REGISTRY/REPOSITORY` of an image in a registry (`ghcr.io/acme/iris`). `None` for an
    /// image layout: its folder is the build machine's and stays out of the document.
    pub repository_url: Option<String>,
    /// The tag the image was written under, if any.
    pub tag: Option<String>,
    /// The skiff version that packed the image (`creators` is `Tool: skiff-VERSION`).
    pub skiff_version: String,
    /// When the document was created, RFC 3339; skiff takes it from `SOURCE_DATE_EPOCH` (default
    /// the epoch), as the image's `created`, so the document is reproducible.
    pub created: String,
    /// The ONNX model in the image.
    pub model: SbomModel,
    /// The server for each platform of the image.
    pub servers: Vec<SbomServer>,
}

/// The model file in the image.
#[derive(Debug, Clone)]
pub struct SbomModel {
    /// Its path in the image ([`media::MODEL_PATH`]).
    pub path: String,
    /// `sha256:<hex>` of the file.
    pub digest: String,
    /// Its size in bytes.
    pub size: u64,
    /// The image's labels (`dev.skiff.model.*` and the like), recorded as annotations.
    pub labels: BTreeMap<String, String>,
}

/// The server for one platform.
#[derive(Debug, Clone)]
pub struct SbomServer {
    /// The platform it runs on.
    pub platform: Platform,
    /// `sha256:<hex>` of the executable.
    pub digest: String,
    /// Its size in bytes.
    pub size: u64,
    /// The crates linked into it ([`read_crates`] of the [`CRATES_FILE`] beside it).
    pub crates: Vec<Crate>,
}

const NOASSERTION: &str = "NOASSERTION";

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Document {
    spdx_version: &'static str,
    data_license: &'static str,
    #[serde(rename = "SPDXID")]
    spdx_id: &'static str,
    name: String,
    document_namespace: String,
    creation_info: CreationInfo,
    packages: Vec<Package>,
    relationships: Vec<Relationship>,
}

#[derive(Serialize)]
struct CreationInfo {
    created: String,
    creators: Vec<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Package {
    name: String,
    #[serde(rename = "SPDXID")]
    spdx_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    version_info: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    package_file_name: Option<String>,
    download_location: String,
    files_analyzed: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    checksums: Vec<Checksum>,
    license_declared: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    source_info: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    comment: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    external_refs: Vec<ExternalRef>,
    primary_package_purpose: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    annotations: Vec<Annotation>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Checksum {
    algorithm: &'static str,
    checksum_value: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ExternalRef {
    reference_category: &'static str,
    reference_type: &'static str,
    reference_locator: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Annotation {
    annotation_date: String,
    annotation_type: &'static str,
    annotator: String,
    comment: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Relationship {
    spdx_element_id: String,
    relationship_type: &'static str,
    related_spdx_element: String,
}

impl Relationship {
    fn new(from: &str, kind: &'static str, to: &str) -> Relationship {
        Relationship {
            spdx_element_id: from.into(),
            relationship_type: kind,
            related_spdx_element: to.into(),
        }
    }
}

/// Writes the SPDX 2.3 JSON document of `input`. The same input gives the same bytes: nothing
/// comes from the clock or the machine, packages are in a fixed order, and the
/// `documentNamespace` (unique per document) ends in a hash of the rest of the document.
///
/// Crates that several servers share are one package each. A crate's declared licence is
/// written as a valid SPDX expression (Cargo's old `MIT/Apache-2.0` becomes
/// `MIT OR Apache-2.0`), or `NOASSERTION` when it has none that SPDX knows.
pub fn spdx(input: &SbomInput) -> Result<Vec<u8>> {
    let created = chrono::DateTime::parse_from_rfc3339(&input.created)
        .map_err(|e| {
            Error::Invalid(format!(
                "SBOM creation time {:?} is not RFC 3339 ({e}); write e.g. 1970-01-01T00:00:00Z",
                input.created
            ))
        })?
        .with_timezone(&chrono::Utc)
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    for (what, digest) in [("image", &input.digest), ("model", &input.model.digest)]
        .into_iter()
        .chain(input.servers.iter().map(|s| ("server", &s.digest)))
    {
        if !valid_digest(digest) {
            return Err(Error::InvalidDigest(format!("{digest} (the {what}'s)")));
        }
    }
    let tool = format!("Tool: skiff-{}", input.skiff_version);
    let mut ids = Ids::default();
    let mut packages = Vec::new();
    let mut relationships = Vec::new();

    let image_id = ids.claim("Image", &input.name);
    relationships.push(Relationship::new(
        "SPDXRef-DOCUMENT",
        "DESCRIBES",
        &image_id,
    ));
    packages.push(Package {
        name: input.name.clone(),
        spdx_id: image_id.clone(),
        version_info: Some(input.digest.clone()),
        package_file_name: None,
        download_location: NOASSERTION.into(),
        files_analyzed: false,
        checksums: Vec::new(),
        license_declared: NOASSERTION.into(),
        source_info: None,
        comment: input.tag.as_ref().map(|tag| format!("tag {tag}")),
        external_refs: vec![purl(oci_purl(input))],
        primary_package_purpose: "CONTAINER",
        annotations: Vec::new(),
    });

    let model = &input.model;
    let model_name = model
        .labels
        .get(media::SKIFF_MODEL_NAME)
        .cloned()
        .unwrap_or_else(|| "model".into());
    let model_id = ids.claim("Model", &model_name);
    relationships.push(Relationship::new(&image_id, "CONTAINS", &model_id));
    packages.push(Package {
        name: model_name,
        spdx_id: model_id,
        version_info: None,
        package_file_name: Some(model.path.clone()),
        download_location: NOASSERTION.into(),
        files_analyzed: false,
        checksums: vec![sha256(&model.digest)],
        license_declared: NOASSERTION.into(),
        source_info: None,
        comment: Some(format!("ONNX model, {} bytes", model.size)),
        external_refs: Vec::new(),
        primary_package_purpose: "FILE",
        annotations: model
            .labels
            .iter()
            .map(|(key, value)| Annotation {
                annotation_date: created.clone(),
                annotation_type: "OTHER",
                annotator: tool.clone(),
                comment: format!("{key}={value}"),
            })
            .collect(),
    });

    // One package per crate, however many servers link it.
    let mut crate_ids: BTreeMap<(&str, &str), String> = BTreeMap::new();
    let mut crates: BTreeMap<(&str, &str), &Crate> = BTreeMap::new();
    for krate in input.servers.iter().flat_map(|s| &s.crates) {
        crates.entry((&krate.name, &krate.version)).or_insert(krate);
    }
    let mut seen_platforms = BTreeSet::new();
    for server in &input.servers {
        let platform = server.platform.to_string();
        if !seen_platforms.insert(platform.clone()) {
            return Err(Error::Invalid(format!(
                "the SBOM lists the server for {platform} twice (give each platform once)"
            )));
        }
        let server_id = ids.claim("Server", &platform);
        relationships.push(Relationship::new(&image_id, "CONTAINS", &server_id));
        // The server crate's own licence is the binary's.
        let license = server
            .crates
            .iter()
            .find(|c| c.name == "skiff-server")
            .and_then(|c| c.license.as_deref())
            .and_then(license_expression)
            .unwrap_or_else(|| NOASSERTION.into());
        packages.push(Package {
            name: "skiff-server".into(),
            spdx_id: server_id.clone(),
            version_info: Some(input.skiff_version.clone()),
            package_file_name: Some(media::SERVER_PATH.into()),
            download_location: NOASSERTION.into(),
            files_analyzed: false,
            checksums: vec![sha256(&server.digest)],
            license_declared: license,
            source_info: None,
            comment: Some(format!(
                "skiff's static server for {platform}, {} bytes",
                server.size
            )),
            external_refs: Vec::new(),
            primary_package_purpose: "APPLICATION",
            annotations: Vec::new(),
        });
        let mut linked: Vec<&Crate> = server.crates.iter().collect();
        linked.sort();
        linked.dedup_by(|a, b| a.name == b.name && a.version == b.version);
        for krate in linked {
            let id = crate_ids
                .entry((&krate.name, &krate.version))
                .or_insert_with(|| {
                    ids.claim("Crate", &format!("{}-{}", krate.name, krate.version))
                });
            relationships.push(Relationship::new(&server_id, "DEPENDS_ON", id));
        }
    }
    for (key, krate) in crates {
        packages.push(crate_package(krate, crate_ids[&key].clone()));
    }

    let mut document = Document {
        spdx_version: "SPDX-2.3",
        data_license: "CC0-1.0",
        spdx_id: "SPDXRef-DOCUMENT",
        name: match (&input.repository_url, &input.tag) {
            (Some(repository), Some(tag)) => format!("{repository}:{tag}"),
            (Some(repository), None) => repository.clone(),
            (None, Some(tag)) => format!("{}:{tag}", input.name),
            (None, None) => input.name.clone(),
        },
        document_namespace: String::new(),
        creation_info: CreationInfo {
            created,
            creators: vec![tool],
        },
        packages,
        relationships,
    };
    // Unique for each image and content, and the same each time it is written.
    let unnamed = serde_json::to_vec(&document).map_err(|e| Error::json("SPDX document", e))?;
    document.document_namespace = format!(
        "https://spdx.org/spdxdocs/skiff-{}-{:x}",
        id_text(&input.name),
        Sha256::digest(&unnamed)
    );
    let mut bytes =
        serde_json::to_vec_pretty(&document).map_err(|e| Error::json("SPDX document", e))?;
    bytes.push(b'\n');
    Ok(bytes)
}

fn crate_package(krate: &Crate, spdx_id: String) -> Package {
    let name = &krate.name;
    let version = &krate.version;
    Package {
        name: name.clone(),
        spdx_id,
        version_info: Some(version.clone()),
        package_file_name: None,
        download_location: if krate.crates_io {
            format!(
                "https://crates.io/api/v1/crates/{}/{}/download",
                encode(name, ""),
                encode(version, "")
            )
        } else {
            NOASSERTION.into()
        },
        files_analyzed: false,
        checksums: krate
            .checksum
            .iter()
            .map(|hex| Checksum {
                algorithm: "SHA256",
                checksum_value: hex.clone(),
            })
            .collect(),
        license_declared: krate
            .license
            .as_deref()
            .and_then(license_expression)
            .unwrap_or_else(|| NOASSERTION.into()),
        source_info: krate
            .repository
            .as_ref()
            .map(|repository| format!("source repository {repository}")),
        comment: None,
        external_refs: vec![purl(format!(
            "pkg:cargo/{}@{}",
            encode(name, ""),
            encode(version, "")
        ))],
        primary_package_purpose: "LIBRARY",
        annotations: Vec::new(),
    }
}

/// The declared licence as a valid SPDX expression: Cargo's `/` becomes `OR`, imprecise names
/// (`Apache2`) their identifiers. `None` for text SPDX does not know, and for `LicenseRef-`s,
/// whose texts the document does not carry.
fn license_expression(declared: &str) -> Option<String> {
    let declared = declared.trim();
    let canonical = spdx::Expression::canonicalize(declared)
        .ok()?
        .unwrap_or_else(|| declared.to_string());
    spdx::Expression::parse(&canonical).ok()?;
    let refers = canonical.contains("LicenseRef-") || canonical.contains("AdditionRef-");
    (!refers).then_some(canonical)
}

/// `pkg:oci/NAME@DIGEST?...` (purl's `oci` type: the name is the repository's last part).
fn oci_purl(input: &SbomInput) -> String {
    let name = match &input.repository_url {
        Some(repository) => repository.rsplit('/').next().unwrap_or(repository),
        None => &input.name,
    };
    let mut qualifiers = Vec::new();
    if let [server] = &input.servers[..] {
        qualifiers.push(format!(
            "arch={}",
            encode(&server.platform.architecture, "")
        ));
    }
    if let Some(repository) = &input.repository_url {
        qualifiers.push(format!("repository_url={}", encode(repository, "/:")));
    }
    if let Some(tag) = &input.tag {
        qualifiers.push(format!("tag={}", encode(tag, "")));
    }
    let mut purl = format!(
        "pkg:oci/{}@{}",
        encode(&name.to_lowercase(), ""),
        encode(&input.digest, "")
    );
    if !qualifiers.is_empty() {
        purl.push('?');
        purl.push_str(&qualifiers.join("&"));
    }
    purl
}

fn purl(locator: String) -> ExternalRef {
    ExternalRef {
        reference_category: "PACKAGE-MANAGER",
        reference_type: "purl",
        reference_locator: locator,
    }
}

fn sha256(digest: &str) -> Checksum {
    Checksum {
        algorithm: "SHA256",
        checksum_value: digest.trim_start_matches("sha256:").into(),
    }
}

/// Percent-encodes all but unreserved characters and those in `keep` (purl components).
fn encode(text: &str, keep: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric()
            || b"-._~".contains(&byte)
            || keep.as_bytes().contains(&byte)
        {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// `text` with what an SPDX identifier cannot hold (`[A-Za-z0-9.-]` only) made `-`.
fn id_text(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// Hands out SPDX identifiers, each once.
#[derive(Default)]
struct Ids(BTreeSet<String>);

impl Ids {
    fn claim(&mut self, kind: &str, name: &str) -> String {
        let base = format!("SPDXRef-{kind}-{}", id_text(name));
        let mut id = base.clone();
        let mut n = 1;
        while !self.0.insert(id.clone()) {
            n += 1;
            id = format!("{base}-{n}");
        }
        id
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::sha256_digest;

    fn krate(name: &str, version: &str, license: Option<&str>, crates_io: bool) -> Crate {
        Crate {
            name: name.into(),
            version: version.into(),
            license: license.map(String::from),
            repository: Some(format!("https://github.com/example/{name}")),
            crates_io,
            checksum: crates_io.then(|| "0f".repeat(32)),
        }
    }

    fn input() -> SbomInput {
        let server = |platform: &str, extra: Crate| SbomServer {
            platform: Platform::parse(platform).unwrap(),
            digest: sha256_digest(platform.as_bytes()),
            size: 1234,
            crates: vec![
                krate("skiff-server", "0.1.0", Some("Apache-2.0"), false),
                krate("serde", "1.0.228", Some("MIT OR Apache-2.0"), true),
                krate("same-file", "1.0.6", Some("Unlicense/MIT"), true),
                extra,
            ],
        };
        SbomInput {
            name: "iris".into(),
            digest: sha256_digest(b"index"),
            repository_url: Some("127.0.0.1:5000/acme/iris".into()),
            tag: Some("v1".into()),
            skiff_version: "0.1.0".into(),
            created: "1970-01-01T00:00:00Z".into(),
            model: SbomModel {
                path: media::MODEL_PATH.into(),
                digest: sha256_digest(b"model"),
                size: 5,
                labels: BTreeMap::from([
                    (media::SKIFF_MODEL_NAME.into(), "iris".into()),
                    (media::SKIFF_MODEL_TASK.into(), "classification".into()),
                ]),
            },
            servers: vec![
                server(
                    "linux/amd64",
                    krate("cpufeatures", "0.3.1", Some("MIT OR Apache-2.0"), true),
                ),
                server("linux/arm64", krate("odd", "0.1.0", Some("Custom"), true)),
            ],
        }
    }

    fn json(input: &SbomInput) -> serde_json::Value {
        serde_json::from_slice(&spdx(input).unwrap()).unwrap()
    }

    fn package<'a>(doc: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
        doc["packages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("no package {name} in {doc:#}"))
    }

    #[test]
    fn licences_become_spdx_expressions() {
        let cases = [
            ("MIT/Apache-2.0", Some("MIT OR Apache-2.0")),
            ("Apache-2.0 / MIT", Some("Apache-2.0 OR MIT")),
            ("Unlicense/MIT", Some("Unlicense OR MIT")),
            ("MIT OR Apache-2.0", Some("MIT OR Apache-2.0")),
            (
                "(MIT OR Apache-2.0) AND Unicode-3.0",
                Some("(MIT OR Apache-2.0) AND Unicode-3.0"),
            ),
            (
                "Apache-2.0 WITH LLVM-exception OR Apache-2.0 OR MIT",
                Some("Apache-2.0 WITH LLVM-exception OR Apache-2.0 OR MIT"),
            ),
            ("Custom", None),
            ("MIT AND", None),
            ("", None),
            ("LicenseRef-acme", None),
        ];
        for (declared, expected) in cases {
            assert_eq!(
                license_expression(declared).as_deref(),
                expected,
                "{declared:?}"
            );
        }
    }

    #[test]
    fn same_input_same_bytes_and_different_content_different_namespace() {
        let first = input();
        assert_eq!(spdx(&first).unwrap(), spdx(&first).unwrap());
        let mut other = input();
        other.model.digest = sha256_digest(b"another model");
        let (a, b) = (json(&first), json(&other));
        assert_ne!(a["documentNamespace"], b["documentNamespace"]);
        assert!(
            a["documentNamespace"]
                .as_str()
                .unwrap()
                .starts_with("https://spdx.org/spdxdocs/skiff-iris-")
        );
        assert_eq!(a["creationInfo"]["created"], "1970-01-01T00:00:00Z");
        assert_eq!(a["creationInfo"]["creators"][0], "Tool: skiff-0.1.0");
    }

    #[test]
    fn created_is_written_in_utc_as_spdx_wants_it() {
        let mut input = input();
        input.created = "2024-05-01T12:00:00+02:00".into();
        assert_eq!(
            json(&input)["creationInfo"]["created"],
            "2024-05-01T10:00:00Z"
        );
        input.created = "yesterday".into();
        let error = spdx(&input).unwrap_err().to_string();
        assert!(error.contains("\"yesterday\" is not RFC 3339"), "{error}");
    }

    #[test]
    fn relationships_link_document_image_model_servers_and_crates() {
        let doc = json(&input());
        let relationships: BTreeSet<(String, String, String)> = doc["relationships"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let field = |k: &str| r[k].as_str().unwrap().to_string();
                (
                    field("spdxElementId"),
                    field("relationshipType"),
                    field("relatedSpdxElement"),
                )
            })
            .collect();
        let has = |a: &str, kind: &str, b: &str| {
            relationships.contains(&(a.to_string(), kind.to_string(), b.to_string()))
        };
        assert!(has("SPDXRef-DOCUMENT", "DESCRIBES", "SPDXRef-Image-iris"));
        assert!(has("SPDXRef-Image-iris", "CONTAINS", "SPDXRef-Model-iris"));
        for platform in ["linux-amd64", "linux-arm64-v8"] {
            let server = format!("SPDXRef-Server-{platform}");
            assert!(has("SPDXRef-Image-iris", "CONTAINS", &server));
            assert!(has(&server, "DEPENDS_ON", "SPDXRef-Crate-serde-1.0.228"));
        }
        assert!(has(
            "SPDXRef-Server-linux-amd64",
            "DEPENDS_ON",
            "SPDXRef-Crate-cpufeatures-0.3.1"
        ));
        assert!(!has(
            "SPDXRef-Server-linux-arm64-v8",
            "DEPENDS_ON",
            "SPDXRef-Crate-cpufeatures-0.3.1"
        ));
        // A crate both servers link is one package.
        let serdes = doc["packages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["name"] == "serde")
            .count();
        assert_eq!(serdes, 1);
    }

    #[test]
    fn packages_carry_purpose_purl_licence_and_checksums() {
        let doc = json(&input());
        let image = package(&doc, "iris");
        assert_eq!(image["primaryPackagePurpose"], "CONTAINER");
        let digest = sha256_digest(b"index").replace(':', "%3A");
        assert_eq!(
            image["externalRefs"][0]["referenceLocator"],
            format!("pkg:oci/iris@{digest}?repository_url=127.0.0.1:5000/acme/iris&tag=v1")
        );
        let serde = package(&doc, "serde");
        assert_eq!(serde["primaryPackagePurpose"], "LIBRARY");
        assert_eq!(
            serde["downloadLocation"],
            "https://crates.io/api/v1/crates/serde/1.0.228/download"
        );
        assert_eq!(
            serde["externalRefs"][0]["referenceLocator"],
            "pkg:cargo/serde@1.0.228"
        );
        assert_eq!(serde["checksums"][0]["algorithm"], "SHA256");
        assert_eq!(
            package(&doc, "same-file")["licenseDeclared"],
            "Unlicense OR MIT"
        );
        assert_eq!(package(&doc, "odd")["licenseDeclared"], "NOASSERTION");
        let own = doc["packages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "skiff-server" && p["primaryPackagePurpose"] == "LIBRARY")
            .unwrap();
        assert_eq!(own["downloadLocation"], "NOASSERTION");
        assert!(own.get("checksums").is_none());
        let servers: Vec<_> = doc["packages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["primaryPackagePurpose"] == "APPLICATION")
            .collect();
        assert_eq!(servers.len(), 2);
        assert_eq!(servers[0]["licenseDeclared"], "Apache-2.0");
        assert_eq!(
            servers[0]["checksums"][0]["checksumValue"],
            sha256_digest(b"linux/amd64").trim_start_matches("sha256:")
        );
        let model = package(&doc, "iris");
        assert_eq!(model["SPDXID"], "SPDXRef-Image-iris");
        let model = doc["packages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["SPDXID"] == "SPDXRef-Model-iris")
            .unwrap();
        assert_eq!(model["packageFileName"], "/model/model.onnx");
        assert_eq!(
            model["annotations"][1]["comment"],
            "dev.skiff.model.task=classification"
        );
    }

    #[test]
    fn a_bad_digest_is_refused_and_an_artifact_without_servers_holds_the_model() {
        let mut bad = input();
        bad.model.digest = "md5:abc".into();
        let error = spdx(&bad).unwrap_err().to_string();
        assert!(error.contains("md5:abc (the model's)"), "{error}");
        // A ModelPack artifact: the model alone.
        let mut none = input();
        none.servers.clear();
        let doc: serde_json::Value = serde_json::from_slice(&spdx(&none).unwrap()).unwrap();
        let packages = doc["packages"].as_array().unwrap();
        assert!(
            packages
                .iter()
                .all(|p| p["primaryPackagePurpose"] != "APPLICATION")
        );
        assert!(
            packages
                .iter()
                .any(|p| p["primaryPackagePurpose"] == "FILE")
        );
    }

    #[test]
    fn crate_list_round_trips_and_a_bad_line_names_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(CRATES_FILE);
        let sum = "ab".repeat(32);
        std::fs::write(
            &path,
            format!(
                "# name\tversion\tlicense\trepository\tsource\tchecksum\n\
                 serde\t1.0.228\tMIT OR Apache-2.0\thttps://github.com/serde-rs/serde\tcrates.io\t{sum}\n\
                 skiff-host\t0.1.0\t\t\tpath\t\n"
            ),
        )
        .unwrap();
        let crates = read_crates(&path).unwrap();
        assert_eq!(crates.len(), 2);
        assert!(crates[0].crates_io);
        assert_eq!(crates[0].checksum.as_deref(), Some(sum.as_str()));
        assert_eq!(crates[1].license, None);
        assert!(!crates[1].crates_io);

        std::fs::write(&path, "# header\nserde\t1.0.228\tMIT\n").unwrap();
        let error = read_crates(&path).unwrap_err().to_string();
        assert!(
            error.contains(&format!("{}:2: expected 6", path.display())),
            "{error}"
        );
        assert!(!error.contains('\n'), "{error}");
        std::fs::write(&path, "serde\t1.0.228\tMIT\t\tgit\t\n").unwrap();
        let error = read_crates(&path).unwrap_err().to_string();
        assert!(error.contains(":1: unknown source \"git\""), "{error}");
    }
}
