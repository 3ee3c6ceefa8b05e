//! `SVMRegressor` and `SVMClassifier`, computed as onnxruntime computes them, quirks included:
//! the classifier's scores are the one-vs-one decision values (or, with `prob_a`/`prob_b`,
//! pairwise-coupled probabilities), its label comes from the one-vs-one votes, and two-class
//! models get onnxruntime's two-column score layouts.

use super::{Kernel, OutputSpec, PostTransform, cpu_op, floats, ints, string};
use tract_onnx::model::{OnnxOpRegister, ParsingContext};
use tract_onnx::pb::NodeProto;
use tract_onnx::tract_hir::internal::*;
use tract_onnx::tract_hir::tract_ndarray::{Array1, Array2, ArrayView1, ArrayView2};

pub(super) fn register_all(reg: &mut OnnxOpRegister) {
    reg.insert("SVMRegressor", svm_regressor);
    reg.insert("SVMClassifier", svm_classifier);
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum SvmKernel {
    Linear,
    Poly { gamma: f32, coef0: f32, degree: f32 },
    Rbf { gamma: f32 },
    Sigmoid { gamma: f32, coef0: f32 },
}

impl SvmKernel {
    fn parse(node: &NodeProto) -> TractResult<SvmKernel> {
        let params = floats(node, "kernel_params")?;
        let (gamma, coef0, degree) = match params[..] {
            [] => (0.0, 0.0, 0.0),
            [gamma, coef0, degree, ..] => (gamma, coef0, degree),
            _ => return node.bail_attr("kernel_params", "needs gamma, coef0 and degree"),
        };
        Ok(match string(node, "kernel_type", "LINEAR")? {
            "LINEAR" => SvmKernel::Linear,
            "POLY" => SvmKernel::Poly {
                gamma,
                coef0,
                degree,
            },
            "RBF" => SvmKernel::Rbf { gamma },
            "SIGMOID" => SvmKernel::Sigmoid { gamma, coef0 },
            other => return node.bail_attr("kernel_type", &format!("unknown value {other:?}")),
        })
    }

    fn apply(self, x: &ArrayView1<'_, f32>, v: &[f32]) -> f32 {
        let dot = || x.iter().zip(v).map(|(a, b)| a * b).sum::<f32>();
        match self {
            SvmKernel::Linear => dot(),
            SvmKernel::Poly {
                gamma,
                coef0,
                degree,
            } => (gamma * dot() + coef0).powf(degree),
            SvmKernel::Rbf { gamma } => {
                let d2: f32 = x.iter().zip(v).map(|(a, b)| (a - b) * (a - b)).sum();
                (-gamma * d2).exp()
            }
            SvmKernel::Sigmoid { gamma, coef0 } => (gamma * dot() + coef0).tanh(),
        }
    }
}

/// Support vectors [vectors, features] (SVC) or none (linear: coefficients per class).
fn support_vectors(node: &NodeProto, vectors: usize) -> TractResult<(Vec<f32>, usize)> {
    let sv = floats(node, "support_vectors")?;
    if vectors == 0 || sv.is_empty() || !sv.len().is_multiple_of(vectors) {
        return node.bail_attr(
            "support_vectors",
            &format!(
                "has {} values, not a multiple of {vectors} vectors",
                sv.len()
            ),
        );
    }
    let features = sv.len() / vectors;
    Ok((sv, features))
}

fn nonempty(node: &NodeProto, name: &str) -> TractResult<Vec<f32>> {
    let v = floats(node, name)?;
    if v.is_empty() {
        return node.bail_attr(name, "missing or empty");
    }
    Ok(v)
}

#[derive(Debug)]
struct SvmRegressor {
    kernel: SvmKernel,
    /// [vectors, features]; empty in linear mode.
    support_vectors: Vec<f32>,
    coefficients: Vec<f32>,
    rho: f32,
    features: usize,
    one_class: bool,
}

fn svm_regressor(
    _ctx: &ParsingContext<'_>,
    node: &NodeProto,
) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    let n_supports: i64 = node.get_attr_opt("n_supports")?.unwrap_or(0);
    let vectors = usize::try_from(n_supports)
        .or_else(|_| node.bail_attr("n_supports", "must not be negative"))?;
    let coefficients = nonempty(node, "coefficients")?;
    let rho = nonempty(node, "rho")?[0];
    let one_class = node.get_attr_opt::<i64>("one_class")?.unwrap_or(0) != 0;
    let op = if vectors > 0 {
        let (support_vectors, features) = support_vectors(node, vectors)?;
        if coefficients.len() < vectors {
            return node.bail_attr(
                "coefficients",
                &format!("has {} values for {vectors} vectors", coefficients.len()),
            );
        }
        SvmRegressor {
            kernel: SvmKernel::parse(node)?,
            support_vectors,
            features,
            coefficients,
            rho,
            one_class,
        }
    } else {
        SvmRegressor {
            kernel: SvmKernel::Linear,
            support_vectors: Vec::new(),
            features: coefficients.len(),
            coefficients,
            rho,
            one_class,
        }
    };
    Ok((cpu_op(op), vec![]))
}

