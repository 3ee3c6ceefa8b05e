//! Registered models from a tracking server: `models:/NAME/VERSION`, `models:/NAME@ALIAS` and
//! `models:/NAME/latest` resolved through the model registry, their files downloaded through
//! the artifact proxy and checked, as a registry pull checks its blobs: every file's size
//! against the server's listing, and the ONNX file against the `skiff.sha256` its MLmodel
//! records, where it records one.

use super::client::Client;
use super::model::{self, MlModel};
use crate::{Error, Result};
use serde_json::Value;
use std::path::Path;

/// Most files a model folder may hold, and how deep its folders may nest.
const MAX_FILES: usize = 1000;
const MAX_DEPTH: usize = 8;

/// A `models:/` URI, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelUri {
    /// The registered model's name.
    pub name: String,
    /// Which of its versions.
    pub version: VersionRef,
}

/// How a `models:/` URI picks a version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionRef {
    /// `models:/NAME/3`.
    Number(String),
    /// `models:/NAME@champion`.
    Alias(String),
    /// `models:/NAME/latest`: the highest version number.
    Latest,
}

impl ModelUri {
    /// Parses `models:/NAME/VERSION`, `models:/NAME@ALIAS` or `models:/NAME/latest`; `None`
    /// for anything that does not start with `models:`.
    pub fn parse(uri: &str) -> Option<Result<ModelUri>> {
        let rest = uri.strip_prefix("models:")?;
        let rest = rest.trim_start_matches('/');
        let bad = || {
            Error(format!(
                "{uri:?} is not models:/NAME/VERSION, models:/NAME@ALIAS or models:/NAME/latest"
            ))
        };
        let parsed = if let Some((name, alias)) = rest.split_once('@') {
            (!alias.is_empty() && !alias.contains('/'))
                .then(|| (name, VersionRef::Alias(alias.to_string())))
        } else if let Some((name, version)) = rest.rsplit_once('/') {
            if version == "latest" {
                Some((name, VersionRef::Latest))
            } else {
                (!version.is_empty() && version.bytes().all(|b| b.is_ascii_digit()))
                    .then(|| (name, VersionRef::Number(version.to_string())))
            }
        } else {
            None
        };
        Some(match parsed {
            Some((name, version)) if !name.is_empty() => Ok(ModelUri {
                name: name.to_string(),
                version,
            }),
            _ => Err(bad()),
        })
    }
}

/// A registered model version, downloaded.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The registered model's name.
    pub name: String,
    /// The version number.
    pub version: String,
    /// The model folder, read and checked.
    pub model: MlModel,
}

/// Resolves `uri` on the tracking server `client` speaks to and downloads the model version's
/// files into `dest` (an empty or missing folder), checking each as it lands.
pub async fn fetch(client: &Client, uri: &ModelUri, dest: &Path) -> Result<Fetched> {
    let name = uri.name.as_str();
    let version = match &uri.version {
        VersionRef::Number(number) => {
            let found = client
                .get_if_exists("model-versions/get", &[("name", name), ("version", number)])
                .await?;
            let Some(found) = found else {
                return Err(Error(format!(
                    "the MLflow model registry at {} has no version {number} of {name:?}: \
                     `skiff fit --register {name}` registers one",
                    client.url()
                )));
            };
            text(&found["model_version"]["version"]).unwrap_or_else(|| number.clone())
        }
        VersionRef::Alias(alias) => {
            let model = registered(client, name).await?;
            let aliases = model["registered_model"]["aliases"].as_array();
            aliases
                .into_iter()
                .flatten()
                .find(|a| a["alias"].as_str() == Some(alias))
                .and_then(|a| text(&a["version"]))
                .ok_or_else(|| {
                    Error(format!(
                        "{name:?} in the MLflow model registry at {} has no alias {alias:?}: set \
                         one with MlflowClient.set_registered_model_alias, or name a version",
                        client.url()
                    ))
                })?
        }
        VersionRef::Latest => latest(client, name).await?,
    };
    let download = client
        .get(
            "model-versions/get-download-uri",
            &[("name", name), ("version", &version)],
        )
        .await?;
    let location = download["artifact_uri"].as_str().unwrap_or_default();
    let root = super::log::artifact_path(location).map_err(|_| {
        Error(format!(
            "version {version} of {name:?} lives at {location:?}, which skiff cannot download: \
             start the tracking server with --serve-artifacts (the default) so it hands out \
             model files"
        ))
    })?;
    std::fs::create_dir_all(dest)
        .map_err(|e| Error(format!("cannot create {}: {e}", dest.display())))?;
    let mut files = Vec::new();
    list_files(client, &root, "", 0, &mut files).await?;
    for (relative, size) in &files {
        let bytes = client.download(&format!("{root}/{relative}")).await?;
        if let Some(size) = size
            && bytes.len() as u64 != *size
        {
            return Err(Error(format!(
                "{relative} of {name:?} version {version} arrived with {} bytes where the \
                 server lists {size}: try again",
                bytes.len()
            )));
        }
        let path = dest.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| Error(format!("cannot create {}: {e}", parent.display())))?;
        }
        std::fs::write(&path, bytes)
            .map_err(|e| Error(format!("cannot write {}: {e}", path.display())))?;
    }
    let model = model::read_dir(dest).map_err(|e| {
        Error(format!(
            "version {version} of {name:?} from {}: {e}",
            client.url()
        ))
    })?;
    Ok(Fetched {
        name: name.to_string(),
        version,
        model,
    })
}

