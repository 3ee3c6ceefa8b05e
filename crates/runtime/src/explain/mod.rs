//! SHAP values of a model's scores: exact path-dependent TreeSHAP for a tree ensemble and
//! exact (interventional) linear SHAP for a linear model, on the ONNX file itself.
//!
//! An [`Explainer`] finds the graph's *head*, the one op that scores (a `TreeEnsemble*`, or a
//! `LinearClassifier`, `LinearRegressor`, `Gemm` or `MatMul` with constant weights), and
//! cuts the graph before it: the preprocessing part runs on tract and turns the model's
//! inputs into the head's features. Attributions are computed on those features, then
//! added up per model input column by following the preprocessing back (a one-hot block
//! belongs to its text column, a scaled column to its numeric column); sums of SHAP values
//! are the SHAP values of the group, so additivity holds either way.
//!
//! What is explained is the head's scores before its post transform (and before a
//! softmax or logistic node after it): class probabilities for a forest, margins for
//! boosting and logistic regression, values for a regressor, as `shap.TreeExplainer` and
//! `shap.LinearExplainer` explain them. [`Explanation::transform`] names what the model
//! applies next.
//!
//! The reference the values are measured from comes from background rows
//! ([`Explainer::set_background`]): for trees, each node's cover is how many background
//! rows pass through it (or the file's `nodes_hitrates`, where they are counts that add
//! up); for a linear model, the background's mean.

mod trace;

use crate::constants::{broadcast, constant, gemm_layer};
use crate::ml::{PostTransform, TreeScores};
use crate::rewrite::{ML_DOMAIN, node_name};
use crate::{Error, Model, Result, Tensor, TensorData};
use serde::Serialize;
use std::collections::HashMap;
use tract_onnx::pb;

/// The kind of model explained, and so the algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// Path-dependent TreeSHAP of a tree ensemble.
    Tree,
    /// Linear SHAP (features independent) of a linear model.
    Linear,
}

/// A column the attributions are given for.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Feature {
    /// The column's name: the model input's, or its column in the file's feature names.
    pub name: String,
    /// The model input and column of it, where the preprocessing could be followed back to
    /// one; `None` for a column of the head's features that mixes several.
    pub source: Option<(usize, usize)>,
}

/// The SHAP values of a batch of rows.
#[derive(Debug, Clone, Serialize)]
pub struct Explanation {
    /// How the values were computed.
    pub method: Method,
    /// What the model applies to the explained scores after them (`logistic`, `softmax`,
    /// ...), or `None` where the scores are its output.
    pub transform: Option<String>,
    /// The columns, in the order of each row's values.
    pub features: Vec<Feature>,
    /// The explained scores: class labels, or targets.
    pub outputs: Vec<String>,
    /// Each score's expected value over the background: every row's values add up to its
    /// score minus this.
    pub base_values: Vec<f64>,
    /// How many rows.
    pub rows: usize,
    /// `rows x features x outputs` values, row-major.
    pub values: Vec<f64>,
}

impl Explanation {
    /// Row `r`'s values, `features x outputs`.
    pub fn row(&self, r: usize) -> &[f64] {
        let per_row = self.features.len() * self.outputs.len();
        &self.values[r * per_row..(r + 1) * per_row]
    }
}

/// The op that scores, as sums the attributions are taken of.
#[derive(Debug)]
enum Head {
    Tree(Box<TreeScores>),
    /// `scores = weights (n_outputs x width) . x + bias`.
    Linear {
        weights: Vec<f64>,
        bias: Vec<f64>,
        width: usize,
    },
}

impl Head {
    fn n_outputs(&self) -> usize {
        match self {
            Head::Tree(scores) => scores.n_outputs(),
            Head::Linear { bias, .. } => bias.len(),
        }
    }
}

/// What attributions are measured against.
#[derive(Debug, Clone)]
enum Reference {
    /// Each tree node's cover.
    Covers(Vec<f64>),
    /// Each feature's mean.
    Means(Vec<f64>),
}

