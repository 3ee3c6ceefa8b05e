//! CART decision trees (scikit-learn's `DecisionTreeClassifier` and `DecisionTreeRegressor`),
//! the core the random forests of [`crate::forest`] grow their trees with.
//!
//! As in scikit-learn, features are cast to float32 before fitting. A split's threshold lies
//! between two consecutive distinct float32 values `a < b` of the node: the midpoint
//! `(a as f64 / 2 + b as f64 / 2) as f32`, or `a` where that rounds to `b`. A row goes left
//! when `x as f32 <= threshold`, natively and in the exported ONNX graph alike, so both give
//! the same leaf for every row.

use crate::catalog::{Estimator, Fitted, Predictions};
use crate::check::check_data;
use crate::classifier::classifier_outputs;
use crate::labels::{ClassLabels, ClassTarget};
use crate::params::{self, Params};
use crate::{Error, Export, Result, Task};
use ndarray::{Array2, ArrayView2};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use skiff_onnx::{Attr, Dim, ElemType, Graph};

// ---------------------------------------------------------------------------------------------
// Hyperparameters shared by trees and forests
// ---------------------------------------------------------------------------------------------

/// Split quality measure of a classification tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClassCriterion {
    /// Gini impurity (default).
    #[default]
    Gini,
    /// Shannon entropy.
    Entropy,
    /// Same as `Entropy` (scikit-learn's alias).
    LogLoss,
}

impl ClassCriterion {
    pub(crate) fn criterion(self) -> Criterion {
        match self {
            ClassCriterion::Gini => Criterion::Gini,
            ClassCriterion::Entropy | ClassCriterion::LogLoss => Criterion::Entropy,
        }
    }
}

/// Split quality measure of a regression tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegressionCriterion {
    /// Mean squared error (default and only choice).
    #[default]
    SquaredError,
}

pub(crate) fn check_growth(
    max_depth: Option<usize>,
    min_samples_split: usize,
    min_samples_leaf: usize,
) -> Result<()> {
    if max_depth == Some(0) {
        return Err(params::invalid(
            "max_depth",
            0,
            "a positive integer or None",
        ));
    }
    if min_samples_split < 2 {
        return Err(params::invalid(
            "min_samples_split",
            min_samples_split,
            "an integer of at least 2",
        ));
    }
    if min_samples_leaf < 1 {
        return Err(params::invalid(
            "min_samples_leaf",
            min_samples_leaf,
            "an integer of at least 1",
        ));
    }
    Ok(())
}

pub(crate) fn check_regression_target(x: ArrayView2<'_, f64>, y: &[f64]) -> Result<()> {
    check_data(x, y.len())?;
    if y.iter().any(|v| !v.is_finite()) {
        return Err(Error::NonFinite);
    }
    Ok(())
}

pub(crate) fn check_columns(x: ArrayView2<'_, f64>, n_features: usize) -> Result<()> {
    if x.ncols() != n_features {
        return Err(Error::Shape(format!(
            "the model takes {n_features} features, got {}",
            x.ncols()
        )));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The fitted tree
// ---------------------------------------------------------------------------------------------

/// A fitted binary tree, its nodes in depth-first order (node 0 is the root; a branch's left
/// child follows it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tree {
    /// Per node, the feature it splits on (0 for leaves).
    pub feature: Vec<u32>,
    /// Per node, the float32 threshold: a row goes left when `x as f32 <= threshold`.
    pub threshold: Vec<f32>,
    /// Per node, its left child, or 0 for a leaf.
    pub left: Vec<u32>,
    /// Per node, its right child, or 0 for a leaf.
    pub right: Vec<u32>,
    /// Number of values per node: classes for a classifier, 1 for a regressor.
    pub n_outputs: usize,
    /// Per node, `n_outputs` values: class probabilities or the mean target.
    pub value: Vec<f64>,
}

impl Tree {
    /// Number of nodes.
    pub fn node_count(&self) -> usize {
        self.feature.len()
    }

    /// True when node `i` is a leaf.
    pub fn is_leaf(&self, i: usize) -> bool {
        self.left[i] == 0
    }

    /// Depth of the deepest leaf (a single leaf has depth 0).
    pub fn depth(&self) -> usize {
        let mut depth = vec![0usize; self.node_count()];
        let mut max = 0;
        for i in 0..self.node_count() {
            if !self.is_leaf(i) {
                for c in [self.left[i], self.right[i]] {
                    depth[c as usize] = depth[i] + 1;
                    max = max.max(depth[i] + 1);
                }
            }
        }
        max
    }

    /// The leaf a row reaches; `row` must have every feature the tree uses.
    pub fn leaf(&self, row: impl Fn(usize) -> f64) -> usize {
        let mut i = 0;
        while !self.is_leaf(i) {
            let x = row(self.feature[i] as usize) as f32;
            i = if x <= self.threshold[i] {
                self.left[i]
            } else {
                self.right[i]
            } as usize;
        }
        i
    }

    /// The values of node `i`.
    pub fn values(&self, i: usize) -> &[f64] {
        &self.value[i * self.n_outputs..(i + 1) * self.n_outputs]
    }
}

// ---------------------------------------------------------------------------------------------
// Growing a tree
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Criterion {
    Gini,
    Entropy,
    SquaredError,
}

/// How to grow one tree.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Growth {
    pub criterion: Criterion,
    pub max_depth: Option<usize>,
    pub min_samples_split: usize,
    pub min_samples_leaf: usize,
    /// Features to look at per node (non-constant ones; more when none of them splits).
    pub max_features: usize,
}

