//! The solvers, as scikit-learn's `_fit_stochastic`, `_fit_lbfgs` and its
//! `_stochastic_optimizers` run them.

use super::network::{Objective, Output, forward};
use super::{LearningRate, MlpParams, Solver};
use crate::lbfgs;
use crate::{Error, Result, metrics};
use ndarray::{Array1, Array2, ArrayView2, Axis, s};
use rand::Rng;
use rand::seq::SliceRandom;

/// What the validation rows are scored against, and how a split keeps classes in proportion.
pub(crate) enum Truth<'a> {
    /// Class indices: accuracy, and a stratified split.
    Classes(&'a [usize]),
    /// Numbers: R².
    Values(&'a [f64]),
}

/// The weights a solver found, and how it got there.
#[derive(Debug)]
pub(crate) struct Trained {
    /// Every weight, as `Layout` lays them out.
    pub theta: Vec<f64>,
    /// How training went.
    pub training: Training,
}

/// How a network's training went: scikit-learn's `n_iter_`, `loss_`, `loss_curve_`,
/// `validation_scores_`, `best_validation_score_` and `best_loss_`, kept for training logs.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Training {
    /// Epochs (sgd, adam) or iterations (lbfgs) the solver ran.
    pub n_iter: u64,
    /// The loss at the end (sgd, adam: of the last epoch).
    pub loss: f64,
    /// The loss after each epoch of sgd or adam; empty for lbfgs.
    pub loss_curve: Vec<f64>,
    /// The loss after each lbfgs iteration, `n_iter` values (scikit-learn records none for
    /// lbfgs); empty for sgd and adam.
    pub lbfgs_losses: Vec<f64>,
    /// The held-out score (accuracy or R²) after each epoch with early stopping; empty
    /// without.
    pub validation_scores: Vec<f64>,
    /// The best of `validation_scores`, whose weights the model keeps.
    pub best_validation_score: Option<f64>,
    /// The lowest epoch loss, for sgd and adam without early stopping.
    pub best_loss: Option<f64>,
    /// Whether the solver stopped by its own rule before `max_iter` (or `max_fun`).
    pub converged: bool,
    /// What scikit-learn warns about for this fit (as `Fitted::warnings` returns it).
    pub warnings: Vec<String>,
}

impl Training {
    /// The loss per epoch (sgd, adam) or iteration (lbfgs) and, with early stopping, the
    /// held-out score per epoch; lbfgs stopped before its first iteration records its loss
    /// at step 0.
    pub fn curves(&self) -> Vec<crate::Curve> {
        let mut curves = vec![if !self.loss_curve.is_empty() {
            crate::Curve::from_values("loss", &self.loss_curve)
        } else if !self.lbfgs_losses.is_empty() {
            crate::Curve::from_values("loss", &self.lbfgs_losses)
        } else {
            crate::Curve {
                name: "loss".into(),
                points: vec![(self.n_iter, self.loss)],
            }
        }];
        if !self.validation_scores.is_empty() {
            curves.push(crate::Curve::from_values(
                "validation_score",
                &self.validation_scores,
            ));
        }
        curves
    }
}

/// Trains weights for rows `x` and targets `y` (rows × outputs: 0/1 columns for classes, the
/// values for a regressor), starting from Glorot-uniform weights drawn from `rng`.
pub(crate) fn train(
    params: &MlpParams,
    algorithm: &str,
    objective: &Objective<'_>,
    x: ArrayView2<'_, f64>,
    y: ArrayView2<'_, f64>,
    truth: Truth<'_>,
    rng: &mut impl Rng,
) -> Result<Trained> {
    let theta = objective.layout.glorot(params.activation, rng);
    let trained = match params.solver {
        Solver::Lbfgs => lbfgs_fit(params, algorithm, objective, x, y, theta),
        Solver::Sgd | Solver::Adam => {
            stochastic(params, algorithm, objective, x, y, truth, theta, rng)?
        }
    };
    if trained.theta.iter().any(|v| !v.is_finite()) {
        return Err(Error::Fit(
            "the solver produced non-finite weights: the features may hold large values; \
             scale them (--scale standard) or lower learning_rate_init"
                .into(),
        ));
    }
    Ok(trained)
}