impl Kernel for SvmRegressor {
    const NAME: &'static str = "SVMRegressor";

    fn n_features(&self) -> usize {
        self.features
    }

    fn outputs(&self) -> Vec<OutputSpec> {
        vec![OutputSpec::Matrix(f32::datum_type(), 1)]
    }

    fn eval(&self, rows: ArrayView2<'_, f32>) -> TractResult<TVec<Tensor>> {
        let mut out = Array2::<f32>::zeros((rows.nrows(), 1));
        for (i, row) in rows.outer_iter().enumerate() {
            let y = if self.support_vectors.is_empty() {
                self.kernel.apply(&row, &self.coefficients) + self.rho
            } else {
                self.support_vectors
                    .chunks_exact(self.features)
                    .zip(&self.coefficients)
                    .map(|(sv, c)| c * self.kernel.apply(&row, sv))
                    .sum::<f32>()
                    + self.rho
            };
            out[(i, 0)] = match (self.one_class, y > 0.0) {
                (false, _) => y,
                (true, true) => 1.0,
                (true, false) => -1.0,
            };
        }
        Ok(tvec!(out.into_tensor()))
    }
}

#[derive(Debug)]
struct SvmClassifier {
    kernel: SvmKernel,
    labels: Vec<i64>,
    features: usize,
    /// Linear mode: [classes, features]. SVC mode: [classes - 1, vectors].
    coefficients: Vec<f32>,
    /// SVC mode: [vectors, features]; empty in linear mode.
    support_vectors: Vec<f32>,
    /// First support vector of each class, and how many it has.
    class_vectors: Vec<(usize, usize)>,
    rho: Vec<f32>,
    prob_a: Vec<f32>,
    prob_b: Vec<f32>,
    post_transform: PostTransform,
    weights_are_all_positive: bool,
}

