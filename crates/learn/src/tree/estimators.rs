//! scikit-learn's `DecisionTreeClassifier` and `DecisionTreeRegressor`.

use super::*;
use crate::catalog::{Estimator, Fitted, Predictions};
use crate::check::check_data;
use crate::labels::{ClassLabels, ClassTarget};
use crate::params::Params;
use crate::{Export, Result, Task};
use ndarray::{Array2, ArrayView2};
use serde::{Deserialize, Serialize};
use skiff_onnx::Graph;

// DecisionTreeClassifier
// ---------------------------------------------------------------------------------------------

/// A CART classification tree (scikit-learn's `DecisionTreeClassifier`).
///
/// Leaves hold class distributions; `predict` returns the most probable class (the first of
/// equals). Without `random_state` the features are searched in column order, so of equally
/// good splits the one on the lowest-numbered feature wins; with it, each node searches them in
/// an order drawn from that seed, as scikit-learn does.
///
/// ```
/// use skiff_learn::{ClassTarget, DecisionTreeClassifier};
/// use ndarray::array;
///
/// let x = array![[0.0, 0.1], [0.2, 0.0], [3.0, 3.1], [3.2, 2.9]];
/// let y = ClassTarget::from_cells(&["cold", "cold", "hot", "hot"]).unwrap();
/// let model = DecisionTreeClassifier::params().max_depth(Some(3)).fit(x.view(), &y).unwrap();
/// assert_eq!(model.predict(x.view()).unwrap(), vec!["cold", "cold", "hot", "hot"]);
/// assert_eq!(model.tree.depth(), 1);
/// ```
pub struct DecisionTreeClassifier;

impl DecisionTreeClassifier {
    /// Hyperparameters with scikit-learn's defaults.
    pub fn params() -> DecisionTreeClassifierParams {
        DecisionTreeClassifierParams::default()
    }
}

/// Hyperparameters of [`DecisionTreeClassifier`], named as in scikit-learn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionTreeClassifierParams {
    /// Split quality measure (default gini).
    pub criterion: ClassCriterion,
    /// `max_depth`, `min_samples_split` and `min_samples_leaf`.
    #[serde(flatten)]
    pub growth: TreeGrowth,
    /// Seed of the order features are searched in, which breaks ties (default None).
    pub random_state: Option<u64>,
}

impl Default for DecisionTreeClassifierParams {
    fn default() -> Self {
        DecisionTreeClassifierParams {
            criterion: ClassCriterion::Gini,
            growth: TreeGrowth::default(),
            random_state: None,
        }
    }
}

impl DecisionTreeClassifierParams {
    /// Sets `criterion`.
    pub fn criterion(mut self, criterion: ClassCriterion) -> Self {
        self.criterion = criterion;
        self
    }

    /// Sets `max_depth`.
    pub fn max_depth(mut self, max_depth: Option<usize>) -> Self {
        self.growth.max_depth = max_depth;
        self
    }

    /// Sets `min_samples_split`.
    pub fn min_samples_split(mut self, n: usize) -> Self {
        self.growth.min_samples_split = n;
        self
    }

    /// Sets `min_samples_leaf`.
    pub fn min_samples_leaf(mut self, n: usize) -> Self {
        self.growth.min_samples_leaf = n;
        self
    }

    /// Sets `random_state`.
    pub fn random_state(mut self, seed: Option<u64>) -> Self {
        self.random_state = seed;
        self
    }

    /// Checks every hyperparameter; `fit` calls this first.
    fn validate(&self) -> Result<()> {
        self.growth.check()
    }

    /// Fits the tree to rows `x` and their classes `y`.
    pub fn fit(
        &self,
        x: ArrayView2<'_, f64>,
        y: &ClassTarget,
    ) -> Result<FittedDecisionTreeClassifier> {
        self.check()?;
        check_data(x, y.indices.len())?;
        let n_classes = y.classes.len();
        let data = Data::new(
            x,
            Target::Classes {
                indices: &y.indices,
                n_classes,
            },
        );
        let growth = self.growth.growth(self.criterion.criterion(), x.ncols());
        let weights = vec![1.0; x.nrows()];
        let mut rng = tree_rng(self.random_state);
        let tree = grow(&data, &weights, &growth, rng.as_mut());
        Ok(FittedDecisionTreeClassifier {
            tree,
            classes: y.classes.clone(),
            n_features: x.ncols(),
            params: self.clone(),
        })
    }
}

