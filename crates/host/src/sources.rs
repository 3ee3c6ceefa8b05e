//! Where a server's models come from: loaded at start, again on SIGHUP, and one at a time
//! through the model repository extension (`POST /v2/repository/models/NAME/load`).

use crate::{LoadError, Repository};
use skiff_runtime::{BackendOptions, Model};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

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
    /// A folder a platform mounted (see [`Source::mounted`]).
    Mounted {
        /// The folder.
        dir: PathBuf,
        /// The name of its one model, when it holds one.
        name: Option<String>,
        /// The backend.
        options: BackendOptions,
        /// How long to wait for it to be filled.
        wait: Duration,
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
    /// otherwise the folder is a model repository. What it holds is read when it loads; until
    /// then, for at most `wait`, the folder may be missing or empty (a model image that a
    /// platform mounts while the server starts).
    pub fn mounted(
        dir: &Path,
        name: Option<&str>,
        options: &BackendOptions,
        wait: Duration,
    ) -> Source {
        Source::Mounted {
            dir: dir.to_path_buf(),
            name: name.map(str::to_string),
            options: options.clone(),
            wait,
        }
    }

    /// A mounted folder that need not be waited for, read now: one model or a repository, or
    /// the error that says why it is neither. Other sources as they are.
    pub fn checked(self) -> Result<Source, LoadError> {
        match &self {
            Source::Mounted { wait, .. } if wait.is_zero() => self.resolve(false),
            _ => Ok(self),
        }
    }

    /// What a mounted folder holds: one model, or a repository.
    fn resolve(&self, wait: bool) -> Result<Source, LoadError> {
        let Source::Mounted {
            dir,
            name,
            options,
            wait: patience,
        } = self
        else {
            return Ok(self.clone());
        };
        let deadline = Instant::now() + if wait { *patience } else { Duration::ZERO };
        let entries = loop {
            let entries: Vec<PathBuf> = match std::fs::read_dir(dir) {
                Ok(entries) => entries.filter_map(|e| e.ok()).map(|e| e.path()).collect(),
                Err(e) if Instant::now() >= deadline => {
                    return Err(
                        format!("cannot read the model folder {}: {e}", dir.display()).into(),
                    );
                }
                Err(_) => Vec::new(),
            };
            if !entries.is_empty() || Instant::now() >= deadline {
                break entries;
            }
            std::thread::sleep(Duration::from_millis(500));
        };
        let onnx: Vec<&PathBuf> = entries
            .iter()
            .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "onnx"))
            .collect();
        match &onnx[..] {
            [] => Ok(Source::Dir {
                dir: dir.clone(),
                options: options.clone(),
            }),
            [file] => {
                let stem = file.file_stem().map(|s| s.to_string_lossy().into_owned());
                let name = name.clone().or(stem).unwrap_or("model".into());
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
            Source::Mounted { .. } => self.resolve(false).map(|s| s.names()).unwrap_or_default(),
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
            Source::Mounted { .. } => self.resolve(true)?.load(only),
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
