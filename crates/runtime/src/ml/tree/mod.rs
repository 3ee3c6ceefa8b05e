//! The tree ensembles of `ai.onnx.ml`, evaluated as onnxruntime evaluates them.
//!
//! [`Forest`] holds the trees of a `TreeEnsembleRegressor` or `TreeEnsembleClassifier` and
//! walks them; the two kernels differ only in how they read their weights and finish the
//! scores. tract-onnx-opl has a tree ensemble evaluator, but it starts MIN and MAX from zero,
//! treats BRANCH_GTE as a leaf and reads two-class classifiers in another layout than
//! onnxruntime's, so its labels differ from onnxruntime's on binary models.
//!
//! The walk follows onnxruntime's comparison exactly: a branch goes to its true child when
//! `x <mode> threshold`, or when `x` is NaN and the node's missing value tracks true, so a NaN
//! goes false on every branch but BRANCH_NEQ unless it tracks true. Trees are summed in the
//! order they are listed and each leaf's weights in attribute order, as onnxruntime does, so
//! float32 sums come out bit for bit the same.

mod classifier;
mod regressor;
mod shap;

pub(crate) use shap::TreeScores;

use super::{floats, indices, ints};
use std::collections::HashMap;
use tract_onnx::model::OnnxOpRegister;
use tract_onnx::pb::NodeProto;
use tract_onnx::tract_hir::internal::*;

pub(super) fn register_all(reg: &mut OnnxOpRegister) {
    regressor::register_all(reg);
    classifier::register_all(reg);
}

/// The scores of a `TreeEnsembleClassifier` or `TreeEnsembleRegressor` node as sums of its
/// trees, for TreeSHAP; `None` for another op.
pub(crate) fn tree_scores(node: &NodeProto) -> Option<TractResult<TreeScores>> {
    match node.op_type.as_str() {
        "TreeEnsembleClassifier" => Some(classifier::tree_scores(node)),
        "TreeEnsembleRegressor" => Some(regressor::tree_scores(node)),
        _ => None,
    }
}

/// A class's or target's score for one row, and whether any weight (or base value) gave it one.
#[derive(Debug, Clone, Copy, Default)]
struct Score {
    value: f32,
    seen: bool,
}

impl Score {
    /// What onnxruntime writes for it: a class without a score is 0.
    fn out(self) -> f32 {
        if self.seen { self.value } else { 0.0 }
    }
}

/// Node reads from which a request's rows are walked in parallel chunks: a few tenths of a
/// millisecond of one core's work (a 100-tree forest of depth 8 on 80 rows), so that waiting
/// for a busy pool's threads costs less than the split saves.
#[cfg(not(target_family = "wasm"))]
const PARALLEL_READS: usize = 1 << 16;

/// Rows evaluated tree by tree together: a block's rows stay in cache while each tree's
/// nodes are walked for all of them (onnxruntime uses the same block size).
const BLOCK_ROWS: usize = 128;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Mode {
    Leq,
    Lt,
    Gte,
    Gt,
    Eq,
    Neq,
    Leaf,
}

/// The modes by their number in [`Node`].
const MODES: [Mode; 8] = [
    Mode::Leq,
    Mode::Lt,
    Mode::Gte,
    Mode::Gt,
    Mode::Eq,
    Mode::Neq,
    Mode::Leaf,
    Mode::Leaf,
];

impl Mode {
    fn parse(node: &NodeProto, mode: &str) -> TractResult<Mode> {
        Ok(match mode {
            "BRANCH_LEQ" => Mode::Leq,
            "BRANCH_LT" => Mode::Lt,
            "BRANCH_GTE" => Mode::Gte,
            "BRANCH_GT" => Mode::Gt,
            "BRANCH_EQ" => Mode::Eq,
            "BRANCH_NEQ" => Mode::Neq,
            "LEAF" => Mode::Leaf,
            other => return node.bail_attr("nodes_modes", &format!("unknown mode {other:?}")),
        })
    }
}

