//! Loads ONNX models and runs them with tract.
//!
//! This is the serving path's engine: the host and the image's server depend on it, and it
//! depends on nothing that trains. A [`Model`] is parsed, typed with a symbolic batch size and
//! optimised once; [`Model::run`] then takes any batch.
//!
//! ```no_run
//! use skiff_runtime::{Model, Tensor, TensorData};
//!
//! let model = Model::from_path("model.onnx".as_ref())?;
//! let x = Tensor::new(vec![1, 4], TensorData::Fp32(vec![5.1, 3.5, 1.4, 0.2]))?;
//! let outputs = model.run(vec![x])?;
//! println!("{:?}", outputs[0].data);
//! # Ok::<(), skiff_runtime::Error>(())
//! ```

#![deny(missing_docs)]

mod error;
mod ml;
mod rewrite;
mod rows;
mod tensor;

pub use error::{Error, Result};
pub use tensor::{DataType, Tensor, TensorData};

use serde::Serialize;
use skiff_onnx::metadata;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use tract_onnx::pb;
use tract_onnx::prelude::*;

/// A model input or output as clients see it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IoSpec {
    /// The ONNX value name.
    pub name: String,
    /// Element type.
    pub datatype: DataType,
    /// Dimensions; `-1` where the size varies (the batch).
    pub shape: Vec<i64>,
}

/// A loaded, optimised model, ready to run from many threads at once.
#[derive(Debug, Clone)]
pub struct Model {
    plan: Arc<TypedRunnableModel>,
    inputs: Vec<IoSpec>,
    outputs: Vec<IoSpec>,
    metadata: BTreeMap<String, String>,
    load_time: std::time::Duration,
}