/// Training data in the layout the split search reads: float32 features column by column.
pub(crate) struct Data<'a> {
    /// `n_features` columns of `n_rows` values.
    pub columns: Vec<f32>,
    pub n_rows: usize,
    pub n_features: usize,
    pub target: Target<'a>,
}

pub(crate) enum Target<'a> {
    Classes {
        indices: &'a [usize],
        n_classes: usize,
    },
    Values(&'a [f64]),
}

impl<'a> Data<'a> {
    pub(crate) fn new(x: ArrayView2<'_, f64>, target: Target<'a>) -> Self {
        let (n_rows, n_features) = x.dim();
        let mut columns = Vec::with_capacity(n_rows * n_features);
        for f in 0..n_features {
            // `+ 0.0` turns -0.0 into 0.0, so equal values have equal sort keys.
            columns.extend(x.column(f).iter().map(|&v| v as f32 + 0.0));
        }
        Data {
            columns,
            n_rows,
            n_features,
            target,
        }
    }

    fn column(&self, f: usize) -> &[f32] {
        &self.columns[f * self.n_rows..(f + 1) * self.n_rows]
    }

    /// Number of statistics a node keeps: class weights, or weight, sum and sum of squares.
    fn n_stats(&self) -> usize {
        match self.target {
            Target::Classes { n_classes, .. } => n_classes,
            Target::Values(_) => 3,
        }
    }

    #[inline]
    fn add(&self, stats: &mut [f64], sample: usize, w: f64) {
        match self.target {
            Target::Classes { indices, .. } => stats[indices[sample]] += w,
            Target::Values(y) => {
                let v = y[sample];
                stats[0] += w;
                stats[1] += w * v;
                stats[2] += w * v * v;
            }
        }
    }
}

/// A key whose unsigned order is the order of finite float32 values.
#[inline]
fn sort_key(v: f32) -> u32 {
    let bits = v.to_bits();
    if bits >> 31 == 1 {
        !bits
    } else {
        bits | 1 << 31
    }
}

#[inline]
fn unpack(packed: u64) -> (f32, u32) {
    let key = (packed >> 32) as u32;
    let bits = if key >> 31 == 1 {
        key & !(1 << 31)
    } else {
        !key
    };
    (f32::from_bits(bits), packed as u32)
}

/// The threshold between consecutive distinct float32 values `a < b`, as scikit-learn takes
/// it: their midpoint, or `a` where the midpoint rounds up to `b`.
pub fn split_threshold(a: f32, b: f32) -> f32 {
    let t = (a as f64 / 2.0 + b as f64 / 2.0) as f32;
    if t == b || !t.is_finite() { a } else { t }
}

fn total_weight(criterion: Criterion, stats: &[f64]) -> f64 {
    match criterion {
        Criterion::SquaredError => stats[0],
        _ => stats.iter().sum(),
    }
}

fn impurity(criterion: Criterion, stats: &[f64]) -> f64 {
    let w = total_weight(criterion, stats);
    if w <= 0.0 {
        return 0.0;
    }
    match criterion {
        Criterion::Gini => 1.0 - stats.iter().map(|c| (c / w) * (c / w)).sum::<f64>(),
        Criterion::Entropy => -stats
            .iter()
            .filter(|&&c| c > 0.0)
            .map(|&c| (c / w) * (c / w).ln())
            .sum::<f64>(),
        Criterion::SquaredError => stats[2] / w - (stats[1] / w) * (stats[1] / w),
    }
}

