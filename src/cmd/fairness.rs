//! `skiff fairness`: a model's metrics on each group of rows, and how far apart the groups are
//! (Fairlearn's MetricFrame, demographic parity, equalized odds).

use super::eval::{keep_rows_with_target, numbers, predicted_labels, predicted_values, task_of};
use super::predict::run_on_table;
use anyhow::{Result, bail};
use skiff_data::Table;
use skiff_inspect::fairness::{self, Method, Metric, MetricFrame, Parity, Targets};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// The model (ONNX, or a component)
    model: PathBuf,
    /// Rows with their true targets and sensitive features: CSV with a header row
    #[arg(long)]
    data: PathBuf,
    /// The column holding the true target
    #[arg(long)]
    target: String,
    /// The columns whose values form the groups; several make intersectional groups (every
    /// combination of their values)
    #[arg(
        long,
        value_delimiter = ',',
        required = true,
        value_name = "COLUMN[,COLUMN...]"
    )]
    sensitive: Vec<String>,
    /// Metrics to compare: accuracy, balanced_accuracy, selection_rate, tpr (recall), fpr,
    /// tnr, fnr, precision, f1, count for classifiers (default accuracy, selection_rate, tpr,
    /// fpr, count); r2, mae, mse, rmse, mean_prediction, count for regressors (default r2,
    /// mae, mean_prediction, count)
    #[arg(long, value_delimiter = ',', value_name = "METRIC[,METRIC...]")]
    metrics: Vec<String>,
    /// The label the rates count as positive (selection rate, TPR, FPR, ...)
    #[arg(long, default_value = "1", value_name = "LABEL")]
    pos_label: String,
    /// How groups are compared: between_groups (largest less smallest, smallest over largest)
    /// or to_overall (each group against every row)
    #[arg(long, default_value = "between_groups", value_parser = ["between_groups", "to_overall"])]
    method: String,
    /// A column of row weights, passed to every metric as its sample_weight (count excepted)
    #[arg(long, value_name = "COLUMN")]
    sample_weight: Option<String>,
    /// Print the frame as JSON
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    backend: super::BackendArgs,
}

pub fn run(args: Args) -> Result<()> {
    let method = match args.method.as_str() {
        "to_overall" => Method::ToOverall,
        _ => Method::BetweenGroups,
    };
    let model = args.backend.load(&args.model)?;
    let mut table = Table::from_path(&args.data)?;
    keep_rows_with_target(&mut table, &args.target)?;
    // The target, the groups and the weights are not features, also for a model that
    // records no feature names.
    let not_features: Vec<&str> = (std::iter::once(&args.target))
        .chain(&args.sensitive)
        .chain(&args.sample_weight)
        .map(String::as_str)
        .collect();
    let (outputs, inputs) = run_on_table(&model, &args.model, &table, &not_features)?;
    let truth = table.column(&args.target)?;
    let task = task_of(&model);
    let targets = match task.as_str() {
        "classification" => {
            let predicted = predicted_labels(&model, &outputs, inputs.rows)?;
            let truth: Vec<String> = truth.iter().map(|c| c.to_string()).collect();
            if !truth.iter().chain(&predicted).any(|l| *l == args.pos_label) {
                let labels: std::collections::BTreeSet<&String> = truth.iter().collect();
                let named: Vec<String> = labels.iter().take(5).map(|l| format!("{l:?}")).collect();
                bail!(
                    "no true or predicted label is {:?}: name the positive label with --pos-label (the labels are {}{})",
                    args.pos_label,
                    named.join(", "),
                    if labels.len() > 5 { ", ..." } else { "" }
                );
            }
            Targets::Labels {
                truth,
                predicted,
                positive: args.pos_label.clone(),
            }
        }
        "regression" => Targets::Values {
            truth: numbers(&truth, &args.target)?,
            predicted: predicted_values(&model, &outputs)?,
        },
        other => bail!(
            "{} is a {other} model: fairness compares classifiers and regressors",
            args.model.display()
        ),
    };
    let names: Vec<String> = if args.metrics.is_empty() {
        let defaults: &[&str] = if task == "regression" {
            &["r2", "mae", "mean_prediction", "count"]
        } else {
            &["accuracy", "selection_rate", "tpr", "fpr", "count"]
        };
        defaults.iter().map(|m| m.to_string()).collect()
    } else {
        args.metrics.iter().map(|m| m.trim().to_string()).collect()
    };
    let metrics = names
        .iter()
        .map(|n| Ok((n.clone(), Metric::parse(n)?)))
        .collect::<Result<Vec<_>>>()?;
    let sensitive = args
        .sensitive
        .iter()
        .map(|name| {
            let cells = table.column(name)?;
            let values = cells
                .iter()
                .map(|c| (!table.is_missing(c.trim())).then(|| c.to_string()))
                .collect();
            Ok((name.clone(), values))
        })
        .collect::<Result<Vec<_>>>()?;
    let weights = args
        .sample_weight
        .as_deref()
        .map(|column| -> Result<Vec<f64>> {
            let weights = numbers(&table.column(column)?, column)?;
            if weights.iter().any(|w| *w < 0.0) {
                bail!("--sample-weight {column}: weights are 0 or more");
            }
            Ok(weights)
        })
        .transpose()?;
    let frame = fairness::metric_frame(&targets, weights.as_deref(), &sensitive, &metrics, method)?;
    let parity = matches!(targets, Targets::Labels { .. })
        .then(|| fairness::parity(&targets, weights.as_deref(), &sensitive, method))
        .transpose()?;
    if args.json {
        let mut json = serde_json::to_value(&frame)?;
        json["model"] = serde_json::json!(args.model);
        json["rows"] = serde_json::json!(inputs.rows);
        if let Some(parity) = &parity {
            json["parity"] = serde_json::to_value(parity)?;
        }
        return super::print_json(&json);
    }
    print_frame(&args, &frame, parity.as_ref(), inputs.rows)
}

