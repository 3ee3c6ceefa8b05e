//! CNCF ModelPack artifacts (<https://github.com/modelpack/model-spec>): the ONNX model as an OCI
//! artifact that modctl, KitOps, CRI-O image volumes and other ModelPack tools read.
//!
//! An artifact is an OCI image manifest with artifactType [`media::MODELPACK_MANIFEST`], a config
//! of type [`media::MODELPACK_CONFIG`] (the model's `descriptor`, its `config` with `format:
//! "onnx"`, and `modelfs` with one diff ID per layer), and one weight layer:
//!
//! ```text
//! layer  application/vnd.cncf.model.weight.v1.tar      an uncompressed tar holding model.onnx
//!        org.cncf.model.filepath: model.onnx
//!        org.cncf.model.file.metadata+json: {"name":"model.onnx","mode":420,...}
//!        org.cncf.model.file.mediatype.untested: false
//! ```
//!
//! **Why an uncompressed tar.** The spec allows a raw file, a tar, or a compressed tar. skiff
//! writes the tar form because it is what modctl builds by default (its raw form is opt-in) and
//! what a runtime that unpacks layers can unpack: CRI-O, which mounts ModelPack artifacts as
//! Kubernetes image volumes, extracts tar weight layers into the volume (cri-o/cri-o#9131), and
//! a layer unpacker that knows nothing of ModelPack still reads a tar (a raw layer needs one
//! that places the blob under its file path annotation). It is uncompressed because the spec
//! recommends weights without compression (they hardly compress, and decompressing costs every
//! pod start), and because then the layer's digest is its diff ID: nothing to keep in step.
//!
//! **The mounted folder.** Mounted as an image volume at `/mnt/models`, the artifact is one
//! file, `/mnt/models/model.onnx` ([`MODEL_FILE`]); `skiff-server --model-dir /mnt/models` serves
//! the one `.onnx` file of that folder.
//!
//! Writing is reproducible: the same model, names, labels and `created` give the same digests.
//! The tar entry's mtime is `created`, its owner 0:0 and its mode 0644.
//!
//! ```no_run
//! use std::collections::BTreeMap;
//! use std::path::Path;
//! use skiff_pack::modelpack::{self, ModelPackModel};
//!
//! # fn main() -> skiff_pack::Result<()> {
//! let onnx = std::fs::read("iris.onnx").unwrap();
//! let model = ModelPackModel {
//!     created: modelpack::created_from_env()?,
//!     ..ModelPackModel::new("iris", "1.0.0", &onnx)
//! };
//! let manifest = modelpack::write_modelpack(Path::new("out"), "v1", &model)?;
//! let layout = skiff_pack::Layout::open(Path::new("out"))?;
//! let (_, read) = layout.resolve("v1")?;
//! assert!(modelpack::is_modelpack(&read));
//! assert_eq!(modelpack::read_model(&layout, &read)?, onnx);
//! # let _ = manifest;
//! # Ok(())
//! # }
//! ```

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::entries::{Pick, read_tar_files};
use crate::error::{Error, Result};
use crate::layout::Layout;
use crate::media;
use crate::oci::{Descriptor, ImageManifest, sha256_digest};

/// Name of the model file in the artifact, and in the folder an image volume mounts.
pub const MODEL_FILE: &str = "model.onnx";

/// What goes into a ModelPack artifact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelPackModel<'a> {
    /// The model's name (the config's `descriptor.name`); not empty.
    pub name: &'a str,
    /// The model's version (`descriptor.version`); left out when empty.
    pub version: &'a str,
    /// The ONNX model bytes.
    pub model: &'a [u8],
    /// Creation time, RFC 3339 (`descriptor.createdAt`, the manifest's
    /// `org.opencontainers.image.created` and the file's mtime). [`created_from_env`] derives it
    /// from `SOURCE_DATE_EPOCH`, as skiff's images do.
    pub created: String,
    /// Who is responsible for the model (`descriptor.authors`), free text.
    pub authors: Vec<String>,
    /// Model family or lineage (`descriptor.family`), e.g. the estimator's family.
    pub family: Option<String>,
    /// Architecture (`config.architecture`), e.g. `linear` or `tree-ensemble`.
    pub architecture: Option<String>,
    /// Parameter count as `<count><K|M|B|T|Q>` (`config.paramSize`), e.g. `1.2K`; see [`param_size`].
    pub param_size: Option<String>,
    /// Computational precision (`config.precision`), e.g. `float32`, or several separated by commas.
    pub precision: Option<String>,
    /// skiff's metadata (`dev.skiff.model.*` keys of [`media`]), written as manifest annotations.
    pub labels: BTreeMap<String, String>,
}

