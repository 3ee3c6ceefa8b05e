//! A [`Run`] on a tracking server, logged as MLflow 3's own client logs one: the experiment
//! (created if missing), a run with MLflow's source tags and skiff's, parameters and metrics
//! in batches within the server's limits (every curve point at its step), the model as a
//! logged model whose files go through the artifact proxy, a registered model version, and
//! the run's end.

use super::client::Client;
use super::model::{self, Logged};
use crate::{Error, Result, Run};
use serde_json::{Value, json};
use std::time::Duration;

/// Parameters (and tags) per `runs/log-batch`: MLflow's `MAX_PARAMS_TAGS_PER_BATCH`.
const PARAMS_PER_BATCH: usize = 100;
/// Metrics per `runs/log-batch`: MLflow's `MAX_METRICS_PER_BATCH`.
const METRICS_PER_BATCH: usize = 1000;
/// Longest parameter value MLflow keeps (`MAX_PARAM_VAL_LENGTH`); the server cuts longer ones.
const PARAM_VALUE_LENGTH: usize = 6000;
/// Longest tag value MLflow keeps (`MAX_TAG_VAL_LENGTH`).
const TAG_VALUE_LENGTH: usize = 8000;
/// How long a model version may stay `PENDING_REGISTRATION`, checked once a second.
const REGISTRATION_WAIT_S: u32 = 60;
/// The logged model's name, as `mlflow.<flavour>.log_model(name="model")` gives it.
const MODEL_NAME: &str = "model";

/// Where a run goes and what it carries besides its record.
#[derive(Debug, Clone)]
pub struct Target {
    /// The experiment's name; created when the server has none by that name.
    pub experiment: String,
    /// The run's name; the server picks one when `None`.
    pub run_name: Option<String>,
    /// Register the model under this name (a new version of it).
    pub register: Option<String>,
}

/// What a logged run became on the server.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The experiment's id.
    pub experiment_id: String,
    /// The run's id.
    pub run_id: String,
    /// The run's page in MLflow's UI.
    pub url: String,
    /// The logged model's id (`m-...`), where a model was logged.
    pub model_id: Option<String>,
    /// The registered model's name and the version made, where the model was registered.
    pub version: Option<(String, String)>,
}

/// Logs `run` to the tracking server `client` speaks to, with the ONNX model `onnx` where
/// there is one, and ends the run: `FINISHED`, or `FAILED` (as far as the server still
/// answers) when a step fails after the run was created.
pub async fn log_run(
    client: &Client,
    target: &Target,
    run: &Run,
    onnx: Option<&[u8]>,
) -> Result<Outcome> {
    if target.register.is_some() && onnx.is_none() {
        return Err(Error(format!(
            "--register needs a model, and `skiff {}` writes none: register a model from `skiff \
             fit` or `skiff tune`",
            run.command
        )));
    }
    let (experiment_id, artifact_location) = experiment(client, &target.experiment).await?;
    if onnx.is_some() {
        artifact_path(&artifact_location)?;
    }
    let now = now_ms();
    let mut tags = vec![
        ("mlflow.source.name".to_string(), "skiff".to_string()),
        ("mlflow.source.type".to_string(), "LOCAL".to_string()),
    ];
    let user = user();
    if let Some(user) = &user {
        tags.push(("mlflow.user".into(), user.clone()));
    }
    if let Some(name) = &target.run_name {
        tags.push(("mlflow.runName".into(), name.clone()));
    }
    tags.extend(run.tags.iter().cloned());
    let mut create = json!({
        "experiment_id": experiment_id,
        "start_time": now,
        "tags": key_values(&tags, TAG_VALUE_LENGTH),
    });
    if let Some(user) = &user {
        create["user_id"] = json!(user);
    }
    if let Some(name) = &target.run_name {
        create["run_name"] = json!(name);
    }
    let created = client.post("runs/create", &create).await?;
    let Some(run_id) = created["run"]["info"]["run_id"]
        .as_str()
        .map(str::to_string)
    else {
        return Err(Error(format!(
            "{} answered runs/create without a run id: is it an MLflow 2.x or 3.x tracking \
             server?",
            client.url()
        )));
    };
    let steps = async {
        log_data(client, &run_id, run).await?;
        log_children(client, &experiment_id, &run_id, &tags, run).await?;
        let model_id = match onnx {
            Some(onnx) => Some(log_model(client, &experiment_id, &run_id, run, onnx).await?),
            None => None,
        };
        let version = match (&target.register, &model_id) {
            (Some(name), Some(model_id)) => Some((
                name.clone(),
                register(client, name, &run_id, model_id).await?,
            )),
            _ => None,
        };
        Ok::<_, Error>((model_id, version))
    };
    let outcome = steps.await;
    let status = if outcome.is_ok() {
        "FINISHED"
    } else {
        "FAILED"
    };
    let ended = client
        .post(
            "runs/update",
            &json!({"run_id": run_id, "run_uuid": run_id, "status": status, "end_time": now_ms()}),
        )
        .await;
    let (model_id, version) = outcome?;
    ended?;
    Ok(Outcome {
        url: format!(
            "{}/#/experiments/{experiment_id}/runs/{run_id}",
            client.url()
        ),
        experiment_id,
        run_id,
        model_id,
        version,
    })
}

