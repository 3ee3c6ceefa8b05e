//! Graph pieces several estimators share.

use ndarray::Array2;
use skiff_onnx::Graph;

/// Adds nodes computing `Σ_j w[k,j]·(x[n,j] − c[k,j])²` for every row n of `x` and every
/// centre k: an [N, K] output named `output`. Broadcasting `x` against the centres keeps the
/// differences exact in float32, where expanding the square would cancel large terms.
pub(crate) fn squared_distances(
    g: &mut Graph,
    x: &str,
    centres: &Array2<f64>,
    weights: Option<&Array2<f64>>,
    output: &str,
) {
    let (k, d) = centres.dim();
    let f32s = |a: &Array2<f64>| a.iter().map(|&v| v as f32).collect::<Vec<_>>();
    let c = g.constant_f32(
        &format!("{output}_centres"),
        &[k as u64, d as u64],
        f32s(centres),
    );
    let axis1 = g.constant_i64(&format!("{output}_axis1"), &[1], &[1]);
    let axis2 = g.constant_i64(&format!("{output}_axis2"), &[1], &[2]);
    let rows = format!("{output}_rows");
    let diff = format!("{output}_diff");
    let square = format!("{output}_square");
    g.node("Unsqueeze", &[x, &axis1], &[&rows], vec![]);
    g.node("Sub", &[&rows, &c], &[&diff], vec![]);
    g.node("Mul", &[&diff, &diff], &[&square], vec![]);
    let summed = match weights {
        Some(w) => {
            let w = g.constant_f32(&format!("{output}_weights"), &[k as u64, d as u64], f32s(w));
            let weighted = format!("{output}_weighted");
            g.node("Mul", &[&square, &w], &[&weighted], vec![]);
            weighted
        }
        None => square,
    };
    g.node(
        "ReduceSum",
        &[&summed, &axis2],
        &[output],
        vec![("keepdims", skiff_onnx::Attr::Int(0))],
    );
}