/// A fitted [`DecisionTreeClassifier`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FittedDecisionTreeClassifier {
    /// The tree; its node values are class probabilities in the order of `classes`.
    pub tree: Tree,
    /// The classes, in column order of `predict_proba`.
    pub classes: ClassLabels,
    /// Number of features the model expects.
    pub n_features: usize,
    /// The hyperparameters it was fitted with.
    pub params: DecisionTreeClassifierParams,
}

impl FittedDecisionTreeClassifier {
    /// Class probabilities, rows × classes: the distribution of each row's leaf.
    pub fn predict_proba(&self, x: ArrayView2<'_, f64>) -> Result<Array2<f64>> {
        check_columns(x, self.n_features)?;
        Ok(ensemble_proba(
            std::slice::from_ref(&self.tree),
            x,
            self.classes.len(),
        ))
    }

    /// Index of the predicted class of each row.
    pub fn predict_index(&self, x: ArrayView2<'_, f64>) -> Result<Vec<usize>> {
        check_columns(x, self.n_features)?;
        Ok(ensemble_index(
            std::slice::from_ref(&self.tree),
            x,
            self.classes.len(),
        ))
    }

    /// The predicted class of each row, as text.
    pub fn predict(&self, x: ArrayView2<'_, f64>) -> Result<Vec<String>> {
        Ok(self
            .predict_index(x)?
            .into_iter()
            .map(|i| self.classes.name(i))
            .collect())
    }

    /// Mean accuracy on rows `x` with true classes `y` (which must use this model's classes).
    pub fn score(&self, x: ArrayView2<'_, f64>, y: &[usize]) -> Result<f64> {
        Ok(crate::metrics::accuracy(y, &self.predict_index(x)?))
    }
}

impl Params for DecisionTreeClassifierParams {
    const ALGORITHM: &'static str = "decision-tree-classifier";
    fn check(&self) -> Result<()> {
        self.validate()
    }
}

impl Estimator for DecisionTreeClassifierParams {
    const TASK: Task = Task::Classification;
    const SUMMARY: &'static str =
        "CART decision tree (float32 splits, class distributions in leaves)";
    type Model = FittedDecisionTreeClassifier;
    fn fit_classes(
        &self,
        x: ArrayView2<'_, f64>,
        y: &ClassTarget,
    ) -> Result<FittedDecisionTreeClassifier> {
        self.fit(x, y)
    }
}

impl Fitted for FittedDecisionTreeClassifier {
    fn predict_rows(&self, x: ArrayView2<'_, f64>) -> Predictions {
        Predictions::Classes(ensemble_index(
            std::slice::from_ref(&self.tree),
            x,
            self.classes.len(),
        ))
    }

    fn scores(&self, x: ArrayView2<'_, f64>) -> Array2<f64> {
        ensemble_proba(std::slice::from_ref(&self.tree), x, self.classes.len())
    }
}

impl Export for FittedDecisionTreeClassifier {
    fn algorithm(&self) -> &str {
        DecisionTreeClassifierParams::ALGORITHM
    }

    fn hyperparameters(&self) -> serde_json::Value {
        self.params.to_json()
    }

    fn task(&self) -> Task {
        Task::Classification
    }

    fn n_features(&self) -> usize {
        self.n_features
    }

    fn classes(&self) -> Option<&ClassLabels> {
        Some(&self.classes)
    }

    fn write(&self, g: &mut Graph, x: &str) {
        write_classifier(g, x, std::slice::from_ref(&self.tree), &self.classes);
    }
}

// ---------------------------------------------------------------------------------------------
// DecisionTreeRegressor
// ---------------------------------------------------------------------------------------------

/// A CART regression tree (scikit-learn's `DecisionTreeRegressor`): leaves hold the mean
/// target of their rows; splits minimise the squared error. Ties between equally good features
/// go to the lowest-numbered feature.
///
/// ```
/// use skiff_learn::DecisionTreeRegressor;
/// use ndarray::array;
///
/// let x = array![[1.0], [2.0], [3.0], [4.0]];
/// let y = [1.0, 1.0, 5.0, 7.0];
/// let model = DecisionTreeRegressor::params().max_depth(Some(1)).fit(x.view(), &y).unwrap();
/// assert_eq!(model.predict(x.view()).unwrap(), vec![1.0, 1.0, 6.0, 6.0]);
/// ```
pub struct DecisionTreeRegressor;

