//! Random forests (scikit-learn's `RandomForestClassifier` and `RandomForestRegressor`): CART
//! trees from [`crate::tree`], each grown on a bootstrap sample with a random subset of
//! features looked at per node, fitted in parallel with rayon.
//!
//! Randomness comes from ChaCha8 generators: one seeded with `random_state` (or a seed drawn
//! from the OS-seeded hasher of the standard library when there is none) draws one seed per
//! tree, and each tree's generator draws its bootstrap sample and feature orders. Each tree
//! depends only on its own seed, so a fixed `random_state` gives the same forest whatever the
//! number of threads.

use crate::catalog::{Estimator, Fitted, Predictions};
use crate::check::check_data;
use crate::labels::{ClassLabels, ClassTarget};
use crate::params::{self, Params};
use crate::tree::{
    ClassCriterion, Criterion, Data, Growth, RegressionCriterion, Target, Tree, TreeGrowth,
    check_columns, check_regression_target, ensemble_index, ensemble_mean, ensemble_proba, grow,
    write_classifier, write_regressor,
};
use crate::{Error, Export, Result, Task};
use ndarray::{Array2, ArrayView2};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use skiff_onnx::Graph;

/// How many features each node looks at (scikit-learn's `max_features`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(into = "serde_json::Value", try_from = "serde_json::Value")]
pub enum MaxFeatures {
    /// `sqrt`: the square root of the number of features, rounded down, at least 1.
    Sqrt,
    /// `log2`: the base-2 logarithm of the number of features, rounded down, at least 1.
    Log2,
    /// An exact count, at most the number of features.
    Count(usize),
    /// A fraction in (0, 1] of the features, rounded down, at least 1.
    Fraction(f64),
    /// `None`: every feature.
    All,
}

const MAX_FEATURES_EXPECTED: &str =
    "sqrt, log2, None, a positive integer, or a fraction in (0, 1] such as 0.5";

impl MaxFeatures {
    /// Parses `sqrt`, `log2`, `None`, an integer or a float with a decimal point.
    pub fn parse(value: &str) -> Result<MaxFeatures> {
        let invalid = || params::invalid("max_features", value, MAX_FEATURES_EXPECTED);
        let parsed = match value {
            "sqrt" => MaxFeatures::Sqrt,
            "log2" => MaxFeatures::Log2,
            "None" | "none" | "null" => MaxFeatures::All,
            _ if value.contains(['.', 'e', 'E']) => {
                MaxFeatures::Fraction(value.parse().map_err(|_| invalid())?)
            }
            _ => MaxFeatures::Count(value.parse().map_err(|_| invalid())?),
        };
        parsed.check()?;
        Ok(parsed)
    }

    fn check(self) -> Result<()> {
        let ok = match self {
            MaxFeatures::Count(n) => n >= 1,
            MaxFeatures::Fraction(f) => f > 0.0 && f <= 1.0,
            _ => true,
        };
        if ok {
            Ok(())
        } else {
            Err(params::invalid(
                "max_features",
                serde_json::Value::from(self),
                MAX_FEATURES_EXPECTED,
            ))
        }
    }

    /// The number of features each node looks at, out of `n_features`.
    pub fn resolve(self, n_features: usize) -> Result<usize> {
        let n = n_features as f64;
        let count = match self {
            MaxFeatures::Sqrt => n.sqrt() as usize,
            MaxFeatures::Log2 => n.log2() as usize,
            MaxFeatures::Count(c) => {
                if c > n_features {
                    return Err(params::invalid(
                        "max_features",
                        c,
                        "at most the number of features",
                    ));
                }
                c
            }
            MaxFeatures::Fraction(f) => (f * n) as usize,
            MaxFeatures::All => n_features,
        };
        Ok(count.clamp(1, n_features.max(1)))
    }
}

impl From<MaxFeatures> for serde_json::Value {
    fn from(m: MaxFeatures) -> Self {
        match m {
            MaxFeatures::Sqrt => "sqrt".into(),
            MaxFeatures::Log2 => "log2".into(),
            MaxFeatures::Count(c) => c.into(),
            MaxFeatures::Fraction(f) => f.into(),
            MaxFeatures::All => serde_json::Value::Null,
        }
    }
}

