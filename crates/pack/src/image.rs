//! Builds a runnable server image (scratch base, server layer, model layer) into a layout.
//!
//! Packing is reproducible: tar entries are sorted with zeroed mtime, uid, gid and owner names,
//! gzip headers carry mtime 0, and `created` comes from `SOURCE_DATE_EPOCH` (default the epoch).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::Path;

use flate2::{Compression, GzBuilder};
use serde::Serialize;

use crate::entries::{Pick, read_tar_files};
use crate::error::{Error, Result};
use crate::layout::Layout;
use crate::media;
use crate::oci::{Descriptor, ImageIndex, Platform, sha256_digest};

/// What goes into a server image.
#[derive(Debug, Clone)]
pub struct ServerImage<'a> {
    /// Statically linked server executables, one per platform. One gives an image manifest;
    /// more give an image index with a manifest per platform, all sharing the model layer.
    pub servers: Vec<ServerBinary<'a>>,
    /// The ONNX model bytes.
    pub model: &'a [u8],
    /// Name the server serves the model under.
    pub model_name: &'a str,
    /// skiff version, recorded in the annotations.
    pub version: &'a str,
    /// Extra labels and annotations (model task etc.).
    pub labels: BTreeMap<String, String>,
}

/// The server executable for one platform.
#[derive(Debug, Clone)]
pub struct ServerBinary<'a> {
    /// The platform it runs on, e.g. linux/amd64.
    pub platform: Platform,
    /// Path of the static executable.
    pub path: &'a Path,
}

/// Writes `image` into the layout at `layout_dir` (created when missing), tags it `tag`,
/// and returns the descriptor of the manifest (one platform) or the index (several).
pub fn write_server_image(
    layout_dir: &Path,
    tag: &str,
    image: &ServerImage<'_>,
) -> Result<Descriptor> {
    let created = created_from_env()?;
    write_server_image_at(layout_dir, tag, image, &created)
}

/// The image's creation time: SOURCE_DATE_EPOCH (default the epoch) as RFC 3339, so that the
/// same inputs make the same image.
pub fn created_from_env() -> Result<String> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(value) if !value.trim().is_empty() => {
            let secs: i64 = value.trim().parse().map_err(|_| {
                Error::Invalid(format!(
                    "SOURCE_DATE_EPOCH={value:?} is not a whole number of seconds since 1970 (unset it or set e.g. SOURCE_DATE_EPOCH=$(git log -1 --format=%ct))"
                ))
            })?;
            rfc3339(secs)
        }
        _ => rfc3339(0),
    }
}

