//! The tract backend: the model parsed, typed with a symbolic batch size and optimised once.

use crate::backend::{Backend, TRACT};
use crate::{DataType, Error, IoSpec, Result, Tensor, TensorData, ml, rows};
use std::sync::Arc;
use tract_onnx::pb;
use tract_onnx::prelude::*;

/// A model optimised by tract, ready to run from many threads at once.
#[derive(Debug)]
pub(crate) struct TractBackend {
    pub(crate) plan: Arc<TypedRunnableModel>,
    /// The model's float weights (elements of its float initializers): about the multiply-adds
    /// one row costs in its matrix products. The wasm engine runs on one thread and reads none.
    #[cfg_attr(target_family = "wasm", allow(dead_code))]
    weights: usize,
}

/// Multiply-adds (rows x the model's weights) from which a run lets tract split its matrix
/// products over rayon's pool: a few tenths of a millisecond of one core's work, so that
/// waiting for a busy pool's threads costs less than the split saves. Below it a run stays on
/// the caller's thread: tract's own gate counts panels, not multiply-adds, and split a linear
/// model's 4,096 rows, which then ran at half the speed on a loaded machine.
#[cfg(not(target_family = "wasm"))]
pub(crate) const PARALLEL_MACS: usize = 1 << 23;

/// Builds tract's plan for `proto` (already rewritten for tract) and the model's inputs and
/// outputs as tract types them.
pub(crate) fn load(
    source_name: &str,
    proto: &pb::ModelProto,
) -> Result<(TractBackend, Vec<IoSpec>, Vec<IoSpec>)> {
    let not_onnx = |reason: String| Error::NotOnnx {
        source_name: source_name.to_string(),
        reason,
    };
    let unsupported = |e: TractError| Error::Unsupported {
        source_name: source_name.to_string(),
        reason: format!("{e:#}"),
    };
    let mut onnx = tract_onnx::onnx();
    ml::register_all(&mut onnx.op_register);
    let graph = crate::graph(source_name, proto)?;
    let mut model = onnx.model_for_proto_model(proto).map_err(unsupported)?;
    let mut inputs = Vec::new();
    for (i, outlet) in model
        .input_outlets()
        .map_err(unsupported)?
        .to_vec()
        .into_iter()
        .enumerate()
    {
        let name = model.node(outlet.node).name.clone();
        let info = graph
            .input
            .iter()
            .find(|v| v.name == name)
            .ok_or_else(|| not_onnx(format!("input {name:?} has no declared type")))?;
        let (dt, dims) = declared_type(info)
            .ok_or_else(|| not_onnx(format!("input {name:?} is not a tensor of known rank")))?;
        let datatype = datatype(dt).ok_or_else(|| Error::Unsupported {
            source_name: source_name.to_string(),
            reason: format!("input {name:?} has element type {dt:?}"),
        })?;
        let shape: TVec<TDim> = dims
            .iter()
            .enumerate()
            .map(|(axis, d)| match d {
                Some(n) => TDim::from(*n as i64),
                // An unknown size is the batch on the first axis; elsewhere its own symbol.
                None if axis == 0 => model.sym(skiff_onnx::BATCH_DIM).into(),
                None => model.sym(&format!("{name}_{axis}")).into(),
            })
            .collect();
        model
            .set_input_fact(i, dt.fact(shape).into())
            .map_err(unsupported)?;
        inputs.push(IoSpec {
            name,
            datatype,
            shape: dims.iter().map(|d| d.map_or(-1, |n| n as i64)).collect(),
        });
    }
    let mut model = model.into_typed().map_err(unsupported)?;
    integer_outputs_as_i64(&mut model).map_err(unsupported)?;
    let mut model = model.into_optimized().map_err(unsupported)?;
    rows::replace_row_ops(&mut model).map_err(unsupported)?;
    let mut outputs = Vec::new();
    for (i, outlet) in model
        .output_outlets()
        .map_err(unsupported)?
        .iter()
        .enumerate()
    {
        let fact = model.outlet_fact(*outlet).map_err(unsupported)?;
        let name = graph
            .output
            .get(i)
            .map_or_else(|| format!("output_{i}"), |o| o.name.clone());
        let datatype = datatype(fact.datum_type).ok_or_else(|| Error::Unsupported {
            source_name: source_name.to_string(),
            reason: format!("output {name:?} has element type {:?}", fact.datum_type),
        })?;
        let shape = fact
            .shape
            .iter()
            .map(|d| d.to_i64().unwrap_or(-1))
            .collect();
        outputs.push(IoSpec {
            name,
            datatype,
            shape,
        });
    }
    let plan = model.into_runnable().map_err(unsupported)?;
    let weights = graph
        .initializer
        .iter()
        .filter(|t| FLOAT_TYPES.contains(&t.data_type))
        .map(|t| t.dims.iter().map(|&d| d.max(0) as usize).product::<usize>())
        .sum();
    Ok((TractBackend { plan, weights }, inputs, outputs))
}

impl Backend for TractBackend {
    fn run(&self, inputs: Vec<Tensor>) -> Result<Vec<Tensor>> {
        let values = inputs
            .into_iter()
            .map(|t| to_tract(t).map(IntoTValue::into_tvalue))
            .collect::<Result<TVec<_>>>()?;
        let outputs = self
            .run_plan(values)
            .map_err(|e| Error::Run(format!("{e:#}")))?;
        crate::vector_state::clear_upper();
        outputs.into_iter().map(|v| from_tract(&v)).collect()
    }