/// A tree node in 16 bytes, four to a cache line. For a branch `a` and `b` are the indices of
/// its true and false children; for a leaf they are the range of its weights in
/// [`Forest::weights`]. `packed` holds the feature (28 bits), the mode (3) and whether NaN
/// goes to the true child (1).
#[derive(Debug, Clone, Copy)]
struct Node {
    threshold: f32,
    packed: u32,
    a: u32,
    b: u32,
}

const FEATURE_BITS: u32 = 28;
const FEATURE_MASK: u32 = (1 << FEATURE_BITS) - 1;

impl Node {
    fn new(threshold: f32, feature: u32, mode: Mode, nan_is_true: bool, a: u32, b: u32) -> Node {
        debug_assert!(feature <= FEATURE_MASK);
        let packed = feature | (mode as u32) << FEATURE_BITS | u32::from(nan_is_true) << 31;
        Node {
            threshold,
            packed,
            a,
            b,
        }
    }

    #[inline(always)]
    fn feature(&self) -> usize {
        (self.packed & FEATURE_MASK) as usize
    }

    #[inline(always)]
    fn mode(&self) -> Mode {
        MODES[(self.packed >> FEATURE_BITS & 7) as usize]
    }

    #[inline(always)]
    fn is_leaf(&self) -> bool {
        self.packed >> FEATURE_BITS & 7 == Mode::Leaf as u32
    }

    #[inline(always)]
    fn nan_is_true(&self) -> bool {
        self.packed >> 31 != 0
    }
}

/// One weight of a leaf: `value` goes to target (or class) `target`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Weight {
    pub(crate) target: u32,
    pub(crate) value: f32,
}

/// The trees of an ensemble, checked when built: every child exists, no tree has a cycle,
/// every leaf has a weight and every weight's target is below the number of targets.
#[derive(Debug)]
pub(crate) struct Forest {
    nodes: Vec<Node>,
    roots: Vec<u32>,
    weights: Vec<Weight>,
    /// The comparison every branch uses, when they all use the same one.
    same_mode: Option<Mode>,
    /// Whether any node sends NaN to its true child.
    nan_tracks: bool,
    /// One past the highest feature a branch reads.
    n_features: usize,
}

