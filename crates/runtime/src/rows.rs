//! Row-wise float32 ArgMax and Softmax over the last axis, swapped in for tract's general ops
//! after optimisation.
//!
//! Classical models end in a Softmax and an ArgMax over a handful of classes. tract runs both
//! through general machinery (an n-d index walk for ArgMax, a SIMD kernel call per row for
//! Softmax) whose per-row overhead dwarfs three or ten floats: on a 64-row iris request the
//! two took a fifth of the server's time. These loops do the same arithmetic directly.

use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;
use tract_onnx::tract_core::ops::nn::{Reduce, Reducer, Softmax, SoftmaxKind};

/// Replaces last-axis float32 ArgMax (first maximum) and Softmax nodes of `model`.
pub(crate) fn replace_row_ops(model: &mut TypedModel) -> TractResult<()> {
    for id in 0..model.nodes.len() {
        let node = &model.nodes[id];
        let Some(&input) = node.inputs.first() else {
            continue;
        };
        let fact = model.outlet_fact(input)?;
        let Some(last) = fact.rank().checked_sub(1) else {
            continue;
        };
        if fact.datum_type != f32::datum_type() {
            continue;
        }
        let replacement: Option<Box<dyn TypedOp>> = if let Some(reduce) = node.op_as::<Reduce>() {
            (reduce.reducer == Reducer::ArgMax(false) && *reduce.axes == [last])
                .then(|| Box::new(RowArgMax) as _)
        } else if let Some(softmax) = node.op_as::<Softmax>() {
            (softmax.kind == SoftmaxKind::Softmax
                && softmax.quant_output_dt.is_none()
                && *softmax.axes == [last])
            .then(|| Box::new(RowSoftmax) as _)
        } else {
            None
        };
        if let Some(op) = replacement {
            model.nodes[id].op = op;
        }
    }
    Ok(())
}

/// The rows of a float32 tensor, as a slice and the row length.
fn rows(input: &Tensor) -> TractResult<(&[f32], usize)> {
    let width = *input.shape().last().context("a rank-0 input")?;
    Ok((input.try_as_plain_ram()?.as_slice::<f32>()?, width))
}

/// The index of each row's first maximum, as int64 with the last axis kept at 1.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct RowArgMax;

impl Op for RowArgMax {
    fn name(&self) -> StaticName {
        "RowArgMax".into()
    }

    op_as_typed_op!();
}

impl EvalOp for RowArgMax {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext<'_>, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        crate::vector_state::clear_upper();
        let input = args_1!(inputs);
        let (data, width) = rows(&input)?;
        let indices: Vec<i64> = if width == 0 {
            bail!("ArgMax over an empty axis")
        } else {
            data.chunks_exact(width)
                .map(|row| {
                    let mut best = 0;
                    for (i, &v) in row.iter().enumerate().skip(1) {
                        if v > row[best] {
                            best = i;
                        }
                    }
                    best as i64
                })
                .collect()
        };
        let mut shape: TVec<usize> = input.shape().into();
        *shape.last_mut().unwrap() = 1;
        Ok(tvec!(Tensor::from_shape(&shape, &indices)?.into_tvalue()))
    }
}

impl TypedOp for RowArgMax {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let mut shape: TVec<TDim> = inputs[0].shape.iter().cloned().collect();
        *shape.last_mut().context("a rank-0 input")? = 1.into();
        Ok(tvec!(i64::fact(shape)))
    }

    as_op!();
}

/// Softmax of each row: exp(x - max) / sum.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct RowSoftmax;

impl Op for RowSoftmax {
    fn name(&self) -> StaticName {
        "RowSoftmax".into()
    }

    op_as_typed_op!();
}

impl EvalOp for RowSoftmax {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext<'_>, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        crate::vector_state::clear_upper();
        let mut output = args_1!(inputs).into_tensor();
        let width = *output.shape().last().context("a rank-0 input")?;
        if width > 0 {
            let mut plain = output.try_as_plain_ram_mut()?;
            for row in plain.as_slice_mut::<f32>()?.chunks_exact_mut(width) {
                let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let mut sum = 0.0;
                for v in row.iter_mut() {
                    *v = (*v - max).exp();
                    sum += *v;
                }
                for v in row.iter_mut() {
                    *v /= sum;
                }
            }
        }
        Ok(tvec!(output.into_tvalue()))
    }
}

impl TypedOp for RowSoftmax {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        Ok(tvec!(inputs[0].without_value()))
    }

    as_op!();
}
