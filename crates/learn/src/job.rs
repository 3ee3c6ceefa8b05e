//! A fit from a table, as `skiff fit` runs it and the conformance suite checks it: the
//! estimator by name with its `--set` values, the target column read for its task, every other
//! column a feature (numbers or text, gaps allowed), the preprocessing in front, and the
//! training metric.
//!
//! A table of numbers without gaps goes to the estimator as it is (a scaler in front where
//! asked) and exports with one input `X`. A table with text or gaps gets a
//! [`ColumnTransformer`] (numbers: median imputation, then standardisation where the
//! estimator needs it; text: most-frequent imputation, then one-hot encoding) and exports with
//! one input per column. Estimators that take gaps and categories as they are (gradient
//! boosting) get the gaps as NaN and each text column as one column of ordinal codes, which
//! they are told hold categories.

use crate::catalog::{Algorithm, Fitted, Target};
use crate::preprocess::{
    self, ColumnTransformer, Encoder, FittedColumnTransformer, ImputeStrategy, OrdinalEncoderParams,
};
use crate::scale::{Pipeline, Scale};
use crate::{Error, ExportInfo, Result, Task};
use ndarray::Array2;
use skiff_data::{Kind, Table, Values};
use skiff_onnx::{Graph, Model, metadata};
use std::borrow::Cow;

/// How text columns become numbers (`skiff fit --encode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// A column per category (scikit-learn's `OneHotEncoder`).
    OneHot,
    /// One column of category codes (scikit-learn's `OrdinalEncoder`; unseen categories -1).
    Ordinal,
}

/// What to fit.
#[derive(Debug, Clone, Default)]
pub struct FitSpec {
    /// The estimator's name (`skiff algorithms` lists them).
    pub algorithm: String,
    /// The column to predict; clusterers may name one, which is then left out of the features.
    pub target: Option<String>,
    /// Hyperparameters by scikit-learn's name, as text, applied in order: `NAME` for the
    /// estimator, `STEP.NAME` for a preprocessing step (`num_imputer`, `cat_imputer`,
    /// `encoder`).
    pub set: Vec<(String, String)>,
    /// Scale the numeric features first, in the same graph.
    pub scale: Option<Scale>,
    /// Do not scale, even where the estimator would be given a scaler by default.
    pub no_scale: bool,
    /// Columns read as text categories whatever they hold.
    pub categorical: Vec<String>,
    /// Columns read as numbers (a text cell is then an error).
    pub numeric: Vec<String>,
    /// Columns left out.
    pub drop: Vec<String>,
    /// Cells read as missing besides [`skiff_data::NA_VALUES`].
    pub na_values: Vec<String>,
    /// How numeric gaps are filled (default median; none for estimators that take gaps).
    pub impute: Option<ImputeStrategy>,
    /// How text columns are encoded (default one-hot; ordinal for estimators that take
    /// categories).
    pub encode: Option<Encoding>,
}

/// What a fit will do, decided from the table and the spec before any fitting.
#[derive(Clone)]
pub struct Plan {
    /// The estimator with its hyperparameters.
    pub algorithm: Box<dyn Algorithm>,
    /// The target column, for estimators that learn one.
    pub target: Option<String>,
    /// The feature columns and how each is read, in table order.
    pub columns: Vec<(String, Kind)>,
    /// Columns left out (`--drop`).
    pub dropped: Vec<String>,
    /// The preprocessing of a table with text or gaps; None for a table of numbers.
    pub transformer: Option<ColumnTransformer>,
    /// The scaler in front of the estimator for a table of numbers.
    pub scale: Option<Scale>,
    /// Rows left out because their target cell is missing.
    pub rows_without_target: Vec<bool>,
    pub(crate) na_values: Vec<String>,
}

