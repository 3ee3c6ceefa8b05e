use anyhow::{Context, Result, bail};
use skiff_data::Table;
use skiff_runtime::{DataType, Model, Tensor, TensorData};
use std::io::Write;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// The model (ONNX)
    model: PathBuf,
    /// Rows to predict: CSV with a header row; columns are matched by the model's feature names
    #[arg(long)]
    data: PathBuf,
    /// Write predictions here instead of stdout
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// Also write one probability column per class (p_<class>, classes as the model names them)
    #[arg(long)]
    proba: bool,
    #[command(flatten)]
    backend: super::BackendArgs,
}

pub fn run(args: Args) -> Result<()> {
    let model = args.backend.load(&args.model)?;
    let table = Table::from_path(&args.data)?;
    let (outputs, x) = run_on_table(&model, &args.model, &table)?;
    let n_rows = x.nrows();

    let label_index = model.outputs().iter().position(|o| o.name == "label");
    let labels = &outputs[label_index.unwrap_or(0)];
    let mut writer = csv::Writer::from_writer(Vec::new());
    if width(labels, n_rows) != 1 {
        // Not one answer a row (a network's logits, several heads): every output, a column
        // per value.
        if args.proba {
            bail!(
                "{} has no label and probabilities outputs: drop --proba",
                args.model.display()
            );
        }
        write_all_outputs(&mut writer, &model, &outputs, n_rows)?;
    } else {
        write_predictions(&mut writer, &args, &model, &outputs, labels, n_rows)?;
    }
    let bytes = writer.into_inner().context("cannot format predictions")?;
    match &args.output {
        Some(path) => skiff_data::write_atomic(path, &bytes)
            .with_context(|| format!("cannot write {}", path.display())),
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(&bytes)?;
            Ok(out.flush()?)
        }
    }
}

/// Runs `model` on the rows of `table`, its columns matched by the model's feature names;
/// returns the outputs and the feature rows.
pub fn run_on_table(
    model: &Model,
    path: &std::path::Path,
    table: &Table,
) -> Result<(Vec<Tensor>, ndarray::Array2<f64>)> {
    let (input, x) = input_from_table(model, path, table)?;
    Ok((model.run(vec![input])?, x))
}

/// The rows of `table` as `model`'s input, its columns matched by the model's feature names;
/// also the feature rows.
pub fn input_from_table(
    model: &Model,
    path: &std::path::Path,
    table: &Table,
) -> Result<(Tensor, ndarray::Array2<f64>)> {
    let [input] = model.inputs() else {
        bail!(
            "{} takes {} inputs; skiff feeds models with one",
            path.display(),
            model.inputs().len()
        );
    };
    if input.datatype != DataType::Fp32 || input.shape.len() != 2 {
        bail!(
            "{} takes {} {:?}; skiff feeds FP32 [rows, features]",
            path.display(),
            input.datatype,
            input.shape
        );
    }
    let features = match model.feature_names() {
        Some(names) => names,
        None if input.shape[1] == table.headers().len() as i64 => table.headers().to_vec(),
        None => bail!(
            "{} records no feature names and takes {} columns, but {} has {}: pass exactly the feature columns",
            path.display(),
            input.shape[1],
            table.source(),
            table.headers().len()
        ),
    };
    let x = table.features(&features)?;
    let n_rows = x.nrows();
    let data = TensorData::Fp32(x.iter().map(|&v| v as f32).collect());
    Ok((Tensor::new(vec![n_rows, features.len()], data)?, x))
}

/// The label, and with `--proba` one probability column per class.
fn write_predictions(
    writer: &mut csv::Writer<Vec<u8>>,
    args: &Args,
    model: &Model,
    outputs: &[Tensor],
    labels: &Tensor,
    n_rows: usize,
) -> Result<()> {
    let mut header = vec!["prediction".to_string()];
    let probabilities = if args.proba {
        let index = model
            .outputs()
            .iter()
            .position(|o| o.name == "probabilities")
            .unwrap_or(1);
        let Some(p) = outputs.get(index).filter(|t| t.shape.len() == 2) else {
            bail!(
                "{} has no probabilities output: drop --proba",
                args.model.display()
            );
        };
        let TensorData::Fp32(values) = &p.data else {
            bail!("{}'s probabilities are not FP32", args.model.display());
        };
        let n_classes = p.shape[1];
        let names = model
            .class_labels()
            .filter(|c| c.len() == n_classes)
            .unwrap_or_else(|| (0..n_classes).map(|i| i.to_string()).collect());
        header.extend(names.iter().map(|c| format!("p_{c}")));
        Some((values, n_classes))
    } else {
        None
    };
    writer.write_record(&header)?;
    for row in 0..n_rows {
        let mut record = vec![cell(&labels.data, row)];
        if let Some((values, n)) = probabilities {
            record.extend(values[row * n..(row + 1) * n].iter().map(|p| p.to_string()));
        }
        writer.write_record(&record)?;
    }
    Ok(())
}

/// Every output: `NAME` for one value a row, `NAME_0`, `NAME_1`, ... for several.
fn write_all_outputs(
    writer: &mut csv::Writer<Vec<u8>>,
    model: &Model,
    outputs: &[Tensor],
    n_rows: usize,
) -> Result<()> {
    let widths: Vec<usize> = outputs.iter().map(|t| width(t, n_rows)).collect();
    let mut header = Vec::new();
    for (spec, &w) in model.outputs().iter().zip(&widths) {
        match w {
            1 => header.push(spec.name.clone()),
            w => header.extend((0..w).map(|j| format!("{}_{j}", spec.name))),
        }
    }
    writer.write_record(&header)?;
    for row in 0..n_rows {
        let mut record = Vec::with_capacity(header.len());
        for (t, &w) in outputs.iter().zip(&widths) {
            record.extend((row * w..(row + 1) * w).map(|i| cell(&t.data, i)));
        }
        writer.write_record(&record)?;
    }
    Ok(())
}

/// Values a row in `t`, whose first axis is the rows.
fn width(t: &Tensor, n_rows: usize) -> usize {
    t.data.len().checked_div(n_rows).unwrap_or(1)
}

/// Element `row` of a tensor's values, as text.
pub fn cell(data: &TensorData, index: usize) -> String {
    match data {
        TensorData::Bool(v) => v[index].to_string(),
        TensorData::Int32(v) => v[index].to_string(),
        TensorData::Int64(v) => v[index].to_string(),
        TensorData::Fp32(v) => v[index].to_string(),
        TensorData::Fp64(v) => v[index].to_string(),
        TensorData::Bytes(v) => v[index].clone(),
    }
}
