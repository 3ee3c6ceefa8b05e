//! `skiff bench`: one model on several backends, side by side: do they agree, and how many rows
//! a second does each run at each batch size.

use super::predict::input_from_table;
use anyhow::{Context, Result, bail};
use skiff_data::Table;
use skiff_runtime::{BackendKind, DataType, Model, Tensor, TensorData};
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct Args {
    /// The model (ONNX)
    model: PathBuf,
    /// Rows to run: CSV with a header row, columns matched by the model's feature names, or to
    /// its inputs by name for a model with an input per column (default: uniform random values
    /// in [-2, 2) for each feature of a model with one FP32 input)
    #[arg(long)]
    data: Option<PathBuf>,
    /// Backends to compare; the first is the reference the others must agree with
    #[arg(long, value_delimiter = ',', default_value = "tract,ort")]
    backends: Vec<BackendKind>,
    /// Rows per run; a batch larger than the data repeats its rows
    #[arg(long, value_delimiter = ',', default_value = "1,64,4096")]
    batch_sizes: Vec<usize>,
    /// Time spent on each backend and batch size (at least 3 runs each)
    #[arg(long, default_value_t = 1.0)]
    seconds: f64,
    /// Only check that the backends agree
    #[arg(long)]
    check_only: bool,
    /// Print one JSON object per line instead of a table
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    ort: super::OrtArgs,
}

/// How far two backends may differ: labels identical, numbers within this absolute plus this
/// relative difference.
const TOLERANCE: f64 = 1e-4;
/// Rows in the agreement check when the rows are random.
const CHECK_ROWS: usize = 1024;

pub fn run(args: Args) -> Result<()> {
    if !(args.seconds.is_finite() && args.seconds > 0.0) {
        bail!("--seconds {} must be a positive number", args.seconds);
    }
    if let Some(&zero) = args.batch_sizes.iter().find(|&&b| b == 0) {
        bail!("--batch-sizes has {zero}: every batch needs at least one row");
    }
    let mut models = Vec::new();
    for &backend in &args.backends {
        let started = Instant::now();
        let model = Model::load_path(&args.model, &args.ort.options(backend))?;
        report(
            args.json,
            serde_json::json!({
                "event": "load",
                "backend": model.backend(),
                "seconds": started.elapsed().as_secs_f64(),
            }),
        )?;
        models.push(model);
    }
    let rows = match &args.data {
        Some(path) => {
            input_from_table(&models[0], &args.model, &Table::from_path(path)?, &[])?.tensors
        }
        None => vec![random_rows(&models[0], &args)?],
    };
    let disagreements = check_agreement(&models, &rows, args.json)?;
    if !args.check_only {
        for &batch in &args.batch_sizes {
            let input: Vec<Tensor> = rows.iter().map(|t| repeat_rows(t, batch)).collect();
            for model in &models {
                let (runs, elapsed, median) =
                    time_runs(model, &input, Duration::from_secs_f64(args.seconds))?;
                report(
                    args.json,
                    serde_json::json!({
                        "event": "throughput",
                        "backend": model.backend(),
                        "batch": batch,
                        "runs": runs,
                        "rows_per_second": (runs * batch) as f64 / elapsed.as_secs_f64(),
                        "median_ms": median.as_secs_f64() * 1e3,
                    }),
                )?;
            }
        }
    }
    if disagreements > 0 {
        bail!(
            "{disagreements} output(s) differ between backends beyond labels identical and numbers within {TOLERANCE} (see above)"
        );
    }
    Ok(())
}

/// Prints one result: a JSON line, or a line of text.
fn report(json: bool, value: serde_json::Value) -> Result<()> {
    if json {
        return super::print_json(&value);
    }
    let backend = value["backend"].as_str().unwrap_or_default();
    let line = match value["event"].as_str() {
        Some("load") => format!(
            "{backend:<22} loaded in {:.1} ms",
            value["seconds"].as_f64().unwrap_or_default() * 1e3
        ),
        Some("agreement") => format!(
            "{backend:<22} agrees with {}: {} (largest difference {:.2e} over {} rows)",
            value["reference"].as_str().unwrap_or_default(),
            if value["agrees"] == true { "yes" } else { "NO" },
            value["max_abs_difference"].as_f64().unwrap_or_default(),
            value["rows"]
        ),
        _ => format!(
            "{backend:<22} batch {:>6}: {:>12.0} rows/s, median {:.3} ms per run ({} runs)",
            value["batch"],
            value["rows_per_second"].as_f64().unwrap_or_default(),
            value["median_ms"].as_f64().unwrap_or_default(),
            value["runs"]
        ),
    };
    say!("{line}")?;
    Ok(())
}

