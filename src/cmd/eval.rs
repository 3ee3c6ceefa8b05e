use super::predict::run_on_table;
use anyhow::{Context, Result, bail};
use skiff_data::Table;
use skiff_learn::metrics;
use skiff_runtime::{Model, Tensor, TensorData};
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
    /// Fail (exit status 1, after printing the metrics) when METRIC is below VALUE: a quality
    /// gate for CI, e.g. --fail-under accuracy=0.9 (repeatable)
    #[arg(long, value_name = "METRIC=VALUE")]
    fail_under: Vec<String>,
    /// Fail when METRIC is above VALUE, for errors: --fail-over rmse=4.5 (repeatable)
    #[arg(long, value_name = "METRIC=VALUE")]
    fail_over: Vec<String>,
    #[command(flatten)]
    backend: super::BackendArgs,
}

/// A bound a metric must keep: `--fail-under` (a floor) or `--fail-over` (a ceiling).
struct Gate {
    metric: String,
    bound: f64,
    floor: bool,
}

impl Gate {
    fn parse(text: &str, floor: bool) -> Result<Gate> {
        let flag = if floor { "--fail-under" } else { "--fail-over" };
        let parsed = text.split_once('=').and_then(|(metric, bound)| {
            let bound = bound.trim().parse::<f64>().ok().filter(|b| b.is_finite())?;
            Some((metric.trim(), bound))
        });
        match parsed {
            Some((metric, bound)) if !metric.is_empty() => Ok(Gate {
                metric: metric.to_string(),
                bound,
                floor,
            }),
            _ => bail!("{flag} {text:?} is not METRIC=NUMBER (e.g. {flag} accuracy=0.9)"),
        }
    }

    /// The failure, where `value` is on the wrong side of the bound.
    fn check(&self, value: f64) -> Option<String> {
        let (flag, side) = if self.floor {
            ("--fail-under", "below the floor")
        } else {
            ("--fail-over", "above the ceiling")
        };
        // NaN keeps no bound.
        let kept = if self.floor {
            value >= self.bound
        } else {
            value <= self.bound
        };
        let failed = !kept;
        failed.then(|| {
            format!(
                "{} {value:.4} is {side} {} ({flag} {}={})",
                self.metric, self.bound, self.metric, self.bound
            )
        })
    }
}

pub fn run(args: Args) -> Result<()> {
    let gates = (args.fail_under.iter().map(|g| Gate::parse(g, true)))
        .chain(args.fail_over.iter().map(|g| Gate::parse(g, false)))
        .collect::<Result<Vec<_>>>()?;
    let model = args.backend.load(&args.model)?;
    let mut table = Table::from_path(&args.data)?;
    if let Some(target) = &args.target {
        keep_rows_with_target(&mut table, target)?;
    }
    let (outputs, inputs) = run_on_table(
        &model,
        &args.model,
        &table,
        args.target.as_deref().as_slice(),
    )?;
    let n_rows = inputs.rows;
    let truth = args
        .target
        .as_deref()
        .map(|t| table.column(t))
        .transpose()?;
    let task = task_of(&model);
    let scores = match task.as_str() {
        "classification" => {
            let truth = truth.context("a classifier is evaluated against --target")?;
            metrics::classification(&truth, &predicted_labels(&model, &outputs, n_rows)?)
        }
        "regression" => {
            let truth = truth.context("a regressor is evaluated against --target")?;
            let truth = numbers(&truth, args.target.as_deref().unwrap_or_default())?;
            metrics::regression(&truth, &predicted_values(&model, &outputs)?)
        }
        "clustering" => {
            let labels = output(&model, &outputs, "label")?;
            let TensorData::Int64(labels) = &labels.data else {
                bail!("the model's cluster labels are not INT64");
            };
            let clusters: Vec<usize> = labels.iter().map(|&l| l as usize).collect();
            // The silhouette needs the rows as numbers; a model with an input per column (text,
            // gaps) is scored against --target alone.
            if inputs.features.is_none() && truth.is_none() {
                bail!(
                    "{} reads a table with text or gaps, whose silhouette skiff eval cannot compute: pass --target to score it against true classes",
                    args.model.display()
                );
            }
            metrics::clustering(
                inputs.features.as_ref().map(|x| x.view()),
                &clusters,
                truth.as_deref(),
            )
        }
        other => bail!(
            "{} is a {other} model, which skiff eval does not score",
            args.model.display()
        ),
    };
    let mut failures = Vec::new();
    for gate in &gates {
        let Some(&(_, value)) = scores.iter().find(|(name, _)| *name == gate.metric) else {
            let names: Vec<&str> = scores.iter().map(|(name, _)| *name).collect();
            bail!(
                "{} is not a metric of this {task} model: it has {}",
                gate.metric,
                names.join(", ")
            );
        };
        failures.extend(gate.check(value));
    }
    print_scores(&args, &task, n_rows, &scores)?;
    if !failures.is_empty() {
        bail!("{}", failures.join("; "));
    }
    Ok(())
}

