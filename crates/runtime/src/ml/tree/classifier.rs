//! `TreeEnsembleClassifier`: each tree adds its leaf's class weights, and the scores become
//! labels and probabilities as onnxruntime makes them.
//!
//! With three or more classes the label is the class with the highest score. Two classes
//! have onnxruntime's own layouts, which converters rely on:
//! - the *binary case*: the weights name one class only, so each row has one score `s`. With
//!   weights all positive (forests: `s` is a probability) the label is the second class when
//!   `s > 0.5` and the probabilities are `[1 - s, s]` (`s` through the logistic function
//!   first under LOGISTIC); with mixed weights (boosting: `s` is a
//!   margin) the label is the second class when `s > 0` and the probabilities are
//!   `[-s, s]`, or `[sigmoid(-s), sigmoid(s)]` under LOGISTIC;
//! - otherwise both classes have scores, and the label is the second class when its score
//!   is above 0.
//!
//! `base_values` of length 1 or 2 with two classes follow onnxruntime's reading too (see
//! [`TreeEnsembleClassifier::finish_two`]).

use super::shap::{self, Affine, Seen, TreeScores};
use super::{Forest, Score};
use crate::ml::{Kernel, OutputSpec, PostTransform, cpu_op, floats, ints, logistic, probit};
use tract_onnx::model::{OnnxOpRegister, ParsingContext};
use tract_onnx::pb::NodeProto;
use tract_onnx::tract_hir::internal::*;
use tract_onnx::tract_hir::tract_ndarray::{Array1, Array2, ArrayView2};

pub(super) fn register_all(reg: &mut OnnxOpRegister) {
    reg.insert("TreeEnsembleClassifier", tree_classifier);
}

#[derive(Debug)]
struct TreeEnsembleClassifier {
    forest: Forest,
    /// The labels, in score order (string labels were made `0..C` before parsing).
    labels: Vec<i64>,
    base_values: Vec<f32>,
    post_transform: PostTransform,
    /// Two classes and the weights name only one of them.
    binary_case: bool,
    /// No weight is negative.
    positive_weights: bool,
    /// The weights' values where every leaf weights every class in order
    /// ([`Forest::dense_values`]).
    dense: Option<Vec<f32>>,
}

fn tree_classifier(
    _ctx: &ParsingContext<'_>,
    node: &NodeProto,
) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    Ok((cpu_op(parse(node)?), vec![]))
}

fn parse(node: &NodeProto) -> TractResult<TreeEnsembleClassifier> {
    let labels = ints(node, "classlabels_int64s")?;
    if labels.len() < 2 {
        // String labels were rewritten into classlabels_int64s before tract parses the graph.
        return node.bail_attr(
            "classlabels_int64s",
            &format!(
                "has {} class labels; a classifier needs two or more",
                labels.len()
            ),
        );
    }
    let c = labels.len();
    let base_values = floats(node, "base_values")?;
    // As onnxruntime: up to two for two classes, else none or one per class.
    if base_values.len() > c || c > 2 && !base_values.is_empty() && base_values.len() != c {
        return node.bail_attr(
            "base_values",
            &format!("has {} values for {c} classes", base_values.len()),
        );
    }
    let forest = Forest::parse(node, "class", c)?;
    // onnxruntime decides on every weight listed, those on branches included.
    let positive_weights = !floats(node, "class_weights")?.iter().any(|&w| w < 0.0);
    Ok(TreeEnsembleClassifier {
        binary_case: c == 2 && distinct_class_ids(node)? == 1,
        dense: forest.dense_values(c),
        forest,
        labels,
        base_values,
        post_transform: PostTransform::parse(node)?,
        positive_weights,
    })
}

fn distinct_class_ids(node: &NodeProto) -> TractResult<usize> {
    let mut ids = ints(node, "class_ids")?;
    ids.sort_unstable();
    ids.dedup();
    Ok(ids.len())
}

impl TreeEnsembleClassifier {
    /// Three or more classes: base values, then the label of the highest score (the first
    /// one on ties), then the post transform.
    fn finish_many(&self, scores: &mut [Score], out: &mut [f32]) -> i64 {
        for (s, &b) in scores.iter_mut().zip(&self.base_values) {
            s.value = if s.seen { s.value + b } else { b };
            s.seen = true;
        }
        let mut best: Option<(usize, f32)> = None;
        for (k, s) in scores.iter().enumerate() {
            if s.seen && best.is_none_or(|(_, v)| s.value > v) {
                best = Some((k, s.value));
            }
        }
        for (o, s) in out.iter_mut().zip(scores.iter()) {
            *o = s.out();
        }
        self.post_transform.apply(out);
        self.labels[best.map_or(0, |(k, _)| k)]
    }