/// Explains one model's scores; cheap to share between threads once its background is set.
#[derive(Debug)]
pub struct Explainer {
    source_name: String,
    head: Head,
    /// The op and its input, for messages.
    head_op: String,
    head_input: String,
    /// Runs the model's inputs up to the head's input; `None` where it reads input `k`.
    prep: Prep,
    /// Each of the head's feature columns' model input columns, where the trace found them.
    sources: Option<Vec<Vec<trace::Source>>>,
    input_names: Vec<String>,
    input_widths: Vec<Option<usize>>,
    feature_names: Option<Vec<String>>,
    outputs: Vec<String>,
    transform: Option<String>,
    reference: Option<Reference>,
}

#[derive(Debug)]
enum Prep {
    Input(usize),
    Graph(Box<Model>),
}

impl Explainer {
    /// Reads the ONNX model in `bytes` and finds what scores in it; `source_name` names it in
    /// errors. A graph with no tree ensemble or linear model, or with several, is refused.
    pub fn new(source_name: &str, bytes: &[u8]) -> Result<Explainer> {
        use prost::Message;
        let proto = pb::ModelProto::decode(bytes).map_err(|e| Error::NotOnnx {
            source_name: source_name.to_string(),
            reason: e.to_string(),
        })?;
        let graph = crate::graph(source_name, &proto)?;
        let refuse = |reason: String| Error::NotExplainable {
            source_name: source_name.to_string(),
            reason,
        };
        let (at, head, ends) = find_head(graph).map_err(&refuse)?;
        let node = &graph.node[at];
        let head_input = node.input.first().cloned().unwrap_or_default();
        check_after(graph, &node.op_type, &ends).map_err(&refuse)?;

        let prep = match graph.input.iter().position(|i| i.name == head_input) {
            Some(k) => Prep::Input(k),
            None => Prep::Graph(Box::new(prep_model(source_name, &proto, &head_input)?)),
        };
        let metadata: HashMap<&str, &str> = (proto.metadata_props.iter())
            .map(|p| (p.key.as_str(), p.value.as_str()))
            .collect();
        let json = |key: &str| -> Option<Vec<serde_json::Value>> {
            serde_json::from_str(metadata.get(key)?).ok()
        };
        let text = |v: serde_json::Value| match v {
            serde_json::Value::String(s) => s,
            other => other.to_string(),
        };
        let classes = json(skiff_onnx::metadata::CLASSES)
            .map(|c| c.into_iter().map(text).collect())
            .or_else(|| crate::classes::from_graph(graph));
        let n_outputs = head.n_outputs();
        let outputs = match classes {
            Some(c) if c.len() == n_outputs => c,
            Some(c) if c.len() == 2 && n_outputs == 1 => vec![c[1].clone()],
            _ if n_outputs == 1 => vec![
                metadata
                    .get(skiff_onnx::metadata::TARGET)
                    .map_or_else(|| ends[0].clone(), |t| t.to_string()),
            ],
            _ => (0..n_outputs)
                .map(|k| format!("{}[{k}]", ends[0]))
                .collect(),
        };
        let transform = match &head {
            Head::Tree(scores) => scores.transform,
            Head::Linear { .. } => PostTransform::parse(node).unwrap_or(PostTransform::None),
        };
        let transform = transform_name(transform).or_else(|| transform_after(graph, &ends));
        let reference = match &head {
            Head::Tree(scores) => scores.hitrates().map(|h| Reference::Covers(h.to_vec())),
            Head::Linear { .. } => None,
        };
        Ok(Explainer {
            source_name: source_name.to_string(),
            head_op: node.op_type.clone(),
            sources: trace::sources(graph, &head_input),
            head_input,
            head,
            prep,
            input_names: graph.input.iter().map(|i| i.name.clone()).collect(),
            input_widths: graph.input.iter().map(trace::declared_width).collect(),
            feature_names: json(skiff_onnx::metadata::FEATURE_NAMES)
                .map(|n| n.into_iter().map(text).collect()),
            outputs,
            transform,
            reference,
        })
    }

    /// The kind of model found.
    pub fn method(&self) -> Method {
        match self.head {
            Head::Tree(_) => Method::Tree,
            Head::Linear { .. } => Method::Linear,
        }
    }

    /// Whether the file alone gives the reference (a tree ensemble with hit counts), so
    /// that [`Explainer::set_background`] is optional.
    pub fn has_reference(&self) -> bool {
        self.reference.is_some()
    }

