//! `TreeEnsembleRegressor`, evaluated as onnxruntime does: each tree adds its leaf's target
//! weights, the aggregate function combines them, `base_values` are added last.
//!
//! tract-onnx-opl has a tree ensemble evaluator, but it starts MIN and MAX from zero, treats
//! BRANCH_GTE as a leaf and indexes unchecked; this one is checked when it is built.

use super::{Kernel, OutputSpec, PostTransform, cpu_op, floats, indices, ints, string};
use std::collections::HashMap;
use tract_onnx::model::{OnnxOpRegister, ParsingContext};
use tract_onnx::pb::NodeProto;
use tract_onnx::tract_hir::internal::*;
use tract_onnx::tract_hir::tract_ndarray::{Array2, ArrayView1};

pub(super) fn register_all(reg: &mut OnnxOpRegister) {
    reg.insert("TreeEnsembleRegressor", tree_regressor);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Aggregate {
    Sum,
    Average,
    Min,
    Max,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Leq,
    Lt,
    Gte,
    Gt,
    Eq,
    Neq,
    Leaf,
}

#[derive(Debug, Clone)]
struct Node {
    mode: Mode,
    feature: usize,
    value: f32,
    /// Indices into `TreeEnsemble::nodes`.
    true_child: usize,
    false_child: usize,
    nan_is_true: bool,
    /// (target, weight) pairs of a leaf.
    weights: Vec<(usize, f32)>,
}

#[derive(Debug)]
struct TreeEnsemble {
    nodes: Vec<Node>,
    roots: Vec<usize>,
    n_targets: usize,
    n_features: usize,
    aggregate: Aggregate,
    base_values: Vec<f32>,
}

fn tree_regressor(
    _ctx: &ParsingContext<'_>,
    node: &NodeProto,
) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    Ok((cpu_op(parse(node)?), vec![]))
}

