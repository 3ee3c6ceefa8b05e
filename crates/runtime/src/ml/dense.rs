//! Dense layers: a `Gemm` with constant weights (an MLP's layers, a linear model's scores) on
//! skiff's own kernel, where the CPU has vectors of eight floats or more (AVX2, AVX-512).
//!
//! tract chooses one matrix kernel for a batch whose size it does not know, made for large
//! batches; on one to a few hundred rows it streamed the weights once per three rows and ran
//! an MLP at half of ONNX Runtime's speed. Here the weights are packed once, at load, into
//! panels one or two vectors wide and `inputs` long. Each block of eight rows (four on AVX2)
//! is multiplied against a panel with its sums in registers, so the panel is read once per
//! block, and the bias and the ReLU fused into the layer are applied as the sums are stored.
//! pulp picks the widest vectors the CPU has at run time. Every output is summed over the
//! inputs in order, with fused multiply-adds.

use super::{Kernel, OutputSpec, cpu_op, floats};
use pulp::{Simd, WithSimd};
use tract_onnx::model::{OnnxOpRegister, ParsingContext};
use tract_onnx::pb::NodeProto;
use tract_onnx::tract_hir::internal::*;
use tract_onnx::tract_hir::tract_ndarray::{Array2, ArrayView2};

/// The op the rewrite puts in place of a dense `Gemm` (`crate::rewrite::dense_layers`).
/// Attributes: `weights` (one row of `inputs` weights per output), `bias` (one per output),
/// `inputs`, and `relu` (1 where the layer's ReLU is fused in).
pub(crate) const OP: &str = "skiff.Dense";

pub(super) fn register_all(reg: &mut OnnxOpRegister) {
    reg.insert(OP, dense);
}

/// Whether the kernel runs on vectors of at least eight floats here; elsewhere a `Gemm`
/// stays tract's.
pub(crate) fn available() -> bool {
    pulp::Arch::new().dispatch(Lanes) >= 8
}

struct Lanes;

impl WithSimd for Lanes {
    type Output = usize;

    #[inline(always)]
    fn with_simd<S: Simd>(self, _simd: S) -> usize {
        S::F32_LANES
    }
}

fn dense(
    _ctx: &ParsingContext<'_>,
    node: &NodeProto,
) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    let inputs: i64 = node.get_attr("inputs")?;
    let inputs =
        usize::try_from(inputs).or_else(|_| node.bail_attr("inputs", "must not be negative"))?;
    let weights = floats(node, "weights")?;
    let bias = floats(node, "bias")?;
    if weights.len() != bias.len() * inputs {
        return node.bail_attr("weights", "needs one row of `inputs` weights per bias");
    }
    let relu = node.get_attr_opt::<i64>("relu")?.unwrap_or(0) != 0;
    Ok((cpu_op(Dense::new(&weights, bias, inputs, relu)), vec![]))
}

pub(crate) struct Dense {
    inputs: usize,
    outputs: usize,
    /// Floats a panel holds per input: one or two vectors.
    panel: usize,
    /// Panel after panel, each `inputs` rows of `panel` weights; outputs past the last are 0.
    packed: Vec<f32>,
    /// One per output, padded with zeros to whole panels.
    bias: Vec<f32>,
    relu: bool,
}

impl std::fmt::Debug for Dense {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dense")
            .field("inputs", &self.inputs)
            .field("outputs", &self.outputs)
            .field("relu", &self.relu)
            .finish_non_exhaustive()
    }
}

impl Dense {
    /// `weights` holds one row of `inputs` weights per output, `bias` one value per output.
    pub(crate) fn new(weights: &[f32], bias: Vec<f32>, inputs: usize, relu: bool) -> Dense {
        let lanes = pulp::Arch::new().dispatch(Lanes);
        Dense::for_lanes(weights, bias, inputs, relu, lanes)
    }

