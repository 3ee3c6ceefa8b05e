//! scikit-learn-style estimators that export themselves to ONNX.
//!
//! Each estimator `Foo` has `Foo::params()`, a builder of scikit-learn's hyperparameters whose
//! `fit` validates them in one place and returns a `FittedFoo`; every fitted type implements
//! [`Export`], which writes the ONNX graph that skiff's runtime, tract and ONNX Runtime run.
//!
//! The estimators, by CLI name ([`catalog`] lists them):
//!
//! - classifiers: `logistic-regression` ([`LogisticRegression`]), `linear-svc`
//!   ([`LinearSvc`]), `decision-tree-classifier` ([`DecisionTreeClassifier`]),
//!   `random-forest-classifier` ([`RandomForestClassifier`]), `gaussian-nb` ([`GaussianNb`]),
//!   `knn-classifier` ([`KnnClassifier`]), `mlp-classifier` ([`MlpClassifier`]);
//! - regressors: `linear-regression` ([`LinearRegression`]), `ridge` ([`Ridge`]), `lasso`
//!   ([`Lasso`]), `elastic-net` ([`ElasticNet`]), `decision-tree-regressor`
//!   ([`DecisionTreeRegressor`]), `random-forest-regressor` ([`RandomForestRegressor`]),
//!   `knn-regressor` ([`KnnRegressor`]), `mlp-regressor` ([`MlpRegressor`]);
//! - clusterers: `kmeans` ([`KMeans`]), `gaussian-mixture` ([`GaussianMixture`]).
//!
//! ```
//! use skiff_learn::{ClassTarget, Export, ExportInfo, LogisticRegression};
//!
//! let table = skiff_data::Table::from_reader(
//!     "inline.csv",
//!     "a,b,y\n0,0,no\n0,1,no\n5,5,yes\n6,5,yes\n".as_bytes(),
//! ).unwrap();
//! let features = table.columns_except("y");
//! let x = table.features(&features).unwrap();
//! let y = ClassTarget::from_cells(&table.column("y").unwrap()).unwrap();
//! let model = LogisticRegression::params().fit(x.view(), &y).unwrap();
//! let info = ExportInfo { feature_names: features, target: "y".into(), training_metric: None };
//! let onnx_bytes = model.to_onnx(&info).to_bytes();
//! assert!(onnx_bytes.len() > 100);
//! ```

#![deny(missing_docs)]

mod blocks;
mod boost;
mod catalog;
mod check;
mod classifier;
mod dp;
mod error;
mod forest;
mod graph;
mod job;
mod kmeans;
mod knn;
mod labels;
mod lbfgs;
mod linear;
mod linear_svc;
mod logistic;
pub mod metrics;
mod mixture;
mod mlp;
mod naive_bayes;
mod params;
pub mod preprocess;
mod scale;
pub mod select;
mod tree;

pub use boost::{
    Boosted, Boosting, CategoricalFeatures, ClassLoss, EarlyStopping, FeatureBins,
    FittedHistGradientBoostingClassifier, FittedHistGradientBoostingRegressor,
    HistGradientBoostingClassifier, HistGradientBoostingClassifierParams,
    HistGradientBoostingRegressor, HistGradientBoostingRegressorParams, Node as BoostNode,
    RegressionLoss, Rule as SplitRule, Tree as BoostTree,
};
pub use catalog::{Algorithm, Curve, Fitted, Predictions, Target, algorithm, catalog};
pub use dp::{
    DpGaussianNb, DpGaussianNbParams, DpLogisticRegression, DpLogisticRegressionParams,
    FittedDpGaussianNb, FittedDpLogisticRegression,
};
pub use error::{Error, Result};
pub use forest::{
    FittedRandomForestClassifier, FittedRandomForestRegressor, MaxFeatures, OutOfBag,
    RandomForestClassifier, RandomForestClassifierParams, RandomForestRegressor,
    RandomForestRegressorParams,
};
pub use job::{Encoding, FitReport, FitSpec, Plan, fit_plan, fit_table, plan};
pub use kmeans::{FittedKMeans, KMeans, KMeansParams};
pub use knn::{
    FittedKnnClassifier, FittedKnnRegressor, KnnClassifier, KnnClassifierParams, KnnParams,
    KnnRegressor, KnnRegressorParams, Weights,
};
pub use labels::{ClassLabels, ClassTarget};
pub use linear::{
    ElasticNet, ElasticNetParams, FittedLinearModel, Lasso, LassoParams, LinearRegression,
    LinearRegressionParams, Ridge, RidgeParams,
};
pub use linear_svc::{FittedLinearSvc, LinearSvc, LinearSvcParams};
pub use logistic::{FittedLogisticRegression, LogisticRegression, LogisticRegressionParams};
pub use mixture::{CovarianceType, FittedGaussianMixture, GaussianMixture, GaussianMixtureParams};
pub use mlp::{
    Activation, FittedMlpClassifier, FittedMlpRegressor, LearningRate, MlpClassifier,
    MlpClassifierParams, MlpParams, MlpRegressor, MlpRegressorParams, Solver, Training,
};
pub use naive_bayes::{FittedGaussianNb, GaussianNb, GaussianNbParams};
pub use params::Params;
pub use preprocess::{ColumnTransformer, ImputeStrategy, SimpleImputerParams};
pub use scale::{FittedScaler, Pipeline, Scale};
pub use select::{
    Candidate, CvReport, Fold, FoldResult, Folds, KFold, ParamGrid, Scoring, SearchReport,
    SearchSpec, StratifiedKFold, cross_validate, cross_validate_with_progress, search,
};
use skiff_onnx::{Dim, ElemType, Graph, Model, metadata};

