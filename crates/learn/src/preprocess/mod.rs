//! Preprocessing for real tables: a `ColumnTransformer` that imputes and scales the numeric
//! columns and imputes and encodes the text columns, as a scikit-learn user writes it, fitted
//! natively and exported in front of the model, one graph input per column.

mod encode;
mod impute;

pub use encode::{
    Encoder, FittedEncoder, MinFrequency, OneHotDrop, OneHotEncoderParams, OneHotUnknown,
    OrdinalEncoderParams, OrdinalUnknown, Unknown,
};
pub use impute::{FillValue, FittedImputer, ImputeStrategy, SimpleImputerParams};

pub(crate) use encode::distinct;

use crate::params::Params;
use crate::scale::{FittedScaler, Scale};
use crate::{Error, Result};
use ndarray::{Array2, Axis};
use serde_json::{Value, json};
use skiff_data::{Kind, Table, Values};
use skiff_onnx::{Attr, Dim, ElemType, Graph};

/// The steps a table's columns go through before the estimator: numeric columns are imputed
/// then scaled, text columns imputed then encoded, and the results concatenated (numeric
/// columns first), as scikit-learn's `ColumnTransformer` does.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnTransformer {
    /// Fills gaps in numeric columns (`num_imputer`); None passes them on as NaN, for
    /// estimators that take gaps as they are.
    pub num_imputer: Option<SimpleImputerParams>,
    /// Scales the imputed numeric columns, where set (`scaler`).
    pub scaler: Option<Scale>,
    /// Fills gaps in text columns (`cat_imputer`); None encodes them as missing (NaN codes
    /// from an ordinal encoder, all zeros from a one-hot one).
    pub cat_imputer: Option<SimpleImputerParams>,
    /// Turns text into numbers (`encoder`).
    pub encoder: Encoder,
}

/// The steps' names, as `--set STEP.NAME=VALUE` takes them.
pub const STEPS: [&str; 3] = ["num_imputer", "cat_imputer", "encoder"];

impl ColumnTransformer {
    /// What a scikit-learn user writes for a mixed table: numbers imputed with their median
    /// (and standardised where `scale`), text imputed with its most frequent value and one-hot
    /// encoded, unseen categories ignored.
    pub fn new(scaler: Option<Scale>) -> Self {
        ColumnTransformer {
            num_imputer: Some(SimpleImputerParams::with_strategy(ImputeStrategy::Median)),
            scaler,
            cat_imputer: Some(SimpleImputerParams::with_strategy(
                ImputeStrategy::MostFrequent,
            )),
            encoder: Encoder::OneHot(OneHotEncoderParams {
                handle_unknown: OneHotUnknown::Ignore,
                ..Default::default()
            }),
        }
    }

    /// Sets hyperparameter `name` of step `step` (one of [`STEPS`]) from text.
    pub fn set(&mut self, step: &str, name: &str, value: &str) -> Result<()> {
        match step {
            "num_imputer" => self
                .num_imputer
                .get_or_insert_with(|| SimpleImputerParams::with_strategy(ImputeStrategy::Median))
                .set(name, value),
            "cat_imputer" => self
                .cat_imputer
                .get_or_insert_with(|| {
                    SimpleImputerParams::with_strategy(ImputeStrategy::MostFrequent)
                })
                .set(name, value),
            "encoder" => self.encoder.set(name, value),
            _ => Err(Error::Column(format!(
                "no preprocessing step {step:?} (steps: {})",
                STEPS.join(", ")
            ))),
        }
    }

    /// The steps and their hyperparameters, as a JSON object.
    pub fn to_json(&self) -> Value {
        json!({
            "num_imputer": self.num_imputer.as_ref().map(Params::to_json),
            "scaler": self.scaler.map(Scale::as_str),
            "cat_imputer": self.cat_imputer.as_ref().map(Params::to_json),
            "encoder": { self.encoder.name(): self.encoder.to_json() },
        })
    }

    /// The steps, one a line, for `skiff fit --print-pipeline`.
    pub fn describe(&self, columns: &[(String, Kind)]) -> String {
        let (numeric, text) = (
            names_of(columns, Kind::Numeric),
            names_of(columns, Kind::Categorical),
        );
        let mut lines = Vec::new();
        if !numeric.is_empty() {
            lines.push(format!("numeric columns: {}", numeric.join(", ")));
            lines.push(format!(
                "  num_imputer  {}",
                imputer_line(&self.num_imputer)
            ));
            lines.push(format!(
                "  scaler       {}",
                self.scaler.map_or("none", Scale::as_str)
            ));
        }
        if !text.is_empty() {
            lines.push(format!("categorical columns: {}", text.join(", ")));
            lines.push(format!(
                "  cat_imputer  {}",
                imputer_line(&self.cat_imputer)
            ));
            lines.push(format!(
                "  encoder      {} {}",
                self.encoder.name(),
                self.encoder.to_json()
            ));
        }
        lines.join("\n")
    }

