//! The noise of diffprivlib's mechanisms that skiff's private estimators use, with the same
//! distributions (not the same random streams): truncated and bounded-domain Laplace,
//! truncated geometric, and the vector mechanism of objective perturbation.

use rand::Rng;
use rand_distr::{Distribution, Gamma, StandardNormal};

/// A Laplace(0, `scale`) draw: diffprivlib's sum of two log-cosine terms of four uniforms
/// (Holohan & Braghin 2021).
fn laplace<R: Rng>(rng: &mut R, scale: f64) -> f64 {
    let mut u = || rng.random::<f64>();
    let (u1, u2, u3, u4) = (u(), u(), u(), u());
    let standard = (1.0 - u1).ln() * (std::f64::consts::PI * u2).cos()
        + (1.0 - u3).ln() * (std::f64::consts::PI * u4).cos();
    -scale * standard
}

/// diffprivlib's `LaplaceTruncated`: `value` plus Laplace noise of scale
/// `sensitivity / epsilon`, clamped to `[lower, upper]`.
pub(crate) fn laplace_truncated<R: Rng>(
    rng: &mut R,
    value: f64,
    epsilon: f64,
    sensitivity: f64,
    (lower, upper): (f64, f64),
) -> f64 {
    if epsilon.is_infinite() {
        return value.clamp(lower, upper);
    }
    (value + laplace(rng, sensitivity / epsilon)).clamp(lower, upper)
}

/// diffprivlib's `LaplaceBoundedDomain`: Laplace noise conditioned on landing in
/// `[lower, upper]`, its scale widened until the conditioning keeps `epsilon` (the fixed
/// point of `_find_scale`), drawn by rejection.
pub(crate) fn laplace_bounded_domain<R: Rng>(
    rng: &mut R,
    value: f64,
    epsilon: f64,
    sensitivity: f64,
    (lower, upper): (f64, f64),
) -> f64 {
    let value = value.clamp(lower, upper);
    let scale = bounded_domain_scale(epsilon, sensitivity, upper - lower);
    if scale == 0.0 {
        return value;
    }
    // Each draw lands inside with probability at least about a half (the value is inside),
    // so a thousand tries fail with probability below 2^-1000.
    for _ in 0..1000 {
        let noisy = value + laplace(rng, scale);
        if (lower..=upper).contains(&noisy) {
            return noisy;
        }
    }
    value
}

/// The scale `b` with `b = sensitivity / (epsilon - ln Δc(b))`, by diffprivlib's bisection.
fn bounded_domain_scale(epsilon: f64, sensitivity: f64, diameter: f64) -> f64 {
    if epsilon.is_infinite() || sensitivity == 0.0 {
        return 0.0;
    }
    let delta_c = |shape: f64| {
        if shape == 0.0 {
            return 2.0;
        }
        (2.0 - (-sensitivity / shape).exp() - (-(diameter - sensitivity) / shape).exp())
            / (1.0 - (-diameter / shape).exp())
    };
    let f = |shape: f64| sensitivity / (epsilon - delta_c(shape).ln());
    let mut left = sensitivity / epsilon;
    let mut right = f(left);
    let mut old = (right - left) * 2.0;
    // Bisection until the interval stops shrinking: at most about 2,100 halvings of a double.
    for _ in 0..4096 {
        if old <= right - left || old.is_nan() {
            break;
        }
        old = right - left;
        let middle = (right + left) / 2.0;
        let at = f(middle);
        if at >= middle {
            left = middle;
        }
        if at <= middle {
            right = middle;
        }
    }
    (right + left) / 2.0
}

/// diffprivlib's `GeometricTruncated` at sensitivity 1: `value` plus two-sided geometric
/// noise with `q = e^-epsilon`, clamped to `[lower, upper]`.
pub(crate) fn geometric_truncated<R: Rng>(
    rng: &mut R,
    value: i64,
    epsilon: f64,
    (lower, upper): (i64, i64),
) -> i64 {
    if epsilon.is_infinite() {
        return value.clamp(lower, upper);
    }
    let scale = -epsilon;
    let unif = (rng.random::<f64>() - 0.5) * (1.0 + scale.exp());
    let sign = if unif < 0.0 { -1.0 } else { 1.0 };
    let noise = sign * ((sign * unif).ln() / scale).floor();
    ((value as f64 + noise).round() as i64).clamp(lower, upper)
}