    fn describe(&self) -> String {
        TRACT.to_string()
    }
}

impl TractBackend {
    /// Runs the plan, letting tract split its matrix products over rayon's pool when the
    /// request is worth it ([`PARALLEL_MACS`]; native builds only). The tree kernels decide
    /// for themselves (`Forest::in_row_chunks`).
    fn run_plan(&self, values: TVec<TValue>) -> TractResult<TVec<TValue>> {
        #[cfg(not(target_family = "wasm"))]
        {
            let rows = values.first().and_then(|v| v.shape().first().copied());
            if rows.unwrap_or(0).saturating_mul(self.weights) >= PARALLEL_MACS {
                return multithread::multithread_tract_scope(
                    multithread::Executor::RayonGlobal,
                    || self.plan.run(values),
                );
            }
        }
        self.plan.run(values)
    }
}

/// ONNX's float element types.
const FLOAT_TYPES: [i32; 4] = [
    pb::tensor_proto::DataType::Float as i32,
    pb::tensor_proto::DataType::Float16 as i32,
    pb::tensor_proto::DataType::Double as i32,
    pb::tensor_proto::DataType::Bfloat16 as i32,
];

fn integer_outputs_as_i64(model: &mut TypedModel) -> TractResult<()> {
    let mut outputs = model.output_outlets()?.to_vec();
    for (i, outlet) in outputs.iter_mut().enumerate() {
        if model.outlet_fact(*outlet)?.datum_type == DatumType::TDim {
            let label = model.outlet_label(*outlet).map(str::to_string);
            let name = format!("output_{i}_as_i64");
            *outlet = model.wire_node(
                name,
                tract_onnx::tract_core::ops::cast::cast(DatumType::I64),
                &[*outlet],
            )?[0];
            if let Some(label) = label {
                model.set_outlet_label(*outlet, label)?;
            }
        }
    }
    model.select_output_outlets(&outputs)
}

fn declared_type(info: &pb::ValueInfoProto) -> Option<(DatumType, Vec<Option<u64>>)> {
    use pb::tensor_shape_proto::dimension::Value;
    let Some(pb::type_proto::Value::TensorType(t)) = info.r#type.as_ref()?.value.as_ref() else {
        return None;
    };
    let dt = match t.elem_type {
        1 => DatumType::F32,
        6 => DatumType::I32,
        7 => DatumType::I64,
        8 => DatumType::String,
        9 => DatumType::Bool,
        11 => DatumType::F64,
        _ => return None,
    };
    let dims = t
        .shape
        .as_ref()?
        .dim
        .iter()
        .map(|d| match d.value {
            Some(Value::DimValue(n)) if n > 0 => Some(n as u64),
            _ => None,
        })
        .collect();
    Some((dt, dims))
}

fn datatype(dt: DatumType) -> Option<DataType> {
    Some(match dt {
        DatumType::Bool => DataType::Bool,
        DatumType::I32 => DataType::Int32,
        DatumType::I64 => DataType::Int64,
        DatumType::F32 => DataType::Fp32,
        DatumType::F64 => DataType::Fp64,
        DatumType::String => DataType::Bytes,
        _ => return None,
    })
}

fn to_tract(tensor: Tensor) -> Result<tract_onnx::prelude::Tensor> {
    fn array<T: Datum>(shape: &[usize], v: Vec<T>) -> Result<tract_onnx::prelude::Tensor> {
        tract_ndarray::ArrayD::from_shape_vec(shape, v)
            .map(IntoTensor::into_tensor)
            .map_err(|e| Error::BadInput(e.to_string()))
    }
    let shape = &tensor.shape;
    match tensor.data {
        TensorData::Bool(v) => array(shape, v),
        TensorData::Int32(v) => array(shape, v),
        TensorData::Int64(v) => array(shape, v),
        TensorData::Fp32(v) => array(shape, v),
        TensorData::Fp64(v) => array(shape, v),
        TensorData::Bytes(v) => array(shape, v),
    }
}

fn from_tract(t: &tract_onnx::prelude::Tensor) -> Result<Tensor> {
    // Outputs are contiguous: one copy of the slice, not an iteration over an n-d array.
    fn vec<T: Datum>(t: &tract_onnx::prelude::Tensor) -> Result<Vec<T>> {
        let run = |e: TractError| Error::Run(format!("{e:#}"));
        Ok(t.try_as_plain_ram()
            .map_err(run)?
            .as_slice::<T>()
            .map_err(run)?
            .to_vec())
    }
    let shape = t.shape().to_vec();
    let data = match t.datum_type() {
        DatumType::Bool => TensorData::Bool(vec(t)?),
        DatumType::I32 => TensorData::Int32(vec(t)?),
        DatumType::I64 => TensorData::Int64(vec(t)?),
        DatumType::F32 => TensorData::Fp32(vec(t)?),
        DatumType::F64 => TensorData::Fp64(vec(t)?),
        DatumType::String => TensorData::Bytes(vec(t)?),
        other => {
            return Err(Error::Run(format!(
                "model produced unsupported element type {other:?}"
            )));
        }
    };
    Ok(Tensor { shape, data })
}
