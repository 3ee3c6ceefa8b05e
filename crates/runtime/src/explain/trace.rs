//! Which model input columns each column of a tensor comes from, followed back through the
//! ops that move, encode or rescale columns (skl2onnx's and skiff's preprocessing): a scaled
//! column is its input column, a one-hot block is its text column, a concatenation lines its
//! parts up. Ops that mix columns (a matrix product, a normalizer) give each output column
//! every input column; an op this does not know ends the trace.

use crate::constants::constant_floats;
use std::collections::HashMap;
use tract_onnx::pb;

/// An input column: (model input, column of it).
pub(crate) type Source = (usize, usize);

/// A tensor's columns as rows see them: the dimensions after the batch, and each flat
/// column's sources (sorted, no repeats).
#[derive(Debug, Clone)]
struct Columns {
    dims: Vec<usize>,
    sources: Vec<Vec<Source>>,
}

/// The sources of each flat column of `tensor`, or `None` where the graph does something
/// the trace does not follow.
pub(crate) fn sources(graph: &pb::GraphProto, tensor: &str) -> Option<Vec<Vec<Source>>> {
    let producers: HashMap<&str, &pb::NodeProto> = (graph.node.iter())
        .flat_map(|n| n.output.iter().map(move |o| (o.as_str(), n)))
        .collect();
    let trace = Trace { graph, producers };
    trace
        .columns(tensor, &mut HashMap::new(), 0)
        .map(|c| c.sources)
}

struct Trace<'a> {
    graph: &'a pb::GraphProto,
    producers: HashMap<&'a str, &'a pb::NodeProto>,
}

/// Graphs deeper than this are not followed (the trace recurses once per node).
const MAX_DEPTH: usize = 2_000;

type Memo = HashMap<String, Option<Columns>>;

impl Trace<'_> {
    fn columns(&self, tensor: &str, memo: &mut Memo, depth: usize) -> Option<Columns> {
        if let Some(known) = memo.get(tensor) {
            return known.clone();
        }
        if depth > MAX_DEPTH {
            return None;
        }
        let found = self.compute(tensor, memo, depth + 1);
        memo.insert(tensor.to_string(), found.clone());
        found
    }

    fn compute(&self, tensor: &str, memo: &mut Memo, depth: usize) -> Option<Columns> {
        if let Some(i) = self.graph.input.iter().position(|v| v.name == tensor) {
            let dims = declared_dims(&self.graph.input[i])?;
            let width = dims.iter().product();
            return Some(Columns {
                dims,
                sources: (0..width).map(|c| vec![(i, c)]).collect(),
            });
        }
        let node = *self.producers.get(tensor)?;
        if node.output.first().map(String::as_str) != Some(tensor) {
            return None;
        }
        let input = |k: usize, memo: &mut Memo| self.columns(node.input.get(k)?, memo, depth);
        let constant = |k: usize| {
            let name = node.input.get(k)?;
            constant_floats(self.graph, name)
        };
        match node.op_type.as_str() {
            // Column by column.
            "Identity" | "Cast" | "Imputer" | "Scaler" | "LabelEncoder" | "Binarizer" | "Abs"
            | "Neg" | "Sqrt" | "Log" | "Exp" | "Clip" | "Floor" | "Ceil" | "Round" | "Sign"
            | "Relu" | "Sigmoid" | "Tanh" | "Reciprocal" => input(0, memo),
            // Elementwise with a constant, or of two tensors of the same columns.
            "Add" | "Sub" | "Mul" | "Div" | "Pow" | "Max" | "Min" => {
                match (input(0, memo), input(1, memo)) {
                    (Some(a), None) if constant(1).is_some() => Some(a),
                    (None, Some(b)) if constant(0).is_some() => Some(b),
                    (Some(a), Some(b)) if a.dims == b.dims => Some(Columns {
                        sources: (a.sources.into_iter().zip(b.sources))
                            .map(|(a, b)| union([a, b]))
                            .collect(),
                        dims: a.dims,
                    }),
                    _ => None,
                }
            }
            "OneHotEncoder" => {
                let a = input(0, memo)?;
                let k = categories(node)?;
                let mut dims = a.dims;
                dims.push(k);
                let sources = (a.sources.into_iter())
                    .flat_map(|s| std::iter::repeat_n(s, k))
                    .collect();
                Some(Columns { dims, sources })
            }
            "Reshape" => {
                let a = input(0, memo)?;
                let shape = constant(1)?;
                let width: usize = a.dims.iter().product();
                // The batch stays the first axis.
                let first = *shape.first()? as i64;
                if first != -1 && first != 0 {
                    return None;
                }
                let mut dims = Vec::new();
                let mut infer = None;
                for (i, &d) in shape.iter().enumerate().skip(1) {
                    match d as i64 {
                        0 => dims.push(*a.dims.get(i - 1)?),
                        -1 if first == 0 && infer.is_none() => {
                            infer = Some(dims.len());
                            dims.push(1);
                        }
                        n if n > 0 => dims.push(n as usize),
                        _ => return None,
                    }
                }
                let known: usize = dims.iter().product();
                if let Some(at) = infer {
                    if known == 0 || !width.is_multiple_of(known) {
                        return None;
                    }
                    dims[at] = width / known;
                }
                (dims.iter().product::<usize>() == width).then_some(Columns {
                    dims,
                    sources: a.sources,
                })
            }
            "Flatten" | "Squeeze" | "Unsqueeze" => {
                let a = input(0, memo)?;
                if node.op_type == "Flatten" && attribute_int(node, "axis").unwrap_or(1) != 1 {
                    return None;
                }
                let width = a.sources.len();
                Some(Columns {
                    dims: vec![width],
                    sources: a.sources,
                })
            }
            "Concat" => {
                let parts: Vec<Columns> = (0..node.input.len())
                    .map(|k| input(k, memo))
                    .collect::<Option<_>>()?;
                let rank = parts.first()?.dims.len() + 1;
                let axis = attribute_int(node, "axis")?;
                let axis = if axis < 0 { axis + rank as i64 } else { axis };
                if axis < 1 || axis as usize >= rank {
                    return None;
                }
                concat(parts, axis as usize - 1)
            }
            "FeatureVectorizer" => {
                let widths = attribute_ints(node, "inputdimensions")?;
                let mut sources = Vec::new();
                for (k, &w) in widths.iter().enumerate() {
                    let part = input(k, memo)?;
                    let w = usize::try_from(w).ok()?;
                    sources.extend(
                        part.sources
                            .into_iter()
                            .chain(std::iter::repeat(vec![]))
                            .take(w),
                    );
                }
                Some(Columns {
                    dims: vec![sources.len()],
                    sources,
                })
            }
            "ArrayFeatureExtractor" | "Gather" => {
                let a = input(0, memo)?;
                if a.dims.len() != 1
                    || node.op_type == "Gather" && attribute_int(node, "axis").unwrap_or(0) != 1
                {
                    return None;
                }
                let picked = constant(1)?;
                let width = a.sources.len() as i64;
                let sources = (picked.iter())
                    .map(|&i| {
                        let i = i as i64;
                        let i = if i < 0 { i + width } else { i };
                        a.sources.get(usize::try_from(i).ok()?).cloned()
                    })
                    .collect::<Option<Vec<_>>>()?;
                Some(Columns {
                    dims: vec![sources.len()],
                    sources,
                })
            }
            // Every output column from every input column.
            "Normalizer" => {
                let a = input(0, memo)?;
                let width = a.sources.len();
                Some(Columns {
                    dims: vec![width],
                    sources: vec![union(a.sources); width],
                })
            }
            _ => None,
        }
    }
}