fn lbfgs_fit(
    params: &MlpParams,
    algorithm: &str,
    objective: &Objective<'_>,
    x: ArrayView2<'_, f64>,
    y: ArrayView2<'_, f64>,
    theta: Vec<f64>,
) -> Trained {
    let loss_grad = |w: &Array1<f64>, g: &mut Array1<f64>| {
        let w = w.as_slice().expect("contiguous");
        let g = g.as_slice_mut().expect("contiguous");
        objective.loss_grad(w, x, y, g)
    };
    let outcome = lbfgs::minimize(
        loss_grad,
        Array1::from(theta),
        lbfgs::Options::scipy(params.max_iter, params.tol, params.max_fun),
    );
    let theta = outcome.x.to_vec();
    let mut scratch = vec![0.0; theta.len()];
    let loss = objective.loss_grad(&theta, x, y, &mut scratch);
    let n_iter = outcome.n_iter;
    let warning = match outcome.stop {
        lbfgs::Stop::Converged => None,
        lbfgs::Stop::MaxIter => Some(format!(
            "{algorithm}: lbfgs failed to converge after {n_iter} iteration(s) (status=1): \
             STOP: TOTAL NO. OF ITERATIONS REACHED LIMIT; increase the number of iterations \
             to improve the convergence (max_iter={}, e.g. --set max_iter={})",
            params.max_iter,
            params.max_iter.saturating_mul(5)
        )),
        lbfgs::Stop::MaxFun => Some(format!(
            "{algorithm}: lbfgs failed to converge after {n_iter} iteration(s) (status=1): \
             STOP: TOTAL NO. OF F,G EVALUATIONS EXCEEDS LIMIT (max_fun={}); the model is kept \
             as it stands",
            params.max_fun
        )),
        lbfgs::Stop::LineSearch => Some(format!(
            "{algorithm}: lbfgs failed to converge after {n_iter} iteration(s) (status=2): \
             ABNORMAL: no step along the search direction decreased the loss; the model is \
             kept as it stands: scale the features (--scale standard)"
        )),
    };
    Trained {
        theta,
        training: Training {
            n_iter,
            loss,
            loss_curve: Vec::new(),
            lbfgs_losses: outcome.objective,
            validation_scores: Vec::new(),
            best_validation_score: None,
            best_loss: None,
            converged: warning.is_none(),
            warnings: warning.into_iter().collect(),
        },
    }
}