impl Forest {
    /// Reads the `nodes_*` attributes and the weights of `prefix` (`target` for the
    /// regressor, `class` for the classifier), for `n_targets` targets or classes.
    pub(crate) fn parse(node: &NodeProto, prefix: &str, n_targets: usize) -> TractResult<Forest> {
        if node
            .attribute
            .iter()
            .any(|a| a.name.ends_with("_as_tensor"))
        {
            return node.bail("double-precision *_as_tensor attributes are not supported");
        }
        let tree_ids = ints(node, "nodes_treeids")?;
        let n = tree_ids.len();
        if n == 0 {
            return node.bail_attr("nodes_treeids", "missing or empty");
        }
        if n >= u32::MAX as usize {
            return node.bail_attr("nodes_treeids", "too many nodes");
        }
        let same_length = |name: &str, len: usize| -> TractResult<()> {
            if len != n {
                node.bail_attr(name, &format!("has {len} values, nodes_treeids has {n}"))
            } else {
                Ok(())
            }
        };
        let node_ids = ints(node, "nodes_nodeids")?;
        same_length("nodes_nodeids", node_ids.len())?;
        let features = indices(node, "nodes_featureids")?;
        same_length("nodes_featureids", features.len())?;
        let values = floats(node, "nodes_values")?;
        same_length("nodes_values", values.len())?;
        let true_ids = ints(node, "nodes_truenodeids")?;
        same_length("nodes_truenodeids", true_ids.len())?;
        let false_ids = ints(node, "nodes_falsenodeids")?;
        same_length("nodes_falsenodeids", false_ids.len())?;
        let modes: Vec<&str> = node.get_attr_opt_vec("nodes_modes")?.unwrap_or_default();
        same_length("nodes_modes", modes.len())?;
        // onnxruntime reads the flag only where it is given, and only the value 1.
        let nan_is_true = ints(node, "nodes_missing_value_tracks_true")?;

        let mut index: HashMap<(i64, i64), u32> = HashMap::with_capacity(n);
        let mut roots = Vec::new();
        for i in 0..n {
            if index.insert((tree_ids[i], node_ids[i]), i as u32).is_some() {
                return node.bail_attr(
                    "nodes_nodeids",
                    &format!("tree {} has node {} twice", tree_ids[i], node_ids[i]),
                );
            }
            // As in onnxruntime, a tree's root is its first node listed.
            if i == 0 || tree_ids[i] != tree_ids[i - 1] {
                roots.push(i as u32);
            }
        }
        let mut nodes = Vec::with_capacity(n);
        for i in 0..n {
            let mode = Mode::parse(node, modes[i])?;
            let child = |name: &str, id: i64| -> TractResult<u32> {
                if mode == Mode::Leaf {
                    return Ok(0);
                }
                match index.get(&(tree_ids[i], id)) {
                    Some(&c) => Ok(c),
                    None => node.bail_attr(name, &format!("tree {} has no node {id}", tree_ids[i])),
                }
            };
            let feature = match mode {
                Mode::Leaf => 0,
                _ if features[i] > FEATURE_MASK as usize => {
                    return node.bail_attr(
                        "nodes_featureids",
                        &format!("feature {} is beyond {FEATURE_MASK}", features[i]),
                    );
                }
                _ => features[i] as u32,
            };
            nodes.push(Node::new(
                values[i],
                feature,
                mode,
                nan_is_true.get(i) == Some(&1),
                child("nodes_truenodeids", true_ids[i])?,
                child("nodes_falsenodeids", false_ids[i])?,
            ));
        }

        // Weights, grouped by leaf in attribute order (onnxruntime sorts them by tree, node,
        // then position).
        let tree_name = format!("{prefix}_treeids");
        let target_trees = ints(node, &tree_name)?;
        let target_nodes = ints(node, &format!("{prefix}_nodeids"))?;
        let target_ids = indices(node, &format!("{prefix}_ids"))?;
        let target_weights = floats(node, &format!("{prefix}_weights"))?;
        let m = target_trees.len();
        for (name, len) in [
            ("nodeids", target_nodes.len()),
            ("ids", target_ids.len()),
            ("weights", target_weights.len()),
        ] {
            if len != m {
                return node.bail_attr(
                    &format!("{prefix}_{name}"),
                    &format!("has {len} values, {tree_name} has {m}"),
                );
            }
        }
        let mut by_leaf: Vec<(u32, usize)> = Vec::with_capacity(m);
        for j in 0..m {
            let Some(&leaf) = index.get(&(target_trees[j], target_nodes[j])) else {
                return node.bail_attr(
                    &format!("{prefix}_nodeids"),
                    &format!("tree {} has no node {}", target_trees[j], target_nodes[j]),
                );
            };
            if target_ids[j] >= n_targets {
                return node.bail_attr(
                    &format!("{prefix}_ids"),
                    &format!("{} is out of range for {n_targets} outputs", target_ids[j]),
                );
            }
            // Weights on branches come from old converters; onnxruntime ignores them.
            if nodes[leaf as usize].is_leaf() {
                by_leaf.push((leaf, j));
            }
        }
        by_leaf.sort_unstable();
        let mut weights = Vec::with_capacity(by_leaf.len());
        let mut k = 0;
        while k < by_leaf.len() {
            let leaf = by_leaf[k].0;
            let start = weights.len() as u32;
            while k < by_leaf.len() && by_leaf[k].0 == leaf {
                let j = by_leaf[k].1;
                weights.push(Weight {
                    target: target_ids[j] as u32,
                    value: target_weights[j],
                });
                k += 1;
            }
            let node = &mut nodes[leaf as usize];
            node.a = start;
            node.b = weights.len() as u32;
        }
        for (i, leaf) in nodes.iter().enumerate() {
            if leaf.is_leaf() && leaf.a == leaf.b {
                return node.bail_attr(
                    &format!("{prefix}_nodeids"),
                    &format!("leaf {} of tree {} has no weight", node_ids[i], tree_ids[i]),
                );
            }
        }
        check_acyclic(node, &nodes, &roots)?;

        let mut branches = nodes.iter().filter(|n| !n.is_leaf());
        let first = branches.next().map(Node::mode);
        let same_mode = match first {
            Some(mode) if branches.all(|n| n.mode() == mode) => Some(mode),
            Some(_) => None,
            None => Some(Mode::Leaf),
        };
        let nan_tracks = nodes.iter().any(Node::nan_is_true);
        let n_features = nodes
            .iter()
            .filter(|n| !n.is_leaf())
            .map(|n| n.feature() + 1)
            .max()
            .unwrap_or(0);
        Ok(Forest {
            nodes,
            roots,
            weights,
            same_mode,
            nan_tracks,
            n_features,
        })
    }