    /// Two classes, as onnxruntime's `TreeAggregatorClassifier::FinalizeScores` reads them.
    fn finish_two(&self, scores: &mut [Score], out: &mut [f32]) -> i64 {
        let [s0, s1] = scores else {
            unreachable!("two classes have two scores")
        };
        // Whether class 1 keeps a column of its own, or only the one score s0 is written.
        let mut two_columns = true;
        // onnxruntime writes the second probability itself in the binary case, and also for
        // a single score without base values.
        let mut mixed_layout = false;
        match self.base_values[..] {
            [_, b1] if s1.seen => {
                // onnxruntime adds base_values[1] to the score of class 0 here and ignores
                // base_values[0]; converters write both equal.
                s1.value = b1 + s0.value;
                s0.value = -s1.value;
            }
            [b0, b1] => {
                s1.value += b1;
                s0.value += b0;
            }
            [b0] => {
                s0.value += b0;
                two_columns = s1.seen;
            }
            [] => {
                mixed_layout = true;
                two_columns = s1.seen;
            }
            _ => {}
        }
        let positive = if two_columns && s1.seen {
            s1.value
        } else if s0.seen {
            s0.value
        } else {
            0.0
        };
        let layout = self.layout(mixed_layout);
        let second = match layout {
            Layout::Complement => positive > 0.5,
            Layout::Margin | Layout::Single => positive > 0.0,
        };
        let label = self.labels[usize::from(second)];
        if two_columns {
            out[0] = s0.out();
            out[1] = s1.out();
            self.post_transform.apply(out);
            return label;
        }
        let s = s0.out();
        if self.post_transform == PostTransform::Probit {
            out[0] = probit(s);
            out[1] = 0.0;
            return label;
        }
        match layout {
            // onnxruntime 1.32 applies LOGISTIC to the one score before complementing it.
            Layout::Complement if self.post_transform == PostTransform::Logistic => {
                out[1] = logistic(s);
                out[0] = 1.0 - out[1];
            }
            Layout::Complement => {
                out[0] = 1.0 - s;
                out[1] = s;
            }
            Layout::Margin if self.post_transform == PostTransform::Logistic => {
                out[0] = logistic(-s);
                out[1] = logistic(s);
            }
            Layout::Margin => {
                out[0] = -s;
                out[1] = s;
            }
            Layout::Single => {
                out[0] = s;
                out[1] = 0.0;
            }
        }
        label
    }
}

impl TreeEnsembleClassifier {
    /// How one score becomes two columns.
    fn layout(&self, mixed_layout: bool) -> Layout {
        match (self.binary_case, self.positive_weights) {
            (true, true) => Layout::Complement,
            (true, false) => Layout::Margin,
            (false, _) if mixed_layout => Layout::Margin,
            (false, _) => Layout::Single,
        }
    }

    /// The finish of [`TreeEnsembleClassifier::finish_many`] and
    /// [`TreeEnsembleClassifier::finish_two`] up to the post transform, as an affine map of
    /// the classes' sums: `(map, offset)` and the transform the model applies after it.
    fn affine_finish(&self, seen: &[Seen]) -> TractResult<(Affine, PostTransform)> {
        let c = self.labels.len();
        let base = |k: usize| f64::from(self.base_values.get(k).copied().unwrap_or(0.0));
        if c > 2 {
            // An unseen class's score is its base value, or 0 without: its sum, 0, plus that.
            let mut map = vec![0.0; c * c];
            (0..c).for_each(|k| map[k * c + k] = 1.0);
            return Ok(((map, (0..c).map(base).collect()), self.post_transform));
        }
        let always = |k: usize| match seen[k] {
            Seen::Always => Ok(true),
            Seen::Never => Ok(false),
            Seen::Sometimes => bail!(
                "whether class {k} has a score depends on the leaves a row reaches, so its \
                 score is not a sum of trees"
            ),
        };
        let (seen0, seen1) = (always(0)?, always(1)?);
        // Each score as a linear form of the two sums: ([a0, a1], offset).
        type Form = ([f64; 2], f64);
        let zero: Form = ([0.0; 2], 0.0);
        let neg = |(a, b): Form| -> Form { ([-a[0], -a[1]], -b) };
        let (mut s0, mut s1): (Form, Form) = (([1.0, 0.0], 0.0), ([0.0, 1.0], 0.0));
        let mut two_columns = true;
        let mut mixed_layout = false;
        match self.base_values[..] {
            [_, b1] if seen1 => {
                s1 = ([1.0, 0.0], f64::from(b1));
                s0 = neg(s1);
            }
            [b0, b1] => {
                s1.1 += f64::from(b1);
                s0.1 += f64::from(b0);
            }
            [b0] => {
                s0.1 += f64::from(b0);
                two_columns = seen1;
            }
            [] => {
                mixed_layout = true;
                two_columns = seen1;
            }
            _ => {}
        }
        let s0 = if seen0 { s0 } else { zero };
        let s1 = if seen1 { s1 } else { zero };
        let transform = self.post_transform;
        let (out, transform) = if two_columns {
            ([s0, s1], transform)
        } else if transform == PostTransform::Probit {
            ([s0, zero], transform)
        } else {
            match self.layout(mixed_layout) {
                // Under LOGISTIC, 1 - logistic(s) is logistic(-s).
                Layout::Complement if transform == PostTransform::Logistic => {
                    ([neg(s0), s0], transform)
                }
                Layout::Complement => ([(neg(s0).0, 1.0 - s0.1), s0], transform),
                Layout::Margin => ([neg(s0), s0], transform),
                Layout::Single => ([s0, zero], transform),
            }
        };
        let map = out.iter().flat_map(|f| f.0).collect();
        let offset = out.iter().map(|f| f.1).collect();
        Ok(((map, offset), transform))
    }
}

