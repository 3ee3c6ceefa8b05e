use super::predict::run_on_table;
use anyhow::{Context, Result, bail};
use skiff_data::Table;
use skiff_learn::metrics;
use skiff_runtime::{Tensor, TensorData};
use std::collections::HashMap;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// The model (ONNX)
    model: PathBuf,
    /// Rows with their true targets: CSV with a header row
    #[arg(long)]
    data: PathBuf,
    /// The column holding the true target (clusterers: optional, for the adjusted Rand index)
    #[arg(long)]
    target: Option<String>,
    /// Print the metrics as JSON
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    backend: super::BackendArgs,
}

pub fn run(args: Args) -> Result<()> {
    let model = args.backend.load(&args.model)?;
    let table = Table::from_path(&args.data)?;
    let (outputs, x) = run_on_table(&model, &args.model, &table)?;
    let output = |name: &str| -> Option<&Tensor> {
        let i = model.outputs().iter().position(|o| o.name == name)?;
        outputs.get(i)
    };
    let truth = args
        .target
        .as_deref()
        .map(|t| table.column(t))
        .transpose()?;
    let task = model
        .metadata()
        .get(skiff_onnx::metadata::TASK)
        .cloned()
        .unwrap_or_else(|| {
            if output("variable").is_some() {
                "regression".into()
            } else if output("scores").is_some() {
                "clustering".into()
            } else {
                "classification".into()
            }
        });
    let mut scores: Vec<(&str, f64)> = Vec::new();
    match task.as_str() {
        "classification" => {
            let truth = truth.context("a classifier is evaluated against --target")?;
            let labels = output("label").context("the model has no label output")?;
            let predicted: Vec<String> = (0..x.nrows())
                .map(|row| super::predict::cell(&labels.data, row))
                .collect();
            let (t, p) = indices(&truth, &predicted);
            scores.push(("accuracy", metrics::accuracy(&t, &p)));
            scores.push(("macro_f1", metrics::macro_f1(&t, &p)));
        }
        "regression" => {
            let truth = truth.context("a regressor is evaluated against --target")?;
            let truth = numbers(&truth, args.target.as_deref().unwrap_or_default())?;
            let values = output("variable").context("the model has no variable output")?;
            let TensorData::Fp32(predicted) = &values.data else {
                bail!("the model's variable output is not FP32");
            };
            let predicted: Vec<f64> = predicted.iter().map(|&v| f64::from(v)).collect();
            scores.push(("r2", metrics::r2(&truth, &predicted)));
            scores.push(("rmse", metrics::rmse(&truth, &predicted)));
            scores.push(("mae", metrics::mae(&truth, &predicted)));
        }
        "clustering" => {
            let labels = output("label").context("the model has no label output")?;
            let TensorData::Int64(labels) = &labels.data else {
                bail!("the model's cluster labels are not INT64");
            };
            let clusters: Vec<usize> = labels.iter().map(|&l| l as usize).collect();
            if let Some(s) = metrics::silhouette(x.view(), &clusters) {
                scores.push(("silhouette", s));
            }
            if let Some(truth) = &truth {
                let named: Vec<String> = clusters.iter().map(|c| c.to_string()).collect();
                let (t, p) = indices(truth, &named);
                scores.push(("adjusted_rand_index", metrics::adjusted_rand_index(&t, &p)));
            }
        }
        other => bail!(
            "{} is a {other} model, which skiff eval does not score",
            args.model.display()
        ),
    }
    if args.json {
        let metrics: serde_json::Map<String, serde_json::Value> = scores
            .iter()
            .map(|(name, value)| (name.to_string(), serde_json::json!(value)))
            .collect();
        return super::print_json(&serde_json::json!({
            "model": args.model,
            "task": task,
            "rows": x.nrows(),
            "metrics": metrics,
        }));
    }
    say!("{task} on {} rows of {}", x.nrows(), args.data.display())?;
    for (name, value) in scores {
        say!("{name}: {value:.4}")?;
    }
    Ok(())
}

/// Both labelings as indices into the labels they share.
fn indices<S: AsRef<str>, T: AsRef<str>>(truth: &[S], predicted: &[T]) -> (Vec<usize>, Vec<usize>) {
    let mut ids: HashMap<String, usize> = HashMap::new();
    let mut id = |label: &str| {
        let next = ids.len();
        *ids.entry(label.to_string()).or_insert(next)
    };
    let t = truth.iter().map(|l| id(l.as_ref())).collect();
    let p = predicted.iter().map(|l| id(l.as_ref())).collect();
    (t, p)
}

fn numbers(cells: &[&str], column: &str) -> Result<Vec<f64>> {
    cells
        .iter()
        .enumerate()
        .map(|(row, cell)| {
            cell.parse::<f64>().ok().filter(|v| v.is_finite()).with_context(|| {
                format!(
                    "target {column:?} in data row {} is {cell:?}, not a number: a regressor is scored against numbers",
                    row + 1
                )
            })
        })
        .collect()
}