/// Minibatch sgd or adam, epoch by epoch.
#[allow(clippy::too_many_arguments)]
fn stochastic(
    params: &MlpParams,
    algorithm: &str,
    objective: &Objective<'_>,
    x: ArrayView2<'_, f64>,
    y: ArrayView2<'_, f64>,
    truth: Truth<'_>,
    mut theta: Vec<f64>,
    rng: &mut impl Rng,
) -> Result<Trained> {
    let mut warnings = Vec::new();
    let held_out = if params.early_stopping {
        Some(validation_split(params, x, y, &truth, rng)?)
    } else {
        None
    };
    let (x, y) = match &held_out {
        Some(split) => (split.x_train.view(), split.y_train.view()),
        None => (x.view(), y.view()),
    };
    let n = x.nrows();
    let batch = match params.batch_size {
        None => n.min(200),
        Some(b) => {
            if b > n {
                warnings.push(format!(
                    "{algorithm}: Got `batch_size` less than 1 or larger than sample size. It \
                     is going to be clipped (batch_size={b}, {n} training rows)"
                ));
            }
            b.clamp(1, n)
        }
    };
    let mut optimizer = Optimizer::new(params, theta.len());
    let mut order: Vec<usize> = (0..n).collect();
    let mut grad = vec![0.0; theta.len()];
    let mut record = Record::new(params);
    let mut samples_seen = 0u64;
    let mut stopped = false;
    for _ in 0..params.max_iter {
        if params.shuffle {
            order.shuffle(rng);
        }
        let mut accumulated = 0.0;
        for (b, rows) in order.chunks(batch).enumerate() {
            let batch_loss = if params.shuffle {
                let xb = x.select(Axis(0), rows);
                let yb = y.select(Axis(0), rows);
                objective.loss_grad(&theta, xb.view(), yb.view(), &mut grad)
            } else {
                let range = s![b * batch..b * batch + rows.len(), ..];
                objective.loss_grad(&theta, x.slice(range), y.slice(range), &mut grad)
            };
            accumulated += batch_loss * rows.len() as f64;
            optimizer.update(&mut theta, &grad);
        }
        record.n_iter += 1;
        samples_seen += n as u64;
        record.loss_curve.push(accumulated / n as f64);
        match &held_out {
            Some(split) => record.validated(&theta, split.score(objective, &theta)),
            None => record.trained(),
        }
        optimizer.iteration_ends(samples_seen);
        if record.no_improvement > params.n_iter_no_change {
            if optimizer.trigger_stopping() {
                stopped = true;
                break;
            }
            record.no_improvement = 0;
        }
    }
    if !stopped {
        warnings.push(format!(
            "{algorithm}: Stochastic Optimizer: Maximum iterations ({}) reached and the \
             optimization hasn't converged yet; the model is kept as it stands: raise max_iter \
             (e.g. --set max_iter={})",
            params.max_iter,
            params.max_iter.saturating_mul(5)
        ));
    }
    if held_out.is_some() {
        theta = record.best_theta.take().unwrap_or(theta);
    }
    Ok(Trained {
        theta,
        training: Training {
            n_iter: record.n_iter,
            loss: record.loss_curve.last().copied().unwrap_or(f64::NAN),
            loss_curve: record.loss_curve,
            lbfgs_losses: Vec::new(),
            validation_scores: record.validation_scores,
            best_validation_score: held_out.is_some().then_some(record.best_score),
            best_loss: (!params.early_stopping).then_some(record.best_loss),
            converged: stopped,
            warnings,
        },
    })
}

/// The no-improvement count of `_update_no_improvement_count`, and what it compares.
struct Record {
    tol: f64,
    n_iter: u64,
    loss_curve: Vec<f64>,
    validation_scores: Vec<f64>,
    best_loss: f64,
    best_score: f64,
    best_theta: Option<Vec<f64>>,
    no_improvement: u64,
}

impl Record {
    fn new(params: &MlpParams) -> Record {
        Record {
            tol: params.tol,
            n_iter: 0,
            loss_curve: Vec::new(),
            validation_scores: Vec::new(),
            best_loss: f64::INFINITY,
            best_score: f64::NEG_INFINITY,
            best_theta: None,
            no_improvement: 0,
        }
    }

    /// After an epoch without early stopping: did the training loss improve by `tol`?
    fn trained(&mut self) {
        let loss = *self.loss_curve.last().expect("an epoch");
        if loss > self.best_loss - self.tol {
            self.no_improvement += 1;
        } else {
            self.no_improvement = 0;
        }
        if loss < self.best_loss {
            self.best_loss = loss;
        }
    }

    /// After an epoch with early stopping: did the validation score improve by `tol`? The
    /// best weights so far are kept.
    fn validated(&mut self, theta: &[f64], score: f64) {
        self.validation_scores.push(score);
        if score < self.best_score + self.tol {
            self.no_improvement += 1;
        } else {
            self.no_improvement = 0;
        }
        if score > self.best_score {
            self.best_score = score;
            self.best_theta = Some(theta.to_vec());
        }
    }
}

/// sgd's or adam's state.
enum Optimizer {
    Sgd {
        rate: f64,
        init: f64,
        schedule: LearningRate,
        power_t: f64,
        momentum: f64,
        nesterov: bool,
        velocities: Vec<f64>,
    },
    Adam {
        init: f64,
        beta_1: f64,
        beta_2: f64,
        epsilon: f64,
        t: i32,
        ms: Vec<f64>,
        vs: Vec<f64>,
    },
}

