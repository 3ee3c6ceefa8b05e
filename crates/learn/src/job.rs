//! A fit from a table, as `skiff fit` runs it and the conformance suite checks it: the
//! estimator by name with its `--set` values, the target column read for its task, every other
//! column a feature, an optional scaler in front, and the training metric.

use crate::catalog::{Algorithm, Fitted, Target};
use crate::scale::{Pipeline, Scale};
use crate::{Error, ExportInfo, Result, Task};
use skiff_data::Table;
use skiff_onnx::Model;

/// What to fit.
#[derive(Debug, Clone, Default)]
pub struct FitSpec {
    /// The estimator's name (`skiff algorithms` lists them).
    pub algorithm: String,
    /// The column to predict; clusterers may name one, which is then left out of the features.
    pub target: Option<String>,
    /// Hyperparameters by scikit-learn's name, as text, applied in order.
    pub set: Vec<(String, String)>,
    /// A scaler fitted first and exported in the same graph.
    pub scale: Option<Scale>,
}

/// A fitted model and what it was fitted on.
pub struct FitReport {
    /// The estimator with the hyperparameters it was fitted with.
    pub algorithm: Box<dyn Algorithm>,
    /// The fitted model (a pipeline where a scaler comes first).
    pub model: Box<dyn Fitted>,
    /// The feature columns, in the model's input order.
    pub features: Vec<String>,
    /// The target column, for estimators that learn one.
    pub target: Option<String>,
    /// The training metric: accuracy or R², none for clusterers.
    pub training_metric: Option<(&'static str, f64)>,
}

impl FitReport {
    /// What the exported model records about its training data.
    pub fn export_info(&self) -> ExportInfo {
        ExportInfo {
            feature_names: self.features.clone(),
            target: self.target.clone().unwrap_or_default(),
            training_metric: self
                .training_metric
                .map(|(name, value)| (name.to_string(), value)),
        }
    }

    /// The ONNX model, with skiff's metadata.
    pub fn to_onnx(&self) -> Model {
        self.model.to_onnx(&self.export_info())
    }
}

/// Fits `spec` on `table`.
pub fn fit_table(table: &Table, spec: &FitSpec) -> Result<FitReport> {
    let mut algorithm = crate::algorithm(&spec.algorithm)?;
    for (name, value) in &spec.set {
        algorithm.set(name.trim(), value.trim())?;
    }
    let task = algorithm.task();
    let (features, y) = match (&spec.target, task) {
        (Some(target), _) => {
            let cells = table.column(target)?;
            // A clusterer's target only leaves the features: from_cells reads it as none.
            let y = Target::from_cells(algorithm.as_ref(), &cells)
                .map_err(|e| Error::Target(format!("target column {target:?}: {e}")))?;
            (table.columns_except(target), y)
        }
        (None, Task::Clustering) => (table.headers().to_vec(), Target::None),
        (None, _) => {
            return Err(Error::Target(format!(
                "{} needs a target: the column it learns to predict (--target)",
                algorithm.name()
            )));
        }
    };
    if features.is_empty() {
        return Err(Error::Shape(format!(
            "{} has no feature columns besides the target",
            table.source()
        )));
    }
    let x = table.features(&features)?;
    let model: Box<dyn Fitted> = match spec.scale {
        Some(scale) => Box::new(Pipeline::fit(scale, algorithm.as_ref(), x.view(), &y)?),
        None => algorithm.fit(x.view(), &y)?,
    };
    let training_metric = algorithm.training_metric(model.as_ref(), x.view(), &y);
    Ok(FitReport {
        algorithm,
        model,
        features,
        target: spec.target.clone(),
        training_metric,
    })
}
