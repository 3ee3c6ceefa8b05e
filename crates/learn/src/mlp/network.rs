//! The network's arithmetic, as scikit-learn's `_forward_pass`, `_backprop` and
//! `_init_coef` compute it, and the graph that repeats its forward pass.

use super::Activation;
use ndarray::linalg::general_mat_mul;
use ndarray::{Array1, Array2, ArrayView1, ArrayView2, ArrayViewMut1, ArrayViewMut2, Axis, Zip};
use rand::Rng;
use skiff_onnx::{Attr, Graph};

/// What the output layer applies to its sums (scikit-learn's `out_activation_`), which also
/// fixes the loss: squared error after `identity`, log-loss after the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Output {
    /// A regressor's linear unit.
    Identity,
    /// A binary classifier's one unit: the probability of the second class.
    Logistic,
    /// A multiclass classifier's units: the probability of each class.
    Softmax,
}

impl Activation {
    fn apply(self, z: &mut Array2<f64>) {
        match self {
            Activation::Identity => {}
            Activation::Logistic => z.mapv_inplace(sigmoid),
            Activation::Tanh => z.mapv_inplace(f64::tanh),
            Activation::Relu => z.mapv_inplace(|v| v.max(0.0)),
        }
    }

    /// Multiplies `delta` by the activation's derivative, from the activation's output `a`.
    fn derivative(self, a: &Array2<f64>, delta: &mut Array2<f64>) {
        let zip = Zip::from(delta).and(a);
        match self {
            Activation::Identity => {}
            Activation::Logistic => zip.for_each(|d, &a| *d *= a * (1.0 - a)),
            Activation::Tanh => zip.for_each(|d, &a| *d *= 1.0 - a * a),
            Activation::Relu => zip.for_each(|d, &a| {
                if a == 0.0 {
                    *d = 0.0;
                }
            }),
        }
    }

    /// The ONNX operator of the activation; `None` for the identity.
    fn onnx_op(self) -> Option<&'static str> {
        match self {
            Activation::Identity => None,
            Activation::Logistic => Some("Sigmoid"),
            Activation::Tanh => Some("Tanh"),
            Activation::Relu => Some("Relu"),
        }
    }
}

impl Output {
    fn apply(self, z: &mut Array2<f64>) {
        match self {
            Output::Identity => {}
            Output::Logistic => z.mapv_inplace(sigmoid),
            Output::Softmax => crate::classifier::softmax_rows(z),
        }
    }

    /// The mean loss of outputs `p` against targets `y` (scikit-learn's `squared_loss`,
    /// `binary_log_loss` and `log_loss`, probabilities clipped to [eps, 1 − eps]).
    fn loss(self, y: ArrayView2<'_, f64>, p: &Array2<f64>) -> f64 {
        let n = p.nrows() as f64;
        let clip = |p: f64| p.clamp(f64::EPSILON, 1.0 - f64::EPSILON);
        let xlogy = |y: f64, p: f64| if y == 0.0 { 0.0 } else { y * p.ln() };
        let mut total = 0.0;
        match self {
            Output::Identity => {
                Zip::from(y)
                    .and(p)
                    .for_each(|&y, &p| total += (y - p) * (y - p));
                0.5 * total / (n * p.ncols() as f64)
            }
            Output::Logistic => {
                Zip::from(y).and(p).for_each(|&y, &p| {
                    let p = clip(p);
                    total += xlogy(y, p) + xlogy(1.0 - y, 1.0 - p);
                });
                -total / n
            }
            Output::Softmax => {
                Zip::from(y)
                    .and(p)
                    .for_each(|&y, &p| total += xlogy(y, clip(p)));
                -total / n
            }
        }
    }
}

fn sigmoid(v: f64) -> f64 {
    if v >= 0.0 {
        1.0 / (1.0 + (-v).exp())
    } else {
        let e = v.exp();
        e / (1.0 + e)
    }
}

/// The units of every layer, input to output, and where each layer's weights sit in one flat
/// vector: every coefficient matrix (fan-in × fan-out, row by row), then every intercept, as
/// scikit-learn's `_pack` lays them out for L-BFGS.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    units: Vec<usize>,
}