impl Optimizer {
    fn new(params: &MlpParams, len: usize) -> Optimizer {
        match params.solver {
            Solver::Sgd => Optimizer::Sgd {
                rate: params.learning_rate_init,
                init: params.learning_rate_init,
                schedule: params.learning_rate,
                power_t: params.power_t,
                momentum: params.momentum,
                nesterov: params.nesterovs_momentum,
                velocities: vec![0.0; len],
            },
            _ => Optimizer::Adam {
                init: params.learning_rate_init,
                beta_1: params.beta_1,
                beta_2: params.beta_2,
                epsilon: params.epsilon,
                t: 0,
                ms: vec![0.0; len],
                vs: vec![0.0; len],
            },
        }
    }

    /// One step against gradient `grad`.
    fn update(&mut self, theta: &mut [f64], grad: &[f64]) {
        match self {
            Optimizer::Sgd {
                rate,
                momentum,
                nesterov,
                velocities,
                ..
            } => {
                for ((w, v), &g) in theta.iter_mut().zip(velocities.iter_mut()).zip(grad) {
                    *v = *momentum * *v - *rate * g;
                    *w += if *nesterov {
                        *momentum * *v - *rate * g
                    } else {
                        *v
                    };
                }
            }
            Optimizer::Adam {
                init,
                beta_1,
                beta_2,
                epsilon,
                t,
                ms,
                vs,
            } => {
                *t = t.saturating_add(1);
                let rate = *init * (1.0 - beta_2.powi(*t)).sqrt() / (1.0 - beta_1.powi(*t));
                for (((w, m), v), &g) in theta
                    .iter_mut()
                    .zip(ms.iter_mut())
                    .zip(vs.iter_mut())
                    .zip(grad)
                {
                    *m = *beta_1 * *m + (1.0 - *beta_1) * g;
                    *v = *beta_2 * *v + (1.0 - *beta_2) * g * g;
                    *w -= rate * *m / (v.sqrt() + *epsilon);
                }
            }
        }
    }

    /// At the end of an epoch, `samples_seen` rows into training: `invscaling` shrinks the
    /// step.
    fn iteration_ends(&mut self, samples_seen: u64) {
        if let Optimizer::Sgd {
            rate,
            init,
            schedule: LearningRate::Invscaling,
            power_t,
            ..
        } = self
        {
            *rate = *init / ((samples_seen + 1) as f64).powf(*power_t);
        }
    }

    /// After `n_iter_no_change` epochs without improvement: whether to stop; `adaptive`
    /// divides its step by 5 instead, until it is at most 1e-6.
    fn trigger_stopping(&mut self) -> bool {
        match self {
            Optimizer::Sgd {
                rate,
                schedule: LearningRate::Adaptive,
                ..
            } => {
                if *rate <= 1e-6 {
                    return true;
                }
                *rate /= 5.0;
                false
            }
            _ => true,
        }
    }
}

/// The rows early stopping trains on and those it scores.
struct Split {
    x_train: Array2<f64>,
    y_train: Array2<f64>,
    x_val: Array2<f64>,
    truth: ValTruth,
}

enum ValTruth {
    Classes(Vec<usize>),
    Values(Vec<f64>),
}

impl Split {
    /// The held-out rows' accuracy or R² under weights `theta`; NaN when the network's
    /// outputs are not finite.
    fn score(&self, objective: &Objective<'_>, theta: &[f64]) -> f64 {
        let (coefs, intercepts) = objective.layout.views(theta);
        let out = forward(
            &coefs,
            &intercepts,
            objective.activation,
            objective.output,
            self.x_val.view(),
        );
        if out.iter().any(|v| !v.is_finite()) {
            return f64::NAN;
        }
        match &self.truth {
            ValTruth::Classes(truth) => {
                let predicted = class_indices(objective.output, &out);
                metrics::accuracy(truth, &predicted)
            }
            ValTruth::Values(truth) => metrics::r2(truth, &out.column(0).to_vec()),
        }
    }
}

/// The class of each row of a classifier's outputs: the second class where the logistic
/// unit's probability is above one half, else the most probable class (the first of ties).
pub(crate) fn class_indices(output: Output, out: &Array2<f64>) -> Vec<usize> {
    match output {
        Output::Logistic => out
            .column(0)
            .iter()
            .map(|&p| usize::from(p > 0.5))
            .collect(),
        _ => crate::classifier::argmax_rows(out),
    }
}

