//! Building on a base image: skiff's layers on top of another image's, for a server that needs
//! more than `scratch` (a glibc build with ONNX Runtime's CUDA provider on a CUDA image).
//!
//! Like ko and jib, the base's layers are reused as they are (docker media types become their
//! OCI equals, the bytes unchanged), its environment and labels are kept under skiff's, and
//! skiff's entrypoint, command, health check, user and ports replace the base's. The manifest names the base in
//! the standard `org.opencontainers.image.base.*` annotations.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::layout::Layout;
use crate::media;
use crate::oci::{Descriptor, ImageManifest, Platform};

/// Annotation: the base image's reference.
pub const ANNOTATION_BASE_NAME: &str = "org.opencontainers.image.base.name";
/// Annotation: the base image's manifest digest.
pub const ANNOTATION_BASE_DIGEST: &str = "org.opencontainers.image.base.digest";

/// Puts the image tagged `base_tag` under the image tagged `tag`, both in the layout at
/// `layout_dir`, and tags the result `tag`; `base_name` is how the user named the base.
///
/// A multi-platform image is rebased platform by platform, each on the base's image for the
/// same platform; a single-platform base serves only its own platform.
pub fn rebase(layout_dir: &Path, tag: &str, base_tag: &str, base_name: &str) -> Result<Descriptor> {
    let layout = Layout::open(layout_dir)?;
    let (ours, base) = (layout.tagged(tag)?, layout.tagged(base_tag)?);
    let base_images: Vec<Descriptor> = if media::is_index(&base.media_type) {
        layout
            .read_index(&base)?
            .manifests
            .into_iter()
            .filter(|m| media::is_manifest(&m.media_type))
            .collect()
    } else {
        vec![base.clone()]
    };
    let base_for = |platform: Option<&Platform>| -> Result<&Descriptor> {
        match (platform, &base_images[..]) {
            (_, [only]) => Ok(only),
            (Some(platform), images) => images
                .iter()
                .find(|b| b.platform.as_ref().is_some_and(|p| p.matches(platform)))
                .ok_or_else(|| {
                    Error::Invalid(format!(
                        "the base image {base_name} has no {platform} image: pick a base image for {platform}, or leave that platform out"
                    ))
                }),
            (None, _) => Err(Error::Invalid(
                "the image to rebase names no platform; pack it again with --platform".into(),
            )),
        }
    };
    if !media::is_index(&ours.media_type) {
        let platform = config_platform(&layout, &layout.read_manifest(&ours)?)?;
        let mut desc = rebase_one(&layout, &ours, base_for(Some(&platform))?, base_name)?;
        desc.platform = ours.platform;
        layout.tag(&desc, tag)?;
        return Ok(desc);
    }
    let mut index = layout.read_index(&ours)?;
    for entry in &mut index.manifests {
        let rebased = rebase_one(
            &layout,
            entry,
            base_for(entry.platform.as_ref())?,
            base_name,
        )?;
        *entry = Descriptor {
            platform: entry.platform.take(),
            annotations: entry.annotations.take(),
            ..rebased
        };
    }
    let annotations = index.annotations.get_or_insert_with(BTreeMap::new);
    annotations.insert(ANNOTATION_BASE_NAME.into(), base_name.into());
    annotations.insert(ANNOTATION_BASE_DIGEST.into(), base.digest.clone());
    let bytes = serde_json::to_vec(&index).map_err(|e| Error::json("image index", e))?;
    let desc = layout.write_blob(media::OCI_INDEX, &bytes)?;
    layout.tag(&desc, tag)?;
    Ok(desc)
}

/// The platform an image's config names.
fn config_platform(layout: &Layout, manifest: &ImageManifest) -> Result<Platform> {
    serde_json::from_slice(&layout.read_blob(&manifest.config)?)
        .map_err(|e| Error::json(format!("image config {}", manifest.config.digest), e))
}

