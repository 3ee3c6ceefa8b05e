//! Model selection as scikit-learn does it: k-fold splits ([`KFold`], [`StratifiedKFold`]),
//! cross-validation of a whole fit from a table ([`cross_validate`]: the preprocessing is
//! fitted on each training fold, as a `Pipeline` is inside scikit-learn's `cross_validate`),
//! and grid or randomized search over hyperparameters ([`search`]: `GridSearchCV`,
//! `RandomizedSearchCV`), the best candidate refitted on every row.
//!
//! Folds, and candidates × folds, are fitted in parallel (rayon); results come in fold and
//! candidate order whatever the threads did.

use crate::catalog::{Fitted, Predictions, Target};
use crate::job::{self, FitReport, FitSpec, Plan};
use crate::{ClassTarget, Error, Result, Task, metrics, params};
use ndarray::{Array2, ArrayView2};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde_json::{Value, json};
use skiff_data::Table;
use skiff_onnx::{Model, metadata};
use std::collections::HashMap;
use std::fmt::Display;
use std::hash::Hash;
use std::str::FromStr;
use std::time::Instant;

/// One split of the rows: those a model is fitted on and those it is scored on, each in
/// ascending order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fold {
    /// Row indices to fit on.
    pub train: Vec<usize>,
    /// Row indices to score on.
    pub test: Vec<usize>,
}

/// scikit-learn's `KFold`: `n_splits` contiguous folds (the first `n % n_splits` one row
/// larger), of the rows in order or shuffled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KFold {
    /// How many folds; 2 or more.
    pub n_splits: usize,
    /// Shuffle the rows before cutting them into folds.
    pub shuffle: bool,
    /// The seed of the shuffle (a ChaCha8 stream, not numpy's); None draws one. Only with
    /// `shuffle`.
    pub random_state: Option<u64>,
}

impl KFold {
    /// `n_splits` folds of the rows in order.
    pub fn new(n_splits: usize) -> Self {
        KFold {
            n_splits,
            shuffle: false,
            random_state: None,
        }
    }

    /// The fold whose test rows hold each of `n_rows` rows.
    pub fn test_folds(&self, n_rows: usize) -> Result<Vec<usize>> {
        check_splits(self.n_splits, self.shuffle, self.random_state, n_rows)?;
        let mut indices: Vec<usize> = (0..n_rows).collect();
        if self.shuffle {
            shuffle(&mut indices, &mut rng(self.random_state));
        }
        let mut folds = vec![0; n_rows];
        let (size, larger) = (n_rows / self.n_splits, n_rows % self.n_splits);
        let mut start = 0;
        for fold in 0..self.n_splits {
            let stop = start + size + usize::from(fold < larger);
            for &row in &indices[start..stop] {
                folds[row] = fold;
            }
            start = stop;
        }
        Ok(folds)
    }

    /// The folds of `n_rows` rows.
    pub fn split(&self, n_rows: usize) -> Result<Vec<Fold>> {
        Ok(folds_from(&self.test_folds(n_rows)?, self.n_splits))
    }
}

/// scikit-learn's `StratifiedKFold`: folds that each hold about the same share of every class,
/// assigned as scikit-learn 1.9's `_make_test_folds` assigns them (classes in order of first
/// appearance, each class's rows given to folds in blocks, in row order unless shuffled).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StratifiedKFold {
    /// How many folds; 2 or more.
    pub n_splits: usize,
    /// Shuffle each class's fold assignments.
    pub shuffle: bool,
    /// The seed of the shuffle (a ChaCha8 stream, not numpy's); None draws one. Only with
    /// `shuffle`.
    pub random_state: Option<u64>,
}

impl StratifiedKFold {
    /// `n_splits` folds, rows in order.
    pub fn new(n_splits: usize) -> Self {
        StratifiedKFold {
            n_splits,
            shuffle: false,
            random_state: None,
        }
    }

    /// The fold whose test rows hold each row of classes `y`, and a warning where a class has
    /// fewer rows than there are folds (an error where every class has).
    pub fn test_folds<T: Eq + Hash + Display>(
        &self,
        y: &[T],
    ) -> Result<(Vec<usize>, Option<String>)> {
        let k = self.n_splits;
        check_splits(k, self.shuffle, self.random_state, y.len())?;
        // Classes numbered by first appearance.
        let mut first: HashMap<&T, usize> = HashMap::new();
        let mut names: Vec<&T> = Vec::new();
        let encoded: Vec<usize> = y
            .iter()
            .map(|label| {
                *first.entry(label).or_insert_with(|| {
                    names.push(label);
                    names.len() - 1
                })
            })
            .collect();
        let n_classes = names.len();
        let mut counts = vec![0usize; n_classes];
        for &c in &encoded {
            counts[c] += 1;
        }
        if counts.iter().all(|&n| n < k) {
            let most = counts.iter().copied().max().unwrap_or(0);
            return Err(Error::Selection(format!(
                "every class has fewer rows than the {k} folds (the largest, {}, has {most}): \
                 use {} folds or fewer",
                names[counts.iter().position(|&n| n == most).unwrap_or(0)],
                most.max(2)
            )));
        }
        let least = (0..n_classes).min_by_key(|&c| (counts[c], c)).unwrap_or(0);
        let warning = (counts[least] < k).then(|| {
            format!(
                "class {} has only {} rows, fewer than the {k} folds: some folds score none of it",
                names[least], counts[least]
            )
        });
        // Round robin over the sorted classes: how many rows of each class each fold tests
        // (scikit-learn's allocation, transposed: a row per class).
        let mut order = encoded.clone();
        order.sort_unstable();
        let mut allocation = vec![vec![0usize; k]; n_classes];
        for (i, &c) in order.iter().enumerate() {
            allocation[c][i % k] += 1;
        }
        let mut rng = self.shuffle.then(|| rng(self.random_state));
        let mut folds = vec![0; y.len()];
        for (class, per_fold) in allocation.iter().enumerate() {
            let mut for_class: Vec<usize> = per_fold
                .iter()
                .enumerate()
                .flat_map(|(fold, &n)| std::iter::repeat_n(fold, n))
                .collect();
            if let Some(rng) = rng.as_mut() {
                shuffle(&mut for_class, rng);
            }
            let rows = (0..y.len()).filter(|&i| encoded[i] == class);
            for (row, fold) in rows.zip(for_class) {
                folds[row] = fold;
            }
        }
        Ok((folds, warning))
    }

    /// The folds of rows of classes `y`, and a warning where a class has fewer rows than there
    /// are folds.
    pub fn split<T: Eq + Hash + Display>(&self, y: &[T]) -> Result<(Vec<Fold>, Option<String>)> {
        let (folds, warning) = self.test_folds(y)?;
        Ok((folds_from(&folds, self.n_splits), warning))
    }
}