/// Child runs logged per run, the best ranked first: MLflow's autologging logs a search's
/// five best candidates (`max_tuning_runs=5`); the rest are in the parent's curves.
const CHILD_RUNS: usize = 5;

/// `run`'s children (a search's candidates) as nested runs of `parent`: the best ranked (by
/// their `rank` metric, else in order), each with its values and scores.
async fn log_children(
    client: &Client,
    experiment_id: &str,
    parent: &str,
    parent_tags: &[(String, String)],
    run: &Run,
) -> Result<()> {
    let rank = |child: &Run| {
        child
            .metrics
            .iter()
            .find(|(name, _)| name == "rank")
            .map_or(f64::INFINITY, |(_, rank)| *rank)
    };
    let mut order: Vec<usize> = (0..run.children.len()).collect();
    order.sort_by(|&a, &b| rank(&run.children[a]).total_cmp(&rank(&run.children[b])));
    for &i in order.iter().take(CHILD_RUNS) {
        let child = &run.children[i];
        let name = format!(
            "{}-{i:03}",
            if run.command == "tune" {
                "candidate"
            } else {
                "child"
            }
        );
        let mut tags: Vec<(String, String)> = parent_tags
            .iter()
            .filter(|(key, _)| key != "mlflow.runName")
            .cloned()
            .collect();
        tags.push(("mlflow.parentRunId".into(), parent.to_string()));
        tags.push(("mlflow.runName".into(), name.clone()));
        let created = client
            .post(
                "runs/create",
                &json!({
                    "experiment_id": experiment_id,
                    "start_time": now_ms(),
                    "run_name": name,
                    "tags": key_values(&tags, TAG_VALUE_LENGTH),
                }),
            )
            .await?;
        let id = created["run"]["info"]["run_id"]
            .as_str()
            .unwrap_or_default();
        log_data(client, id, child).await?;
        client
            .post(
                "runs/update",
                &json!({"run_id": id, "run_uuid": id, "status": "FINISHED", "end_time": now_ms()}),
            )
            .await?;
    }
    Ok(())
}

/// The experiment named `name`, created when missing: its id and artifact location.
async fn experiment(client: &Client, name: &str) -> Result<(String, String)> {
    if name.trim().is_empty() {
        return Err(Error(
            "--experiment is empty: name an MLflow experiment (e.g. Default)".into(),
        ));
    }
    let query = [("experiment_name", name)];
    let found = match client
        .get_if_exists("experiments/get-by-name", &query)
        .await?
    {
        Some(found) => found,
        None => {
            // another client may create it between the look-up and here: then it exists
            client
                .post_unless_exists("experiments/create", &json!({"name": name}))
                .await?;
            client
                .get_if_exists("experiments/get-by-name", &query)
                .await?
                .ok_or_else(|| {
                    Error(format!(
                        "{} created experiment {name:?} and then could not find it: check the \
                         server's log",
                        client.url()
                    ))
                })?
        }
    };
    let experiment = &found["experiment"];
    if experiment["lifecycle_stage"] == "deleted" {
        return Err(Error(format!(
            "MLflow experiment {name:?} is deleted: restore it (`mlflow experiments restore`) or \
             pick another --experiment"
        )));
    }
    let id = experiment["experiment_id"].as_str().ok_or_else(|| {
        Error(format!(
            "{} answered experiments/get-by-name without an experiment id: is it an MLflow \
             tracking server?",
            client.url()
        ))
    })?;
    let location = experiment["artifact_location"].as_str().unwrap_or_default();
    Ok((id.to_string(), location.to_string()))
}

