use super::select::{FoldArgs, warn};
use crate::progress::CountBar;
use anyhow::{Result, bail};
use skiff_data::Table;
use skiff_learn::Scoring;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// The estimator to cross-validate (`skiff algorithms` lists them with their
    /// hyperparameters): a classifier or a regressor
    algorithm: String,
    /// The rows: CSV with a header row, read as skiff fit reads it
    #[arg(long)]
    data: PathBuf,
    /// The column to predict; every other column is a feature. Rows whose target is missing
    /// are left out
    #[arg(long)]
    target: String,
    #[command(flatten)]
    folds: FoldArgs,
    /// Seed the shuffle of --shuffle, so the folds can be cut again alike
    #[arg(long, value_name = "N")]
    seed: Option<u64>,
    /// What to score, scikit-learn's names (comma separated): accuracy, balanced_accuracy,
    /// f1_macro, f1_weighted, neg_log_loss, roc_auc (two classes) for classifiers; r2,
    /// neg_mean_squared_error, neg_root_mean_squared_error, neg_mean_absolute_error for
    /// regressors [default: accuracy or r2, the estimator's score]
    #[arg(long, value_delimiter = ',', value_name = "NAME")]
    scoring: Vec<String>,
    #[command(flatten)]
    table: super::table::TableArgs,
    #[command(flatten)]
    track: super::track::TrackArgs,
    /// Print the scores as JSON: mean, standard deviation and each fold's, with fit times
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> Result<()> {
    args.track.check("cv", false)?;
    if args.seed.is_some() && !args.folds.shuffle() {
        bail!("--seed seeds the shuffle of the rows: add --shuffle, or leave out --seed");
    }
    let spec = args
        .table
        .to_spec(&args.algorithm, Some(args.target.as_str()))?;
    let folds = args.folds.folds(&args.algorithm, args.seed)?;
    let scoring = args
        .scoring
        .iter()
        .map(|name| name.parse::<Scoring>())
        .collect::<Result<Vec<_>, _>>()?;
    let table = Table::from_path(&args.data)?;
    let bar = CountBar::new("fits");
    let report = skiff_learn::cross_validate_with_progress(
        &table,
        &spec,
        &folds,
        &scoring,
        |done, total| bar.update(done, total),
    );
    bar.clear();
    let report = report?;
    warn(&report.warnings);
    let logged = super::track::record(
        &args.track,
        &super::track::cv_run(&report, &args.data),
        None,
    )?;
    if args.json {
        let mut summary = report.to_json();
        if let Some(logged) = &logged {
            summary["mlflow"] = super::track::outcome_json(logged);
        }
        return super::print_json(&summary);
    }
    say!(
        "cross-validated {} on {} rows of {}, {}",
        report.algorithm,
        report.rows,
        args.data.display(),
        report.folds.describe()
    )?;
    let width = report
        .scoring
        .iter()
        .map(|s| s.name().len())
        .max()
        .unwrap_or(0);
    for (i, scoring) in report.scoring.iter().enumerate() {
        let folds: Vec<String> = report.scores(i).iter().map(|v| format!("{v:.4}")).collect();
        say!(
            "{:width$}  {:.4} ± {:.4}  (folds: {})",
            scoring.name(),
            report.mean(i),
            report.std(i),
            folds.join(" ")
        )?;
    }
    let fit_time: f64 = report.fold_results.iter().map(|f| f.fit_time).sum::<f64>()
        / report.fold_results.len().max(1) as f64;
    say!("mean fit time: {fit_time:.3} s per fold")?;
    Ok(())
}