fn check_splits(
    n_splits: usize,
    shuffle: bool,
    random_state: Option<u64>,
    n_rows: usize,
) -> Result<()> {
    if n_splits < 2 {
        return Err(Error::Selection(format!(
            "cross-validation needs 2 folds or more, not {n_splits} (5 is usual)"
        )));
    }
    if !shuffle && random_state.is_some() {
        return Err(Error::Selection(
            "a seed only orders shuffled rows: shuffle them too, or leave out the seed".into(),
        ));
    }
    if n_splits > n_rows {
        return Err(Error::Selection(format!(
            "cannot split {n_rows} rows into {n_splits} folds: use {n_rows} folds or fewer"
        )));
    }
    Ok(())
}

fn rng(random_state: Option<u64>) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(random_state.unwrap_or_else(params::random_seed))
}

/// Fisher-Yates.
fn shuffle<T>(items: &mut [T], rng: &mut ChaCha8Rng) {
    for i in (1..items.len()).rev() {
        items.swap(i, rng.random_range(0..=i));
    }
}

fn folds_from(test_folds: &[usize], n_splits: usize) -> Vec<Fold> {
    (0..n_splits)
        .map(|fold| {
            let (test, train): (Vec<usize>, Vec<usize>) =
                (0..test_folds.len()).partition(|&i| test_folds[i] == fold);
            Fold { train, test }
        })
        .collect()
}

/// How the rows are cut into folds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Folds {
    /// Plain k-fold.
    KFold(KFold),
    /// Stratified k-fold, for classifiers.
    Stratified(StratifiedKFold),
}

impl Folds {
    /// What scikit-learn's `cross_val_score` makes of `cv=n_splits`: stratified folds for a
    /// classifier, plain k-fold otherwise.
    pub fn for_task(
        task: Task,
        n_splits: usize,
        shuffle: bool,
        random_state: Option<u64>,
    ) -> Folds {
        match task {
            Task::Classification => Folds::Stratified(StratifiedKFold {
                n_splits,
                shuffle,
                random_state,
            }),
            _ => Folds::KFold(KFold {
                n_splits,
                shuffle,
                random_state,
            }),
        }
    }

    /// How many folds.
    pub fn n_splits(&self) -> usize {
        self.parts().0
    }

    /// scikit-learn's name for the splitter.
    pub fn name(&self) -> &'static str {
        match self {
            Folds::KFold(_) => "KFold",
            Folds::Stratified(_) => "StratifiedKFold",
        }
    }

    /// In words, e.g. `5 stratified folds, shuffled (seed 3)`.
    pub fn describe(&self) -> String {
        let (n, shuffle, seed) = self.parts();
        let kind = match self {
            Folds::KFold(_) => "",
            Folds::Stratified(_) => "stratified ",
        };
        let order = match (shuffle, seed) {
            (false, _) => String::new(),
            (true, Some(seed)) => format!(", shuffled (seed {seed})"),
            (true, None) => ", shuffled".into(),
        };
        format!("{n} {kind}folds{order}")
    }

    /// `{"splitter": "StratifiedKFold", "n_splits": 5, "shuffle": false, "random_state": null}`.
    pub fn to_json(&self) -> Value {
        let (n_splits, shuffle, random_state) = self.parts();
        json!({
            "splitter": self.name(),
            "n_splits": n_splits,
            "shuffle": shuffle,
            "random_state": random_state,
        })
    }

    fn parts(&self) -> (usize, bool, Option<u64>) {
        match *self {
            Folds::KFold(KFold {
                n_splits,
                shuffle,
                random_state,
            })
            | Folds::Stratified(StratifiedKFold {
                n_splits,
                shuffle,
                random_state,
            }) => (n_splits, shuffle, random_state),
        }
    }

    /// The same folds with a drawn seed written in, so a shuffle can be repeated.
    fn seeded(mut self) -> Folds {
        let (Folds::KFold(KFold {
            shuffle,
            random_state,
            ..
        })
        | Folds::Stratified(StratifiedKFold {
            shuffle,
            random_state,
            ..
        })) = &mut self;
        if *shuffle && random_state.is_none() {
            *random_state = Some(params::random_seed());
        }
        self
    }
}

/// A score by scikit-learn's `scoring` name; higher is better (errors are negated, as
/// scikit-learn negates them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scoring {
    /// Fraction of rows classified right.
    Accuracy,
    /// Recall averaged over the classes.
    BalancedAccuracy,
    /// F1 averaged over the classes.
    F1Macro,
    /// F1 averaged over the classes, weighted by their rows.
    F1Weighted,
    /// Minus the mean negative log-likelihood of the true classes.
    NegLogLoss,
    /// Area under the ROC curve, for two classes.
    RocAuc,
    /// Coefficient of determination.
    R2,
    /// Minus the mean squared error.
    NegMeanSquaredError,
    /// Minus the root mean squared error.
    NegRootMeanSquaredError,
    /// Minus the mean absolute error.
    NegMeanAbsoluteError,
}

impl Scoring {
    /// Every scoring, classifiers' first.
    pub const ALL: [Scoring; 10] = [
        Scoring::Accuracy,
        Scoring::BalancedAccuracy,
        Scoring::F1Macro,
        Scoring::F1Weighted,
        Scoring::NegLogLoss,
        Scoring::RocAuc,
        Scoring::R2,
        Scoring::NegMeanSquaredError,
        Scoring::NegRootMeanSquaredError,
        Scoring::NegMeanAbsoluteError,
    ];

    /// scikit-learn's name, e.g. `f1_macro`.
    pub fn name(self) -> &'static str {
        match self {
            Scoring::Accuracy => "accuracy",
            Scoring::BalancedAccuracy => "balanced_accuracy",
            Scoring::F1Macro => "f1_macro",
            Scoring::F1Weighted => "f1_weighted",
            Scoring::NegLogLoss => "neg_log_loss",
            Scoring::RocAuc => "roc_auc",
            Scoring::R2 => "r2",
            Scoring::NegMeanSquaredError => "neg_mean_squared_error",
            Scoring::NegRootMeanSquaredError => "neg_root_mean_squared_error",
            Scoring::NegMeanAbsoluteError => "neg_mean_absolute_error",
        }
    }

    /// The estimators it scores.
    pub fn task(self) -> Task {
        match self {
            Scoring::Accuracy
            | Scoring::BalancedAccuracy
            | Scoring::F1Macro
            | Scoring::F1Weighted
            | Scoring::NegLogLoss
            | Scoring::RocAuc => Task::Classification,
            _ => Task::Regression,
        }
    }

    /// The estimator's own `score`: accuracy for classifiers, R² for regressors; none for
    /// clusterers.
    pub fn default_for(task: Task) -> Option<Scoring> {
        match task {
            Task::Classification => Some(Scoring::Accuracy),
            Task::Regression => Some(Scoring::R2),
            Task::Clustering => None,
        }
    }

    /// The names of the scorings of `task`, comma separated.
    pub fn names_for(task: Task) -> String {
        Scoring::ALL
            .iter()
            .filter(|s| s.task() == task)
            .map(|s| s.name())
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn needs_probabilities(self) -> bool {
        matches!(self, Scoring::NegLogLoss | Scoring::RocAuc)
    }
}

impl FromStr for Scoring {
    type Err = Error;

