//! The engine inside skiff's model components, with the model taken from the `weights` import
//! that `skiff pack --format component` plugs in. It exports
//! - the `skiff:model` predictor, over tract;
//! - `wasi:http/incoming-handler`: the Open Inference Protocol REST API of `skiff serve`, so
//!   that `wasmtime serve model.wasm` (or any `wasi:http/proxy` host) is a model server.
//!
//! It runs the same code as `skiff serve` (`skiff-runtime` without ONNX Runtime, and
//! `skiff-host`'s protocol without its server), so a component answers as the native server
//! does. The model is parsed and optimised on the first call and kept for the instance's life;
//! `skiff pack` makes that call once and snapshots the instance (`skiff_component::preinit`), so
//! packed components start with it loaded.

mod http;
mod loaded;

use std::sync::{Arc, OnceLock};

use skiff_runtime::{DataType, Model, TensorData as Data};

use loaded::Loaded;

wit_bindgen::generate!({
    path: "../../wit",
    world: "engine",
    generate_all,
});

use exports::skiff::model::predictor::{Guest, Metadata};
use skiff::model::types::{Datatype, Error, IoSpec, Tensor, TensorData};
use skiff::model::weights;

struct Engine;

static LOADED: OnceLock<Result<Loaded, String>> = OnceLock::new();

/// The model, loaded on first use; a model that cannot load fails every call alike.
fn loaded() -> Result<&'static Loaded, String> {
    LOADED
        .get_or_init(|| Loaded::new(weights::name(), || Ok(weights::get())))
        .as_ref()
        .map_err(Clone::clone)
}

fn model() -> Result<&'static Arc<Model>, Error> {
    let loaded = loaded().map_err(Error::Failed)?;
    let (_, model) = loaded
        .repo
        .get(&loaded.name, None)
        .expect("the repository holds its one model");
    Ok(model)
}

impl Guest for Engine {
    fn describe() -> Result<Metadata, Error> {
        let model = model()?;
        let specs = |specs: &[skiff_runtime::IoSpec]| {
            specs
                .iter()
                .map(|s| IoSpec {
                    name: s.name.clone(),
                    datatype: datatype(s.datatype),
                    shape: s.shape.clone(),
                })
                .collect()
        };
        Ok(Metadata {
            name: loaded().map_err(Error::Failed)?.name.clone(),
            inputs: specs(model.inputs()),
            outputs: specs(model.outputs()),
            labels: model.class_labels().unwrap_or_default(),
            properties: model
                .metadata()
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        })
    }

    fn predict(inputs: Vec<Tensor>) -> Result<Vec<Tensor>, Error> {
        let model = model()?;
        let specs = model.inputs();
        if inputs.len() != specs.len() {
            return Err(Error::BadInput(format!(
                "the model takes {} input(s) ({}), got {}",
                specs.len(),
                names(specs),
                inputs.len()
            )));
        }
        // By name where the caller names them, else in the model's order.
        let mut ordered: Vec<Option<Tensor>> = vec![None; specs.len()];
        for (at, tensor) in inputs.into_iter().enumerate() {
            let slot = if tensor.name.is_empty() {
                at
            } else {
                specs
                    .iter()
                    .position(|s| s.name == tensor.name)
                    .ok_or_else(|| {
                        Error::BadInput(format!(
                            "the model has no input {:?} (inputs: {})",
                            tensor.name,
                            names(specs)
                        ))
                    })?
            };
            if ordered[slot].replace(tensor).is_some() {
                return Err(Error::BadInput(format!(
                    "input {:?} is given twice",
                    specs[slot].name
                )));
            }
        }
        let tensors = ordered
            .into_iter()
            .flatten()
            .map(to_native)
            .collect::<Result<Vec<_>, _>>()?;
        let outputs = model.run(tensors).map_err(|e| match e {
            skiff_runtime::Error::BadInput(m) => Error::BadInput(m),
            other => Error::Failed(other.to_string()),
        })?;
        Ok(outputs
            .into_iter()
            .zip(model.outputs())
            .map(|(t, spec)| Tensor {
                name: spec.name.clone(),
                shape: t.shape.iter().map(|&d| d as u64).collect(),
                data: match t.data {
                    Data::Bool(v) => TensorData::Bool(v),
                    Data::Int32(v) => TensorData::Int32(v),
                    Data::Int64(v) => TensorData::Int64(v),
                    Data::Fp32(v) => TensorData::Fp32(v),
                    Data::Fp64(v) => TensorData::Fp64(v),
                    Data::Bytes(v) => TensorData::Bytes(v),
                },
            })
            .collect())
    }
}

fn to_native(t: Tensor) -> Result<skiff_runtime::Tensor, Error> {
    let shape = t
        .shape
        .iter()
        .map(|&d| usize::try_from(d))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| Error::BadInput(format!("shape {:?} is too large", t.shape)))?;
    let data = match t.data {
        TensorData::Bool(v) => Data::Bool(v),
        TensorData::Int32(v) => Data::Int32(v),
        TensorData::Int64(v) => Data::Int64(v),
        TensorData::Fp32(v) => Data::Fp32(v),
        TensorData::Fp64(v) => Data::Fp64(v),
        TensorData::Bytes(v) => Data::Bytes(v),
    };
    skiff_runtime::Tensor::new(shape, data).map_err(|e| Error::BadInput(e.to_string()))
}

fn datatype(d: DataType) -> Datatype {
    match d {
        DataType::Bool => Datatype::Bool,
        DataType::Int32 => Datatype::Int32,
        DataType::Int64 => Datatype::Int64,
        DataType::Fp32 => Datatype::Fp32,
        DataType::Fp64 => Datatype::Fp64,
        DataType::Bytes => Datatype::Bytes,
    }
}

fn names(specs: &[skiff_runtime::IoSpec]) -> String {
    specs
        .iter()
        .map(|s| s.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

export!(Engine);
