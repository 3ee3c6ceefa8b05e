//! ai.onnx.ml operators that tract-onnx lacks, registered into its ONNX op register.
//!
//! Scaler is wired from tract's own ops. The tree and SVM ops are [`CpuOp`]s: stateless ops
//! that evaluate a [`Kernel`] row by row on float32 features, the way onnxruntime computes
//! them (its CPU kernels are the reference the tests compare against). The table
//! preprocessing ops (`encode`) map one tensor of numbers or strings element by element.

#[cfg(not(target_family = "wasm"))]
pub(crate) mod dense;
mod encode;
mod scaler;
mod svm;
mod tree;

pub(crate) use tree::{TreeScores, tree_scores};

use std::fmt::Debug;
use std::sync::Arc;
use tract_onnx::model::OnnxOpRegister;
use tract_onnx::pb::NodeProto;
use tract_onnx::tract_hir::internal::*;
use tract_onnx::tract_hir::tract_ndarray::{ArrayView2, Ix2};

/// Registers every op of this module into `reg`.
pub(crate) fn register_all(reg: &mut OnnxOpRegister) {
    #[cfg(not(target_family = "wasm"))]
    dense::register_all(reg);
    encode::register_all(reg);
    scaler::register_all(reg);
    svm::register_all(reg);
    tree::register_all(reg);
}

/// What one of the op's outputs holds for a batch of N rows.
#[derive(Debug, Clone, Copy)]
pub(crate) enum OutputSpec {
    /// `[N]` of this type.
    Column(DatumType),
    /// `[N, width]` of this type.
    Matrix(DatumType, usize),
}

/// The computation of a [`CpuOp`]: a batch of float32 rows in, whole tensors out.
pub(crate) trait Kernel: Debug + Send + Sync + 'static {
    /// The ONNX op type, for dumps and errors.
    const NAME: &'static str;
    /// How many features a row must have.
    fn n_features(&self) -> usize;
    /// Whether a row may have more than `n_features` features, the extra ones unread (a tree
    /// ensemble reads only the features its splits use).
    fn allows_extra_features(&self) -> bool {
        false
    }
    /// The outputs, in ONNX order.
    fn outputs(&self) -> Vec<OutputSpec>;
    /// Computes every output for `rows` ([N, n_features], or wider where
    /// [`Kernel::allows_extra_features`]).
    fn eval(&self, rows: ArrayView2<'_, f32>) -> TractResult<TVec<Tensor>>;
}

/// A stateless op evaluating `K` on the CPU; the same value serves as the inference-time
/// expansion and the typed op it wires.
#[derive(Debug)]
pub(crate) struct CpuOp<K>(Arc<K>);

impl<K> Clone for CpuOp<K> {
    fn clone(&self) -> Self {
        CpuOp(self.0.clone())
    }
}

/// The typed op a [`CpuOp`] expansion wires; a separate type so that tract's `Op` and
/// `Expansion` traits, which share method names, each have their own.
#[derive(Debug)]
pub(crate) struct CpuEval<K>(Arc<K>);

impl<K> Clone for CpuEval<K> {
    fn clone(&self) -> Self {
        CpuEval(self.0.clone())
    }
}

// The kernels hold float attributes, which are not `Eq`: two ops are the same op when they
// share a kernel.
impl<K> PartialEq for CpuEval<K> {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}
impl<K> Eq for CpuEval<K> {}

pub(crate) fn cpu_op<K: Kernel>(kernel: K) -> Box<dyn InferenceOp> {
    expand(CpuOp(Arc::new(kernel)))
}

impl<K: Kernel> Expansion for CpuOp<K> {
    fn name(&self) -> StaticName {
        K::NAME.into()
    }

    fn nboutputs(&self) -> TractResult<usize> {
        Ok(self.0.outputs().len())
    }

    fn rules<'r, 'p: 'r, 's: 'r>(
        &'s self,
        s: &mut Solver<'r>,
        inputs: &'p [TensorProxy],
        outputs: &'p [TensorProxy],
    ) -> InferenceResult {
        let specs = self.0.outputs();
        check_input_arity(inputs, 1)?;
        check_output_arity(outputs, specs.len())?;
        s.equals(&inputs[0].rank, 2)?;
        if !self.0.allows_extra_features() {
            s.equals(&inputs[0].shape[1], self.0.n_features().to_dim())?;
        }
        for (output, spec) in outputs.iter().zip(specs) {
            s.equals(&output.shape[0], &inputs[0].shape[0])?;
            match spec {
                OutputSpec::Column(dt) => {
                    s.equals(&output.datum_type, dt)?;
                    s.equals(&output.rank, 1)?;
                }
                OutputSpec::Matrix(dt, width) => {
                    s.equals(&output.datum_type, dt)?;
                    s.equals(&output.rank, 2)?;
                    s.equals(&output.shape[1], width.to_dim())?;
                }
            }
        }
        Ok(())
    }

    fn wire(
        &self,
        prefix: &str,
        model: &mut TypedModel,
        inputs: &[OutletId],
    ) -> TractResult<TVec<OutletId>> {
        model.wire_node(prefix, CpuEval(self.0.clone()), inputs)
    }
}

impl<K: Kernel> Op for CpuEval<K> {
    fn name(&self) -> StaticName {
        K::NAME.into()
    }

    op_as_typed_op!();
}

