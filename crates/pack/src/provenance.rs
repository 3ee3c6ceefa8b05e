//! Build provenance: an in-toto statement (v1) with a SLSA provenance predicate (v1) naming what
//! an image was made from, attached to the image as a referrer.
//!
//! skiff's images are reproducible (the same model, server and `SOURCE_DATE_EPOCH` give the same
//! digests), so the statement can name every input by digest and anyone can check it by packing
//! again: the model, each platform's server binary, the base image where there is one, the skiff
//! version and `SOURCE_DATE_EPOCH`. Nothing of the build machine (paths, host names, clock) goes
//! in, so the statement is as reproducible as the image.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::media;
use crate::oci::{Descriptor, sha256_digest};
use crate::referrers::Artifact;

/// The statement's type.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
/// The predicate's type.
pub const SLSA_PROVENANCE_V1: &str = "https://slsa.dev/provenance/v1";
/// The build type the predicate names: what `externalParameters` and `internalParameters` mean.
pub const BUILD_TYPE: &str = "https://github.com/skiff-ml/skiff/blob/main/docs/provenance-v1.md";

/// An input of the build, named by digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Input {
    /// What it is, e.g. `model`, `server linux/amd64`, `base`.
    pub name: String,
    /// Where it came from, where that means something outside the build (a base image's
    /// reference, a registered model's URI).
    pub uri: Option<String>,
    /// `sha256:<hex>`.
    pub digest: String,
}

impl Input {
    /// An input known by its bytes.
    pub fn of_bytes(name: &str, uri: Option<String>, bytes: &[u8]) -> Input {
        Input {
            name: name.to_string(),
            uri,
            digest: sha256_digest(bytes),
        }
    }
}

/// What a statement says.
#[derive(Debug, Clone)]
pub struct Provenance {
    /// The image: the name it is known by (its destination reference) and its manifest's (or
    /// index's) digest.
    pub subject: (String, String),
    /// The parameters the user chose: the served name, the platforms, the format.
    pub parameters: BTreeMap<String, Value>,
    /// The inputs, by digest.
    pub inputs: Vec<Input>,
    /// The skiff version that built the image.
    pub skiff_version: String,
    /// `SOURCE_DATE_EPOCH`, where it was set.
    pub source_date_epoch: Option<i64>,
}

/// `SOURCE_DATE_EPOCH` from the environment, where it is set (an unparsable value is an
/// error, as for the image itself).
pub fn source_date_epoch() -> Result<Option<i64>> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(value) if !value.trim().is_empty() => value.trim().parse().map(Some).map_err(|_| {
            Error::Invalid(format!(
                "SOURCE_DATE_EPOCH={value:?} is not a whole number of seconds since 1970 (unset it or set e.g. SOURCE_DATE_EPOCH=$(git log -1 --format=%ct))"
            ))
        }),
        _ => Ok(None),
    }
}

fn hex(digest: &str) -> Result<&str> {
    digest
        .strip_prefix("sha256:")
        .filter(|_| crate::oci::valid_digest(digest))
        .ok_or_else(|| Error::Invalid(format!("{digest:?} is not a sha256 digest")))
}