    /// Fits every step on `columns` (name, cells as their kind); `missing` are the cells a
    /// text input of the exported graph reads as missing.
    pub fn fit(
        &self,
        columns: &[(String, Values)],
        missing: &[String],
    ) -> Result<FittedColumnTransformer> {
        let numeric = numeric_block(columns);
        let numeric = match numeric {
            Some(x) => {
                let imputer = self
                    .num_imputer
                    .as_ref()
                    .map(|i| i.fit_numbers(x.view()))
                    .transpose()?;
                let filled = match &imputer {
                    Some(imputer) => imputer.transform(x.view()),
                    None => x,
                };
                let scaler = self.scaler.map(|s| s.fit(filled.view())).transpose()?;
                Some(FittedNumeric { imputer, scaler })
            }
            None => None,
        };
        let mut categorical = Vec::new();
        for (name, values) in columns {
            let Values::Text(cells) = values else {
                continue;
            };
            let fill = self
                .cat_imputer
                .as_ref()
                .map(|i| i.fit_text(name, cells))
                .transpose()?;
            let filled: Vec<&str> = cells
                .iter()
                .filter_map(|c| c.as_deref().or(fill.as_deref()))
                .collect();
            let encoder = self.encoder.fit(name, &filled)?;
            categorical.push(FittedText { fill, encoder });
        }
        Ok(FittedColumnTransformer {
            columns: columns.iter().map(|(n, v)| (n.clone(), v.kind())).collect(),
            numeric,
            categorical,
            missing: missing.to_vec(),
        })
    }
}

/// The numeric columns side by side, NaN where missing; None where there are none.
pub(crate) fn numeric_block(columns: &[(String, Values)]) -> Option<Array2<f64>> {
    let numbers: Vec<&Vec<f64>> = columns
        .iter()
        .filter_map(|(_, v)| match v {
            Values::Numbers(n) => Some(n),
            Values::Text(_) => None,
        })
        .collect();
    let rows = numbers.first()?.len();
    Some(Array2::from_shape_fn((rows, numbers.len()), |(i, j)| {
        numbers[j][i]
    }))
}

/// `SimpleImputer {...}`, or `passthrough` where gaps are passed on.
fn imputer_line(imputer: &Option<SimpleImputerParams>) -> String {
    match imputer {
        Some(i) => format!("{} {}", SimpleImputerParams::ALGORITHM, i.to_json()),
        None => "passthrough (gaps stay NaN)".into(),
    }
}

/// The numeric columns' fitted steps.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FittedNumeric {
    /// Fills gaps (and adds indicator columns where asked); None passes them on.
    pub imputer: Option<FittedImputer>,
    /// Scales the imputed columns.
    pub scaler: Option<FittedScaler>,
}

/// A text column's fitted steps.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FittedText {
    /// What a missing cell becomes; None encodes it as missing.
    pub fill: Option<String>,
    /// The encoding of the filled column.
    pub encoder: FittedEncoder,
}

/// A fitted [`ColumnTransformer`].
#[derive(Debug, Clone, PartialEq)]
pub struct FittedColumnTransformer {
    /// The input columns, in the order of the graph's inputs.
    pub columns: Vec<(String, Kind)>,
    /// The steps of the numeric columns, where there are some.
    pub numeric: Option<FittedNumeric>,
    /// The steps of each text column, in column order.
    pub categorical: Vec<FittedText>,
    /// Text read as missing by the exported graph.
    pub missing: Vec<String>,
}

impl FittedColumnTransformer {
    /// How many features the estimator after it sees.
    pub fn n_outputs(&self) -> usize {
        let numeric = names_of(&self.columns, Kind::Numeric).len();
        self.numeric.as_ref().map_or(0, |n| {
            n.imputer.as_ref().map_or(numeric, FittedImputer::n_outputs)
        }) + self
            .categorical
            .iter()
            .map(|t| t.encoder.width)
            .sum::<usize>()
    }