/// The noise of diffprivlib's `Vector` mechanism (objective perturbation, Chaudhuri, Monteleoni
/// & Sarwate 2011): a direction uniform on the sphere times a Gamma(`dimension`,
/// 2·data_sensitivity/ε') length, and the extra ridge `delta` when ε' would not be positive.
/// The objective to minimise becomes `J(θ) + β·θ/n + δ/2·‖θ‖²`.
pub(crate) struct VectorNoise {
    /// β, the noise vector.
    pub beta: Vec<f64>,
    /// δ, the extra ridge.
    pub delta: f64,
}

/// Draws the vector mechanism's noise for an objective with `function_sensitivity` (0.25 for
/// the logistic loss), `data_sensitivity` (the rows' norm bound), penalty `alpha` (1/C) and
/// `n` rows.
pub(crate) fn vector_noise<R: Rng>(
    rng: &mut R,
    epsilon: f64,
    function_sensitivity: f64,
    data_sensitivity: f64,
    alpha: f64,
    dimension: usize,
    n: usize,
) -> VectorNoise {
    let c = function_sensitivity * data_sensitivity;
    let mut epsilon_p = epsilon - 2.0 * (1.0 + c / alpha).ln();
    let mut delta = 0.0;
    if epsilon_p <= 0.0 {
        delta = (c / (epsilon / 4.0).exp_m1() - alpha) / n as f64;
        epsilon_p = epsilon / 2.0;
    }
    let scale = data_sensitivity * 2.0 / epsilon_p;
    if scale == 0.0 {
        return VectorNoise {
            beta: vec![0.0; dimension],
            delta,
        };
    }
    let direction: Vec<f64> = (0..dimension).map(|_| StandardNormal.sample(rng)).collect();
    let norm = direction.iter().map(|v| v * v).sum::<f64>().sqrt();
    let length = Gamma::new(dimension as f64, scale)
        .expect("a positive shape and scale")
        .sample(rng);
    VectorNoise {
        beta: direction.iter().map(|v| v / norm * length).collect(),
        delta,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    #[test]
    fn laplace_noise_has_the_laplace_mean_absolute_deviation() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let n = 200_000;
        let mad: f64 = (0..n).map(|_| laplace(&mut rng, 2.0).abs()).sum::<f64>() / n as f64;
        assert!((mad - 2.0).abs() < 0.02, "{mad}");
    }

    #[test]
    fn geometric_noise_has_the_two_sided_geometric_zero_mass() {
        // P(0) = (1 - q) / (1 + q) with q = e^-1.
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        let n = 200_000;
        let zeros = (0..n)
            .filter(|_| geometric_truncated(&mut rng, 0, 1.0, (-100, 100)) == 0)
            .count();
        let q = (-1.0f64).exp();
        let expected = (1.0 - q) / (1.0 + q);
        assert!((zeros as f64 / n as f64 - expected).abs() < 0.005);
    }

    #[test]
    fn bounded_domain_draws_stay_inside_with_a_wider_scale() {
        let scale = bounded_domain_scale(1.0, 1.0, 4.0);
        assert!(scale > 1.0, "{scale}");
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        for _ in 0..1000 {
            let v = laplace_bounded_domain(&mut rng, 0.5, 1.0, 1.0, (0.0, 4.0));
            assert!((0.0..=4.0).contains(&v));
        }
        assert_eq!(bounded_domain_scale(f64::INFINITY, 1.0, 4.0), 0.0);
    }

    #[test]
    fn vector_noise_length_follows_its_gamma() {
        let mut rng = ChaCha20Rng::seed_from_u64(4);
        let n = 20_000;
        // epsilon 2, sensitivities 0.25·1, alpha 1: ε' = 2 - 2 ln 1.25, scale = 2/ε'.
        let scale = 2.0 / (2.0 - 2.0 * 1.25f64.ln());
        let mean: f64 = (0..n)
            .map(|_| {
                let noise = vector_noise(&mut rng, 2.0, 0.25, 1.0, 1.0, 3, 10);
                assert_eq!(noise.delta, 0.0);
                noise.beta.iter().map(|v| v * v).sum::<f64>().sqrt()
            })
            .sum::<f64>()
            / n as f64;
        assert!((mean / (3.0 * scale) - 1.0).abs() < 0.02, "{mean}");
        let small = vector_noise(&mut rng, 0.1, 0.25, 1.0, 0.01, 3, 10);
        assert!(small.delta > 0.0);
    }
}
