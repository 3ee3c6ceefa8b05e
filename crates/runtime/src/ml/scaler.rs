//! `Scaler`: `y = (x - offset) * scale`, per feature or broadcast, as float32.

use super::floats;
use tract_onnx::model::{OnnxOpRegister, ParsingContext};
use tract_onnx::pb::NodeProto;
use tract_onnx::tract_hir::internal::*;
use tract_onnx::tract_hir::tract_core::ops::{cast::cast, math};

pub(super) fn register_all(reg: &mut OnnxOpRegister) {
    reg.insert("Scaler", scaler);
}

#[derive(Debug, Clone)]
struct Scaler {
    /// [1, 1] or [1, features].
    offset: Arc<Tensor>,
    /// [1, 1] or [1, features].
    scale: Arc<Tensor>,
}

fn scaler(
    _ctx: &ParsingContext<'_>,
    node: &NodeProto,
) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    let row = |name: &str| -> TractResult<Arc<Tensor>> {
        let v = floats(node, name)?;
        if v.is_empty() {
            return node.bail_attr(name, "missing or empty");
        }
        Ok(tensor1(&v).into_shape(&[1, v.len()])?.into_arc_tensor())
    };
    Ok((
        expand(Scaler {
            offset: row("offset")?,
            scale: row("scale")?,
        }),
        vec![],
    ))
}

impl Expansion for Scaler {
    fn name(&self) -> StaticName {
        "Scaler".into()
    }

    fn rules<'r, 'p: 'r, 's: 'r>(
        &'s self,
        s: &mut Solver<'r>,
        inputs: &'p [TensorProxy],
        outputs: &'p [TensorProxy],
    ) -> InferenceResult {
        check_input_arity(inputs, 1)?;
        check_output_arity(outputs, 1)?;
        s.equals(&inputs[0].rank, 2)?;
        s.equals(&outputs[0].datum_type, f32::datum_type())?;
        s.equals(&inputs[0].shape, &outputs[0].shape)?;
        for attr in [&self.offset, &self.scale] {
            let width = attr.shape()[1];
            if width > 1 {
                s.equals(&inputs[0].shape[1], width.to_dim())?;
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
        let x = model.wire_node(format!("{prefix}.cast"), cast(f32::datum_type()), inputs)?;
        let offset = model.add_const(format!("{prefix}.offset"), self.offset.clone())?;
        let scale = model.add_const(format!("{prefix}.scale"), self.scale.clone())?;
        let centred = model.wire_node(format!("{prefix}.sub"), math::sub(), &[x[0], offset])?;
        model.wire_node(prefix, math::mul(), &[centred[0], scale])
    }
}