/// Seconds since the epoch as `YYYY-MM-DDTHH:MM:SSZ` (UTC).
pub(crate) fn rfc3339(secs: i64) -> Result<String> {
    let time = chrono::DateTime::from_timestamp(secs, 0).ok_or_else(|| {
        Error::Invalid(format!(
            "SOURCE_DATE_EPOCH={secs} is out of range (use seconds since 1970)"
        ))
    })?;
    Ok(time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

fn write_server_image_at(
    layout_dir: &Path,
    tag: &str,
    image: &ServerImage<'_>,
    created: &str,
) -> Result<Descriptor> {
    if image.model_name.is_empty() {
        return Err(Error::Invalid(
            "the model name is empty (pass a name for the served model)".into(),
        ));
    }
    if image.servers.is_empty() {
        return Err(Error::Invalid(
            "no platform to build the image for (pass at least one, e.g. linux/amd64)".into(),
        ));
    }
    for (i, server) in image.servers.iter().enumerate() {
        if image.servers[..i]
            .iter()
            .any(|s| s.platform == server.platform)
        {
            return Err(Error::Invalid(format!(
                "platform {} is given twice (name each platform once)",
                server.platform
            )));
        }
    }
    let servers = image
        .servers
        .iter()
        .map(|server| read_server_binary(server).map(|bytes| (&server.platform, bytes)))
        .collect::<Result<Vec<_>>>()?;

    let layout = Layout::create_or_open(layout_dir)?;
    let model_tar = tar_files(&[TarFile {
        path: media::MODEL_PATH.trim_start_matches('/'),
        mode: 0o644,
        data: image.model,
    }])?;
    let model_layer = layout.write_blob(media::OCI_LAYER_TAR_GZIP, &gzip(&model_tar)?)?;
    let model_diff_id = sha256_digest(&model_tar);

    let mut labels = BTreeMap::from([
        (
            media::ANNOTATION_TITLE.to_string(),
            image.model_name.to_string(),
        ),
        (
            media::ANNOTATION_VERSION.to_string(),
            image.version.to_string(),
        ),
        (media::ANNOTATION_CREATED.to_string(), created.to_string()),
        (
            media::SKIFF_MODEL_NAME.to_string(),
            image.model_name.to_string(),
        ),
        (
            media::SKIFF_MODEL_PATH.to_string(),
            media::MODEL_PATH.to_string(),
        ),
        (media::SKIFF_VERSION.to_string(), image.version.to_string()),
    ]);
    labels.extend(image.labels.clone());

    let mut manifests = Vec::new();
    for (platform, server) in servers {
        let server_tar = tar_files(&[TarFile {
            path: media::SERVER_PATH.trim_start_matches('/'),
            mode: 0o755,
            data: &server,
        }])?;
        let server_layer = layout.write_blob(media::OCI_LAYER_TAR_GZIP, &gzip(&server_tar)?)?;
        let config = ImageConfig {
            created,
            architecture: &platform.architecture,
            os: &platform.os,
            variant: platform.variant.as_deref(),
            config: ContainerConfig {
                user: media::SERVER_USER,
                exposed_ports: [media::SERVER_PORT, media::GRPC_PORT]
                    .iter()
                    .map(|port| (format!("{port}/tcp"), serde_json::Map::new()))
                    .collect(),
                env: vec![format!("PORT={}", media::SERVER_PORT)],
                // The model is the command, so a platform that passes its own arguments
                // (KServe's `--model_dir=/mnt/models`) replaces it and keeps the server.
                entrypoint: vec![media::SERVER_PATH.to_string()],
                cmd: vec![
                    "--name".to_string(),
                    image.model_name.to_string(),
                    media::MODEL_PATH.to_string(),
                ],
                healthcheck: Healthcheck {
                    test: ["CMD", media::SERVER_PATH, "--probe", "/v2/health/live"],
                    interval: 10_000_000_000,
                    timeout: 3_000_000_000,
                    retries: 3,
                },
                working_dir: "/",
                labels: &labels,
            },
            rootfs: RootFs {
                kind: "layers",
                diff_ids: vec![sha256_digest(&server_tar), model_diff_id.clone()],
            },
            history: vec![
                History {
                    created,
                    created_by: format!("skiff {} pack: server", image.version),
                },
                History {
                    created,
                    created_by: format!("skiff {} pack: model {}", image.version, image.model_name),
                },
            ],
        };
        let config_bytes =
            serde_json::to_vec(&config).map_err(|e| Error::json("image config", e))?;
        let manifest = crate::oci::ImageManifest {
            schema_version: 2,
            media_type: Some(media::OCI_MANIFEST.to_string()),
            artifact_type: None,
            config: layout.write_blob(media::OCI_CONFIG, &config_bytes)?,
            layers: vec![server_layer, model_layer.clone()],
            subject: None,
            annotations: Some(labels.clone()),
        };
        let manifest_bytes =
            serde_json::to_vec(&manifest).map_err(|e| Error::json("image manifest", e))?;
        let mut manifest_desc = layout.write_blob(media::OCI_MANIFEST, &manifest_bytes)?;
        manifest_desc.platform = Some(platform.clone());
        manifests.push(manifest_desc);
    }

    let tagged = if manifests.len() == 1 {
        manifests.remove(0)
    } else {
        let index = ImageIndex {
            manifests,
            annotations: Some(labels),
            ..ImageIndex::default()
        };
        let index_bytes = serde_json::to_vec(&index).map_err(|e| Error::json("image index", e))?;
        layout.write_blob(media::OCI_INDEX, &index_bytes)?
    };
    layout.tag(&tagged, tag)?;
    Ok(tagged)
}

/// Reads a server executable, checking that it is one for its platform.
fn read_server_binary(server: &ServerBinary<'_>) -> Result<Vec<u8>> {
    let path = server.path;
    let bytes = std::fs::read(path).map_err(|e| Error::io("read server binary", path, e))?;
    if bytes.is_empty() {
        return Err(Error::Invalid(format!(
            "server binary {} is empty (build skiff-server first)",
            path.display()
        )));
    }
    if !bytes.starts_with(b"\x7fELF") {
        tracing::warn!(
            path = %path.display(),
            "the server binary is not an ELF executable; the image will not run"
        );
    } else if let Some(machine) = elf_machine(&bytes)
        && elf_machine_of(&server.platform).is_some_and(|wanted| wanted != machine)
    {
        return Err(Error::Invalid(format!(
            "server binary {} is not built for {} (ELF machine {machine:#x}; build it with images/build-server.sh RUNTIME_DIR {})",
            path.display(),
            server.platform,
            server.platform
        )));
    }
    Ok(bytes)
}

/// `e_machine` of a little-endian ELF file.
fn elf_machine(bytes: &[u8]) -> Option<u16> {
    // EI_DATA = 1: little-endian; e_machine is the u16 at offset 18
    (bytes.get(5) == Some(&1)).then_some(())?;
    Some(u16::from_le_bytes(bytes.get(18..20)?.try_into().ok()?))
}

/// The ELF `e_machine` a platform's executables have.
fn elf_machine_of(platform: &Platform) -> Option<u16> {
    match platform.architecture.as_str() {
        "amd64" => Some(0x3e),
        "arm64" => Some(0xb7),
        _ => None,
    }
}

#[derive(Serialize)]
struct ImageConfig<'a> {
    created: &'a str,
    architecture: &'a str,
    os: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    variant: Option<&'a str>,
    config: ContainerConfig<'a>,
    rootfs: RootFs,
    history: Vec<History<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ContainerConfig<'a> {
    user: &'a str,
    exposed_ports: BTreeMap<String, serde_json::Map<String, serde_json::Value>>,
    env: Vec<String>,
    entrypoint: Vec<String>,
    cmd: Vec<String>,
    healthcheck: Healthcheck,
    working_dir: &'a str,
    labels: &'a BTreeMap<String, String>,
}

/// Docker's health check of a container (durations in nanoseconds): the server probes its
/// own liveness, as a scratch image has no curl.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Healthcheck {
    test: [&'static str; 4],
    interval: u64,
    timeout: u64,
    retries: u32,
}

#[derive(Serialize)]
struct RootFs {
    #[serde(rename = "type")]
    kind: &'static str,
    diff_ids: Vec<String>,
}

#[derive(Serialize)]
struct History<'a> {
    created: &'a str,
    created_by: String,
}