/// The classes' scores before the post transform, as sums of the trees' leaves.
pub(super) fn tree_scores(node: &NodeProto) -> TractResult<TreeScores> {
    let op = parse(node)?;
    let c = op.labels.len();
    let seen = shap::seen(&op.forest, c);
    let (affine, transform) = op.affine_finish(&seen)?;
    let values = shap::leaf_sums(&op.forest, c, false, 1.0);
    TreeScores::new(node, op.forest, c, values, affine, transform)
}

/// How one score becomes two probability columns.
#[derive(Debug, Clone, Copy)]
enum Layout {
    /// `[1 - s, s]`.
    Complement,
    /// `[-s, s]`, or through the logistic function.
    Margin,
    /// `[s, 0]`: onnxruntime leaves the second column unwritten.
    Single,
}

impl Kernel for TreeEnsembleClassifier {
    const NAME: &'static str = "TreeEnsembleClassifier";

    fn n_features(&self) -> usize {
        self.forest.n_features()
    }

    fn allows_extra_features(&self) -> bool {
        true
    }

    fn outputs(&self) -> Vec<OutputSpec> {
        vec![
            OutputSpec::Column(i64::datum_type()),
            OutputSpec::Matrix(f32::datum_type(), self.labels.len()),
        ]
    }

    fn eval(&self, rows: ArrayView2<'_, f32>) -> TractResult<TVec<Tensor>> {
        let (n, c) = (rows.nrows(), self.labels.len());
        let rows = rows.as_standard_layout();
        let flat = rows.as_slice().context("rows are in standard layout")?;
        let width = rows.ncols();
        // Every leaf of a dense forest weights every class: all are seen, and the values add
        // up as the weights would, tree by tree in order.
        let seen = self.dense.is_some();
        let mut scores = vec![Score { value: 0.0, seen }; n * c];
        self.forest
            .in_row_chunks(flat, width, &mut scores, c, |flat, scores| {
                match &self.dense {
                    Some(dense) => self.forest.visit_leaf_ranges(flat, width, |r, range| {
                        let row = &mut scores[r * c..(r + 1) * c];
                        for (s, v) in row.iter_mut().zip(&dense[range]) {
                            s.value += v;
                        }
                    }),
                    None => self.forest.visit_leaves(flat, width, |r, weights| {
                        let row = &mut scores[r * c..(r + 1) * c];
                        for w in weights {
                            let s = &mut row[w.target as usize];
                            s.value += w.value;
                            s.seen = true;
                        }
                    }),
                }
            });
        let mut labels = Array1::<i64>::zeros(n);
        let mut out = vec![0f32; n * c];
        for ((row, label), probabilities) in scores
            .chunks_mut(c)
            .zip(labels.iter_mut())
            .zip(out.chunks_mut(c))
        {
            *label = if c == 2 {
                self.finish_two(row, probabilities)
            } else {
                self.finish_many(row, probabilities)
            };
        }
        Ok(tvec!(
            labels.into_tensor(),
            Array2::from_shape_vec((n, c), out)?.into_tensor()
        ))
    }
}
