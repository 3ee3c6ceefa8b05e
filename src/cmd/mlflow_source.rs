//! Models that live in MLflow, as `serve` and `pack` take them: a folder holding an `MLmodel`
//! file (the onnx flavour), or `models:/NAME/VERSION` (`@ALIAS`, `/latest`) resolved through
//! a tracking server's model registry and downloaded, checked, into a scratch folder.

use anyhow::{Result, bail};
use skiff_mlops::mlflow::{self, ModelUri};
use std::path::{Path, PathBuf};

#[derive(clap::Args, Clone)]
#[command(next_help_heading = "MLflow")]
pub struct MlflowSourceArgs {
    /// The MLflow tracking server that resolves models:/NAME/VERSION sources (http://HOST:PORT);
    /// MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD, or MLFLOW_TRACKING_TOKEN,
    /// authenticate
    #[arg(long = "mlflow", env = "MLFLOW_TRACKING_URI", value_name = "URL")]
    pub tracking_uri: Option<String>,
}

/// An MLflow model, found: its folder and the name it is served as by default.
pub struct Found {
    /// The folder holding the `MLmodel` file.
    pub dir: PathBuf,
    /// The registered model's name, or the folder's.
    pub name: String,
}

/// `source` as an MLflow model, where it is one: a `models:/` URI is downloaded into
/// `scratch` (a folder that must outlive its use); a folder with an `MLmodel` file is read in
/// place. `None` for anything else (an ONNX file, an image).
pub fn find(source: &str, args: &MlflowSourceArgs, scratch: &Path) -> Result<Option<Found>> {
    if let Some(uri) = ModelUri::parse(source) {
        let uri = uri?;
        let Some(tracking) = args.tracking_uri.as_deref().filter(|u| !u.is_empty()) else {
            bail!(
                "{source} is resolved through an MLflow tracking server: pass --mlflow URL or set \
                 MLFLOW_TRACKING_URI"
            );
        };
        let client = mlflow::Client::new(tracking)?;
        let fetched = super::block_on(mlflow::fetch(&client, &uri, scratch))??;
        let check = if fetched.model.verified {
            ", sha256 checked"
        } else {
            ""
        };
        eprintln!(
            "fetched {source} ({} version {} from {tracking}{check})",
            fetched.name, fetched.version
        );
        return Ok(Some(Found {
            dir: fetched.model.dir,
            name: fetched.name,
        }));
    }
    let dir = Path::new(source);
    if dir.join(mlflow::model::MLMODEL).is_file() {
        let name = std::fs::canonicalize(dir)
            .ok()
            .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "model".into());
        return Ok(Some(Found {
            dir: dir.to_path_buf(),
            name,
        }));
    }
    Ok(None)
}

/// The ONNX file of the MLflow model folder `dir`, its checksum checked where its `MLmodel`
/// records one.
pub fn model_file(dir: &Path) -> Result<PathBuf> {
    Ok(mlflow::model::read_dir(dir)?.model_file)
}