    fn from_str(name: &str) -> Result<Scoring> {
        let name = name.trim();
        Scoring::ALL
            .into_iter()
            .find(|s| s.name() == name)
            .ok_or_else(|| {
                Error::Selection(format!(
                    "unknown scoring {name:?} (classifiers: {}; regressors: {})",
                    Scoring::names_for(Task::Classification),
                    Scoring::names_for(Task::Regression)
                ))
            })
    }
}

impl Display for Scoring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One fold's fit and scores.
#[derive(Debug, Clone, PartialEq)]
pub struct FoldResult {
    /// Rows fitted on.
    pub train_rows: usize,
    /// Rows scored.
    pub test_rows: usize,
    /// Seconds the fit took (preprocessing included).
    pub fit_time: f64,
    /// Seconds the scoring took.
    pub score_time: f64,
    /// A score per scoring, in the order asked.
    pub scores: Vec<f64>,
}

/// What [`cross_validate`] measured.
#[derive(Debug, Clone)]
pub struct CvReport {
    /// The estimator.
    pub algorithm: &'static str,
    /// Its hyperparameters.
    pub hyperparameters: Value,
    /// Rows cross-validated (rows without a target left out).
    pub rows: usize,
    /// The folds, with the seed of a shuffle written in.
    pub folds: Folds,
    /// The scorings, in the order of each fold's scores.
    pub scoring: Vec<Scoring>,
    /// Each fold's fit and scores, in fold order.
    pub fold_results: Vec<FoldResult>,
    /// What the user should know: rows left out, a class with fewer rows than folds, solvers
    /// that stopped early.
    pub warnings: Vec<String>,
}

impl CvReport {
    /// The scores of scoring `metric` (an index into [`CvReport::scoring`]), fold by fold.
    pub fn scores(&self, metric: usize) -> Vec<f64> {
        self.fold_results.iter().map(|f| f.scores[metric]).collect()
    }

    /// The mean of scoring `metric` over the folds.
    pub fn mean(&self, metric: usize) -> f64 {
        mean(&self.scores(metric))
    }

    /// The standard deviation of scoring `metric` over the folds (numpy's, ddof=0).
    pub fn std(&self, metric: usize) -> f64 {
        std(&self.scores(metric))
    }

    /// Everything, as `skiff cv --json` prints it.
    pub fn to_json(&self) -> Value {
        let metrics: serde_json::Map<String, Value> = self
            .scoring
            .iter()
            .enumerate()
            .map(|(i, s)| {
                (
                    s.name().to_string(),
                    json!({ "mean": self.mean(i), "std": self.std(i), "folds": self.scores(i) }),
                )
            })
            .collect();
        let folds: Vec<Value> = self
            .fold_results
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let scores: serde_json::Map<String, Value> = self
                    .scoring
                    .iter()
                    .zip(&f.scores)
                    .map(|(s, v)| (s.name().to_string(), json!(v)))
                    .collect();
                json!({
                    "fold": i,
                    "train_rows": f.train_rows,
                    "test_rows": f.test_rows,
                    "fit_time": f.fit_time,
                    "score_time": f.score_time,
                    "scores": scores,
                })
            })
            .collect();
        json!({
            "algorithm": self.algorithm,
            "hyperparameters": self.hyperparameters,
            "rows": self.rows,
            "cv": self.folds.to_json(),
            "metrics": metrics,
            "folds": folds,
            "warnings": self.warnings,
        })
    }
}

/// Cross-validates the fit `spec` describes on `table`: each fold fits the whole plan (the
/// preprocessing too, on the fold's training rows only) and scores its test rows with each of
/// `scoring` (none: the estimator's default, accuracy or R²). Rows without a target are left
/// out first, as a fit leaves them out.
pub fn cross_validate(
    table: &Table,
    spec: &FitSpec,
    folds: &Folds,
    scoring: &[Scoring],
) -> Result<CvReport> {
    cross_validate_with_progress(table, spec, folds, scoring, |_, _| {})
}

/// [`cross_validate`], calling `progress(done, total)` on this thread as folds finish.
pub fn cross_validate_with_progress(
    table: &Table,
    spec: &FitSpec,
    folds: &Folds,
    scoring: &[Scoring],
    progress: impl FnMut(usize, usize),
) -> Result<CvReport> {
    let plan = job::plan(table, spec)?;
    let scoring = scorings(&plan, scoring)?;
    let data = Data::prepare(table, &plan, folds, &scoring)?;
    let results = in_parallel(
        (0..data.folds.len()).collect(),
        |fold| data.fit_and_score(&plan, fold, &scoring),
        progress,
    );
    let mut fold_results = Vec::with_capacity(results.len());
    let mut fit_warnings = Vec::new();
    for result in results {
        let (result, warnings) = result?;
        fold_results.push(result);
        fit_warnings.push(warnings);
    }
    let mut warnings = data.warnings.clone();
    warnings.extend(tally(&fit_warnings, "folds"));
    Ok(CvReport {
        algorithm: plan.algorithm.name(),
        hyperparameters: plan.algorithm.hyperparameters(),
        rows: data.rows,
        folds: data.splitter,
        scoring,
        fold_results,
        warnings,
    })
}

/// The scorings asked for, checked against the estimator; the default where none are.
fn scorings(plan: &Plan, asked: &[Scoring]) -> Result<Vec<Scoring>> {
    let algorithm = plan.algorithm.as_ref();
    let task = algorithm.task();
    let Some(default) = Scoring::default_for(task) else {
        return Err(Error::Selection(format!(
            "{} is a clusterer: cross-validation and search score classifiers and regressors \
             against a target",
            algorithm.name()
        )));
    };
    if plan.target.is_none() {
        return Err(Error::Target(format!(
            "{} needs a target: the column it learns to predict (--target)",
            algorithm.name()
        )));
    }
    if asked.is_empty() {
        return Ok(vec![default]);
    }
    let mut scoring: Vec<Scoring> = Vec::new();
    for &s in asked {
        if s.task() != task {
            return Err(Error::Selection(format!(
                "{s} scores {}, and {} is a {}: use {}",
                if s.task() == Task::Classification {
                    "classifiers"
                } else {
                    "regressors"
                },
                algorithm.name(),
                if task == Task::Classification {
                    "classifier"
                } else {
                    "regressor"
                },
                Scoring::names_for(task)
            )));
        }
        if s == Scoring::NegLogLoss && algorithm.name() == "linear-svc" {
            return Err(Error::Selection(
                "neg_log_loss scores probabilities, and linear-svc has none (scikit-learn's \
                 LinearSVC has no predict_proba): use accuracy, f1_macro or roc_auc"
                    .into(),
            ));
        }
        if !scoring.contains(&s) {
            scoring.push(s);
        }
    }
    Ok(scoring)
}

/// The rows with a target, their folds and the truth each fold is scored against.
struct Data {
    rows: usize,
    splitter: Folds,
    folds: Vec<Fold>,
    /// Per fold, its training and its test rows.
    tables: Vec<(Table, Table)>,
    truth: Truth,
    warnings: Vec<String>,
}

enum Truth {
    /// The classes of every row, and each class's index by name.
    Classes(ClassTarget, HashMap<String, usize>),
    Values(Vec<f64>),
}

