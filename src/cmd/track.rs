//! Where a fit's, a search's or a cross-validation's record goes: TensorBoard event files
//! (`--logdir`) and an MLflow tracking server (`--mlflow`). `fit`, `tune` and `cv` turn their
//! reports into one [`Run`]; each sink writes that same record.

use anyhow::{Context, Result, bail};
use skiff_learn::{CvReport, FitReport, SearchReport};
use skiff_mlops::mlflow::{Client, Outcome, Target};
use skiff_mlops::{Run, Series};
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
#[command(next_help_heading = "Tracking")]
pub struct TrackArgs {
    /// Write TensorBoard event files into a new folder under DIR (one per run): the curves
    /// training produced (loss per epoch or iteration, scores per fold or candidate), the
    /// final metrics, and the hyperparameters for TensorBoard's HParams view
    #[arg(long, value_name = "DIR")]
    pub logdir: Option<PathBuf>,
    /// The run's name: its TensorBoard folder under --logdir [default: COMMAND-ALGORITHM-TIME],
    /// and its name in MLflow [default: one MLflow picks]
    #[arg(long, value_name = "NAME")]
    pub run_name: Option<String>,
    /// Log the run to the MLflow tracking server at URL (http(s)://HOST:PORT): parameters,
    /// metrics (curves at their steps), skiff.* tags and the model. MLflow's
    /// MLFLOW_TRACKING_USERNAME/PASSWORD or MLFLOW_TRACKING_TOKEN authenticate
    #[arg(long, value_name = "URL", env = "MLFLOW_TRACKING_URI")]
    pub mlflow: Option<String>,
    /// The MLflow experiment to log the run in; created when the server has none by that name
    #[arg(
        long,
        value_name = "NAME",
        env = "MLFLOW_EXPERIMENT_NAME",
        default_value = "Default"
    )]
    pub experiment: String,
    /// Register the logged model in MLflow's model registry under NAME (a new version of it)
    #[arg(long, value_name = "NAME")]
    pub register: Option<String>,
}

impl TrackArgs {
    /// The MLflow tracking URI, unless none is given (an empty MLFLOW_TRACKING_URI is none).
    fn mlflow_url(&self) -> Option<&str> {
        self.mlflow.as_deref().filter(|url| !url.trim().is_empty())
    }

    /// Refuses what cannot be logged before any work is done: `--register` without a model or
    /// without a server, a tracking URI or MLflow credentials skiff cannot use.
    pub fn check(&self, command: &str, writes_model: bool) -> Result<()> {
        if let Some(name) = &self.register {
            if !writes_model {
                bail!(
                    "--register needs a model, and `skiff {command}` writes none: register a \
                     model from `skiff fit` or `skiff tune`"
                );
            }
            if self.mlflow_url().is_none() {
                bail!(
                    "--register {name} registers the model in MLflow: add --mlflow URL or set \
                     MLFLOW_TRACKING_URI"
                );
            }
            if name.trim().is_empty() {
                bail!("--register is empty: name the registered model (e.g. --register iris)");
            }
        }
        if let Some(url) = self.mlflow_url() {
            Client::new(url)?;
        }
        Ok(())
    }
}

/// The record of `skiff fit`: the estimator's hyperparameters and the table's, the training
/// metric, and the curves the fit produced.
pub fn fit_run(report: &FitReport, data: &Path) -> Run {
    let mut run = Run {
        command: "fit".into(),
        algorithm: report.algorithm.name().into(),
        ..Run::default()
    };
    flatten("", &report.algorithm.hyperparameters(), &mut run.params);
    flatten("", &report.preprocessing, &mut run.params);
    run.params.extend([
        ("data".into(), data.display().to_string()),
        ("rows".into(), report.rows.to_string()),
        ("features".into(), report.columns.len().to_string()),
    ]);
    if let Some(target) = &report.target {
        run.params.push(("target".into(), target.clone()));
    }
    if let Some((name, value)) = report.training_metric {
        run.metrics.push((format!("training_{name}"), value));
    }
    run.curves = curves(report);
    run.tags = tags("fit", report.algorithm.name(), data);
    run
}

/// The record of `skiff tune`: the refitted best's record, the best's mean score, each
/// candidate's mean score at its step (in the order tried), and each candidate as a child run
/// with its values and scores.
pub fn tune_run(report: &SearchReport, data: &Path) -> Run {
    let refit = report
        .refit
        .as_ref()
        .expect("a search refits before it is logged");
    let mut run = fit_run(refit, data);
    run.command = "tune".into();
    run.tags = tags("tune", report.algorithm, data);
    let scoring = report.scoring.name();
    let best = report.best();
    run.params.extend([
        ("search".into(), report.method.into()),
        ("scoring".into(), scoring.into()),
        ("folds".into(), report.folds.describe()),
        ("candidates".into(), report.candidates.len().to_string()),
    ]);
    run.metrics.extend([
        (format!("best_{scoring}_mean"), best.mean),
        (format!("best_{scoring}_std"), best.std),
    ]);
    run.curves.push(Series {
        name: format!("candidate_{scoring}_mean"),
        points: (0..)
            .zip(report.candidates.iter().map(|c| c.mean))
            .collect(),
    });
    run.children = report
        .candidates
        .iter()
        .map(|candidate| Run {
            command: "tune".into(),
            algorithm: report.algorithm.into(),
            params: candidate.params.clone(),
            metrics: vec![
                (format!("{scoring}_mean"), candidate.mean),
                (format!("{scoring}_std"), candidate.std),
                ("rank".into(), candidate.rank as f64),
            ],
            curves: vec![Series {
                name: format!("fold_{scoring}"),
                points: (0..).zip(candidate.fold_scores.iter().copied()).collect(),
            }],
            ..Run::default()
        })
        .collect();
    run
}