/// A quantity whose maximum over a node's splits is the split of largest impurity decrease:
/// minus the children's impurities weighted by their weights, up to a constant.
fn proxy(criterion: Criterion, left: &[f64], right: &[f64], wl: f64, wr: f64) -> f64 {
    match criterion {
        Criterion::Gini => {
            left.iter().map(|c| c * c).sum::<f64>() / wl
                + right.iter().map(|c| c * c).sum::<f64>() / wr
        }
        Criterion::Entropy => {
            let plogp = |s: &[f64], w: f64| {
                s.iter()
                    .filter(|&&c| c > 0.0)
                    .map(|&c| c * c.ln())
                    .sum::<f64>()
                    - w * w.ln()
            };
            plogp(left, wl) + plogp(right, wr)
        }
        Criterion::SquaredError => left[1] * left[1] / wl + right[1] * right[1] / wr,
    }
}

/// A node still to grow: its rows `samples[start..end]`, its depth, and its parent with whether
/// it is that parent's right child.
type Pending = (usize, usize, usize, Option<(usize, bool)>);

struct Split {
    feature: usize,
    threshold: f32,
    proxy: f64,
}

/// Grows a tree on the rows with nonzero `weights` (bootstrap counts; all ones for a tree).
/// `rng` orders the features looked at per node; `None` looks at them in column order.
pub(crate) fn grow(
    data: &Data<'_>,
    weights: &[f64],
    growth: &Growth,
    mut rng: Option<&mut ChaCha8Rng>,
) -> Tree {
    let k = data.n_stats();
    let criterion = growth.criterion;
    let mut samples: Vec<u32> = (0..data.n_rows as u32)
        .filter(|&s| weights[s as usize] > 0.0)
        .collect();
    let mut tree = Tree {
        feature: Vec::new(),
        threshold: Vec::new(),
        left: Vec::new(),
        right: Vec::new(),
        n_outputs: if criterion == Criterion::SquaredError {
            1
        } else {
            k
        },
        value: Vec::new(),
    };
    let mut features: Vec<usize> = (0..data.n_features).collect();
    // Per feature, the node's rows as `sort_key(value) << 32 | row`: sorting plain integers is
    // much faster than sorting pairs by a float comparison.
    let mut sorted: Vec<u64> = Vec::with_capacity(samples.len());
    let mut node_stats = vec![0.0; k];
    let mut left = vec![0.0; k];
    let mut right = vec![0.0; k];
    let mut stack: Vec<Pending> = vec![(0, samples.len(), 0, None)];
    while let Some((start, end, depth, parent)) = stack.pop() {
        let id = tree.feature.len();
        if let Some((p, is_right)) = parent {
            if is_right {
                tree.right[p] = id as u32;
            } else {
                tree.left[p] = id as u32;
            }
        }
        node_stats.iter_mut().for_each(|s| *s = 0.0);
        for &s in &samples[start..end] {
            data.add(&mut node_stats, s as usize, weights[s as usize]);
        }
        let w_node = total_weight(criterion, &node_stats);
        match criterion {
            Criterion::SquaredError => tree.value.push(node_stats[1] / w_node),
            _ => tree.value.extend(node_stats.iter().map(|c| c / w_node)),
        }
        tree.feature.push(0);
        tree.threshold.push(0.0);
        tree.left.push(0);
        tree.right.push(0);

        let n = end - start;
        let is_leaf = n < growth.min_samples_split
            || n < 2 * growth.min_samples_leaf
            || growth.max_depth.is_some_and(|d| depth >= d)
            || impurity(criterion, &node_stats) <= f64::EPSILON;
        if is_leaf {
            continue;
        }

        // Look at features in a random order (Fisher-Yates as the search goes), until
        // `max_features` non-constant ones have been seen and at least one split was found.
        let mut best: Option<Split> = None;
        let mut visited = 0;
        for j in 0..features.len() {
            if visited >= growth.max_features && best.is_some() {
                break;
            }
            if let Some(rng) = rng.as_deref_mut() {
                let pick = rng.random_range(j..features.len());
                features.swap(j, pick);
            }
            let f = features[j];
            let column = data.column(f);
            sorted.clear();
            let (mut lo, mut hi) = (f32::INFINITY, f32::NEG_INFINITY);
            for &s in &samples[start..end] {
                let v = column[s as usize];
                lo = lo.min(v);
                hi = hi.max(v);
                sorted.push((sort_key(v) as u64) << 32 | s as u64);
            }
            if lo >= hi {
                continue;
            }
            visited += 1;
            sorted.sort_unstable();
            left.iter_mut().for_each(|s| *s = 0.0);
            right.copy_from_slice(&node_stats);
            let mut wl = 0.0;
            for i in 0..n - 1 {
                let (v, s) = unpack(sorted[i]);
                let w = weights[s as usize];
                data.add(&mut left, s as usize, w);
                data.add(&mut right, s as usize, -w);
                wl += w;
                let next = unpack(sorted[i + 1]).0;
                if v == next {
                    continue;
                }
                let n_left = i + 1;
                if n_left < growth.min_samples_leaf {
                    continue;
                }
                if n - n_left < growth.min_samples_leaf {
                    break;
                }
                let wr = w_node - wl;
                let p = proxy(criterion, &left, &right, wl, wr);
                if best.as_ref().is_none_or(|b| p > b.proxy) {
                    best = Some(Split {
                        feature: f,
                        threshold: split_threshold(v, next),
                        proxy: p,
                    });
                }
            }
        }
        let Some(split) = best else { continue };

        let column = data.column(split.feature);
        let part = &mut samples[start..end];
        let mut mid = 0;
        for i in 0..part.len() {
            if column[part[i] as usize] <= split.threshold {
                part.swap(i, mid);
                mid += 1;
            }
        }
        if mid == 0 || mid == n {
            continue;
        }
        tree.feature[id] = split.feature as u32;
        tree.threshold[id] = split.threshold;
        // The left child is popped first, so it is numbered next: id + 1.
        stack.push((start + mid, end, depth + 1, Some((id, true))));
        stack.push((start, start + mid, depth + 1, Some((id, false))));
    }
    tree
}