impl Data {
    fn prepare(table: &Table, plan: &Plan, folds: &Folds, scoring: &[Scoring]) -> Result<Data> {
        let mut warnings = Vec::new();
        let target = plan.target.as_deref().expect("checked by scorings");
        // The plan's missing markers are the table's and then the spec's extra ones: the
        // folds read cells as the plan does, so each fold's fit takes its table as it is.
        let mut base = table.clone();
        base.add_na_values(plan.na_values.iter().skip(table.na_values().len()).cloned());
        let kept: Vec<usize> = (0..table.n_rows())
            .filter(|&i| !plan.rows_without_target[i])
            .collect();
        let skipped = table.n_rows() - kept.len();
        if skipped > 0 {
            warnings.push(format!(
                "left out {skipped} rows whose target {target:?} is missing"
            ));
            base = base.take_rows(&kept);
        }
        if base.n_rows() == 0 {
            return Err(Error::Shape(format!(
                "{} has no rows with a target value",
                table.source()
            )));
        }
        let cells = base.column(target)?;
        let y = Target::from_cells(plan.algorithm.as_ref(), &cells)
            .map_err(|e| Error::Target(format!("target column {target:?}: {e}")))?;
        let splitter = folds.seeded();
        let (folds, truth) = match (y, splitter) {
            (Target::Classes(y), Folds::Stratified(s)) => {
                let names: Vec<String> = (0..y.classes.len()).map(|i| y.classes.name(i)).collect();
                let labels: Vec<&str> = y.indices.iter().map(|&i| names[i].as_str()).collect();
                let (folds, warning) = s.split(&labels)?;
                warnings.extend(warning);
                (folds, class_truth(y))
            }
            (Target::Classes(y), Folds::KFold(k)) => (k.split(base.n_rows())?, class_truth(y)),
            (Target::Values(y), Folds::KFold(k)) => (k.split(base.n_rows())?, Truth::Values(y)),
            (_, Folds::Stratified(_)) => {
                return Err(Error::Selection(format!(
                    "stratified folds keep each class's share of rows, and {} is a regressor, \
                     whose target has no classes: use plain k-fold",
                    plan.algorithm.name()
                )));
            }
            (Target::None, _) => unreachable!("clusterers are refused by scorings"),
        };
        if let Truth::Classes(y, _) = &truth
            && y.classes.len() != 2
            && scoring.contains(&Scoring::RocAuc)
        {
            return Err(Error::Selection(format!(
                "roc_auc scores two classes, and {target:?} has {}: use accuracy, \
                 balanced_accuracy, f1_macro, f1_weighted or neg_log_loss",
                y.classes.len()
            )));
        }
        let tables = folds
            .iter()
            .map(|f| (base.take_rows(&f.train), base.take_rows(&f.test)))
            .collect();
        Ok(Data {
            rows: base.n_rows(),
            splitter,
            folds,
            tables,
            truth,
            warnings,
        })
    }

    /// Fits `plan` on fold `fold`'s training rows and scores its test rows; the fit's warnings
    /// come back beside.
    fn fit_and_score(
        &self,
        plan: &Plan,
        fold: usize,
        scoring: &[Scoring],
    ) -> Result<(FoldResult, Vec<String>)> {
        let (train, test) = &self.tables[fold];
        let mut plan = plan.clone();
        plan.rows_without_target = vec![false; train.n_rows()];
        let start = Instant::now();
        let report = job::fit_plan_with(train, plan, false)?;
        let fit_time = start.elapsed().as_secs_f64();
        let start = Instant::now();
        let x = report.features_of(test)?;
        let scores = self.score(
            report.model.as_ref(),
            x.view(),
            &self.folds[fold].test,
            scoring,
        );
        let result = FoldResult {
            train_rows: train.n_rows(),
            test_rows: test.n_rows(),
            fit_time,
            score_time: start.elapsed().as_secs_f64(),
            scores,
        };
        Ok((result, report.warnings))
    }

    fn score(
        &self,
        model: &dyn Fitted,
        x: ArrayView2<'_, f64>,
        rows: &[usize],
        scoring: &[Scoring],
    ) -> Vec<f64> {
        let predicted = model.predict_rows(x);
        match (&self.truth, predicted) {
            (Truth::Classes(y, index), Predictions::Classes(predicted)) => {
                let truth: Vec<usize> = rows.iter().map(|&r| y.indices[r]).collect();
                // The model's classes are its training rows' ones: mapped onto every row's.
                let n_classes = y.classes.len();
                let model_classes: Vec<usize> = match model.classes() {
                    Some(classes) => (0..classes.len())
                        .map(|i| {
                            index
                                .get(&classes.name(i))
                                .copied()
                                .unwrap_or(n_classes + i)
                        })
                        .collect(),
                    None => (0..n_classes).collect(),
                };
                let predicted: Vec<usize> = predicted.iter().map(|&p| model_classes[p]).collect();
                let probabilities = scoring.iter().any(|s| s.needs_probabilities()).then(|| {
                    let scores = model.scores(x);
                    let mut full = Array2::zeros((scores.nrows(), n_classes));
                    for (j, &c) in model_classes.iter().enumerate() {
                        if c < n_classes {
                            full.column_mut(c).assign(&scores.column(j));
                        }
                    }
                    (full, model_classes.contains(&1))
                });
                scoring
                    .iter()
                    .map(|s| match s {
                        Scoring::Accuracy => metrics::accuracy(&truth, &predicted),
                        Scoring::BalancedAccuracy => metrics::balanced_accuracy(&truth, &predicted),
                        Scoring::F1Macro => metrics::macro_f1(&truth, &predicted),
                        Scoring::F1Weighted => metrics::weighted_f1(&truth, &predicted),
                        Scoring::NegLogLoss => {
                            let (p, _) = probabilities.as_ref().expect("computed");
                            if n_classes == 2 {
                                // scikit-learn's scorer passes the positive class's column
                                // alone, and log_loss takes 1 - p for the other.
                                let mut binary = p.clone();
                                let positive = p.column(1);
                                binary.column_mut(0).assign(&positive.mapv(|v| 1.0 - v));
                                -metrics::log_loss(&truth, binary.view())
                            } else {
                                -metrics::log_loss(&truth, p.view())
                            }
                        }
                        Scoring::RocAuc => {
                            // Two classes (prepare checks), the second one positive; NaN
                            // where a fold's training or test rows lack one of them.
                            let (p, knows_positive) = probabilities.as_ref().expect("computed");
                            let positive: Vec<bool> = truth.iter().map(|&t| t == 1).collect();
                            let scores = p.column(1).to_vec();
                            knows_positive
                                .then(|| metrics::roc_auc(&positive, &scores))
                                .flatten()
                                .unwrap_or(f64::NAN)
                        }
                        _ => unreachable!("scorings are checked against the task"),
                    })
                    .collect()
            }
            (Truth::Values(y), Predictions::Values(predicted)) => {
                let truth: Vec<f64> = rows.iter().map(|&r| y[r]).collect();
                scoring
                    .iter()
                    .map(|s| match s {
                        Scoring::R2 => metrics::r2(&truth, &predicted),
                        Scoring::NegMeanSquaredError => -metrics::mse(&truth, &predicted),
                        Scoring::NegRootMeanSquaredError => -metrics::rmse(&truth, &predicted),
                        Scoring::NegMeanAbsoluteError => -metrics::mae(&truth, &predicted),
                        _ => unreachable!("scorings are checked against the task"),
                    })
                    .collect()
            }
            _ => unreachable!("a model predicts what its target holds"),
        }
    }
}