impl<'a> ModelPackModel<'a> {
    /// A model with only the required parts, created at the epoch.
    pub fn new(name: &'a str, version: &'a str, model: &'a [u8]) -> ModelPackModel<'a> {
        ModelPackModel {
            name,
            version,
            model,
            created: "1970-01-01T00:00:00Z".into(),
            authors: Vec::new(),
            family: None,
            architecture: None,
            param_size: None,
            precision: None,
            labels: BTreeMap::new(),
        }
    }
}

/// A ModelPack config (`application/vnd.cncf.model.config.v1+json`), the parts skiff writes
/// and reads; other fields of a config written elsewhere are ignored on reading.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelConfig {
    /// General information about the model.
    pub descriptor: ModelDescriptor,
    /// Technical metadata.
    pub config: ModelSettings,
    /// The diff IDs of the layers.
    pub modelfs: ModelFs,
}

/// The config's `descriptor`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelDescriptor {
    /// RFC 3339 creation time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    /// Contacts of those responsible for the model.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub authors: Vec<String>,
    /// Model family or lineage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<String>,
    /// Name of the model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Version of the model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// The config's `config`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelSettings {
    /// Architecture of the model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub architecture: Option<String>,
    /// Format of the weights: `onnx` for skiff's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// Parameter count, `<count><scale>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub param_size: Option<String>,
    /// Computational precision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub precision: Option<String>,
}

/// The config's `modelfs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelFs {
    /// Always `layers`.
    #[serde(rename = "type")]
    pub kind: String,
    /// sha256 of each layer's uncompressed content, in layer order.
    pub diff_ids: Vec<String>,
}

/// The value of the [`media::MODELPACK_FILE_METADATA`] annotation.
#[derive(Serialize)]
struct FileMetadata<'a> {
    name: &'a str,
    mode: u32,
    uid: u32,
    gid: u32,
    size: u64,
    mtime: &'a str,
    typeflag: u8,
}

/// Creation time from `SOURCE_DATE_EPOCH` (default the epoch), as RFC 3339.
pub fn created_from_env() -> Result<String> {
    crate::image::created_from_env()
}

/// `count` parameters as the config's `paramSize`: `<count><K|M|B|T>` with at most one
/// decimal (`1.2K`, `35M`); under a thousand, in thousands (`0.1K`, at least `0.1K`).
pub fn param_size(count: u64) -> String {
    let scales = [(1e15, 'Q'), (1e12, 'T'), (1e9, 'B'), (1e6, 'M'), (1e3, 'K')];
    let (div, unit) = scales
        .into_iter()
        .find(|(div, _)| count as f64 >= *div)
        .unwrap_or((1e3, 'K'));
    let value = ((count as f64 / div) * 10.0).round().max(1.0) / 10.0;
    let text = format!("{value:.1}");
    format!("{}{unit}", text.strip_suffix(".0").unwrap_or(&text))
}

