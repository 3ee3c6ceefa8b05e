//! Random forests (scikit-learn's `RandomForestClassifier` and `RandomForestRegressor`): CART
//! trees from [`crate::tree`], each grown on a bootstrap sample with a random subset of
//! features looked at per node, fitted in parallel with rayon.
//!
//! Randomness comes from ChaCha8 generators: one seeded with `random_state` (or a seed drawn
//! from the OS-seeded hasher of the standard library when there is none) draws one seed per
//! tree, and each tree's generator draws its bootstrap sample and feature orders. Each tree
//! depends only on its own seed, so a fixed `random_state` gives the same forest whatever the
//! number of threads.
//!
//! With `oob_score`, each tree's bootstrap sample is drawn again from its seed, and the rows it
//! left out are predicted by that tree alone: scikit-learn's out-of-bag score, recorded as
//! the trees add up.

use crate::catalog::{Curve, Estimator, Fitted, Predictions};
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

/// One seed per tree, drawn from `random_state` (or from a seed drawn for the forest).
fn tree_seeds(random_state: Option<u64>, n_trees: usize) -> Vec<u64> {
    let seed = random_state.unwrap_or_else(params::random_seed);
    let mut master = ChaCha8Rng::seed_from_u64(seed);
    (0..n_trees).map(|_| master.random()).collect()
}

/// A bootstrap sample of `n` rows, drawn first from a tree's generator: how often each row
/// was drawn.
fn bootstrap_sample(rng: &mut ChaCha8Rng, n: usize) -> Vec<f64> {
    let mut counts = vec![0.0; n];
    for _ in 0..n {
        counts[rng.random_range(0..n)] += 1.0;
    }
    counts
}

/// The rows tree `seed`'s bootstrap sample left out, drawn again from its seed.
fn out_of_bag_rows(seed: u64, n: usize) -> Vec<usize> {
    let counts = bootstrap_sample(&mut ChaCha8Rng::seed_from_u64(seed), n);
    (0..n).filter(|&i| counts[i] == 0.0).collect()
}

/// Grows a tree per seed, in parallel; each tree's generator draws its bootstrap sample (if
/// any), then its feature orders.
fn grow_forest(data: &Data<'_>, growth: &Growth, seeds: &[u64], bootstrap: bool) -> Vec<Tree> {
    let n = data.n_rows;
    seeds
        .par_iter()
        .map(|&seed| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let weights = if bootstrap {
                bootstrap_sample(&mut rng, n)
            } else {
                vec![1.0; n]
            };
            grow(data, &weights, growth, Some(&mut rng))
        })
        .collect()
}

/// How well a forest predicts the rows each tree did not see: scikit-learn's `oob_score_`,
/// and how it grew with the trees.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutOfBag {
    /// Accuracy (classifier) or R² (regressor) of each row's prediction by the trees whose
    /// bootstrap sample left it out (scikit-learn `oob_score_`); NaN where no tree left out
    /// any row.
    pub score: f64,
    /// `(k, score of the first k trees)` for each k at which some row had been left out.
    pub by_trees: Vec<(u64, f64)>,
    /// Rows every tree's sample held, left out of the score (scikit-learn counts them as
    /// predicted class 0 or value 0), with the warning scikit-learn gives.
    pub never_out_of_bag: usize,
}

impl OutOfBag {
    /// scikit-learn's warning where some rows were never out of bag.
    fn warnings(oob: Option<&OutOfBag>, algorithm: &str) -> Vec<String> {
        oob.filter(|oob| oob.never_out_of_bag > 0)
            .map(|oob| {
                format!(
                    "{algorithm}: Some inputs do not have OOB scores. This probably means too \
                     few trees were used to compute any reliable OOB estimates ({} rows were in \
                     every tree's bootstrap sample and are left out of oob_score): raise \
                     n_estimators",
                    oob.never_out_of_bag
                )
            })
            .into_iter()
            .collect()
    }