impl Provenance {
    /// The in-toto statement, as JSON bytes (keys in a fixed order: the same inputs give the
    /// same bytes).
    pub fn statement(&self) -> Result<Vec<u8>> {
        let dependencies = self
            .inputs
            .iter()
            .map(|input| {
                let mut dep = json!({
                    "name": input.name,
                    "digest": {"sha256": hex(&input.digest)?},
                });
                if let Some(uri) = &input.uri {
                    dep["uri"] = json!(uri);
                }
                Ok(dep)
            })
            .collect::<Result<Vec<_>>>()?;
        let mut internal = json!({ "skiffVersion": self.skiff_version });
        if let Some(epoch) = self.source_date_epoch {
            internal["SOURCE_DATE_EPOCH"] = json!(epoch);
        }
        let statement = json!({
            "_type": STATEMENT_TYPE,
            "subject": [{
                "name": self.subject.0,
                "digest": {"sha256": hex(&self.subject.1)?},
            }],
            "predicateType": SLSA_PROVENANCE_V1,
            "predicate": {
                "buildDefinition": {
                    "buildType": BUILD_TYPE,
                    "externalParameters": self.parameters,
                    "internalParameters": internal,
                    "resolvedDependencies": dependencies,
                },
                "runDetails": {
                    "builder": {
                        "id": format!("https://github.com/skiff-ml/skiff/releases/tag/v{}", self.skiff_version),
                        "version": {"skiff": self.skiff_version},
                    },
                    "metadata": {},
                },
            },
        });
        serde_json::to_vec(&statement).map_err(|e| Error::json("provenance statement", e))
    }

    /// The statement as an artifact about `subject`, to attach to the image.
    pub fn artifact(&self, subject: &Descriptor, created: &str) -> Result<Artifact> {
        let statement = self.statement()?;
        let mut layer = Descriptor::for_bytes(media::IN_TOTO, &statement);
        layer.annotations = Some(BTreeMap::from([(
            media::ANNOTATION_PREDICATE_TYPE.to_string(),
            SLSA_PROVENANCE_V1.to_string(),
        )]));
        Ok(Artifact::new(
            media::IN_TOTO,
            subject,
            vec![(layer, statement)],
            BTreeMap::from([(media::ANNOTATION_CREATED.to_string(), created.to_string())]),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provenance() -> Provenance {
        Provenance {
            subject: (
                "docker://127.0.0.1:5000/iris:v1".into(),
                sha256_digest(b"manifest"),
            ),
            parameters: BTreeMap::from([("name".into(), json!("iris"))]),
            inputs: vec![
                Input::of_bytes("model", None, b"onnx"),
                Input::of_bytes("server linux/amd64", None, b"elf"),
            ],
            skiff_version: "0.1.0".into(),
            source_date_epoch: Some(1_700_000_000),
        }
    }

    #[test]
    fn the_statement_names_the_image_and_every_input_by_digest() {
        let bytes = provenance().statement().unwrap();
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["_type"], STATEMENT_TYPE);
        assert_eq!(v["predicateType"], SLSA_PROVENANCE_V1);
        assert_eq!(
            v["subject"][0]["digest"]["sha256"],
            hex(&sha256_digest(b"manifest")).unwrap()
        );
        let deps = &v["predicate"]["buildDefinition"]["resolvedDependencies"];
        assert_eq!(
            deps[0]["digest"]["sha256"],
            hex(&sha256_digest(b"onnx")).unwrap()
        );
        assert_eq!(deps[1]["name"], "server linux/amd64");
        assert_eq!(
            v["predicate"]["buildDefinition"]["internalParameters"]["SOURCE_DATE_EPOCH"],
            1_700_000_000
        );
        assert_eq!(bytes, provenance().statement().unwrap(), "deterministic");
    }

    #[test]
    fn the_artifact_refers_to_the_image() {
        let subject = Descriptor::for_bytes(media::OCI_MANIFEST, b"manifest");
        let artifact = provenance()
            .artifact(&subject, "1970-01-01T00:00:00Z")
            .unwrap();
        assert_eq!(artifact.manifest.subject.as_ref(), Some(&subject));
        assert_eq!(
            artifact.manifest.artifact_type.as_deref(),
            Some(media::IN_TOTO)
        );
        assert_eq!(artifact.manifest.config.media_type, media::OCI_EMPTY);
        assert_eq!(artifact.manifest.config.data.as_deref(), Some("e30="));
    }

    #[test]
    fn a_bad_digest_is_refused() {
        let mut p = provenance();
        p.inputs[0].digest = "md5:abc".into();
        assert!(p.statement().unwrap_err().to_string().contains("md5:abc"));
    }
}