impl Layout {
    pub fn new(units: Vec<usize>) -> Layout {
        Layout { units }
    }

    fn coef_sizes(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        self.units.windows(2).map(|w| (w[0], w[1]))
    }

    /// How many weights there are.
    pub fn len(&self) -> usize {
        self.coef_sizes().map(|(i, o)| i * o + o).sum()
    }

    /// The coefficient matrices and intercepts that `theta` holds.
    pub fn views<'a>(
        &self,
        theta: &'a [f64],
    ) -> (Vec<ArrayView2<'a, f64>>, Vec<ArrayView1<'a, f64>>) {
        let (mut coefs, mut intercepts) = (Vec::new(), Vec::new());
        let mut rest = theta;
        for (fan_in, fan_out) in self.coef_sizes() {
            let (c, r) = rest.split_at(fan_in * fan_out);
            coefs.push(ArrayView2::from_shape((fan_in, fan_out), c).expect("layout"));
            rest = r;
        }
        for (_, fan_out) in self.coef_sizes() {
            let (b, r) = rest.split_at(fan_out);
            intercepts.push(ArrayView1::from(b));
            rest = r;
        }
        (coefs, intercepts)
    }

    /// [`Layout::views`], writable.
    pub fn views_mut<'a>(
        &self,
        theta: &'a mut [f64],
    ) -> (Vec<ArrayViewMut2<'a, f64>>, Vec<ArrayViewMut1<'a, f64>>) {
        let (mut coefs, mut intercepts) = (Vec::new(), Vec::new());
        let mut rest = theta;
        for (fan_in, fan_out) in self.coef_sizes() {
            let (c, r) = rest.split_at_mut(fan_in * fan_out);
            coefs.push(ArrayViewMut2::from_shape((fan_in, fan_out), c).expect("layout"));
            rest = r;
        }
        for (_, fan_out) in self.coef_sizes() {
            let (b, r) = rest.split_at_mut(fan_out);
            intercepts.push(ArrayViewMut1::from(b));
            rest = r;
        }
        (coefs, intercepts)
    }

    /// Owned copies of the coefficient matrices and intercepts that `theta` holds.
    pub fn unpack(&self, theta: &[f64]) -> (Vec<Array2<f64>>, Vec<Array1<f64>>) {
        let (coefs, intercepts) = self.views(theta);
        (
            coefs.iter().map(|c| c.to_owned()).collect(),
            intercepts.iter().map(|b| b.to_owned()).collect(),
        )
    }

    /// Glorot-uniform initial weights: every weight and intercept of a layer uniform in
    /// ±√(factor / (fan_in + fan_out)), factor 2 for logistic hidden units and 6 otherwise;
    /// drawn layer by layer, coefficients (row by row) before intercepts, as scikit-learn
    /// draws them.
    pub fn glorot(&self, activation: Activation, rng: &mut impl Rng) -> Vec<f64> {
        let factor = if activation == Activation::Logistic {
            2.0
        } else {
            6.0
        };
        let mut theta = vec![0.0; self.len()];
        let (mut coefs, mut intercepts) = self.views_mut(&mut theta);
        for (coef, intercept) in coefs.iter_mut().zip(&mut intercepts) {
            let (fan_in, fan_out) = coef.dim();
            let bound = (factor / (fan_in + fan_out) as f64).sqrt();
            for v in coef.iter_mut().chain(intercept.iter_mut()) {
                *v = rng.random_range(-bound..bound);
            }
        }
        theta
    }
}

