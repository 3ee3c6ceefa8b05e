//! Every estimator by its CLI name, fitted and exported through one interface.

use crate::params::Params;
use crate::{ClassTarget, Error, Export, Result, Task, metrics};
use ndarray::{Array2, ArrayView2};

/// What an estimator learns from: classes, numbers, or nothing (clustering).
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// Class labels, for classifiers.
    Classes(ClassTarget),
    /// Numbers, for regressors.
    Values(Vec<f64>),
    /// No target, for clusterers.
    None,
}

impl Target {
    /// Reads a target column for an estimator of `algorithm`'s task; a column that does not
    /// suit the task (a continuous target for a classifier, text for a regressor) is an error
    /// that says which kind of estimator fits it.
    pub fn from_cells(algorithm: &dyn Algorithm, cells: &[&str]) -> Result<Target> {
        match algorithm.task() {
            Task::Classification => {
                let numbers: Option<Vec<f64>> = cells.iter().map(|c| c.parse().ok()).collect();
                if let Some(fraction) = numbers
                    .iter()
                    .flatten()
                    .find(|v| v.is_finite() && v.fract() != 0.0)
                {
                    return Err(Error::Target(format!(
                        "the target holds fractional numbers (e.g. {fraction}), so it looks continuous: \
                         {} is a classifier; use a regressor such as ridge",
                        algorithm.name()
                    )));
                }
                Ok(Target::Classes(ClassTarget::from_cells(cells)?))
            }
            Task::Regression => cells
                .iter()
                .enumerate()
                .map(|(row, cell)| match cell.parse::<f64>() {
                    Ok(v) if v.is_finite() => Ok(v),
                    _ => Err(Error::Target(format!(
                        "target value {cell:?} in data row {} is not a finite number: {} is a \
                         regressor; use a classifier such as logistic-regression for class labels",
                        row + 1,
                        algorithm.name()
                    ))),
                })
                .collect::<Result<Vec<f64>>>()
                .map(Target::Values),
            Task::Clustering => Ok(Target::None),
        }
    }

    fn classes(&self, algorithm: &str) -> Result<&ClassTarget> {
        match self {
            Target::Classes(y) => Ok(y),
            _ => Err(Error::Target(format!(
                "{algorithm} is a classifier: it needs class labels"
            ))),
        }
    }

    fn values(&self, algorithm: &str) -> Result<&[f64]> {
        match self {
            Target::Values(y) => Ok(y),
            _ => Err(Error::Target(format!(
                "{algorithm} is a regressor: it needs a numeric target"
            ))),
        }
    }
}

/// Predictions of any fitted estimator.
#[derive(Debug, Clone, PartialEq)]
pub enum Predictions {
    /// Class indices into the model's classes.
    Classes(Vec<usize>),
    /// Predicted numbers.
    Values(Vec<f64>),
    /// Cluster indices.
    Clusters(Vec<usize>),
}

