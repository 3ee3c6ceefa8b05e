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
    /// Also write one probability column per class (p_<class>)
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

    let spec_index = |name: &str, fallback: usize| {
        model
            .outputs()
            .iter()
            .position(|o| o.name == name)
            .unwrap_or(fallback)
    };
    let labels = &outputs[spec_index("label", 0)];
    let mut writer = csv::Writer::from_writer(Vec::new());
    let mut header = vec!["prediction".to_string()];
    let probabilities = if args.proba {
        let Some(p) = outputs
            .get(spec_index("probabilities", 1))
            .filter(|t| t.shape.len() == 2)
        else {
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

/// Row `row` of a column of values, as text.
pub fn cell(data: &TensorData, row: usize) -> String {
    match data {
        TensorData::Bool(v) => v[row].to_string(),
        TensorData::Int32(v) => v[row].to_string(),
        TensorData::Int64(v) => v[row].to_string(),
        TensorData::Fp32(v) => v[row].to_string(),
        TensorData::Fp64(v) => v[row].to_string(),
        TensorData::Bytes(v) => v[row].clone(),
    }
}