/// What a model predicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Task {
    /// A class per row (`label` and `probabilities` outputs).
    Classification,
    /// A number per row (`variable` [N, 1]).
    Regression,
    /// A cluster per row (`label` and `scores` [N, K]).
    Clustering,
}

impl Task {
    /// The name recorded in the model's `skiff.task` metadata.
    pub fn as_str(self) -> &'static str {
        match self {
            Task::Classification => "classification",
            Task::Regression => "regression",
            Task::Clustering => "clustering",
        }
    }
}
pub use tree::{
    ClassCriterion, DecisionTreeClassifier, DecisionTreeClassifierParams, DecisionTreeRegressor,
    DecisionTreeRegressorParams, FittedDecisionTreeClassifier, FittedDecisionTreeRegressor,
    RegressionCriterion, Tree, TreeGrowth, split_threshold,
};

/// What an exported model records about its training data.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportInfo {
    /// Feature column names, in the order of the model's input columns.
    pub feature_names: Vec<String>,
    /// The target column's name.
    pub target: String,
    /// A metric measured on the training data: name and value.
    pub training_metric: Option<(String, f64)>,
}

impl ExportInfo {
    fn annotate<E: Export + ?Sized>(&self, model: Model, estimator: &E) -> Model {
        let mut model = model
            .metadata(metadata::FEATURE_NAMES, json(&self.feature_names))
            .metadata(metadata::TARGET, self.target.clone())
            .metadata(metadata::ALGORITHM, estimator.algorithm())
            .metadata(metadata::TASK, estimator.task().as_str())
            .metadata(
                metadata::HYPERPARAMETERS,
                estimator.hyperparameters().to_string(),
            )
            .metadata(metadata::VERSION, env!("CARGO_PKG_VERSION"))
            .doc(format!(
                "{} fitted by skiff {}",
                estimator.algorithm(),
                env!("CARGO_PKG_VERSION")
            ));
        if let Some(classes) = estimator.classes() {
            model = model.metadata(metadata::CLASSES, classes.to_json());
        }
        for (key, value) in estimator.metadata() {
            model = model.metadata(&key, value);
        }
        if let Some((name, value)) = &self.training_metric {
            model = model.metadata(
                metadata::TRAINING_METRIC,
                serde_json::json!({ "name": name, "value": value }).to_string(),
            );
        }
        model
    }
}

fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("value serialises")
}

/// A fitted estimator that writes itself as an ONNX model.
///
/// Output names follow skl2onnx: classifiers `label` and `probabilities` [N, C], regressors
/// `variable` [N, 1], clusterers `label` (int64) and `scores` [N, K].
pub trait Export {
    /// The estimator's CLI name, e.g. `logistic-regression`.
    fn algorithm(&self) -> &str;
    /// The hyperparameters it was fitted with, as a JSON object.
    fn hyperparameters(&self) -> serde_json::Value;
    /// What it predicts.
    fn task(&self) -> Task;
    /// How many features a row has.
    fn n_features(&self) -> usize;
    /// The classes of a classifier, in the column order of its probabilities.
    fn classes(&self) -> Option<&ClassLabels> {
        None
    }
    /// More metadata to record, e.g. a private model's `skiff.dp.*` guarantee.
    fn metadata(&self) -> Vec<(String, String)> {
        Vec::new()
    }
    /// Adds the nodes that compute the model's outputs from `x`, float [N, n_features], and
    /// declares those outputs. A pipeline calls it after its preprocessing steps.
    fn write(&self, g: &mut Graph, x: &str);
    /// The ONNX model: input `X`, float [N, n_features], the graph, and skiff's metadata.
    fn to_onnx(&self, info: &ExportInfo) -> Model {
        let mut g = Graph::new(&self.algorithm().replace('-', "_"));
        g.input(
            "X",
            ElemType::Float,
            &[Dim::batch(), Dim::Fixed(self.n_features() as u64)],
        );
        self.write(&mut g, "X");
        info.annotate(Model::new(g), self)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn fitted_types_are_send_and_sync() {
        fn assert_auto<T: Send + Sync>() {}
        assert_auto::<crate::FittedLogisticRegression>();
        assert_auto::<crate::LogisticRegressionParams>();
        assert_auto::<crate::FittedDecisionTreeClassifier>();
        assert_auto::<crate::FittedDecisionTreeRegressor>();
        assert_auto::<crate::FittedRandomForestClassifier>();
        assert_auto::<crate::FittedRandomForestRegressor>();
        assert_auto::<crate::FittedMlpClassifier>();
        assert_auto::<crate::FittedMlpRegressor>();
    }
}