fn svm_classifier(
    _ctx: &ParsingContext<'_>,
    node: &NodeProto,
) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    if node
        .attribute
        .iter()
        .any(|a| a.name == "classlabels_strings")
    {
        // The loader's proto rewrite turns string labels into integers before parsing.
        return node.bail_attr(
            "classlabels_strings",
            "string labels are not supported here",
        );
    }
    let labels = ints(node, "classlabels_ints")?;
    let classes = labels.len();
    if classes < 2 {
        return node.bail_attr("classlabels_ints", "needs at least two classes");
    }
    let pairs = classes * (classes - 1) / 2;
    let coefficients = nonempty(node, "coefficients")?;
    let rho = nonempty(node, "rho")?;
    let prob_a = floats(node, "prob_a")?;
    let prob_b = floats(node, "prob_b")?;
    if prob_a.len() != prob_b.len() {
        return node.bail_attr("prob_b", "must have as many values as prob_a");
    }
    let post_transform = PostTransform::parse(node)?;
    let per_class = ints(node, "vectors_per_class")?;
    let mut class_vectors = Vec::with_capacity(per_class.len());
    let mut vectors = 0;
    for &n in &per_class {
        let n = usize::try_from(n)
            .or_else(|_| node.bail_attr("vectors_per_class", "must not be negative"))?;
        class_vectors.push((vectors, n));
        vectors += n;
    }
    let weights_are_all_positive = coefficients.iter().all(|&c| c >= 0.0);
    let op = if vectors > 0 {
        let (support_vectors, features) = support_vectors(node, vectors)?;
        if per_class.len() != classes {
            return node.bail_attr(
                "vectors_per_class",
                &format!("has {} values for {classes} classes", per_class.len()),
            );
        }
        if coefficients.len() < (classes - 1) * vectors {
            return node.bail_attr(
                "coefficients",
                &format!(
                    "has {} values, needs {} for {classes} classes and {vectors} vectors",
                    coefficients.len(),
                    (classes - 1) * vectors
                ),
            );
        }
        if rho.len() < pairs {
            return node.bail_attr("rho", &format!("needs {pairs} values"));
        }
        if !prob_a.is_empty() && prob_a.len() < pairs {
            return node.bail_attr("prob_a", &format!("needs {pairs} values"));
        }
        if prob_a.is_empty() && classes == 2 && post_transform == PostTransform::Probit {
            // onnxruntime leaves the second score column unwritten here.
            return node.bail_attr("post_transform", "PROBIT with two classes is not supported");
        }
        SvmClassifier {
            kernel: SvmKernel::parse(node)?,
            labels,
            features,
            coefficients,
            support_vectors,
            class_vectors,
            rho,
            prob_a,
            prob_b,
            post_transform,
            weights_are_all_positive,
        }
    } else {
        if !coefficients.len().is_multiple_of(classes) {
            return node.bail_attr(
                "coefficients",
                &format!("has {} values for {classes} classes", coefficients.len()),
            );
        }
        SvmClassifier {
            kernel: SvmKernel::Linear,
            labels,
            features: coefficients.len() / classes,
            coefficients,
            support_vectors: Vec::new(),
            class_vectors,
            rho,
            prob_a: Vec::new(),
            prob_b: Vec::new(),
            post_transform,
            weights_are_all_positive,
        }
    };
    Ok((cpu_op(op), vec![]))
}

impl SvmClassifier {
    fn is_svc(&self) -> bool {
        !self.support_vectors.is_empty()
    }

    fn score_width(&self) -> usize {
        let classes = self.labels.len();
        if self.is_svc() && self.prob_a.is_empty() {
            if classes > 2 {
                classes * (classes - 1) / 2
            } else {
                2
            }
        } else {
            classes
        }
    }

    /// Scores and label index of one row.
    fn row(&self, x: &ArrayView1<'_, f32>, scores: &mut Vec<f32>) -> usize {
        let classes = self.labels.len();
        scores.clear();
        if !self.is_svc() {
            for c in self.coefficients.chunks_exact(self.features) {
                scores.push(self.kernel.apply(x, c) + self.rho[0]);
            }
            // The first of equal maxima wins, as with std::max_element.
            let (best, max) = scores
                .iter()
                .enumerate()
                .fold(
                    (0, f32::MIN),
                    |(bi, bv), (i, &v)| if v > bv { (i, v) } else { (bi, bv) },
                );
            self.post_transform.apply(scores);
            return if classes == 2 {
                let all_pos = self.weights_are_all_positive;
                if (all_pos && max >= 0.5) || (max > 0.0 && !all_pos) {
                    1
                } else {
                    best
                }
            } else {
                best
            };
        }
        let kernels: Vec<f32> = self
            .support_vectors
            .chunks_exact(self.features)
            .map(|sv| self.kernel.apply(x, sv))
            .collect();
        let vectors = kernels.len();
        let mut votes = vec![0usize; classes];
        let mut decisions = Vec::with_capacity(classes * (classes - 1) / 2);
        let mut pair = 0;
        for i in 0..classes - 1 {
            let (start_i, count_i) = self.class_vectors[i];
            for j in i + 1..classes {
                let (start_j, count_j) = self.class_vectors[j];
                // Coefficients row r holds, for each class's vectors, its weights against
                // the classes it is paired with (onnxruntime's svmclassifier.cc layout).
                let weighted = |r: usize, start: usize, count: usize| -> f64 {
                    self.coefficients[r * vectors + start..][..count]
                        .iter()
                        .zip(&kernels[start..start + count])
                        .map(|(c, k)| (c * k) as f64)
                        .sum()
                };
                let mut sum = weighted(j - 1, start_i, count_i) + weighted(i, start_j, count_j);
                sum += self.rho[pair] as f64;
                pair += 1;
                decisions.push(sum as f32);
                votes[if sum > 0.0 { i } else { j }] += 1;
            }
        }
        // The first class with the most votes wins, as with std::max_element.
        let best = votes
            .iter()
            .enumerate()
            .fold(
                (0, 0),
                |(bi, bv), (i, &v)| if v > bv { (i, v) } else { (bi, bv) },
            )
            .0;
        if !self.prob_a.is_empty() {
            scores.extend(self.probabilities(&decisions));
            self.post_transform.apply(scores);
        } else if classes > 2 {
            scores.extend(decisions);
            self.post_transform.apply(scores);
        } else {
            let s = decisions[0];
            // onnxruntime's two-column layout for a single decision value.
            if self.post_transform == PostTransform::None {
                scores.extend([-s, s]);
            } else {
                scores.extend([1.0 - s, s]);
            }
        }
        best
    }