    /// Measures attributions against `inputs` (one tensor per model input, as
    /// [`Model::run`] takes them): rows like those the model was trained on. For trees they
    /// replace the file's hit counts.
    pub fn set_background(&mut self, inputs: Vec<Tensor>) -> Result<()> {
        let (rows, width, x) = self.head_features(inputs)?;
        if rows == 0 {
            return Err(Error::BadInput(
                "the background has no rows: pass rows like the training data".into(),
            ));
        }
        self.reference = Some(match &self.head {
            Head::Tree(scores) => Reference::Covers(scores.covers(&x, width)),
            Head::Linear { .. } => {
                let mut means = vec![0.0; width];
                for row in x.chunks_exact(width) {
                    for (m, &v) in means.iter_mut().zip(row) {
                        *m += f64::from(v);
                    }
                }
                means.iter_mut().for_each(|m| *m /= rows as f64);
                if let Some(j) = means.iter().position(|m| m.is_nan()) {
                    return Err(Error::BadInput(format!(
                        "the background's column {j} of {:?} has gaps where the model's \
                         linear part reads it: pass background rows without gaps there",
                        self.head_input
                    )));
                }
                Reference::Means(means)
            }
        });
        Ok(())
    }

    /// The SHAP values of `inputs`' rows.
    pub fn explain(&self, inputs: Vec<Tensor>) -> Result<Explanation> {
        let Some(reference) = &self.reference else {
            return Err(Error::BadInput(format!(
                "{} needs background rows to explain from ({} has no hit counts that add \
                 up): pass rows like the training data",
                self.source_name, self.head_op
            )));
        };
        let (rows, width, x) = self.head_features(inputs)?;
        let n_out = self.head.n_outputs();
        let (base, values) = match (&self.head, reference) {
            (Head::Tree(scores), Reference::Covers(covers)) => {
                let base = scores.base_values(covers);
                let values = per_row(&x, width, |row| scores.explain_row(covers, row));
                (base, values)
            }
            (Head::Linear { weights, bias, .. }, Reference::Means(means)) => {
                let base = (weights.chunks(width).zip(bias))
                    .map(|(w, b)| w.iter().zip(means).map(|(w, m)| w * m).sum::<f64>() + b)
                    .collect();
                let values = per_row(&x, width, |row| {
                    let mut out = vec![0.0; width * n_out];
                    for (j, (&v, m)) in row.iter().zip(means).enumerate() {
                        for o in 0..n_out {
                            out[j * n_out + o] = weights[o * width + j] * (f64::from(v) - m);
                        }
                    }
                    out
                });
                (base, values)
            }
            _ => unreachable!("the reference is made for the head"),
        };
        let (features, group) = self.features(width);
        let mut grouped = vec![0.0; rows * features.len() * n_out];
        for r in 0..rows {
            let from = &values[r * width * n_out..(r + 1) * width * n_out];
            let to = &mut grouped[r * features.len() * n_out..(r + 1) * features.len() * n_out];
            for (j, g) in group.iter().enumerate() {
                if let Some(g) = g {
                    for o in 0..n_out {
                        to[g * n_out + o] += from[j * n_out + o];
                    }
                }
            }
        }
        Ok(Explanation {
            method: self.method(),
            transform: self.transform.clone(),
            features,
            outputs: self.outputs.clone(),
            base_values: base,
            rows,
            values: grouped,
        })
    }

    /// The explained columns, and the one each of the head's `width` columns adds to.
    fn features(&self, width: usize) -> (Vec<Feature>, Vec<Option<usize>>) {
        let traced =
            (self.sources.as_ref()).filter(|s| s.len() == width && s.iter().all(|s| s.len() <= 1));
        let Some(sources) = traced else {
            let features = (0..width)
                .map(|j| Feature {
                    name: format!("{}[{j}]", self.head_input),
                    source: None,
                })
                .collect();
            return (features, (0..width).map(Some).collect());
        };
        let mut columns: Vec<trace::Source> = sources.iter().flatten().copied().collect();
        columns.sort_unstable();
        columns.dedup();
        let features = columns
            .iter()
            .map(|&(input, column)| Feature {
                name: self.column_name(input, column),
                source: Some((input, column)),
            })
            .collect();
        let group = (sources.iter())
            .map(|s| s.first().and_then(|s| columns.binary_search(s).ok()))
            .collect();
        (features, group)
    }