impl Model {
    /// Loads the ONNX file at `path`.
    pub fn from_path(path: &Path) -> Result<Model> {
        let bytes = std::fs::read(path).map_err(|source| Error::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_bytes(&path.display().to_string(), &bytes)
    }

    /// Loads an ONNX model from memory; `source_name` names it in errors.
    pub fn from_bytes(source_name: &str, bytes: &[u8]) -> Result<Model> {
        let started = std::time::Instant::now();
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
        let mut proto = onnx
            .proto_model_for_read(&mut &bytes[..])
            .map_err(|e| not_onnx(format!("{e:#}")))?;
        rewrite::rewrite(&mut proto).map_err(|reason| Error::Unsupported {
            source_name: source_name.to_string(),
            reason,
        })?;
        let graph = match &proto.graph {
            Some(g) if !g.node.is_empty() && !g.output.is_empty() => g,
            _ => return Err(not_onnx("no graph with nodes and outputs".into())),
        };
        let metadata: BTreeMap<String, String> = proto
            .metadata_props
            .iter()
            .map(|p| (p.key.clone(), p.value.clone()))
            .collect();

        let mut model = onnx.model_for_proto_model(&proto).map_err(unsupported)?;
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
        Ok(Model {
            plan,
            inputs,
            outputs,
            metadata,
            load_time: started.elapsed(),
        })
    }

    /// The inputs, in the order [`Model::run`] takes them.
    pub fn inputs(&self) -> &[IoSpec] {
        &self.inputs
    }

    /// The outputs, in the order [`Model::run`] returns them.
    pub fn outputs(&self) -> &[IoSpec] {
        &self.outputs
    }

    /// How long parsing, typing and optimising the model took.
    pub fn load_time(&self) -> std::time::Duration {
        self.load_time
    }

    /// The model's `metadata_props`.
    pub fn metadata(&self) -> &BTreeMap<String, String> {
        &self.metadata
    }

    /// Feature column names recorded by skiff at training time.
    pub fn feature_names(&self) -> Option<Vec<String>> {
        self.metadata_json(metadata::FEATURE_NAMES)
    }

    /// Class labels recorded by skiff at training time, as text, in probability-column order.
    pub fn class_labels(&self) -> Option<Vec<String>> {
        let values: Vec<serde_json::Value> = self.metadata_json(metadata::CLASSES)?;
        Some(
            values
                .into_iter()
                .map(|v| match v {
                    serde_json::Value::String(s) => s,
                    other => other.to_string(),
                })
                .collect(),
        )
    }

    fn metadata_json<T: serde::de::DeserializeOwned>(&self, key: &str) -> Option<T> {
        serde_json::from_str(self.metadata.get(key)?).ok()
    }

    /// Runs the model on `inputs` (one per model input, in order) and returns every output.
    pub fn run(&self, inputs: Vec<Tensor>) -> Result<Vec<Tensor>> {
        if inputs.len() != self.inputs.len() {
            return Err(Error::BadInput(format!(
                "model takes {} input(s) ({}), got {}",
                self.inputs.len(),
                self.inputs
                    .iter()
                    .map(|i| i.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                inputs.len()
            )));
        }
        let mut values = TVec::new();
        for (tensor, spec) in inputs.into_iter().zip(&self.inputs) {
            check_input(&tensor, spec)?;
            values.push(to_tract(tensor)?.into_tvalue());
        }
        let outputs = self
            .plan
            .run(values)
            .map_err(|e| Error::Run(format!("{e:#}")))?;
        outputs.into_iter().map(|v| from_tract(&v)).collect()
    }
}

/// tract types integers that may be shapes (a Cast to int64, say) as `TDim`; clients get
/// int64, as onnxruntime gives them.
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

fn check_input(tensor: &Tensor, spec: &IoSpec) -> Result<()> {
    let name = &spec.name;
    if tensor.data.datatype() != spec.datatype {
        return Err(Error::BadInput(format!(
            "input {name:?} must be {}, got {}",
            spec.datatype,
            tensor.data.datatype()
        )));
    }
    let fits = tensor.shape.len() == spec.shape.len()
        && tensor
            .shape
            .iter()
            .zip(&spec.shape)
            .all(|(&got, &want)| want < 0 || got as i64 == want);
    if !fits {
        return Err(Error::BadInput(format!(
            "input {name:?} must have shape {:?} (-1: any size), got {:?}",
            spec.shape, tensor.shape
        )));
    }
    if tensor.data.is_empty() {
        return Err(Error::BadInput(format!(
            "input {name:?} is empty: send at least one row"
        )));
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_not_onnx() {
        for bytes in [&b""[..], b"a,b\n1,2\n", &[0xff; 64]] {
            let err = Model::from_bytes("x.onnx", bytes).unwrap_err();
            assert!(matches!(err, Error::NotOnnx { .. }), "{err}");
        }
    }

    fn load(m: &pb::ModelProto) -> Result<Model> {
        use prost::Message;
        Model::from_bytes("m.onnx", &m.encode_to_vec())
    }

    #[test]
    fn string_labels_and_zipmap_come_back_as_strings_and_a_matrix() {
        let model = load(&rewrite::tests::string_label_classifier()).unwrap();
        assert_eq!(model.outputs()[0].datatype, DataType::Bytes);
        assert_eq!(model.outputs()[1].name, "output_probability");
        assert_eq!(model.outputs()[1].datatype, DataType::Fp32);
        let x = Tensor::new(
            vec![3, 2],
            TensorData::Fp32(vec![5.0, 0.0, 0.0, 5.0, -5.0, -5.0]),
        )
        .unwrap();
        let out = model.run(vec![x]).unwrap();
        assert_eq!(
            out[0].data,
            TensorData::Bytes(vec!["cat".into(), "dog".into(), "emu".into()])
        );
        assert_eq!(out[1].shape, [3, 3]);
    }

    #[test]
    fn last_axis_softmax_and_argmax_run_as_row_ops_with_the_same_answers() {
        use rewrite::tests::*;
        let mut softmax = ml_node("Softmax", &["X"], &["probabilities"], vec![]);
        let mut argmax = ml_node(
            "ArgMax",
            &["probabilities"],
            &["label"],
            vec![attr_ints("axis", &[]), attr_ints("keepdims", &[])],
        );
        for node in [&mut softmax, &mut argmax] {
            node.domain.clear();
        }
        for (attr, value) in argmax.attribute.iter_mut().zip([1, 0]) {
            attr.r#type = pb::attribute_proto::AttributeType::Int as i32;
            attr.i = value;
        }
        let model = load(&model(
            vec![softmax, argmax],
            3,
            &["probabilities", "label"],
        ))
        .unwrap();
        let ops: Vec<_> = model
            .plan
            .model()
            .nodes
            .iter()
            .map(|n| n.op.name())
            .collect();
        assert!(ops.iter().any(|op| op == "RowSoftmax"), "{ops:?}");
        assert!(ops.iter().any(|op| op == "RowArgMax"), "{ops:?}");
        // Ties go to the first maximum, as in onnxruntime; large values do not overflow.
        let x = [1.0f32, 2.0, 3.0, 5.0, 5.0, 0.0, -1.0, 1000.0, 999.0];
        let out = model
            .run(vec![
                Tensor::new(vec![3, 3], TensorData::Fp32(x.to_vec())).unwrap(),
            ])
            .unwrap();
        assert_eq!(out[1].data, TensorData::Int64(vec![2, 0, 1]));
        let TensorData::Fp32(p) = &out[0].data else {
            panic!("{:?}", out[0].data)
        };
        for (row, probs) in x.chunks(3).zip(p.chunks(3)) {
            let max = row.iter().copied().fold(f32::MIN, f32::max);
            let sum: f64 = row.iter().map(|v| f64::from(v - max).exp()).sum();
            for (v, p) in row.iter().zip(probs) {
                let expected = f64::from(v - max).exp() / sum;
                assert!((f64::from(*p) - expected).abs() < 1e-6, "{p} vs {expected}");
            }
        }
    }

    #[test]
    fn malformed_tree_is_an_error_naming_node_and_attribute() {
        use rewrite::tests::*;
        let tree = ml_node(
            "TreeEnsembleRegressor",
            &["X"],
            &["variable"],
            vec![
                attr_ints("n_targets", &[]),
                attr_ints("nodes_treeids", &[0, 0]),
                attr_ints("nodes_nodeids", &[0, 1]),
                attr_ints("nodes_featureids", &[0, 0]),
                attr_floats("nodes_values", &[0.5, 0.0]),
                attr_strings("nodes_modes", &["BRANCH_LEQ", "LEAF"]),
                attr_ints("nodes_truenodeids", &[1, 0]),
                attr_ints("nodes_falsenodeids", &[7, 0]),
                attr_ints("target_treeids", &[0]),
                attr_ints("target_nodeids", &[1]),
                attr_ints("target_ids", &[0]),
                attr_floats("target_weights", &[1.0]),
            ],
        );
        let mut m = rewrite::tests::model(vec![tree], 1, &["variable"]);
        // n_targets is an int, not ints.
        let n_targets = &mut m.graph.as_mut().unwrap().node[0].attribute[0];
        n_targets.r#type = pb::attribute_proto::AttributeType::Int as i32;
        n_targets.i = 1;
        let err = load(&m).unwrap_err().to_string();
        assert!(err.contains("TreeEnsembleRegressor"), "{err}");
        assert!(err.contains("nodes_falsenodeids"), "{err}");
        assert!(!err.contains('\n'), "{err}");
    }

    #[test]
    fn support_vectors_that_do_not_fit_are_an_error() {
        use rewrite::tests::*;
        let svr = ml_node(
            "SVMRegressor",
            &["X"],
            &["variable"],
            vec![
                attr_floats("coefficients", &[1.0, 1.0]),
                attr_floats("rho", &[0.0]),
                attr_floats("support_vectors", &[1.0, 2.0, 3.0]),
                attr_string("kernel_type", "RBF"),
                attr_floats("kernel_params", &[0.1, 0.0, 3.0]),
            ],
        );
        let mut m = rewrite::tests::model(vec![svr], 1, &["variable"]);
        let node = &mut m.graph.as_mut().unwrap().node[0];
        node.attribute.push(pb::AttributeProto {
            name: "n_supports".into(),
            r#type: pb::attribute_proto::AttributeType::Int as i32,
            i: 2,
            ..Default::default()
        });
        let err = load(&m).unwrap_err().to_string();
        assert!(err.contains("support_vectors"), "{err}");
    }

    #[test]
    fn models_are_send_and_sync() {
        fn assert_auto<T: Send + Sync>() {}
        assert_auto::<Model>();
    }
}