/// The registered model `name`, with its aliases.
async fn registered(client: &Client, name: &str) -> Result<Value> {
    client
        .get_if_exists("registered-models/get", &[("name", name)])
        .await?
        .ok_or_else(|| {
            Error(format!(
                "the MLflow model registry at {} has no model named {name:?}: `skiff fit \
                 --register {name}` registers one",
                client.url()
            ))
        })
}

/// The highest version number of `name`.
async fn latest(client: &Client, name: &str) -> Result<String> {
    registered(client, name).await?;
    let filter = format!("name='{}'", name.replace('\'', "\\'"));
    let found = client
        .get(
            "model-versions/search",
            &[("filter", &filter), ("max_results", "1000")],
        )
        .await?;
    found["model_versions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| text(&v["version"])?.parse::<u64>().ok())
        .max()
        .map(|v| v.to_string())
        .ok_or_else(|| {
            Error(format!(
                "the MLflow model registry at {} has no versions of {name:?}: `skiff fit \
                 --register {name}` registers one",
                client.url()
            ))
        })
}

/// Every file under `root/dir` on the artifact proxy, with its listed size, depth first.
async fn list_files(
    client: &Client,
    root: &str,
    dir: &str,
    depth: usize,
    out: &mut Vec<(String, Option<u64>)>,
) -> Result<()> {
    if depth > MAX_DEPTH {
        return Err(Error(format!(
            "{root} nests folders deeper than {MAX_DEPTH}: not a model folder skiff serves"
        )));
    }
    let here = if dir.is_empty() {
        root.to_string()
    } else {
        format!("{root}/{dir}")
    };
    for (path, is_dir, size) in Box::pin(client.list(&here)).await? {
        let name = path.rsplit('/').next().unwrap_or(&path);
        if name.is_empty() || name == ".." || name == "." {
            continue;
        }
        let relative = if dir.is_empty() {
            name.to_string()
        } else {
            format!("{dir}/{name}")
        };
        if is_dir {
            Box::pin(list_files(client, root, &relative, depth + 1, out)).await?;
        } else {
            out.push((relative, size));
        }
        if out.len() > MAX_FILES {
            return Err(Error(format!(
                "{root} holds more than {MAX_FILES} files: not a model folder skiff serves"
            )));
        }
    }
    Ok(())
}

/// A JSON string or number as text.
fn text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_uris_name_a_version_an_alias_or_the_latest() {
        let parse = |uri: &str| ModelUri::parse(uri).unwrap();
        assert_eq!(
            parse("models:/iris/3").unwrap(),
            ModelUri {
                name: "iris".into(),
                version: VersionRef::Number("3".into())
            }
        );
        assert_eq!(
            parse("models:/iris@champion").unwrap().version,
            VersionRef::Alias("champion".into())
        );
        assert_eq!(
            parse("models:/iris/latest").unwrap().version,
            VersionRef::Latest
        );
        assert_eq!(parse("models:/team/iris/2").unwrap().name, "team/iris");
        for bad in [
            "models:/iris",
            "models:/iris/",
            "models:/iris/x1",
            "models:/@a",
            "models:/",
        ] {
            let err = parse(bad).unwrap_err().to_string();
            assert!(err.contains("models:/NAME/VERSION"), "{bad}: {err}");
        }
        assert!(ModelUri::parse("iris.onnx").is_none());
    }
}
