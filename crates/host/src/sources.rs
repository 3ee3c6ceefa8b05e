//! Where a server's models come from: loaded at start, again on SIGHUP, and one at a time
//! through the model repository extension (`POST /v2/repository/models/NAME/load`).

use crate::{LoadError, Repository};
use skiff_runtime::{BackendOptions, Model};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Loads one model; the closure behind a [`Source::Model`].
pub type LoadModel = Arc<dyn Fn() -> Result<Model, LoadError> + Send + Sync>;

/// One place models come from.
#[derive(Clone)]
pub enum Source {
    /// One model served as `name`, as version 1.
    Model {
        /// The name clients use.
        name: String,
        /// Reads and loads it.
        load: LoadModel,
    },
    /// A Triton-style repository, `dir/<name>/<version>/model.onnx` (see
    /// [`Repository::load_dir`]): its folders name the models.
    Dir {
        /// The repository.
        dir: PathBuf,
        /// The backend its models run on, unless a model's `config.json` says otherwise.
        options: BackendOptions,
    },
}

impl Source {
    /// A model file served as `name`.
    pub fn file(name: &str, path: &Path, options: &BackendOptions) -> Source {
        let (path, options) = (path.to_path_buf(), options.clone());
        Source::Model {
            name: name.to_string(),
            load: Arc::new(move || Ok(Model::load_path(&path, &options)?)),
        }
    }

    /// A folder a platform mounted (KServe's `/mnt/models`): one `.onnx` file in it (beside an
    /// MLflow `MLmodel` file or anything else) is served as `name` (default: the file's stem);
    /// otherwise the folder is a model repository.
    pub fn mounted(
        dir: &Path,
        name: Option<&str>,
        options: &BackendOptions,
    ) -> Result<Source, LoadError> {
        let entries = std::fs::read_dir(dir)
            .map_err(|e| format!("cannot read the model folder {}: {e}", dir.display()))?;
        let mut onnx = Vec::new();
        for entry in entries {
            let path = entry
                .map_err(|e| format!("cannot read the model folder {}: {e}", dir.display()))?
                .path();
            if path.is_file() && path.extension().is_some_and(|e| e == "onnx") {
                onnx.push(path);
            }
        }
        match &onnx[..] {
            [] => Ok(Source::Dir {
                dir: dir.to_path_buf(),
                options: options.clone(),
            }),
            [file] => {
                let stem = file.file_stem().map(|s| s.to_string_lossy().into_owned());
                let name = name.map(str::to_string).or(stem).unwrap_or("model".into());
                Ok(Source::file(&name, file, options))
            }
            _ => Err(format!(
                "{} holds {} .onnx files: keep one, or lay the folder out as a model repository \
                 (<name>/<version>/model.onnx)",
                dir.display(),
                onnx.len()
            )
            .into()),
        }
    }

    /// The names this source serves, without loading anything.
    fn names(&self) -> Vec<String> {
        match self {
            Source::Model { name, .. } => vec![name.clone()],
            Source::Dir { dir, .. } => Repository::names_in(dir),
        }
    }

    /// Its models, or only `only` when given (none when it does not serve that name).
    fn load(&self, only: Option<&str>) -> Result<Repository, LoadError> {
        match self {
            Source::Model { name, load } => {
                if only.is_some_and(|only| only != name) {
                    return Ok(Repository::default());
                }
                Ok(Repository::single(name, load()?))
            }
            Source::Dir { dir, options } => Ok(Repository::load_dir_only(dir, options, only)?),
        }
    }
}

/// Every source a server serves from.
#[derive(Clone, Default)]
pub struct Sources(Vec<Source>);

impl Sources {
    /// The sources, in the order they were given.
    pub fn new(sources: Vec<Source>) -> Sources {
        Sources(sources)
    }

    /// Every model of every source; a name given twice is an error.
    pub fn load_all(&self) -> Result<Repository, LoadError> {
        let mut repo = Repository::default();
        for source in &self.0 {
            repo.merge(source.load(None)?)?;
        }
        Ok(repo)
    }

    /// The model `name` with all its versions, from the first source that has it; `None` when
    /// no source serves that name.
    pub fn load_one(&self, name: &str) -> Result<Option<Repository>, LoadError> {
        for source in &self.0 {
            if source.names().iter().any(|n| n == name) {
                return Ok(Some(source.load(Some(name))?));
            }
        }
        Ok(None)
    }

    /// The names the sources serve, sorted, each once.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.0.iter().flat_map(Source::names).collect();
        names.sort();
        names.dedup();
        names
    }
}
