//! Predicting with several trees, natively and as one ONNX tree-ensemble op.

use super::*;
use crate::classifier::classifier_outputs;
use crate::labels::ClassLabels;
use ndarray::{Array2, ArrayView2};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use skiff_onnx::{Attr, Dim, ElemType, Graph};

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
pub(crate) fn tree_rng(random_state: Option<u64>) -> Option<ChaCha8Rng> {
    random_state.map(ChaCha8Rng::seed_from_u64)
}

// ---------------------------------------------------------------------------------------------