impl DecisionTreeRegressor {
    /// Hyperparameters with scikit-learn's defaults.
    pub fn params() -> DecisionTreeRegressorParams {
        DecisionTreeRegressorParams::default()
    }
}

/// Hyperparameters of [`DecisionTreeRegressor`], named as in scikit-learn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionTreeRegressorParams {
    /// Split quality measure (squared_error).
    pub criterion: RegressionCriterion,
    /// `max_depth`, `min_samples_split` and `min_samples_leaf`.
    #[serde(flatten)]
    pub growth: TreeGrowth,
}

impl Default for DecisionTreeRegressorParams {
    fn default() -> Self {
        DecisionTreeRegressorParams {
            criterion: RegressionCriterion::SquaredError,
            growth: TreeGrowth::default(),
        }
    }
}

impl DecisionTreeRegressorParams {
    /// Sets `max_depth`.
    pub fn max_depth(mut self, max_depth: Option<usize>) -> Self {
        self.growth.max_depth = max_depth;
        self
    }

    /// Sets `min_samples_split`.
    pub fn min_samples_split(mut self, n: usize) -> Self {
        self.growth.min_samples_split = n;
        self
    }

    /// Sets `min_samples_leaf`.
    pub fn min_samples_leaf(mut self, n: usize) -> Self {
        self.growth.min_samples_leaf = n;
        self
    }

    /// Checks every hyperparameter; `fit` calls this first.
    fn validate(&self) -> Result<()> {
        self.growth.check()
    }

    /// Fits the tree to rows `x` and their targets `y`.
    pub fn fit(&self, x: ArrayView2<'_, f64>, y: &[f64]) -> Result<FittedDecisionTreeRegressor> {
        self.check()?;
        check_regression_target(x, y)?;
        let data = Data::new(x, Target::Values(y));
        let growth = self.growth.growth(Criterion::SquaredError, x.ncols());
        let weights = vec![1.0; x.nrows()];
        let tree = grow(&data, &weights, &growth, None);
        Ok(FittedDecisionTreeRegressor {
            tree,
            n_features: x.ncols(),
            params: self.clone(),
        })
    }
}

/// A fitted [`DecisionTreeRegressor`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FittedDecisionTreeRegressor {
    /// The tree; its node values are mean targets.
    pub tree: Tree,
    /// Number of features the model expects.
    pub n_features: usize,
    /// The hyperparameters it was fitted with.
    pub params: DecisionTreeRegressorParams,
}

impl FittedDecisionTreeRegressor {
    /// The predicted target of each row: the mean target of its leaf.
    pub fn predict(&self, x: ArrayView2<'_, f64>) -> Result<Vec<f64>> {
        check_columns(x, self.n_features)?;
        Ok(ensemble_mean(std::slice::from_ref(&self.tree), x))
    }

    /// The coefficient of determination R² on rows `x` with true targets `y`.
    pub fn score(&self, x: ArrayView2<'_, f64>, y: &[f64]) -> Result<f64> {
        Ok(crate::metrics::r2(y, &self.predict(x)?))
    }
}

impl Params for DecisionTreeRegressorParams {
    const ALGORITHM: &'static str = "decision-tree-regressor";
    fn check(&self) -> Result<()> {
        self.validate()
    }
}

impl Estimator for DecisionTreeRegressorParams {
    const TASK: Task = Task::Regression;
    const SUMMARY: &'static str = "CART regression tree (float32 splits)";
    type Model = FittedDecisionTreeRegressor;
    fn fit_values(&self, x: ArrayView2<'_, f64>, y: &[f64]) -> Result<FittedDecisionTreeRegressor> {
        self.fit(x, y)
    }
}

impl Fitted for FittedDecisionTreeRegressor {
    fn predict_rows(&self, x: ArrayView2<'_, f64>) -> Predictions {
        Predictions::Values(ensemble_mean(std::slice::from_ref(&self.tree), x))
    }

    fn scores(&self, x: ArrayView2<'_, f64>) -> Array2<f64> {
        Array2::from_shape_vec(
            (x.nrows(), 1),
            ensemble_mean(std::slice::from_ref(&self.tree), x),
        )
        .expect("one per row")
    }
}

