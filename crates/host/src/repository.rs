//! The models a server answers for: names, each with one or more numbered versions.

use crate::{ApiError, Error, Result};
use http::StatusCode;
use skiff_runtime::{BackendOptions, Model};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// The file name of a model inside a repository's version directory.
pub const MODEL_FILE: &str = "model.onnx";

/// The optional file of a model's own backend options, beside its version directories: a JSON
/// object of [`BackendOptions`] fields that replace the server's (`{"backend": "cuda"}`).
pub const CONFIG_FILE: &str = "config.json";

/// Models by name and version.
#[derive(Debug, Clone, Default)]
pub struct Repository {
    models: BTreeMap<String, BTreeMap<u64, Arc<Model>>>,
}

impl Repository {
    /// A repository of one model, as version 1.
    pub fn single(name: &str, model: Model) -> Repository {
        let mut repo = Repository::default();
        repo.insert(name, 1, model)
            .expect("an empty repository has no duplicates");
        repo
    }

    /// Adds a model version; a name and version already present is an error.
    pub fn insert(&mut self, name: &str, version: u64, model: Model) -> Result<()> {
        let versions = self.models.entry(name.to_string()).or_default();
        if versions.insert(version, Arc::new(model)).is_some() {
            return Err(Error::DuplicateName(format!("{name} version {version}")));
        }
        Ok(())
    }

    /// Adds every model of another repository; a name present in both is an error.
    pub fn merge(&mut self, other: Repository) -> Result<()> {
        for (name, versions) in other.models {
            if self.models.contains_key(&name) {
                return Err(Error::DuplicateName(name));
            }
            self.models.insert(name, versions);
        }
        Ok(())
    }

    /// Loads a Triton-style repository: `dir/<name>/<version>/model.onnx`, versions being
    /// positive integers, on the backend `options` choose, or the one `dir/<name>/config.json`
    /// chooses for that model. Other files and folders are ignored.
    pub fn load_dir(dir: &Path, options: &BackendOptions) -> Result<Repository> {
        let repo = Repository::load_dir_only(dir, options, None)?;
        if repo.models.is_empty() {
            return Err(Error::EmptyRepository(dir.display().to_string()));
        }
        Ok(repo)
    }

    /// [`Repository::load_dir`], of model `only` alone when given (then an empty repository
    /// when `dir` has no such model).
    pub(crate) fn load_dir_only(
        dir: &Path,
        options: &BackendOptions,
        only: Option<&str>,
    ) -> Result<Repository> {
        let io = |source| Error::Io {
            path: dir.display().to_string(),
            source,
        };
        let mut repo = Repository::default();
        for entry in std::fs::read_dir(dir).map_err(io)? {
            let model_dir = entry.map_err(io)?.path();
            let Some(name) = model_name(&model_dir) else {
                continue;
            };
            if only.is_some_and(|only| only != name) {
                continue;
            }
            let options = model_options(&model_dir.join(CONFIG_FILE), options)?;
            for version_entry in std::fs::read_dir(&model_dir).map_err(io)? {
                let version_dir = version_entry.map_err(io)?.path();
                let version = version_dir
                    .file_name()
                    .and_then(|v| v.to_str())
                    .and_then(|v| v.parse::<u64>().ok());
                let file = version_dir.join(MODEL_FILE);
                if let (Some(version @ 1..), true) = (version, file.is_file()) {
                    repo.insert(&name, version, Model::load_path(&file, &options)?)?;
                }
            }
        }
        Ok(repo)
    }

    /// The names of the models in repository `dir`, without loading them (none when it cannot
    /// be read).
    pub(crate) fn names_in(dir: &Path) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Vec::new();
        };
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| model_name(&e.path()))
            .filter(|name| {
                let Ok(versions) = std::fs::read_dir(dir.join(name)) else {
                    return false;
                };
                versions.filter_map(|v| v.ok()).any(|v| {
                    v.file_name().to_str().and_then(|v| v.parse::<u64>().ok()) > Some(0)
                        && v.path().join(MODEL_FILE).is_file()
                })
            })
            .collect();
        names.sort();
        names
    }

    /// Takes model `name` out; true when it was there.
    #[cfg(feature = "server")]
    pub(crate) fn remove(&mut self, name: &str) -> bool {
        self.models.remove(name).is_some()
    }

    /// Puts every model of `other` in, replacing models of the same names.
    #[cfg(feature = "server")]
    pub(crate) fn replace(&mut self, other: Repository) {
        self.models.extend(other.models);
    }

    /// True when there are no models.
    pub fn is_empty(&self) -> bool {
        self.models.is_empty()
    }

    /// Model names, their versions and what runs them (see [`Model::backend`]), for logs.
    pub fn describe(&self) -> Vec<(String, Vec<u64>, String)> {
        self.models
            .iter()
            .map(|(name, versions)| {
                let mut backends: Vec<String> = versions.values().map(|m| m.backend()).collect();
                backends.sort();
                backends.dedup();
                (
                    name.clone(),
                    versions.keys().copied().collect(),
                    backends.join(", "),
                )
            })
            .collect()
    }

    /// Each model version's load time.
    #[cfg(feature = "server")]
    pub(crate) fn load_times(&self) -> Vec<(String, u64, std::time::Duration)> {
        self.models
            .iter()
            .flat_map(|(name, versions)| {
                versions
                    .iter()
                    .map(move |(v, m)| (name.clone(), *v, m.load_time()))
            })
            .collect()
    }

    /// Whether a model of this name is served.
    #[cfg(feature = "server")]
    pub(crate) fn contains(&self, name: &str) -> bool {
        self.models.contains_key(name)
    }

    /// The versions of model `name`, oldest first.
    pub(crate) fn versions(&self, name: &str) -> Result<Vec<u64>, ApiError> {
        Ok(self.lookup_name(name)?.keys().copied().collect())
    }

    fn lookup_name(&self, name: &str) -> Result<&BTreeMap<u64, Arc<Model>>, ApiError> {
        self.models.get(name).ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                format!(
                    "model {name:?} not found (served: {})",
                    self.models.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            )
        })
    }

    /// Model `name` at `version`, or its newest version when none is given; a 404 naming what
    /// is served when there is none.
    pub fn get(&self, name: &str, version: Option<&str>) -> Result<(u64, &Arc<Model>), ApiError> {
        let versions = self.lookup_name(name)?;
        let found = match version {
            None => versions.last_key_value(),
            Some(v) => v
                .parse::<u64>()
                .ok()
                .and_then(|n| versions.get_key_value(&n)),
        };
        found.map(|(v, m)| (*v, m)).ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                format!(
                    "model {name:?} has no version {:?} (versions: {})",
                    version.unwrap_or_default(),
                    versions
                        .keys()
                        .map(u64::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        })
    }
}

/// The model name of a repository's subfolder: its folder name, unless hidden or not a folder.
fn model_name(model_dir: &Path) -> Option<String> {
    let name = model_dir.file_name()?.to_str()?;
    (model_dir.is_dir() && !name.starts_with('.')).then(|| name.to_string())
}

/// The server's backend options with a model's `config.json` applied, when it has one.
fn model_options(config: &Path, server: &BackendOptions) -> Result<BackendOptions> {
    let text = match std::fs::read_to_string(config) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(server.clone()),
        Err(source) => {
            return Err(Error::Io {
                path: config.display().to_string(),
                source,
            });
        }
    };
    let name = config.display().to_string();
    let overrides: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        Error::Config(format!(
            "{name} is not JSON ({e}): write an object such as {{\"backend\": \"ort\"}}"
        ))
    })?;
    Ok(server.with_overrides(&overrides, &name)?)
}