// ---------------------------------------------------------------------------------------------
// Prediction and export helpers shared with the forests
// ---------------------------------------------------------------------------------------------

/// Class probabilities: the mean over `trees` of each row's leaf distribution.
pub(crate) fn ensemble_proba(
    trees: &[Tree],
    x: ArrayView2<'_, f64>,
    n_classes: usize,
) -> Array2<f64> {
    let mut out = Array2::zeros((x.nrows(), n_classes));
    for (row, mut o) in x.outer_iter().zip(out.outer_iter_mut()) {
        for tree in trees {
            let leaf = tree.leaf(|f| row[f]);
            for (o, v) in o.iter_mut().zip(tree.values(leaf)) {
                *o += v;
            }
        }
        o.mapv_inplace(|v| v / trees.len() as f64);
    }
    out
}

/// Each row's class index, computed as the exported graph computes it: each tree adds its
/// leaf's float32 weights `p / n_trees` in tree order, and the first maximum wins.
pub(crate) fn ensemble_index(
    trees: &[Tree],
    x: ArrayView2<'_, f64>,
    n_classes: usize,
) -> Vec<usize> {
    let n_trees = trees.len() as f64;
    let mut scores = vec![0f32; n_classes];
    x.outer_iter()
        .map(|row| {
            scores.iter_mut().for_each(|s| *s = 0.0);
            for tree in trees {
                let leaf = tree.leaf(|f| row[f]);
                for (s, v) in scores.iter_mut().zip(tree.values(leaf)) {
                    *s += (v / n_trees) as f32;
                }
            }
            let mut best = 0;
            for (i, &s) in scores.iter().enumerate() {
                if s > scores[best] {
                    best = i;
                }
            }
            best
        })
        .collect()
}

/// The mean over `trees` of each row's leaf value.
pub(crate) fn ensemble_mean(trees: &[Tree], x: ArrayView2<'_, f64>) -> Vec<f64> {
    x.outer_iter()
        .map(|row| {
            trees
                .iter()
                .map(|t| t.values(t.leaf(|f| row[f]))[0])
                .sum::<f64>()
                / trees.len() as f64
        })
        .collect()
}