    fn column_name(&self, input: usize, column: usize) -> String {
        let name = &self.input_names[input];
        match (self.input_widths[input], &self.feature_names) {
            (Some(1), _) => name.clone(),
            (Some(w), Some(names)) if self.input_names.len() == 1 && names.len() == w => {
                names[column].clone()
            }
            _ => format!("{name}[{column}]"),
        }
    }

    /// The head's features for `inputs`: rows, width, and the values as float32.
    fn head_features(&self, inputs: Vec<Tensor>) -> Result<(usize, usize, Vec<f32>)> {
        let tensor = match &self.prep {
            Prep::Input(k) => {
                let n = inputs.len();
                inputs.into_iter().nth(*k).ok_or_else(|| {
                    Error::BadInput(format!("the model takes {} inputs, got {n}", k + 1))
                })?
            }
            Prep::Graph(model) => model.run(inputs)?.into_iter().next().ok_or_else(|| {
                Error::BadInput(format!(
                    "{} computed no {}",
                    self.source_name, self.head_input
                ))
            })?,
        };
        let rows = tensor.shape.first().copied().unwrap_or(1);
        let width: usize = tensor.shape.iter().skip(1).product();
        let x: Vec<f32> = match tensor.data {
            TensorData::Fp32(v) => v,
            TensorData::Fp64(v) => v.into_iter().map(|v| v as f32).collect(),
            TensorData::Int64(v) => v.into_iter().map(|v| v as f32).collect(),
            TensorData::Int32(v) => v.into_iter().map(|v| v as f32).collect(),
            TensorData::Bool(v) => v.into_iter().map(f32::from).collect(),
            TensorData::Bytes(_) => {
                return Err(Error::BadInput(format!(
                    "{} reads text in {}; its features must be numbers",
                    self.head_op, self.head_input
                )));
            }
        };
        let needed = match &self.head {
            Head::Tree(scores) => scores.n_features(),
            Head::Linear { width, .. } => *width,
        };
        let fits = match &self.head {
            Head::Tree(_) => width >= needed,
            Head::Linear { .. } => width == needed,
        };
        if !fits || x.len() != rows * width {
            return Err(Error::BadInput(format!(
                "{} reads {needed} features from {}, which has {width}",
                self.head_op, self.head_input
            )));
        }
        Ok((rows, width, x))
    }
}

/// `explain(row)` for each row of `x`, concatenated (rows in parallel on native builds).
fn per_row(x: &[f32], width: usize, explain: impl Fn(&[f32]) -> Vec<f64> + Sync) -> Vec<f64> {
    #[cfg(not(target_family = "wasm"))]
    {
        use rayon::prelude::*;
        let parts: Vec<Vec<f64>> = x.par_chunks(width.max(1)).map(&explain).collect();
        parts.concat()
    }
    #[cfg(target_family = "wasm")]
    {
        x.chunks(width.max(1)).flat_map(explain).collect()
    }
}

/// The head's node, its scores, and the tensors they end in (where later ops read them).
fn find_head(graph: &pb::GraphProto) -> std::result::Result<(usize, Head, Vec<String>), String> {
    let trees: Vec<usize> = (0..graph.node.len())
        .filter(|&i| {
            let n = &graph.node[i];
            n.domain == ML_DOMAIN && n.op_type.starts_with("TreeEnsemble")
        })
        .collect();
    match trees[..] {
        [at] => {
            let node = &graph.node[at];
            let scores = crate::ml::tree_scores(node)
                .ok_or_else(|| format!("{} is not a tree ensemble op this reads", node.op_type))?
                .map_err(|e| format!("{} {}: {e:#}", node.op_type, node_name(node)))?;
            let ends = score_outputs(node);
            return Ok((at, Head::Tree(Box::new(scores)), ends));
        }
        [] => {}
        _ => {
            return Err(format!(
                "the graph has {} tree ensembles, where TreeSHAP takes one",
                trees.len()
            ));
        }
    }
    let linear: Vec<usize> = (0..graph.node.len())
        .filter(|&i| {
            let n = &graph.node[i];
            matches!(n.op_type.as_str(), "LinearClassifier" | "LinearRegressor")
                && n.domain == ML_DOMAIN
                || matches!(n.op_type.as_str(), "Gemm" | "MatMul") && n.domain.is_empty()
        })
        .collect();
    match linear[..] {
        [at] => {
            let (head, ends) = linear_head(graph, at)?;
            Ok((at, head, ends))
        }
        [] => Err("the graph has neither a tree ensemble nor a linear model".into()),
        _ => Err(format!(
            "the graph has {} matrix products (a neural network?)",
            linear.len()
        )),
    }
}