impl<K: Kernel> EvalOp for CpuEval<K> {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext<'_>, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        crate::vector_state::clear_upper();
        let input = args_1!(inputs);
        let input = input.cast_to::<f32>()?;
        let view = input.to_plain_array_view::<f32>()?;
        let view = view.into_dimensionality::<Ix2>()?;
        let fits = if self.0.allows_extra_features() {
            view.ncols() >= self.0.n_features()
        } else {
            view.ncols() == self.0.n_features()
        };
        if !fits {
            bail!(
                "{} takes {}{} features per row, got {}",
                K::NAME,
                if self.0.allows_extra_features() {
                    "at least "
                } else {
                    ""
                },
                self.0.n_features(),
                view.ncols()
            );
        }
        Ok(self
            .0
            .eval(view)?
            .into_iter()
            .map(IntoTValue::into_tvalue)
            .collect())
    }
}

impl<K: Kernel> TypedOp for CpuEval<K> {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let n = inputs[0].shape[0].clone();
        Ok(self
            .0
            .outputs()
            .into_iter()
            .map(|spec| match spec {
                OutputSpec::Column(dt) => dt.fact([n.clone()]),
                OutputSpec::Matrix(dt, width) => dt.fact([n.clone(), width.to_dim()]),
            })
            .collect())
    }

    as_op!();
}

/// Reads a float list attribute, empty when absent.
pub(crate) fn floats(node: &NodeProto, name: &str) -> TractResult<Vec<f32>> {
    Ok(node.get_attr_opt_vec(name)?.unwrap_or_default())
}

/// Reads an int list attribute, empty when absent.
pub(crate) fn ints(node: &NodeProto, name: &str) -> TractResult<Vec<i64>> {
    Ok(node.get_attr_opt_vec(name)?.unwrap_or_default())
}

/// Reads an int list attribute of indices (no negatives).
pub(crate) fn indices(node: &NodeProto, name: &str) -> TractResult<Vec<usize>> {
    ints(node, name)?
        .into_iter()
        .map(|i| {
            usize::try_from(i).or_else(|_| node.bail_attr(name, &format!("negative index {i}")))
        })
        .collect()
}

/// Reads a string attribute, `default` when absent.
pub(crate) fn string<'a>(
    node: &'a NodeProto,
    name: &str,
    default: &'a str,
) -> TractResult<&'a str> {
    Ok(node.get_attr_opt::<&str>(name)?.unwrap_or(default))
}

/// onnxruntime's `post_transform`, applied to each row of scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PostTransform {
    None,
    Logistic,
    Softmax,
    SoftmaxZero,
    Probit,
}

impl PostTransform {
    pub(crate) fn parse(node: &NodeProto) -> TractResult<PostTransform> {
        Ok(match string(node, "post_transform", "NONE")? {
            "NONE" => PostTransform::None,
            "LOGISTIC" => PostTransform::Logistic,
            "SOFTMAX" => PostTransform::Softmax,
            "SOFTMAX_ZERO" => PostTransform::SoftmaxZero,
            "PROBIT" => PostTransform::Probit,
            other => return node.bail_attr("post_transform", &format!("unknown value {other:?}")),
        })
    }

    /// Transforms one row of two or more scores in place (onnxruntime's
    /// `batched_update_scores_inplace` with a batch size over 1).
    pub(crate) fn apply(self, scores: &mut [f32]) {
        match self {
            PostTransform::None => {}
            PostTransform::Logistic => scores.iter_mut().for_each(|s| *s = logistic(*s)),
            PostTransform::Probit => scores.iter_mut().for_each(|s| *s = probit(*s)),
            PostTransform::Softmax => {
                let max = scores.iter().copied().fold(f32::MIN, f32::max);
                let mut sum = 0.0;
                for s in scores.iter_mut() {
                    *s = (*s - max).exp();
                    sum += *s;
                }
                scores.iter_mut().for_each(|s| *s /= sum);
            }
            PostTransform::SoftmaxZero => {
                // Zeros stay zeros: they stand for classes no tree voted for.
                let max = scores.iter().copied().fold(f32::MIN, f32::max);
                let exp_neg_max = (-max).exp();
                let mut sum = 0.0;
                for s in scores.iter_mut() {
                    if s.abs() > 1e-7 {
                        *s = (*s - max).exp();
                        sum += *s;
                    } else {
                        *s *= exp_neg_max;
                    }
                }
                scores.iter_mut().for_each(|s| *s /= sum);
            }
        }
    }
}

pub(crate) fn logistic(v: f32) -> f32 {
    let p = 1.0 / (1.0 + (-v.abs()).exp());
    if v < 0.0 { 1.0 - p } else { p }
}

/// onnxruntime's approximation of the inverse normal CDF, in float32 as it computes it (near
/// 0.5 the formula cancels, so its constants must be the same to the last bit).
pub(crate) fn probit(v: f32) -> f32 {
    let x = 2.0 * v - 1.0;
    let sgn = if x < 0.0 { -1.0 } else { 1.0 };
    let x = (1.0 - x) * (1.0 + x);
    let log = x.ln();
    let a = 2.0 / (std::f32::consts::PI * 0.147) + 0.5 * log;
    let b = 1.0 / 0.147 * log;
    std::f32::consts::SQRT_2 * sgn * (-a + (a * a - b).sqrt()).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softmax_rows_sum_to_one() {
        let mut s = [1.0, 2.0, 3.0];
        PostTransform::Softmax.apply(&mut s);
        assert!((s.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!(s[2] > s[1] && s[1] > s[0]);
    }

    #[test]
    fn logistic_is_symmetric() {
        assert!((logistic(2.0) + logistic(-2.0) - 1.0).abs() < 1e-6);
        assert_eq!(logistic(0.0), 0.5);
    }

    #[test]
    fn probit_inverts_the_normal_cdf() {
        assert!(probit(0.5).abs() < 1e-6);
        assert!((probit(0.975) - 1.96).abs() < 1e-2);
    }
}
