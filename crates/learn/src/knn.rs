//! k-nearest neighbours: brute force over the training rows, which the exported model carries.

use crate::catalog::{Estimator, Fitted, Predictions};
use crate::check::check_data;
use crate::classifier::classifier_outputs;
use crate::params::Params;
use crate::{ClassLabels, ClassTarget, Error, Export, Result, Task};
use ndarray::{Array1, Array2, ArrayView2, Axis};
use serde::{Deserialize, Serialize};
use skiff_onnx::{Attr, Dim, ElemType, Graph};

/// How the neighbours' votes or values are weighed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Weights {
    /// Every neighbour counts the same.
    Uniform,
    /// By the inverse of its distance; neighbours at distance 0 take all the weight.
    Distance,
}

/// k-nearest-neighbours classification (scikit-learn's `KNeighborsClassifier`).
///
/// ```
/// use skiff_learn::{ClassTarget, KnnClassifier};
/// use ndarray::array;
///
/// let x = array![[0.0], [0.2], [0.4], [5.0], [5.2]];
/// let y = ClassTarget::from_cells(&["a", "a", "a", "b", "b"]).unwrap();
/// let model = KnnClassifier::params().n_neighbors(3).fit(x.view(), &y).unwrap();
/// assert_eq!(model.predict(array![[0.1], [4.9]].view()), vec!["a", "b"]);
/// ```
pub struct KnnClassifier;

/// k-nearest-neighbours regression (scikit-learn's `KNeighborsRegressor`).
///
/// ```
/// use skiff_learn::KnnRegressor;
/// use ndarray::array;
///
/// let x = array![[0.0], [1.0], [2.0], [3.0]];
/// let model = KnnRegressor::params().n_neighbors(2).fit(x.view(), &[0.0, 1.0, 2.0, 3.0]).unwrap();
/// assert_eq!(model.predict(array![[0.4]].view())[0], 0.5);
/// ```
pub struct KnnRegressor;

/// Hyperparameters of [`KnnClassifier`] and [`KnnRegressor`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KnnParams {
    /// Neighbours consulted (default 5).
    pub n_neighbors: usize,
    /// `uniform` or `distance` (default uniform).
    pub weights: Weights,
}

/// [`KnnParams`] of a classifier.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct KnnClassifierParams(pub KnnParams);

/// [`KnnParams`] of a regressor.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct KnnRegressorParams(pub KnnParams);

impl Default for KnnParams {
    fn default() -> Self {
        KnnParams {
            n_neighbors: 5,
            weights: Weights::Uniform,
        }
    }
}

impl KnnParams {
    fn check(&self) -> Result<()> {
        if self.n_neighbors == 0 {
            return Err(crate::params::invalid(
                "n_neighbors",
                0,
                "a positive integer",
            ));
        }
        Ok(())
    }

    fn fit(&self, x: ArrayView2<'_, f64>, n_targets: usize) -> Result<Neighbours> {
        self.check()?;
        check_data(x, n_targets)?;
        if self.n_neighbors > x.nrows() {
            return Err(Error::TooFewRows(format!(
                "n_neighbors={} but there are only {} training rows: ask for at most {}",
                self.n_neighbors,
                x.nrows(),
                x.nrows()
            )));
        }
        Ok(Neighbours {
            rows: x.to_owned(),
            params: self.clone(),
        })
    }
}

impl KnnClassifier {
    /// Hyperparameters with scikit-learn's defaults.
    pub fn params() -> KnnClassifierParams {
        KnnClassifierParams::default()
    }
}

impl KnnRegressor {
    /// Hyperparameters with scikit-learn's defaults.
    pub fn params() -> KnnRegressorParams {
        KnnRegressorParams::default()
    }
}

impl KnnClassifierParams {
    /// Sets `n_neighbors`.
    pub fn n_neighbors(mut self, n: usize) -> Self {
        self.0.n_neighbors = n;
        self
    }

    /// Sets `weights`.
    pub fn weights(mut self, weights: Weights) -> Self {
        self.0.weights = weights;
        self
    }

    /// Stores the training rows and their classes.
    pub fn fit(&self, x: ArrayView2<'_, f64>, y: &ClassTarget) -> Result<FittedKnnClassifier> {
        Ok(FittedKnnClassifier {
            neighbours: self.0.fit(x, y.indices.len())?,
            targets: y.indices.clone(),
            classes: y.classes.clone(),
        })
    }
}

impl KnnRegressorParams {
    /// Sets `n_neighbors`.
    pub fn n_neighbors(mut self, n: usize) -> Self {
        self.0.n_neighbors = n;
        self
    }

    /// Sets `weights`.
    pub fn weights(mut self, weights: Weights) -> Self {
        self.0.weights = weights;
        self
    }

    /// Stores the training rows and their values.
    pub fn fit(&self, x: ArrayView2<'_, f64>, y: &[f64]) -> Result<FittedKnnRegressor> {
        if y.iter().any(|v| !v.is_finite()) {
            return Err(Error::Target(
                "the target holds NaN or infinite values: clean or drop those rows".into(),
            ));
        }
        Ok(FittedKnnRegressor {
            neighbours: self.0.fit(x, y.len())?,
            targets: Array1::from(y.to_vec()),
        })
    }
}