/// The `nodes_*` and leaf attributes of a TreeEnsemble op over `trees`; each leaf adds
/// `value / n_trees` to each output, under `leaf_prefix` (`class` or `target`).
pub(crate) fn ensemble_attrs(trees: &[Tree], leaf_prefix: &str) -> Vec<(String, Attr)> {
    let n_trees = trees.len() as f64;
    let (mut tree_ids, mut node_ids, mut feature_ids, mut modes, mut values) =
        (vec![], vec![], vec![], vec![], vec![]);
    let (mut true_ids, mut false_ids) = (vec![], vec![]);
    let (mut leaf_trees, mut leaf_nodes, mut leaf_ids, mut leaf_weights) =
        (vec![], vec![], vec![], vec![]);
    for (t, tree) in trees.iter().enumerate() {
        for i in 0..tree.node_count() {
            tree_ids.push(t as i64);
            node_ids.push(i as i64);
            feature_ids.push(tree.feature[i] as i64);
            values.push(tree.threshold[i]);
            true_ids.push(tree.left[i] as i64);
            false_ids.push(tree.right[i] as i64);
            if tree.is_leaf(i) {
                modes.push("LEAF".to_string());
                for (k, v) in tree.values(i).iter().enumerate() {
                    leaf_trees.push(t as i64);
                    leaf_nodes.push(i as i64);
                    leaf_ids.push(k as i64);
                    leaf_weights.push((v / n_trees) as f32);
                }
            } else {
                modes.push("BRANCH_LEQ".to_string());
            }
        }
    }
    vec![
        ("nodes_treeids".into(), Attr::Ints(tree_ids)),
        ("nodes_nodeids".into(), Attr::Ints(node_ids)),
        ("nodes_featureids".into(), Attr::Ints(feature_ids)),
        ("nodes_modes".into(), Attr::Strings(modes)),
        ("nodes_values".into(), Attr::Floats(values)),
        ("nodes_truenodeids".into(), Attr::Ints(true_ids)),
        ("nodes_falsenodeids".into(), Attr::Ints(false_ids)),
        (format!("{leaf_prefix}_treeids"), Attr::Ints(leaf_trees)),
        (format!("{leaf_prefix}_nodeids"), Attr::Ints(leaf_nodes)),
        (format!("{leaf_prefix}_ids"), Attr::Ints(leaf_ids)),
        (format!("{leaf_prefix}_weights"), Attr::Floats(leaf_weights)),
    ]
}

fn borrow_attrs(attrs: &[(String, Attr)]) -> Vec<(&str, Attr)> {
    attrs.iter().map(|(n, a)| (n.as_str(), a.clone())).collect()
}

/// The graph of a tree ensemble classifier: `label` (the original labels) and `probabilities`
/// (float [N, C], the mean of the trees' leaf distributions).
///
/// The probabilities come from a `TreeEnsembleRegressor` with one target per class and the
/// label from `ArgMax` (first maximum), not from a `TreeEnsembleClassifier`: with two classes
/// ONNX Runtime's classifier labels a row with the second class whenever its score is above 0
/// (not 0.5) when both classes have weights, and tract's reads the other layout (only class
/// 0 weights) as binary, so no single binary encoding gives the right label in both.
pub(crate) fn write_classifier(g: &mut Graph, x: &str, trees: &[Tree], classes: &ClassLabels) {
    let mut attrs = ensemble_attrs(trees, "target");
    attrs.push(("n_targets".into(), Attr::Int(classes.len() as i64)));
    attrs.push(("aggregate_function".into(), Attr::String("SUM".into())));
    attrs.push(("post_transform".into(), Attr::String("NONE".into())));
    g.ml_node(
        "TreeEnsembleRegressor",
        &[x],
        &["class_scores"],
        borrow_attrs(&attrs),
    );
    classifier_outputs(g, classes, "class_scores", false);
}

/// Adds a tree ensemble regressor reading `x`: output `variable`, float [N, 1], the mean of
/// the trees.
pub(crate) fn write_regressor(g: &mut Graph, x: &str, trees: &[Tree]) {
    let mut attrs = ensemble_attrs(trees, "target");
    attrs.push(("n_targets".into(), Attr::Int(1)));
    attrs.push(("aggregate_function".into(), Attr::String("SUM".into())));
    attrs.push(("post_transform".into(), Attr::String("NONE".into())));
    g.ml_node(
        "TreeEnsembleRegressor",
        &[x],
        &["variable"],
        borrow_attrs(&attrs),
    );
    g.output("variable", ElemType::Float, &[Dim::batch(), Dim::Fixed(1)]);
}

/// The seed of the feature order of a tree fitted with `random_state`.
fn tree_rng(random_state: Option<u64>) -> Option<ChaCha8Rng> {
    random_state.map(ChaCha8Rng::seed_from_u64)
}

