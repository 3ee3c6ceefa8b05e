//! Rewrites of the ONNX proto that make converter output fit tract before it parses it.
//!
//! tract has no map or sequence types and its ai.onnx.ml classifiers cannot carry string
//! labels, so both are rewritten into graphs tract runs with the same outputs as onnxruntime:
//! - a ZipMap that produces a graph output becomes an Identity: the output is its input, the
//!   float32 [N, C] probabilities, under the ZipMap output's name;
//! - a classifier with `classlabels_strings` gets integer labels `0..C`, and a CategoryMapper
//!   turns its label output back into the strings, under the label output's original name;
//! - an ArrayFeatureExtractor whose indices are a scalar initializer reads a one-element copy:
//!   onnxruntime keeps the last axis ([N, 1]) where tract's Gather drops it ([N]).
//!
//! On native builds whose CPU has AVX2 or AVX-512, a float32 `Gemm` with constant weights and
//! bias becomes skiff's dense layer (`ml::dense`), with the `Relu` that alone reads it fused in.

use std::collections::HashSet;
use tract_onnx::pb;
use tract_onnx::pb::attribute_proto::AttributeType;

pub(crate) const ML_DOMAIN: &str = "ai.onnx.ml";

/// Applies every rewrite to `model`; the error names the node and what is wrong with it.
pub(crate) fn rewrite(model: &mut pb::ModelProto) -> Result<(), String> {
    let Some(graph) = model.graph.as_mut() else {
        return Ok(());
    };
    remove_zipmaps(graph)?;
    map_string_labels(graph)?;
    keep_feature_axis(graph);
    #[cfg(not(target_family = "wasm"))]
    if crate::ml::dense::available() {
        dense_layers(graph);
    }
    Ok(())
}

/// Replaces each float32 `Gemm` whose weights and bias are constants, and whose input is not
/// transposed, with a dense layer; a `Relu` that is the only reader of the `Gemm`'s output
/// (not itself a graph output) is fused in. Initializers only those `Gemm`s read are dropped.
/// In a graph with subgraphs, which may read any outer name, nothing is fused or dropped.
#[cfg(not(target_family = "wasm"))]
fn dense_layers(graph: &mut pb::GraphProto) {
    use crate::constants::{constant_tensor, gemm_layer};
    let float = |graph: &pb::GraphProto, name: &str| {
        constant_tensor(graph, name)
            .is_some_and(|t| t.data_type == pb::tensor_proto::DataType::Float as i32)
    };
    // A subgraph (If, Loop, Scan) may read an outer tensor by name: keep every name then.
    let subgraphs = graph
        .node
        .iter()
        .flat_map(|n| &n.attribute)
        .any(|a| a.g.is_some() || !a.graphs.is_empty());
    let mut fused = vec![false; graph.node.len()];
    let mut replaced = Vec::new();
    for at in 0..graph.node.len() {
        let node = &graph.node[at];
        let bias_is_float = (node.input.get(2)).is_none_or(|b| b.is_empty() || float(graph, b));
        if node.op_type != "Gemm"
            || !(node.domain.is_empty() || node.domain == "ai.onnx")
            || node.input.len() < 2
            || node.output.len() != 1
            || !float(graph, &node.input[1])
            || !bias_is_float
        {
            continue;
        }
        let Ok(layer) = gemm_layer(graph, node) else {
            continue;
        };
        let output = &node.output[0];
        let mut readers = (0..graph.node.len()).filter(|&i| graph.node[i].input.contains(output));
        let relu = match (readers.next(), readers.next()) {
            (Some(i), None)
                if !subgraphs
                    && graph.node[i].op_type == "Relu"
                    && graph.node[i].domain.is_empty()
                    && graph.node[i].output.len() == 1
                    && !graph.output.iter().any(|o| &o.name == output) =>
            {
                Some(i)
            }
            _ => None,
        };
        let dense = pb::NodeProto {
            input: vec![node.input[0].clone()],
            output: vec![relu.map_or_else(|| output.clone(), |i| graph.node[i].output[0].clone())],
            name: node.name.clone(),
            op_type: crate::ml::dense::OP.into(),
            attribute: vec![
                attr_floats(
                    "weights",
                    &layer.weights.iter().map(|&w| w as f32).collect::<Vec<_>>(),
                ),
                attr_floats(
                    "bias",
                    &layer.bias.iter().map(|&b| b as f32).collect::<Vec<_>>(),
                ),
                attr_int("inputs", layer.width as i64),
                attr_int("relu", i64::from(relu.is_some())),
            ],
            ..Default::default()
        };
        replaced.extend(node.input[1..].iter().cloned());
        if let Some(i) = relu {
            fused[i] = true;
        }
        graph.node[at] = dense;
    }
    let mut fused = fused.into_iter();
    graph.node.retain(|_| !fused.next().unwrap_or(false));
    let read: HashSet<&String> = graph.node.iter().flat_map(|n| &n.input).collect();
    let drop: HashSet<String> = (replaced.into_iter())
        .filter(|r| !subgraphs && !read.contains(r))
        .collect();
    graph.initializer.retain(|t| !drop.contains(&t.name));
}

