//! Limited-memory BFGS in f64, run as scipy's L-BFGS-B runs scikit-learn's `lbfgs` solvers
//! (without bounds): ten correction pairs, a first step of `1/‖g‖`, a line search for the
//! strong Wolfe conditions (sufficient decrease 1e-3, curvature 0.9, at most 50 evaluations),
//! and scikit-learn's stopping rule: the largest gradient component at most `gtol`, or a
//! relative decrease of the objective at most `ftol`; and scipy's `maxfun`, which the MLPs'
//! `max_fun` sets.
//!
//! Starting from the same point with the same rules, it follows scikit-learn's path closely
//! enough that a model stopped at `max_iter` before converging (unscaled features) predicts
//! as scikit-learn's does; linfa's solver, whose first step is 1 whatever the gradient's
//! size, leaves such problems at their starting point.

use ndarray::Array1;
use std::collections::VecDeque;

/// When to stop.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Options {
    /// The most iterations (line searches).
    pub max_iter: u64,
    /// Converged when the gradient's largest component is at most this.
    pub gtol: f64,
    /// Converged when `(f_old - f) / max(|f_old|, |f|, 1)` is at most this.
    pub ftol: f64,
    /// Stop once the objective has been evaluated more than this many times (scipy's
    /// `maxfun`), checked after each iteration as scipy checks it.
    pub max_fun: u64,
}

impl Options {
    /// scikit-learn's settings for `LogisticRegression(tol=.., max_iter=..)`.
    pub fn scikit_learn(max_iter: u64, tol: f64) -> Options {
        Options {
            max_iter,
            gtol: tol,
            ftol: 64.0 * f64::EPSILON,
            max_fun: u64::MAX,
        }
    }

    /// scipy's defaults for `minimize(method="L-BFGS-B")` with `maxiter`, `gtol` and
    /// `maxfun` given, as `MLPClassifier` and `MLPRegressor` call it: `ftol` is
    /// `factr·eps`, 2.2e-9.
    pub fn scipy(max_iter: u64, gtol: f64, max_fun: u64) -> Options {
        Options {
            max_iter,
            gtol,
            ftol: 1e7 * f64::EPSILON,
            max_fun,
        }
    }
}

/// Why the solver stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    /// One of the stopping rules held.
    Converged,
    /// It ran `max_iter` iterations.
    MaxIter,
    /// It evaluated the objective more than `max_fun` times.
    MaxFun,
    /// No step along the search direction decreased the objective (rounding at the optimum,
    /// or a badly conditioned problem).
    LineSearch,
}

/// Where the solver stopped.
#[derive(Debug, Clone)]
pub(crate) struct Outcome {
    /// The parameters.
    pub x: Array1<f64>,
    /// Iterations run.
    pub n_iter: u64,
    /// Why it stopped.
    pub stop: Stop,
    /// The objective after each iteration, `n_iter` values (the line search makes each
    /// lower than the one before).
    pub objective: Vec<f64>,
}

/// Correction pairs kept (scipy's `maxcor`).
const MEMORY: usize = 10;
/// Evaluations one line search may use (scikit-learn's `maxls`).
const MAX_EVALUATIONS: usize = 50;
/// Sufficient decrease and curvature constants (scipy's `dcsrch`).
const C1: f64 = 1e-3;
const C2: f64 = 0.9;

