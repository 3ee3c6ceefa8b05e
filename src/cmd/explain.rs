//! `skiff explain`: why a model answers as it does, on any ONNX file (skiff's, skl2onnx's, ...)
//! or component, as scikit-learn's `sklearn.inspection` computes it.

use super::eval::{keep_rows_with_target, numbers, predicted_labels, predicted_values, task_of};
use super::predict::{TableInputs, class_names, input_from_table, probabilities};
use crate::progress::CountBar;
use anyhow::{Context, Result, bail};
use skiff_data::{Kind, Table, Values};
use skiff_inspect::pdp;
use skiff_inspect::{Feature, importance};
use skiff_learn::metrics;
use skiff_runtime::explain::{Explainer, Method};
use skiff_runtime::{DataType, Model, Tensor};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Permutation importance: how much the score drops when one feature's values are shuffled
    /// across the rows (scikit-learn's permutation_importance)
    Importance(ImportanceArgs),
    /// Partial dependence: the mean prediction as one feature takes each value of a grid
    /// (scikit-learn's partial_dependence, brute method)
    Pdp(PdpArgs),
    /// SHAP values: each feature's share of each row's score (exact TreeSHAP for tree
    /// ensembles, linear SHAP for linear models, as the shap package computes them)
    Shap(ShapArgs),
}

#[derive(clap::Args)]
struct ShapArgs {
    /// The model (ONNX)
    model: PathBuf,
    /// The rows to explain: CSV with a header row
    #[arg(long)]
    data: PathBuf,
    /// Rows like the training data, that the values are measured from: trees route them to
    /// weigh their branches, linear models take their mean [default: the file's hit counts
    /// for trees that have them, else the --data rows]
    #[arg(long)]
    background: Option<PathBuf>,
    /// A column of true targets in the CSV files, which the model does not read (needed only
    /// for a model that records no feature names)
    #[arg(long)]
    target: Option<String>,
    /// Print every row's values as JSON (rows x features x outputs, as shap's Explanation)
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
struct ImportanceArgs {
    /// The model (ONNX, or a component)
    model: PathBuf,
    /// Rows with their true targets, held out from training: CSV with a header row
    #[arg(long)]
    data: PathBuf,
    /// The column holding the true target
    #[arg(long)]
    target: String,
    /// The score whose drop is measured, as scikit-learn names it: accuracy (classifiers'
    /// default), balanced_accuracy, f1_macro, f1_weighted; r2 (regressors' default),
    /// neg_mean_squared_error, neg_root_mean_squared_error, neg_mean_absolute_error
    #[arg(long)]
    scoring: Option<String>,
    /// Shuffles of each feature
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    n_repeats: u32,
    /// Seed of the shuffles: the same seed, the same shuffles
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Print the importances (each repeat's included) as JSON
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    backend: super::BackendArgs,
}

#[derive(clap::Args)]
struct PdpArgs {
    /// The model (ONNX, or a component)
    model: PathBuf,
    /// The rows the prediction is averaged over: CSV with a header row
    #[arg(long)]
    data: PathBuf,
    /// The feature (a column the model reads) that moves over the grid
    #[arg(long)]
    feature: String,
    /// A column of true targets in --data, which the model does not read (needed only for a
    /// model that records no feature names)
    #[arg(long)]
    target: Option<String>,
    /// Values in the grid of a numeric feature with at least this many distinct values
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(2..=100_000))]
    grid_resolution: u32,
    /// The quantiles the grid spans, LOW,HIGH (scipy's mquantiles, as scikit-learn takes them)
    #[arg(long, default_value = "0.05,0.95", value_name = "LOW,HIGH")]
    percentiles: String,
    /// Also draw the partial dependence to this SVG file
    #[arg(long, value_name = "FILE.svg")]
    plot: Option<PathBuf>,
    /// Print the grid and the averages as JSON
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    backend: super::BackendArgs,
}

pub fn run(args: Args) -> Result<()> {
    match args.command {
        Command::Importance(args) => importance(args),
        Command::Pdp(args) => partial_dependence(args),
        Command::Shap(args) => shap(args),
    }
}

/// The features of a model's table inputs: the matrix's columns, or one per input.
fn features(inputs: &TableInputs) -> Vec<Feature> {
    let matrix = inputs.features.is_some();
    (inputs.columns.iter().enumerate())
        .map(|(i, name)| Feature {
            name: name.clone(),
            input: if matrix { 0 } else { i },
            column: matrix.then_some(i),
        })
        .collect()
}