pub(crate) fn attr_floats(name: &str, floats: &[f32]) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.into(),
        r#type: AttributeType::Floats as i32,
        floats: floats.to_vec(),
        ..Default::default()
    }
}

#[cfg(not(target_family = "wasm"))]
fn attr_int(name: &str, i: i64) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.into(),
        r#type: AttributeType::Int as i32,
        i,
        ..Default::default()
    }
}

fn is_ml(node: &pb::NodeProto, op_type: &str) -> bool {
    node.op_type == op_type && node.domain == ML_DOMAIN
}

/// A node's name for messages: its own, or its first output's.
pub(crate) fn node_name(node: &pb::NodeProto) -> &str {
    if node.name.is_empty() {
        node.output.first().map_or("?", String::as_str)
    } else {
        &node.name
    }
}

/// Replaces each ZipMap whose output is a graph output with an Identity of its input tensor.
pub(crate) fn remove_zipmaps(graph: &mut pb::GraphProto) -> Result<(), String> {
    for node in &mut graph.node {
        if !is_ml(node, "ZipMap") {
            continue;
        }
        let (Some(input), Some(output)) = (node.input.first(), node.output.first()) else {
            return Err(format!(
                "ZipMap node {:?} needs one input and one output",
                node_name(node)
            ));
        };
        let Some(graph_output) = graph.output.iter_mut().find(|o| &o.name == output) else {
            // Another node reads the maps: tract cannot run that, and says so when it parses.
            continue;
        };
        // The declared type was a sequence of maps; the output is now a float tensor.
        graph_output.r#type = Some(pb::TypeProto {
            value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                elem_type: pb::tensor_proto::DataType::Float as i32,
                shape: None,
            })),
            ..Default::default()
        });
        *node = pb::NodeProto {
            input: vec![input.clone()],
            output: vec![output.clone()],
            name: node.name.clone(),
            op_type: "Identity".into(),
            ..Default::default()
        };
    }
    Ok(())
}

/// Points ArrayFeatureExtractors with scalar initializer indices at a one-element copy.
fn keep_feature_axis(graph: &mut pb::GraphProto) {
    let mut copies = Vec::new();
    for node in &mut graph.node {
        if !is_ml(node, "ArrayFeatureExtractor") {
            continue;
        }
        let Some(indices) = node.input.get_mut(1) else {
            continue;
        };
        let Some(scalar) = graph
            .initializer
            .iter()
            .find(|t| &t.name == indices && t.dims.is_empty())
        else {
            continue;
        };
        let name = format!("{indices}_as_1d");
        if !copies.iter().any(|t: &pb::TensorProto| t.name == name) {
            copies.push(pb::TensorProto {
                name: name.clone(),
                dims: vec![1],
                ..scalar.clone()
            });
        }
        *indices = name;
    }
    graph.initializer.extend(copies);
}