/// The outputs of a head that hold scores (a classifier op's second output; the label is
/// derived from the scores too).
fn score_outputs(node: &pb::NodeProto) -> Vec<String> {
    let mut outputs = node.output.clone();
    if node.op_type.ends_with("Classifier") && outputs.len() == 2 {
        outputs.swap(0, 1);
    }
    outputs
}

fn linear_head(
    graph: &pb::GraphProto,
    at: usize,
) -> std::result::Result<(Head, Vec<String>), String> {
    let node = &graph.node[at];
    let floats = |name: &str| -> Vec<f64> {
        (node.attribute.iter())
            .find(|a| a.name == name)
            .map(|a| a.floats.iter().map(|&v| f64::from(v)).collect())
            .unwrap_or_default()
    };
    let int = |name: &str, default: i64| {
        (node.attribute.iter())
            .find(|a| a.name == name)
            .map_or(default, |a| a.i)
    };
    let bad = |what: &str| format!("{} {}: {what}", node.op_type, node_name(node));
    let (weights, bias, ends) = match node.op_type.as_str() {
        "LinearRegressor" | "LinearClassifier" => {
            let coefficients = floats("coefficients");
            let intercepts = floats("intercepts");
            let rows = if node.op_type == "LinearRegressor" {
                usize::try_from(int("targets", 1)).map_err(|_| bad("negative targets"))?
            } else if !intercepts.is_empty() {
                intercepts.len()
            } else {
                let labels = node
                    .attribute
                    .iter()
                    .find(|a| a.name.starts_with("classlabels_"))
                    .map_or(0, |a| a.ints.len().max(a.strings.len()));
                if labels == 2 { 1 } else { labels }
            };
            if rows == 0 || coefficients.is_empty() || coefficients.len() % rows != 0 {
                return Err(bad("its coefficients do not fill whole rows"));
            }
            let bias = if intercepts.is_empty() {
                vec![0.0; rows]
            } else {
                intercepts
            };
            if bias.len() != rows {
                return Err(bad("one intercept per row of coefficients is needed"));
            }
            (coefficients, bias, score_outputs(node))
        }
        "Gemm" => {
            let layer = gemm_layer(graph, node)?;
            (layer.weights, layer.bias, node.output.clone())
        }
        _ => {
            // MatMul, and the Add of a constant bias right after it.
            let (dims, w) = node
                .input
                .get(1)
                .and_then(|name| constant(graph, name))
                .ok_or_else(|| bad("its weights are not a constant"))?;
            let (width, outputs) = match dims[..] {
                [k] => (k, 1),
                [k, n] => (k, n),
                _ => return Err(bad("its weights are not a matrix")),
            };
            let mut weights = vec![0.0; outputs * width];
            for o in 0..outputs {
                for j in 0..width {
                    weights[o * width + j] = w[j * outputs + o];
                }
            }
            let out = node.output.first().cloned().unwrap_or_default();
            let readers: Vec<&pb::NodeProto> = graph
                .node
                .iter()
                .filter(|n| n.input.contains(&out))
                .collect();
            let added = match readers[..] {
                [add] if add.op_type == "Add" && add.input.len() == 2 => {
                    let other = if add.input[0] == out {
                        &add.input[1]
                    } else {
                        &add.input[0]
                    };
                    constant(graph, other).map(|(_, c)| (c, add.output.clone()))
                }
                _ => None,
            };
            match added {
                Some((c, ends)) => {
                    let bias = broadcast(&c, outputs)
                        .ok_or_else(|| bad("its bias does not fit its outputs"))?;
                    (weights, bias, ends)
                }
                None => (weights, vec![0.0; outputs], node.output.clone()),
            }
        }
    };
    let width = weights.len() / bias.len();
    Ok((
        Head::Linear {
            weights,
            bias,
            width,
        },
        ends,
    ))
}

