use anyhow::{Context, Result, bail};
use skiff_data::Table;
use skiff_learn::{ExportInfo, Fitted, Pipeline, Scale, Target, Task};
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
    let mut algorithm = skiff_learn::algorithm(&args.algorithm)?;
    for setting in &args.set {
        let (name, value) = setting
            .split_once('=')
            .with_context(|| format!("--set {setting:?} is not NAME=VALUE (e.g. --set C=0.5)"))?;
        algorithm.set(name.trim(), value.trim())?;
    }
    let table = Table::from_path(&args.data)?;
    let (features, y) = match (&args.target, algorithm.task()) {
        (Some(target), task) => {
            let cells = table.column(target)?;
            let y = Target::from_cells(algorithm.as_ref(), &cells)
                .with_context(|| format!("target column {target:?}"))?;
            let y = if task == Task::Clustering {
                Target::None
            } else {
                y
            };
            (table.columns_except(target), y)
        }
        (None, Task::Clustering) => (table.headers().to_vec(), Target::None),
        (None, _) => bail!(
            "{} needs --target: the column it learns to predict",
            algorithm.name()
        ),
    };
    if features.is_empty() {
        bail!(
            "{} has no feature columns besides the target",
            args.data.display()
        );
    }
    let x = table.features(&features)?;
    let model: Box<dyn Fitted> = match args.scale {
        Some(scale) => Box::new(Pipeline::fit(
            scale.into(),
            algorithm.as_ref(),
            x.view(),
            &y,
        )?),
        None => algorithm.fit(x.view(), &y)?,
    };
    // Written to stderr as they come, as scikit-learn's warnings are; the model is still good
    // to write.
    let warnings = model.warnings();
    for warning in &warnings {
        eprintln!("skiff: warning: {warning}");
    }
    let metric = algorithm.training_metric(model.as_ref(), x.view(), &y);

    let info = ExportInfo {
        feature_names: features.clone(),
        target: args.target.clone().unwrap_or_default(),
        training_metric: metric.map(|(name, value)| (name.to_string(), value)),
    };
    let bytes = model.to_onnx(&info).to_bytes();
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