/// A model's run on changed inputs, for the inspections' callbacks.
fn run_model(model: &Model, inputs: &[Tensor]) -> skiff_inspect::Result<Vec<Tensor>> {
    Ok(model.run(inputs.to_vec())?)
}

/// A failure inside a callback, kept as its one-line message.
fn invalid(e: anyhow::Error) -> skiff_inspect::Error {
    skiff_inspect::Error::Invalid(format!("{e:#}"))
}

/// A model's score on the inputs it is given, greater being better.
type Scorer<'a> = Box<dyn Fn(&[Tensor]) -> Result<f64> + Sync + 'a>;
/// A regression metric of true and predicted values.
type ValueMetric = fn(&[f64], &[f64]) -> f64;

fn importance(args: ImportanceArgs) -> Result<()> {
    let model = args.backend.load(&args.model)?;
    let mut table = Table::from_path(&args.data)?;
    keep_rows_with_target(&mut table, &args.target)?;
    let inputs = input_from_table(&model, &args.model, &table, &[&args.target])?;
    let truth = table.column(&args.target)?;
    let task = task_of(&model);
    let n = inputs.rows;
    let (scoring, score): (&str, Scorer<'_>) = match task.as_str() {
        "classification" => {
            let truth: Vec<String> = truth.iter().map(|c| c.to_string()).collect();
            let name = args.scoring.as_deref().unwrap_or("accuracy");
            let metric: fn(&[usize], &[usize]) -> f64 = match name {
                "accuracy" => metrics::accuracy,
                "balanced_accuracy" => metrics::balanced_accuracy,
                "f1_macro" => metrics::macro_f1,
                "f1_weighted" => metrics::weighted_f1,
                other => bail!(
                    "--scoring {other} does not score a classifier: use accuracy, balanced_accuracy, f1_macro or f1_weighted"
                ),
            };
            let model = &model;
            (
                name,
                Box::new(move |x: &[Tensor]| {
                    let predicted = predicted_labels(model, &model.run(x.to_vec())?, n)?;
                    let (t, p) = metrics::label_indices(&truth, &predicted);
                    Ok(metric(&t, &p))
                }),
            )
        }
        "regression" => {
            let truth = numbers(&truth, &args.target)?;
            let name = args.scoring.as_deref().unwrap_or("r2");
            let (metric, sign): (ValueMetric, f64) = match name {
                "r2" => (metrics::r2, 1.0),
                "neg_mean_squared_error" => (metrics::mse, -1.0),
                "neg_root_mean_squared_error" => (metrics::rmse, -1.0),
                "neg_mean_absolute_error" => (metrics::mae, -1.0),
                other => bail!(
                    "--scoring {other} does not score a regressor: use r2, neg_mean_squared_error, neg_root_mean_squared_error or neg_mean_absolute_error"
                ),
            };
            let model = &model;
            (
                name,
                Box::new(move |x: &[Tensor]| {
                    let predicted = predicted_values(model, &model.run(x.to_vec())?)?;
                    Ok(sign * metric(&truth, &predicted))
                }),
            )
        }
        other => bail!(
            "{} is a {other} model: permutation importance scores classifiers and regressors",
            args.model.display()
        ),
    };
    let features = features(&inputs);
    let bar = CountBar::new("runs");
    bar.set_total(1 + features.len() * args.n_repeats as usize);
    let result = importance::permutation_importance(
        &inputs.tensors,
        n,
        &features,
        args.n_repeats as usize,
        args.seed,
        |x| {
            let scored = score(x).map_err(invalid);
            bar.inc();
            scored
        },
    );
    bar.clear();
    let result = result?;
    if args.json {
        return super::print_json(&serde_json::json!({
            "model": args.model,
            "rows": n,
            "scoring": scoring,
            "n_repeats": args.n_repeats,
            "seed": args.seed,
            "baseline": result.baseline,
            "importances": result.features,
        }));
    }
    say!(
        "permutation importance on {n} rows of {}: {scoring} {:.4} as they are, {} shuffles of each feature",
        args.data.display(),
        result.baseline,
        args.n_repeats
    )?;
    let mut ranked: Vec<_> = result.features.iter().collect();
    ranked.sort_by(|a, b| b.mean.total_cmp(&a.mean));
    let width = ranked
        .iter()
        .map(|f| f.feature.len())
        .max()
        .unwrap_or(0)
        .max(7);
    say!("{:width$}  {:>9}  {:>9}", "feature", "mean", "std")?;
    for f in ranked {
        say!("{:width$}  {:>9.4}  {:>9.4}", f.feature, f.mean, f.std)?;
    }
    Ok(())
}

