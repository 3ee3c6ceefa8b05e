//! `skiff export`: a model in another tool's format.

use anyhow::{Context, Result};
use skiff_mlops::mlflow::model;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    format: Format,
}

#[derive(clap::Subcommand)]
enum Format {
    /// Write an MLflow model folder (onnx and python_function flavours, a tensor signature of
    /// every input and output, pip and conda requirements) that mlflow.pyfunc.load_model loads
    /// and `mlflow models serve` serves
    Mlflow(MlflowArgs),
}

#[derive(clap::Args)]
struct MlflowArgs {
    /// The ONNX model (from `skiff fit`, `skiff tune` or another exporter)
    model: PathBuf,
    /// The folder to write: new, empty, or an earlier export (which it replaces)
    #[arg(short, long, value_name = "DIR")]
    output: PathBuf,
    /// Print the folder and its files as JSON on stdout
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> Result<()> {
    match args.format {
        Format::Mlflow(args) => mlflow(args),
    }
}

fn mlflow(args: MlflowArgs) -> Result<()> {
    let onnx = std::fs::read(&args.model)
        .with_context(|| format!("cannot read {}", args.model.display()))?;
    let files = model::write_dir(&args.output, &onnx)
        .with_context(|| format!("cannot export {}", args.model.display()))?;
    if args.json {
        return super::print_json(&serde_json::json!({
            "dir": args.output,
            "files": files,
            "sha256": model::sha256(&onnx),
        }));
    }
    say!(
        "wrote MLflow model {} (flavours onnx, python_function; {} files)",
        args.output.display(),
        files.len()
    )?;
    Ok(())
}