impl Plan {
    /// The pipeline, one step a line, as `skiff fit --print-pipeline` shows it.
    pub fn describe(&self) -> String {
        let mut lines = Vec::new();
        match &self.transformer {
            Some(t) => lines.push(t.describe(&self.columns)),
            None => {
                let names: Vec<&str> = self.columns.iter().map(|(n, _)| n.as_str()).collect();
                lines.push(format!(
                    "numeric columns: {} (one input X)",
                    names.join(", ")
                ));
                lines.push(format!(
                    "  scaler       {}",
                    self.scale.map_or("none", Scale::as_str)
                ));
            }
        }
        if !self.dropped.is_empty() {
            lines.push(format!("dropped: {}", self.dropped.join(", ")));
        }
        lines.push(format!(
            "estimator      {} {}",
            self.algorithm.name(),
            self.algorithm.hyperparameters()
        ));
        lines.join("\n")
    }

    /// How each column is read: `{"numeric": [...], "categorical": [...], "dropped": [...]}`.
    pub fn columns_json(&self) -> serde_json::Value {
        columns_json(&self.columns, &self.dropped)
    }

    /// The preprocessing steps and their hyperparameters.
    pub fn preprocessing_json(&self) -> serde_json::Value {
        match &self.transformer {
            Some(t) => t.to_json(),
            None => serde_json::json!({ "scaler": self.scale.map(Scale::as_str) }),
        }
    }
}

fn columns_json(columns: &[(String, Kind)], dropped: &[String]) -> serde_json::Value {
    serde_json::json!({
        "numeric": preprocess::names_of(columns, Kind::Numeric),
        "categorical": preprocess::names_of(columns, Kind::Categorical),
        "dropped": dropped,
    })
}

/// A fitted model and what it was fitted on.
pub struct FitReport {
    /// The estimator with the hyperparameters it was fitted with.
    pub algorithm: Box<dyn Algorithm>,
    /// The fitted estimator (a pipeline where a scaler comes first on a table of numbers).
    pub model: Box<dyn Fitted>,
    /// The preprocessing of a table with text or gaps, fitted.
    pub transformer: Option<FittedColumnTransformer>,
    /// The feature columns and how each was read, in the model's input order.
    pub columns: Vec<(String, Kind)>,
    /// Columns left out.
    pub dropped: Vec<String>,
    /// The target column, for estimators that learn one.
    pub target: Option<String>,
    /// How many rows it was fitted on (rows without a target left out).
    pub rows: usize,
    /// The training metric: accuracy or R², none for clusterers.
    pub training_metric: Option<(&'static str, f64)>,
    /// The preprocessing steps and their hyperparameters (see [`Plan::preprocessing_json`]).
    pub preprocessing: serde_json::Value,
    /// What the user should know: rows left out, a solver that stopped early.
    pub warnings: Vec<String>,
}

impl FitReport {
    /// The feature column names, in the model's input order.
    pub fn features(&self) -> Vec<String> {
        self.columns.iter().map(|(n, _)| n.clone()).collect()
    }

    /// How each column was read: `{"numeric": [...], "categorical": [...], "dropped": [...]}`.
    pub fn columns_json(&self) -> serde_json::Value {
        columns_json(&self.columns, &self.dropped)
    }

    /// The rows of `table` as the estimator sees them (after the preprocessing), for
    /// [`Fitted::predict_rows`] and [`Fitted::scores`].
    pub fn features_of(&self, table: &Table) -> Result<Array2<f64>> {
        match &self.transformer {
            Some(t) => t.transform(&t.read(table)?),
            None => Ok(table.features(&self.features())?),
        }
    }

    /// What the exported model records about its training data.
    pub fn export_info(&self) -> ExportInfo {
        ExportInfo {
            feature_names: self.features(),
            target: self.target.clone().unwrap_or_default(),
            training_metric: self
                .training_metric
                .map(|(name, value)| (name.to_string(), value)),
        }
    }

    /// The ONNX model, with skiff's metadata: input `X` for a table of numbers, one input per
    /// column (named after it) where the table had text or gaps.
    pub fn to_onnx(&self) -> Model {
        let Some(transformer) = &self.transformer else {
            return self.model.to_onnx(&self.export_info());
        };
        let mut g = Graph::new(&self.model.algorithm().replace('-', "_"));
        transformer.write(&mut g, "features");
        self.model.write(&mut g, "features");
        self.export_info()
            .annotate(Model::new(g), self.model.as_ref())
            .metadata(metadata::COLUMNS, self.columns_json().to_string())
            .metadata(metadata::PREPROCESSING, self.preprocessing.to_string())
    }
}

/// A preprocessing step's setting: the step, the hyperparameter and its value.
type StepSetting<'a> = (&'a str, &'a str, &'a str);

