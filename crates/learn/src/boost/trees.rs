//! The boosted trees: walking them natively, and writing them as one ONNX
//! `TreeEnsembleRegressor` whose sums are the model's raw scores.

use super::bins::FeatureBins;
use serde::{Deserialize, Serialize};
use skiff_onnx::Attr;

/// Where a split sends a row that has a value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// Left where the value, as float32, is at most this.
    AtMost(f32),
    /// Left where the value is one of these category codes; other codes seen in training go
    /// right, and codes not seen (negative ones included) go where missing values go.
    OneOf(Vec<f32>),
}

/// A node of a boosted tree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Node {
    /// A leaf adding `value` (learning rate applied) to the raw score.
    Leaf {
        /// What it adds.
        value: f64,
    },
    /// A split.
    Split {
        /// The feature it reads.
        feature: usize,
        /// Where rows with a value go.
        rule: Rule,
        /// Whether rows missing the feature go left.
        missing_left: bool,
        /// The left child's index.
        left: usize,
        /// The right child's index.
        right: usize,
    },
}

/// One tree; node 0 is the root.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tree {
    /// The nodes.
    pub nodes: Vec<Node>,
}

impl Tree {
    /// The value of the leaf `row` reaches; `bins` tell the category codes seen in training.
    pub fn predict(&self, row: impl Fn(usize) -> f64, bins: &[FeatureBins]) -> f64 {
        let mut at = 0;
        loop {
            match &self.nodes[at] {
                Node::Leaf { value } => return *value,
                Node::Split {
                    feature,
                    rule,
                    missing_left,
                    left,
                    right,
                } => {
                    let v = row(*feature);
                    let go_left = if v.is_nan() {
                        *missing_left
                    } else {
                        match rule {
                            Rule::AtMost(t) => v as f32 <= *t,
                            Rule::OneOf(codes) => {
                                let v = v as f32;
                                if codes.contains(&v) {
                                    true
                                } else if v >= 0.0
                                    && bins[*feature]
                                        .edges
                                        .binary_search_by(|c| c.total_cmp(&v))
                                        .is_ok()
                                {
                                    false
                                } else {
                                    *missing_left
                                }
                            }
                        }
                    };
                    at = if go_left { *left } else { *right };
                }
            }
        }
    }

    /// How many leaves it has.
    pub fn n_leaves(&self) -> usize {
        self.nodes
            .iter()
            .filter(|n| matches!(n, Node::Leaf { .. }))
            .count()
    }
}

/// The attributes of a `TreeEnsembleRegressor` summing `trees`, tree t adding to target
/// `t % n_targets`, with `base_values`; `bins` tell the category codes seen in training.
///
/// A numeric split is one `BRANCH_LEQ` node, missing values tracking its left (true) branch
/// where they go left. A categorical split is a chain of `BRANCH_EQ` nodes, one per code seen
/// in training on the side missing values do not go to, each sending its code there; a value
/// no node matches (a missing value, a negative code, a code not seen) reaches the end of the
/// chain and goes where missing values go, as natively.
pub(crate) fn ensemble_attrs(
    trees: &[Tree],
    n_targets: usize,
    base_values: &[f64],
    bins: &[FeatureBins],
) -> Vec<(&'static str, Attr)> {
    let mut a = Attrs::default();
    for (t, tree) in trees.iter().enumerate() {
        let mut next_id = tree.nodes.len() as i64;
        for (id, node) in tree.nodes.iter().enumerate() {
            let id = id as i64;
            match node {
                Node::Leaf { value } => {
                    a.node(t, id, 0, "LEAF", 0.0, 0, 0, false);
                    a.target_treeids.push(t as i64);
                    a.target_nodeids.push(id);
                    a.target_ids.push((t % n_targets) as i64);
                    a.target_weights.push(*value as f32);
                }
                Node::Split {
                    feature,
                    rule: Rule::AtMost(threshold),
                    missing_left,
                    left,
                    right,
                } => a.node(
                    t,
                    id,
                    *feature,
                    "BRANCH_LEQ",
                    *threshold,
                    *left as i64,
                    *right as i64,
                    *missing_left,
                ),
                Node::Split {
                    feature,
                    rule: Rule::OneOf(codes),
                    missing_left,
                    left,
                    right,
                } => {
                    let (left, right) = (*left as i64, *right as i64);
                    let (matched, side, otherwise): (Vec<f32>, _, _) = if *missing_left {
                        let known = &bins[*feature].edges;
                        let others = known.iter().filter(|c| !codes.contains(c)).copied();
                        (others.collect(), right, left)
                    } else {
                        (codes.clone(), left, right)
                    };
                    if matched.is_empty() {
                        // Nothing but missing values and unseen codes reaches the other side.
                        a.node(
                            t,
                            id,
                            *feature,
                            "BRANCH_LEQ",
                            f32::NEG_INFINITY,
                            otherwise,
                            otherwise,
                            true,
                        );
                        continue;
                    }
                    let mut this = id;
                    for (k, &code) in matched.iter().enumerate() {
                        let last = k + 1 == matched.len();
                        let next = if last { otherwise } else { next_id };
                        a.node(t, this, *feature, "BRANCH_EQ", code, side, next, false);
                        if !last {
                            this = next_id;
                            next_id += 1;
                        }
                    }
                }
            }
        }
    }
    vec![
        ("nodes_treeids", Attr::Ints(a.treeids)),
        ("nodes_nodeids", Attr::Ints(a.nodeids)),
        ("nodes_featureids", Attr::Ints(a.featureids)),
        ("nodes_modes", Attr::Strings(a.modes)),
        ("nodes_values", Attr::Floats(a.values)),
        ("nodes_truenodeids", Attr::Ints(a.true_ids)),
        ("nodes_falsenodeids", Attr::Ints(a.false_ids)),
        (
            "nodes_missing_value_tracks_true",
            Attr::Ints(a.missing_true),
        ),
        ("target_treeids", Attr::Ints(a.target_treeids)),
        ("target_nodeids", Attr::Ints(a.target_nodeids)),
        ("target_ids", Attr::Ints(a.target_ids)),
        ("target_weights", Attr::Floats(a.target_weights)),
        ("n_targets", Attr::Int(n_targets as i64)),
        (
            "base_values",
            Attr::Floats(base_values.iter().map(|&v| v as f32).collect()),
        ),
        ("aggregate_function", Attr::String("SUM".into())),
        ("post_transform", Attr::String("NONE".into())),
    ]
}

#[derive(Default)]
struct Attrs {
    treeids: Vec<i64>,
    nodeids: Vec<i64>,
    featureids: Vec<i64>,
    modes: Vec<String>,
    values: Vec<f32>,
    true_ids: Vec<i64>,
    false_ids: Vec<i64>,
    missing_true: Vec<i64>,
    target_treeids: Vec<i64>,
    target_nodeids: Vec<i64>,
    target_ids: Vec<i64>,
    target_weights: Vec<f32>,
}

impl Attrs {
    #[allow(clippy::too_many_arguments)]
    fn node(
        &mut self,
        tree: usize,
        id: i64,
        feature: usize,
        mode: &str,
        value: f32,
        true_id: i64,
        false_id: i64,
        missing_true: bool,
    ) {
        self.treeids.push(tree as i64);
        self.nodeids.push(id);
        self.featureids.push(feature as i64);
        self.modes.push(mode.into());
        self.values.push(value);
        self.true_ids.push(true_id);
        self.false_ids.push(false_id);
        self.missing_true.push(i64::from(missing_true));
    }
}