    pub(crate) fn n_trees(&self) -> usize {
        self.roots.len()
    }

    pub(crate) fn n_features(&self) -> usize {
        self.n_features
    }

    /// Calls `visit(row, weights)` with the weights of the leaf each tree gives each of the
    /// `rows` (row-major, `width` values a row, `width >= n_features`): for any one row,
    /// tree after tree in order.
    pub(crate) fn visit_leaves(
        &self,
        rows: &[f32],
        width: usize,
        mut visit: impl FnMut(usize, &[Weight]),
    ) {
        self.visit_leaf_ranges(rows, width, |r, range| visit(r, &self.weights[range]));
    }

    /// As [`Forest::visit_leaves`], with the range of each leaf's weights in the forest's
    /// weights (and in [`Forest::dense_values`]).
    pub(crate) fn visit_leaf_ranges(
        &self,
        rows: &[f32],
        width: usize,
        visit: impl FnMut(usize, std::ops::Range<usize>),
    ) {
        debug_assert!(width >= self.n_features);
        match (self.same_mode, self.nan_tracks) {
            (Some(Mode::Leq), false) => self.visit::<Leq, false>(rows, width, visit),
            (Some(Mode::Leq), true) => self.visit::<Leq, true>(rows, width, visit),
            (Some(Mode::Lt), false) => self.visit::<Lt, false>(rows, width, visit),
            (Some(Mode::Lt), true) => self.visit::<Lt, true>(rows, width, visit),
            _ => self.visit::<AnyMode, true>(rows, width, visit),
        }
    }

    /// Calls `fill(rows, scores)` on chunks of whole rows of `rows` (`width` values a row) and
    /// the matching chunks of `scores` (`per_row` values a row): on rayon's pool when the walk
    /// reads at least [`PARALLEL_READS`] nodes (a large request on a native build), on the
    /// calling thread otherwise. Each row's sums are the same either way.
    pub(crate) fn in_row_chunks<T: Send>(
        &self,
        rows: &[f32],
        width: usize,
        scores: &mut [T],
        per_row: usize,
        fill: impl Fn(&[f32], &mut [T]) + Sync + Send,
    ) {
        #[cfg(not(target_family = "wasm"))]
        {
            use rayon::prelude::*;
            let n_rows = scores.len().checked_div(per_row).unwrap_or(0);
            // About how many nodes the walk reads: each tree's depth is taken as the log of
            // its mean size.
            let mean_size = self.nodes.len() / self.roots.len().max(1);
            let reads = n_rows * self.roots.len() * (mean_size.max(2).ilog2() as usize);
            if reads >= PARALLEL_READS && width > 0 && per_row > 0 {
                // A few chunks a thread, so that a thread slowed by other work is made up for.
                let chunk = n_rows.div_ceil(4 * rayon::current_num_threads());
                scores
                    .par_chunks_mut(chunk * per_row)
                    .zip(rows.par_chunks(chunk * width))
                    .for_each(|(scores, rows)| fill(rows, scores));
                return;
            }
        }
        #[cfg(target_family = "wasm")]
        let _ = (width, per_row);
        fill(rows, scores)
    }