    fn curves(oob: Option<&OutOfBag>) -> Vec<Curve> {
        oob.map(|oob| Curve {
            name: "oob_score".into(),
            points: oob.by_trees.clone(),
        })
        .into_iter()
        .collect()
    }
}

/// Calls `visit(t, leaves)` for each tree `t` in order, with `(row, leaf)` for each row its
/// bootstrap sample left out; a batch of trees finds its rows and leaves in parallel.
fn for_each_out_of_bag(
    trees: &[Tree],
    seeds: &[u64],
    x: ArrayView2<'_, f64>,
    mut visit: impl FnMut(usize, &[(usize, usize)]),
) {
    let batch = 2 * rayon::current_num_threads();
    for start in (0..trees.len()).step_by(batch) {
        let end = (start + batch).min(trees.len());
        let leaves: Vec<Vec<(usize, usize)>> = (start..end)
            .into_par_iter()
            .map(|t| {
                out_of_bag_rows(seeds[t], x.nrows())
                    .into_iter()
                    .map(|i| (i, trees[t].leaf(|f| x[[i, f]])))
                    .collect()
            })
            .collect();
        for (t, leaves) in (start..end).zip(leaves) {
            visit(t, &leaves);
        }
    }
}

/// The out-of-bag accuracy: each row's class is the argmax of the probabilities summed over
/// the trees that left it out, counted as correct or not tree by tree.
fn classifier_out_of_bag(
    trees: &[Tree],
    seeds: &[u64],
    x: ArrayView2<'_, f64>,
    y: &[usize],
    n_classes: usize,
) -> OutOfBag {
    let n = x.nrows();
    let mut sums = vec![0.0; n * n_classes];
    // Per row: None until some tree left it out, then whether its argmax is right.
    let mut right: Vec<Option<bool>> = vec![None; n];
    let (mut covered, mut correct) = (0usize, 0usize);
    let mut by_trees = Vec::new();
    for_each_out_of_bag(trees, seeds, x, |t, leaves| {
        for &(i, leaf) in leaves {
            let sum = &mut sums[i * n_classes..(i + 1) * n_classes];
            sum.iter_mut()
                .zip(trees[t].values(leaf))
                .for_each(|(s, p)| *s += p);
            let now = crate::classifier::argmax(sum.iter().copied()) == y[i];
            match right[i] {
                None => covered += 1,
                Some(before) => correct -= usize::from(before),
            }
            correct += usize::from(now);
            right[i] = Some(now);
        }
        if covered > 0 {
            by_trees.push((t as u64 + 1, correct as f64 / covered as f64));
        }
    });
    OutOfBag {
        score: if covered > 0 {
            correct as f64 / covered as f64
        } else {
            f64::NAN
        },
        by_trees,
        never_out_of_bag: n - covered,
    }
}