/// Parameters, then metrics: every curve point at its step, the final values at step 0.
async fn log_data(client: &Client, run_id: &str, run: &Run) -> Result<()> {
    for chunk in run.params.chunks(PARAMS_PER_BATCH) {
        client
            .post(
                "runs/log-batch",
                &json!({"run_id": run_id, "params": key_values(chunk, PARAM_VALUE_LENGTH)}),
            )
            .await?;
    }
    let now = now_ms();
    let metric = |key: &str, value: f64, step: u64| json!({"key": key, "value": number(value), "timestamp": now, "step": step});
    let metrics: Vec<Value> = run
        .curves
        .iter()
        .flat_map(|curve| {
            curve
                .points
                .iter()
                .map(|&(step, value)| metric(&curve.name, value, step))
        })
        .chain(
            run.metrics
                .iter()
                .map(|(key, value)| metric(key, *value, 0)),
        )
        .collect();
    for chunk in metrics.chunks(METRICS_PER_BATCH) {
        client
            .post(
                "runs/log-batch",
                &json!({"run_id": run_id, "metrics": chunk}),
            )
            .await?;
    }
    Ok(())
}

/// The model as an MLflow 3 logged model of the run: created pending, linked to the run as an
/// output, its MLmodel folder uploaded to the logged model's artifacts, then marked ready.
async fn log_model(
    client: &Client,
    experiment_id: &str,
    run_id: &str,
    run: &Run,
    onnx: &[u8],
) -> Result<String> {
    let params: Vec<(String, String)> = run.params.clone();
    let created = client
        .post(
            "logged-models",
            &json!({
                "experiment_id": experiment_id,
                "name": MODEL_NAME,
                "source_run_id": run_id,
                "params": key_values(&params, PARAM_VALUE_LENGTH),
                "tags": key_values(&run.tags, TAG_VALUE_LENGTH),
            }),
        )
        .await?;
    let info = &created["model"]["info"];
    let (Some(model_id), Some(artifact_uri)) =
        (info["model_id"].as_str(), info["artifact_uri"].as_str())
    else {
        return Err(Error(format!(
            "{} answered logged-models without a model id and artifact location: skiff logs \
             models to MLflow 3 tracking servers; upgrade the server",
            client.url()
        )));
    };
    let path = artifact_path(artifact_uri)?;
    client
        .post(
            "runs/outputs",
            &json!({"run_id": run_id, "models": [{"model_id": model_id, "step": 0}]}),
        )
        .await?;
    let logged = Logged {
        artifact_path: artifact_uri.to_string(),
        model_id: model_id.to_string(),
        run_id: run_id.to_string(),
    };
    for (name, bytes) in model::files(onnx, Some(&logged))? {
        client.upload(&format!("{path}/{name}"), bytes).await?;
    }
    client
        .patch(
            &format!("logged-models/{model_id}"),
            &json!({"model_id": model_id, "status": "LOGGED_MODEL_READY"}),
        )
        .await?;
    Ok(model_id.to_string())
}

/// A new version of registered model `name` (created when missing) from the logged model:
/// its version number, once the server says it is ready.
async fn register(client: &Client, name: &str, run_id: &str, model_id: &str) -> Result<String> {
    if client
        .get_if_exists("registered-models/get", &[("name", name)])
        .await?
        .is_none()
    {
        client
            .post_unless_exists("registered-models/create", &json!({"name": name}))
            .await?;
    }
    let created = client
        .post(
            "model-versions/create",
            &json!({
                "name": name,
                "source": format!("models:/{model_id}"),
                "run_id": run_id,
                "model_id": model_id,
            }),
        )
        .await?;
    let mut version = created["model_version"].clone();
    let Some(number) = version["version"].as_str().map(str::to_string) else {
        return Err(Error(format!(
            "{} answered model-versions/create without a version: check the server's log",
            client.url()
        )));
    };
    let mut waited = 0;
    while version["status"] == "PENDING_REGISTRATION" && waited < REGISTRATION_WAIT_S {
        tokio::time::sleep(Duration::from_secs(1)).await;
        waited += 1;
        version = client
            .get(
                "model-versions/get",
                &[("name", name), ("version", number.as_str())],
            )
            .await?["model_version"]
            .clone();
    }
    match version["status"].as_str() {
        Some("FAILED_REGISTRATION") => {
            return Err(Error(format!(
                "MLflow could not register {name} version {number} ({}): check the server's log",
                version["status_message"]
                    .as_str()
                    .unwrap_or("no reason given")
            )));
        }
        Some("PENDING_REGISTRATION") => {
            return Err(Error(format!(
                "{name} version {number} is still pending after {REGISTRATION_WAIT_S} s: check \
                 the server's log, or the version later in MLflow's UI"
            )));
        }
        _ => {}
    }
    // as MLflow's client does, so the logged model's page lists its versions
    client
        .patch(
            &format!("logged-models/{model_id}/tags"),
            &json!({"tags": [{
                "key": "mlflow.modelVersions",
                "value": json!([{"name": name, "version": number}]).to_string(),
            }]}),
        )
        .await?;
    Ok(number)
}

