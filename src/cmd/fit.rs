use anyhow::{Context, Result};
use skiff_data::Table;
use skiff_learn::{FitSpec, Scale};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// The estimator to fit (`skiff algorithms` lists them with their hyperparameters)
    algorithm: String,
    /// Training data: CSV with a header row
    #[arg(long)]
    data: PathBuf,
    /// The column to predict; every other column is a numeric feature (clusterers: optional,
    /// and left out of the features when given)
    #[arg(long)]
    target: Option<String>,
    /// Where to write the fitted model (ONNX)
    #[arg(short, long)]
    output: PathBuf,
    /// Set a hyperparameter, scikit-learn's name (repeatable): --set C=0.5
    #[arg(long = "set", value_name = "NAME=VALUE")]
    set: Vec<String>,
    /// Scale the features first, in the same exported graph (standard: zero mean, unit
    /// variance; min-max: into [0, 1])
    #[arg(long, value_enum)]
    scale: Option<ScaleArg>,
    /// Print the summary as JSON
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ScaleArg {
    Standard,
    MinMax,
}

impl From<ScaleArg> for Scale {
    fn from(arg: ScaleArg) -> Scale {
        match arg {
            ScaleArg::Standard => Scale::Standard,
            ScaleArg::MinMax => Scale::MinMax,
        }
    }
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
        scale: args.scale.map(Scale::from),
    };
    let table = Table::from_path(&args.data)?;
    let report = skiff_learn::fit_table(&table, &spec)?;
    let (algorithm, model, features, metric) = (
        &report.algorithm,
        &report.model,
        &report.features,
        report.training_metric,
    );
    // Written to stderr as they come, as scikit-learn's warnings are; the model is still good
    // to write.
    let warnings = model.warnings();
    for warning in &warnings {
        eprintln!("skiff: warning: {warning}");
    }
    let bytes = report.to_onnx().to_bytes();
    skiff_data::write_atomic(&args.output, &bytes)
        .with_context(|| format!("cannot write {}", args.output.display()))?;

    let classes: Option<Vec<String>> = model
        .classes()
        .map(|c| (0..c.len()).map(|i| c.name(i)).collect());
    if args.json {
        let mut summary = serde_json::json!({
            "algorithm": algorithm.name(),
            "task": algorithm.task(),
            "rows": table.n_rows(),
            "features": features,
            "hyperparameters": algorithm.hyperparameters(),
            "output": args.output,
            "bytes": bytes.len(),
            "warnings": warnings,
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
    say!(
        "fitted {} on {} rows, {} features{what}",
        algorithm.name(),
        table.n_rows(),
        features.len(),
    )?;
    if let Some((name, value)) = metric {
        let name = if name == "r2" { "R²" } else { name };
        say!("training {name}: {value:.4}")?;
    }
    say!("wrote {} ({} bytes)", args.output.display(), bytes.len())?;
    Ok(())
}
