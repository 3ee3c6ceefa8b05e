use super::select::{FoldArgs, warn};
use crate::progress::CountBar;
use anyhow::{Context, Result, bail};
use skiff_data::Table;
use skiff_learn::{ParamGrid, Scoring, SearchSpec};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// The estimator to tune (`skiff algorithms` lists them with their hyperparameters): a
    /// classifier or a regressor
    algorithm: String,
    /// The rows: CSV with a header row, read as skiff fit reads it
    #[arg(long)]
    data: PathBuf,
    /// The column to predict; every other column is a feature. Rows whose target is missing
    /// are left out
    #[arg(long)]
    target: String,
    /// Values to try for a hyperparameter, comma separated (repeatable): --grid max_depth=3,5,8
    /// for the estimator, --grid STEP.NAME=... for a preprocessing step. Every combination is
    /// a candidate (scikit-learn's GridSearchCV), set after --set's values
    #[arg(long, value_name = "NAME=V1,V2,...", required = true)]
    grid: Vec<String>,
    /// Try N candidates drawn from the grid without replacement instead of all of them
    /// (scikit-learn's RandomizedSearchCV)
    #[arg(long, value_name = "N")]
    random: Option<usize>,
    /// Seed the draw of --random and the shuffle of --shuffle, so a search can be repeated
    #[arg(long, value_name = "N")]
    seed: Option<u64>,
    #[command(flatten)]
    folds: FoldArgs,
    /// The score candidates are ranked by, scikit-learn's name: accuracy, balanced_accuracy,
    /// f1_macro, f1_weighted, neg_log_loss, roc_auc (two classes) for classifiers; r2,
    /// neg_mean_squared_error, neg_root_mean_squared_error, neg_mean_absolute_error for
    /// regressors [default: accuracy or r2, the estimator's score]
    #[arg(long, value_name = "NAME")]
    scoring: Option<String>,
    /// Where to write the best candidate, fitted on every row (ONNX); its skiff.search
    /// metadata records what was chosen and how
    #[arg(short, long)]
    output: PathBuf,
    #[command(flatten)]
    table: super::table::TableArgs,
    #[command(flatten)]
    track: super::track::TrackArgs,
    /// Print the candidates and the best as JSON
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> Result<()> {
    args.track.check("tune", true)?;
    if args.seed.is_some() && !args.folds.shuffle() && args.random.is_none() {
        bail!(
            "--seed seeds the draw of --random and the shuffle of --shuffle: add one, or leave \
             out --seed"
        );
    }
    let spec = args
        .table
        .to_spec(&args.algorithm, Some(args.target.as_str()))?;
    for entry in &args.grid {
        if !entry.contains('=') {
            bail!("--grid {entry:?} is not NAME=V1,V2,... (e.g. --grid max_depth=3,5,8)");
        }
    }
    let search = SearchSpec {
        grid: ParamGrid::parse(&args.grid)?,
        n_iter: args.random,
        random_state: args.seed,
        folds: args.folds.folds(&args.algorithm, args.seed)?,
        scoring: args.scoring.as_deref().map(str::parse).transpose()?,
        refit: true,
    };
    search.check(&spec)?;
    let table = Table::from_path(&args.data)?;
    let bar = CountBar::new("fits");
    let report = skiff_learn::search(&table, &spec, &search, |done, total| {
        bar.update(done, total)
    });
    bar.clear();
    let report = report?;
    warn(&report.warnings);
    let refit = report.refit.as_ref().expect("asked for a refit");
    warn(&refit.warnings);
    let bytes = report.to_onnx().expect("refitted").into_bytes();
    skiff_data::write_atomic(&args.output, &bytes)
        .with_context(|| format!("cannot write {}", args.output.display()))?;
    let logged = super::track::record(
        &args.track,
        &super::track::tune_run(&report, &args.data),
        Some(&args.output),
    )?;

    if args.json {
        let mut summary = report.to_json();
        summary["output"] = serde_json::json!(args.output);
        summary["bytes"] = serde_json::json!(bytes.len());
        if let Some(logged) = &logged {
            summary["mlflow"] = super::track::outcome_json(logged);
        }
        summary["hyperparameters"] = refit.algorithm.hyperparameters();
        return super::print_json(&summary);
    }
    let scoring: Scoring = report.scoring;
    say!(
        "{} search of {} over {} rows of {}: {} candidates × {}, scoring {scoring}",
        report.method,
        report.algorithm,
        report.rows,
        args.data.display(),
        report.candidates.len(),
        report.folds.describe(),
    )?;
    print_candidates(&report)?;
    let best = report.best();
    say!(
        "best: {} ({scoring} {:.4} ± {:.4})",
        best.describe(),
        best.mean,
        best.std
    )?;
    say!(
        "wrote {} ({} bytes), the best refitted on {} rows",
        args.output.display(),
        bytes.len(),
        refit.rows
    )?;
    Ok(())
}

/// The candidates best first (ties in the order tried): rank, mean, std and values, in
/// columns.
fn print_candidates(report: &skiff_learn::SearchReport) -> Result<()> {
    let mut order: Vec<usize> = (0..report.candidates.len()).collect();
    order.sort_by_key(|&i| report.candidates[i].rank);
    let names: Vec<&str> = report.candidates[0]
        .params
        .iter()
        .map(|(n, _)| n.as_str())
        .collect();
    let mut rows: Vec<Vec<String>> = vec![
        ["rank", "mean", "std"]
            .into_iter()
            .chain(names.iter().copied())
            .map(str::to_string)
            .collect(),
    ];
    for &i in &order {
        let c = &report.candidates[i];
        let mut row = vec![
            c.rank.to_string(),
            format!("{:.4}", c.mean),
            format!("{:.4}", c.std),
        ];
        row.extend(c.params.iter().map(|(_, v)| v.clone()));
        rows.push(row);
    }
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|col| {
            rows.iter()
                .map(|r| r[col].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, &w)| format!("{cell:w$}"))
            .collect();
        say!("{}", cells.join("  ").trim_end())?;
    }
    Ok(())
}