/// scikit-learn's `train_test_split(test_size=validation_fraction)` with the same generator:
/// `ceil(fraction·rows)` held out, in proportion to the classes for a classifier.
fn validation_split(
    params: &MlpParams,
    x: ArrayView2<'_, f64>,
    y: ArrayView2<'_, f64>,
    truth: &Truth<'_>,
    rng: &mut impl Rng,
) -> Result<Split> {
    let n = x.nrows();
    let n_val = (params.validation_fraction * n as f64).ceil() as usize;
    let n_train = n.saturating_sub(n_val);
    if n_val < 2 || n_train == 0 {
        return Err(Error::TooFewRows(format!(
            "early stopping holds out {n_val} of {n} rows (validation_fraction={}): the \
             validation set needs at least 2 and the training set 1; raise \
             validation_fraction or turn early_stopping off",
            params.validation_fraction
        )));
    }
    let (train, val) = match truth {
        Truth::Classes(classes) => stratified(classes, n_train, n_val, rng),
        Truth::Values(_) => {
            let mut order: Vec<usize> = (0..n).collect();
            order.shuffle(rng);
            let train = order[n_val..].to_vec();
            order.truncate(n_val);
            (train, order)
        }
    };
    Ok(Split {
        x_train: x.select(Axis(0), &train),
        y_train: y.select(Axis(0), &train),
        x_val: x.select(Axis(0), &val),
        truth: match truth {
            Truth::Classes(c) => ValTruth::Classes(val.iter().map(|&i| c[i]).collect()),
            Truth::Values(v) => ValTruth::Values(val.iter().map(|&i| v[i]).collect()),
        },
    })
}

/// Row indices for training and validation, each class split in proportion to its size
/// (scikit-learn's `StratifiedShuffleSplit` and its `_approximate_mode`).
fn stratified(
    classes: &[usize],
    n_train: usize,
    n_val: usize,
    rng: &mut impl Rng,
) -> (Vec<usize>, Vec<usize>) {
    let n_classes = classes.iter().max().map_or(0, |m| m + 1);
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); n_classes];
    for (row, &c) in classes.iter().enumerate() {
        members[c].push(row);
    }
    let counts: Vec<usize> = members.iter().map(Vec::len).collect();
    let train_counts = approximate_mode(&counts, n_train, rng);
    let rest: Vec<usize> = counts
        .iter()
        .zip(&train_counts)
        .map(|(c, t)| c - t)
        .collect();
    let val_counts = approximate_mode(&rest, n_val, rng);
    let (mut train, mut val) = (Vec::with_capacity(n_train), Vec::with_capacity(n_val));
    for ((rows, t), v) in members.iter_mut().zip(train_counts).zip(val_counts) {
        rows.shuffle(rng);
        train.extend_from_slice(&rows[..t]);
        val.extend_from_slice(&rows[t..t + v]);
    }
    train.shuffle(rng);
    val.shuffle(rng);
    (train, val)
}

/// Splits `draws` over classes of sizes `counts` in proportion, the remainder going to the
/// largest fractional parts (ties broken at random), never more than a class holds.
fn approximate_mode(counts: &[usize], draws: usize, rng: &mut impl Rng) -> Vec<usize> {
    let total: usize = counts.iter().sum();
    if total == 0 {
        return vec![0; counts.len()];
    }
    let exact: Vec<f64> = counts
        .iter()
        .map(|&c| c as f64 * draws as f64 / total as f64)
        .collect();
    let mut drawn: Vec<usize> = exact.iter().map(|v| v.floor() as usize).collect();
    let mut missing = draws.saturating_sub(drawn.iter().sum());
    let mut order: Vec<usize> = (0..counts.len()).collect();
    order.shuffle(rng);
    order.sort_by(|&a, &b| {
        let (ra, rb) = (exact[a] - exact[a].floor(), exact[b] - exact[b].floor());
        rb.total_cmp(&ra)
    });
    for class in order {
        if missing == 0 {
            break;
        }
        if drawn[class] < counts[class] {
            drawn[class] += 1;
            missing -= 1;
        }
    }
    drawn
}