/// A fitted estimator of any kind.
pub trait Fitted: Export + Send + Sync {
    /// Predicts every row of `x`.
    fn predict_rows(&self, x: ArrayView2<'_, f64>) -> Predictions;
    /// The numbers the exported model outputs beside its labels, computed natively:
    /// `probabilities` [N, C] of a classifier, `variable` [N, 1] of a regressor, `scores`
    /// [N, K] of a clusterer.
    fn scores(&self, x: ArrayView2<'_, f64>) -> Array2<f64>;
    /// What a user should know about the fit, as scikit-learn's warnings say it (a solver
    /// that stopped at `max_iter` before converging); empty when all went well.
    fn warnings(&self) -> Vec<String> {
        Vec::new()
    }
    /// How training went, step by step, for training logs (TensorBoard, MLflow): a network's
    /// loss per epoch, boosting's loss per iteration; empty for estimators fitted in one go.
    fn curves(&self) -> Vec<Curve> {
        Vec::new()
    }
    /// The predictions for the rows it was fitted on, where the fit computed them on its way
    /// (boosting keeps every training row's raw score), exactly as `predict_rows` would give
    /// them; none where they would have to be predicted again.
    fn fit_predictions(&self) -> Option<Predictions> {
        None
    }
}

/// One quantity recorded during training, e.g. `loss` per epoch: `(step, value)` pairs in step
/// order.
#[derive(Debug, Clone, PartialEq)]
pub struct Curve {
    /// What was recorded, e.g. `loss`, `validation_score`.
    pub name: String,
    /// The values, each with its step (epoch, iteration, tree count), steps increasing.
    pub points: Vec<(u64, f64)>,
}

impl Curve {
    /// A curve of `values` at steps 1, 2, ...: scikit-learn's per-epoch and per-iteration
    /// lists (`loss_curve_`, `train_score_`).
    pub fn from_values(name: &str, values: &[f64]) -> Curve {
        Curve {
            name: name.to_string(),
            points: (1..).zip(values.iter().copied()).collect(),
        }
    }
}

/// An estimator, by name, with its hyperparameters: what `skiff fit` and `skiff algorithms`
/// work with.
pub trait Algorithm: Send + Sync {
    /// The CLI name, e.g. `ridge`.
    fn name(&self) -> &'static str;
    /// What it predicts.
    fn task(&self) -> Task;
    /// One line on what it is.
    fn summary(&self) -> &'static str;
    /// The hyperparameters as they are now, as a JSON object.
    fn hyperparameters(&self) -> serde_json::Value;
    /// Whether its results depend on the features' scales (distances, penalties), so a
    /// table's numeric columns are standardised for it by default.
    fn needs_scaling(&self) -> bool;
    /// Whether it takes gaps (NaN) and category codes as they are, as scikit-learn's
    /// histogram gradient boosting does: a table's gaps then reach it unfilled and its text
    /// columns as ordinal codes.
    fn takes_gaps_and_categories(&self) -> bool;
    /// Tells it which features hold category codes (a table's ordinal-encoded text columns),
    /// for estimators that treat them as categories (`categorical_features="from_dtype"`).
    fn set_categorical(&mut self, features: &[usize]);
    /// Sets a hyperparameter from text (see [`Params::set`]).
    fn set(&mut self, name: &str, value: &str) -> Result<()>;
    /// The epsilon a fit spends, for differentially private estimators; none for the rest.
    fn privacy(&self) -> Option<f64>;
    /// Fits rows `x` to `y`.
    fn fit(&self, x: ArrayView2<'_, f64>, y: &Target) -> Result<Box<dyn Fitted>>;
    /// A copy, hyperparameters and all (a search fits one per candidate and fold).
    fn clone_box(&self) -> Box<dyn Algorithm>;
    /// The metric `fit` reports on training data: accuracy, R², or none for clusterers and for
    /// estimators that do not score their training rows.
    fn training_metric(
        &self,
        model: &dyn Fitted,
        x: ArrayView2<'_, f64>,
        y: &Target,
    ) -> Option<(&'static str, f64)>;
}

/// The hyperparameters of an estimator the catalog lists.
pub(crate) trait Estimator: Params {
    const TASK: Task;
    const SUMMARY: &'static str;
    /// Whether its results depend on the features' scales (distances, penalties), so a
    /// table's numeric columns are standardised for it by default.
    const NEEDS_SCALING: bool = false;
    /// Whether it takes gaps (NaN) and category codes as they are.
    const TAKES_GAPS_AND_CATEGORIES: bool = false;
    /// Whether `fit` reports its score on the training rows. A neighbours model finds each
    /// training row as its own nearest neighbour, so the score would say nothing and cost a
    /// search per row.
    const SCORES_TRAINING_ROWS: bool = true;
    type Model: Fitted + 'static;
    /// See [`Algorithm::privacy`].
    fn privacy(&self) -> Option<f64> {
        None
    }
    /// See [`Algorithm::set_categorical`].
    fn set_categorical(&mut self, _features: &[usize]) {}
    fn fit_classes(&self, _x: ArrayView2<'_, f64>, _y: &ClassTarget) -> Result<Self::Model> {
        unreachable!("only classifiers fit classes")
    }
    fn fit_values(&self, _x: ArrayView2<'_, f64>, _y: &[f64]) -> Result<Self::Model> {
        unreachable!("only regressors fit values")
    }
    fn fit_rows(&self, _x: ArrayView2<'_, f64>) -> Result<Self::Model> {
        unreachable!("only clusterers fit rows alone")
    }
}

impl<E: Estimator> Algorithm for E {
    fn name(&self) -> &'static str {
        E::ALGORITHM
    }

    fn task(&self) -> Task {
        E::TASK
    }

    fn summary(&self) -> &'static str {
        E::SUMMARY
    }

    fn hyperparameters(&self) -> serde_json::Value {
        self.to_json()
    }

    fn needs_scaling(&self) -> bool {
        E::NEEDS_SCALING
    }

    fn privacy(&self) -> Option<f64> {
        Estimator::privacy(self)
    }

    fn takes_gaps_and_categories(&self) -> bool {
        E::TAKES_GAPS_AND_CATEGORIES
    }

    fn training_metric(
        &self,
        model: &dyn Fitted,
        x: ArrayView2<'_, f64>,
        y: &Target,
    ) -> Option<(&'static str, f64)> {
        // A clusterer has no labels to score against: its rows are not predicted again.
        if !E::SCORES_TRAINING_ROWS || E::TASK == Task::Clustering {
            return None;
        }
        let predictions = model
            .fit_predictions()
            .unwrap_or_else(|| model.predict_rows(x));
        match (predictions, y) {
            (Predictions::Classes(p), Target::Classes(y)) => {
                Some(("accuracy", metrics::accuracy(&y.indices, &p)))
            }
            (Predictions::Values(p), Target::Values(y)) => Some(("r2", metrics::r2(y, &p))),
            _ => None,
        }
    }

    fn set_categorical(&mut self, features: &[usize]) {
        Estimator::set_categorical(self, features)
    }

    fn set(&mut self, name: &str, value: &str) -> Result<()> {
        Params::set(self, name, value)
    }

    fn fit(&self, x: ArrayView2<'_, f64>, y: &Target) -> Result<Box<dyn Fitted>> {
        let model = match E::TASK {
            Task::Classification => self.fit_classes(x, y.classes(E::ALGORITHM)?)?,
            Task::Regression => self.fit_values(x, y.values(E::ALGORITHM)?)?,
            Task::Clustering => self.fit_rows(x)?,
        };
        Ok(Box::new(model))
    }

    fn clone_box(&self) -> Box<dyn Algorithm> {
        Box::new(self.clone())
    }
}

impl Clone for Box<dyn Algorithm> {
    fn clone(&self) -> Self {
        self.clone_box()
    }
}

/// Every estimator, with scikit-learn's default hyperparameters.
pub fn catalog() -> Vec<Box<dyn Algorithm>> {
    vec![
        Box::new(crate::LogisticRegressionParams::default()),
        Box::new(crate::LinearSvcParams::default()),
        Box::new(crate::DecisionTreeClassifierParams::default()),
        Box::new(crate::RandomForestClassifierParams::default()),
        Box::new(crate::HistGradientBoostingClassifierParams::default()),
        Box::new(crate::GaussianNbParams::default()),
        Box::new(crate::DpGaussianNbParams::default()),
        Box::new(crate::DpLogisticRegressionParams::default()),
        Box::new(crate::KnnClassifierParams::default()),
        Box::new(crate::MlpClassifierParams::default()),
        Box::new(crate::LinearRegressionParams::default()),
        Box::new(crate::RidgeParams::default()),
        Box::new(crate::LassoParams::default()),
        Box::new(crate::ElasticNetParams::default()),
        Box::new(crate::DecisionTreeRegressorParams::default()),
        Box::new(crate::RandomForestRegressorParams::default()),
        Box::new(crate::HistGradientBoostingRegressorParams::default()),
        Box::new(crate::KnnRegressorParams::default()),
        Box::new(crate::MlpRegressorParams::default()),
        Box::new(crate::KMeansParams::default()),
        Box::new(crate::GaussianMixtureParams::default()),
    ]
}

/// The estimator named `name`, with default hyperparameters.
pub fn algorithm(name: &str) -> Result<Box<dyn Algorithm>> {
    let all = catalog();
    let names: Vec<&str> = all.iter().map(|a| a.name()).collect();
    let valid = names.join(", ");
    all.into_iter()
        .find(|a| a.name() == name)
        .ok_or(Error::UnknownAlgorithm {
            name: name.into(),
            valid,
        })
}