fn shap(args: ShapArgs) -> Result<()> {
    let bytes = std::fs::read(&args.model)
        .with_context(|| format!("cannot read {}", args.model.display()))?;
    let mut explainer = Explainer::new(&args.model.display().to_string(), &bytes)?;
    let model = Model::from_bytes(&args.model.display().to_string(), &bytes)?;
    let table = Table::from_path(&args.data)?;
    let mut inputs = input_from_table(
        &model,
        &args.model,
        &table,
        args.target.as_deref().as_slice(),
    )?;
    let background = match &args.background {
        Some(path) => {
            let table = Table::from_path(path)?;
            let rows = input_from_table(
                &model,
                &args.model,
                &table,
                args.target.as_deref().as_slice(),
            )?;
            explainer.set_background(rows.tensors)?;
            format!("{} rows of {}", rows.rows, path.display())
        }
        None if explainer.has_reference() => "the file's hit counts".to_string(),
        None => {
            explainer.set_background(inputs.tensors.clone())?;
            format!("the {} rows explained", inputs.rows)
        }
    };
    let mut explained = explainer.explain(std::mem::take(&mut inputs.tensors))?;
    // The table's names for the columns the values are given for.
    for feature in &mut explained.features {
        if let Some((input, column)) = feature.source {
            let at = if inputs.features.is_some() {
                column
            } else {
                input
            };
            if let Some(name) = inputs.columns.get(at) {
                feature.name = name.clone();
            }
        }
    }
    let (n_features, n_outputs) = (explained.features.len(), explained.outputs.len());
    if args.json {
        let values: Vec<Vec<&[f64]>> = (0..explained.rows)
            .map(|r| explained.row(r).chunks(n_outputs).collect())
            .collect();
        return super::print_json(&serde_json::json!({
            "model": args.model,
            "method": explained.method,
            "transform": explained.transform,
            "background": background,
            "rows": explained.rows,
            "features": explained.features.iter().map(|f| &f.name).collect::<Vec<_>>(),
            "outputs": explained.outputs,
            "base_values": explained.base_values,
            "values": values,
        }));
    }
    let method = match explained.method {
        Method::Tree => "TreeSHAP (path-dependent)",
        Method::Linear => "linear SHAP",
    };
    let scores = match &explained.transform {
        Some(t) => format!("scores before the {t}"),
        None => "scores".to_string(),
    };
    say!(
        "{method} of {} rows of {}, measured from {background}: mean |value| per feature \
         (the {scores}; --json for every row's values)",
        explained.rows,
        args.data.display()
    )?;
    let mut mean_abs = vec![0.0; n_features * n_outputs];
    for r in 0..explained.rows {
        for (m, v) in mean_abs.iter_mut().zip(explained.row(r)) {
            *m += v.abs() / explained.rows as f64;
        }
    }
    let mut order: Vec<usize> = (0..n_features).collect();
    let total = |j: usize| -> f64 { mean_abs[j * n_outputs..(j + 1) * n_outputs].iter().sum() };
    order.sort_by(|&a, &b| total(b).total_cmp(&total(a)));
    let name_width = (explained.features.iter())
        .map(|f| f.name.len())
        .chain([11])
        .max()
        .unwrap_or(0);
    let cell = |s: &str| s.len().max(10);
    let mut header = format!("{:name_width$}", "feature");
    for o in &explained.outputs {
        header += &format!("  {o:>w$}", w = cell(o));
    }
    say!("{header}")?;
    for j in order {
        let mut line = format!("{:name_width$}", explained.features[j].name);
        for (o, name) in explained.outputs.iter().enumerate() {
            line += &format!("  {:>w$.4}", mean_abs[j * n_outputs + o], w = cell(name));
        }
        say!("{line}")?;
    }
    let mut line = format!("{:name_width$}", "base value");
    for (b, name) in explained.base_values.iter().zip(&explained.outputs) {
        line += &format!("  {b:>w$.4}", w = cell(name));
    }
    say!("{line}")?;
    Ok(())
}