    /// The layer packed for vectors of `lanes` floats, the width [`Run`] must run it with.
    fn for_lanes(
        weights: &[f32],
        mut bias: Vec<f32>,
        inputs: usize,
        relu: bool,
        lanes: usize,
    ) -> Dense {
        let outputs = bias.len();
        // A layer of a vector's outputs or fewer (a classifier's last) wastes less in one.
        let panel = if outputs <= lanes { lanes } else { 2 * lanes };
        let panels = outputs.div_ceil(panel);
        let mut packed = vec![0.0; panels * inputs * panel];
        for (o, row) in weights
            .chunks_exact(inputs.max(1))
            .take(outputs)
            .enumerate()
        {
            let (p, j) = (o / panel, o % panel);
            for (k, &w) in row.iter().enumerate() {
                packed[(p * inputs + k) * panel + j] = w;
            }
        }
        bias.resize(panels * panel, 0.0);
        Dense {
            inputs,
            outputs,
            panel,
            packed,
            bias,
            relu,
        }
    }

    /// Computes the layer for `x` (rows of `inputs`) into `y` (rows of `outputs`).
    fn run(&self, x: &[f32], y: &mut [f32]) {
        if self.outputs == 0 {
            return;
        }
        if self.inputs == 0 {
            let zeros = vec![0.0; self.outputs];
            for row in y.chunks_exact_mut(self.outputs) {
                self.finish(row, &zeros, &self.bias);
            }
            return;
        }
        pulp::Arch::new().dispatch(Run { layer: self, x, y });
    }

    /// Stores sums plus bias (through the ReLU where fused) into `out`.
    #[inline(always)]
    fn finish(&self, out: &mut [f32], sums: &[f32], bias: &[f32]) {
        for ((o, &s), &b) in out.iter_mut().zip(sums).zip(bias) {
            let v = s + b;
            *o = if self.relu && v < 0.0 { 0.0 } else { v };
        }
    }
}

struct Run<'a> {
    layer: &'a Dense,
    x: &'a [f32],
    y: &'a mut [f32],
}

impl WithSimd for Run<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        let two = self.layer.panel > S::F32_LANES;
        // Eight rows of two vectors need 16 registers of sums: AVX-512 has 32, AVX2 16.
        match (two, S::F32_LANES >= 16) {
            (true, true) => self.blocks::<S, 2, 8>(simd),
            (true, false) => self.blocks::<S, 2, 4>(simd),
            (false, _) => self.blocks::<S, 1, 8>(simd),
        }
    }
}

impl Run<'_> {
    /// Blocks of `R` rows against every panel of `V` vectors; the rows left over one by one.
    /// Rows go in chunks of about [`CHUNK_INPUTS`] inputs, and each panel meets all of a
    /// chunk's blocks in turn: the chunk's rows stay in L2 while the panel is read from L1, so
    /// the weights are read from L2 once per chunk, not once per block.
    #[inline(always)]
    fn blocks<S: Simd, const V: usize, const R: usize>(self, simd: S) {
        let Run { layer, x, y } = self;
        let (inputs, outputs, panel) = (layer.inputs, layer.outputs, layer.panel);
        let chunk = (CHUNK_INPUTS / inputs).max(R) / R * R;
        let mut sums = vec![0.0f32; R * panel];
        for (xc, yc) in x.chunks(chunk * inputs).zip(y.chunks_mut(chunk * outputs)) {
            for (p, weights) in layer.packed.chunks_exact(inputs * panel).enumerate() {
                let (start, end) = (p * panel, ((p + 1) * panel).min(outputs));
                for (xs, ys) in xc.chunks(R * inputs).zip(yc.chunks_mut(R * outputs)) {
                    let rows = ys.len() / outputs;
                    if rows == R {
                        let acc = block::<S, V, R>(simd, weights, xs, inputs);
                        store(simd, &acc, &mut sums);
                    } else {
                        for r in 0..rows {
                            let row = &xs[r * inputs..(r + 1) * inputs];
                            let acc = block::<S, V, 1>(simd, weights, row, inputs);
                            store(simd, &acc, &mut sums[r * panel..(r + 1) * panel]);
                        }
                    }
                    for (r, sums) in sums.chunks_exact(panel).take(rows).enumerate() {
                        let out = &mut ys[r * outputs + start..r * outputs + end];
                        layer.finish(out, sums, &layer.bias[start..end]);
                    }
                }
            }
        }
    }
}

