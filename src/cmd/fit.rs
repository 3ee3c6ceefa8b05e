use anyhow::{Context, Result};
use skiff_data::Table;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// The estimator to fit (`skiff algorithms` lists them with their hyperparameters)
    algorithm: String,
    /// Training data: CSV with a header row. Columns of numbers are numeric features, other
    /// columns text categories; empty cells, NA, NaN, null and pandas' other missing markers
    /// are gaps
    #[arg(long)]
    data: PathBuf,
    /// The column to predict; every other column is a feature (clusterers: optional, and left
    /// out of the features when given). Rows whose target is missing are left out
    #[arg(long)]
    target: Option<String>,
    /// Where to write the fitted model (ONNX); not needed with --print-pipeline
    #[arg(short, long, required_unless_present = "print_pipeline")]
    output: Option<PathBuf>,
    #[command(flatten)]
    table: super::table::TableArgs,
    #[command(flatten)]
    track: super::track::TrackArgs,
    /// Show the columns' kinds and the pipeline's steps with their hyperparameters, and stop
    #[arg(long)]
    print_pipeline: bool,
    /// A privacy budget ledger (skiff dp budget) that a differentially private fit spends
    /// its epsilon from; a fit over budget is refused before it starts
    #[arg(long, value_name = "LEDGER")]
    budget: Option<PathBuf>,
    /// Print the summary as JSON
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> Result<()> {
    args.track.check("fit", !args.print_pipeline)?;
    let spec = args
        .table
        .to_spec(&args.algorithm, args.target.as_deref())?;
    let table = Table::from_path(&args.data)?;
    let plan = skiff_learn::plan(&table, &spec)?;
    if args.print_pipeline {
        if args.json {
            return super::print_json(&serde_json::json!({
                "algorithm": plan.algorithm.name(),
                "hyperparameters": plan.algorithm.hyperparameters(),
                "columns": plan.columns_json(),
                "preprocessing": plan.preprocessing_json(),
            }));
        }
        say!("{}", plan.describe())?;
        return Ok(());
    }
    let output = args.output.as_ref().expect("clap requires --output");
    // The ledger is held from the check to the record, so fits spending from one budget
    // take turns.
    let ledger = match &args.budget {
        Some(path) => Some(super::dp::check_fit(path, plan.algorithm.as_ref())?),
        None => None,
    };
    let report = skiff_learn::fit_plan(&table, plan)?;
    // The spend is recorded before the model is written: a fit that ran has spent it.
    if let Some(mut held) = ledger {
        let epsilon = report.algorithm.privacy().expect("checked before fitting");
        let what = format!("fit {} on {}", report.algorithm.name(), args.data.display());
        held.spend(epsilon, 0.0, &what)?;
    }
    // Written to stderr as they come, as scikit-learn's warnings are; the model is still good
    // to write.
    for warning in &report.warnings {
        eprintln!("skiff: warning: {warning}");
    }
    let bytes = report.to_onnx().into_bytes();
    skiff_data::write_atomic(output, &bytes)
        .with_context(|| format!("cannot write {}", output.display()))?;
    let run = super::track::fit_run(&report, &args.data);
    let logged = super::track::record(&args.track, &run, Some(output))?;

    let (algorithm, model, metric) = (&report.algorithm, &report.model, report.training_metric);
    let rows = report.rows;
    let classes: Option<Vec<String>> = model
        .classes()
        .map(|c| (0..c.len()).map(|i| c.name(i)).collect());
    if args.json {
        let mut summary = serde_json::json!({
            "algorithm": algorithm.name(),
            "task": algorithm.task(),
            "rows": rows,
            "features": report.features(),
            "columns": report.columns_json(),
            "preprocessing": report.preprocessing,
            "hyperparameters": algorithm.hyperparameters(),
            "output": output,
            "bytes": bytes.len(),
            "warnings": report.warnings,
        });
        if let Some(classes) = &classes {
            summary["classes"] = serde_json::json!(classes);
        }
        if !run.curves.is_empty() {
            summary["curves"] = run
                .curves
                .iter()
                .map(|c| (c.name.clone(), serde_json::json!(c.points)))
                .collect();
        }
        if let Some((name, value)) = metric {
            summary[format!("training_{name}")] = serde_json::json!(value);
        }
        if let Some(logged) = &logged {
            summary["mlflow"] = super::track::outcome_json(logged);
        }
        return super::print_json(&summary);
    }
    let what = match &classes {
        Some(classes) => format!(", {} classes ({})", classes.len(), classes.join(", ")),
        None => String::new(),
    };
    let text = report
        .columns
        .iter()
        .filter(|(_, k)| *k == skiff_data::Kind::Categorical)
        .count();
    let text = if text > 0 {
        format!(" ({text} categorical)")
    } else {
        String::new()
    };
    say!(
        "fitted {} on {rows} rows, {} features{text}{what}",
        algorithm.name(),
        report.columns.len(),
    )?;
    if let Some((name, value)) = metric {
        let name = if name == "r2" { "R²" } else { name };
        say!("training {name}: {value:.4}")?;
    }
    say!("wrote {} ({} bytes)", output.display(), bytes.len())?;
    Ok(())
}
