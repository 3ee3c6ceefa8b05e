//! What classifiers share: probabilities and labels from scores, natively and in the graph.

use crate::labels::ClassLabels;
use ndarray::{Array2, Axis};
use skiff_onnx::{Attr, Dim, ElemType, Graph};

/// Turns each row of scores into probabilities, as the exported graph's Softmax does.
pub(crate) fn softmax_rows(scores: &mut Array2<f64>) {
    for mut row in scores.rows_mut() {
        let max = row.fold(f64::NEG_INFINITY, |m, &v| m.max(v));
        row.mapv_inplace(|v| (v - max).exp());
        let sum = row.sum();
        row /= sum;
    }
}

/// The column of each row's first maximum, as the exported graph's ArgMax picks it.
pub(crate) fn argmax_rows(scores: &Array2<f64>) -> Vec<usize> {
    scores
        .axis_iter(Axis(0))
        .map(|row| argmax(row.iter().copied()))
        .collect()
}

/// The index of the first maximum of `values`.
pub(crate) fn argmax(values: impl Iterator<Item = f64>) -> usize {
    let mut best = (0, f64::NEG_INFINITY);
    for (i, v) in values.enumerate() {
        if v > best.1 {
            best = (i, v);
        }
    }
    best.0
}

/// The outputs of a classifier from its class `scores` [N, C]: `probabilities` (the softmax of
/// the scores, or the scores themselves when they are probabilities already) and `label`, the
/// class of the highest score.
pub(crate) fn classifier_outputs(
    g: &mut Graph,
    classes: &ClassLabels,
    scores: &str,
    softmax: bool,
) {
    let n_classes = classes.len() as u64;
    if softmax {
        g.node(
            "Softmax",
            &[scores],
            &["probabilities"],
            vec![("axis", Attr::Int(1))],
        );
    } else {
        g.node("Identity", &[scores], &["probabilities"], vec![]);
    }
    g.node(
        "ArgMax",
        &[scores],
        &["label_index"],
        vec![("axis", Attr::Int(1)), ("keepdims", Attr::Int(0))],
    );
    let label_type = label_output(g, classes, "label_index", "label");
    g.output("label", label_type, &[Dim::batch()]);
    g.output(
        "probabilities",
        ElemType::Float,
        &[Dim::batch(), Dim::Fixed(n_classes)],
    );
}

/// Wires `index` (int64 class indices) to the original labels in output `name`, with ops that
/// both ONNX Runtime and tract run: `Gather` for integer labels, `CategoryMapper` for strings.
pub(crate) fn label_output(
    g: &mut Graph,
    classes: &ClassLabels,
    index: &str,
    name: &str,
) -> ElemType {
    match classes {
        ClassLabels::Int(values) => {
            let table = g.constant_i64("classes", &[values.len() as u64], values);
            g.node(
                "Gather",
                &[&table, index],
                &[name],
                vec![("axis", Attr::Int(0))],
            );
            ElemType::Int64
        }
        ClassLabels::Str(values) => {
            g.ml_node(
                "CategoryMapper",
                &[index],
                &[name],
                vec![
                    (
                        "cats_int64s",
                        Attr::Ints((0..values.len() as i64).collect()),
                    ),
                    ("cats_strings", Attr::Strings(values.clone())),
                    ("default_string", Attr::String(String::new())),
                ],
            );
            ElemType::String
        }
    }
}
