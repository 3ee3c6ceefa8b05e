//! The Open Inference Protocol (KServe v2 REST) server.
//!
//! [`router`] answers the protocol's endpoints for the models of a [`Repository`]; the
//! `skiff serve` command and the static server inside images both run it through [`serve`].
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! let model = skiff_runtime::Model::from_path("iris.onnx".as_ref()).unwrap();
//! let repo = skiff_host::Repository::single("iris", model);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! skiff_host::serve(listener, repo, std::future::pending()).await
//! # }
//! ```

#![deny(missing_docs)]

pub mod protocol;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;
use skiff_runtime::Model;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

/// The version every model is served as until the repository knows versions.
pub const MODEL_VERSION: &str = "1";

/// The models a server answers for, by name.
#[derive(Debug, Clone, Default)]
pub struct Repository {
    models: BTreeMap<String, Arc<Model>>,
}

impl Repository {
    /// A repository of one model.
    pub fn single(name: &str, model: Model) -> Repository {
        let mut repo = Repository::default();
        repo.insert(name, model);
        repo
    }

    /// Adds (or replaces) a model.
    pub fn insert(&mut self, name: &str, model: Model) {
        self.models.insert(name.to_string(), Arc::new(model));
    }

    /// True when every model is loaded and there is at least one.
    pub fn ready(&self) -> bool {
        !self.models.is_empty()
    }

    fn get(&self, name: &str) -> Result<&Arc<Model>, ApiError> {
        self.models.get(name).ok_or_else(|| ApiError {
            status: StatusCode::NOT_FOUND,
            message: format!(
                "model {name:?} not found (served: {})",
                self.models.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        })
    }
}

/// An error answered as `{"error": "..."}` with a 4xx or 5xx status.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    /// A 400 Bad Request.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, axum::Json(json!({ "error": self.message }))).into_response()
    }
}

type Shared = Arc<Repository>;

/// The protocol's routes over `repo`.
pub fn router(repo: Repository) -> Router {
    let model_routes = Router::new()
        .route("/", get(model_metadata))
        .route("/ready", get(model_ready))
        .route("/infer", post(infer));
    Router::new()
        .route("/v2", get(server_metadata))
        .route(
            "/v2/health/live",
            get(|| async { axum::Json(json!({ "live": true })) }),
        )
        .route("/v2/health/ready", get(server_ready))
        .nest("/v2/models/{name}", model_routes.clone())
        .nest("/v2/models/{name}/versions/{version}", model_routes)
        .fallback(|| async {
            ApiError {
                status: StatusCode::NOT_FOUND,
                message: "no such endpoint (see /v2)".into(),
            }
        })
        .with_state(Arc::new(repo))
}

/// Serves `repo` on `listener` until `shutdown` completes, then finishes in-flight requests.
pub async fn serve(
    listener: tokio::net::TcpListener,
    repo: Repository,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(repo))
        .with_graceful_shutdown(shutdown)
        .await
}

async fn server_metadata() -> impl IntoResponse {
    axum::Json(json!({ "name": "skiff", "version": env!("CARGO_PKG_VERSION"), "extensions": [] }))
}

async fn server_ready(State(repo): State<Shared>) -> Response {
    let ready = repo.ready();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(json!({ "ready": ready }))).into_response()
}

/// `{name}` and, on versioned paths, `{version}`.
#[derive(serde::Deserialize)]
struct ModelPath {
    name: String,
    version: Option<String>,
}

fn lookup<'r>(repo: &'r Repository, path: &ModelPath) -> Result<&'r Arc<Model>, ApiError> {
    let model = repo.get(&path.name)?;
    match path.version.as_deref() {
        None | Some(MODEL_VERSION) => Ok(model),
        Some(v) => Err(ApiError {
            status: StatusCode::NOT_FOUND,
            message: format!(
                "model {:?} has no version {v:?} (versions: {MODEL_VERSION})",
                path.name
            ),
        }),
    }
}

async fn model_metadata(
    State(repo): State<Shared>,
    Path(path): Path<ModelPath>,
) -> Result<Response, ApiError> {
    let model = lookup(&repo, &path)?;
    Ok(axum::Json(json!({
        "name": path.name,
        "versions": [MODEL_VERSION],
        "platform": "onnx_onnxv1",
        "inputs": model.inputs(),
        "outputs": model.outputs(),
    }))
    .into_response())
}

async fn model_ready(
    State(repo): State<Shared>,
    Path(path): Path<ModelPath>,
) -> Result<Response, ApiError> {
    lookup(&repo, &path)?;
    Ok(axum::Json(json!({ "name": path.name, "ready": true })).into_response())
}

async fn infer(
    State(repo): State<Shared>,
    Path(path): Path<ModelPath>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let model = lookup(&repo, &path)?;
    let request: protocol::InferRequest = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("invalid inference request: {e}")))?;
    let mut by_name: BTreeMap<String, protocol::RequestInput> = BTreeMap::new();
    for input in request.inputs {
        if let Some(dup) = by_name.insert(input.name.clone(), input) {
            return Err(ApiError::bad_request(format!(
                "input {:?} given twice",
                dup.name
            )));
        }
    }
    let mut tensors = Vec::with_capacity(model.inputs().len());
    for spec in model.inputs() {
        let input = by_name.remove(&spec.name).ok_or_else(|| {
            ApiError::bad_request(format!(
                "missing input {:?} ({} {:?})",
                spec.name, spec.datatype, spec.shape
            ))
        })?;
        tensors.push(protocol::to_tensor(input, spec)?);
    }
    if let Some(extra) = by_name.keys().next() {
        return Err(ApiError::bad_request(format!(
            "model {:?} has no input {extra:?} (inputs: {})",
            path.name,
            model
                .inputs()
                .iter()
                .map(|i| i.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let wanted: Option<Vec<String>> = request
        .outputs
        .map(|o| o.into_iter().map(|o| o.name).collect());
    if let Some(unknown) = wanted
        .iter()
        .flatten()
        .find(|w| !model.outputs().iter().any(|o| &o.name == *w))
    {
        return Err(ApiError::bad_request(format!(
            "model {:?} has no output {unknown:?}",
            path.name
        )));
    }
    let results = model.run(tensors).map_err(|e| match e {
        skiff_runtime::Error::BadInput(m) => ApiError::bad_request(m),
        other => ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: other.to_string(),
        },
    })?;
    let outputs = model
        .outputs()
        .iter()
        .zip(results)
        .filter(|(spec, _)| wanted.as_ref().is_none_or(|w| w.contains(&spec.name)))
        .map(|(spec, tensor)| protocol::from_tensor(&spec.name, tensor))
        .collect();
    Ok(axum::Json(protocol::InferResponse {
        model_name: path.name,
        model_version: MODEL_VERSION.to_string(),
        id: request.id,
        outputs,
    })
    .into_response())
}
