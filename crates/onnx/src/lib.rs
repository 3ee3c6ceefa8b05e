//! Writing ONNX models.
//!
//! A small builder over the ONNX protobuf messages: estimators describe their graph with
//! [`Graph`] and wrap it in a [`Model`] with skiff's [`metadata`]; [`Model::to_bytes`] gives
//! the file that ONNX Runtime, tract and skiff's own runtime all read.
//!
//! ```
//! use skiff_onnx::{Dim, ElemType, Graph, Model};
//!
//! let mut g = Graph::new("double");
//! g.input("X", ElemType::Float, &[Dim::batch(), Dim::Fixed(2)]);
//! let two = g.constant_f32("two", &[], &[2.0]);
//! g.node("Mul", &["X", &two], &["Y"], vec![]);
//! g.output("Y", ElemType::Float, &[Dim::batch(), Dim::Fixed(2)]);
//! let bytes = Model::new(g).metadata("skiff.algorithm", "double").to_bytes();
//! assert!(!bytes.is_empty());
//! ```

#![deny(missing_docs)]

pub mod metadata;
pub mod proto;

use prost::Message;
use proto::{
    AttributeProto, AttributeType, GraphProto, ModelProto, NodeProto, OperatorSetIdProto,
    StringStringEntryProto, TensorProto, TensorShapeProto, TypeProto, ValueInfoProto,
};

/// The default (`ai.onnx`) opset version skiff writes.
pub const OPSET: i64 = 17;
/// The `ai.onnx.ml` opset version skiff writes when a graph uses ML ops.
pub const ML_OPSET: i64 = 3;
/// The domain of the ONNX ML operators (LinearClassifier, CategoryMapper, ...).
pub const ML_DOMAIN: &str = "ai.onnx.ml";
/// The ONNX IR version that goes with [`OPSET`].
pub const IR_VERSION: i64 = 8;
/// The name of the symbolic batch dimension on every input and output.
pub const BATCH_DIM: &str = "N";

/// ONNX tensor element types that skiff writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum ElemType {
    /// 32-bit float.
    Float = 1,
    /// 32-bit signed integer.
    Int32 = 6,
    /// 64-bit signed integer.
    Int64 = 7,
    /// UTF-8 string.
    String = 8,
    /// Boolean.
    Bool = 9,
    /// 64-bit float.
    Double = 11,
}

/// One dimension of a tensor shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dim {
    /// A known size.
    Fixed(u64),
    /// A named, symbolic size.
    Param(String),
}

impl Dim {
    /// The symbolic batch dimension, [`BATCH_DIM`].
    pub fn batch() -> Dim {
        Dim::Param(BATCH_DIM.to_string())
    }
}

/// A node attribute value.
#[derive(Debug, Clone, PartialEq)]
pub enum Attr {
    /// One float.
    Float(f32),
    /// One integer.
    Int(i64),
    /// One string.
    String(String),
    /// A list of floats.
    Floats(Vec<f32>),
    /// A list of integers.
    Ints(Vec<i64>),
    /// A list of strings.
    Strings(Vec<String>),
}

/// A computation graph under construction.
#[derive(Debug, Clone)]
pub struct Graph {
    proto: GraphProto,
    uses_ml: bool,
}

impl Graph {
    /// An empty graph named `name`.
    pub fn new(name: &str) -> Self {
        Graph {
            proto: GraphProto {
                name: name.to_string(),
                ..Default::default()
            },
            uses_ml: false,
        }
    }

    /// Declares a graph input.
    pub fn input(&mut self, name: &str, elem: ElemType, dims: &[Dim]) {
        self.proto.input.push(value_info(name, elem, dims));
    }

    /// Declares a graph output; `name` must be produced by a node.
    pub fn output(&mut self, name: &str, elem: ElemType, dims: &[Dim]) {
        self.proto.output.push(value_info(name, elem, dims));
    }

    /// Adds a float32 constant and returns its name. A `Vec` is taken as it is, not copied
    /// (a neighbours model's training rows are megabytes).
    pub fn constant_f32(&mut self, name: &str, dims: &[u64], data: impl Into<Vec<f32>>) -> String {
        self.constant(TensorProto {
            data_type: ElemType::Float as i32,
            float_data: data.into(),
            ..tensor(name, dims)
        })
    }

    /// Adds an int64 constant and returns its name.
    pub fn constant_i64(&mut self, name: &str, dims: &[u64], data: &[i64]) -> String {
        self.constant(TensorProto {
            data_type: ElemType::Int64 as i32,
            int64_data: data.to_vec(),
            ..tensor(name, dims)
        })
    }

    fn constant(&mut self, t: TensorProto) -> String {
        let name = t.name.clone();
        self.proto.initializer.push(t);
        name
    }

    /// Adds a node of the default ONNX domain.
    pub fn node(&mut self, op: &str, inputs: &[&str], outputs: &[&str], attrs: Vec<(&str, Attr)>) {
        self.push_node("", op, inputs, outputs, attrs);
    }

    /// Adds a node of the `ai.onnx.ml` domain.
    pub fn ml_node(
        &mut self,
        op: &str,
        inputs: &[&str],
        outputs: &[&str],
        attrs: Vec<(&str, Attr)>,
    ) {
        self.uses_ml = true;
        self.push_node(ML_DOMAIN, op, inputs, outputs, attrs);
    }

    fn push_node(
        &mut self,
        domain: &str,
        op: &str,
        inputs: &[&str],
        outputs: &[&str],
        attrs: Vec<(&str, Attr)>,
    ) {
        let index = self.proto.node.len();
        self.proto.node.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: outputs.iter().map(|s| s.to_string()).collect(),
            name: format!("{op}_{index}"),
            op_type: op.to_string(),
            domain: domain.to_string(),
            attribute: attrs
                .into_iter()
                .map(|(name, value)| attribute(name, value))
                .collect(),
        });
    }
}