fn print_scores(args: &Args, task: &str, n_rows: usize, scores: &[(&str, f64)]) -> Result<()> {
    if args.json {
        let metrics: serde_json::Map<String, serde_json::Value> = scores
            .iter()
            .map(|(name, value)| (name.to_string(), serde_json::json!(value)))
            .collect();
        return super::print_json(&serde_json::json!({
            "model": args.model,
            "task": task,
            "rows": n_rows,
            "metrics": metrics,
        }));
    }
    say!("{task} on {n_rows} rows of {}", args.data.display())?;
    for (name, value) in scores {
        say!("{name}: {value:.4}")?;
    }
    Ok(())
}

/// Leaves out the rows of `table` whose `target` is missing, saying how many: they say nothing
/// about the model (fit leaves them out too). An error where every row's is.
pub fn keep_rows_with_target(table: &mut Table, target: &str) -> Result<()> {
    let keep: Vec<bool> = table
        .column(target)?
        .iter()
        .map(|cell| !table.is_missing(cell))
        .collect();
    let missing = keep.iter().filter(|k| !**k).count();
    if missing == keep.len() {
        bail!(
            "every row's target {target:?} is missing in {}: nothing to score",
            table.source()
        );
    }
    if missing > 0 {
        eprintln!("skiff: warning: left out {missing} rows whose target {target:?} is missing");
        table.retain_rows(&keep);
    }
    Ok(())
}

/// What `model` does: "classification", "regression", "clustering", ... from its metadata,
/// else from its outputs' names.
pub fn task_of(model: &Model) -> String {
    let has = |name: &str| model.outputs().iter().any(|o| o.name == name);
    model
        .metadata()
        .get(skiff_onnx::metadata::TASK)
        .cloned()
        .unwrap_or_else(|| {
            if has("variable") {
                "regression".into()
            } else if has("scores") {
                "clustering".into()
            } else {
                "classification".into()
            }
        })
}

/// The output of `model` named `name`, from a run's `outputs`.
pub fn output<'a>(model: &Model, outputs: &'a [Tensor], name: &str) -> Result<&'a Tensor> {
    model
        .outputs()
        .iter()
        .position(|o| o.name == name)
        .and_then(|i| outputs.get(i))
        .with_context(|| format!("the model has no {name} output"))
}

/// A classifier's predicted label of each of `n_rows` rows, as text.
pub fn predicted_labels(model: &Model, outputs: &[Tensor], n_rows: usize) -> Result<Vec<String>> {
    let labels = output(model, outputs, "label")?;
    Ok((0..n_rows)
        .map(|row| super::predict::cell(&labels.data, row))
        .collect())
}

/// A regressor's predicted value of each row.
pub fn predicted_values(model: &Model, outputs: &[Tensor]) -> Result<Vec<f64>> {
    let values = output(model, outputs, "variable")?;
    let TensorData::Fp32(predicted) = &values.data else {
        bail!("the model's variable output is not FP32");
    };
    Ok(predicted.iter().map(|&v| f64::from(v)).collect())
}

/// The cells of a target column as numbers: a regressor's truth.
pub fn numbers(cells: &[&str], column: &str) -> Result<Vec<f64>> {
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