/// Minimises `objective`, which returns f(x) and writes ∇f(x) into its second argument,
/// starting at `x0`.
pub(crate) fn minimize(
    mut objective: impl FnMut(&Array1<f64>, &mut Array1<f64>) -> f64,
    x0: Array1<f64>,
    options: Options,
) -> Outcome {
    let evaluations = std::cell::Cell::new(0u64);
    let mut objective = |x: &Array1<f64>, g: &mut Array1<f64>| {
        evaluations.set(evaluations.get() + 1);
        objective(x, g)
    };
    let mut x = x0;
    let mut g = Array1::zeros(x.len());
    let mut f = objective(&x, &mut g);
    let mut pairs: VecDeque<(Array1<f64>, Array1<f64>, f64)> = VecDeque::with_capacity(MEMORY);
    let mut values = Vec::new();
    let outcome = |x, n_iter, stop, objective| Outcome {
        x,
        n_iter,
        stop,
        objective,
    };
    if largest(&g) <= options.gtol {
        return outcome(x, 0, Stop::Converged, values);
    }
    for iter in 1..=options.max_iter {
        let mut d = direction(&g, &pairs);
        let mut slope = g.dot(&d);
        if pairs.is_empty() || slope.is_nan() || slope >= 0.0 {
            pairs.clear();
            d = -&g;
            slope = g.dot(&d);
        }
        // Steepest descent starts with a step of length 1; a quasi-Newton step is tried whole.
        let first = if pairs.is_empty() {
            1.0 / g.dot(&g).sqrt()
        } else {
            1.0
        };
        let found = line_search(&mut objective, &x, f, slope, &d, first).or_else(|| {
            // A stale curvature model can point badly: retry along the gradient once.
            if pairs.is_empty() {
                return None;
            }
            pairs.clear();
            d = -&g;
            line_search(&mut objective, &x, f, g.dot(&d), &d, 1.0 / g.dot(&g).sqrt())
        });
        let Some(point) = found else {
            return outcome(x, iter - 1, Stop::LineSearch, values);
        };
        let s = &point.x - &x;
        let y = &point.g - &g;
        let sy = s.dot(&y);
        if sy > f64::EPSILON * y.dot(&y) {
            if pairs.len() == MEMORY {
                pairs.pop_front();
            }
            pairs.push_back((s, y, 1.0 / sy));
        }
        let f_old = f;
        (x, f, g) = (point.x, point.f, point.g);
        values.push(f);
        if largest(&g) <= options.gtol
            || (f_old - f) <= options.ftol * f_old.abs().max(f.abs()).max(1.0)
        {
            return outcome(x, iter, Stop::Converged, values);
        }
        if iter < options.max_iter && evaluations.get() > options.max_fun {
            return outcome(x, iter, Stop::MaxFun, values);
        }
    }
    outcome(x, options.max_iter, Stop::MaxIter, values)
}

fn largest(g: &Array1<f64>) -> f64 {
    g.iter().fold(0.0, |m, v| m.max(v.abs()))
}

/// `-H·g` by the two-loop recursion over the stored pairs (s, y, 1/s·y).
fn direction(g: &Array1<f64>, pairs: &VecDeque<(Array1<f64>, Array1<f64>, f64)>) -> Array1<f64> {
    let mut q = g.clone();
    let mut alphas = Vec::with_capacity(pairs.len());
    for (s, y, rho) in pairs.iter().rev() {
        let alpha = rho * s.dot(&q);
        q.scaled_add(-alpha, y);
        alphas.push(alpha);
    }
    if let Some((s, y, _)) = pairs.back() {
        q *= s.dot(y) / y.dot(y);
    }
    for ((s, y, rho), alpha) in pairs.iter().zip(alphas.into_iter().rev()) {
        let beta = rho * y.dot(&q);
        q.scaled_add(alpha - beta, s);
    }
    -q
}

/// A trial step: its length, the objective and its slope along the direction, and (but for
/// the start) the point and its gradient.
struct Point {
    step: f64,
    f: f64,
    slope: f64,
    x: Array1<f64>,
    g: Array1<f64>,
}

/// Finds a step along `d` from `x` (objective `f0`, slope `slope0 < 0`) that meets the strong
/// Wolfe conditions, trying `first` first; `None` when no step decreases the objective.
fn line_search(
    objective: &mut impl FnMut(&Array1<f64>, &mut Array1<f64>) -> f64,
    x: &Array1<f64>,
    f0: f64,
    slope0: f64,
    d: &Array1<f64>,
    first: f64,
) -> Option<Point> {
    let evaluations = std::cell::Cell::new(0);
    let mut evaluate = |step: f64| {
        evaluations.set(evaluations.get() + 1);
        let point = x + &(d * step);
        let mut g = Array1::zeros(x.len());
        let f = objective(&point, &mut g);
        let slope = g.dot(d);
        Point {
            step,
            f,
            slope,
            x: point,
            g,
        }
    };
    let decreases = |p: &Point| p.f.is_finite() && p.f <= f0 + C1 * p.step * slope0;
    let curved = |p: &Point| p.slope.abs() <= -C2 * slope0;
    let start = Point {
        step: 0.0,
        f: f0,
        slope: slope0,
        x: Array1::zeros(0),
        g: Array1::zeros(0),
    };
    // Bracket: grow the step until it overshoots (too little decrease, or uphill).
    let mut lo = start;
    let mut step = first;
    let mut hi = loop {
        let p = evaluate(step);
        if !decreases(&p) || (lo.step > 0.0 && p.f >= lo.f) {
            break p;
        }
        if curved(&p) {
            return Some(p);
        }
        if p.slope >= 0.0 {
            break std::mem::replace(&mut lo, p);
        }
        step = p.step * 4.0;
        lo = p;
        if evaluations.get() >= MAX_EVALUATIONS {
            return Some(lo);
        }
    };
    // Zoom: shrink [lo, hi] (lo always decreases the objective) until a step is curved enough.
    while evaluations.get() < MAX_EVALUATIONS {
        let (a, b) = (lo.step, hi.step);
        let width = (b - a).abs();
        if width <= f64::EPSILON * a.abs().max(b.abs()) {
            break;
        }
        let trial = cubic_minimum(&lo, &hi)
            .filter(|t| (t - a.min(b)) >= 0.1 * width && (a.max(b) - t) >= 0.1 * width)
            .unwrap_or(0.5 * (a + b));
        let p = evaluate(trial);
        if !decreases(&p) || p.f >= lo.f {
            hi = p;
        } else {
            if curved(&p) {
                return Some(p);
            }
            if p.slope * (hi.step - lo.step) >= 0.0 {
                hi = std::mem::replace(&mut lo, p);
            } else {
                lo = p;
            }
        }
    }
    // Out of evaluations: the best step found still decreases the objective.
    (lo.step > 0.0).then_some(lo)
}