pub(crate) struct TarFile<'a> {
    pub(crate) path: &'a str,
    pub(crate) mode: u32,
    pub(crate) data: &'a [u8],
}

/// A reproducible tar: parent directories first, entries sorted, no times or owners.
pub(crate) fn tar_files(files: &[TarFile<'_>]) -> Result<Vec<u8>> {
    let mut dirs = std::collections::BTreeSet::new();
    for file in files {
        let mut parent = Path::new(file.path).parent();
        while let Some(p) = parent.filter(|p| !p.as_os_str().is_empty()) {
            dirs.insert(format!("{}/", p.display()));
            parent = p.parent();
        }
    }
    // BTreeMap orders by path; a directory `model/` sorts before `model/model.onnx`
    let mut entries: BTreeMap<String, Option<&TarFile<'_>>> =
        dirs.into_iter().map(|d| (d, None)).collect();
    for file in files {
        entries.insert(file.path.to_string(), Some(file));
    }
    let mut builder = tar::Builder::new(Vec::new());
    for (path, file) in entries {
        let mut header = tar::Header::new_ustar();
        header
            .set_path(&path)
            .map_err(|e| Error::Invalid(format!("cannot put {path} in a tar: {e}")))?;
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        header
            .set_username("")
            .and_then(|()| header.set_groupname(""))
            .map_err(|e| Error::Invalid(format!("cannot write tar header for {path}: {e}")))?;
        let data: &[u8] = match file {
            Some(file) => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(file.mode);
                header.set_size(file.data.len() as u64);
                file.data
            }
            None => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(0o755);
                header.set_size(0);
                &[]
            }
        };
        header.set_cksum();
        builder
            .append(&header, data)
            .map_err(|e| Error::Invalid(format!("cannot write {path} into a tar: {e}")))?;
    }
    builder
        .into_inner()
        .map_err(|e| Error::Invalid(format!("cannot finish a tar: {e}")))
}