fn partial_dependence(args: PdpArgs) -> Result<()> {
    let percentiles = parse_percentiles(&args.percentiles)?;
    if let Some(plot) = &args.plot
        && plot.extension().and_then(|e| e.to_str()) != Some("svg")
    {
        bail!(
            "--plot {} : skiff draws SVG; name the file with .svg",
            plot.display()
        );
    }
    let model = args.backend.load(&args.model)?;
    let table = Table::from_path(&args.data)?;
    let inputs = input_from_table(
        &model,
        &args.model,
        &table,
        args.target.as_deref().as_slice(),
    )?;
    let features = features(&inputs);
    let Some(j) = features.iter().position(|f| f.name == args.feature) else {
        bail!(
            "{} reads no feature {:?}: pass --feature one of {}",
            args.model.display(),
            args.feature,
            inputs.columns.join(", ")
        );
    };
    let feature = &features[j];
    let values = feature_values(&model, &inputs, feature, &table)?;
    let grid = pdp::grid(&values, percentiles, args.grid_resolution as usize)?;
    let regressor = match task_of(&model).as_str() {
        "regression" => true,
        "classification" => false,
        other => bail!(
            "{} is a {other} model: partial dependence averages a classifier's probabilities or a regressor's values",
            args.model.display()
        ),
    };
    let bar = CountBar::new("runs");
    bar.set_total(grid.len());
    let average = pdp::partial_dependence(&inputs.tensors, inputs.rows, feature, &grid, |x| {
        let run = run_model(&model, x)?;
        bar.inc();
        predictions(&model, regressor, &run).map_err(invalid)
    });
    bar.clear();
    let mut average = average?;
    let mut series = match regressor {
        true => vec!["prediction".to_string()],
        false => class_names(&model, average.len()),
    };
    // Two classes: the positive (second) class's probability alone, as scikit-learn.
    if !regressor && average.len() == 2 {
        average.remove(0);
        series.remove(0);
    }
    if let Some(path) = &args.plot {
        let svg = pdp::svg(&feature.name, &grid, &average, &series)?;
        skiff_data::write_atomic(path, svg.as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    if args.json {
        return super::print_json(&serde_json::json!({
            "model": args.model,
            "rows": inputs.rows,
            "feature": feature.name,
            "grid_values": grid,
            "outputs": series,
            "average": average,
        }));
    }
    let mut out = csv::Writer::from_writer(std::io::stdout().lock());
    out.write_record(
        std::iter::once(feature.name.as_str()).chain(series.iter().map(String::as_str)),
    )?;
    for (g, value) in grid.iter().enumerate() {
        let record =
            std::iter::once(value.to_string()).chain(average.iter().map(|a| a[g].to_string()));
        out.write_record(record)?;
    }
    Ok(out.flush()?)
}

/// `LOW,HIGH` as two numbers.
fn parse_percentiles(text: &str) -> Result<(f64, f64)> {
    let parsed = text
        .split_once(',')
        .and_then(|(a, b)| Some((a.trim().parse().ok()?, b.trim().parse().ok()?)));
    parsed.with_context(|| {
        format!("--percentiles {text:?} is not LOW,HIGH (two numbers from 0 to 1, e.g. 0.05,0.95)")
    })
}

/// A feature's values across the rows, as the table holds them (numbers in full precision,
/// before the model's float inputs round them).
fn feature_values(
    model: &Model,
    inputs: &TableInputs,
    feature: &Feature,
    table: &Table,
) -> Result<Values> {
    if let (Some(x), Some(j)) = (&inputs.features, feature.column) {
        return Ok(Values::Numbers(x.column(j).to_vec()));
    }
    let kind = match model.inputs()[feature.input].datatype {
        DataType::Bytes => Kind::Categorical,
        _ => Kind::Numeric,
    };
    Ok(table.values(&feature.name, kind)?)
}

/// Each row's predictions in a run's outputs, one vector per output averaged: each class's
/// probability, or a regressor's value.
fn predictions(model: &Model, regressor: bool, run: &[Tensor]) -> Result<Vec<Vec<f64>>> {
    if regressor {
        return Ok(vec![predicted_values(model, run)?]);
    }
    let (values, k) = probabilities(model, run)?
        .context("the model has no probabilities output, which partial dependence averages")?;
    Ok((0..k)
        .map(|c| {
            values
                .iter()
                .skip(c)
                .step_by(k)
                .map(|&p| f64::from(p))
                .collect()
        })
        .collect())
}