/// Writes `model` as a ModelPack artifact into the layout at `layout_dir` (created when
/// missing), tags it `tag`, and returns the manifest's descriptor.
pub fn write_modelpack(
    layout_dir: &Path,
    tag: &str,
    model: &ModelPackModel<'_>,
) -> Result<Descriptor> {
    check(model)?;
    let mtime = chrono::DateTime::parse_from_rfc3339(&model.created)
        .map(|t| t.timestamp())
        .ok()
        .filter(|secs| *secs >= 0)
        .ok_or_else(|| {
            Error::Invalid(format!(
                "created time {:?} is not an RFC 3339 time from 1970 on (e.g. 2025-01-01T00:00:00Z; modelpack::created_from_env derives it from SOURCE_DATE_EPOCH)",
                model.created
            ))
        })?;
    let layout = Layout::create_or_open(layout_dir)?;

    let tar = tar_one(MODEL_FILE, 0o644, mtime as u64, model.model)?;
    let mut layer = layout.write_blob(media::MODELPACK_WEIGHT_TAR, &tar)?;
    let metadata = serde_json::to_string(&FileMetadata {
        name: MODEL_FILE,
        mode: 0o644,
        uid: 0,
        gid: 0,
        size: model.model.len() as u64,
        mtime: &model.created,
        typeflag: b'0',
    })
    .map_err(|e| Error::json("ModelPack file metadata", e))?;
    layer.annotations = Some(BTreeMap::from([
        (
            media::MODELPACK_FILEPATH.to_string(),
            MODEL_FILE.to_string(),
        ),
        (media::MODELPACK_FILE_METADATA.to_string(), metadata),
        (
            media::MODELPACK_MEDIATYPE_UNTESTED.to_string(),
            "false".to_string(),
        ),
    ]));

    let config = ModelConfig {
        descriptor: ModelDescriptor {
            created_at: Some(model.created.clone()),
            authors: model.authors.clone(),
            family: model.family.clone(),
            name: Some(model.name.to_string()),
            version: (!model.version.is_empty()).then(|| model.version.to_string()),
        },
        config: ModelSettings {
            architecture: model.architecture.clone(),
            format: Some("onnx".into()),
            param_size: model.param_size.clone(),
            precision: model.precision.clone(),
        },
        modelfs: ModelFs {
            kind: "layers".into(),
            // the layer is an uncompressed tar: its diff ID is its digest
            diff_ids: vec![sha256_digest(&tar)],
        },
    };
    let config = serde_json::to_vec(&config).map_err(|e| Error::json("ModelPack config", e))?;
    let config = layout.write_blob(media::MODELPACK_CONFIG, &config)?;

    let mut annotations = model.labels.clone();
    annotations
        .entry(media::SKIFF_MODEL_NAME.to_string())
        .or_insert_with(|| model.name.to_string());
    annotations.insert(media::ANNOTATION_CREATED.to_string(), model.created.clone());
    let manifest = ImageManifest {
        schema_version: 2,
        media_type: Some(media::OCI_MANIFEST.into()),
        artifact_type: Some(media::MODELPACK_MANIFEST.into()),
        config,
        layers: vec![layer],
        subject: None,
        annotations: Some(annotations),
    };
    let bytes = serde_json::to_vec(&manifest).map_err(|e| Error::json("ModelPack manifest", e))?;
    let mut desc = layout.write_blob(media::OCI_MANIFEST, &bytes)?;
    desc.artifact_type = Some(media::MODELPACK_MANIFEST.into());
    layout.tag(&desc, tag)?;
    Ok(desc)
}

fn check(model: &ModelPackModel<'_>) -> Result<()> {
    if model.name.trim().is_empty() {
        return Err(Error::Invalid(
            "the model name is empty (pass a name for the ModelPack artifact)".into(),
        ));
    }
    if model.model.is_empty() {
        return Err(Error::Invalid(
            "the ONNX model is empty (pass the bytes of a .onnx file)".into(),
        ));
    }
    if let Some(size) = &model.param_size
        && !valid_param_size(size)
    {
        return Err(Error::Invalid(format!(
            "paramSize {size:?} is not <count><K|M|B|T|Q> with at most one decimal (e.g. 1.2K, 35M; modelpack::param_size writes one)"
        )));
    }
    if let Some(precision) = &model.precision
        && let Some(bad) = precision
            .split(',')
            .find(|p| !PRECISIONS.contains(&p.trim()))
    {
        return Err(Error::Invalid(format!(
            "precision {bad:?} is not one the ModelPack spec names (use one or more of {}, separated by commas)",
            PRECISIONS.join(", ")
        )));
    }
    if let Some(key) = model.labels.keys().find(|k| k.trim().is_empty()) {
        return Err(Error::Invalid(format!(
            "annotation key {key:?} is empty (name each label)"
        )));
    }
    Ok(())
}

/// The precisions of the spec's `config.precision` table.
const PRECISIONS: [&str; 18] = [
    "float32",
    "float64",
    "float16",
    "bfloat16",
    "float8_e4m3",
    "float8_e5m2",
    "complex32",
    "complex64",
    "complex128",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "bool",
];

fn valid_param_size(size: &str) -> bool {
    let Some(count) = size.strip_suffix(|c: char| "QTBMKqtbmk".contains(c)) else {
        return false;
    };
    let (whole, decimal) = count.split_once('.').unwrap_or((count, "0"));
    !whole.is_empty()
        && whole.bytes().all(|b| b.is_ascii_digit())
        && decimal.len() == 1
        && decimal.bytes().all(|b| b.is_ascii_digit())
}

