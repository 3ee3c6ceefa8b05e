//! What `cv` and `tune` share: how rows are cut into folds.

use anyhow::{Result, bail};
use skiff_learn::{Folds, Task};

#[derive(clap::Args)]
pub struct FoldArgs {
    /// How many folds: each is scored by a model fitted on the others
    #[arg(long, default_value_t = 5, value_name = "K")]
    folds: usize,
    /// Keep each class's share of rows in every fold (scikit-learn's StratifiedKFold); the
    /// default for classifiers, an error for regressors
    #[arg(long)]
    stratified: bool,
    /// Shuffle the rows before cutting them into folds (seeded by --seed, else at random);
    /// without it folds are contiguous, as scikit-learn cuts them
    #[arg(long)]
    shuffle: bool,
}

impl FoldArgs {
    /// The folds for an estimator of `algorithm`'s task; `seed` seeds the shuffle.
    pub fn folds(&self, algorithm: &str, seed: Option<u64>) -> Result<Folds> {
        let algorithm = skiff_learn::algorithm(algorithm)?;
        let task = algorithm.task();
        if self.stratified && task != Task::Classification {
            bail!(
                "--stratified keeps each class's share of rows in every fold, and {} is not a \
                 classifier: leave out --stratified (its folds are plain k-fold)",
                algorithm.name()
            );
        }
        let random_state = if self.shuffle { seed } else { None };
        Ok(Folds::for_task(
            task,
            self.folds,
            self.shuffle,
            random_state,
        ))
    }

    pub fn shuffle(&self) -> bool {
        self.shuffle
    }
}

/// The warnings of a run, on stderr as they come, as `fit` prints its own.
pub fn warn(warnings: &[String]) {
    for warning in warnings {
        eprintln!("skiff: warning: {warning}");
    }
}