impl Params for KnnClassifierParams {
    const ALGORITHM: &'static str = "knn-classifier";
    fn check(&self) -> Result<()> {
        self.0.check()
    }
}

impl Params for KnnRegressorParams {
    const ALGORITHM: &'static str = "knn-regressor";
    fn check(&self) -> Result<()> {
        self.0.check()
    }
}

impl Estimator for KnnClassifierParams {
    const TASK: Task = Task::Classification;
    const SUMMARY: &'static str = "k-nearest neighbours vote (brute force)";
    const NEEDS_SCALING: bool = true;
    const SCORES_TRAINING_ROWS: bool = false;
    type Model = FittedKnnClassifier;
    fn fit_classes(&self, x: ArrayView2<'_, f64>, y: &ClassTarget) -> Result<Self::Model> {
        self.fit(x, y)
    }
}

impl Estimator for KnnRegressorParams {
    const TASK: Task = Task::Regression;
    const SUMMARY: &'static str = "k-nearest neighbours average (brute force)";
    const NEEDS_SCALING: bool = true;
    const SCORES_TRAINING_ROWS: bool = false;
    type Model = FittedKnnRegressor;
    fn fit_values(&self, x: ArrayView2<'_, f64>, y: &[f64]) -> Result<Self::Model> {
        self.fit(x, y)
    }
}

/// The training rows and how to consult them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Neighbours {
    rows: Array2<f64>,
    params: KnnParams,
}

/// Below this distance a neighbour counts as exactly on the query (its weight is clamped so
/// it takes all the weight, as scikit-learn gives it).
const MIN_DISTANCE: f64 = 1e-12;

impl Neighbours {
    /// For each query row, its k nearest training rows (nearest first, ties by row order)
    /// and their weights, which sum to 1.
    fn nearest(&self, x: ArrayView2<'_, f64>) -> Vec<Vec<(usize, f64)>> {
        let k = self.params.n_neighbors;
        x.rows()
            .into_iter()
            .map(|query| {
                let mut d: Vec<(f64, usize)> = self
                    .rows
                    .rows()
                    .into_iter()
                    .enumerate()
                    .map(|(i, row)| {
                        let sq: f64 = query.iter().zip(row).map(|(a, b)| (a - b).powi(2)).sum();
                        (sq, i)
                    })
                    .collect();
                d.select_nth_unstable_by(k - 1, |a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
                d.truncate(k);
                d.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
                let weights: Vec<f64> = match self.params.weights {
                    Weights::Uniform => vec![1.0; k],
                    Weights::Distance => d
                        .iter()
                        .map(|(sq, _)| 1.0 / sq.sqrt().max(MIN_DISTANCE))
                        .collect(),
                };
                let total: f64 = weights.iter().sum();
                d.iter()
                    .zip(weights)
                    .map(|((_, i), w)| (*i, w / total))
                    .collect()
            })
            .collect()
    }

    /// Nodes giving, per query row, the k nearest training rows' `indices` [N, k]; returns
    /// the name of their weights, which sum to 1 over the k: [N, k, 1], or [1, k, 1] when
    /// uniform.
    fn write(&self, g: &mut Graph, x: &str) -> String {
        let k = self.params.n_neighbors;
        crate::graph::squared_distances(g, x, &self.rows, None, "squared");
        let k_tensor = g.constant_i64("k", &[1], &[k as i64]);
        g.node(
            "TopK",
            &["squared", &k_tensor],
            &["nearest_squared", "indices"],
            vec![("largest", Attr::Int(0)), ("sorted", Attr::Int(1))],
        );
        if self.params.weights == Weights::Uniform {
            let share = vec![1.0 / k as f32; k];
            return g.constant_f32("uniform_weights", &[1, k as u64, 1], share);
        }
        let floor = g.constant_f32("min_distance", &[1], [MIN_DISTANCE as f32]);
        g.node("Sqrt", &["nearest_squared"], &["nearest"], vec![]);
        g.node("Max", &["nearest", &floor], &["clamped"], vec![]);
        g.node("Reciprocal", &["clamped"], &["raw_weights"], vec![]);
        let axis1 = g.constant_i64("weights_axis", &[1], &[1]);
        g.node(
            "ReduceSum",
            &["raw_weights", &axis1],
            &["weight_total"],
            vec![("keepdims", Attr::Int(1))],
        );
        g.node(
            "Div",
            &["raw_weights", "weight_total"],
            &["weights_2d"],
            vec![],
        );
        let axis2 = g.constant_i64("weights_unsqueeze", &[1], &[2]);
        g.node("Unsqueeze", &["weights_2d", &axis2], &["weights"], vec![]);
        "weights".into()
    }
}

/// A fitted [`KnnClassifier`]: the training rows and their classes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FittedKnnClassifier {
    neighbours: Neighbours,
    targets: Vec<usize>,
    /// The classes, in column order of `predict_proba`.
    pub classes: ClassLabels,
}