    /// The features the estimator sees that hold a text column's ordinal codes.
    pub fn category_codes(&self) -> Vec<usize> {
        let numeric = self.n_outputs()
            - self
                .categorical
                .iter()
                .map(|t| t.encoder.width)
                .sum::<usize>();
        let mut at = numeric;
        let mut codes = Vec::new();
        for text in &self.categorical {
            if !text.encoder.one_hot {
                codes.push(at);
            }
            at += text.encoder.width;
        }
        codes
    }

    /// Reads this transformer's columns from `table`, each as the kind it was fitted on.
    pub fn read(&self, table: &Table) -> Result<Vec<(String, Values)>> {
        read_columns(table, &self.columns)
    }

    /// The features the estimator sees for `columns` (as [`FittedColumnTransformer::read`]
    /// gives them).
    pub fn transform(&self, columns: &[(String, Values)]) -> Result<Array2<f64>> {
        let rows = columns.first().map_or(0, |(_, v)| v.len());
        let mut out = Array2::zeros((rows, self.n_outputs()));
        let mut at = 0;
        if let (Some(numeric), Some(x)) = (&self.numeric, numeric_block(columns)) {
            let mut block = match &numeric.imputer {
                Some(imputer) => imputer.transform(x.view()),
                None => x,
            };
            if let Some(scaler) = &numeric.scaler {
                block = scaler.transform(block.view());
            }
            out.slice_mut(ndarray::s![.., ..block.ncols()])
                .assign(&block);
            at = block.ncols();
        }
        let texts = columns.iter().filter_map(|(_, v)| match v {
            Values::Text(cells) => Some(cells),
            Values::Numbers(_) => None,
        });
        for (text, cells) in self.categorical.iter().zip(texts) {
            let width = text.encoder.width;
            for (mut row, cell) in out.axis_iter_mut(Axis(0)).zip(cells) {
                let slot = row.as_slice_mut().expect("standard layout");
                let slot = &mut slot[at..at + width];
                match cell.as_deref().or(text.fill.as_deref()) {
                    Some(cell) => text.encoder.encode(cell, slot)?,
                    None => text.encoder.encode_missing(slot),
                }
            }
            at += width;
        }
        Ok(out)
    }

    /// Declares one graph input per column (float [N, 1] for numbers, NaN for missing;
    /// string [N, 1] for text) and adds the nodes computing the features into `output`,
    /// float [N, n_outputs].
    pub fn write(&self, g: &mut Graph, output: &str) {
        let column_dims = [Dim::batch(), Dim::Fixed(1)];
        for (name, kind) in &self.columns {
            let elem = match kind {
                Kind::Numeric => ElemType::Float,
                Kind::Categorical => ElemType::String,
            };
            g.input(name, elem, &column_dims);
        }
        let mut parts = Vec::new();
        if let Some(numeric) = &self.numeric {
            let inputs = names_of(&self.columns, Kind::Numeric);
            let joined = "pre_numbers".to_string();
            g.node("Concat", &inputs, &[&joined], vec![("axis", Attr::Int(1))]);
            let filled = match &numeric.imputer {
                Some(imputer) => {
                    imputer.write(g, &joined, "pre_numbers_filled");
                    "pre_numbers_filled"
                }
                None => joined.as_str(),
            };
            match &numeric.scaler {
                Some(scaler) => {
                    scaler.write(g, filled, "pre_numbers_scaled");
                    parts.push("pre_numbers_scaled".to_string());
                }
                None => parts.push(filled.to_string()),
            }
        }
        let texts = names_of(&self.columns, Kind::Categorical);
        for (i, (text, name)) in self.categorical.iter().zip(texts).enumerate() {
            let encoded = format!("pre_text{i}");
            text.encoder
                .write(g, name, &self.missing, text.fill.as_deref(), &encoded);
            parts.push(encoded);
        }
        let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
        g.node("Concat", &parts, &[output], vec![("axis", Attr::Int(1))]);
    }
}

/// The names of the columns of `kind`, in order.
pub fn names_of(columns: &[(String, Kind)], kind: Kind) -> Vec<&str> {
    columns
        .iter()
        .filter(|(_, k)| *k == kind)
        .map(|(n, _)| n.as_str())
        .collect()
}

/// Columns of `table`, each read as the kind given.
pub fn read_columns(table: &Table, columns: &[(String, Kind)]) -> Result<Vec<(String, Values)>> {
    columns
        .iter()
        .map(|(name, kind)| Ok((name.clone(), table.values(name, *kind)?)))
        .collect()
}
