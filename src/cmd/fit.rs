use anyhow::{Context, Result};
use skiff_data::Table;
use skiff_learn::{Encoding, FitSpec, ImputeStrategy, Scale};
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
    /// Set a hyperparameter, scikit-learn's name (repeatable): --set C=0.5 for the estimator,
    /// --set STEP.NAME=VALUE for a preprocessing step (num_imputer, cat_imputer, encoder), e.g.
    /// --set encoder.min_frequency=5
    #[arg(long = "set", value_name = "NAME=VALUE")]
    set: Vec<String>,
    /// Scale the numeric features first, in the same exported graph (standard: zero mean, unit
    /// variance; min-max: into [0, 1]; robust: median and interquartile range; none). Tables
    /// with text or gaps are standardised by default for estimators that depend on scale
    #[arg(long, value_enum)]
    scale: Option<ScaleArg>,
    /// Read these columns as text categories, whatever they hold (repeatable, or comma
    /// separated)
    #[arg(long, value_delimiter = ',', value_name = "COLUMN")]
    categorical: Vec<String>,
    /// Read these columns as numbers; a cell that is neither a number nor missing is an error
    #[arg(long, value_delimiter = ',', value_name = "COLUMN")]
    numeric: Vec<String>,
    /// Leave these columns out
    #[arg(long, value_delimiter = ',', value_name = "COLUMN")]
    drop: Vec<String>,
    /// Also read these cells as missing (repeatable), e.g. --na-values ?
    #[arg(long = "na-values", value_name = "TEXT")]
    na_values: Vec<String>,
    /// How gaps in numeric columns are filled (default median; text columns take their most
    /// frequent value)
    #[arg(long, value_enum)]
    impute: Option<ImputeArg>,
    /// How text columns become numbers (default onehot: a column per category, unseen ones
    /// all zeros; ordinal: one column of codes, unseen ones -1)
    #[arg(long, value_enum)]
    encode: Option<EncodeArg>,
    /// Show the columns' kinds and the pipeline's steps with their hyperparameters, and stop
    #[arg(long)]
    print_pipeline: bool,
    /// Print the summary as JSON
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ScaleArg {
    Standard,
    MinMax,
    Robust,
    None,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ImputeArg {
    Mean,
    Median,
    MostFrequent,
    Constant,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum EncodeArg {
    Onehot,
    Ordinal,
}

pub fn run(args: Args) -> Result<()> {
    let set = args
        .set
        .iter()
        .map(|setting| {
            let (name, value) = setting.split_once('=').with_context(|| {
                format!("--set {setting:?} is not NAME=VALUE (e.g. --set C=0.5)")
            })?;
            Ok((name.to_string(), value.to_string()))
        })
        .collect::<Result<Vec<_>>>()?;
    let spec = FitSpec {
        algorithm: args.algorithm.clone(),
        target: args.target.clone(),
        set,
        scale: match args.scale {
            Some(ScaleArg::Standard) => Some(Scale::Standard),
            Some(ScaleArg::MinMax) => Some(Scale::MinMax),
            Some(ScaleArg::Robust) => Some(Scale::Robust),
            Some(ScaleArg::None) | None => None,
        },
        no_scale: matches!(args.scale, Some(ScaleArg::None)),
        categorical: args.categorical.clone(),
        numeric: args.numeric.clone(),
        drop: args.drop.clone(),
        na_values: args.na_values.clone(),
        impute: args.impute.map(|i| match i {
            ImputeArg::Mean => ImputeStrategy::Mean,
            ImputeArg::Median => ImputeStrategy::Median,
            ImputeArg::MostFrequent => ImputeStrategy::MostFrequent,
            ImputeArg::Constant => ImputeStrategy::Constant,
        }),
        encode: args.encode.map(|e| match e {
            EncodeArg::Onehot => Encoding::OneHot,
            EncodeArg::Ordinal => Encoding::Ordinal,
        }),
    };
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
    let report = skiff_learn::fit_plan(&table, plan)?;
    // Written to stderr as they come, as scikit-learn's warnings are; the model is still good
    // to write.
    for warning in &report.warnings {
        eprintln!("skiff: warning: {warning}");
    }
    let bytes = report.to_onnx().to_bytes();
    skiff_data::write_atomic(output, &bytes)
        .with_context(|| format!("cannot write {}", output.display()))?;

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
        if let Some((name, value)) = metric {
            summary[format!("training_{name}")] = serde_json::json!(value);
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
