//! scikit-learn-style estimators that export themselves to ONNX.
//!
//! Each estimator `Foo` has `Foo::params()`, a builder of scikit-learn's hyperparameters whose
//! `fit` validates them in one place and returns a `FittedFoo`; every fitted type implements
//! [`Export`], which writes the ONNX graph that skiff's runtime, tract and ONNX Runtime run.
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

mod error;
mod forest;
mod labels;
mod logistic;
mod tree;

pub use error::{Error, Result};
pub use forest::{
    FittedRandomForestClassifier, FittedRandomForestRegressor, MaxFeatures, RandomForestClassifier,
    RandomForestClassifierParams, RandomForestRegressor, RandomForestRegressorParams,
};
pub use labels::{ClassLabels, ClassTarget};
pub use logistic::{FittedLogisticRegression, LogisticRegression, LogisticRegressionParams};
use skiff_onnx::{Model, metadata};
pub use tree::{
    ClassCriterion, DecisionTreeClassifier, DecisionTreeClassifierParams, DecisionTreeRegressor,
    DecisionTreeRegressorParams, FittedDecisionTreeClassifier, FittedDecisionTreeRegressor,
    RegressionCriterion, Tree, split_threshold,
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
    fn annotate(&self, model: Model, estimator: &dyn Export, task: &str) -> Model {
        let mut model = model
            .metadata(metadata::FEATURE_NAMES, json(&self.feature_names))
            .metadata(metadata::TARGET, self.target.clone())
            .metadata(metadata::ALGORITHM, estimator.algorithm())
            .metadata(metadata::TASK, task)
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
pub trait Export {
    /// The estimator's CLI name, e.g. `logistic-regression`.
    fn algorithm(&self) -> &'static str;
    /// The hyperparameters it was fitted with, as a JSON object.
    fn hyperparameters(&self) -> serde_json::Value;
    /// The ONNX model: graph plus skiff's metadata.
    fn to_onnx(&self, info: &ExportInfo) -> Model;
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
    }
}