/// The artifact proxy's path for an `mlflow-artifacts:` location (`mlflow-artifacts:/PATH` or
/// `mlflow-artifacts://HOST:PORT/PATH`); other stores are for MLflow's own client to write.
pub(super) fn artifact_path(location: &str) -> Result<String> {
    let Some(rest) = location.strip_prefix("mlflow-artifacts:") else {
        return Err(Error(format!(
            "the experiment's artifacts go to {location:?}, which skiff cannot write: skiff \
             uploads models through the tracking server, so start it with --serve-artifacts \
             (the default) or --artifacts-destination, and use a new experiment"
        )));
    };
    let path = match rest.strip_prefix("//") {
        Some(with_host) => with_host.split_once('/').map_or("", |(_, path)| path),
        None => rest,
    };
    Ok(path.trim_matches('/').to_string())
}

/// `[{"key": ..., "value": ...}]`, values cut to `limit` characters as MLflow cuts them.
fn key_values(pairs: &[(String, String)], limit: usize) -> Vec<Value> {
    pairs
        .iter()
        .map(|(key, value)| {
            let value: String = match value.char_indices().nth(limit) {
                Some((end, _)) => value[..end].to_string(),
                None => value.clone(),
            };
            json!({"key": key, "value": value})
        })
        .collect()
}

/// A metric value as protobuf's JSON writes doubles: NaN and the infinities as strings.
fn number(value: f64) -> Value {
    if value.is_nan() {
        json!("NaN")
    } else if value == f64::INFINITY {
        json!("Infinity")
    } else if value == f64::NEG_INFINITY {
        json!("-Infinity")
    } else {
        json!(value)
    }
}

/// The user, as Python's `getpass.getuser()` finds it.
fn user() -> Option<String> {
    ["LOGNAME", "USER", "LNAME", "USERNAME"]
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_artifact_proxy_is_written() {
        assert_eq!(
            artifact_path("mlflow-artifacts:/1/models/m-1/artifacts").unwrap(),
            "1/models/m-1/artifacts"
        );
        assert_eq!(
            artifact_path("mlflow-artifacts://host:5000/1/models/m-1/artifacts").unwrap(),
            "1/models/m-1/artifacts"
        );
        for other in ["s3://bucket/1", "file:///tmp/mlruns/1", "/tmp/mlruns/1"] {
            let err = artifact_path(other).unwrap_err().to_string();
            assert!(err.contains("--serve-artifacts"), "{err}");
            assert!(err.contains("--artifacts-destination"), "{err}");
        }
    }

    #[test]
    fn long_values_are_cut_as_mlflow_cuts_them() {
        let long = "é".repeat(PARAM_VALUE_LENGTH + 10);
        let pairs = [
            ("data".to_string(), long),
            ("c".to_string(), "1".to_string()),
        ];
        let out = key_values(&pairs, PARAM_VALUE_LENGTH);
        assert_eq!(
            out[0]["value"].as_str().unwrap().chars().count(),
            PARAM_VALUE_LENGTH
        );
        assert_eq!(out[1], json!({"key": "c", "value": "1"}));
    }

    #[test]
    fn non_finite_metrics_are_protobuf_json() {
        assert_eq!(number(f64::NAN), json!("NaN"));
        assert_eq!(number(f64::NEG_INFINITY), json!("-Infinity"));
        assert_eq!(number(0.25), json!(0.25));
    }

    #[tokio::test]
    async fn register_without_a_model_fails_before_any_request() {
        // nothing listens on port 9 of the loopback: a request would fail differently
        let client = Client::new("http://127.0.0.1:9").unwrap();
        let target = Target {
            experiment: "Default".into(),
            run_name: None,
            register: Some("m".into()),
        };
        let run = Run {
            command: "cv".into(),
            ..Run::default()
        };
        let err = log_run(&client, &target, &run, None)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("`skiff cv` writes none"), "{err}");
    }
}