/// The out-of-bag R²: each row's prediction is the mean over the trees that left it out.
/// The curve's sums are kept up to date tree by tree; the final score is computed afresh.
fn regressor_out_of_bag(
    trees: &[Tree],
    seeds: &[u64],
    x: ArrayView2<'_, f64>,
    y: &[f64],
) -> OutOfBag {
    let n = x.nrows();
    // Targets about their mean, so that the running sums of squares stay well conditioned.
    let centre = y.iter().sum::<f64>() / n as f64;
    let (mut sums, mut counts) = (vec![0.0; n], vec![0u32; n]);
    let (mut covered, mut sum_y, mut sum_yy, mut residual) = (0usize, 0.0, 0.0, 0.0);
    let mut by_trees = Vec::new();
    for_each_out_of_bag(trees, seeds, x, |t, leaves| {
        for &(i, leaf) in leaves {
            let yi = y[i] - centre;
            if counts[i] == 0 {
                covered += 1;
                sum_y += yi;
                sum_yy += yi * yi;
            } else {
                residual -= (y[i] - sums[i] / counts[i] as f64).powi(2);
            }
            sums[i] += trees[t].values(leaf)[0];
            counts[i] += 1;
            residual += (y[i] - sums[i] / counts[i] as f64).powi(2);
        }
        if covered > 0 {
            let total = sum_yy - sum_y * sum_y / covered as f64;
            let r2 = if total > 0.0 {
                1.0 - residual.max(0.0) / total
            } else {
                f64::from(residual <= 0.0)
            };
            by_trees.push((t as u64 + 1, r2));
        }
    });
    let rows: Vec<usize> = (0..n).filter(|&i| counts[i] > 0).collect();
    let truth: Vec<f64> = rows.iter().map(|&i| y[i]).collect();
    let predicted: Vec<f64> = rows.iter().map(|&i| sums[i] / counts[i] as f64).collect();
    let score = if rows.is_empty() {
        f64::NAN
    } else {
        crate::metrics::r2(&truth, &predicted)
    };
    if let Some(last) = by_trees.last_mut() {
        last.1 = score;
    }
    OutOfBag {
        score,
        by_trees,
        never_out_of_bag: n - covered,
    }
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
    /// Score the forest on the rows each tree's bootstrap sample left out (default false;
    /// needs `bootstrap`).
    pub oob_score: bool,
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
            oob_score: false,
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

        /// Sets `oob_score`.
        pub fn oob_score(mut self, oob_score: bool) -> Self {
            self.oob_score = oob_score;
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
            if self.oob_score && !self.bootstrap {
                return Err(params::invalid(
                    "oob_score",
                    true,
                    "out-of-bag estimation is only available with bootstrap=true: set \
                     bootstrap=true or oob_score=false",
                ));
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
        let seeds = tree_seeds(self.random_state, self.n_estimators);
        let trees = grow_forest(&data, &growth, &seeds, self.bootstrap);
        let oob = self
            .oob_score
            .then(|| classifier_out_of_bag(&trees, &seeds, x, &y.indices, y.classes.len()));
        Ok(FittedRandomForestClassifier {
            trees,
            classes: y.classes.clone(),
            n_features: x.ncols(),
            params: self.clone(),
            oob,
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
    /// The out-of-bag score and its curve, where `oob_score` was set.
    pub oob: Option<OutOfBag>,
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

    /// The accuracy on the out-of-bag rows (scikit-learn `oob_score_`), where `oob_score`
    /// was set.
    pub fn oob_score(&self) -> Option<f64> {
        self.oob.as_ref().map(|oob| oob.score)
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

    fn warnings(&self) -> Vec<String> {
        OutOfBag::warnings(self.oob.as_ref(), RandomForestClassifierParams::ALGORITHM)
    }

    /// `oob_score` by tree count, where `oob_score` was set.
    fn curves(&self) -> Vec<Curve> {
        OutOfBag::curves(self.oob.as_ref())
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
    /// Score the forest on the rows each tree's bootstrap sample left out (default false;
    /// needs `bootstrap`).
    pub oob_score: bool,
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
            oob_score: false,
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
        let seeds = tree_seeds(self.random_state, self.n_estimators);
        let trees = grow_forest(&data, &growth, &seeds, self.bootstrap);
        let oob = self
            .oob_score
            .then(|| regressor_out_of_bag(&trees, &seeds, x, y));
        Ok(FittedRandomForestRegressor {
            trees,
            n_features: x.ncols(),
            params: self.clone(),
            oob,
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
    /// The out-of-bag score and its curve, where `oob_score` was set.
    pub oob: Option<OutOfBag>,
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

    /// R² on the out-of-bag rows (scikit-learn `oob_score_`), where `oob_score` was set.
    pub fn oob_score(&self) -> Option<f64> {
        self.oob.as_ref().map(|oob| oob.score)
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

    fn warnings(&self) -> Vec<String> {
        OutOfBag::warnings(self.oob.as_ref(), RandomForestRegressorParams::ALGORITHM)
    }

    /// `oob_score` by tree count, where `oob_score` was set.
    fn curves(&self) -> Vec<Curve> {
        OutOfBag::curves(self.oob.as_ref())
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
            err.contains("bootstrap, criterion, max_depth, max_features, min_samples_leaf, min_samples_split, n_estimators, oob_score, random_state"),
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

    #[test]
    fn oob_score_needs_bootstrap() {
        let (x, y) = blobs();
        let err = RandomForestClassifier::params()
            .bootstrap(false)
            .oob_score(true)
            .fit(x.view(), &y)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("oob_score") && err.contains("set bootstrap=true or oob_score=false"),
            "{err}"
        );
        let mut p = RandomForestRegressor::params();
        p.set("oob_score", "true").unwrap();
        assert!(p.set("bootstrap", "false").is_err());
        assert!(p.oob_score && p.bootstrap);
        assert_eq!(p.to_json()["oob_score"], true);
    }

    /// Each tree's bootstrap sample, drawn again from its seed, is the one it was grown on;
    /// from those samples the out-of-bag score is counted by hand.
    #[test]
    fn the_oob_score_is_the_accuracy_of_the_trees_that_left_each_row_out() {
        let (x, y) = blobs();
        let params = RandomForestClassifier::params()
            .n_estimators(15)
            .random_state(Some(4))
            .oob_score(true);
        let model = params.fit(x.view(), &y).unwrap();
        let seeds = tree_seeds(Some(4), 15);
        let data = Data::new(
            x.view(),
            Target::Classes {
                indices: &y.indices,
                n_classes: 3,
            },
        );
        let growth = params.tree_growth(params.criterion.criterion(), 4).unwrap();
        let n = x.nrows();
        let mut sums = Array2::<f64>::zeros((n, 3));
        let mut left_out = vec![false; n];
        let mut curve = Vec::new();
        for (t, &seed) in seeds.iter().enumerate() {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let weights = bootstrap_sample(&mut rng, n);
            assert_eq!(
                grow(&data, &weights, &growth, Some(&mut rng)),
                model.trees[t]
            );
            for i in (0..n).filter(|&i| weights[i] == 0.0) {
                let tree = &model.trees[t];
                let p = tree.values(tree.leaf(|f| x[[i, f]]));
                sums.row_mut(i).iter_mut().zip(p).for_each(|(s, p)| *s += p);
                left_out[i] = true;
            }
            let rows: Vec<usize> = (0..n).filter(|&i| left_out[i]).collect();
            let correct = rows
                .iter()
                .filter(|&&i| {
                    crate::classifier::argmax(sums.row(i).iter().copied()) == y.indices[i]
                })
                .count();
            curve.push((t as u64 + 1, correct as f64 / rows.len() as f64));
        }
        let oob = model.oob.as_ref().unwrap();
        assert_eq!(
            oob.never_out_of_bag,
            left_out.iter().filter(|&&l| !l).count()
        );
        assert_eq!(oob.by_trees, curve);
        assert_eq!(model.oob_score(), Some(curve[14].1));
        assert_eq!(Fitted::curves(&model)[0].name, "oob_score");
        // Scoring the rows left out changes nothing else.
        let plain = params.clone().oob_score(false).fit(x.view(), &y).unwrap();
        assert_eq!((plain.trees, plain.oob), (model.trees, None));
    }

    #[test]
    fn the_regressors_oob_score_is_the_r2_of_mean_out_of_bag_predictions() {
        let (x, _) = blobs();
        let target: Vec<f64> = x.outer_iter().map(|r| r[0] * r[0] - r[1]).collect();
        let model = RandomForestRegressor::params()
            .n_estimators(12)
            .random_state(Some(8))
            .oob_score(true)
            .fit(x.view(), &target)
            .unwrap();
        let n = x.nrows();
        let (mut sums, mut counts) = (vec![0.0; n], vec![0.0; n]);
        let mut curve = Vec::new();
        for (tree, seed) in model.trees.iter().zip(tree_seeds(Some(8), 12)) {
            let weights = bootstrap_sample(&mut ChaCha8Rng::seed_from_u64(seed), n);
            for i in (0..n).filter(|&i| weights[i] == 0.0) {
                sums[i] += tree.values(tree.leaf(|f| x[[i, f]]))[0];
                counts[i] += 1.0;
            }
            let rows: Vec<usize> = (0..n).filter(|&i| counts[i] > 0.0).collect();
            let truth: Vec<f64> = rows.iter().map(|&i| target[i]).collect();
            let predicted: Vec<f64> = rows.iter().map(|&i| sums[i] / counts[i]).collect();
            curve.push(crate::metrics::r2(&truth, &predicted));
        }
        let oob = model.oob.as_ref().unwrap();
        assert_eq!(oob.by_trees.len(), 12);
        for ((step, got), (k, expected)) in oob.by_trees.iter().zip((1..).zip(&curve)) {
            assert_eq!(*step, k);
            assert!(
                (got - expected).abs() < 1e-9,
                "tree {k}: {got} vs {expected}"
            );
        }
        assert_eq!(model.oob_score(), Some(curve[11]));
        assert!(curve[11] > 0.8, "{curve:?}");
    }

    #[test]
    fn rows_never_out_of_bag_are_left_out_with_scikit_learns_warning() {
        let (x, y) = blobs();
        let model = RandomForestClassifier::params()
            .n_estimators(1)
            .random_state(Some(0))
            .oob_score(true)
            .fit(x.view(), &y)
            .unwrap();
        let oob = model.oob.as_ref().unwrap();
        // One tree's sample holds about 63% of the rows.
        assert!((40..75).contains(&oob.never_out_of_bag), "{oob:?}");
        let warnings = Fitted::warnings(&model);
        assert_eq!(warnings.len(), 1);
        assert!(
            warnings[0].contains("Some inputs do not have OOB scores")
                && warnings[0].contains(&format!("{} rows", oob.never_out_of_bag)),
            "{warnings:?}"
        );
        let many = RandomForestClassifier::params()
            .n_estimators(40)
            .random_state(Some(0))
            .oob_score(true)
            .fit(x.view(), &y)
            .unwrap();
        assert!(Fitted::warnings(&many).is_empty());
    }

    /// The out-of-bag accuracy estimates the accuracy on rows the forest never saw.
    #[test]
    fn the_oob_score_is_close_to_held_out_accuracy() {
        let mut rng = ChaCha8Rng::seed_from_u64(21);
        let x = Array2::from_shape_fn((1200, 4), |_| rng.random_range(-2.0..2.0));
        let cells: Vec<&str> = x
            .outer_iter()
            .map(|r| {
                let noisy = r[0] + r[1] * r[2] + rng.random_range(-1.0..1.0);
                if noisy > 0.0 { "a" } else { "b" }
            })
            .collect();
        let y = ClassTarget::from_cells(&cells).unwrap();
        let train = ClassTarget::from_cells(&cells[..800]).unwrap();
        let test: Vec<usize> = y.indices[800..].to_vec();
        let model = RandomForestClassifier::params()
            .n_estimators(60)
            .random_state(Some(2))
            .oob_score(true)
            .fit(x.slice(ndarray::s![..800, ..]), &train)
            .unwrap();
        let held_out = model.score(x.slice(ndarray::s![800.., ..]), &test).unwrap();
        let oob = model.oob_score().unwrap();
        assert!(
            (oob - held_out).abs() < 0.05,
            "oob {oob} held out {held_out}"
        );
        assert!(oob < 0.95 && held_out < 0.95, "noisy: {oob} {held_out}");
    }
}