/// A model: a graph plus the opsets it uses and its metadata.
#[derive(Debug, Clone)]
pub struct Model {
    graph: Graph,
    metadata: Vec<(String, String)>,
    doc: String,
}

impl Model {
    /// Wraps a finished graph.
    pub fn new(graph: Graph) -> Self {
        Model {
            graph,
            metadata: Vec::new(),
            doc: String::new(),
        }
    }

    /// Adds a `metadata_props` entry (see [`metadata`] for skiff's keys).
    pub fn metadata(mut self, key: &str, value: impl Into<String>) -> Self {
        self.metadata.push((key.to_string(), value.into()));
        self
    }

    /// Sets the model's doc string.
    pub fn doc(mut self, doc: impl Into<String>) -> Self {
        self.doc = doc.into();
        self
    }

    /// The model as a protobuf message.
    pub fn to_proto(&self) -> ModelProto {
        self.with_graph(self.graph.proto.clone())
    }

    /// The model as a protobuf message, its graph moved rather than copied (a model can
    /// carry megabytes of weights or training rows).
    pub fn into_proto(mut self) -> ModelProto {
        let graph = std::mem::take(&mut self.graph.proto);
        self.with_graph(graph)
    }

    /// The serialised model, ready to write to a `.onnx` file.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.to_proto().encode_to_vec()
    }

    /// [`Model::to_bytes`] without copying the graph first.
    pub fn into_bytes(self) -> Vec<u8> {
        self.into_proto().encode_to_vec()
    }

    fn with_graph(&self, graph: GraphProto) -> ModelProto {
        let mut opset_import = vec![OperatorSetIdProto {
            domain: String::new(),
            version: OPSET,
        }];
        if self.graph.uses_ml {
            opset_import.push(OperatorSetIdProto {
                domain: ML_DOMAIN.to_string(),
                version: ML_OPSET,
            });
        }
        ModelProto {
            ir_version: IR_VERSION,
            producer_name: "skiff".to_string(),
            producer_version: env!("CARGO_PKG_VERSION").to_string(),
            domain: "dev.skiff".to_string(),
            model_version: 1,
            doc_string: self.doc.clone(),
            graph: Some(graph),
            opset_import,
            metadata_props: self
                .metadata
                .iter()
                .map(|(key, value)| StringStringEntryProto {
                    key: key.clone(),
                    value: value.clone(),
                })
                .collect(),
        }
    }
}

fn tensor(name: &str, dims: &[u64]) -> TensorProto {
    TensorProto {
        name: name.to_string(),
        dims: dims.iter().map(|&d| d as i64).collect(),
        ..Default::default()
    }
}

fn value_info(name: &str, elem: ElemType, dims: &[Dim]) -> ValueInfoProto {
    use proto::tensor_shape_proto::{Dimension, dimension::Value};
    let dim = dims
        .iter()
        .map(|d| Dimension {
            value: Some(match d {
                Dim::Fixed(n) => Value::DimValue(*n as i64),
                Dim::Param(p) => Value::DimParam(p.clone()),
            }),
        })
        .collect();
    ValueInfoProto {
        name: name.to_string(),
        r#type: Some(TypeProto {
            value: Some(proto::type_proto::Value::TensorType(
                proto::type_proto::Tensor {
                    elem_type: elem as i32,
                    shape: Some(TensorShapeProto { dim }),
                },
            )),
        }),
    }
}

fn attribute(name: &str, value: Attr) -> AttributeProto {
    let mut a = AttributeProto {
        name: name.to_string(),
        ..Default::default()
    };
    let kind = match value {
        Attr::Float(f) => {
            a.f = f;
            AttributeType::Float
        }
        Attr::Int(i) => {
            a.i = i;
            AttributeType::Int
        }
        Attr::String(s) => {
            a.s = s.into_bytes();
            AttributeType::String
        }
        Attr::Floats(v) => {
            a.floats = v;
            AttributeType::Floats
        }
        Attr::Ints(v) => {
            a.ints = v;
            AttributeType::Ints
        }
        Attr::Strings(v) => {
            a.strings = v.into_iter().map(String::into_bytes).collect();
            AttributeType::Strings
        }
    };
    a.r#type = kind as i32;
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ml_opset_is_imported_only_when_used() {
        let plain = Model::new(Graph::new("g")).to_proto();
        assert_eq!(plain.opset_import.len(), 1);
        let mut g = Graph::new("g");
        g.ml_node("CategoryMapper", &["a"], &["b"], vec![]);
        let ml = Model::new(g).to_proto();
        assert!(
            ml.opset_import
                .iter()
                .any(|o| o.domain == ML_DOMAIN && o.version == ML_OPSET)
        );
    }

    #[test]
    fn encoded_model_decodes_to_the_same_message() {
        let mut g = Graph::new("g");
        g.input("X", ElemType::Float, &[Dim::batch(), Dim::Fixed(3)]);
        g.node(
            "Identity",
            &["X"],
            &["Y"],
            vec![("note", Attr::Strings(vec!["a".into()]))],
        );
        g.output("Y", ElemType::Float, &[Dim::batch(), Dim::Fixed(3)]);
        let model = Model::new(g).metadata("k", "v");
        let decoded = ModelProto::decode(model.to_bytes().as_slice()).unwrap();
        assert_eq!(decoded, model.to_proto());
        assert_eq!(decoded.metadata_props[0].value, "v");
        assert_eq!(model.clone().into_bytes(), model.to_bytes());
    }
}
