//! Constants of an ONNX graph read as numbers, and the dense layer a `Gemm` with constant
//! weights computes: what the explainers and the tract rewrites both read off a graph.

use crate::rewrite::node_name;
use tract_onnx::pb;

/// An initializer, or a Constant node's value, by name.
pub(crate) fn constant_tensor<'g>(
    graph: &'g pb::GraphProto,
    name: &str,
) -> Option<&'g pb::TensorProto> {
    graph
        .initializer
        .iter()
        .find(|t| t.name == name)
        .or_else(|| {
            graph
                .node
                .iter()
                .find(|n| {
                    n.op_type == "Constant" && n.output.first().map(String::as_str) == Some(name)
                })?
                .attribute
                .iter()
                .find(|a| a.name == "value")?
                .t
                .as_ref()
        })
}

/// An initializer's (or Constant node's) dimensions and values as numbers.
pub(crate) fn constant(graph: &pb::GraphProto, name: &str) -> Option<(Vec<usize>, Vec<f64>)> {
    let tensor = constant_tensor(graph, name)?;
    let dims = tensor
        .dims
        .iter()
        .map(|&d| usize::try_from(d).ok())
        .collect::<Option<Vec<_>>>()?;
    Some((dims, tensor_numbers(tensor)?))
}

/// A constant's values as numbers, whatever its shape.
pub(crate) fn constant_floats(graph: &pb::GraphProto, name: &str) -> Option<Vec<f64>> {
    constant(graph, name).map(|(_, v)| v)
}

fn tensor_numbers(t: &pb::TensorProto) -> Option<Vec<f64>> {
    use pb::tensor_proto::DataType;
    let raw = |size: usize| t.raw_data.chunks_exact(size);
    let values = match DataType::try_from(t.data_type).ok()? {
        DataType::Float if t.raw_data.is_empty() => {
            t.float_data.iter().map(|&v| f64::from(v)).collect()
        }
        DataType::Float => raw(4)
            .map(|b| Some(f64::from(f32::from_le_bytes(b.try_into().ok()?))))
            .collect::<Option<_>>()?,
        DataType::Double if t.raw_data.is_empty() => t.double_data.clone(),
        DataType::Double => raw(8)
            .map(|b| Some(f64::from_le_bytes(b.try_into().ok()?)))
            .collect::<Option<_>>()?,
        DataType::Int64 if t.raw_data.is_empty() => {
            t.int64_data.iter().map(|&v| v as f64).collect()
        }
        DataType::Int64 => raw(8)
            .map(|b| Some(i64::from_le_bytes(b.try_into().ok()?) as f64))
            .collect::<Option<_>>()?,
        DataType::Int32 if t.raw_data.is_empty() => {
            t.int32_data.iter().map(|&v| f64::from(v)).collect()
        }
        DataType::Int32 => raw(4)
            .map(|b| Some(f64::from(i32::from_le_bytes(b.try_into().ok()?))))
            .collect::<Option<_>>()?,
        _ => return None,
    };
    Some(values)
}

/// `values` as `n` values: as they are, or one repeated.
pub(crate) fn broadcast(values: &[f64], n: usize) -> Option<Vec<f64>> {
    match values {
        [v] => Some(vec![*v; n]),
        v if v.len() == n => Some(v.to_vec()),
        _ => None,
    }
}

/// A `Gemm` with constant weights and bias, as the layer it computes on each row:
/// `y[o] = bias[o] + sum_j weights[o * width + j] * x[j]`, with `alpha` and `beta` applied.
pub(crate) struct DenseLayer {
    pub(crate) width: usize,
    /// `outputs` rows of `width` weights.
    pub(crate) weights: Vec<f64>,
    pub(crate) bias: Vec<f64>,
}

/// Reads the layer a `Gemm` node computes; the error says why it is not one (a transposed
/// input, weights or bias that are not constants of the right shape).
pub(crate) fn gemm_layer(
    graph: &pb::GraphProto,
    node: &pb::NodeProto,
) -> Result<DenseLayer, String> {
    let attribute = |name: &str| node.attribute.iter().find(|a| a.name == name);
    let int = |name: &str, default: i64| attribute(name).map_or(default, |a| a.i);
    let float = |name: &str, default: f32| attribute(name).map_or(default, |a| a.f);
    let bad = |what: &str| format!("{} {}: {what}", node.op_type, node_name(node));
    if int("transA", 0) != 0 {
        return Err(bad("a transposed input is not a model of its rows"));
    }
    let (dims, b) = node
        .input
        .get(1)
        .and_then(|name| constant(graph, name))
        .ok_or_else(|| bad("its weights are not a constant"))?;
    let [k, n] = dims[..] else {
        return Err(bad("its weights are not a matrix"));
    };
    if b.len() != k * n {
        return Err(bad("its weights do not fill their shape"));
    }
    let alpha = f64::from(float("alpha", 1.0));
    let beta = f64::from(float("beta", 1.0));
    let trans_b = int("transB", 0) != 0;
    let (outputs, width) = if trans_b { (k, n) } else { (n, k) };
    let mut weights = vec![0.0; outputs * width];
    for o in 0..outputs {
        for j in 0..width {
            let v = if trans_b {
                b[o * width + j]
            } else {
                b[j * outputs + o]
            };
            weights[o * width + j] = alpha * v;
        }
    }
    let bias = match node.input.get(2).filter(|n| !n.is_empty()) {
        None => vec![0.0; outputs],
        Some(name) => {
            let (dims, c) =
                constant(graph, name).ok_or_else(|| bad("its bias is not a constant"))?;
            // One value, or one per output; a bias per row ([N, 1] or [N, outputs]) is not a
            // property of the layer.
            if dims.len() > 2 || dims.len() == 2 && dims[0] != 1 {
                return Err(bad("its bias does not fit its outputs"));
            }
            broadcast(&c, outputs)
                .ok_or_else(|| bad("its bias does not fit its outputs"))?
                .into_iter()
                .map(|c| beta * c)
                .collect()
        }
    };
    Ok(DenseLayer {
        width,
        weights,
        bias,
    })
}