/// The record of `skiff cv`: the hyperparameters, each scoring's mean and standard deviation,
/// and each fold's score at its step.
pub fn cv_run(report: &CvReport, data: &Path) -> Run {
    let mut run = Run {
        command: "cv".into(),
        algorithm: report.algorithm.into(),
        tags: tags("cv", report.algorithm, data),
        ..Run::default()
    };
    flatten("", &report.hyperparameters, &mut run.params);
    run.params.extend([
        ("data".into(), data.display().to_string()),
        ("rows".into(), report.rows.to_string()),
        ("folds".into(), report.folds.describe()),
    ]);
    for (i, scoring) in report.scoring.iter().enumerate() {
        let name = scoring.name();
        run.metrics.extend([
            (format!("cv_{name}_mean"), report.mean(i)),
            (format!("cv_{name}_std"), report.std(i)),
        ]);
        run.curves.push(Series {
            name: format!("fold_{name}"),
            points: (0..).zip(report.scores(i)).collect(),
        });
    }
    run
}

/// Writes `run` where the flags say: TensorBoard events under `--logdir`, the run (and the
/// model at `model`, where the command wrote one) on the MLflow server at `--mlflow`. Says on
/// stderr where each went; returns what the run became in MLflow.
pub fn record(args: &TrackArgs, run: &Run, model: Option<&Path>) -> Result<Option<Outcome>> {
    if let Some(logdir) = &args.logdir {
        let dir = skiff_mlops::tensorboard::write_run(logdir, args.run_name.as_deref(), run)?;
        eprintln!("wrote TensorBoard logs to {}", dir.display());
    }
    let Some(url) = args.mlflow_url() else {
        return Ok(None);
    };
    let client = Client::new(url)?;
    let onnx = model
        .map(|path| std::fs::read(path).with_context(|| format!("cannot read {}", path.display())))
        .transpose()?;
    let target = Target {
        experiment: args.experiment.clone(),
        run_name: args.run_name.clone(),
        register: args.register.clone(),
    };
    let outcome = super::block_on(skiff_mlops::mlflow::log_run(
        &client,
        &target,
        run,
        onnx.as_deref(),
    ))??;
    eprintln!("logged run {} to {}", outcome.run_id, outcome.url);
    if let Some((name, version)) = &outcome.version {
        eprintln!("registered {name} version {version}");
    }
    Ok(Some(outcome))
}

/// What `--json` summaries say of the MLflow run.
pub fn outcome_json(outcome: &Outcome) -> serde_json::Value {
    let mut json = serde_json::json!({
        "experiment_id": outcome.experiment_id,
        "run_id": outcome.run_id,
        "url": outcome.url,
        "model_id": outcome.model_id,
    });
    if let Some((name, version)) = &outcome.version {
        json["registered"] = serde_json::json!({"name": name, "version": version});
    }
    json
}

fn curves(report: &FitReport) -> Vec<Series> {
    report
        .model
        .curves()
        .into_iter()
        .map(|c| Series {
            name: c.name,
            points: c.points,
        })
        .collect()
}

fn tags(command: &str, algorithm: &str, data: &Path) -> Vec<(String, String)> {
    vec![
        ("skiff.command".into(), command.into()),
        ("skiff.algorithm".into(), algorithm.into()),
        ("skiff.version".into(), env!("CARGO_PKG_VERSION").into()),
        ("skiff.data".into(), data.display().to_string()),
    ]
}

/// JSON `value` as `(name, text)` pairs: an object's members under `prefix.member`, anything
/// else as its JSON text (strings unquoted); nulls are left out.
fn flatten(prefix: &str, value: &serde_json::Value, out: &mut Vec<(String, String)>) {
    use serde_json::Value;
    match value {
        Value::Object(members) => {
            for (name, member) in members {
                let name = if prefix.is_empty() {
                    name.clone()
                } else {
                    format!("{prefix}.{name}")
                };
                flatten(&name, member, out);
            }
        }
        Value::Null => {}
        Value::String(text) => out.push((prefix.to_string(), text.clone())),
        other => out.push((prefix.to_string(), other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::flatten;

    #[test]
    fn nested_hyperparameters_flatten_to_dotted_names() {
        let mut out = Vec::new();
        let value = serde_json::json!({
            "C": 1.0,
            "solver": "lbfgs",
            "hidden_layer_sizes": [100, 50],
            "random_state": null,
            "encoder": {"min_frequency": 5},
        });
        flatten("", &value, &mut out);
        out.sort();
        let expected: Vec<(String, String)> = [
            ("C", "1.0"),
            ("encoder.min_frequency", "5"),
            ("hidden_layer_sizes", "[100,50]"),
            ("solver", "lbfgs"),
        ]
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
        assert_eq!(out, expected);
    }
}