/// Runs every model on `rows` and compares each with the first; returns how many outputs
/// differ.
fn check_agreement(models: &[Model], rows: &[Tensor], json: bool) -> Result<usize> {
    let reference = models[0].run(rows.to_vec())?;
    let mut disagreements = 0;
    for model in &models[1..] {
        let outputs = model.run(rows.to_vec())?;
        let mut max_difference = 0.0f64;
        let mut agrees = true;
        for (want, got) in reference.iter().zip(&outputs) {
            let same = want.shape == got.shape
                && match (float_values(&want.data), float_values(&got.data)) {
                    (Some(w), Some(g)) => w.iter().zip(&g).all(|(w, g)| {
                        max_difference = max_difference.max((w - g).abs());
                        (w - g).abs() <= TOLERANCE + TOLERANCE * w.abs()
                    }),
                    _ => want.data == got.data,
                };
            if !same {
                agrees = false;
                disagreements += 1;
            }
        }
        report(
            json,
            serde_json::json!({
                "event": "agreement",
                "backend": model.backend(),
                "reference": models[0].backend(),
                "rows": rows[0].shape[0],
                "agrees": agrees,
                "max_abs_difference": max_difference,
            }),
        )?;
    }
    Ok(disagreements)
}

fn float_values(data: &TensorData) -> Option<Vec<f64>> {
    match data {
        TensorData::Fp32(v) => Some(v.iter().map(|&x| f64::from(x)).collect()),
        TensorData::Fp64(v) => Some(v.clone()),
        _ => None,
    }
}

/// Uniform random features for a model with one FP32 [rows, features] input.
fn random_rows(model: &Model, args: &Args) -> Result<Tensor> {
    use rand::{Rng, SeedableRng};
    let input = match model.inputs() {
        [input] if input.datatype == DataType::Fp32 && input.shape.len() == 2 => input,
        _ => bail!(
            "{} does not take one FP32 [rows, features] input: pass rows with --data",
            args.model.display()
        ),
    };
    let width = usize::try_from(input.shape[1])
        .ok()
        .context("the model's feature count is not fixed: pass rows with --data")?;
    let n = args
        .batch_sizes
        .iter()
        .copied()
        .max()
        .unwrap_or(1)
        .clamp(1, CHECK_ROWS);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let data = (0..n * width)
        .map(|_| rng.random_range(-2.0f32..2.0))
        .collect();
    Ok(Tensor::new(vec![n, width], TensorData::Fp32(data))?)
}

/// `batch` rows: the rows of `rows` (along its first axis), repeated as often as needed.
fn repeat_rows(rows: &Tensor, batch: usize) -> Tensor {
    fn repeat<T: Clone>(values: &[T], n: usize, batch: usize) -> Vec<T> {
        let width = values.len() / n.max(1);
        (0..batch)
            .flat_map(|i| &values[(i % n) * width..(i % n + 1) * width])
            .cloned()
            .collect()
    }
    let n = rows.shape[0];
    let data = match &rows.data {
        TensorData::Bool(v) => TensorData::Bool(repeat(v, n, batch)),
        TensorData::Int32(v) => TensorData::Int32(repeat(v, n, batch)),
        TensorData::Int64(v) => TensorData::Int64(repeat(v, n, batch)),
        TensorData::Fp32(v) => TensorData::Fp32(repeat(v, n, batch)),
        TensorData::Fp64(v) => TensorData::Fp64(repeat(v, n, batch)),
        TensorData::Bytes(v) => TensorData::Bytes(repeat(v, n, batch)),
    };
    let mut shape = rows.shape.clone();
    shape[0] = batch;
    Tensor::new(shape, data).expect("shape fits the data")
}

/// Runs `model` on `input` for about `budget` (at least 3 times, after one warm-up run);
/// returns the runs, the time they took, and the median time of one.
fn time_runs(
    model: &Model,
    input: &[Tensor],
    budget: Duration,
) -> Result<(usize, Duration, Duration)> {
    model.run(input.to_vec())?;
    let mut times = Vec::new();
    let started = Instant::now();
    while times.len() < 3 || started.elapsed() < budget {
        let copy = input.to_vec();
        let run_started = Instant::now();
        model.run(copy)?;
        times.push(run_started.elapsed());
    }
    let elapsed: Duration = times.iter().sum();
    times.sort();
    Ok((times.len(), elapsed, times[times.len() / 2]))
}