/// A tar holding one regular file, reproducibly (no owner names, given mtime).
fn tar_one(path: &str, mode: u32, mtime: u64, data: &[u8]) -> Result<Vec<u8>> {
    let mut header = tar::Header::new_ustar();
    header
        .set_path(path)
        .map_err(|e| Error::Invalid(format!("cannot put {path} in a tar: {e}")))?;
    header.set_entry_type(tar::EntryType::Regular);
    header.set_mode(mode);
    header.set_mtime(mtime);
    header.set_uid(0);
    header.set_gid(0);
    header
        .set_username("")
        .and_then(|()| header.set_groupname(""))
        .map_err(|e| Error::Invalid(format!("cannot write tar header for {path}: {e}")))?;
    header.set_size(data.len() as u64);
    header.set_cksum();
    let mut builder = tar::Builder::new(Vec::new());
    builder
        .append(&header, data)
        .map_err(|e| Error::Invalid(format!("cannot write {path} into a tar: {e}")))?;
    builder
        .into_inner()
        .map_err(|e| Error::Invalid(format!("cannot finish a tar: {e}")))
}

/// Whether `manifest` is a ModelPack artifact: its artifactType, or else its config's media
/// type, is ModelPack's.
pub fn is_modelpack(manifest: &ImageManifest) -> bool {
    manifest.artifact_type.as_deref() == Some(media::MODELPACK_MANIFEST)
        || manifest.config.media_type == media::MODELPACK_CONFIG
}

/// Reads a ModelPack artifact's config, checked against its descriptor.
pub fn read_config(layout: &Layout, manifest: &ImageManifest) -> Result<ModelConfig> {
    let bytes = layout.read_blob(&manifest.config)?;
    serde_json::from_slice(&bytes)
        .map_err(|e| Error::json(format!("ModelPack config {}", manifest.config.digest), e))
}

/// The weight layer media types this module reads.
const WEIGHT_TYPES: [&str; 4] = [
    media::MODELPACK_WEIGHT_RAW,
    media::MODELPACK_WEIGHT_TAR,
    media::MODELPACK_WEIGHT_TAR_GZIP,
    media::MODELPACK_WEIGHT_TAR_ZSTD,
];

/// The file path a layer carries: ModelPack's annotation, else the OCI title (as oras writes it).
fn layer_path(layer: &Descriptor) -> Option<&str> {
    let annotations = layer.annotations.as_ref()?;
    annotations
        .get(media::MODELPACK_FILEPATH)
        .or_else(|| annotations.get(media::ANNOTATION_TITLE))
        .map(String::as_str)
}

fn is_onnx(path: &str) -> bool {
    path.to_ascii_lowercase().ends_with(".onnx")
}

/// The ONNX bytes of a ModelPack artifact's one `.onnx` weight layer (by its
/// `org.cncf.model.filepath`): a raw layer as it is, a tar or tar+gzip layer's file. The layer
/// is checked against its digest first.
pub fn read_model(layout: &Layout, manifest: &ImageManifest) -> Result<Vec<u8>> {
    let dir = layout.dir().display();
    if !is_modelpack(manifest) {
        return Err(Error::Invalid(format!(
            "the manifest in {dir} is not a ModelPack artifact (artifactType {}, config {}; expected {})",
            manifest.artifact_type.as_deref().unwrap_or("none"),
            manifest.config.media_type,
            media::MODELPACK_MANIFEST
        )));
    }
    let weights: Vec<&Descriptor> = manifest
        .layers
        .iter()
        .filter(|l| WEIGHT_TYPES.contains(&l.media_type.as_str()))
        .collect();
    let onnx: Vec<(&Descriptor, &str)> = weights
        .iter()
        .filter_map(|l| layer_path(l).filter(|p| is_onnx(p)).map(|p| (*l, p)))
        .collect();
    let (layer, path) = match onnx[..] {
        [one] => one,
        [] => {
            let names: Vec<&str> = weights
                .iter()
                .map(|l| layer_path(l).unwrap_or("unnamed"))
                .collect();
            return Err(Error::Invalid(format!(
                "the ModelPack artifact in {dir} has no ONNX weight (weights: {}; skiff serves a weight layer whose {} ends in .onnx)",
                if names.is_empty() {
                    "none".to_string()
                } else {
                    names.join(", ")
                },
                media::MODELPACK_FILEPATH
            )));
        }
        _ => {
            let names: Vec<&str> = onnx.iter().map(|(_, p)| *p).collect();
            return Err(Error::Invalid(format!(
                "the ModelPack artifact in {dir} has several ONNX weights ({}); skiff serves one model per artifact (pack each model on its own)",
                names.join(", ")
            )));
        }
    };
    let blob = layout.read_blob(layer)?;
    let reader: Box<dyn Read + '_> = match layer.media_type.as_str() {
        media::MODELPACK_WEIGHT_RAW => return Ok(blob),
        media::MODELPACK_WEIGHT_TAR => Box::new(&blob[..]),
        media::MODELPACK_WEIGHT_TAR_GZIP => Box::new(flate2::read::GzDecoder::new(&blob[..])),
        other => {
            return Err(Error::Invalid(format!(
                "ONNX weight {path} in {dir} is a {other} layer, which skiff does not read (repack it as {} or {})",
                media::MODELPACK_WEIGHT_TAR,
                media::MODELPACK_WEIGHT_RAW
            )));
        }
    };
    file_in_tar(reader, layer, path)
}