/// About how many inputs (floats) a chunk of rows holds: 64 KiB, a part of L2.
const CHUNK_INPUTS: usize = 1 << 14;

/// The sums of `R` rows of `x` against one panel of `V` vectors of weights a row.
#[inline(always)]
fn block<S: Simd, const V: usize, const R: usize>(
    simd: S,
    panel: &[f32],
    x: &[f32],
    inputs: usize,
) -> [[S::f32s; V]; R] {
    let (weights, _) = S::as_simd_f32s(panel);
    let rows: [&[f32]; R] = std::array::from_fn(|r| &x[r * inputs..(r + 1) * inputs]);
    let mut acc = [[simd.splat_f32s(0.0); V]; R];
    for (k, w) in weights.chunks_exact(V).enumerate() {
        for (acc, row) in acc.iter_mut().zip(&rows) {
            let x = simd.splat_f32s(row[k]);
            for (a, &w) in acc.iter_mut().zip(w) {
                *a = simd.mul_add_f32s(x, w, *a);
            }
        }
    }
    acc
}

/// Writes the rows of sums out to `out`, one row of `V` vectors after another.
#[inline(always)]
fn store<S: Simd, const V: usize, const R: usize>(
    _simd: S,
    acc: &[[S::f32s; V]; R],
    out: &mut [f32],
) {
    let (out, _) = S::as_mut_simd_f32s(out);
    for (o, a) in out.iter_mut().zip(acc.iter().flatten()) {
        *o = *a;
    }
}

impl Kernel for Dense {
    const NAME: &'static str = "Dense";

    fn n_features(&self) -> usize {
        self.inputs
    }

    fn outputs(&self) -> Vec<OutputSpec> {
        vec![OutputSpec::Matrix(f32::datum_type(), self.outputs)]
    }

    fn eval(&self, rows: ArrayView2<'_, f32>) -> TractResult<TVec<Tensor>> {
        let n = rows.nrows();
        let rows = rows.as_standard_layout();
        let x = rows.as_slice().context("rows in standard layout")?;
        let mut y = vec![0.0f32; n * self.outputs];
        self.in_row_chunks(x, &mut y);
        Ok(tvec!(
            Array2::from_shape_vec((n, self.outputs), y)?.into_tensor()
        ))
    }
}