impl FitSpec {
    /// Checks the estimator's name and its own settings, which need no data: a typo is
    /// then reported before a large file is read.
    pub fn check(&self) -> Result<()> {
        self.configured().map(|_| ())
    }

    /// The estimator with its settings applied, and the settings of preprocessing steps
    /// (`STEP.NAME`), for the plan to apply.
    fn configured(&self) -> Result<(Box<dyn Algorithm>, Vec<StepSetting<'_>>)> {
        let mut algorithm = crate::algorithm(&self.algorithm)?;
        let mut step_settings = Vec::new();
        for (name, value) in &self.set {
            match name.trim().split_once('.') {
                Some((step, name)) => step_settings.push((step.trim(), name.trim(), value.trim())),
                None => algorithm.set(name.trim(), value.trim())?,
            }
        }
        Ok((algorithm, step_settings))
    }
}

/// Decides what fitting `spec` on `table` will do: the estimator, how each column is read,
/// and the preprocessing.
pub fn plan(table: &Table, spec: &FitSpec) -> Result<Plan> {
    let (algorithm, step_settings) = spec.configured()?;
    let table = with_na_values(table, &spec.na_values);
    for name in spec
        .categorical
        .iter()
        .chain(&spec.numeric)
        .chain(&spec.drop)
    {
        table.column_index(name)?;
    }
    if let Some(both) = spec.categorical.iter().find(|c| spec.numeric.contains(c)) {
        return Err(Error::Column(format!(
            "column {both:?} is both --categorical and --numeric: keep one"
        )));
    }
    let task = algorithm.task();
    let rows_without_target = match (&spec.target, task) {
        (Some(target), Task::Classification | Task::Regression) if table.has_gaps(target)? => table
            .cells(target)?
            .map(|cell| table.is_missing(cell))
            .collect(),
        (Some(_), Task::Classification | Task::Regression) => vec![false; table.n_rows()],
        (Some(target), Task::Clustering) => {
            table.column_index(target)?;
            vec![false; table.n_rows()]
        }
        (None, Task::Clustering) => vec![false; table.n_rows()],
        (None, _) => {
            return Err(Error::Target(format!(
                "{} needs a target: the column it learns to predict (--target)",
                algorithm.name()
            )));
        }
    };
    let names: Vec<String> = table
        .headers()
        .iter()
        .filter(|h| Some(*h) != spec.target.as_ref() && !spec.drop.contains(h))
        .cloned()
        .collect();
    if names.is_empty() {
        return Err(Error::Shape(format!(
            "{} has no feature columns besides the target",
            table.source()
        )));
    }
    let mut columns = Vec::with_capacity(names.len());
    let mut gaps = false;
    for name in names {
        let inferred = table.infer_kind(&name)?;
        let kind = if spec.categorical.contains(&name) {
            Kind::Categorical
        } else if spec.numeric.contains(&name) {
            Kind::Numeric
        } else {
            inferred
        };
        if kind == Kind::Categorical && !spec.categorical.contains(&name) {
            check_not_an_identifier(&table, &name)?;
        }
        gaps |= table.has_gaps(&name)?;
        columns.push((name, kind));
    }
    if algorithm.privacy().is_some() {
        check_private_preprocessing(&table, &columns, spec, algorithm.name())?;
    }
    let text = columns.iter().any(|(_, k)| *k == Kind::Categorical);
    let mixed =
        text || gaps || spec.impute.is_some() || spec.encode.is_some() || !step_settings.is_empty();
    let default_scale = (!spec.no_scale && algorithm.needs_scaling()).then_some(Scale::Standard);
    let (transformer, scale) = if mixed {
        let mut t = ColumnTransformer::new(if spec.no_scale {
            None
        } else {
            spec.scale.or(default_scale)
        });
        // Estimators that take gaps and categories as they are (histogram gradient boosting)
        // get the gaps as NaN and each text column as one column of category codes, unless
        // told otherwise.
        let native = algorithm.takes_gaps_and_categories();
        let sets = |wanted: &str| step_settings.iter().any(|(step, _, _)| *step == wanted);
        if native && spec.impute.is_none() && !sets("num_imputer") {
            t.num_imputer = None;
        }
        if native && !sets("cat_imputer") {
            t.cat_imputer = None;
        }
        if let Some(strategy) = spec.impute {
            t.num_imputer.get_or_insert_with(Default::default).strategy = strategy;
        }
        if spec.encode == Some(Encoding::Ordinal) || (native && spec.encode.is_none()) {
            t.encoder = Encoder::Ordinal(OrdinalEncoderParams {
                handle_unknown: preprocess::OrdinalUnknown::UseEncodedValue,
                unknown_value: Some(-1.0),
            });
        }
        for (step, name, value) in step_settings {
            t.set(step, name, value)?;
        }
        (Some(t), None)
    } else {
        (None, if spec.no_scale { None } else { spec.scale })
    };
    Ok(Plan {
        algorithm,
        target: spec.target.clone(),
        columns,
        dropped: spec.drop.clone(),
        transformer,
        scale,
        rows_without_target,
        na_values: table.na_values().to_vec(),
    })
}