// ---------------------------------------------------------------------------------------------
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
    /// Maximum depth; `None` grows until leaves are pure or too small (default).
    pub max_depth: Option<usize>,
    /// Fewest rows a node needs to be split (default 2).
    pub min_samples_split: usize,
    /// Fewest rows in each leaf (default 1).
    pub min_samples_leaf: usize,
    /// Seed of the order features are searched in, which breaks ties (default None).
    pub random_state: Option<u64>,
}

impl Default for DecisionTreeClassifierParams {
    fn default() -> Self {
        DecisionTreeClassifierParams {
            criterion: ClassCriterion::Gini,
            max_depth: None,
            min_samples_split: 2,
            min_samples_leaf: 1,
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
        self.max_depth = max_depth;
        self
    }

    /// Sets `min_samples_split`.
    pub fn min_samples_split(mut self, n: usize) -> Self {
        self.min_samples_split = n;
        self
    }

    /// Sets `min_samples_leaf`.
    pub fn min_samples_leaf(mut self, n: usize) -> Self {
        self.min_samples_leaf = n;
        self
    }

    /// Sets `random_state`.
    pub fn random_state(mut self, seed: Option<u64>) -> Self {
        self.random_state = seed;
        self
    }

    /// Checks every hyperparameter; `fit` calls this first.
    fn validate(&self) -> Result<()> {
        check_growth(
            self.max_depth,
            self.min_samples_split,
            self.min_samples_leaf,
        )
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
        let growth = Growth {
            criterion: self.criterion.criterion(),
            max_depth: self.max_depth,
            min_samples_split: self.min_samples_split,
            min_samples_leaf: self.min_samples_leaf,
            max_features: x.ncols(),
        };
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
    /// Maximum depth; `None` grows until leaves are pure or too small (default).
    pub max_depth: Option<usize>,
    /// Fewest rows a node needs to be split (default 2).
    pub min_samples_split: usize,
    /// Fewest rows in each leaf (default 1).
    pub min_samples_leaf: usize,
}

impl Default for DecisionTreeRegressorParams {
    fn default() -> Self {
        DecisionTreeRegressorParams {
            criterion: RegressionCriterion::SquaredError,
            max_depth: None,
            min_samples_split: 2,
            min_samples_leaf: 1,
        }
    }
}

impl DecisionTreeRegressorParams {
    /// Sets `max_depth`.
    pub fn max_depth(mut self, max_depth: Option<usize>) -> Self {
        self.max_depth = max_depth;
        self
    }

    /// Sets `min_samples_split`.
    pub fn min_samples_split(mut self, n: usize) -> Self {
        self.min_samples_split = n;
        self
    }

    /// Sets `min_samples_leaf`.
    pub fn min_samples_leaf(mut self, n: usize) -> Self {
        self.min_samples_leaf = n;
        self
    }

    /// Checks every hyperparameter; `fit` calls this first.
    fn validate(&self) -> Result<()> {
        check_growth(
            self.max_depth,
            self.min_samples_split,
            self.min_samples_leaf,
        )
    }

    /// Fits the tree to rows `x` and their targets `y`.
    pub fn fit(&self, x: ArrayView2<'_, f64>, y: &[f64]) -> Result<FittedDecisionTreeRegressor> {
        self.check()?;
        check_regression_target(x, y)?;
        let data = Data::new(x, Target::Values(y));
        let growth = Growth {
            criterion: Criterion::SquaredError,
            max_depth: self.max_depth,
            min_samples_split: self.min_samples_split,
            min_samples_leaf: self.min_samples_leaf,
            max_features: x.ncols(),
        };
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
            (p.max_depth, p.min_samples_leaf, p.random_state),
            (Some(4), 3, Some(7))
        );
        p.set("max_depth", "None").unwrap();
        assert_eq!(p.max_depth, None);
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
    fn sort_keys_order_floats() {
        let values = [-3.5f32, -1e-30, 0.0, 1e-30, 1.0, 2.5e9, f32::MAX, f32::MIN];
        let mut keys: Vec<u64> = values
            .iter()
            .enumerate()
            .map(|(i, &v)| (sort_key(v) as u64) << 32 | i as u64)
            .collect();
        keys.sort_unstable();
        let sorted: Vec<f32> = keys.iter().map(|&k| unpack(k).0).collect();
        let mut expected = values.to_vec();
        expected.sort_by(f32::total_cmp);
        assert_eq!(sorted, expected);
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