impl FittedKnnClassifier {
    /// Each class's share of the (weighted) neighbours' votes, rows × classes.
    pub fn predict_proba(&self, x: ArrayView2<'_, f64>) -> Array2<f64> {
        let mut p = Array2::zeros((x.nrows(), self.classes.len()));
        for (mut row, nearest) in p.rows_mut().into_iter().zip(self.neighbours.nearest(x)) {
            for (i, w) in nearest {
                row[self.targets[i]] += w;
            }
        }
        p
    }

    /// The predicted class of each row, as text.
    pub fn predict(&self, x: ArrayView2<'_, f64>) -> Vec<String> {
        crate::classifier::argmax_rows(&self.predict_proba(x))
            .into_iter()
            .map(|i| self.classes.name(i))
            .collect()
    }
}

impl Fitted for FittedKnnClassifier {
    fn predict_rows(&self, x: ArrayView2<'_, f64>) -> Predictions {
        Predictions::Classes(crate::classifier::argmax_rows(&self.predict_proba(x)))
    }

    fn scores(&self, x: ArrayView2<'_, f64>) -> Array2<f64> {
        self.predict_proba(x)
    }
}

impl Export for FittedKnnClassifier {
    fn algorithm(&self) -> &str {
        KnnClassifierParams::ALGORITHM
    }

    fn hyperparameters(&self) -> serde_json::Value {
        serde_json::to_value(&self.neighbours.params).expect("serialises")
    }

    fn task(&self) -> Task {
        Task::Classification
    }

    fn n_features(&self) -> usize {
        self.neighbours.rows.ncols()
    }

    fn classes(&self) -> Option<&ClassLabels> {
        Some(&self.classes)
    }

    fn write(&self, g: &mut Graph, x: &str) {
        let weights = self.neighbours.write(g, x);
        let (n, c) = (self.targets.len(), self.classes.len());
        let mut one_hot = vec![0.0f32; n * c];
        for (row, &class) in self.targets.iter().enumerate() {
            one_hot[row * c + class] = 1.0;
        }
        let votes = g.constant_f32("train_votes", &[n as u64, c as u64], one_hot);
        weighted_neighbour_sum(g, &votes, &weights, "votes", "class_share");
        classifier_outputs(g, &self.classes, "class_share", false);
    }
}

/// A fitted [`KnnRegressor`]: the training rows and their values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FittedKnnRegressor {
    neighbours: Neighbours,
    targets: Array1<f64>,
}

impl FittedKnnRegressor {
    /// The (weighted) mean of the neighbours' values for each row.
    pub fn predict(&self, x: ArrayView2<'_, f64>) -> Array1<f64> {
        self.neighbours
            .nearest(x)
            .into_iter()
            .map(|nearest| nearest.iter().map(|&(i, w)| w * self.targets[i]).sum())
            .collect()
    }
}

impl Fitted for FittedKnnRegressor {
    fn predict_rows(&self, x: ArrayView2<'_, f64>) -> Predictions {
        Predictions::Values(self.predict(x).to_vec())
    }

    fn scores(&self, x: ArrayView2<'_, f64>) -> Array2<f64> {
        self.predict(x).insert_axis(Axis(1))
    }
}

impl Export for FittedKnnRegressor {
    fn algorithm(&self) -> &str {
        KnnRegressorParams::ALGORITHM
    }

    fn hyperparameters(&self) -> serde_json::Value {
        serde_json::to_value(&self.neighbours.params).expect("serialises")
    }

    fn task(&self) -> Task {
        Task::Regression
    }

    fn n_features(&self) -> usize {
        self.neighbours.rows.ncols()
    }

    fn write(&self, g: &mut Graph, x: &str) {
        let weights = self.neighbours.write(g, x);
        let n = self.targets.len() as u64;
        let values: Vec<f32> = self.targets.iter().map(|&v| v as f32).collect();
        let values = g.constant_f32("train_values", &[n, 1], values);
        weighted_neighbour_sum(g, &values, &weights, "values", "variable");
        g.output("variable", ElemType::Float, &[Dim::batch(), Dim::Fixed(1)]);
    }
}

/// `output[row] = Σ_k weights[row, k] · table[indices[row, k]]`: the neighbours' rows of
/// `table` (one-hot votes or target values) gathered by the `indices` the neighbour search
/// wrote, weighted and summed over the neighbours. `kind` names the intermediate values.
fn weighted_neighbour_sum(g: &mut Graph, table: &str, weights: &str, kind: &str, output: &str) {
    let (gathered, weighted) = (format!("neighbour_{kind}"), format!("weighted_{kind}"));
    g.node(
        "Gather",
        &[table, "indices"],
        &[&gathered],
        vec![("axis", Attr::Int(0))],
    );
    g.node("Mul", &[&gathered, weights], &[&weighted], vec![]);
    let axis = g.constant_i64(&format!("{kind}_axis"), &[1], &[1]);
    g.node(
        "ReduceSum",
        &[&weighted, &axis],
        &[output],
        vec![("keepdims", Attr::Int(0))],
    );
}