/// The integer labels attribute each classifier takes instead of `classlabels_strings`.
fn int_labels_attribute(op_type: &str) -> Option<&'static str> {
    match op_type {
        "LinearClassifier" | "SVMClassifier" => Some("classlabels_ints"),
        "TreeEnsembleClassifier" => Some("classlabels_int64s"),
        _ => None,
    }
}

/// Gives classifiers with string labels integer labels and maps those back to the strings.
fn map_string_labels(graph: &mut pb::GraphProto) -> Result<(), String> {
    let mut names: HashSet<String> = graph
        .node
        .iter()
        .flat_map(|n| n.input.iter().chain(&n.output))
        .chain(graph.input.iter().map(|v| &v.name))
        .chain(graph.initializer.iter().map(|t| &t.name))
        .cloned()
        .collect();
    let mut nodes = Vec::with_capacity(graph.node.len());
    for mut node in std::mem::take(&mut graph.node) {
        let Some(ints_name) =
            int_labels_attribute(&node.op_type).filter(|_| node.domain == ML_DOMAIN)
        else {
            nodes.push(node);
            continue;
        };
        let Some(at) = node
            .attribute
            .iter()
            .position(|a| a.name == "classlabels_strings")
        else {
            nodes.push(node);
            continue;
        };
        let labels = node.attribute.remove(at);
        if labels.strings.is_empty() {
            return Err(format!(
                "{} node {:?}: attribute classlabels_strings is empty",
                node.op_type,
                node_name(&node)
            ));
        }
        if node.attribute.iter().any(|a| a.name == ints_name) {
            return Err(format!(
                "{} node {:?}: both classlabels_strings and {ints_name} are set",
                node.op_type,
                node_name(&node)
            ));
        }
        let indices: Vec<i64> = (0..labels.strings.len() as i64).collect();
        node.attribute.push(pb::AttributeProto {
            name: ints_name.into(),
            r#type: AttributeType::Ints as i32,
            ints: indices.clone(),
            ..Default::default()
        });
        let label_output = node.output.first().filter(|o| !o.is_empty()).cloned();
        let Some(label_output) = label_output else {
            // Nobody reads the labels: integer ones do as well.
            nodes.push(node);
            continue;
        };
        let mut index_output = format!("{label_output}_index");
        while names.contains(&index_output) {
            index_output.push('_');
        }
        names.insert(index_output.clone());
        node.output[0] = index_output.clone();
        let mapper = pb::NodeProto {
            input: vec![index_output],
            output: vec![label_output.clone()],
            name: format!("{}_labels", node_name(&node)),
            op_type: "CategoryMapper".into(),
            domain: ML_DOMAIN.into(),
            attribute: vec![
                pb::AttributeProto {
                    name: "cats_int64s".into(),
                    r#type: AttributeType::Ints as i32,
                    ints: indices,
                    ..Default::default()
                },
                pb::AttributeProto {
                    name: "cats_strings".into(),
                    r#type: AttributeType::Strings as i32,
                    strings: labels.strings,
                    ..Default::default()
                },
                pb::AttributeProto {
                    name: "default_string".into(),
                    r#type: AttributeType::String as i32,
                    s: Vec::new(),
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        nodes.push(node);
        nodes.push(mapper);
    }
    graph.node = nodes;
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn attr_ints(name: &str, ints: &[i64]) -> pb::AttributeProto {
        pb::AttributeProto {
            name: name.into(),
            r#type: AttributeType::Ints as i32,
            ints: ints.to_vec(),
            ..Default::default()
        }
    }

    pub(crate) use super::attr_floats;

    pub(crate) fn attr_strings(name: &str, strings: &[&str]) -> pb::AttributeProto {
        pb::AttributeProto {
            name: name.into(),
            r#type: AttributeType::Strings as i32,
            strings: strings.iter().map(|s| s.as_bytes().to_vec()).collect(),
            ..Default::default()
        }
    }

    pub(crate) fn attr_string(name: &str, s: &str) -> pb::AttributeProto {
        pb::AttributeProto {
            name: name.into(),
            r#type: AttributeType::String as i32,
            s: s.as_bytes().to_vec(),
            ..Default::default()
        }
    }

    pub(crate) fn ml_node(
        op_type: &str,
        input: &[&str],
        output: &[&str],
        attribute: Vec<pb::AttributeProto>,
    ) -> pb::NodeProto {
        pb::NodeProto {
            input: input.iter().map(|s| s.to_string()).collect(),
            output: output.iter().map(|s| s.to_string()).collect(),
            name: op_type.into(),
            op_type: op_type.into(),
            domain: ML_DOMAIN.into(),
            attribute,
            ..Default::default()
        }
    }

    fn float_input(name: &str, features: i64) -> pb::ValueInfoProto {
        use pb::tensor_shape_proto::{Dimension, dimension::Value};
        pb::ValueInfoProto {
            name: name.into(),
            r#type: Some(pb::TypeProto {
                value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                    elem_type: pb::tensor_proto::DataType::Float as i32,
                    shape: Some(pb::TensorShapeProto {
                        dim: vec![
                            Dimension {
                                value: Some(Value::DimParam("N".into())),
                                ..Default::default()
                            },
                            Dimension {
                                value: Some(Value::DimValue(features)),
                                ..Default::default()
                            },
                        ],
                    }),
                })),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// A one-node model from `X` (float [N, features]) to `outputs`, as skl2onnx lays them out.
    pub(crate) fn model(
        nodes: Vec<pb::NodeProto>,
        features: i64,
        outputs: &[&str],
    ) -> pb::ModelProto {
        pb::ModelProto {
            ir_version: 8,
            opset_import: vec![
                pb::OperatorSetIdProto {
                    domain: String::new(),
                    version: 15,
                },
                pb::OperatorSetIdProto {
                    domain: ML_DOMAIN.into(),
                    version: 1,
                },
            ],
            graph: Some(pb::GraphProto {
                node: nodes,
                input: vec![float_input("X", features)],
                output: outputs
                    .iter()
                    .map(|o| pb::ValueInfoProto {
                        name: o.to_string(),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// LinearClassifier with string labels, its probabilities through a ZipMap: skl2onnx's
    /// LogisticRegression graph in small.
    pub(crate) fn string_label_classifier() -> pb::ModelProto {
        let classifier = ml_node(
            "LinearClassifier",
            &["X"],
            &["label", "probabilities"],
            vec![
                attr_strings("classlabels_strings", &["cat", "dog", "emu"]),
                attr_floats("coefficients", &[1.0, 0.0, 0.0, 1.0, -1.0, -1.0]),
                attr_floats("intercepts", &[0.0, 0.0, 0.5]),
                attr_string("post_transform", "SOFTMAX"),
            ],
        );
        let zipmap = ml_node(
            "ZipMap",
            &["probabilities"],
            &["output_probability"],
            vec![attr_strings("classlabels_strings", &["cat", "dog", "emu"])],
        );
        model(
            vec![classifier, zipmap],
            2,
            &["label", "output_probability"],
        )
    }

    #[test]
    fn zipmap_feeding_a_graph_output_becomes_identity_of_its_input() {
        let mut m = string_label_classifier();
        rewrite(&mut m).unwrap();
        let g = m.graph.unwrap();
        assert!(g.node.iter().all(|n| n.op_type != "ZipMap"));
        let identity = g.node.iter().find(|n| n.op_type == "Identity").unwrap();
        assert_eq!(identity.input, ["probabilities"]);
        assert_eq!(identity.output, ["output_probability"]);
        let Some(pb::type_proto::Value::TensorType(t)) =
            g.output[1].r#type.as_ref().unwrap().value.as_ref()
        else {
            panic!("output_probability is not a tensor");
        };
        assert_eq!(t.elem_type, pb::tensor_proto::DataType::Float as i32);
    }

    #[test]
    fn zipmap_read_by_another_node_is_left_alone() {
        let zipmap = ml_node("ZipMap", &["p"], &["maps"], vec![]);
        let reader = ml_node("Identity", &["maps"], &["out"], vec![]);
        let mut m = model(vec![zipmap, reader], 2, &["out"]);
        rewrite(&mut m).unwrap();
        assert_eq!(m.graph.unwrap().node[0].op_type, "ZipMap");
    }

    #[test]
    fn string_labels_become_indices_mapped_back_by_a_category_mapper() {
        let mut m = string_label_classifier();
        rewrite(&mut m).unwrap();
        let g = m.graph.unwrap();
        let classifier = &g.node[0];
        assert_eq!(classifier.op_type, "LinearClassifier");
        assert!(
            classifier
                .attribute
                .iter()
                .all(|a| a.name != "classlabels_strings")
        );
        let ints = classifier
            .attribute
            .iter()
            .find(|a| a.name == "classlabels_ints")
            .unwrap();
        assert_eq!(ints.ints, [0, 1, 2]);
        assert_eq!(classifier.output, ["label_index", "probabilities"]);
        let mapper = &g.node[1];
        assert_eq!(mapper.op_type, "CategoryMapper");
        assert_eq!(mapper.domain, ML_DOMAIN);
        assert_eq!(mapper.input, ["label_index"]);
        assert_eq!(mapper.output, ["label"]);
        let strings = mapper
            .attribute
            .iter()
            .find(|a| a.name == "cats_strings")
            .unwrap();
        assert_eq!(
            strings.strings,
            [b"cat".to_vec(), b"dog".to_vec(), b"emu".to_vec()]
        );
    }

    #[test]
    fn scalar_feature_index_becomes_a_one_element_vector() {
        let afe = ml_node("ArrayFeatureExtractor", &["X", "i"], &["col"], vec![]);
        let mut m = model(vec![afe], 2, &["col"]);
        let g = m.graph.as_mut().unwrap();
        g.initializer.push(pb::TensorProto {
            name: "i".into(),
            data_type: pb::tensor_proto::DataType::Int64 as i32,
            int64_data: vec![1],
            ..Default::default()
        });
        rewrite(&mut m).unwrap();
        let g = m.graph.unwrap();
        assert_eq!(g.node[0].input, ["X", "i_as_1d"]);
        let copy = g.initializer.iter().find(|t| t.name == "i_as_1d").unwrap();
        assert_eq!(copy.dims, [1]);
        assert_eq!(copy.int64_data, [1]);
    }

    #[test]
    fn tree_classifier_gets_its_own_integer_label_attribute() {
        let tree = ml_node(
            "TreeEnsembleClassifier",
            &["X"],
            &["label", "probabilities"],
            vec![attr_strings("classlabels_strings", &["a", "b"])],
        );
        let mut m = model(vec![tree], 2, &["label", "probabilities"]);
        rewrite(&mut m).unwrap();
        let g = m.graph.unwrap();
        assert!(
            g.node[0]
                .attribute
                .iter()
                .any(|a| a.name == "classlabels_int64s" && a.ints == [0, 1])
        );
    }

    #[test]
    fn index_output_name_does_not_clash_with_existing_names() {
        let classifier = ml_node(
            "LinearClassifier",
            &["label_index"],
            &["label", "probabilities"],
            vec![attr_strings("classlabels_strings", &["a", "b"])],
        );
        let mut m = model(vec![classifier], 2, &["label", "probabilities"]);
        rewrite(&mut m).unwrap();
        let g = m.graph.unwrap();
        assert_eq!(g.node[0].output[0], "label_index_");
        assert_eq!(g.node[1].input, ["label_index_"]);
    }

    #[test]
    fn both_label_kinds_are_an_error_naming_the_node() {
        let classifier = ml_node(
            "SVMClassifier",
            &["X"],
            &["label", "probabilities"],
            vec![
                attr_strings("classlabels_strings", &["a", "b"]),
                attr_ints("classlabels_ints", &[0, 1]),
            ],
        );
        let mut m = model(vec![classifier], 2, &["label"]);
        let err = rewrite(&mut m).unwrap_err();
        assert!(err.contains("SVMClassifier node"), "{err}");
        assert!(err.contains("classlabels_ints"), "{err}");
    }
}