/// Puts the base image `base_desc` under the image `our_desc`; returns the new manifest.
fn rebase_one(
    layout: &Layout,
    our_desc: &Descriptor,
    base_desc: &Descriptor,
    base_name: &str,
) -> Result<Descriptor> {
    let (ours, base) = (
        layout.read_manifest(our_desc)?,
        layout.read_manifest(base_desc)?,
    );
    let config = |m: &ImageManifest| -> Result<Value> {
        serde_json::from_slice(&layout.read_blob(&m.config)?)
            .map_err(|e| Error::json(format!("image config {}", m.config.digest), e))
    };
    let (our_config, mut merged) = (config(&ours)?, config(&base)?);
    let platform = |c: &Value| {
        format!(
            "{}/{}",
            c["os"].as_str().unwrap_or("?"),
            c["architecture"].as_str().unwrap_or("?")
        )
    };
    if platform(&merged) != platform(&our_config) {
        return Err(Error::Invalid(format!(
            "the base image {base_name} is {}, but skiff's server is {}: pick a base image for {}",
            platform(&merged),
            platform(&our_config),
            platform(&our_config)
        )));
    }

    merged["created"] = our_config["created"].clone();
    let (ours_c, base_c) = (&our_config["config"], merged["config"].take());
    let mut container = match base_c {
        Value::Object(map) => map,
        _ => serde_json::Map::new(),
    };
    // The base's variables stay unless skiff sets the same one.
    let set: Vec<&str> = strings(&ours_c["Env"])
        .filter_map(|e| e.split_once('=').map(|(k, _)| k))
        .collect();
    let env: Vec<Value> = strings(&container.get("Env").cloned().unwrap_or_default())
        .filter(|e| !set.contains(&e.split_once('=').map_or(*e, |(k, _)| k)))
        .map(|e| Value::String(e.to_string()))
        .chain(ours_c["Env"].as_array().cloned().unwrap_or_default())
        .collect();
    container.insert("Env".into(), Value::Array(env));
    // A base's command would become arguments of skiff's entrypoint: skiff's replaces it.
    for key in ["Entrypoint", "Cmd", "Healthcheck", "User", "WorkingDir"] {
        container.insert(key.into(), ours_c[key].clone());
    }
    for key in ["ExposedPorts", "Labels"] {
        let mut map = container
            .get(key)
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        map.extend(ours_c[key].as_object().cloned().unwrap_or_default());
        container.insert(key.into(), Value::Object(map));
    }
    merged["config"] = Value::Object(container);
    merged["rootfs"] = json!({
        "type": "layers",
        "diff_ids": concat(&merged["rootfs"]["diff_ids"], &our_config["rootfs"]["diff_ids"]),
    });
    merged["history"] = concat(&merged["history"], &our_config["history"]);
    let base_layers = merged["rootfs"]["diff_ids"].as_array().map_or(0, Vec::len)
        - our_config["rootfs"]["diff_ids"]
            .as_array()
            .map_or(0, Vec::len);
    if base_layers != base.layers.len() {
        return Err(Error::Invalid(format!(
            "the base image {base_name} lists {} layers but {base_layers} diff_ids in its config: it is damaged; pick another base",
            base.layers.len()
        )));
    }

    let config_bytes = serde_json::to_vec(&merged).map_err(|e| Error::json("image config", e))?;
    let config_desc = layout.write_blob(media::OCI_CONFIG, &config_bytes)?;
    let layers = base
        .layers
        .iter()
        .map(|l| Descriptor {
            media_type: oci_layer_type(&l.media_type),
            ..l.clone()
        })
        .chain(ours.layers.iter().cloned())
        .collect();
    let mut annotations: BTreeMap<String, String> = ours.annotations.clone().unwrap_or_default();
    annotations.insert(ANNOTATION_BASE_NAME.into(), base_name.into());
    annotations.insert(ANNOTATION_BASE_DIGEST.into(), base_desc.digest.clone());
    let manifest = ImageManifest {
        schema_version: 2,
        media_type: Some(media::OCI_MANIFEST.into()),
        artifact_type: None,
        config: config_desc,
        layers,
        subject: None,
        annotations: Some(annotations),
    };
    let bytes = serde_json::to_vec(&manifest).map_err(|e| Error::json("image manifest", e))?;
    layout.write_blob(media::OCI_MANIFEST, &bytes)
}

fn strings(v: &Value) -> impl Iterator<Item = &str> {
    v.as_array().into_iter().flatten().filter_map(Value::as_str)
}

fn concat(a: &Value, b: &Value) -> Value {
    let mut all = a.as_array().cloned().unwrap_or_default();
    all.extend(b.as_array().cloned().unwrap_or_default());
    Value::Array(all)
}

/// Docker's layer media types as their OCI equals (same bytes).
fn oci_layer_type(media_type: &str) -> String {
    match media_type {
        media::DOCKER_LAYER_TAR_GZIP => media::OCI_LAYER_TAR_GZIP,
        "application/vnd.docker.image.rootfs.diff.tar" => media::OCI_LAYER_TAR,
        other => other,
    }
    .to_string()
}
