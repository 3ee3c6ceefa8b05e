use anyhow::{Context, Result, bail};
use skiff_data::Table;
use skiff_learn::{ClassTarget, Export, ExportInfo, LogisticRegression};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// The estimator to fit
    algorithm: Algorithm,
    /// Training data: CSV with a header row
    #[arg(long)]
    data: PathBuf,
    /// The column to predict; every other column is a numeric feature
    #[arg(long)]
    target: String,
    /// Where to write the fitted model (ONNX)
    #[arg(short, long)]
    output: PathBuf,
    /// Set a hyperparameter, scikit-learn's name (repeatable): --set C=0.5
    #[arg(long = "set", value_name = "NAME=VALUE")]
    set: Vec<String>,
    /// Print the summary as JSON
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Algorithm {
    /// Multinomial logistic regression (L2, lbfgs)
    LogisticRegression,
}

pub fn run(args: Args) -> Result<()> {
    let table = Table::from_path(&args.data)?;
    let target_cells = table.column(&args.target)?;
    let features = table.columns_except(&args.target);
    if features.is_empty() {
        bail!(
            "{} has no feature columns besides the target {:?}",
            args.data.display(),
            args.target
        );
    }
    let x = table.features(&features)?;
    let y = ClassTarget::from_cells(&target_cells)
        .with_context(|| format!("target column {:?}", args.target))?;

    let Algorithm::LogisticRegression = args.algorithm;
    let mut params = LogisticRegression::params();
    for setting in &args.set {
        let (name, value) = setting
            .split_once('=')
            .with_context(|| format!("--set {setting:?} is not NAME=VALUE (e.g. --set C=0.5)"))?;
        params.set(name.trim(), value.trim())?;
    }
    let model = params.fit(x.view(), &y)?;
    let accuracy = model.score(x.view(), &y.indices);

    let info = ExportInfo {
        feature_names: features.clone(),
        target: args.target.clone(),
        training_metric: Some(("accuracy".into(), accuracy)),
    };
    let bytes = model.to_onnx(&info).to_bytes();
    skiff_data::write_atomic(&args.output, &bytes)
        .with_context(|| format!("cannot write {}", args.output.display()))?;

    let classes: Vec<String> = (0..y.classes.len()).map(|i| y.classes.name(i)).collect();
    if args.json {
        return super::print_json(&serde_json::json!({
            "algorithm": model.algorithm(),
            "rows": table.n_rows(),
            "features": features,
            "classes": classes,
            "training_accuracy": accuracy,
            "hyperparameters": model.hyperparameters(),
            "output": args.output,
            "bytes": bytes.len(),
        }));
    }
    println!(
        "fitted {} on {} rows, {} features, {} classes ({})",
        model.algorithm(),
        table.n_rows(),
        features.len(),
        classes.len(),
        classes.join(", ")
    );
    println!("training accuracy: {accuracy:.4}");
    println!("wrote {} ({} bytes)", args.output.display(), bytes.len());
    Ok(())
}