fn parse(node: &NodeProto) -> TractResult<TreeEnsemble> {
    let n_targets: i64 = node.get_attr("n_targets")?;
    if n_targets < 1 {
        return node.bail_attr("n_targets", "must be at least 1");
    }
    let n_targets = n_targets as usize;
    if node
        .attribute
        .iter()
        .any(|a| a.name.ends_with("_as_tensor"))
    {
        return node.bail("double-precision *_as_tensor attributes are not supported");
    }
    if PostTransform::parse(node)? != PostTransform::None {
        return node.bail_attr("post_transform", "only NONE is supported for regressors");
    }
    let aggregate = match string(node, "aggregate_function", "SUM")? {
        "SUM" => Aggregate::Sum,
        "AVERAGE" => Aggregate::Average,
        "MIN" => Aggregate::Min,
        "MAX" => Aggregate::Max,
        other => {
            return node.bail_attr("aggregate_function", &format!("unknown value {other:?}"));
        }
    };

    let tree_ids = ints(node, "nodes_treeids")?;
    let n = tree_ids.len();
    if n == 0 {
        return node.bail_attr("nodes_treeids", "missing or empty");
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
    let nan_is_true = ints(node, "nodes_missing_value_tracks_true")?;
    if !nan_is_true.is_empty() {
        same_length("nodes_missing_value_tracks_true", nan_is_true.len())?;
    }

    let mut index: HashMap<(i64, i64), usize> = HashMap::new();
    let mut roots = Vec::new();
    for i in 0..n {
        if index.insert((tree_ids[i], node_ids[i]), i).is_some() {
            return node.bail_attr(
                "nodes_nodeids",
                &format!("tree {} has node {} twice", tree_ids[i], node_ids[i]),
            );
        }
        // As in onnxruntime, a tree's root is its first node listed.
        if i == 0 || tree_ids[i] != tree_ids[i - 1] {
            roots.push(i);
        }
    }
    let mut nodes = Vec::with_capacity(n);
    for i in 0..n {
        let mode = match modes[i] {
            "BRANCH_LEQ" => Mode::Leq,
            "BRANCH_LT" => Mode::Lt,
            "BRANCH_GTE" => Mode::Gte,
            "BRANCH_GT" => Mode::Gt,
            "BRANCH_EQ" => Mode::Eq,
            "BRANCH_NEQ" => Mode::Neq,
            "LEAF" => Mode::Leaf,
            other => return node.bail_attr("nodes_modes", &format!("unknown mode {other:?}")),
        };
        let child = |name: &str, id: i64| -> TractResult<usize> {
            if mode == Mode::Leaf {
                return Ok(0);
            }
            match index.get(&(tree_ids[i], id)) {
                Some(&c) => Ok(c),
                None => node.bail_attr(name, &format!("tree {} has no node {id}", tree_ids[i])),
            }
        };
        nodes.push(Node {
            mode,
            feature: features[i],
            value: values[i],
            true_child: child("nodes_truenodeids", true_ids[i])?,
            false_child: child("nodes_falsenodeids", false_ids[i])?,
            nan_is_true: nan_is_true.get(i).is_some_and(|&v| v != 0),
            weights: Vec::new(),
        });
    }

    let target_trees = ints(node, "target_treeids")?;
    let target_nodes = ints(node, "target_nodeids")?;
    let target_ids = indices(node, "target_ids")?;
    let target_weights = floats(node, "target_weights")?;
    let m = target_trees.len();
    for (name, len) in [
        ("target_nodeids", target_nodes.len()),
        ("target_ids", target_ids.len()),
        ("target_weights", target_weights.len()),
    ] {
        if len != m {
            return node.bail_attr(name, &format!("has {len} values, target_treeids has {m}"));
        }
    }
    for j in 0..m {
        let Some(&leaf) = index.get(&(target_trees[j], target_nodes[j])) else {
            return node.bail_attr(
                "target_nodeids",
                &format!("tree {} has no node {}", target_trees[j], target_nodes[j]),
            );
        };
        if target_ids[j] >= n_targets {
            return node.bail_attr(
                "target_ids",
                &format!("target {} with n_targets {n_targets}", target_ids[j]),
            );
        }
        nodes[leaf].weights.push((target_ids[j], target_weights[j]));
    }

    let base_values = floats(node, "base_values")?;
    if !base_values.is_empty() && base_values.len() != n_targets {
        return node.bail_attr(
            "base_values",
            &format!("has {} values for {n_targets} targets", base_values.len()),
        );
    }
    let n_features = nodes
        .iter()
        .filter(|n| n.mode != Mode::Leaf)
        .map(|n| n.feature + 1)
        .max()
        .unwrap_or(0);
    Ok(TreeEnsemble {
        nodes,
        roots,
        n_targets,
        n_features,
        aggregate,
        base_values,
    })
}

impl TreeEnsemble {
    fn leaf(&self, root: usize, row: &ArrayView1<'_, f32>) -> TractResult<&Node> {
        let mut at = root;
        // A well-formed tree reaches a leaf in fewer steps than it has nodes.
        for _ in 0..=self.nodes.len() {
            let node = &self.nodes[at];
            if node.mode == Mode::Leaf {
                return Ok(node);
            }
            let x = row[node.feature];
            let go_true = if x.is_nan() {
                node.nan_is_true
            } else {
                match node.mode {
                    Mode::Leq => x <= node.value,
                    Mode::Lt => x < node.value,
                    Mode::Gte => x >= node.value,
                    Mode::Gt => x > node.value,
                    Mode::Eq => x == node.value,
                    Mode::Neq => x != node.value,
                    Mode::Leaf => return Ok(node),
                }
            };
            at = if go_true {
                node.true_child
            } else {
                node.false_child
            };
        }
        bail!("TreeEnsembleRegressor: a tree has a cycle")
    }
}

impl Kernel for TreeEnsemble {
    const NAME: &'static str = "TreeEnsembleRegressor";

    fn n_features(&self) -> usize {
        self.n_features
    }

    /// Trees need not split on every input column: `n_features` is one past the highest
    /// feature a split reads, and the input may be wider, as onnxruntime allows.
    fn allows_extra_features(&self) -> bool {
        true
    }

    fn outputs(&self) -> Vec<OutputSpec> {
        vec![OutputSpec::Matrix(f32::datum_type(), self.n_targets)]
    }

    fn eval(&self, rows: &[ArrayView1<'_, f32>]) -> TractResult<TVec<Tensor>> {
        let mut out = Array2::<f32>::zeros((rows.len(), self.n_targets));
        let mut scores = vec![(0f32, false); self.n_targets];
        for (i, row) in rows.iter().enumerate() {
            scores.iter_mut().for_each(|s| *s = (0.0, false));
            for &root in &self.roots {
                for &(target, w) in &self.leaf(root, row)?.weights {
                    let (score, seen) = &mut scores[target];
                    *score = match self.aggregate {
                        Aggregate::Sum | Aggregate::Average => *score + w,
                        Aggregate::Min if *seen => score.min(w),
                        Aggregate::Max if *seen => score.max(w),
                        Aggregate::Min | Aggregate::Max => w,
                    };
                    *seen = true;
                }
            }
            for (t, &(score, _)) in scores.iter().enumerate() {
                let score = match self.aggregate {
                    Aggregate::Average => score / self.roots.len() as f32,
                    _ => score,
                };
                out[(i, t)] = score + self.base_values.get(t).copied().unwrap_or(0.0);
            }
        }
        Ok(tvec!(out.into_tensor()))
    }
}