impl TryFrom<serde_json::Value> for MaxFeatures {
    type Error = String;

    fn try_from(v: serde_json::Value) -> std::result::Result<Self, String> {
        match v {
            serde_json::Value::Null => Ok(MaxFeatures::All),
            serde_json::Value::String(s) => {
                MaxFeatures::parse(&s).map_err(|_| MAX_FEATURES_EXPECTED.to_string())
            }
            serde_json::Value::Number(n) => match (n.as_u64(), n.as_f64()) {
                (Some(c), _) => Ok(MaxFeatures::Count(c as usize)),
                (None, Some(f)) => Ok(MaxFeatures::Fraction(f)),
                _ => Err(format!("invalid max_features {n}")),
            },
            other => Err(format!("invalid max_features {other}")),
        }
    }
}

fn invalid_n_estimators(value: &str) -> Error {
    params::invalid("n_estimators", value, "a positive integer")
}

/// Grows `n_trees` trees in parallel; tree `i` uses the `i`th seed drawn from `random_state`.
fn grow_forest(
    data: &Data<'_>,
    growth: &Growth,
    n_trees: usize,
    bootstrap: bool,
    random_state: Option<u64>,
) -> Vec<Tree> {
    let seed = random_state.unwrap_or_else(params::random_seed);
    let mut master = ChaCha8Rng::seed_from_u64(seed);
    let seeds: Vec<u64> = (0..n_trees).map(|_| master.random()).collect();
    let n = data.n_rows;
    seeds
        .into_par_iter()
        .map(|seed| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let weights = if bootstrap {
                let mut counts = vec![0.0; n];
                for _ in 0..n {
                    counts[rng.random_range(0..n)] += 1.0;
                }
                counts
            } else {
                vec![1.0; n]
            };
            grow(data, &weights, growth, Some(&mut rng))
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// RandomForestClassifier
// ---------------------------------------------------------------------------------------------

/// A random forest of classification trees (scikit-learn's `RandomForestClassifier`).
///
/// Class probabilities are the mean of the trees' leaf distributions; `predict` returns the
/// most probable class (the first of equals).
///
/// ```
/// use skiff_learn::{ClassTarget, RandomForestClassifier};
/// use ndarray::array;
///
/// let x = array![[0.0, 0.1], [0.2, 0.0], [0.1, 0.3], [3.0, 3.1], [3.2, 2.9], [2.9, 3.3]];
/// let y = ClassTarget::from_cells(&["cold", "cold", "cold", "hot", "hot", "hot"]).unwrap();
/// let model = RandomForestClassifier::params()
///     .n_estimators(20)
///     .random_state(Some(0))
///     .fit(x.view(), &y)
///     .unwrap();
/// assert_eq!(model.trees.len(), 20);
/// assert_eq!(model.predict(x.view()).unwrap(), vec!["cold", "cold", "cold", "hot", "hot", "hot"]);
/// ```
pub struct RandomForestClassifier;

impl RandomForestClassifier {
    /// Hyperparameters with scikit-learn's defaults.
    pub fn params() -> RandomForestClassifierParams {
        RandomForestClassifierParams::default()
    }
}

/// Hyperparameters of [`RandomForestClassifier`], named as in scikit-learn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RandomForestClassifierParams {
    /// Number of trees (default 100).
    pub n_estimators: usize,
    /// Split quality measure (default gini).
    pub criterion: ClassCriterion,
    /// `max_depth`, `min_samples_split` and `min_samples_leaf`.
    #[serde(flatten)]
    pub growth: TreeGrowth,
    /// Features each node looks at (default sqrt).
    pub max_features: MaxFeatures,
    /// Grow each tree on a bootstrap sample of the rows (default true).
    pub bootstrap: bool,
    /// Seed of every random choice; `None` draws one (default).
    pub random_state: Option<u64>,
}

impl Default for RandomForestClassifierParams {
    fn default() -> Self {
        RandomForestClassifierParams {
            n_estimators: 100,
            criterion: ClassCriterion::Gini,
            growth: TreeGrowth::default(),
            max_features: MaxFeatures::Sqrt,
            bootstrap: true,
            random_state: None,
        }
    }
}

macro_rules! forest_setters {
    () => {
        /// Sets `n_estimators`.
        pub fn n_estimators(mut self, n: usize) -> Self {
            self.n_estimators = n;
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

        /// Sets `max_features`.
        pub fn max_features(mut self, max_features: MaxFeatures) -> Self {
            self.max_features = max_features;
            self
        }

        /// Sets `bootstrap`.
        pub fn bootstrap(mut self, bootstrap: bool) -> Self {
            self.bootstrap = bootstrap;
            self
        }

        /// Sets `random_state`.
        pub fn random_state(mut self, seed: Option<u64>) -> Self {
            self.random_state = seed;
            self
        }

        /// Checks every hyperparameter; `fit` calls this first.
        fn validate(&self) -> Result<()> {
            if self.n_estimators == 0 {
                return Err(invalid_n_estimators("0"));
            }
            self.max_features.check()?;
            self.growth.check()
        }

        fn tree_growth(&self, criterion: Criterion, n_features: usize) -> Result<Growth> {
            let max_features = self.max_features.resolve(n_features)?;
            Ok(self.growth.growth(criterion, max_features))
        }
    };
}

impl RandomForestClassifierParams {
    forest_setters!();

    /// Sets `criterion`.
    pub fn criterion(mut self, criterion: ClassCriterion) -> Self {
        self.criterion = criterion;
        self
    }

    /// Fits the forest to rows `x` and their classes `y`.
    pub fn fit(
        &self,
        x: ArrayView2<'_, f64>,
        y: &ClassTarget,
    ) -> Result<FittedRandomForestClassifier> {
        self.check()?;
        check_data(x, y.indices.len())?;
        let growth = self.tree_growth(self.criterion.criterion(), x.ncols())?;
        let data = Data::new(
            x,
            Target::Classes {
                indices: &y.indices,
                n_classes: y.classes.len(),
            },
        );
        let trees = grow_forest(
            &data,
            &growth,
            self.n_estimators,
            self.bootstrap,
            self.random_state,
        );
        Ok(FittedRandomForestClassifier {
            trees,
            classes: y.classes.clone(),
            n_features: x.ncols(),
            params: self.clone(),
        })
    }
}

/// A fitted [`RandomForestClassifier`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FittedRandomForestClassifier {
    /// The trees; their node values are class probabilities in the order of `classes`.
    pub trees: Vec<Tree>,
    /// The classes, in column order of `predict_proba`.
    pub classes: ClassLabels,
    /// Number of features the model expects.
    pub n_features: usize,
    /// The hyperparameters it was fitted with.
    pub params: RandomForestClassifierParams,
}

impl FittedRandomForestClassifier {
    /// Class probabilities, rows × classes: the mean of the trees' leaf distributions.
    pub fn predict_proba(&self, x: ArrayView2<'_, f64>) -> Result<Array2<f64>> {
        check_columns(x, self.n_features)?;
        Ok(ensemble_proba(&self.trees, x, self.classes.len()))
    }

    /// Index of the predicted class of each row. The probabilities are summed in float32 as
    /// the exported model sums them, so that near-ties go the same way here and there.
    pub fn predict_index(&self, x: ArrayView2<'_, f64>) -> Result<Vec<usize>> {
        check_columns(x, self.n_features)?;
        Ok(ensemble_index(&self.trees, x, self.classes.len()))
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

impl Params for RandomForestClassifierParams {
    const ALGORITHM: &'static str = "random-forest-classifier";
    fn check(&self) -> Result<()> {
        self.validate()
    }
}

impl Estimator for RandomForestClassifierParams {
    const TASK: Task = Task::Classification;
    const SUMMARY: &'static str =
        "Random forest of CART trees (bootstrap, random feature subsets, parallel)";
    type Model = FittedRandomForestClassifier;
    fn fit_classes(
        &self,
        x: ArrayView2<'_, f64>,
        y: &ClassTarget,
    ) -> Result<FittedRandomForestClassifier> {
        self.fit(x, y)
    }
}

impl Fitted for FittedRandomForestClassifier {
    fn predict_rows(&self, x: ArrayView2<'_, f64>) -> Predictions {
        Predictions::Classes(ensemble_index(&self.trees, x, self.classes.len()))
    }

    fn scores(&self, x: ArrayView2<'_, f64>) -> Array2<f64> {
        ensemble_proba(&self.trees, x, self.classes.len())
    }
}

impl Export for FittedRandomForestClassifier {
    fn algorithm(&self) -> &str {
        RandomForestClassifierParams::ALGORITHM
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
        write_classifier(g, x, &self.trees, &self.classes);
    }
}

// ---------------------------------------------------------------------------------------------
// RandomForestRegressor
// ---------------------------------------------------------------------------------------------

/// A random forest of regression trees (scikit-learn's `RandomForestRegressor`): the
/// prediction is the mean of the trees'.
///
/// ```
/// use skiff_learn::RandomForestRegressor;
/// use ndarray::Array2;
///
/// let x = Array2::from_shape_fn((50, 1), |(i, _)| i as f64);
/// let y: Vec<f64> = (0..50).map(|i| if i < 25 { 1.0 } else { 3.0 }).collect();
/// let model = RandomForestRegressor::params()
///     .n_estimators(10)
///     .random_state(Some(1))
///     .fit(x.view(), &y)
///     .unwrap();
/// let p = model.predict(x.view()).unwrap();
/// assert!((p[0] - 1.0).abs() < 1e-9 && (p[49] - 3.0).abs() < 1e-9);
/// ```
pub struct RandomForestRegressor;

impl RandomForestRegressor {
    /// Hyperparameters with scikit-learn's defaults.
    pub fn params() -> RandomForestRegressorParams {
        RandomForestRegressorParams::default()
    }
}

/// Hyperparameters of [`RandomForestRegressor`], named as in scikit-learn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RandomForestRegressorParams {
    /// Number of trees (default 100).
    pub n_estimators: usize,
    /// Split quality measure (squared_error).
    pub criterion: RegressionCriterion,
    /// `max_depth`, `min_samples_split` and `min_samples_leaf`.
    #[serde(flatten)]
    pub growth: TreeGrowth,
    /// Features each node looks at (default 1.0: all of them).
    pub max_features: MaxFeatures,
    /// Grow each tree on a bootstrap sample of the rows (default true).
    pub bootstrap: bool,
    /// Seed of every random choice; `None` draws one (default).
    pub random_state: Option<u64>,
}

impl Default for RandomForestRegressorParams {
    fn default() -> Self {
        RandomForestRegressorParams {
            n_estimators: 100,
            criterion: RegressionCriterion::SquaredError,
            growth: TreeGrowth::default(),
            max_features: MaxFeatures::Fraction(1.0),
            bootstrap: true,
            random_state: None,
        }
    }
}

impl RandomForestRegressorParams {
    forest_setters!();

    /// Fits the forest to rows `x` and their targets `y`.
    pub fn fit(&self, x: ArrayView2<'_, f64>, y: &[f64]) -> Result<FittedRandomForestRegressor> {
        self.check()?;
        check_regression_target(x, y)?;
        let growth = self.tree_growth(Criterion::SquaredError, x.ncols())?;
        let data = Data::new(x, Target::Values(y));
        let trees = grow_forest(
            &data,
            &growth,
            self.n_estimators,
            self.bootstrap,
            self.random_state,
        );
        Ok(FittedRandomForestRegressor {
            trees,
            n_features: x.ncols(),
            params: self.clone(),
        })
    }
}

/// A fitted [`RandomForestRegressor`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FittedRandomForestRegressor {
    /// The trees; their node values are mean targets.
    pub trees: Vec<Tree>,
    /// Number of features the model expects.
    pub n_features: usize,
    /// The hyperparameters it was fitted with.
    pub params: RandomForestRegressorParams,
}

impl FittedRandomForestRegressor {
    /// The predicted target of each row: the mean of the trees' leaf values.
    pub fn predict(&self, x: ArrayView2<'_, f64>) -> Result<Vec<f64>> {
        check_columns(x, self.n_features)?;
        Ok(ensemble_mean(&self.trees, x))
    }

    /// The coefficient of determination R² on rows `x` with true targets `y`.
    pub fn score(&self, x: ArrayView2<'_, f64>, y: &[f64]) -> Result<f64> {
        Ok(crate::metrics::r2(y, &self.predict(x)?))
    }
}

impl Params for RandomForestRegressorParams {
    const ALGORITHM: &'static str = "random-forest-regressor";
    fn check(&self) -> Result<()> {
        self.validate()
    }
}

impl Estimator for RandomForestRegressorParams {
    const TASK: Task = Task::Regression;
    const SUMMARY: &'static str = "Random forest of CART regression trees (parallel)";
    type Model = FittedRandomForestRegressor;
    fn fit_values(&self, x: ArrayView2<'_, f64>, y: &[f64]) -> Result<FittedRandomForestRegressor> {
        self.fit(x, y)
    }
}

impl Fitted for FittedRandomForestRegressor {
    fn predict_rows(&self, x: ArrayView2<'_, f64>) -> Predictions {
        Predictions::Values(ensemble_mean(&self.trees, x))
    }

    fn scores(&self, x: ArrayView2<'_, f64>) -> Array2<f64> {
        Array2::from_shape_vec((x.nrows(), 1), ensemble_mean(&self.trees, x)).expect("one per row")
    }
}

impl Export for FittedRandomForestRegressor {
    fn algorithm(&self) -> &str {
        RandomForestRegressorParams::ALGORITHM
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
        write_regressor(g, x, &self.trees);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    fn blobs() -> (Array2<f64>, ClassTarget) {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let x = Array2::from_shape_fn((90, 4), |(i, j)| {
            (i / 30) as f64 * if j < 2 { 1.5 } else { 0.0 } + rng.random::<f64>()
        });
        let cells: Vec<String> = (0..90).map(|i| format!("c{}", i / 30)).collect();
        let cells: Vec<&str> = cells.iter().map(String::as_str).collect();
        (x, ClassTarget::from_cells(&cells).unwrap())
    }

    #[test]
    fn bad_hyperparameters_are_rejected_before_fitting() {
        let (x, y) = blobs();
        for params in [
            RandomForestClassifier::params().n_estimators(0),
            RandomForestClassifier::params().max_features(MaxFeatures::Count(0)),
            RandomForestClassifier::params().max_features(MaxFeatures::Count(5)),
            RandomForestClassifier::params().max_features(MaxFeatures::Fraction(0.0)),
            RandomForestClassifier::params().max_features(MaxFeatures::Fraction(1.5)),
            RandomForestClassifier::params().min_samples_leaf(0),
        ] {
            assert!(
                matches!(params.fit(x.view(), &y), Err(Error::InvalidParam { .. })),
                "{params:?}"
            );
        }
    }

    #[test]
    fn set_parses_names_and_rejects_unknown_ones() {
        let mut p = RandomForestClassifier::params();
        p.set("n_estimators", "7").unwrap();
        p.set("max_features", "log2").unwrap();
        p.set("bootstrap", "false").unwrap();
        p.set("criterion", "log_loss").unwrap();
        p.set("random_state", "42").unwrap();
        assert_eq!(
            (p.n_estimators, p.max_features, p.bootstrap, p.random_state),
            (7, MaxFeatures::Log2, false, Some(42))
        );
        p.set("max_features", "0.5").unwrap();
        assert_eq!(p.max_features, MaxFeatures::Fraction(0.5));
        p.set("max_features", "3").unwrap();
        assert_eq!(p.max_features, MaxFeatures::Count(3));
        p.set("max_features", "None").unwrap();
        assert_eq!(p.max_features, MaxFeatures::All);
        let err = p.set("max_features", "half").unwrap_err().to_string();
        assert!(err.contains("sqrt, log2, None"), "{err}");
        assert!(p.set("max_features", "1.5").is_err());
        assert!(p.set("n_estimators", "0").is_err());
        assert!(p.set("bootstrap", "yes").is_err());
        let err = p.set("learning_rate", "0.1").unwrap_err().to_string();
        assert!(
            err.contains("bootstrap, criterion, max_depth, max_features, min_samples_leaf, min_samples_split, n_estimators, random_state"),
            "{err}"
        );

        let mut r = RandomForestRegressor::params();
        assert_eq!(r.max_features, MaxFeatures::Fraction(1.0));
        r.set("max_features", "sqrt").unwrap();
        assert!(r.set("criterion", "gini").is_err());
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["max_features"], "sqrt");
        assert_eq!(json["max_depth"], serde_json::Value::Null);
        let back: RandomForestRegressorParams = serde_json::from_value(json).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn max_features_resolves_as_scikit_learn_does() {
        assert_eq!(MaxFeatures::Sqrt.resolve(20).unwrap(), 4);
        assert_eq!(MaxFeatures::Log2.resolve(20).unwrap(), 4);
        assert_eq!(MaxFeatures::Log2.resolve(1).unwrap(), 1);
        assert_eq!(MaxFeatures::Fraction(0.25).resolve(10).unwrap(), 2);
        assert_eq!(MaxFeatures::Fraction(0.01).resolve(10).unwrap(), 1);
        assert_eq!(MaxFeatures::All.resolve(7).unwrap(), 7);
        assert!(MaxFeatures::Count(8).resolve(7).is_err());
    }

    #[test]
    fn a_fixed_random_state_reproduces_the_forest_on_any_thread_count() {
        let (x, y) = blobs();
        let params = RandomForestClassifier::params()
            .n_estimators(12)
            .random_state(Some(5));
        let a = params.fit(x.view(), &y).unwrap();
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let b = pool.install(|| params.fit(x.view(), &y).unwrap());
        assert_eq!(a, b);
        let c = params
            .clone()
            .random_state(Some(6))
            .fit(x.view(), &y)
            .unwrap();
        assert_ne!(a.trees, c.trees);
        assert!(a.score(x.view(), &y.indices).unwrap() > 0.9);

        let target: Vec<f64> = x.column(0).iter().map(|v| v * v).collect();
        let r = RandomForestRegressor::params()
            .n_estimators(8)
            .random_state(Some(9));
        assert_eq!(
            r.fit(x.view(), &target).unwrap(),
            pool.install(|| r.fit(x.view(), &target).unwrap())
        );
    }

    #[test]
    fn without_bootstrap_or_feature_sampling_every_tree_fits_the_data() {
        let (x, y) = blobs();
        let m = RandomForestClassifier::params()
            .n_estimators(3)
            .bootstrap(false)
            .max_features(MaxFeatures::All)
            .random_state(Some(1))
            .fit(x.view(), &y)
            .unwrap();
        assert_eq!(m.score(x.view(), &y.indices).unwrap(), 1.0);
        let p = m.predict_proba(x.view()).unwrap();
        assert!(p.iter().all(|&v| v == 0.0 || v == 1.0));
    }

    #[test]
    fn probabilities_are_means_of_trees() {
        let (x, y) = blobs();
        let m = RandomForestClassifier::params()
            .n_estimators(10)
            .random_state(Some(2))
            .fit(x.view(), &y)
            .unwrap();
        let p = m.predict_proba(x.view()).unwrap();
        for (row, probs) in x.outer_iter().zip(p.outer_iter()) {
            assert!((probs.sum() - 1.0).abs() < 1e-12);
            let first = m.trees[0].values(m.trees[0].leaf(|f| row[f]))[0];
            let mean = m
                .trees
                .iter()
                .map(|t| t.values(t.leaf(|f| row[f]))[0])
                .sum::<f64>()
                / 10.0;
            assert!((probs[0] - mean).abs() < 1e-12, "{first} {mean}");
        }
    }
}