/// The output of the network of `coefs` and `intercepts` for rows `x`.
pub(crate) fn forward(
    coefs: &[ArrayView2<'_, f64>],
    intercepts: &[ArrayView1<'_, f64>],
    activation: Activation,
    output: Output,
    x: ArrayView2<'_, f64>,
) -> Array2<f64> {
    let last = coefs.len() - 1;
    let mut a = Array2::zeros((0, 0));
    for (i, (w, b)) in coefs.iter().zip(intercepts).enumerate() {
        let mut z = if i == 0 { x.dot(w) } else { a.dot(w) };
        z += b;
        if i == last {
            output.apply(&mut z);
        } else {
            activation.apply(&mut z);
        }
        a = z;
    }
    a
}

/// The objective the solvers minimise: the mean loss of a batch plus
/// `alpha/2·‖W‖²/rows`, the intercepts unpenalised.
pub(crate) struct Objective<'a> {
    pub layout: &'a Layout,
    pub activation: Activation,
    pub output: Output,
    pub alpha: f64,
}

impl Objective<'_> {
    /// The objective at weights `theta` for rows `x` with targets `y` (rows × outputs); its
    /// gradient goes into `grad`, `(aᵀδ + alpha·W)/rows` per layer by back-propagation.
    pub fn loss_grad(
        &self,
        theta: &[f64],
        x: ArrayView2<'_, f64>,
        y: ArrayView2<'_, f64>,
        grad: &mut [f64],
    ) -> f64 {
        let n = x.nrows() as f64;
        let (coefs, intercepts) = self.layout.views(theta);
        let layers = coefs.len();
        let mut activations: Vec<Array2<f64>> = Vec::with_capacity(layers);
        for (i, (w, b)) in coefs.iter().zip(&intercepts).enumerate() {
            let mut z = match i {
                0 => x.dot(w),
                _ => activations[i - 1].dot(w),
            };
            z += b;
            if i + 1 == layers {
                self.output.apply(&mut z);
            } else {
                self.activation.apply(&mut z);
            }
            activations.push(z);
        }
        let squares: f64 = coefs.iter().flat_map(|w| w.iter()).map(|v| v * v).sum();
        let loss = self.output.loss(y, &activations[layers - 1]) + 0.5 * self.alpha * squares / n;

        let (mut coef_grads, mut intercept_grads) = self.layout.views_mut(grad);
        // The output's delta, ∂loss/∂z, is `output − y` for each canonical loss and link.
        let mut delta = activations.pop().expect("a layer");
        delta -= &y;
        for i in (0..layers).rev() {
            let input = match i {
                0 => x.view(),
                _ => activations[i - 1].view(),
            };
            coef_grads[i].assign(&coefs[i]);
            general_mat_mul(
                1.0 / n,
                &input.t(),
                &delta,
                self.alpha / n,
                &mut coef_grads[i],
            );
            intercept_grads[i].assign(&delta.sum_axis(Axis(0)));
            intercept_grads[i].mapv_inplace(|v| v / n);
            if i > 0 {
                let mut next = delta.dot(&coefs[i].t());
                self.activation.derivative(&activations[i - 1], &mut next);
                delta = next;
            }
        }
        loss
    }
}

/// Adds the forward pass of the network to `g`, from `x` (float [N, features]) to the last
/// layer's sums, before the output activation, which go into `output`.
pub(crate) fn write_layers(
    g: &mut Graph,
    x: &str,
    coefs: &[Array2<f64>],
    intercepts: &[Array1<f64>],
    activation: Activation,
    output: &str,
) {
    let last = coefs.len() - 1;
    let mut input = x.to_string();
    for (i, (w, b)) in coefs.iter().zip(intercepts).enumerate() {
        let (fan_in, fan_out) = w.dim();
        let weights: Vec<f32> = w.iter().map(|&v| v as f32).collect();
        let bias: Vec<f32> = b.iter().map(|&v| v as f32).collect();
        let w = g.constant_f32(
            &format!("mlp_coef_{i}"),
            &[fan_in as u64, fan_out as u64],
            weights,
        );
        let b = g.constant_f32(&format!("mlp_intercept_{i}"), &[fan_out as u64], bias);
        let z = if i == last {
            output.to_string()
        } else {
            format!("mlp_z_{i}")
        };
        g.node(
            "Gemm",
            &[&input, &w, &b],
            &[&z],
            vec![("alpha", Attr::Float(1.0)), ("beta", Attr::Float(1.0))],
        );
        input = match activation.onnx_op() {
            Some(op) if i < last => {
                let h = format!("mlp_h_{i}");
                g.node(op, &[&z], &[&h], vec![]);
                h
            }
            _ => z,
        };
    }
}
