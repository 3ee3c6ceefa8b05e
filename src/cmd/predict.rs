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
    let (outputs, inputs) = run_on_table(&model, &args.model, &table, &[])?;
    let n_rows = inputs.rows;

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

/// Runs `model` on the rows of `table`, its columns matched to the model's inputs (see
/// [`input_from_table`] for `not_features`).
pub fn run_on_table(
    model: &Model,
    path: &std::path::Path,
    table: &Table,
    not_features: &[&str],
) -> Result<(Vec<Tensor>, TableInputs)> {
    let inputs = input_from_table(model, path, table, not_features)?;
    Ok((model.run(inputs.tensors.clone())?, inputs))
}

/// A table's rows as a model's inputs.
pub struct TableInputs {
    /// One tensor per model input, in the model's order.
    pub tensors: Vec<Tensor>,
    /// How many rows.
    pub rows: usize,
    /// The rows as numbers, for a model whose one input is a float matrix of features.
    pub features: Option<ndarray::Array2<f64>>,
    /// The table's columns the model reads: the matrix's columns in order, or one per input.
    pub columns: Vec<String>,
}

/// The rows of `table` as `model`'s inputs. A model with one float [rows, features] input
/// gets the columns its feature names list (or, where it records none, every column but the
/// `not_features` columns: the true answers where a command scores them, the groups where it
/// compares them); a model
/// with an input per column (skl2onnx's convention for data frames: [rows, 1] or [rows], named
/// after the column) gets each column as its input's type: text for strings, numbers for
/// numbers, with missing cells (empty, NA, NaN, null and pandas' other markers) as NaN in
/// float inputs.
pub fn input_from_table(
    model: &Model,
    path: &std::path::Path,
    table: &Table,
    not_features: &[&str],
) -> Result<TableInputs> {
    if let [input] = model.inputs()
        && input.datatype == DataType::Fp32
        && input.shape.len() == 2
        && !(input.shape[1] == 1 && table.column_index(&input.name).is_ok())
    {
        let others = || -> Vec<String> {
            (table.headers().iter())
                .filter(|h| !not_features.contains(&h.as_str()))
                .cloned()
                .collect()
        };
        let features = match model.feature_names() {
            Some(names) => names,
            None if input.shape[1] == others().len() as i64 => others(),
            None => bail!(
                "{} records no feature names and takes {} columns, but {} has {}{}: pass exactly the feature columns",
                path.display(),
                input.shape[1],
                table.source(),
                others().len(),
                match not_features {
                    [] => String::new(),
                    columns => format!(" besides {columns:?}"),
                }
            ),
        };
        let x = table.features(&features)?;
        let n_rows = x.nrows();
        let data = TensorData::Fp32(x.iter().map(|&v| v as f32).collect());
        return Ok(TableInputs {
            tensors: vec![Tensor::new(vec![n_rows, features.len()], data)?],
            rows: n_rows,
            features: Some(x),
            columns: features,
        });
    }
    let rows = table.n_rows();
    let tensors = model
        .inputs()
        .iter()
        .map(|input| column_input(input, path, table))
        .collect::<Result<Vec<_>>>()?;
    Ok(TableInputs {
        tensors,
        rows,
        features: None,
        columns: model.inputs().iter().map(|i| i.name.clone()).collect(),
    })
}

/// Column `input.name` of `table` as that input: [rows, 1] or [rows] of its type.
fn column_input(
    input: &skiff_runtime::IoSpec,
    path: &std::path::Path,
    table: &Table,
) -> Result<Tensor> {
    let rank_fits = match input.shape.as_slice() {
        [_] => true,
        [_, width] => *width == 1 || *width < 0,
        _ => false,
    };
    if !rank_fits {
        bail!(
            "{} takes input {:?} of shape {:?}; skiff feeds a table to one [rows, features] input or to one [rows, 1] input per column",
            path.display(),
            input.name,
            input.shape
        );
    }
    let cells = table.column(&input.name).with_context(|| {
        format!(
            "{} takes one input per column, and input {:?} has no column",
            path.display(),
            input.name
        )
    })?;
    let mut shape = vec![cells.len()];
    if input.shape.len() == 2 {
        shape.push(1);
    }
    let bad = |row: usize, cell: &str, what: &str| {
        anyhow::anyhow!(
            "column {:?}, data row {}: {cell:?} is not {what}, which input {:?} takes",
            input.name,
            row + 1,
            input.name
        )
    };
    let number = |row: usize, cell: &str| -> Result<f64> {
        if table.is_missing(cell.trim()) {
            return Ok(f64::NAN);
        }
        cell.trim().parse().map_err(|_| bad(row, cell, "a number"))
    };
    let data = match input.datatype {
        DataType::Bytes => TensorData::Bytes(cells.iter().map(|c| c.to_string()).collect()),
        DataType::Fp32 => TensorData::Fp32(
            cells
                .iter()
                .enumerate()
                .map(|(row, c)| number(row, c).map(|v| v as f32))
                .collect::<Result<_>>()?,
        ),
        DataType::Fp64 => TensorData::Fp64(
            cells
                .iter()
                .enumerate()
                .map(|(row, c)| number(row, c))
                .collect::<Result<_>>()?,
        ),
        DataType::Int64 => TensorData::Int64(
            cells
                .iter()
                .enumerate()
                .map(|(row, c)| c.trim().parse().map_err(|_| bad(row, c, "an integer")))
                .collect::<Result<_>>()?,
        ),
        other => bail!(
            "{} takes input {:?} as {other:?}; skiff feeds table columns as FP32, FP64, INT64 or BYTES",
            path.display(),
            input.name
        ),
    };
    Ok(Tensor::new(shape, data)?)
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
    let proba = if args.proba {
        let Some((values, n_classes)) = probabilities(model, outputs)? else {
            bail!(
                "{} has no probabilities output: drop --proba",
                args.model.display()
            );
        };
        header.extend(
            class_names(model, n_classes)
                .iter()
                .map(|c| format!("p_{c}")),
        );
        Some((values, n_classes))
    } else {
        None
    };
    writer.write_record(&header)?;
    for row in 0..n_rows {
        let mut record = vec![cell(&labels.data, row)];
        if let Some((values, n)) = proba {
            record.extend(values[row * n..(row + 1) * n].iter().map(|p| p.to_string()));
        }
        writer.write_record(&record)?;
    }
    Ok(())
}

/// A classifier's probabilities in a run's `outputs` (the output named so, else the second),
/// row after row, and how many classes a row has; `None` where there is no such output.
pub fn probabilities<'a>(
    model: &Model,
    outputs: &'a [Tensor],
) -> Result<Option<(&'a [f32], usize)>> {
    let index = (model.outputs().iter())
        .position(|o| o.name == "probabilities")
        .unwrap_or(1);
    let Some(p) = outputs.get(index).filter(|t| t.shape.len() == 2) else {
        return Ok(None);
    };
    let TensorData::Fp32(values) = &p.data else {
        bail!("the model's probabilities are not FP32");
    };
    Ok(Some((values, p.shape[1])))
}

/// The names of a classifier's `n` classes: as the model names them, else their indexes.
pub fn class_names(model: &Model, n: usize) -> Vec<String> {
    model
        .class_labels()
        .filter(|c| c.len() == n)
        .unwrap_or_else(|| (0..n).map(|i| i.to_string()).collect())
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