fn print_frame(
    args: &Args,
    frame: &MetricFrame,
    parity: Option<&Parity>,
    rows: usize,
) -> Result<()> {
    say!(
        "{} on {rows} rows of {}, grouped by {}",
        args.model.display(),
        args.data.display(),
        frame.sensitive.join(", ")
    )?;
    let label_width = (frame.by_group.iter().map(|g| g.values.join(", ").len()))
        .chain([frame.sensitive.join(", ").len(), 10])
        .max()
        .unwrap_or(10);
    let widths: Vec<usize> = frame.metrics.iter().map(|m| m.len().max(9)).collect();
    let line = |label: &str, values: &[f64]| {
        let cells: Vec<String> = (values.iter().zip(&widths).zip(&frame.metrics))
            .map(|((v, w), metric)| {
                if v.is_nan() {
                    format!("{:>w$}", "-")
                } else if metric == "count" && v.fract() == 0.0 {
                    format!("{v:>w$.0}")
                } else {
                    format!("{v:>w$.4}")
                }
            })
            .collect();
        format!("{label:label_width$}  {}", cells.join("  "))
    };
    let header: Vec<String> = (frame.metrics.iter().zip(&widths))
        .map(|(m, w)| format!("{m:>w$}"))
        .collect();
    say!(
        "{:label_width$}  {}",
        frame.sensitive.join(", "),
        header.join("  ")
    )?;
    for group in &frame.by_group {
        say!("{}", line(&group.values.join(", "), &group.metrics))?;
    }
    say!("{}", line("overall", &frame.overall))?;
    say!("{}", line("group min", &frame.group_min))?;
    say!("{}", line("group max", &frame.group_max))?;
    say!("{}", line("difference", &frame.difference))?;
    say!("{}", line("ratio", &frame.ratio))?;
    if let Some(p) = parity {
        say!(
            "demographic parity difference {:.4}, ratio {:.4}",
            p.demographic_parity_difference,
            p.demographic_parity_ratio
        )?;
        say!(
            "equalized odds difference {:.4}, ratio {:.4}",
            p.equalized_odds_difference,
            p.equalized_odds_ratio
        )?;
    }
    Ok(())
}