fn gzip(data: &[u8]) -> Result<Vec<u8>> {
    let mut encoder = GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), Compression::default());
    encoder
        .write_all(data)
        .and_then(|()| encoder.finish())
        .map_err(|e| Error::Invalid(format!("cannot gzip a layer: {e}")))
}

/// Reads the ONNX model out of the image tagged `tag` in the layout at `layout_dir`.
pub fn read_model(layout_dir: &Path, tag: &str) -> Result<Vec<u8>> {
    let layout = Layout::open(layout_dir)?;
    let (_, manifest) = layout.resolve(tag)?;
    if crate::modelpack::is_modelpack(&manifest) {
        return crate::modelpack::read_model(&layout, &manifest);
    }
    // A component artifact's model is the component (beside it, code precompiled for it).
    if let Some(layer) = manifest
        .layers
        .iter()
        .find(|l| l.media_type == media::WASM_LAYER)
    {
        return layout.read_blob(layer);
    }
    let wanted = media::MODEL_PATH.trim_start_matches('/');
    // the model layer is the last one skiff writes; look from the top down
    for layer in manifest.layers.iter().rev() {
        let blob = layout.read_blob(layer)?;
        let reader: Box<dyn Read + '_> = match layer.media_type.as_str() {
            media::OCI_LAYER_TAR_GZIP | media::DOCKER_LAYER_TAR_GZIP => {
                Box::new(flate2::read::GzDecoder::new(&blob[..]))
            }
            media::OCI_LAYER_TAR => Box::new(&blob[..]),
            _ => continue,
        };
        let wanted_only = |name: &str| {
            if name == wanted {
                Pick::Done
            } else {
                Pick::Skip
            }
        };
        if let Some((_, model)) = read_tar_files(reader, layer, wanted_only)?.pop() {
            return Ok(model);
        }
    }
    Err(Error::MissingContent {
        image: format!("oci:{}:{tag}", layout_dir.display()),
        what: format!("model at {}", media::MODEL_PATH),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn amd64(path: &Path) -> ServerBinary<'_> {
        ServerBinary {
            platform: Platform::parse("linux/amd64").unwrap(),
            path,
        }
    }

    fn image<'a>(server: &'a Path, model: &'a [u8]) -> ServerImage<'a> {
        ServerImage {
            servers: vec![amd64(server)],
            model,
            model_name: "iris",
            version: "0.1.0",
            labels: BTreeMap::from([(
                media::SKIFF_MODEL_TASK.to_string(),
                "classification".to_string(),
            )]),
        }
    }

    #[test]
    fn a_layer_reaching_outside_the_root_is_refused_naming_it() {
        let tmp = tempfile::tempdir().unwrap();
        let layout = Layout::create_or_open(tmp.path()).unwrap();
        // A header written by hand: tar's builder itself refuses `..`.
        let mut header = tar::Header::new_gnu();
        header.as_gnu_mut().unwrap().name[..16].copy_from_slice(b"../../etc/passwd");
        header.set_size(4);
        header.set_mode(0o644);
        header.set_cksum();
        let mut tar = header.as_bytes().to_vec();
        tar.extend_from_slice(b"root");
        tar.resize(tar.len() + 512 - 4 + 1024, 0);
        let layer = layout.write_blob(media::OCI_LAYER_TAR, &tar).unwrap();
        let config = layout.write_blob(media::OCI_CONFIG, b"{}").unwrap();
        let manifest = crate::oci::ImageManifest {
            schema_version: 2,
            media_type: Some(media::OCI_MANIFEST.into()),
            artifact_type: None,
            config,
            layers: vec![layer.clone()],
            subject: None,
            annotations: None,
        };
        let bytes = serde_json::to_vec(&manifest).unwrap();
        let desc = layout.write_blob(media::OCI_MANIFEST, &bytes).unwrap();
        layout.tag(&desc, "bad").unwrap();
        let err = read_model(tmp.path(), "bad").unwrap_err().to_string();
        assert!(
            err.contains(&layer.digest) && err.contains("../../etc/passwd"),
            "{err}"
        );
    }

    #[test]
    fn dates() {
        assert_eq!(rfc3339(0).unwrap(), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400).unwrap(), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000).unwrap(), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(4_107_542_399).unwrap(), "2100-02-28T23:59:59Z");
    }

    #[test]
    fn image_content_is_as_documented_and_reproducible() {
        let tmp = tempfile::tempdir().unwrap();
        let server = tmp.path().join("server");
        std::fs::write(&server, b"\x7fELF not really").unwrap();
        let model = b"onnx bytes".as_slice();
        let a = tmp.path().join("a");
        let b = tmp.path().join("b");
        let created = "2023-11-14T22:13:20Z";
        let da = write_server_image_at(&a, "v1", &image(&server, model), created).unwrap();
        let db = write_server_image_at(&b, "v1", &image(&server, model), created).unwrap();
        assert_eq!(da.digest, db.digest, "packing twice gives the same image");
        assert_eq!(da.platform.as_ref().unwrap().architecture, "amd64");

        let layout = Layout::open(&a).unwrap();
        let (desc, manifest) = layout.resolve("v1").unwrap();
        assert_eq!(desc.digest, da.digest);
        assert_eq!(manifest.schema_version, 2);
        assert_eq!(manifest.layers.len(), 2);
        let annotations = manifest.annotations.clone().unwrap();
        assert_eq!(annotations[media::ANNOTATION_TITLE], "iris");
        assert_eq!(annotations[media::ANNOTATION_CREATED], created);
        assert_eq!(annotations[media::SKIFF_MODEL_TASK], "classification");

        let config: serde_json::Value =
            serde_json::from_slice(&layout.read_blob(&manifest.config).unwrap()).unwrap();
        assert_eq!(config["architecture"], "amd64");
        assert_eq!(config["os"], "linux");
        assert_eq!(config["created"], created);
        let c = &config["config"];
        assert_eq!(c["Entrypoint"], serde_json::json!(["/skiff-server"]));
        assert_eq!(
            c["Cmd"],
            serde_json::json!(["--name", "iris", "/model/model.onnx"])
        );
        assert_eq!(
            c["Healthcheck"]["Test"],
            serde_json::json!(["CMD", "/skiff-server", "--probe", "/v2/health/live"])
        );
        assert_eq!(c["Env"], serde_json::json!(["PORT=8080"]));
        assert_eq!(
            c["ExposedPorts"],
            serde_json::json!({"8080/tcp": {}, "8081/tcp": {}})
        );
        assert_eq!(c["User"], "65532:65532");
        assert_eq!(c["Labels"][media::ANNOTATION_VERSION], "0.1.0");

        // diff_ids are the digests of the uncompressed tars
        for (layer, diff_id) in manifest
            .layers
            .iter()
            .zip(config["rootfs"]["diff_ids"].as_array().unwrap())
        {
            let mut tar = Vec::new();
            flate2::read::GzDecoder::new(&layout.read_blob(layer).unwrap()[..])
                .read_to_end(&mut tar)
                .unwrap();
            assert_eq!(sha256_digest(&tar), diff_id.as_str().unwrap());
        }

        // the server layer: one executable file owned by root, with no times
        let mut tar = Vec::new();
        flate2::read::GzDecoder::new(&layout.read_blob(&manifest.layers[0]).unwrap()[..])
            .read_to_end(&mut tar)
            .unwrap();
        let mut archive = tar::Archive::new(&tar[..]);
        let entries: Vec<_> = archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                (
                    e.path().unwrap().display().to_string(),
                    h.mode().unwrap(),
                    h.uid().unwrap(),
                    h.mtime().unwrap(),
                )
            })
            .collect();
        assert_eq!(entries, [("skiff-server".to_string(), 0o755, 0, 0)]);

        assert_eq!(read_model(&a, "v1").unwrap(), model);
    }

    /// A minimal little-endian ELF header for `machine`.
    fn elf(machine: u16) -> Vec<u8> {
        let mut bytes = b"\x7fELF\x02\x01\x01".to_vec();
        bytes.resize(18, 0);
        bytes.extend_from_slice(&machine.to_le_bytes());
        bytes.extend_from_slice(b"rest of a server");
        bytes
    }

    #[test]
    fn several_platforms_make_an_index_that_shares_the_model_layer() {
        let tmp = tempfile::tempdir().unwrap();
        let (x86, arm) = (tmp.path().join("x86"), tmp.path().join("arm"));
        std::fs::write(&x86, elf(0x3e)).unwrap();
        std::fs::write(&arm, elf(0xb7)).unwrap();
        let arm64 = Platform::parse("linux/arm64").unwrap();
        let mut multi = image(&x86, b"onnx bytes");
        multi.servers.push(ServerBinary {
            platform: arm64.clone(),
            path: &arm,
        });
        let dir = tmp.path().join("img");
        let created = "2023-11-14T22:13:20Z";
        let index_desc = write_server_image_at(&dir, "v1", &multi, created).unwrap();
        assert_eq!(index_desc.media_type, media::OCI_INDEX);

        let layout = Layout::open(&dir).unwrap();
        let index = layout.read_index(&layout.tagged("v1").unwrap()).unwrap();
        assert_eq!(
            index.annotations.as_ref().unwrap()[media::ANNOTATION_CREATED],
            created
        );
        let platforms: Vec<_> = index
            .manifests
            .iter()
            .map(|m| m.platform.as_ref().unwrap().to_string())
            .collect();
        assert_eq!(platforms, ["linux/amd64", "linux/arm64/v8"]);
        let mut model_layers = Vec::new();
        for (entry, arch) in index.manifests.iter().zip(["amd64", "arm64"]) {
            let manifest: crate::oci::ImageManifest =
                serde_json::from_slice(&layout.read_blob(entry).unwrap()).unwrap();
            let config: serde_json::Value =
                serde_json::from_slice(&layout.read_blob(&manifest.config).unwrap()).unwrap();
            assert_eq!(config["architecture"], arch);
            model_layers.push(manifest.layers[1].clone());
        }
        assert_eq!(model_layers[0], model_layers[1], "one model layer for all");
        // reading an index picks this machine's manifest; the model is the same in each
        assert_eq!(
            layout.resolve("v1").unwrap().0.platform,
            Some(Platform::host())
        );
        assert_eq!(read_model(&dir, "v1").unwrap(), b"onnx bytes");

        // the same platform twice, or a binary for another machine, is refused
        multi.servers[1].platform = Platform::parse("linux/amd64").unwrap();
        let err = write_server_image_at(&dir, "v2", &multi, created).unwrap_err();
        assert!(err.to_string().contains("given twice"), "{err}");
        multi.servers[1].platform = arm64;
        multi.servers[1].path = &x86;
        let err = write_server_image_at(&dir, "v2", &multi, created).unwrap_err();
        assert!(
            err.to_string().contains("not built for linux/arm64"),
            "{err}"
        );
    }

    #[test]
    fn platforms_parse_and_print() {
        assert_eq!(
            Platform::parse(" linux/arm64").unwrap().to_string(),
            "linux/arm64/v8"
        );
        for bad in ["linux/s390x", "arm64", "", "windows/amd64"] {
            let err = Platform::parse(bad).unwrap_err().to_string();
            assert!(err.contains("linux/amd64, linux/arm64"), "{err}");
        }
        let any = Platform::parse_any("linux/arm/v7").unwrap();
        assert_eq!(any.variant.as_deref(), Some("v7"));
        let arm64 = Platform::parse_any("linux/arm64").unwrap();
        assert!(Platform::parse("linux/arm64").unwrap().matches(&arm64));
        assert!(arm64.matches(&Platform::parse("linux/arm64").unwrap()));
        assert!(!any.matches(&Platform::parse_any("linux/arm/v6").unwrap()));
        assert!(!arm64.matches(&Platform::parse("linux/amd64").unwrap()));
        for bad in ["linux", "linux/", "a/b/c/d", "linux/amd 64"] {
            let err = Platform::parse_any(bad).unwrap_err().to_string();
            assert!(err.contains("os/architecture[/variant]"), "{err}");
        }
    }

    #[test]
    fn model_layer_has_sorted_entries() {
        let tar = tar_files(&[TarFile {
            path: "model/model.onnx",
            mode: 0o644,
            data: b"x",
        }])
        .unwrap();
        let mut archive = tar::Archive::new(&tar[..]);
        let paths: Vec<_> = archive
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(paths, ["model/", "model/model.onnx"]);
    }

    #[test]
    fn missing_server_binary_is_named() {
        let tmp = tempfile::tempdir().unwrap();
        let missing = tmp.path().join("nope");
        let err = write_server_image_at(
            tmp.path().join("img").as_path(),
            "v1",
            &image(&missing, b"m"),
            "x",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("cannot read server binary") && err.contains("nope"),
            "{err}"
        );
    }
}