impl Dense {
    /// Runs the layer on rayon's pool in chunks of rows when the request is large enough to
    /// be worth it ([`crate::tract::PARALLEL_MACS`]), on the calling thread otherwise.
    fn in_row_chunks(&self, x: &[f32], y: &mut [f32]) {
        use rayon::prelude::*;
        let n = y.len().checked_div(self.outputs).unwrap_or(0);
        let macs = n * self.inputs * self.outputs;
        if macs < crate::tract::PARALLEL_MACS || self.inputs == 0 || self.outputs == 0 {
            return self.run(x, y);
        }
        // A few chunks a thread, whole blocks of eight rows each.
        let chunk = n
            .div_ceil(4 * rayon::current_num_threads())
            .next_multiple_of(8);
        y.par_chunks_mut(chunk * self.outputs)
            .zip(x.par_chunks(chunk * self.inputs))
            .for_each(|(y, x)| self.run(x, y));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The layer computed the plain way, in float64.
    fn reference(weights: &[f32], bias: &[f32], x: &[f32], inputs: usize, relu: bool) -> Vec<f32> {
        x.chunks(inputs.max(1))
            .take(x.len().checked_div(inputs).unwrap_or(0))
            .flat_map(|row| {
                bias.iter().enumerate().map(move |(o, &b)| {
                    let w = &weights[o * inputs..(o + 1) * inputs];
                    let v = f64::from(b)
                        + w.iter()
                            .zip(row)
                            .map(|(&w, &x)| f64::from(w) * f64::from(x))
                            .sum::<f64>();
                    let v = v as f32;
                    if relu && v < 0.0 { 0.0 } else { v }
                })
            })
            .collect()
    }

    fn values(n: usize, seed: u32) -> Vec<f32> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (s >> 8) as f32 / (1u32 << 24) as f32 - 0.5
            })
            .collect()
    }

    #[test]
    fn every_shape_of_rows_and_outputs_matches_the_plain_product() {
        // Outputs across one and two vectors' panels and their edges; rows across a block,
        // its remainder, and a parallel run.
        for &(inputs, outputs) in &[(1, 1), (3, 7), (20, 1), (17, 16), (9, 33), (64, 256)] {
            for &rows in &[1, 7, 8, 9, 17, 300, 1100] {
                for relu in [false, true] {
                    let weights = values(inputs * outputs, 1);
                    let bias = values(outputs, 2);
                    let x = values(rows * inputs, 3);
                    let layer = Dense::new(&weights, bias.clone(), inputs, relu);
                    let mut y = vec![f32::NAN; rows * outputs];
                    layer.in_row_chunks(&x, &mut y);
                    let expected = reference(&weights, &bias, &x, inputs, relu);
                    for (i, (a, b)) in y.iter().zip(&expected).enumerate() {
                        assert!(
                            (a - b).abs() <= 1e-5 * (1.0 + b.abs()),
                            "{inputs}x{outputs}, {rows} rows, relu {relu}: [{i}] {a} != {b}"
                        );
                    }
                }
            }
        }
    }

    /// The AVX2 kernel (vectors of eight, four-row blocks), which a machine with AVX-512 would
    /// otherwise never run.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn the_avx2_kernel_matches_the_plain_product() {
        let Some(avx2) = pulp::x86::V3::try_new() else {
            eprintln!("no AVX2 here: nothing to run");
            return;
        };
        for &(inputs, outputs) in &[(3, 7), (17, 8), (9, 33), (64, 100)] {
            for &rows in &[1, 3, 4, 5, 300] {
                let weights = values(inputs * outputs, 7);
                let bias = values(outputs, 8);
                let x = values(rows * inputs, 9);
                let layer = Dense::for_lanes(&weights, bias.clone(), inputs, true, 8);
                let mut y = vec![f32::NAN; rows * outputs];
                pulp::Simd::vectorize(
                    avx2,
                    Run {
                        layer: &layer,
                        x: &x,
                        y: &mut y,
                    },
                );
                let expected = reference(&weights, &bias, &x, inputs, true);
                for (i, (a, b)) in y.iter().zip(&expected).enumerate() {
                    assert!(
                        (a - b).abs() <= 1e-5 * (1.0 + b.abs()),
                        "{inputs}x{outputs}, {rows} rows: [{i}] {a} != {b}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_large_request_split_over_threads_gives_the_same_numbers() {
        let (inputs, outputs, rows) = (256, 256, 200);
        let weights = values(inputs * outputs, 4);
        let layer = Dense::new(&weights, values(outputs, 5), inputs, true);
        let x = values(rows * inputs, 6);
        assert!(rows * inputs * outputs >= crate::tract::PARALLEL_MACS);
        let (mut split, mut whole) = (vec![0.0; rows * outputs], vec![0.0; rows * outputs]);
        layer.in_row_chunks(&x, &mut split);
        layer.run(&x, &mut whole);
        assert_eq!(split, whole);
    }

    #[test]
    fn no_inputs_give_the_bias_and_nan_stays_nan() {
        let layer = Dense::new(&[], vec![-1.0, 2.0], 0, true);
        let mut y = vec![9.0; 4];
        layer.in_row_chunks(&[], &mut y);
        assert_eq!(y, [0.0, 2.0, 0.0, 2.0]);
        let layer = Dense::new(&[1.0, 1.0], vec![0.0], 2, true);
        let mut y = vec![0.0; 1];
        layer.in_row_chunks(&[f32::NAN, 1.0], &mut y);
        assert!(y[0].is_nan(), "ReLU of NaN is NaN, as ONNX's Relu gives");
    }
}
