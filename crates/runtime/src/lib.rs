//! Loads ONNX models and runs them with tract or ONNX Runtime.
//!
//! This is the serving path's engine: the host and the image's server depend on it, and it
//! depends on nothing that trains. A [`Model`] is parsed and optimised once; [`Model::run`]
//! then takes any batch. tract (pure Rust) runs models by default; with the `ort` feature,
//! [`Model::load`] can hand them to ONNX Runtime's CPU or CUDA provider instead, loading the
//! ONNX Runtime library at run time (see [`BackendOptions`]).
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

mod backend;
mod classes;
mod constants;
mod error;
pub mod explain;
mod ml;
mod onnxruntime;
mod rewrite;
mod rows;
mod tensor;
mod tract;
mod vector_state;

pub use backend::{Backend, BackendKind, BackendOptions, GraphOptimization};
pub use error::{Error, Result};
pub use explain::Explainer;
pub use tensor::{DataType, Tensor, TensorData};

use serde::Serialize;
use skiff_onnx::metadata;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use tract_onnx::pb;

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
///
/// [`Model::from_path`] and [`Model::from_bytes`] run it with tract; [`Model::load`] on the
/// [`Backend`] that [`BackendOptions`] choose.
#[derive(Debug, Clone)]
pub struct Model {
    backend: Arc<dyn Backend>,
    inputs: Vec<IoSpec>,
    outputs: Vec<IoSpec>,
    metadata: BTreeMap<String, String>,
    load_time: std::time::Duration,
    /// The file and its explainer, where the options asked for explanations.
    explained: Option<Arc<Explained>>,
}

/// A model's ONNX file, kept to build its [`Explainer`] on first use.
#[derive(Debug)]
struct Explained {
    source_name: String,
    bytes: Vec<u8>,
    explainer: std::sync::OnceLock<Arc<Explainer>>,
}

impl Model {
    /// Loads the ONNX file at `path` into tract.
    pub fn from_path(path: &Path) -> Result<Model> {
        Self::load_path(path, &BackendOptions::new(BackendKind::Tract))
    }

    /// Loads an ONNX model from memory into tract; `source_name` names it in errors.
    pub fn from_bytes(source_name: &str, bytes: &[u8]) -> Result<Model> {
        Self::load(source_name, bytes, &BackendOptions::new(BackendKind::Tract))
    }