impl Export for FittedDecisionTreeRegressor {
    fn algorithm(&self) -> &str {
        DecisionTreeRegressorParams::ALGORITHM
    }

    fn hyperparameters(&self) -> serde_json::Value {
        self.params.to_json()
    }

    fn task(&self) -> Task {
        Task::Regression
    }

    fn n_features(&self) -> usize {
        self.n_features
    }

    fn write(&self, g: &mut Graph, x: &str) {
        write_regressor(g, x, std::slice::from_ref(&self.tree));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn bad_hyperparameters_are_rejected_before_fitting() {
        let x = array![[0.0], [1.0]];
        let y = ClassTarget::from_cells(&["a", "b"]).unwrap();
        for params in [
            DecisionTreeClassifier::params().max_depth(Some(0)),
            DecisionTreeClassifier::params().min_samples_split(1),
            DecisionTreeClassifier::params().min_samples_leaf(0),
        ] {
            assert!(matches!(
                params.fit(x.view(), &y),
                Err(Error::InvalidParam { .. })
            ));
        }
        assert!(matches!(
            DecisionTreeRegressor::params()
                .min_samples_split(0)
                .fit(x.view(), &[0.0, 1.0]),
            Err(Error::InvalidParam { .. })
        ));
    }

    #[test]
    fn set_parses_names_and_rejects_unknown_ones() {
        let mut p = DecisionTreeClassifier::params();
        p.set("criterion", "entropy").unwrap();
        p.set("max_depth", "4").unwrap();
        p.set("min_samples_leaf", "3").unwrap();
        p.set("random_state", "7").unwrap();
        assert_eq!(p.criterion, ClassCriterion::Entropy);
        assert_eq!(
            (
                p.growth.max_depth,
                p.growth.min_samples_leaf,
                p.random_state
            ),
            (Some(4), 3, Some(7))
        );
        p.set("max_depth", "None").unwrap();
        assert_eq!(p.growth.max_depth, None);
        let err = p.set("max_features", "2").unwrap_err().to_string();
        assert!(
            err.contains("criterion, max_depth, min_samples_leaf, min_samples_split, random_state"),
            "{err}"
        );
        let err = p.set("criterion", "mse").unwrap_err().to_string();
        assert!(err.contains("\"gini\", \"entropy\", \"log_loss\""), "{err}");
        assert!(p.set("min_samples_split", "1").is_err());
        assert!(p.set("max_depth", "0").is_err());

        let mut r = DecisionTreeRegressor::params();
        r.set("criterion", "squared_error").unwrap();
        assert!(r.set("criterion", "gini").is_err());
        assert!(r.set("random_state", "1").is_err());
    }

    #[test]
    fn fully_grown_tree_fits_training_data_exactly() {
        let x = array![
            [0.0, 5.0],
            [1.0, 4.0],
            [2.0, 3.0],
            [3.0, 3.0],
            [4.0, 1.0],
            [5.0, 9.0]
        ];
        let y = ClassTarget::from_cells(&["a", "b", "a", "c", "b", "a"]).unwrap();
        let m = DecisionTreeClassifier::params().fit(x.view(), &y).unwrap();
        assert_eq!(m.predict_index(x.view()).unwrap(), y.indices);
        // Every leaf is pure.
        for i in 0..m.tree.node_count() {
            if m.tree.is_leaf(i) {
                assert!(m.tree.values(i).contains(&1.0));
            }
        }
        let targets = [0.5, -1.0, 2.0, 3.5, 7.0, 0.25];
        let r = DecisionTreeRegressor::params()
            .fit(x.view(), &targets)
            .unwrap();
        assert_eq!(r.predict(x.view()).unwrap(), targets);
        assert_eq!(r.score(x.view(), &targets).unwrap(), 1.0);
    }

    #[test]
    fn growth_limits_are_respected() {
        let x = Array2::from_shape_fn((40, 1), |(i, _)| i as f64);
        let y: Vec<f64> = (0..40).map(|i| (i * i) as f64).collect();
        let deep = DecisionTreeRegressor::params().fit(x.view(), &y).unwrap();
        assert!(deep.tree.depth() > 3);
        let shallow = DecisionTreeRegressor::params()
            .max_depth(Some(3))
            .fit(x.view(), &y)
            .unwrap();
        assert_eq!(shallow.tree.depth(), 3);
        let leafy = DecisionTreeRegressor::params()
            .min_samples_leaf(7)
            .fit(x.view(), &y)
            .unwrap();
        let mut counts = vec![0; leafy.tree.node_count()];
        for row in x.outer_iter() {
            counts[leafy.tree.leaf(|f| row[f])] += 1;
        }
        for (i, c) in counts.iter().enumerate() {
            if leafy.tree.is_leaf(i) {
                assert!(*c >= 7, "leaf {i} has {c} rows");
            }
        }
    }

    #[test]
    fn thresholds_are_float32_midpoints_or_the_lower_value() {
        assert_eq!(split_threshold(1.0, 2.0), 1.5);
        // 1 + 2^-23 and 1 + 2^-22: the f64 midpoint 1 + 1.5·2^-23 rounds (to even) to the
        // upper value in f32, so the threshold is the lower one.
        let a = f32::from_bits(1.0f32.to_bits() + 1);
        let b = f32::from_bits(1.0f32.to_bits() + 2);
        let mid = a as f64 / 2.0 + b as f64 / 2.0;
        assert!(mid > a as f64 && mid < b as f64);
        assert_eq!(mid as f32, b);
        assert_eq!(split_threshold(a, b), a);

        let x = array![[a as f64], [b as f64]];
        let y = ClassTarget::from_cells(&["lo", "hi"]).unwrap();
        let m = DecisionTreeClassifier::params().fit(x.view(), &y).unwrap();
        assert_eq!(m.tree.threshold[0], a);
        assert_eq!(m.predict(x.view()).unwrap(), vec!["lo", "hi"]);
        // A value between them in f64 goes where its float32 goes: up to b.
        let between = array![[mid]];
        assert_eq!(m.predict(between.view()).unwrap(), vec!["hi"]);
    }

    #[test]
    fn values_equal_in_float32_cannot_be_split() {
        let x = array![[1.0], [1.0 + 1e-10]];
        let y = ClassTarget::from_cells(&["a", "b"]).unwrap();
        let m = DecisionTreeClassifier::params().fit(x.view(), &y).unwrap();
        assert_eq!(m.tree.node_count(), 1);
        assert_eq!(
            m.predict_proba(x.view()).unwrap().row(0).to_vec(),
            [0.5, 0.5]
        );
    }

    #[test]
    fn random_state_orders_features_but_not_the_fit_quality() {
        // Two identical features: the tie goes to feature 0 without a seed.
        let x = array![[0.0, 0.0], [1.0, 1.0], [2.0, 2.0], [3.0, 3.0]];
        let y = ClassTarget::from_cells(&["a", "a", "b", "b"]).unwrap();
        let m = DecisionTreeClassifier::params().fit(x.view(), &y).unwrap();
        assert_eq!(m.tree.feature[0], 0);
        let features: std::collections::BTreeSet<u32> = (0..16)
            .map(|seed| {
                let m = DecisionTreeClassifier::params()
                    .random_state(Some(seed))
                    .fit(x.view(), &y)
                    .unwrap();
                assert_eq!(m.score(x.view(), &y.indices).unwrap(), 1.0);
                m.tree.feature[0]
            })
            .collect();
        assert_eq!(features.len(), 2, "seeds should pick either feature");
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        let y = ClassTarget::from_cells(&["a", "b"]).unwrap();
        let nan = array![[0.0], [f64::NAN]];
        assert!(matches!(
            DecisionTreeClassifier::params().fit(nan.view(), &y),
            Err(Error::NonFinite)
        ));
        let short = array![[0.0]];
        assert!(matches!(
            DecisionTreeClassifier::params().fit(short.view(), &y),
            Err(Error::Shape(_))
        ));
        assert!(matches!(
            DecisionTreeRegressor::params().fit(array![[0.0], [1.0]].view(), &[0.0, f64::NAN]),
            Err(Error::NonFinite)
        ));
        let m = DecisionTreeClassifier::params()
            .fit(array![[0.0], [1.0]].view(), &y)
            .unwrap();
        assert!(matches!(
            m.predict(array![[0.0, 1.0]].view()),
            Err(Error::Shape(_))
        ));
    }
}
