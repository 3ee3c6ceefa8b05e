//! The class labels a classifier's graph names, for files that do not record them in skiff's
//! metadata (skl2onnx, onnxmltools and other exporters' files).

use tract_onnx::pb;

const ML_DOMAIN: &str = "ai.onnx.ml";

/// The class labels, in probability-column order, as the graph names them: a ZipMap's labels
/// (they key the probability columns), else the last ai.onnx.ml classifier's `classlabels_*`,
/// else the constant list the first output's labels are picked from (skl2onnx's
/// ArrayFeatureExtractor over its `classes` initializer, behind casts and reshapes).
pub(crate) fn from_graph(graph: &pb::GraphProto) -> Option<Vec<String>> {
    let last_labels = |ops: &[&str]| {
        graph
            .node
            .iter()
            .rev()
            .filter(|n| n.domain == ML_DOMAIN && ops.contains(&n.op_type.as_str()))
            .find_map(labels_attribute)
    };
    last_labels(&["ZipMap"])
        .or_else(|| {
            last_labels(&[
                "TreeEnsembleClassifier",
                "LinearClassifier",
                "SVMClassifier",
            ])
        })
        .or_else(|| picked_from_constant(graph))
}

fn labels_attribute(node: &pb::NodeProto) -> Option<Vec<String>> {
    node.attribute.iter().find_map(|a| match a.name.as_str() {
        "classlabels_strings" if !a.strings.is_empty() => Some(
            a.strings
                .iter()
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect(),
        ),
        "classlabels_int64s" | "classlabels_ints" if !a.ints.is_empty() => {
            Some(a.ints.iter().map(i64::to_string).collect())
        }
        _ => None,
    })
}

/// Walks back from the first graph output through shape and type ops to a Gather or
/// ArrayFeatureExtractor whose data is a one-dimensional initializer.
fn picked_from_constant(graph: &pb::GraphProto) -> Option<Vec<String>> {
    let mut name = &graph.output.first()?.name;
    // Bounded: each step moves to an earlier node.
    for _ in 0..graph.node.len() {
        let node = graph.node.iter().find(|n| n.output.contains(name))?;
        match node.op_type.as_str() {
            "Cast" | "Reshape" | "Identity" | "Squeeze" | "Flatten" => name = node.input.first()?,
            "ArrayFeatureExtractor" | "Gather" => {
                let data = graph
                    .initializer
                    .iter()
                    .find(|t| Some(&t.name) == node.input.first())?;
                return (data.dims.len() == 1)
                    .then(|| tensor_values(data))
                    .flatten();
            }
            _ => return None,
        }
    }
    None
}

fn tensor_values(t: &pb::TensorProto) -> Option<Vec<String>> {
    use pb::tensor_proto::DataType;
    let values: Vec<String> = match DataType::try_from(t.data_type).ok()? {
        DataType::String => t
            .string_data
            .iter()
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect(),
        DataType::Int64 if !t.int64_data.is_empty() => {
            t.int64_data.iter().map(i64::to_string).collect()
        }
        DataType::Int64 => t
            .raw_data
            .chunks_exact(8)
            .map(|b| i64::from_le_bytes(b.try_into().unwrap_or_default()).to_string())
            .collect(),
        DataType::Int32 if !t.int32_data.is_empty() => {
            t.int32_data.iter().map(i32::to_string).collect()
        }
        DataType::Int32 => t
            .raw_data
            .chunks_exact(4)
            .map(|b| i32::from_le_bytes(b.try_into().unwrap_or_default()).to_string())
            .collect(),
        _ => return None,
    };
    (!values.is_empty()).then_some(values)
}
