//! Triton's and KServe's model repository extension: `POST /v2/repository/index` lists the
//! models the server's sources hold and their state; `POST /v2/repository/models/NAME/load`
//! and `.../unload` load and unload one model while the others go on serving (with
//! [`Options::model_control`](super::Options::model_control) on).

use super::{AppState, Shared, install};
use crate::protocol::ApiError;
use crate::{LoadError, Repository};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::{Value, json};

/// Why a load with parameters is refused.
pub(crate) const NO_LOAD_PARAMETERS: &str = "load parameters (a config or model files) are not \
     supported: put the model in the repository and load it by name";

/// The extension's name in `GET /v2`.
pub(crate) const EXTENSION: &str = "model_repository";

/// Every model of the server's sources, less those unloaded through the extension.
pub(super) async fn load_all(state: &Shared) -> Result<Repository, LoadError> {
    let Some(sources) = state.sources.clone() else {
        return Ok(Repository::clone(&state.repo()));
    };
    let mut repo = tokio::task::spawn_blocking(move || sources.load_all())
        .await
        .unwrap_or_else(|e| Err(format!("loading the models failed: {e}").into()))?;
    for name in lock(&state.unloaded).iter() {
        repo.remove(name);
    }
    Ok(repo)
}

/// One line of the index.
pub(crate) struct IndexEntry {
    pub name: String,
    /// The version, for a loaded one.
    pub version: Option<u64>,
    /// `READY` or `UNAVAILABLE`, as Triton says.
    pub state: &'static str,
    /// Why it is not ready: `unloaded` (through the extension) or `not loaded` (new in the
    /// repository since the last load).
    pub reason: &'static str,
}

/// The index: one entry per loaded version (`READY`), and one per model the sources hold that
/// is not loaded (`UNAVAILABLE`, with the reason); with `ready_only`, the loaded ones alone.
pub(crate) fn index(state: &AppState, ready_only: bool) -> Vec<IndexEntry> {
    let repo = state.repo();
    let mut entries = Vec::new();
    for (name, versions, _) in repo.describe() {
        for version in versions {
            entries.push(IndexEntry {
                name: name.clone(),
                version: Some(version),
                state: "READY",
                reason: "",
            });
        }
    }
    if !ready_only && let Some(sources) = &state.sources {
        for name in sources.names() {
            if !repo.contains(&name) {
                let reason = if lock(&state.unloaded).contains(&name) {
                    "unloaded"
                } else {
                    "not loaded"
                };
                entries.push(IndexEntry {
                    name,
                    version: None,
                    state: "UNAVAILABLE",
                    reason,
                });
            }
        }
    }
    entries
}

/// Loads model `name` (all its versions) from the sources again and serves it; the other
/// models serve on undisturbed.
pub(crate) async fn load_model(state: &Shared, name: &str) -> Result<(), ApiError> {
    let sources = allowed(state)?;
    let _one_at_a_time = state.control.lock().await;
    let wanted = name.to_string();
    let loaded = tokio::task::spawn_blocking(move || sources.load_one(&wanted))
        .await
        .unwrap_or_else(|e| Err(format!("loading failed: {e}").into()))
        .map_err(|e| ApiError::bad_request(format!("cannot load model {name:?}: {e}")))?;
    let Some(loaded) = loaded.filter(|repo| !repo.is_empty()) else {
        return Err(not_found(state, name));
    };
    let mut repo = Repository::clone(&state.repo());
    repo.replace(loaded);
    lock(&state.unloaded).remove(name);
    install(state, repo);
    tracing::info!(model = name, "loaded through the repository extension");
    Ok(())
}

/// Stops serving model `name`: new requests get 404, requests already running finish.
pub(crate) async fn unload_model(state: &Shared, name: &str) -> Result<(), ApiError> {
    let sources = allowed(state)?;
    let _one_at_a_time = state.control.lock().await;
    let mut repo = Repository::clone(&state.repo());
    if !repo.remove(name) && !sources.names().iter().any(|n| n == name) {
        return Err(not_found(state, name));
    }
    lock(&state.unloaded).insert(name.to_string());
    lock(&state.batchers).retain(|(model, _), _| model != name);
    install(state, repo);
    tracing::info!(model = name, "unloaded through the repository extension");
    Ok(())
}

/// The sources, when clients may load and unload; else the 403 that says how to allow it.
fn allowed(state: &AppState) -> Result<crate::Sources, ApiError> {
    if !state.options.model_control {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "loading and unloading models is off: start the server with --model-control \
             (SKIFF_MODEL_CONTROL=true) to allow it",
        ));
    }
    state.sources.clone().ok_or_else(|| {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "this server was given its models at start and cannot load others",
        )
    })
}

fn not_found(state: &AppState, name: &str) -> ApiError {
    let known = state
        .sources
        .as_ref()
        .map(|s| s.names())
        .unwrap_or_default();
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!(
            "no model {name:?} in the repository (it has: {})",
            known.join(", ")
        ),
    )
}

fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// A request body that is empty or a JSON object, as the extension's requests are.
fn object(body: &Bytes) -> Result<serde_json::Map<String, Value>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Default::default());
    }
    match serde_json::from_slice(body) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(ApiError::bad_request(
            "the body must be empty or a JSON object such as {\"ready\": true}",
        )),
    }
}

/// `POST /v2/repository/index`, with an optional `{"ready": true}`.
pub(super) async fn index_route(
    State(state): State<Shared>,
    body: Bytes,
) -> Result<axum::Json<Value>, ApiError> {
    let request = object(&body)?;
    let ready_only = match request.get("ready") {
        None => false,
        Some(Value::Bool(ready)) => *ready,
        Some(_) => return Err(ApiError::bad_request("\"ready\" must be true or false")),
    };
    let entries = index(&state, ready_only).into_iter().map(|e| {
        let mut entry = json!({"name": e.name, "state": e.state, "reason": e.reason});
        if let Some(version) = e.version {
            entry["version"] = json!(version.to_string());
        }
        entry
    });
    Ok(axum::Json(entries.collect()))
}

/// `POST /v2/repository/models/{name}/load`.
pub(super) async fn load_route(
    State(state): State<Shared>,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<axum::Json<Value>, ApiError> {
    let request = object(&body)?;
    if request
        .get("parameters")
        .and_then(Value::as_object)
        .is_some_and(|p| !p.is_empty())
    {
        return Err(ApiError::bad_request(NO_LOAD_PARAMETERS));
    }
    load_model(&state, &name).await?;
    Ok(axum::Json(json!({})))
}

/// `POST /v2/repository/models/{name}/unload`.
pub(super) async fn unload_route(
    State(state): State<Shared>,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<axum::Json<Value>, ApiError> {
    object(&body)?;
    unload_model(&state, &name).await?;
    Ok(axum::Json(json!({})))
}
