//! The flags that say how a table is read and prepared for an estimator, shared by `fit`, `cv`
//! and `tune`.

use anyhow::{Context, Result};
use skiff_learn::{Encoding, FitSpec, ImputeStrategy, Scale};

#[derive(clap::Args)]
pub struct TableArgs {
    /// Set a hyperparameter, scikit-learn's name (repeatable): --set C=0.5 for the estimator,
    /// --set STEP.NAME=VALUE for a preprocessing step (num_imputer, cat_imputer, encoder), e.g.
    /// --set encoder.min_frequency=5
    #[arg(long = "set", value_name = "NAME=VALUE")]
    set: Vec<String>,
    /// Scale the numeric features first, in the same exported graph (standard: zero mean, unit
    /// variance; min-max: into [0, 1]; robust: median and interquartile range; none). Tables
    /// with text or gaps are standardised by default for estimators that depend on scale
    #[arg(long, value_enum)]
    scale: Option<ScaleArg>,
    /// Read these columns as text categories, whatever they hold (repeatable, or comma
    /// separated)
    #[arg(long, value_delimiter = ',', value_name = "COLUMN")]
    categorical: Vec<String>,
    /// Read these columns as numbers; a cell that is neither a number nor missing is an error
    #[arg(long, value_delimiter = ',', value_name = "COLUMN")]
    numeric: Vec<String>,
    /// Leave these columns out
    #[arg(long, value_delimiter = ',', value_name = "COLUMN")]
    drop: Vec<String>,
    /// Also read these cells as missing (repeatable), e.g. --na-values ?
    #[arg(long = "na-values", value_name = "TEXT")]
    na_values: Vec<String>,
    /// How gaps in numeric columns are filled (default median; text columns take their most
    /// frequent value; gradient boosting takes gaps as they are unless this is given)
    #[arg(long, value_enum)]
    impute: Option<ImputeArg>,
    /// How text columns become numbers (default onehot: a column per category, unseen ones
    /// all zeros; ordinal: one column of codes, unseen ones -1, the default for gradient
    /// boosting, which splits on them as categories)
    #[arg(long, value_enum)]
    encode: Option<EncodeArg>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ScaleArg {
    Standard,
    MinMax,
    Robust,
    None,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ImputeArg {
    Mean,
    Median,
    MostFrequent,
    Constant,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum EncodeArg {
    Onehot,
    Ordinal,
}

impl TableArgs {
    /// What to fit: `algorithm` predicting `target`, with these flags.
    pub fn to_spec(&self, algorithm: &str, target: Option<&str>) -> Result<FitSpec> {
        let set = self
            .set
            .iter()
            .map(|setting| {
                let (name, value) = setting.split_once('=').with_context(|| {
                    format!("--set {setting:?} is not NAME=VALUE (e.g. --set C=0.5)")
                })?;
                Ok((name.to_string(), value.to_string()))
            })
            .collect::<Result<Vec<_>>>()?;
        let spec = FitSpec {
            algorithm: algorithm.to_string(),
            target: target.map(str::to_string),
            set,
            scale: match self.scale {
                Some(ScaleArg::Standard) => Some(Scale::Standard),
                Some(ScaleArg::MinMax) => Some(Scale::MinMax),
                Some(ScaleArg::Robust) => Some(Scale::Robust),
                Some(ScaleArg::None) | None => None,
            },
            no_scale: matches!(self.scale, Some(ScaleArg::None)),
            categorical: self.categorical.clone(),
            numeric: self.numeric.clone(),
            drop: self.drop.clone(),
            na_values: self.na_values.clone(),
            impute: self.impute.map(|i| match i {
                ImputeArg::Mean => ImputeStrategy::Mean,
                ImputeArg::Median => ImputeStrategy::Median,
                ImputeArg::MostFrequent => ImputeStrategy::MostFrequent,
                ImputeArg::Constant => ImputeStrategy::Constant,
            }),
            encode: self.encode.map(|e| match e {
                EncodeArg::Onehot => Encoding::OneHot,
                EncodeArg::Ordinal => Encoding::Ordinal,
            }),
        };
        spec.check()?;
        Ok(spec)
    }
}