    /// Loads the ONNX file at `path` into the backend `options` choose.
    pub fn load_path(path: &Path, options: &BackendOptions) -> Result<Model> {
        let bytes = std::fs::read(path).map_err(|source| Error::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::load(&path.display().to_string(), &bytes, options)
    }

    /// Loads an ONNX model from memory into the backend `options` choose; `source_name` names
    /// it in errors and logs.
    pub fn load(source_name: &str, bytes: &[u8], options: &BackendOptions) -> Result<Model> {
        use prost::Message;
        let started = std::time::Instant::now();
        let mut proto = pb::ModelProto::decode(bytes).map_err(|e| Error::NotOnnx {
            source_name: source_name.to_string(),
            reason: e.to_string(),
        })?;
        let graph = graph(source_name, &proto)?;
        let mut metadata: BTreeMap<String, String> = proto
            .metadata_props
            .iter()
            .map(|p| (p.key.clone(), p.value.clone()))
            .collect();
        if !metadata.contains_key(metadata::CLASSES)
            && let Some(classes) = classes::from_graph(graph)
        {
            metadata.insert(
                metadata::CLASSES.to_string(),
                serde_json::Value::from(classes).to_string(),
            );
        }
        let (backend, inputs, outputs) = match options.backend {
            BackendKind::Tract => load_tract(source_name, proto)?,
            BackendKind::Ort | BackendKind::Cuda => {
                onnxruntime::load(source_name, &mut proto, options)?
            }
            BackendKind::Auto => {
                match onnxruntime::load_cuda_if_present(source_name, &mut proto, options) {
                    Ok(loaded) => loaded,
                    Err(why) => {
                        tracing::debug!("{source_name}: runs on tract ({why})");
                        load_tract(source_name, proto)?
                    }
                }
            }
        };
        let explained = options.explain.then(|| {
            Arc::new(Explained {
                source_name: source_name.to_string(),
                bytes: bytes.to_vec(),
                explainer: Default::default(),
            })
        });
        Ok(Model {
            backend,
            inputs,
            outputs,
            metadata,
            load_time: started.elapsed(),
            explained,
        })
    }

    /// A model another engine runs (a WebAssembly component), as that engine declared it.
    pub fn from_backend(
        backend: Arc<dyn Backend>,
        inputs: Vec<IoSpec>,
        outputs: Vec<IoSpec>,
        metadata: BTreeMap<String, String>,
        load_time: std::time::Duration,
    ) -> Model {
        Model {
            backend,
            inputs,
            outputs,
            metadata,
            load_time,
            explained: None,
        }
    }

    /// What runs this model: `tract`, `onnxruntime-cpu`, `onnxruntime-cuda:DEVICE` or
    /// `wasmtime`.
    pub fn backend(&self) -> String {
        self.backend.describe()
    }

    /// Whether a small run may go inline on an async runtime's thread (see
    /// [`Backend::inline`]).
    pub fn runs_inline(&self) -> bool {
        self.backend.inline()
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

    /// The model's `metadata_props`; where a classifier's file records no `skiff.classes`,
    /// that key holds the class labels its graph names (see [`Model::class_labels`]).
    pub fn metadata(&self) -> &BTreeMap<String, String> {
        &self.metadata
    }

    /// Feature column names recorded by skiff at training time.
    pub fn feature_names(&self) -> Option<Vec<String>> {
        self.metadata_json(metadata::FEATURE_NAMES)
    }

    /// Class labels as text, in probability-column order: those skiff recorded at training
    /// time, else those the graph names (a ZipMap's labels, a classifier op's
    /// `classlabels_*`, or the constant list its labels are picked from).
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

    /// The model's SHAP explainer, measured from the rows `background` gives for it; built on
    /// the first call and kept. Only a model loaded with [`BackendOptions::explain`] has one.
    pub fn explainer(
        &self,
        background: impl FnOnce(&Model) -> std::result::Result<Vec<Tensor>, String>,
    ) -> Result<Arc<Explainer>> {
        let Some(explained) = &self.explained else {
            return Err(Error::BadInput(
                "this model has no explainer: SHAP values are for ONNX files (not components) \
                 loaded for explanations, as skiff serve --explain-background loads them"
                    .into(),
            ));
        };
        if let Some(explainer) = explained.explainer.get() {
            return Ok(explainer.clone());
        }
        // Two first calls at once may both build one; the first kept is every later call's.
        let mut explainer = Explainer::new(&explained.source_name, &explained.bytes)?;
        // The background is the server's, not the request's: its failures are not the caller's.
        background(self)
            .and_then(|rows| explainer.set_background(rows).map_err(|e| e.to_string()))
            .map_err(|e| {
                Error::Backend(format!(
                    "cannot measure {} from its background rows: {e}",
                    explained.source_name
                ))
            })?;
        Ok(explained
            .explainer
            .get_or_init(|| Arc::new(explainer))
            .clone())
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
        for (tensor, spec) in inputs.iter().zip(&self.inputs) {
            check_input(tensor, spec)?;
        }
        check_rows(&inputs, &self.inputs)?;
        self.backend.run(inputs)
    }
}

pub(crate) type Loaded = (Arc<dyn Backend>, Vec<IoSpec>, Vec<IoSpec>);

fn load_tract(source_name: &str, mut proto: pb::ModelProto) -> Result<Loaded> {
    rewrite::rewrite(&mut proto).map_err(|reason| Error::Unsupported {
        source_name: source_name.to_string(),
        reason,
    })?;
    let (backend, inputs, outputs) = tract::load(source_name, &proto)?;
    Ok((Arc::new(backend), inputs, outputs))
}

/// The model's graph; an error unless it has nodes and outputs.
fn graph<'a>(source_name: &str, proto: &'a pb::ModelProto) -> Result<&'a pb::GraphProto> {
    match &proto.graph {
        Some(g) if !g.node.is_empty() && !g.output.is_empty() => Ok(g),
        _ => Err(Error::NotOnnx {
            source_name: source_name.to_string(),
            reason: "no graph with nodes and outputs".into(),
        }),
    }
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

/// An unknown first axis is the rows (the batch), the same for every input that has one.
fn check_rows(inputs: &[Tensor], specs: &[IoSpec]) -> Result<()> {
    let mut rows = inputs
        .iter()
        .zip(specs)
        .filter(|(_, spec)| spec.shape.first() == Some(&-1))
        .map(|(tensor, spec)| (&spec.name, tensor.shape[0]));
    let Some((first, n)) = rows.next() else {
        return Ok(());
    };
    match rows.find(|&(_, m)| m != n) {
        Some((other, m)) => Err(Error::BadInput(format!(
            "input {other:?} has {m} rows but {first:?} has {n}: send the same rows of every input"
        ))),
        None => Ok(()),
    }
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

    /// Two dense layers as a network exports them: `Gemm` with alpha and beta, a `Relu`, and
    /// a `Gemm` with transposed weights and a [1, N] bias.
    fn two_layers(hidden_is_an_output: bool) -> pb::ModelProto {
        use rewrite::tests::*;
        let float = |name: &str, dims: &[i64], values: &[f32]| pb::TensorProto {
            name: name.into(),
            dims: dims.to_vec(),
            data_type: pb::tensor_proto::DataType::Float as i32,
            float_data: values.to_vec(),
            ..Default::default()
        };
        let node = |op: &str, input: &[&str], output: &str, attribute| pb::NodeProto {
            input: input.iter().map(|s| s.to_string()).collect(),
            output: vec![output.into()],
            op_type: op.into(),
            attribute,
            ..Default::default()
        };
        let attr_f = |name: &str, f: f32| pb::AttributeProto {
            name: name.into(),
            r#type: pb::attribute_proto::AttributeType::Float as i32,
            f,
            ..Default::default()
        };
        let trans_b = pb::AttributeProto {
            name: "transB".into(),
            r#type: pb::attribute_proto::AttributeType::Int as i32,
            i: 1,
            ..Default::default()
        };
        let mut outputs = vec!["y"];
        if hidden_is_an_output {
            outputs.push("z");
        }
        let mut m = model(
            vec![
                node(
                    "Gemm",
                    &["X", "w1", "b1"],
                    "z",
                    vec![attr_f("alpha", 0.5), attr_f("beta", 2.0)],
                ),
                node("Relu", &["z"], "h", vec![]),
                node("Gemm", &["h", "w2", "b2"], "y", vec![trans_b]),
            ],
            2,
            &outputs,
        );
        let graph = m.graph.as_mut().unwrap();
        graph.initializer = vec![
            float("w1", &[2, 3], &[1.0, -2.0, 0.5, 3.0, 1.0, -1.0]),
            float("b1", &[3], &[0.25, -0.5, 1.0]),
            float("w2", &[2, 3], &[1.0, 2.0, 3.0, -1.0, 0.0, 0.5]),
            float("b2", &[1, 2], &[0.1, -0.2]),
        ];
        m
    }

    #[test]
    fn dense_layers_compute_what_the_gemms_and_relu_define() {
        let x = [[1.0f32, 2.0], [-3.0, 0.5], [0.0, 0.0]];
        let expected: Vec<f32> = x
            .iter()
            .flat_map(|&[a, b]| {
                let z = [
                    0.5 * (a + 3.0 * b) + 2.0 * 0.25,
                    0.5 * (-2.0 * a + b) + 2.0 * -0.5,
                    0.5 * (0.5 * a - b) + 2.0 * 1.0,
                ];
                let h = z.map(|v: f32| v.max(0.0));
                [
                    h[0] + 2.0 * h[1] + 3.0 * h[2] + 0.1,
                    -h[0] + 0.5 * h[2] - 0.2,
                ]
            })
            .collect();
        for hidden_is_an_output in [false, true] {
            let proto = two_layers(hidden_is_an_output);
            let mut rewritten = proto.clone();
            rewrite::rewrite(&mut rewritten).unwrap();
            let ops: Vec<&str> = rewritten
                .graph
                .as_ref()
                .unwrap()
                .node
                .iter()
                .map(|n| n.op_type.as_str())
                .collect();
            if ml::dense::available() {
                let relu = if hidden_is_an_output {
                    vec!["Relu"]
                } else {
                    vec![]
                };
                let expected_ops = [vec![ml::dense::OP], relu, vec![ml::dense::OP]].concat();
                assert_eq!(
                    ops, expected_ops,
                    "hidden output read outside: {hidden_is_an_output}"
                );
                // The weights live in the layers now.
                assert!(rewritten.graph.as_ref().unwrap().initializer.is_empty());
            }
            let model = load(&proto).unwrap();
            let rows = Tensor::new(vec![3, 2], TensorData::Fp32(x.concat())).unwrap();
            let out = model.run(vec![rows]).unwrap();
            assert_eq!(out[0].shape, [3, 2]);
            let TensorData::Fp32(y) = &out[0].data else {
                panic!("float32 scores expected, got {:?}", out[0].data)
            };
            for (a, b) in y.iter().zip(&expected) {
                assert!((a - b).abs() < 1e-5, "{y:?} != {expected:?}");
            }
        }
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
        let proto = model(vec![softmax, argmax], 3, &["probabilities", "label"]);
        let (plan, _, _) = tract::load("m.onnx", &proto).unwrap();
        let ops: Vec<_> = plan
            .plan
            .model()
            .nodes
            .iter()
            .map(|n| n.op.name())
            .collect();
        let model = load(&proto).unwrap();
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