    /// Pairwise coupling of the one-vs-one Platt probabilities (libsvm's
    /// multiclass_probability, in onnxruntime's float32 arithmetic).
    fn probabilities(&self, decisions: &[f32]) -> Vec<f32> {
        let k = self.labels.len();
        let mut r = vec![0f32; k * k];
        let mut index = 0;
        for i in 0..k - 1 {
            for j in i + 1..k {
                let v = 1.0
                    - super::logistic(decisions[index] * self.prob_a[index] + self.prob_b[index]);
                let v = v.clamp(1e-7, 1.0 - 1e-7);
                r[i * k + j] = v;
                r[j * k + i] = 1.0 - v;
                index += 1;
            }
        }
        let mut q = vec![0f32; k * k];
        let mut p = vec![1.0 / k as f32; k];
        for i in 0..k {
            for j in 0..i {
                q[i * k + i] += r[j * k + i] * r[j * k + i];
                q[i * k + j] = q[j * k + i];
            }
            for j in i + 1..k {
                q[i * k + i] += r[j * k + i] * r[j * k + i];
                q[i * k + j] = -r[j * k + i] * r[i * k + j];
            }
        }
        let eps = 0.005 / k as f32;
        let mut qp = vec![0f32; k];
        for _ in 0..100 {
            let mut pqp = 0f32;
            for i in 0..k {
                qp[i] = (0..k).map(|j| q[i * k + j] * p[j]).sum();
                pqp += p[i] * qp[i];
            }
            let max_error = qp.iter().map(|v| (v - pqp).abs()).fold(0f32, f32::max);
            if max_error < eps {
                break;
            }
            for i in 0..k {
                let diff = (-qp[i] + pqp) / q[i * k + i];
                p[i] += diff;
                pqp = (pqp + diff * (diff * q[i * k + i] + 2.0 * qp[i]))
                    / (1.0 + diff)
                    / (1.0 + diff);
                for j in 0..k {
                    qp[j] = (qp[j] + diff * q[i * k + j]) / (1.0 + diff);
                    p[j] /= 1.0 + diff;
                }
            }
        }
        p
    }
}

impl Kernel for SvmClassifier {
    const NAME: &'static str = "SVMClassifier";

    fn n_features(&self) -> usize {
        self.features
    }

    fn outputs(&self) -> Vec<OutputSpec> {
        vec![
            OutputSpec::Column(i64::datum_type()),
            OutputSpec::Matrix(f32::datum_type(), self.score_width()),
        ]
    }

    fn eval(&self, rows: ArrayView2<'_, f32>) -> TractResult<TVec<Tensor>> {
        let width = self.score_width();
        let mut labels = Array1::<i64>::zeros(rows.nrows());
        let mut out = Array2::<f32>::zeros((rows.nrows(), width));
        let mut scores = Vec::with_capacity(width);
        for (i, row) in rows.outer_iter().enumerate() {
            labels[i] = self.labels[self.row(&row, &mut scores)];
            for (o, s) in out.row_mut(i).iter_mut().zip(&scores) {
                *o = *s;
            }
        }
        Ok(tvec!(labels.into_tensor(), out.into_tensor()))
    }
}