/// The ops a model may apply to the head's scores: reading labels and probabilities off
/// them, reshaping them. Anything else (a nearest-neighbour vote, another model) means the
/// head is not what scores.
const AFTER_HEAD: &[&str] = &[
    "Identity",
    "Cast",
    "Softmax",
    "LogSoftmax",
    "Sigmoid",
    "ArgMax",
    "ArgMin",
    "CategoryMapper",
    "ZipMap",
    "Normalizer",
    "LabelEncoder",
    "ArrayFeatureExtractor",
    "Reshape",
    "Flatten",
    "Squeeze",
    "Unsqueeze",
    "Concat",
    "Gather",
    "Slice",
    "Sub",
    "Neg",
    "Add",
    "Mul",
    "Div",
    "Exp",
    "Log",
    "Abs",
    "Clip",
    "Transpose",
    "Shape",
    "Greater",
    "Less",
    "Equal",
    "Where",
    "Not",
    "ReduceSum",
    "ReduceMax",
    "ReduceLogSumExp",
    "Binarizer",
    "Sum",
    "Max",
    "Min",
];

/// Refuses a graph that does more with the head's scores than [`AFTER_HEAD`] allows.
fn check_after(
    graph: &pb::GraphProto,
    head_op: &str,
    ends: &[String],
) -> std::result::Result<(), String> {
    let mut seen: std::collections::HashSet<&str> = ends.iter().map(String::as_str).collect();
    let mut queue: Vec<&str> = seen.iter().copied().collect();
    while let Some(tensor) = queue.pop() {
        for node in graph
            .node
            .iter()
            .filter(|n| n.input.iter().any(|i| i == tensor))
        {
            if !AFTER_HEAD.contains(&node.op_type.as_str()) {
                return Err(format!(
                    "the model computes more from its {} scores ({} {}), so they are not what \
                     it answers",
                    head_op,
                    node.op_type,
                    node_name(node)
                ));
            }
            for out in &node.output {
                if seen.insert(out) {
                    queue.push(out);
                }
            }
        }
    }
    Ok(())
}

fn transform_name(t: PostTransform) -> Option<String> {
    let name = match t {
        PostTransform::None => return None,
        PostTransform::Logistic => "logistic",
        PostTransform::Softmax => "softmax",
        PostTransform::SoftmaxZero => "softmax_zero",
        PostTransform::Probit => "probit",
    };
    Some(name.to_string())
}

/// A softmax or logistic node that reads the scores.
fn transform_after(graph: &pb::GraphProto, ends: &[String]) -> Option<String> {
    graph
        .node
        .iter()
        .filter(|n| n.input.iter().any(|i| ends.contains(i)))
        .find_map(|n| match n.op_type.as_str() {
            "Softmax" => Some("softmax".to_string()),
            "Sigmoid" => Some("logistic".to_string()),
            _ => None,
        })
}

/// The model cut at `tensor`: the nodes it needs, and it as the only output.
fn prep_model(source_name: &str, proto: &pb::ModelProto, tensor: &str) -> Result<Model> {
    use prost::Message;
    let mut proto = proto.clone();
    let Some(graph) = proto.graph.as_mut() else {
        return Err(Error::NotOnnx {
            source_name: source_name.to_string(),
            reason: "no graph".into(),
        });
    };
    let mut needed: std::collections::HashSet<String> = [tensor.to_string()].into();
    let mut keep = vec![false; graph.node.len()];
    // ONNX lists nodes in topological order: walk back from the end.
    for (i, node) in graph.node.iter().enumerate().rev() {
        if node.output.iter().any(|o| needed.contains(o)) {
            keep[i] = true;
            needed.extend(node.input.iter().filter(|i| !i.is_empty()).cloned());
        }
    }
    let mut k = keep.into_iter();
    graph.node.retain(|_| k.next().unwrap_or(false));
    graph.output = vec![pb::ValueInfoProto {
        name: tensor.to_string(),
        ..Default::default()
    }];
    Model::from_bytes(source_name, &proto.encode_to_vec())
}