/// A differentially private estimator's privacy covers its own fit only: filling gaps,
/// one-hot categories seen in the data and scaling would learn from the rows without noise,
/// so they are refused with the columns that would need them.
fn check_private_preprocessing(
    table: &Table,
    columns: &[(String, Kind)],
    spec: &FitSpec,
    algorithm: &str,
) -> Result<()> {
    let mut needing = Vec::new();
    for (name, kind) in columns {
        if *kind == Kind::Categorical || table.has_gaps(name)? {
            needing.push(format!("{name:?}"));
        }
    }
    if !needing.is_empty() {
        return Err(Error::Column(format!(
            "{algorithm} is differentially private, but filling gaps and encoding text learn \
             from the data without noise: {} hold text or gaps; leave them out (--drop) or \
             prepare them beforehand",
            needing.join(", ")
        )));
    }
    if spec.scale.is_some() || spec.impute.is_some() || spec.encode.is_some() {
        return Err(Error::Column(format!(
            "{algorithm} is differentially private, but --scale, --impute and --encode learn \
             from the data without noise: leave them out (the bounds it takes clip the features)"
        )));
    }
    Ok(())
}

/// `table` reading `extra` cells as missing too.
fn with_na_values<'t>(table: &'t Table, extra: &[String]) -> Cow<'t, Table> {
    if extra.is_empty() {
        return Cow::Borrowed(table);
    }
    let mut table = table.clone();
    table.add_na_values(extra.iter().cloned());
    Cow::Owned(table)
}

/// A text column with a different value in every row names rows rather than grouping them
/// (an id, a name); one-hot encoding it would give a column per row and learn nothing.
fn check_not_an_identifier(table: &Table, name: &str) -> Result<()> {
    let skiff_data::Values::Text(cells) = table.values(name, Kind::Categorical)? else {
        unreachable!("read as text")
    };
    let (distinct, present) = preprocess::distinct(&cells);
    if present >= 10 && distinct == present {
        return Err(Error::Column(format!(
            "column {name:?} has a different value in each of its {present} rows, so it names rows \
             rather than grouping them: leave it out with --drop {name} (or keep it as categories \
             with --categorical {name})"
        )));
    }
    Ok(())
}

/// A histogram holds at most 255 categories of a column; one with more is named with the
/// fixes.
fn check_category_counts(fitted: &FittedColumnTransformer) -> Result<()> {
    for text in &fitted.categorical {
        let n = text.encoder.categories.len();
        if n > 255 {
            let column = &text.encoder.column;
            return Err(Error::Column(format!(
                "column {column:?} has {n} categories, more than the 255 gradient boosting bins \
                 hold: encode it one-hot (--encode onehot) or leave it out (--drop {column})"
            )));
        }
    }
    Ok(())
}

/// Fits `spec` on `table`.
pub fn fit_table(table: &Table, spec: &FitSpec) -> Result<FitReport> {
    let plan = plan(table, spec)?;
    fit_plan(table, plan)
}