/// The regular file at `path` in a tar layer; failing that, its one `.onnx` file.
fn file_in_tar(reader: impl Read, layer: &Descriptor, path: &str) -> Result<Vec<u8>> {
    let wanted = path.trim_start_matches("./").trim_start_matches('/');
    let mut found = read_tar_files(reader, layer, |name| {
        if name == wanted {
            Pick::Done
        } else if is_onnx(name) {
            Pick::Keep
        } else {
            Pick::Skip
        }
    })?;
    if let Some(i) = found.iter().position(|(name, _)| name == wanted) {
        return Ok(found.swap_remove(i).1);
    }
    match found.len() {
        1 => Ok(found.remove(0).1),
        0 => Err(Error::CorruptBlob {
            digest: layer.digest.clone(),
            reason: format!("the tar layer for {path} holds no .onnx file"),
        }),
        _ => Err(Error::CorruptBlob {
            digest: layer.digest.clone(),
            reason: format!(
                "the tar layer for {path} holds no file of that name but several .onnx files ({})",
                found
                    .iter()
                    .map(|(n, _)| n.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ONNX: &[u8] = b"\x08\x07\x12\x04skl2onnx pretend onnx model bytes";

    fn model(created: &str) -> ModelPackModel<'static> {
        ModelPackModel {
            created: created.into(),
            family: Some("logistic-regression".into()),
            precision: Some("float32".into()),
            param_size: Some(param_size(15)),
            labels: BTreeMap::from([(
                media::SKIFF_MODEL_TASK.to_string(),
                "classification".to_string(),
            )]),
            ..ModelPackModel::new("iris", "1.0.0", ONNX)
        }
    }

    fn write(dir: &Path, model: &ModelPackModel<'_>) -> (Layout, Descriptor, ImageManifest) {
        let desc = write_modelpack(dir, "v1", model).unwrap();
        let layout = Layout::open(dir).unwrap();
        let (resolved, manifest) = layout.resolve("v1").unwrap();
        assert_eq!(resolved.digest, desc.digest);
        (layout, desc, manifest)
    }

    #[test]
    fn round_trip_through_a_layout() {
        let tmp = tempfile::tempdir().unwrap();
        let (layout, desc, manifest) = write(tmp.path(), &model("2025-01-02T03:04:05Z"));
        assert!(is_modelpack(&manifest));
        assert_eq!(read_model(&layout, &manifest).unwrap(), ONNX);
        assert_eq!(
            desc.artifact_type.as_deref(),
            Some(media::MODELPACK_MANIFEST)
        );

        let config = read_config(&layout, &manifest).unwrap();
        assert_eq!(config.descriptor.name.as_deref(), Some("iris"));
        assert_eq!(config.descriptor.version.as_deref(), Some("1.0.0"));
        assert_eq!(
            config.descriptor.created_at.as_deref(),
            Some("2025-01-02T03:04:05Z")
        );
        assert_eq!(config.config.format.as_deref(), Some("onnx"));
        assert_eq!(config.config.param_size.as_deref(), Some("0.1K"));
        // an uncompressed tar's diff ID is its digest
        assert_eq!(config.modelfs.kind, "layers");
        assert_eq!(config.modelfs.diff_ids, [manifest.layers[0].digest.clone()]);

        let annotations = manifest.annotations.as_ref().unwrap();
        assert_eq!(annotations[media::SKIFF_MODEL_TASK], "classification");
        assert_eq!(annotations[media::SKIFF_MODEL_NAME], "iris");
        assert_eq!(
            annotations[media::ANNOTATION_CREATED],
            "2025-01-02T03:04:05Z"
        );

        // the tar holds model.onnx with the created time as mtime, owned by root, mode 0644
        let tar = layout.read_blob(&manifest.layers[0]).unwrap();
        let mut archive = tar::Archive::new(&tar[..]);
        let entries: Vec<_> = archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                let path = e.path().unwrap().display().to_string();
                (
                    path,
                    h.mtime().unwrap(),
                    h.uid().unwrap(),
                    h.mode().unwrap(),
                )
            })
            .collect();
        assert_eq!(entries, [("model.onnx".to_string(), 1735787045, 0, 0o644)]);
        let metadata: serde_json::Value = serde_json::from_str(
            &manifest.layers[0].annotations.as_ref().unwrap()[media::MODELPACK_FILE_METADATA],
        )
        .unwrap();
        assert_eq!(metadata["size"], ONNX.len());
        assert_eq!(metadata["typeflag"], 48);
    }

    #[test]
    fn same_input_same_digests_and_created_changes_them() {
        let tmp = tempfile::tempdir().unwrap();
        let a = write(&tmp.path().join("a"), &model("2025-01-01T00:00:00Z")).1;
        let b = write(&tmp.path().join("b"), &model("2025-01-01T00:00:00Z")).1;
        assert_eq!(a, b);
        let c = write(&tmp.path().join("c"), &model("2025-01-01T00:00:01Z")).1;
        assert_ne!(a.digest, c.digest);
    }

    #[test]
    fn bad_inputs_are_one_line_errors() {
        let tmp = tempfile::tempdir().unwrap();
        let cases: [(ModelPackModel<'_>, &str); 6] = [
            (ModelPackModel::new("", "1", ONNX), "model name is empty"),
            (ModelPackModel::new("iris", "1", b""), "ONNX model is empty"),
            (model("yesterday"), "not an RFC 3339 time"),
            (
                ModelPackModel {
                    param_size: Some("12 params".into()),
                    ..model("2025-01-01T00:00:00Z")
                },
                "paramSize",
            ),
            (
                ModelPackModel {
                    precision: Some("float32,fp4".into()),
                    ..model("2025-01-01T00:00:00Z")
                },
                "precision \"fp4\"",
            ),
            (
                ModelPackModel {
                    labels: BTreeMap::from([(String::new(), "x".into())]),
                    ..model("2025-01-01T00:00:00Z")
                },
                "annotation key",
            ),
        ];
        for (m, expected) in cases {
            let err = write_modelpack(tmp.path(), "v1", &m)
                .unwrap_err()
                .to_string();
            assert!(err.contains(expected), "{err}");
            assert!(!err.contains('\n'), "{err}");
        }
    }

    #[test]
    fn param_sizes_follow_the_spec() {
        assert_eq!(param_size(0), "0.1K");
        assert_eq!(param_size(15), "0.1K");
        assert_eq!(param_size(1_234), "1.2K");
        assert_eq!(param_size(35_000_000), "35M");
        assert_eq!(param_size(6_700_000_000), "6.7B");
        for ok in ["0.1K", "1.2K", "35M", "6.7B", "1.0t", "100m"] {
            assert!(valid_param_size(ok), "{ok}");
        }
        for bad in ["", "K", "1.25K", "1.K", "12", "1.2X", "-1K"] {
            assert!(!valid_param_size(bad), "{bad}");
        }
    }

    /// Replaces the manifest's layers with `layers` (blobs written to the layout).
    fn with_layers(
        layout: &Layout,
        manifest: &ImageManifest,
        layers: &[(&str, &str, &[u8])],
    ) -> ImageManifest {
        let mut m = manifest.clone();
        m.layers = layers
            .iter()
            .map(|(media_type, path, bytes)| {
                let mut d = layout.write_blob(media_type, bytes).unwrap();
                d.annotations = Some(BTreeMap::from([(
                    media::MODELPACK_FILEPATH.to_string(),
                    path.to_string(),
                )]));
                d
            })
            .collect();
        m
    }

    #[test]
    fn reads_raw_and_gzip_layers_of_other_tools() {
        let tmp = tempfile::tempdir().unwrap();
        let (layout, _, manifest) = write(tmp.path(), &model("2025-01-01T00:00:00Z"));
        let raw = with_layers(
            &layout,
            &manifest,
            &[
                (media::MODELPACK_WEIGHT_RAW, "README.md", b"docs"),
                (media::MODELPACK_WEIGHT_RAW, "models/iris.ONNX", ONNX),
            ],
        );
        assert_eq!(read_model(&layout, &raw).unwrap(), ONNX);

        let tar = tar_one("models/iris.onnx", 0o600, 0, ONNX).unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &tar).unwrap();
        let gz = gz.finish().unwrap();
        let gzipped = with_layers(
            &layout,
            &manifest,
            &[(media::MODELPACK_WEIGHT_TAR_GZIP, "models/iris.onnx", &gz)],
        );
        assert_eq!(read_model(&layout, &gzipped).unwrap(), ONNX);
    }

    #[test]
    fn missing_several_and_corrupt_weights_are_named() {
        let tmp = tempfile::tempdir().unwrap();
        let (layout, _, manifest) = write(tmp.path(), &model("2025-01-01T00:00:00Z"));
        let none = with_layers(
            &layout,
            &manifest,
            &[(media::MODELPACK_WEIGHT_RAW, "model.safetensors", b"w")],
        );
        let err = read_model(&layout, &none).unwrap_err().to_string();
        assert!(
            err.contains("no ONNX weight (weights: model.safetensors"),
            "{err}"
        );

        let several = with_layers(
            &layout,
            &manifest,
            &[
                (media::MODELPACK_WEIGHT_RAW, "a.onnx", b"a"),
                (media::MODELPACK_WEIGHT_RAW, "b.onnx", b"b"),
            ],
        );
        let err = read_model(&layout, &several).unwrap_err().to_string();
        assert!(
            err.contains("several ONNX weights (a.onnx, b.onnx)"),
            "{err}"
        );

        let zstd = with_layers(
            &layout,
            &manifest,
            &[(media::MODELPACK_WEIGHT_TAR_ZSTD, "m.onnx", b"z")],
        );
        let err = read_model(&layout, &zstd).unwrap_err().to_string();
        assert!(
            err.contains("tar+zstd layer, which skiff does not read"),
            "{err}"
        );

        // a layer whose bytes changed on disk fails its digest
        let path = layout.blob_path(&manifest.layers[0].digest).unwrap();
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&path, bytes).unwrap();
        let err = read_model(&layout, &manifest).unwrap_err().to_string();
        assert!(err.contains("is corrupt: content hashes to"), "{err}");
        assert!(!err.contains('\n'), "{err}");

        // an image is not an artifact
        let mut image = manifest.clone();
        image.artifact_type = None;
        image.config.media_type = media::OCI_CONFIG.into();
        assert!(!is_modelpack(&image));
        let err = read_model(&layout, &image).unwrap_err().to_string();
        assert!(err.contains("not a ModelPack artifact"), "{err}");
    }

    #[test]
    fn a_tar_that_escapes_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let (layout, _, manifest) = write(tmp.path(), &model("2025-01-01T00:00:00Z"));
        let mut header = tar::Header::new_gnu();
        header.set_size(ONNX.len() as u64);
        header.set_entry_type(tar::EntryType::Regular);
        // set_path refuses `..`; write the name bytes as a hostile tool would
        header.as_gnu_mut().unwrap().name[..13].copy_from_slice(b"../evil.onnx\0");
        header.set_cksum();
        let mut builder = tar::Builder::new(Vec::new());
        builder.append(&header, ONNX).unwrap();
        let tar = builder.into_inner().unwrap();
        let evil = with_layers(
            &layout,
            &manifest,
            &[(media::MODELPACK_WEIGHT_TAR, "evil.onnx", &tar)],
        );
        let err = read_model(&layout, &evil).unwrap_err().to_string();
        assert!(err.contains("climbs out"), "{err}");
    }
}
