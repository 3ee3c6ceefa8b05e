//! `TreeEnsembleRegressor`: each tree adds its leaf's target weights, the aggregate function
//! combines them, `base_values` are added last, as onnxruntime computes it.
//!
//! Two onnxruntime behaviours are kept on purpose, since the same file must answer the same
//! in both engines: with one target only the first weight of a leaf counts and only PROBIT of
//! the post transforms applies; with several, a target that no tree's leaf touched for a row
//! is 0, whatever its base value.

use super::shap::{self, Seen, TreeScores};
use super::{Forest, Score};
use crate::ml::{Kernel, OutputSpec, PostTransform, cpu_op, floats, string};
use tract_onnx::model::{OnnxOpRegister, ParsingContext};
use tract_onnx::pb::NodeProto;
use tract_onnx::tract_hir::internal::*;
use tract_onnx::tract_hir::tract_ndarray::{Array2, ArrayView2};

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

impl Aggregate {
    /// Folds weight `w` into `score`.
    #[inline(always)]
    fn fold(self, score: &mut Score, w: f32) {
        score.value = match self {
            Aggregate::Sum | Aggregate::Average => score.value + w,
            Aggregate::Min if score.seen => score.value.min(w),
            Aggregate::Max if score.seen => score.value.max(w),
            Aggregate::Min | Aggregate::Max => w,
        };
        score.seen = true;
    }
}

#[derive(Debug)]
struct TreeEnsembleRegressor {
    forest: Forest,
    n_targets: usize,
    aggregate: Aggregate,
    base_values: Vec<f32>,
    post_transform: PostTransform,
}

fn tree_regressor(
    _ctx: &ParsingContext<'_>,
    node: &NodeProto,
) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    Ok((cpu_op(parse(node)?), vec![]))
}

fn parse(node: &NodeProto) -> TractResult<TreeEnsembleRegressor> {
    let n_targets: i64 = node.get_attr("n_targets")?;
    if n_targets < 1 {
        return node.bail_attr("n_targets", "must be at least 1");
    }
    let n_targets = n_targets as usize;
    let aggregate = match string(node, "aggregate_function", "SUM")? {
        "SUM" => Aggregate::Sum,
        "AVERAGE" => Aggregate::Average,
        "MIN" => Aggregate::Min,
        "MAX" => Aggregate::Max,
        other => {
            return node.bail_attr("aggregate_function", &format!("unknown value {other:?}"));
        }
    };
    let base_values = floats(node, "base_values")?;
    if !base_values.is_empty() && base_values.len() != n_targets {
        return node.bail_attr(
            "base_values",
            &format!("has {} values for {n_targets} targets", base_values.len()),
        );
    }
    Ok(TreeEnsembleRegressor {
        forest: Forest::parse(node, "target", n_targets)?,
        n_targets,
        aggregate,
        base_values,
        post_transform: PostTransform::parse(node)?,
    })
}

/// The targets' values before the post transform, as sums of the trees' leaves.
pub(super) fn tree_scores(node: &NodeProto) -> TractResult<TreeScores> {
    let op = parse(node)?;
    let t = op.n_targets;
    let scale = match op.aggregate {
        Aggregate::Sum => 1.0,
        Aggregate::Average => 1.0 / op.forest.n_trees() as f64,
        Aggregate::Min | Aggregate::Max => bail!(
            "its aggregate_function takes one tree's value, not a sum; TreeSHAP explains SUM \
             and AVERAGE ensembles"
        ),
    };
    let base = |k: usize| f64::from(op.base_values.get(k).copied().unwrap_or(0.0));
    let mut map = vec![0.0; t * t];
    let mut offset = vec![0.0; t];
    if t == 1 {
        map[0] = 1.0;
        offset[0] = base(0);
    } else {
        // A target no leaf of a row touched is 0, whatever its base value.
        for (k, seen) in shap::seen(&op.forest, t).into_iter().enumerate() {
            match seen {
                Seen::Always => {
                    map[k * t + k] = 1.0;
                    offset[k] = base(k);
                }
                Seen::Never => {}
                Seen::Sometimes => bail!(
                    "whether target {k} has a value depends on the leaves a row reaches, so it \
                     is not a sum of trees"
                ),
            }
        }
    }
    let transform = match op.post_transform {
        // With one target, onnxruntime applies only PROBIT.
        PostTransform::Probit => PostTransform::Probit,
        _ if t == 1 => PostTransform::None,
        other => other,
    };
    let values = shap::leaf_sums(&op.forest, t, t == 1, scale);
    TreeScores::new(node, op.forest, t, values, (map, offset), transform)
}

impl Kernel for TreeEnsembleRegressor {
    const NAME: &'static str = "TreeEnsembleRegressor";

    fn n_features(&self) -> usize {
        self.forest.n_features()
    }

    /// Trees need not split on every input column: `n_features` is one past the highest
    /// feature a split reads, and the input may be wider, as onnxruntime allows.
    fn allows_extra_features(&self) -> bool {
        true
    }

    fn outputs(&self) -> Vec<OutputSpec> {
        vec![OutputSpec::Matrix(f32::datum_type(), self.n_targets)]
    }

    fn eval(&self, rows: ArrayView2<'_, f32>) -> TractResult<TVec<Tensor>> {
        let (n, t) = (rows.nrows(), self.n_targets);
        let rows = rows.as_standard_layout();
        let flat = rows.as_slice().context("rows are in standard layout")?;
        let width = rows.ncols();
        let aggregate = self.aggregate;
        let mut scores = vec![Score::default(); n * t];
        self.forest
            .in_row_chunks(flat, width, &mut scores, t, |flat, scores| {
                self.forest.visit_leaves(flat, width, |r, weights| {
                    if t == 1 {
                        aggregate.fold(&mut scores[r], weights[0].value);
                    } else {
                        for w in weights {
                            aggregate.fold(&mut scores[r * t + w.target as usize], w.value);
                        }
                    }
                })
            });
        let n_trees = self.forest.n_trees() as f32;
        let base = |k: usize| self.base_values.get(k).copied().unwrap_or(0.0);
        let finish = |score: f32| match aggregate {
            Aggregate::Average => score / n_trees,
            _ => score,
        };
        let mut out = vec![0f32; n * t];
        if t == 1 {
            for (o, s) in out.iter_mut().zip(&scores) {
                let value = if s.seen || aggregate != Aggregate::Min && aggregate != Aggregate::Max
                {
                    finish(s.value) + base(0)
                } else {
                    base(0)
                };
                *o = if self.post_transform == PostTransform::Probit {
                    crate::ml::probit(value)
                } else {
                    value
                };
            }
        } else {
            for (row, scores) in out.chunks_mut(t).zip(scores.chunks(t)) {
                for (k, (o, s)) in row.iter_mut().zip(scores).enumerate() {
                    *o = if s.seen {
                        finish(s.value) + base(k)
                    } else {
                        0.0
                    };
                }
                self.post_transform.apply(row);
            }
        }
        Ok(tvec!(Array2::from_shape_vec((n, t), out)?.into_tensor()))
    }
}