    /// The weights' values alone, where every leaf weights each of the `n_targets` targets
    /// once, in order (a forest's class distributions): half the memory of the weights, read
    /// without looking up targets. A leaf's values have the range of its weights.
    pub(crate) fn dense_values(&self, n_targets: usize) -> Option<Vec<f32>> {
        let dense = self.nodes.iter().filter(|n| n.is_leaf()).all(|leaf| {
            let weights = &self.weights[leaf.a as usize..leaf.b as usize];
            weights.len() == n_targets
                && weights
                    .iter()
                    .enumerate()
                    .all(|(k, w)| w.target as usize == k)
        });
        dense.then(|| self.weights.iter().map(|w| w.value).collect())
    }

    fn visit<C: Compare, const NAN_TRACKS: bool>(
        &self,
        rows: &[f32],
        width: usize,
        mut visit: impl FnMut(usize, std::ops::Range<usize>),
    ) {
        let n_rows = rows.len().checked_div(width).unwrap_or(0);
        for block in (0..n_rows).step_by(BLOCK_ROWS) {
            let end = (block + BLOCK_ROWS).min(n_rows);
            for &root in &self.roots {
                for r in block..end {
                    let row = &rows[r * width..(r + 1) * width];
                    let leaf = self.leaf::<C, NAN_TRACKS>(root, row);
                    visit(r, leaf.a as usize..leaf.b as usize);
                }
            }
        }
    }

    #[inline(always)]
    fn leaf<C: Compare, const NAN_TRACKS: bool>(&self, root: u32, row: &[f32]) -> &Node {
        let mut node = &self.nodes[root as usize];
        while !node.is_leaf() {
            let x = row[node.feature()];
            let go_true = C::holds(node, x) || (NAN_TRACKS && node.nan_is_true() && x.is_nan());
            // Both children are read before the comparison is known and one is picked with
            // bit arithmetic: indexing the node by the comparison's result would add a load
            // to the chain every node of the walk waits on.
            let (a, b) = (node.a, node.b);
            let next = b ^ ((a ^ b) & u32::from(go_true).wrapping_neg());
            node = &self.nodes[next as usize];
        }
        node
    }
}

/// A branch's comparison, fixed at compile time when every branch shares it.
trait Compare {
    fn holds(node: &Node, x: f32) -> bool;
}

struct Leq;
impl Compare for Leq {
    #[inline(always)]
    fn holds(node: &Node, x: f32) -> bool {
        x <= node.threshold
    }
}

struct Lt;
impl Compare for Lt {
    #[inline(always)]
    fn holds(node: &Node, x: f32) -> bool {
        x < node.threshold
    }
}

struct AnyMode;
impl Compare for AnyMode {
    #[inline(always)]
    fn holds(node: &Node, x: f32) -> bool {
        let threshold = node.threshold;
        match node.mode() {
            Mode::Leq => x <= threshold,
            Mode::Lt => x < threshold,
            Mode::Gte => x >= threshold,
            Mode::Gt => x > threshold,
            Mode::Eq => x == threshold,
            Mode::Neq => x != threshold,
            Mode::Leaf => false,
        }
    }
}

/// Refuses trees with a cycle, which would walk forever (iterative depth-first search).
fn check_acyclic(node: &NodeProto, nodes: &[Node], roots: &[u32]) -> TractResult<()> {
    #[derive(Clone, Copy, PartialEq)]
    enum State {
        New,
        Open,
        Done,
    }
    let mut state = vec![State::New; nodes.len()];
    let mut stack: Vec<(u32, u8)> = Vec::new();
    for &root in roots {
        if state[root as usize] != State::New {
            continue;
        }
        stack.push((root, 0));
        state[root as usize] = State::Open;
        while let Some((at, next)) = stack.last_mut() {
            let n = &nodes[*at as usize];
            if n.is_leaf() || *next == 2 {
                state[*at as usize] = State::Done;
                stack.pop();
                continue;
            }
            let child = if *next == 0 { n.a } else { n.b };
            *next += 1;
            match state[child as usize] {
                State::New => {
                    state[child as usize] = State::Open;
                    stack.push((child, 0));
                }
                State::Open => return node.bail_attr("nodes_truenodeids", "a tree has a cycle"),
                State::Done => {}
            }
        }
    }
    Ok(())
}