/// Carries out `plan` on `table`.
pub fn fit_plan(table: &Table, plan: Plan) -> Result<FitReport> {
    // On one of rayon's workers, so that the fit's many short parallel passes (a boosting
    // fit makes thousands) share their work out by stealing, and one that fits in a chunk
    // runs where it is, instead of each being handed from this thread to the pool while
    // this thread sleeps until it is woken.
    rayon::scope(|_| fit_plan_with(table, plan, true))
}

/// [`fit_plan`], measuring the training metric only where `training_metric` (cross-validation
/// scores held-out rows instead, and predicting every training row again would cost as much).
pub(crate) fn fit_plan_with(table: &Table, plan: Plan, training_metric: bool) -> Result<FitReport> {
    let mut warnings = Vec::new();
    let skipped = plan.rows_without_target.iter().filter(|m| **m).count();
    let table = if skipped > 0 || plan.na_values != table.na_values() {
        let mut owned = table.clone();
        owned.add_na_values(
            plan.na_values
                .iter()
                .filter(|v| !table.na_values().contains(v))
                .cloned(),
        );
        let keep: Vec<bool> = plan.rows_without_target.iter().map(|m| !m).collect();
        owned.retain_rows(&keep);
        if skipped > 0 {
            warnings.push(format!(
                "left out {skipped} rows whose target {:?} is missing",
                plan.target.as_deref().unwrap_or_default()
            ));
        }
        Cow::Owned(owned)
    } else {
        Cow::Borrowed(table)
    };
    if table.n_rows() == 0 {
        return Err(Error::Shape(format!(
            "{} has no rows with a target value",
            table.source()
        )));
    }
    let preprocessing = plan.preprocessing_json();
    let mut algorithm = plan.algorithm;
    let y = match &plan.target {
        // Numbers already read with the table.
        Some(target)
            if algorithm.task() == Task::Regression && table.is_finite_numeric(target)? =>
        {
            match table.values(target, Kind::Numeric)? {
                Values::Numbers(y) => Target::Values(y),
                Values::Text(_) => unreachable!("read as numbers"),
            }
        }
        Some(target) => {
            let cells = table.column(target)?;
            // A clusterer's target only leaves the features: from_cells reads it as none.
            Target::from_cells(algorithm.as_ref(), &cells)
                .map_err(|e| Error::Target(format!("target column {target:?}: {e}")))?
        }
        None => Target::None,
    };
    let (model, transformer, x): (Box<dyn Fitted>, _, _) = match &plan.transformer {
        Some(t) => {
            let columns = preprocess::read_columns(&table, &plan.columns)?;
            let fitted = t.fit(&columns, table.na_values())?;
            let x = fitted.transform(&columns)?;
            if let Encoder::Ordinal(_) = t.encoder {
                if algorithm.takes_gaps_and_categories() {
                    check_category_counts(&fitted)?;
                }
                algorithm.set_categorical(&fitted.category_codes());
            }
            (algorithm.fit(x.view(), &y)?, Some(fitted), x)
        }
        None => {
            let names: Vec<String> = plan.columns.iter().map(|(n, _)| n.clone()).collect();
            let mut read = true;
            for name in &names {
                read &= table.is_finite_numeric(name)?;
            }
            let x = if read {
                // Every cell already read as a finite number: the matrix in one parallel pass.
                table.features(&names)?
            } else {
                // Read as numbers column by column, so a text cell in a column forced numeric
                // is reported with its fix.
                let columns = preprocess::read_columns(&table, &plan.columns)?;
                preprocess::numeric_block(&columns).expect("at least one feature column")
            };
            let model: Box<dyn Fitted> = match plan.scale {
                Some(scale) => Box::new(Pipeline::fit(scale, algorithm.as_ref(), x.view(), &y)?),
                None => algorithm.fit(x.view(), &y)?,
            };
            (model, None, x)
        }
    };
    let training_metric = if training_metric {
        algorithm.training_metric(model.as_ref(), x.view(), &y)
    } else {
        None
    };
    warnings.extend(model.warnings());
    Ok(FitReport {
        algorithm,
        model,
        transformer,
        columns: plan.columns,
        dropped: plan.dropped,
        target: plan.target,
        rows: table.n_rows(),
        training_metric,
        preprocessing,
        warnings,
    })
}