fn class_truth(y: ClassTarget) -> Truth {
    let index = (0..y.classes.len())
        .map(|i| (y.classes.name(i), i))
        .collect();
    Truth::Classes(y, index)
}

/// Runs `work` on every job in parallel (rayon), calling `progress(done, total)` on this thread
/// as jobs finish; the results come in job order.
fn in_parallel<J: Send, R: Send>(
    jobs: Vec<J>,
    work: impl Fn(J) -> R + Sync,
    mut progress: impl FnMut(usize, usize),
) -> Vec<R> {
    let total = jobs.len();
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let work = &work;
    std::thread::scope(|s| {
        let worker = s.spawn(move || {
            jobs.into_par_iter()
                .map_with(tx, |tx, job| {
                    let result = work(job);
                    let _ = tx.send(());
                    result
                })
                .collect::<Vec<R>>()
        });
        progress(0, total);
        let mut done = 0;
        // Ends when the last sender is dropped: every job has finished.
        for () in rx {
            done += 1;
            progress(done, total);
        }
        worker
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// The distinct warnings of several fits, each once, with how many of the fits gave it.
fn tally(per_fit: &[Vec<String>], fits: &str) -> Vec<String> {
    let mut counts: Vec<(String, usize)> = Vec::new();
    for warnings in per_fit {
        let mut seen: Vec<&String> = Vec::new();
        for w in warnings {
            if seen.contains(&w) {
                continue;
            }
            seen.push(w);
            match counts.iter_mut().find(|(m, _)| m == w) {
                Some((_, n)) => *n += 1,
                None => counts.push((w.clone(), 1)),
            }
        }
    }
    counts
        .into_iter()
        .map(|(m, n)| format!("{m} (in {n} of {} {fits})", per_fit.len()))
        .collect()
}

/// numpy's sum of float64 (pairwise, in blocks of 8), so means that scikit-learn ranks as
/// ties are ties here too.
fn numpy_sum(values: &[f64]) -> f64 {
    let n = values.len();
    if n < 8 {
        let mut sum = 0.0;
        for v in values {
            sum += v;
        }
        sum
    } else if n <= 128 {
        let mut r = [0.0; 8];
        r.copy_from_slice(&values[..8]);
        let blocks = n - n % 8;
        for i in (8..blocks).step_by(8) {
            for j in 0..8 {
                r[j] += values[i + j];
            }
        }
        let mut sum = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for v in &values[blocks..] {
            sum += v;
        }
        sum
    } else {
        let half = n / 2;
        let half = half - half % 8;
        numpy_sum(&values[..half]) + numpy_sum(&values[half..])
    }
}

/// numpy's mean.
fn mean(values: &[f64]) -> f64 {
    numpy_sum(values) / values.len() as f64
}

/// numpy's standard deviation (ddof=0).
fn std(values: &[f64]) -> f64 {
    let m = mean(values);
    let squares: Vec<f64> = values.iter().map(|v| (v - m) * (v - m)).collect();
    mean(&squares).sqrt()
}

/// Hyperparameter values to try, by name as `--set` takes them (`STEP.NAME` for a
/// preprocessing step), each value as text; the names sorted, as scikit-learn's
/// `ParameterGrid` sorts them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ParamGrid {
    params: Vec<(String, Vec<String>)>,
}

impl ParamGrid {
    /// A grid of these names and values; a name given twice or with no values is an error.
    pub fn new(params: impl IntoIterator<Item = (String, Vec<String>)>) -> Result<ParamGrid> {
        let mut params: Vec<(String, Vec<String>)> = params
            .into_iter()
            .map(|(name, values)| {
                (
                    name.trim().to_string(),
                    values.iter().map(|v| v.trim().to_string()).collect(),
                )
            })
            .collect();
        params.sort_by(|a, b| a.0.cmp(&b.0));
        for pair in params.windows(2) {
            if pair[0].0 == pair[1].0 {
                return Err(Error::Selection(format!(
                    "the grid names {} twice: list all its values in one NAME=V1,V2,...",
                    pair[0].0
                )));
            }
        }
        for (name, values) in &params {
            if name.is_empty() {
                return Err(Error::Selection(
                    "a grid entry has no name: write NAME=V1,V2,... (e.g. max_depth=3,5,8)".into(),
                ));
            }
            if values.is_empty() || values.iter().any(String::is_empty) {
                return Err(Error::Selection(format!(
                    "grid values of {name} include an empty one: list values, comma separated \
                     (e.g. {name}=1,2)"
                )));
            }
        }
        let grid = ParamGrid { params };
        grid.checked_len()?;
        Ok(grid)
    }

    /// A grid from entries `NAME=V1,V2,...`.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<ParamGrid> {
        let params = entries
            .iter()
            .map(|entry| {
                let entry = entry.as_ref();
                let (name, values) = entry.split_once('=').ok_or_else(|| {
                    Error::Selection(format!(
                        "grid entry {entry:?} is not NAME=V1,V2,... (e.g. max_depth=3,5,8)"
                    ))
                })?;
                Ok((
                    name.to_string(),
                    values.split(',').map(str::to_string).collect(),
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        ParamGrid::new(params)
    }

    /// The names and their values, names sorted.
    pub fn params(&self) -> &[(String, Vec<String>)] {
        &self.params
    }

    /// How many candidates the grid holds (1 for an empty grid: the spec as it is).
    pub fn n_candidates(&self) -> usize {
        self.checked_len().unwrap_or(usize::MAX)
    }

    fn checked_len(&self) -> Result<usize> {
        self.params
            .iter()
            .try_fold(1usize, |n, (_, values)| n.checked_mul(values.len()))
            .ok_or_else(|| Error::Selection("the grid has too many candidates to count".into()))
    }

    /// Candidate `index` in scikit-learn's `ParameterGrid` order (the last name varies
    /// fastest).
    pub fn candidate(&self, mut index: usize) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::with_capacity(self.params.len());
        for (name, values) in self.params.iter().rev() {
            out.push((name.clone(), values[index % values.len()].clone()));
            index /= values.len();
        }
        out.reverse();
        out
    }
}

/// What a search tries and how it scores them.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchSpec {
    /// The values to try.
    pub grid: ParamGrid,
    /// Try this many candidates drawn from the grid without replacement
    /// (`RandomizedSearchCV`); None tries them all (`GridSearchCV`).
    pub n_iter: Option<usize>,
    /// The seed of the draw (a ChaCha8 stream, not numpy's); None draws one.
    pub random_state: Option<u64>,
    /// The folds every candidate is scored on.
    pub folds: Folds,
    /// The score to rank by; None: the estimator's default, accuracy or R².
    pub scoring: Option<Scoring>,
    /// Fit the best candidate on every row.
    pub refit: bool,
}

impl SearchSpec {
    /// Checks each value the grid tries for the estimator itself, one at a time beside
    /// `spec`'s own settings, as [`FitSpec::check`] does: a misspelt name or a bad value is
    /// then reported before a large file is read. Preprocessing steps' values are checked
    /// with the table, as `--set` ones are.
    pub fn check(&self, spec: &FitSpec) -> Result<()> {
        for (name, values) in &self.grid.params {
            for value in values {
                let mut one = spec.clone();
                one.set.push((name.clone(), value.clone()));
                one.check()?;
            }
        }
        Ok(())
    }
}

/// One candidate's scores.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// Its values, by name, names sorted.
    pub params: Vec<(String, String)>,
    /// Its score on each fold (NaN where the fit failed).
    pub fold_scores: Vec<f64>,
    /// The mean over the folds.
    pub mean: f64,
    /// The standard deviation over the folds (ddof=0).
    pub std: f64,
    /// 1 for the best; ties share the lowest rank (scipy's `rankdata(method="min")`), a
    /// candidate whose fits failed comes last.
    pub rank: usize,
    /// Seconds each fold's fit took.
    pub fit_times: Vec<f64>,
}

impl Candidate {
    /// Its values as `NAME=VALUE NAME=VALUE`.
    pub fn describe(&self) -> String {
        describe_params(&self.params)
    }

    /// The values as a JSON object, each value read as `--set` reads it.
    pub fn params_json(&self) -> Value {
        Value::Object(
            self.params
                .iter()
                .map(|(n, v)| (n.clone(), params::parse(v)))
                .collect(),
        )
    }
}

/// What [`search`] tried and found.
pub struct SearchReport {
    /// The estimator.
    pub algorithm: &'static str,
    /// Rows cross-validated (rows without a target left out).
    pub rows: usize,
    /// The folds, with the seed of a shuffle written in.
    pub folds: Folds,
    /// The score candidates are ranked by.
    pub scoring: Scoring,
    /// `grid` or `random`.
    pub method: &'static str,
    /// The seed candidates were drawn with (random search).
    pub random_state: Option<u64>,
    /// How many candidates the grid holds.
    pub grid_size: usize,
    /// The candidates tried, in the order tried.
    pub candidates: Vec<Candidate>,
    /// The index of the best candidate: the first of rank 1.
    pub best: usize,
    /// The best candidate fitted on every row, where asked.
    pub refit: Option<FitReport>,
    /// What the user should know: rows left out, fits that failed or stopped early.
    pub warnings: Vec<String>,
}

impl SearchReport {
    /// The best candidate.
    pub fn best(&self) -> &Candidate {
        &self.candidates[self.best]
    }

    /// What the model's `skiff.search` metadata records: the values chosen, the scoring,
    /// their mean and standard deviation, how many candidates and folds.
    pub fn summary_json(&self) -> Value {
        let best = self.best();
        json!({
            "params": best.params_json(),
            "scoring": self.scoring.name(),
            "mean_score": best.mean,
            "std_score": best.std,
            "candidates": self.candidates.len(),
            "folds": self.folds.n_splits(),
            "cv": self.folds.to_json(),
            "method": self.method,
        })
    }

    /// Everything but the model, as `skiff tune --json` prints it.
    pub fn to_json(&self) -> Value {
        let candidates: Vec<Value> = self
            .candidates
            .iter()
            .map(|c| {
                json!({
                    "params": c.params_json(),
                    "rank": c.rank,
                    "mean": c.mean,
                    "std": c.std,
                    "folds": c.fold_scores,
                    "mean_fit_time": mean(&c.fit_times),
                })
            })
            .collect();
        json!({
            "algorithm": self.algorithm,
            "rows": self.rows,
            "cv": self.folds.to_json(),
            "scoring": self.scoring.name(),
            "method": self.method,
            "random_state": self.random_state,
            "grid_size": self.grid_size,
            "candidates": candidates,
            "best": {
                "index": self.best,
                "params": self.best().params_json(),
                "mean": self.best().mean,
                "std": self.best().std,
            },
            "warnings": self.warnings,
        })
    }

    /// The refitted model as ONNX, its `skiff.search` metadata saying how it was chosen; None
    /// without a refit.
    pub fn to_onnx(&self) -> Option<Model> {
        let refit = self.refit.as_ref()?;
        Some(
            refit
                .to_onnx()
                .metadata(metadata::SEARCH, self.summary_json().to_string()),
        )
    }
}

/// Scores every candidate of `search` (each the fit `spec` describes with the candidate's
/// values set after `spec`'s own) on the same folds of `table`, ranks them as scikit-learn's
/// `GridSearchCV` ranks them, and refits the best on every row where asked.
/// `progress(done, total)` is called on this thread as fits finish. A candidate whose fits
/// fail scores NaN and ranks last, with a warning; if every fit fails, that is the error.
pub fn search(
    table: &Table,
    spec: &FitSpec,
    search: &SearchSpec,
    progress: impl FnMut(usize, usize),
) -> Result<SearchReport> {
    let base = job::plan(table, spec)?;
    let scoring = scorings(&base, search.scoring.as_slice())?[0];
    let grid_size = search.grid.checked_len()?;
    let mut warnings = Vec::new();
    let (method, random_state, indices) = match search.n_iter {
        None => ("grid", None, (0..grid_size).collect::<Vec<_>>()),
        Some(0) => {
            return Err(Error::Selection(
                "a random search of 0 candidates tries nothing: ask for 1 or more".into(),
            ));
        }
        Some(n_iter) => {
            let n = if n_iter > grid_size {
                warnings.push(format!(
                    "the grid holds {grid_size} candidates, fewer than the {n_iter} asked: \
                     trying each once (a grid search does the same)"
                ));
                grid_size
            } else {
                n_iter
            };
            let seed = search.random_state.unwrap_or_else(params::random_seed);
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            (
                "random",
                Some(seed),
                sample_without_replacement(grid_size, n, &mut rng),
            )
        }
    };
    let candidates: Vec<Vec<(String, String)>> =
        indices.iter().map(|&i| search.grid.candidate(i)).collect();
    let plans = candidates
        .iter()
        .map(|values| {
            let mut spec = spec.clone();
            spec.set.extend(values.iter().cloned());
            job::plan(table, &spec)
        })
        .collect::<Result<Vec<Plan>>>()?;
    let data = Data::prepare(table, &base, &search.folds, &[scoring])?;
    warnings.extend(data.warnings.iter().cloned());
    let n_folds = data.folds.len();
    let jobs: Vec<(usize, usize)> = (0..plans.len())
        .flat_map(|c| (0..n_folds).map(move |f| (c, f)))
        .collect();
    let mut results = in_parallel(
        jobs,
        |(c, f)| data.fit_and_score(&plans[c], f, &[scoring]),
        progress,
    )
    .into_iter();
    let mut scored = Vec::with_capacity(plans.len());
    let mut fit_warnings = Vec::new();
    let mut failures: Vec<String> = Vec::new();
    let mut first_error = None;
    for params in candidates {
        let mut fold_scores = Vec::with_capacity(n_folds);
        let mut fit_times = Vec::with_capacity(n_folds);
        let mut failed = 0;
        let mut error = None;
        for _ in 0..n_folds {
            match results.next().expect("a result per job") {
                Ok((result, w)) => {
                    fold_scores.push(result.scores[0]);
                    fit_times.push(result.fit_time);
                    fit_warnings.push(w);
                }
                Err(e) => {
                    fold_scores.push(f64::NAN);
                    fit_times.push(f64::NAN);
                    failed += 1;
                    error.get_or_insert(e);
                }
            }
        }
        if let Some(e) = error {
            failures.push(format!(
                "{}: {failed} of {n_folds} fits failed, so it scores NaN: {e}",
                describe_params(&params)
            ));
            first_error.get_or_insert(e);
        }
        scored.push(Candidate {
            mean: mean(&fold_scores),
            std: std(&fold_scores),
            params,
            fold_scores,
            rank: 0,
            fit_times,
        });
    }
    if scored.iter().all(|c| c.mean.is_nan())
        && let Some(e) = first_error
    {
        return Err(e);
    }
    rank(&mut scored);
    let best = scored
        .iter()
        .position(|c| c.rank == 1)
        .expect("a candidate ranks first");
    warnings.extend(failures);
    warnings.extend(tally(&fit_warnings, "fits"));
    let refit = if search.refit {
        Some(job::fit_plan(table, plans[best].clone())?)
    } else {
        None
    };
    Ok(SearchReport {
        algorithm: base.algorithm.name(),
        rows: data.rows,
        folds: data.splitter,
        scoring,
        method,
        random_state,
        grid_size,
        candidates: scored,
        best,
        refit,
        warnings,
    })
}

/// `NAME=VALUE NAME=VALUE`.
fn describe_params(params: &[(String, String)]) -> String {
    params
        .iter()
        .map(|(n, v)| format!("{n}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// scipy's `rankdata(-means, method="min")`, NaN means last, as `GridSearchCV` ranks.
fn rank(candidates: &mut [Candidate]) {
    let means: Vec<f64> = candidates.iter().map(|c| c.mean).collect();
    if means.iter().all(|m| m.is_nan()) {
        candidates.iter_mut().for_each(|c| c.rank = 1);
        return;
    }
    let floor = means
        .iter()
        .filter(|m| !m.is_nan())
        .fold(f64::INFINITY, |a, &b| a.min(b))
        - 1.0;
    let means: Vec<f64> = means
        .iter()
        .map(|&m| if m.is_nan() { floor } else { m })
        .collect();
    for (c, &m) in candidates.iter_mut().zip(&means) {
        c.rank = 1 + means.iter().filter(|&&other| other > m).count();
    }
}

/// `k` distinct indices below `n` in random order (a partial Fisher-Yates over a sparse
/// permutation).
fn sample_without_replacement(n: usize, k: usize, rng: &mut ChaCha8Rng) -> Vec<usize> {
    let mut moved: HashMap<usize, usize> = HashMap::new();
    (0..k)
        .map(|i| {
            let j = rng.random_range(i..n);
            let at_j = moved.get(&j).copied().unwrap_or(j);
            let at_i = moved.get(&i).copied().unwrap_or(i);
            moved.insert(j, at_i);
            at_j
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tests_of(folds: &[Fold]) -> Vec<Vec<usize>> {
        folds.iter().map(|f| f.test.clone()).collect()
    }

    // Expected folds from scikit-learn 1.9 (`KFold(n).split`, `StratifiedKFold(n).split`).
    #[test]
    fn kfold_cuts_contiguous_folds_the_first_ones_larger() {
        let folds = KFold::new(3).split(8).unwrap();
        assert_eq!(
            tests_of(&folds),
            vec![vec![0, 1, 2], vec![3, 4, 5], vec![6, 7]]
        );
        assert_eq!(folds[1].train, vec![0, 1, 2, 6, 7]);
        assert_eq!(KFold::new(5).test_folds(5).unwrap(), vec![0, 1, 2, 3, 4]);
    }

    #[test]
    fn stratified_kfold_assigns_folds_as_scikit_learn() {
        // StratifiedKFold(3).split(X, y) for this y.
        let y = ["b", "a", "b", "b", "a", "c", "b", "a", "c", "b", "a", "c"];
        let (folds, warning) = StratifiedKFold::new(3).split(&y).unwrap();
        assert_eq!(warning, None);
        assert_eq!(
            tests_of(&folds),
            vec![vec![0, 1, 2, 5], vec![3, 4, 6, 8], vec![7, 9, 10, 11]]
        );
        // Classes by first appearance, not sorted: y = [2, 2, 0, 0, 1, 1, 1, 0, 2, 2].
        let y = [2, 2, 0, 0, 1, 1, 1, 0, 2, 2];
        let (folds, _) = StratifiedKFold::new(2).split(&y).unwrap();
        assert_eq!(
            tests_of(&folds),
            vec![vec![0, 1, 2, 3, 4], vec![5, 6, 7, 8, 9]]
        );
        // Unbalanced: 7 of one class, 3 of another, 4 folds.
        let y = [0, 0, 0, 0, 0, 0, 0, 1, 1, 1];
        let (test_folds, _) = StratifiedKFold::new(4).test_folds(&y).unwrap();
        assert_eq!(test_folds, vec![0, 0, 1, 1, 2, 2, 3, 0, 1, 3]);
    }

    #[test]
    fn folds_refuse_what_scikit_learn_refuses() {
        let err = |r: Result<Vec<usize>>| r.unwrap_err().to_string();
        assert!(err(KFold::new(1).test_folds(10)).contains("2 folds or more"));
        assert!(err(KFold::new(6).test_folds(5)).contains("5 folds or fewer"));
        let seeded = KFold {
            random_state: Some(1),
            ..KFold::new(2)
        };
        assert!(err(seeded.test_folds(5)).contains("shuffle"));
        // Every class smaller than the folds: an error; one class: a warning.
        let e = StratifiedKFold::new(3)
            .split(&["a", "a", "b", "b"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("use 2 folds or fewer"), "{e}");
        let (_, warning) = StratifiedKFold::new(3)
            .split(&["a", "a", "a", "b", "b", "a"])
            .unwrap();
        assert_eq!(
            warning.as_deref(),
            Some("class b has only 2 rows, fewer than the 3 folds: some folds score none of it")
        );
    }

    #[test]
    fn shuffled_folds_are_seeded_permutations() {
        let shuffled = KFold {
            n_splits: 4,
            shuffle: true,
            random_state: Some(7),
        };
        let a = shuffled.test_folds(23).unwrap();
        assert_eq!(a, shuffled.test_folds(23).unwrap());
        assert_ne!(a, KFold::new(4).test_folds(23).unwrap());
        let mut sizes = [0; 4];
        a.iter().for_each(|&f| sizes[f] += 1);
        assert_eq!(sizes, [6, 6, 6, 5]);

        let y: Vec<usize> = (0..30).map(|i| i % 3).collect();
        let s = StratifiedKFold {
            n_splits: 5,
            shuffle: true,
            random_state: Some(3),
        };
        let (folds, _) = s.split(&y).unwrap();
        for fold in &folds {
            let mut per_class = [0; 3];
            fold.test.iter().for_each(|&i| per_class[y[i]] += 1);
            assert_eq!(per_class, [2, 2, 2]);
        }
        assert_ne!(
            tests_of(&folds),
            tests_of(&StratifiedKFold::new(5).split(&y).unwrap().0)
        );
    }

    #[test]
    fn grid_candidates_come_in_parameter_grid_order() {
        let grid = ParamGrid::parse(&["min_samples_leaf=1,5", "max_depth=1,2,3"]).unwrap();
        assert_eq!(grid.n_candidates(), 6);
        let names = |i| {
            grid.candidate(i)
                .into_iter()
                .map(|(n, v)| format!("{n}={v}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        assert_eq!(names(0), "max_depth=1 min_samples_leaf=1");
        assert_eq!(names(1), "max_depth=1 min_samples_leaf=5");
        assert_eq!(names(2), "max_depth=2 min_samples_leaf=1");
        assert_eq!(names(5), "max_depth=3 min_samples_leaf=5");
        assert_eq!(ParamGrid::default().n_candidates(), 1);
        assert!(ParamGrid::parse(&["max_depth"]).is_err());
        assert!(ParamGrid::parse(&["max_depth=1,,2"]).is_err());
        assert!(ParamGrid::parse(&["a=1", "a=2"]).is_err());
    }

    #[test]
    fn ranks_are_scipy_min_ranks_with_nan_last() {
        let mut candidates: Vec<Candidate> = [0.9, 0.95, 0.9, f64::NAN, 0.95]
            .iter()
            .map(|&mean| Candidate {
                params: Vec::new(),
                fold_scores: Vec::new(),
                mean,
                std: 0.0,
                rank: 0,
                fit_times: Vec::new(),
            })
            .collect();
        rank(&mut candidates);
        let ranks: Vec<usize> = candidates.iter().map(|c| c.rank).collect();
        assert_eq!(ranks, vec![3, 1, 3, 5, 1]);
    }

    #[test]
    fn means_and_stds_are_numpys() {
        assert_eq!(mean(&[1.0, 2.0, 3.0, 4.0]), 2.5);
        assert!((std(&[1.0, 2.0, 3.0, 4.0]) - 1.25f64.sqrt()).abs() < 1e-15);
        let v: Vec<f64> = (0..20).map(|i| 0.1 * i as f64).collect();
        assert!((numpy_sum(&v) - 19.0).abs() < 1e-12);
    }

    /// Two classes apart on `x`, a text column, and a row without a target.
    fn table() -> Table {
        let mut csv = String::from("x,colour,y\n");
        for i in 0..20 {
            let (x, y) = if i % 2 == 0 { (i, "a") } else { (i + 40, "b") };
            let colour = ["red", "blue", ""][i % 3];
            csv.push_str(&format!("{x},{colour},{y}\n"));
        }
        csv.push_str("7,red,\n");
        Table::from_reader("t.csv", csv.as_bytes()).unwrap()
    }

    fn spec(algorithm: &str) -> FitSpec {
        FitSpec {
            algorithm: algorithm.into(),
            target: Some("y".into()),
            ..FitSpec::default()
        }
    }

    #[test]
    fn cross_validation_fits_each_fold_and_leaves_out_rows_without_a_target() {
        let folds = Folds::for_task(Task::Classification, 4, false, None);
        let report = cross_validate(
            &table(),
            &spec("gaussian-nb"),
            &folds,
            &[Scoring::Accuracy, Scoring::RocAuc],
        )
        .unwrap();
        assert_eq!(report.rows, 20);
        assert_eq!(report.fold_results.len(), 4);
        assert!(report.fold_results.iter().all(|f| f.test_rows == 5));
        assert_eq!(report.scores(0), vec![1.0; 4]);
        assert_eq!(report.mean(1), 1.0);
        assert_eq!(report.std(0), 0.0);
        assert!(
            report.warnings[0].contains("left out 1 rows"),
            "{:?}",
            report.warnings
        );
        let json = report.to_json();
        assert_eq!(
            json["metrics"]["roc_auc"]["folds"]
                .as_array()
                .unwrap()
                .len(),
            4
        );

        let err = cross_validate(&table(), &spec("ridge"), &folds, &[]).unwrap_err();
        assert!(err.to_string().contains("not a finite number"), "{err}");
        let stratified_regressor = Folds::Stratified(StratifiedKFold::new(4));
        let mut numbers = spec("ridge");
        numbers.target = Some("x".into());
        let err = cross_validate(&table(), &numbers, &stratified_regressor, &[]).unwrap_err();
        assert!(err.to_string().contains("regressor"), "{err}");
    }

    #[test]
    fn search_ranks_candidates_and_refits_the_best() {
        let search_spec = SearchSpec {
            grid: ParamGrid::parse(&["n_neighbors=1,3,15", "encoder.min_frequency=1,2"]).unwrap(),
            n_iter: None,
            random_state: None,
            folds: Folds::for_task(Task::Classification, 4, false, None),
            scoring: None,
            refit: true,
        };
        let mut calls = Vec::new();
        let report = search(
            &table(),
            &spec("knn-classifier"),
            &search_spec,
            |done, total| calls.push((done, total)),
        )
        .unwrap();
        assert_eq!(report.candidates.len(), 6);
        assert_eq!(calls.first(), Some(&(0, 24)));
        assert_eq!(calls.last(), Some(&(24, 24)));
        // 15 neighbours of 15 training rows vote for the majority: worse than 1 or 3.
        let best = report.best();
        assert_eq!(best.rank, 1);
        assert_ne!(best.params[1], ("n_neighbors".into(), "15".into()));
        assert_eq!(report.best, 0, "the first of the top rank");
        let model = report.to_onnx().unwrap().to_proto();
        let recorded = model
            .metadata_props
            .iter()
            .find(|p| p.key == metadata::SEARCH)
            .expect("skiff.search metadata");
        let recorded: Value = serde_json::from_str(&recorded.value).unwrap();
        assert_eq!(recorded["params"]["n_neighbors"], 1);
        assert_eq!(recorded["candidates"], 6);

        let mut bad = search_spec.clone();
        bad.grid = ParamGrid::parse(&["n_neighbors=1,many"]).unwrap();
        let err = search(&table(), &spec("knn-classifier"), &bad, |_, _| {})
            .err()
            .unwrap();
        assert!(err.to_string().contains("n_neighbors=many"), "{err}");
    }

    #[test]
    fn random_samples_are_distinct_and_seeded() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let s = sample_without_replacement(10, 10, &mut rng);
        let mut sorted = s.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..10).collect::<Vec<_>>());
        let a = sample_without_replacement(1000, 5, &mut ChaCha8Rng::seed_from_u64(2));
        let b = sample_without_replacement(1000, 5, &mut ChaCha8Rng::seed_from_u64(2));
        assert_eq!(a, b);
    }
}