fn union<I: IntoIterator<Item = Vec<Source>>>(sets: I) -> Vec<Source> {
    let mut all: Vec<Source> = sets.into_iter().flatten().collect();
    all.sort_unstable();
    all.dedup();
    all
}

/// Parts joined along `axis` of their dimensions after the batch.
fn concat(parts: Vec<Columns>, axis: usize) -> Option<Columns> {
    let first = &parts[0];
    let outer: usize = first.dims[..axis].iter().product();
    if parts.iter().any(|p| {
        p.dims.len() != first.dims.len()
            || p.dims[..axis] != first.dims[..axis]
            || p.dims[axis + 1..] != first.dims[axis + 1..]
    }) {
        return None;
    }
    let mut dims = first.dims.clone();
    dims[axis] = parts.iter().map(|p| p.dims[axis]).sum();
    let mut sources = Vec::new();
    for o in 0..outer {
        for p in &parts {
            let block: usize = p.dims[axis..].iter().product();
            sources.extend_from_slice(&p.sources[o * block..(o + 1) * block]);
        }
    }
    Some(Columns { dims, sources })
}

/// How many columns a row of a model input has, where its shape says.
pub(crate) fn declared_width(info: &pb::ValueInfoProto) -> Option<usize> {
    declared_dims(info).map(|d| d.iter().product())
}

fn declared_dims(info: &pb::ValueInfoProto) -> Option<Vec<usize>> {
    let Some(pb::type_proto::Value::TensorType(t)) = info.r#type.as_ref()?.value.as_ref() else {
        return None;
    };
    let dims = &t.shape.as_ref()?.dim;
    let after_batch = dims.get(1..).unwrap_or(&[]);
    let dims: Option<Vec<usize>> = after_batch
        .iter()
        .map(|d| match d.value {
            Some(pb::tensor_shape_proto::dimension::Value::DimValue(n)) if n > 0 => {
                Some(n as usize)
            }
            _ => None,
        })
        .collect();
    // A one-axis input is one column.
    dims.map(|d| if d.is_empty() { vec![1] } else { d })
}

fn categories(node: &pb::NodeProto) -> Option<usize> {
    node.attribute
        .iter()
        .find(|a| a.name == "cats_int64s" || a.name == "cats_strings")
        .map(|a| a.ints.len().max(a.strings.len()))
        .filter(|&k| k > 0)
}

fn attribute_int(node: &pb::NodeProto, name: &str) -> Option<i64> {
    node.attribute.iter().find(|a| a.name == name).map(|a| a.i)
}

fn attribute_ints<'n>(node: &'n pb::NodeProto, name: &str) -> Option<&'n [i64]> {
    node.attribute
        .iter()
        .find(|a| a.name == name)
        .map(|a| a.ints.as_slice())
}
