//! Where a fit's, a search's or a cross-validation's record goes: TensorBoard event files
//! (`--logdir`) and an MLflow tracking server (`--mlflow`). `fit`, `tune` and `cv` turn their
//! reports into one [`Run`]; each sink writes that same record.

use anyhow::Result;
use skiff_learn::{CvReport, FitReport, SearchReport};
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
    /// The run's name: its TensorBoard folder under --logdir [default: COMMAND-ALGORITHM-TIME]
    #[arg(long, value_name = "NAME")]
    pub run_name: Option<String>,
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

/// The record of `skiff tune`: the refitted best's record, the best's mean score, and each
/// candidate's mean score at its step (in the order tried).
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

/// Writes `run` where the flags say: TensorBoard events under `--logdir`.
pub fn record(args: &TrackArgs, run: &Run) -> Result<()> {
    let Some(logdir) = &args.logdir else {
        return Ok(());
    };
    let dir = skiff_mlops::tensorboard::write_run(logdir, args.run_name.as_deref(), run)?;
    eprintln!("wrote TensorBoard logs to {}", dir.display());
    Ok(())
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