/// The minimiser of the cubic through two steps' values and slopes, where it exists.
fn cubic_minimum(a: &Point, b: &Point) -> Option<f64> {
    if !(a.f.is_finite() && b.f.is_finite() && a.slope.is_finite() && b.slope.is_finite()) {
        return None;
    }
    let d1 = a.slope + b.slope - 3.0 * (a.f - b.f) / (a.step - b.step);
    let disc = d1 * d1 - a.slope * b.slope;
    if disc < 0.0 {
        return None;
    }
    let d2 = (b.step - a.step).signum() * disc.sqrt();
    let t = b.step - (b.step - a.step) * (b.slope + d2 - d1) / (b.slope - a.slope + 2.0 * d2);
    t.is_finite().then_some(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    /// Rosenbrock's valley, the classic test of a quasi-Newton method.
    fn rosenbrock(x: &Array1<f64>, g: &mut Array1<f64>) -> f64 {
        let (a, b) = (x[0], x[1]);
        g[0] = -2.0 * (1.0 - a) - 400.0 * a * (b - a * a);
        g[1] = 200.0 * (b - a * a);
        (1.0 - a).powi(2) + 100.0 * (b - a * a).powi(2)
    }

    #[test]
    fn finds_rosenbrocks_minimum() {
        let options = Options::scikit_learn(200, 1e-8);
        let out = minimize(rosenbrock, array![-1.2, 1.0], options);
        assert_eq!(out.stop, Stop::Converged, "{out:?}");
        assert!(
            (out.x[0] - 1.0).abs() < 1e-5 && (out.x[1] - 1.0).abs() < 1e-5,
            "{out:?}"
        );
    }

    #[test]
    fn stops_at_max_iter_and_says_so() {
        let out = minimize(
            rosenbrock,
            array![-1.2, 1.0],
            Options::scikit_learn(3, 1e-8),
        );
        assert_eq!((out.stop, out.n_iter), (Stop::MaxIter, 3));
        let f = rosenbrock(&out.x, &mut Array1::zeros(2));
        assert!(f < 24.2, "the objective decreased from 24.2 to {f}");
    }

    #[test]
    fn records_the_objective_after_each_iteration() {
        let out = minimize(
            rosenbrock,
            array![-1.2, 1.0],
            Options::scikit_learn(200, 1e-8),
        );
        assert_eq!(out.objective.len() as u64, out.n_iter);
        let f = rosenbrock(&out.x, &mut Array1::zeros(2));
        assert_eq!(*out.objective.last().unwrap(), f);
        assert!(out.objective[0] < 24.2, "{:?}", out.objective);
        assert!(
            out.objective.windows(2).all(|w| w[1] <= w[0]),
            "{:?}",
            out.objective
        );
    }

    #[test]
    fn stops_after_max_fun_evaluations() {
        let options = Options {
            max_fun: 5,
            ..Options::scikit_learn(200, 1e-8)
        };
        let out = minimize(rosenbrock, array![-1.2, 1.0], options);
        assert_eq!(out.stop, Stop::MaxFun, "{out:?}");
        assert!(out.n_iter < 5, "{out:?}");
    }

    #[test]
    fn badly_scaled_quadratics_converge() {
        // Curvatures six decades apart, as unscaled features give a log-loss.
        let scales = array![1e-3, 1.0, 1e2, 1e3];
        let quadratic = |x: &Array1<f64>, g: &mut Array1<f64>| {
            g.assign(&(&scales * &(x - 1.0)));
            0.5 * (&scales * &(x - 1.0).mapv(|v| v * v)).sum()
        };
        let out = minimize(
            quadratic,
            Array1::zeros(4),
            Options::scikit_learn(500, 1e-10),
        );
        assert_eq!(out.stop, Stop::Converged, "{out:?}");
        assert!(out.x.iter().all(|v| (v - 1.0).abs() < 1e-3), "{out:?}");
    }
}
