//! The server: the protocol's routes over a [`Repository`] on axum, with limits, metrics,
//! batching, reloads and graceful shutdown.

mod batch;
mod control;
mod grpc;
pub mod metrics;
mod shutdown;

pub use batch::Batching;
pub use grpc::pb as grpc_proto;
pub use metrics::MetricsNames;
pub use shutdown::CLOSE_GRACE;

use crate::protocol::{self, ApiError, Inference};
use crate::{Error, LoadError, Repository, Result, Sources};
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;
use skiff_runtime::{Model, Tensor};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::Semaphore;

/// Server limits and shutdown behaviour.
#[derive(Debug, Clone)]
pub struct Options {
    /// Largest request body in bytes; larger ones get 413 (default 64 MiB, as Triton).
    pub max_body_bytes: usize,
    /// Most tensor elements in one request, all inputs together; more get 413.
    pub max_elements: usize,
    /// Inference requests served at once; more get 503 with `Retry-After`.
    pub max_concurrency: usize,
    /// Longest time one inference may take; it then gets 504 (none by default).
    pub timeout: Option<Duration>,
    /// Dynamic batching of concurrent requests to one model (off by default).
    pub batching: Option<Batching>,
    /// After the shutdown signal: how long readiness answers 503 while requests are still
    /// accepted, so load balancers (Kubernetes endpoints) stop sending traffic first.
    pub drain: Duration,
    /// Whether clients may load and unload models (`POST /v2/repository/models/NAME/load`,
    /// `.../unload`); the index is always answered. Off by default: anyone who can reach the
    /// server could otherwise take its models away.
    pub model_control: bool,
    /// The names `GET /metrics` uses: skiff's, or Triton's for dashboards built for Triton.
    pub metrics_names: MetricsNames,
    /// Where models loaded for explanations ([`skiff_runtime::BackendOptions::explain`]) get
    /// the rows their SHAP values are measured from; `POST /v2/models/NAME/explain` answers
    /// only with it.
    pub explain_background: Option<Background>,
}

/// Background rows for a model's explanations: the model's inputs for rows like its training
/// data, or why there are none.
#[derive(Clone)]
pub struct Background(pub Arc<BackgroundRows>);

/// What [`Background`] calls for a model.
pub type BackgroundRows = dyn Fn(&Model) -> std::result::Result<Vec<Tensor>, String> + Send + Sync;

impl std::fmt::Debug for Background {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Background")
    }
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_body_bytes: protocol::MAX_BODY_BYTES,
            max_elements: protocol::MAX_ELEMENTS,
            max_concurrency: 1024,
            timeout: None,
            batching: None,
            drain: Duration::from_secs(5),
            model_control: false,
            metrics_names: MetricsNames::default(),
            explain_background: None,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(self.body())).into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

type Batchers =
    std::sync::Mutex<std::collections::HashMap<(String, u64), (Arc<Model>, batch::Batcher)>>;

struct AppState {
    batchers: Batchers,
    repo: std::sync::RwLock<Arc<Repository>>,
    metrics: Arc<metrics::Metrics>,
    options: Options,
    draining: AtomicBool,
    /// Past the drain: every response says `Connection: close`.
    closing: AtomicBool,
    permits: Semaphore,
    /// Where the models come from, for loads through the repository extension (none when the
    /// server was given a fixed repository).
    sources: Option<Sources>,
    /// Models unloaded through the repository extension: reloads leave them out.
    unloaded: std::sync::Mutex<std::collections::BTreeSet<String>>,
    /// Loads and unloads one at a time.
    control: tokio::sync::Mutex<()>,
    /// Where REST and gRPC listen, for the log.
    addresses: std::sync::OnceLock<(String, Option<String>)>,
}

type Shared = Arc<AppState>;

/// The protocol's routes over `repo`.
pub fn router(repo: Repository, options: Options) -> Router {
    router_for(AppState::new(repo, options, None))
}

impl AppState {
    /// The models being served now; a reload swaps them, requests in flight keep theirs.
    fn repo(&self) -> Arc<Repository> {
        self.repo.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The batching queue of a model version, when batching is on and the model can batch.
    fn batcher(&self, name: &str, version: u64, model: &Arc<Model>) -> Option<batch::Batcher> {
        let batching = self.options.batching?;
        if !batch::Batcher::eligible(model) {
            return None;
        }
        let mut batchers = self.batchers.lock().unwrap_or_else(|e| e.into_inner());
        let key = (name.to_string(), version);
        if let Some((running, batcher)) = batchers.get(&key)
            && Arc::ptr_eq(running, model)
        {
            return Some(batcher.clone());
        }
        // New, or reloaded: the old queue ends when its last request is answered.
        let batcher = batch::Batcher::spawn(model.clone(), batching, self.meter(name, version));
        batchers.insert(key, (model.clone(), batcher.clone()));
        Some(batcher)
    }

    /// Ready: models loaded and not draining (REST's `/v2/health/ready`, MLflow's `/ping` and
    /// gRPC's ServerReady).
    fn ready(&self) -> bool {
        !self.draining.load(Ordering::SeqCst) && !self.repo().is_empty()
    }

    /// The model and version labels of a request's metrics: what it names, once it names a
    /// model served (the version resolved: the newest when it names none).
    fn metric_labels(&self, name: &str, version: Option<&str>) -> (String, String) {
        let repo = self.repo();
        match repo.get(name, version) {
            Ok((version, _)) => (name.to_string(), version.to_string()),
            Err(_) if repo.contains(name) => (name.to_string(), String::new()),
            Err(_) => (String::new(), String::new()),
        }
    }

    /// Counts an inference request and logs it: a line at debug level, an error line when it
    /// failed inside (5xx). `kind` names the request in the log (REST's `infer`, gRPC's).
    fn account(
        &self,
        model: &str,
        version: &str,
        error: Option<&ApiError>,
        started: std::time::Instant,
        kind: &str,
    ) {
        let status = error.map_or(StatusCode::OK, |e| e.status).as_u16();
        match error {
            Some(e) if e.status.is_server_error() => {
                tracing::error!(model, version, status, error = %e.message, "{kind} failed")
            }
            Some(e) => {
                tracing::debug!(model, version, status, error = %e.message, "{kind}: bad request")
            }
            None => {}
        }
        let elapsed = started.elapsed();
        self.metrics.record_request(model, version, status, elapsed);
        let micros = elapsed.as_micros() as u64;
        tracing::debug!(model, version, status, micros, "{kind}");
    }

    /// What records the runs of a model version.
    fn meter(&self, name: &str, version: u64) -> metrics::Meter {
        metrics::Meter {
            metrics: self.metrics.clone(),
            model: name.to_string(),
            version: version.to_string(),
        }
    }

    fn new(repo: Repository, options: Options, sources: Option<Sources>) -> Shared {
        Arc::new(AppState {
            sources,
            unloaded: Default::default(),
            control: Default::default(),
            addresses: Default::default(),
            metrics: Arc::new(metrics::Metrics::new(&repo, options.metrics_names)),
            repo: std::sync::RwLock::new(Arc::new(repo)),
            permits: Semaphore::new(options.max_concurrency.max(1)),
            batchers: Default::default(),
            options,
            draining: AtomicBool::new(false),
            closing: AtomicBool::new(false),
        })
    }
}

fn router_for(state: Shared) -> Router {
    let model_routes = Router::new()
        .route("/", get(model_metadata))
        .route("/ready", get(model_ready))
        .route("/infer", post(infer))
        .route("/explain", post(explain))
        .route("/docs/openapi.json", get(model_openapi));
    Router::new()
        .route("/v2", get(server_metadata))
        .route(
            "/v2/health/live",
            get(|| async { axum::Json(json!({ "live": true })) }),
        )
        .route("/v2/health/ready", get(server_ready))
        .route(
            "/v2/docs/openapi.json",
            get(|| async { axum::Json(crate::openapi::document()) }),
        )
        .route("/metrics", get(metrics_text))
        .route("/invocations", post(invocations))
        .route("/ping", get(ping))
        .route("/v1/models/{target}", post(kserve_v1))
        .route("/v2/repository/index", post(control::index_route))
        .route(
            "/v2/repository/models/{name}/load",
            post(control::load_route),
        )
        .route(
            "/v2/repository/models/{name}/unload",
            post(control::unload_route),
        )
        .nest("/v2/models/{name}", model_routes.clone())
        .nest("/v2/models/{name}/versions/{version}", model_routes)
        .fallback(|| async { protocol::no_such_endpoint() })
        .method_not_allowed_fallback(
            |method: axum::http::Method, uri: axum::http::Uri| async move {
                protocol::method_not_allowed(method.as_str(), uri.path())
            },
        )
        .layer(DefaultBodyLimit::max(state.options.max_body_bytes))
        .layer(axum::middleware::map_response_with_state(
            state.clone(),
            close_when_closing,
        ))
        .with_state(state)
}

/// Where a server listens: the REST listener and, when given, a gRPC one (the protocol's gRPC
/// form, KServe's `inference.GRPCInferenceService`). Both serve the same models, limits,
/// metrics and shutdown. A plain [`tokio::net::TcpListener`] converts into REST alone.
#[derive(Debug)]
pub struct Listeners {
    /// The REST (HTTP/1.1) listener.
    pub rest: tokio::net::TcpListener,
    /// The gRPC (HTTP/2) listener, if any.
    pub grpc: Option<tokio::net::TcpListener>,
}

impl Listeners {
    /// REST on `rest`, no gRPC.
    pub fn new(rest: tokio::net::TcpListener) -> Listeners {
        Listeners { rest, grpc: None }
    }

    /// Also serves gRPC on `grpc`.
    pub fn with_grpc(self, grpc: tokio::net::TcpListener) -> Listeners {
        Listeners {
            grpc: Some(grpc),
            ..self
        }
    }
}

impl From<tokio::net::TcpListener> for Listeners {
    fn from(rest: tokio::net::TcpListener) -> Listeners {
        Listeners::new(rest)
    }
}

/// Serves `repo` on `listeners` until `shutdown` completes; then readiness turns 503 (and
/// gRPC's ServerReady false) at once, requests are still accepted for [`Options::drain`]; then
/// the server closes its listeners, ends each open REST connection after its next response
/// (idle ones after [`CLOSE_GRACE`]), tells gRPC clients to go away, and returns once
/// in-flight requests are answered. No request it has read goes unanswered.
pub async fn serve(
    listeners: impl Into<Listeners>,
    repo: Repository,
    options: Options,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let state = AppState::new(repo, options, None);
    run(state, listeners.into(), async move {
        shutdown.await;
        Stop::Drain
    })
    .await
}

/// As [`serve`], with the models of `sources`. The server listens at once: liveness answers
/// 200 and readiness 503 while they load, so a slow load is not mistaken for a dead server.
/// A failed first load stops the server and is returned. Then, on SIGHUP, it loads them
/// again and swaps in the new models without dropping a request: requests already running
/// finish on the models they started with. A failed reload is logged and changes nothing.
/// The model repository extension loads and unloads single models the same way.
pub async fn serve_with_reload(
    listeners: impl Into<Listeners>,
    sources: Sources,
    options: Options,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    // Listen for SIGHUP before loading: its default action would end the process.
    let hangups = signal(SignalKind::hangup())
        .inspect_err(
            |e| tracing::warn!(error = %e, "cannot listen for SIGHUP: models will not be reloaded"),
        )
        .ok();
    let state = AppState::new(Repository::default(), options, Some(sources));
    let listeners = listeners.into();
    let addr = |l: &tokio::net::TcpListener| l.local_addr().map_or("?".into(), |a| a.to_string());
    let _ = state
        .addresses
        .set((addr(&listeners.rest), listeners.grpc.as_ref().map(addr)));
    let (first_tx, first_rx) = tokio::sync::oneshot::channel();
    let loads = tokio::spawn(load_then_reload(state.clone(), hangups, first_tx));
    let failed = std::sync::Arc::new(std::sync::Mutex::new(None));
    let failure = failed.clone();
    let stop = async move {
        let mut shutdown = std::pin::pin!(shutdown);
        tokio::select! {
            () = &mut shutdown => return Stop::Drain,
            first = first_rx => {
                if let Ok(Err(e)) = first {
                    *failure.lock().unwrap_or_else(|e| e.into_inner()) = Some(e);
                    return Stop::Now;
                }
            }
        }
        // Loaded: serve until the shutdown signal.
        shutdown.await;
        Stop::Drain
    };
    let served = run(state, listeners, stop).await;
    loads.abort();
    if let Some(e) = failed.lock().unwrap_or_else(|e| e.into_inner()).take() {
        return Err(Error::Load(e));
    }
    served.map_err(Error::Serve)
}

/// How serving ends.
enum Stop {
    /// Readiness off, the drain delay, then the listener closes and connections wind down.
    Drain,
    /// At once (the server never became ready): connections close as soon as they are idle.
    Now,
}

async fn run(
    state: Shared,
    listeners: Listeners,
    stop: impl Future<Output = Stop> + Send + 'static,
) -> std::io::Result<()> {
    let (stop_accepting, stop_rx) = tokio::sync::watch::channel(false);
    // gRPC stops with REST: when REST stops accepting, or when REST's server is gone.
    let mut grpc_stop = stop_rx.clone();
    let listener = shutdown::Closable::new(listeners.rest, stop_rx);
    let mut open = listener.open_connections();
    let mut closed = listener.closed();
    let lifecycle = state.clone();
    let drained = async move {
        if let Stop::Now = stop.await {
            stop_accepting.send_replace(true);
            return;
        }
        lifecycle.draining.store(true, Ordering::SeqCst);
        tracing::info!(drain = ?lifecycle.options.drain, "shutting down: readiness is now 503, draining");
        tokio::time::sleep(lifecycle.options.drain).await;
        stop_accepting.send_replace(true);
        // Responses say `Connection: close` only once new connections are refused.
        let _ = tokio::time::timeout(CLOSE_GRACE, closed.wait_for(|c| *c)).await;
        lifecycle.closing.store(true, Ordering::SeqCst);
        tracing::info!(
            open = *open.borrow(),
            "no longer accepting connections; each open one closes after its next response"
        );
        let _ = tokio::time::timeout(CLOSE_GRACE, open.wait_for(|n| *n == 0)).await;
        tracing::info!(
            idle = *open.borrow(),
            "closing idle connections; finishing in-flight requests"
        );
    };
    let rest = axum::serve(listener, router_for(state.clone()))
        .with_graceful_shutdown(drained)
        .into_future();
    let Some(grpc) = listeners.grpc else {
        return rest.await;
    };
    let grpc = grpc::serve(state, grpc, async move {
        let _ = grpc_stop.wait_for(|stop| *stop).await;
    });
    let (rest, grpc) = tokio::join!(rest, grpc);
    rest.and(grpc)
}

/// Runs the first load, reports how it went on `first`, then reloads on each SIGHUP.
async fn load_then_reload(
    state: Shared,
    hangups: Option<tokio::signal::unix::Signal>,
    first: tokio::sync::oneshot::Sender<std::result::Result<(), LoadError>>,
) {
    match control::load_all(&state).await {
        Ok(repo) => {
            install(&state, repo);
            let _ = first.send(Ok(()));
        }
        Err(e) => {
            let _ = first.send(Err(e));
            return;
        }
    }
    let Some(mut hangups) = hangups else {
        return;
    };
    while hangups.recv().await.is_some() {
        tracing::info!("SIGHUP: reloading models");
        let _one_at_a_time = state.control.lock().await;
        match control::load_all(&state).await {
            Ok(repo) => install(&state, repo),
            Err(e) => {
                tracing::error!(error = %e, "reload failed; still serving the previous models")
            }
        }
    }
}

/// Swaps in `repo`; requests in flight keep the models they started with.
fn install(state: &AppState, repo: Repository) {
    state.metrics.set_load_times(&repo);
    let (rest, grpc) = state.addresses.get().cloned().unwrap_or_default();
    let grpc = grpc
        .map(|addr| format!(" and gRPC at {addr}"))
        .unwrap_or_default();
    for (name, versions, backend) in repo.describe() {
        tracing::info!(
            model = name,
            ?versions,
            backend,
            "serving model {name:?} (versions {versions:?}, on {backend}) at http://{rest}/v2/models/{name}{grpc}"
        );
    }
    *state.repo.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(repo);
}

/// Completes on SIGTERM (how Kubernetes stops a pod) or Ctrl-C: the usual `shutdown` for
/// [`serve`].
pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

async fn close_when_closing(State(state): State<Shared>, mut response: Response) -> Response {
    if state.closing.load(Ordering::Relaxed) {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

async fn server_metadata() -> impl IntoResponse {
    let mut metadata = protocol::server_metadata();
    if let Some(extensions) = metadata["extensions"].as_array_mut() {
        extensions.push(json!(control::EXTENSION));
    }
    axum::Json(metadata)
}

async fn metrics_text(State(state): State<Shared>) -> Response {
    (
        [(header::CONTENT_TYPE, state.metrics.content_type())],
        state.metrics.encode(),
    )
        .into_response()
}

async fn server_ready(State(state): State<Shared>) -> Response {
    let ready = state.ready();
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

async fn model_metadata(
    State(state): State<Shared>,
    Path(path): Path<ModelPath>,
) -> Result<Response, ApiError> {
    let repo = state.repo();
    let (_, model) = repo.get(&path.name, path.version.as_deref())?;
    let versions = repo.versions(&path.name)?;
    Ok(axum::Json(protocol::model_metadata(&path.name, &versions, model)).into_response())
}

/// `GET /v2/models/{name}/docs/openapi.json`: the OpenAPI document with this model's inputs.
async fn model_openapi(
    State(state): State<Shared>,
    Path(path): Path<ModelPath>,
) -> Result<Response, ApiError> {
    let repo = state.repo();
    let (_, model) = repo.get(&path.name, path.version.as_deref())?;
    let versions = repo.versions(&path.name)?;
    Ok(axum::Json(crate::openapi::for_model(&path.name, &versions, model)).into_response())
}

async fn model_ready(
    State(state): State<Shared>,
    Path(path): Path<ModelPath>,
) -> Result<Response, ApiError> {
    state.repo().get(&path.name, path.version.as_deref())?;
    Ok(axum::Json(json!({ "name": path.name, "ready": true })).into_response())
}

/// Runs one request: inline when it is small (microseconds: no hop to another thread), else
/// on the blocking pool or through the model's batching queue, within the timeout.
async fn execute(
    state: &AppState,
    name: &str,
    version: u64,
    model: &Arc<Model>,
    tensors: Vec<Tensor>,
    elements: usize,
) -> Result<Vec<Tensor>, ApiError> {
    let batcher = state.batcher(name, version, model);
    let meter = state.meter(name, version);
    if batcher.is_none()
        && model.runs_inline()
        && elements <= INLINE_ELEMENTS
        && state.options.timeout.is_none()
    {
        meter.queued(std::time::Instant::now());
        return Ok(meter.run(model, tensors, 1)?);
    }
    let model = model.clone();
    let queued = std::time::Instant::now();
    let run = async move {
        match batcher {
            Some(batcher) => batcher.run(tensors).await,
            None => tokio::task::spawn_blocking(move || {
                meter.queued(queued);
                meter.run(&model, tensors, 1)
            })
            .await
            .unwrap_or_else(|e| {
                Err(skiff_runtime::Error::Run(format!(
                    "inference task failed: {e}"
                )))
            }),
        }
    };
    let result = match state.options.timeout {
        Some(limit) => tokio::time::timeout(limit, run).await.map_err(|_| {
            ApiError::new(
                StatusCode::GATEWAY_TIMEOUT,
                format!("inference took longer than {limit:?}"),
            )
        })?,
        None => run.await,
    };
    Ok(result?)
}

/// The request body, or the error that says why it could not be read (413 beyond the limit).
fn read_body(state: &AppState, body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|rejection| {
        let status = rejection.status();
        let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
            format!(
                "request body is larger than {} bytes",
                state.options.max_body_bytes
            )
        } else {
            format!("cannot read the request body: {}", rejection.body_text())
        };
        ApiError::new(status, message)
    })
}

/// A place among the requests served at once, or 503 when there is none.
fn permit(state: &AppState) -> Result<tokio::sync::SemaphorePermit<'_>, ApiError> {
    state.permits.try_acquire().map_err(|_| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "server is at its concurrency limit: retry shortly",
        )
    })
}

/// `GET /ping`, MLflow's health check: 200 once the models are loaded and while not draining.
async fn ping(State(state): State<Shared>) -> StatusCode {
    if state.ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    }
}

/// `POST /invocations`: MLflow's scoring protocol (see [`crate::invocations`]), for the one
/// model served.
async fn invocations(State(state): State<Shared>, body: Result<Bytes, BytesRejection>) -> Response {
    let started = std::time::Instant::now();
    let _in_flight = state.metrics.start();
    let mut served = (String::new(), String::new());
    let (status, response) = match invocations_inner(&state, body, &mut served).await {
        Ok(answer) => (StatusCode::OK, axum::Json(answer).into_response()),
        Err(e) => {
            let body = crate::invocations::error_body(&e);
            (e.status, (e.status, axum::Json(body)).into_response())
        }
    };
    let (name, version) = served;
    state
        .metrics
        .record_request(&name, &version, status.as_u16(), started.elapsed());
    response
}

async fn invocations_inner(
    state: &AppState,
    body: Result<Bytes, BytesRejection>,
    served: &mut (String, String),
) -> Result<serde_json::Value, ApiError> {
    let repo = state.repo();
    let models = repo.describe();
    let [(name, _, _)] = &models[..] else {
        let names: Vec<&str> = models.iter().map(|(n, _, _)| n.as_str()).collect();
        return Err(ApiError::bad_request(format!(
            "/invocations answers for the one model a server serves, and this one serves {} \
             ({}): POST /v2/models/NAME/infer instead",
            names.len(),
            names.join(", ")
        )));
    };
    let (version, model) = repo.get(name, None)?;
    *served = (name.clone(), version.to_string());
    let body = read_body(state, body)?;
    let _permit = permit(state)?;
    let request = crate::invocations::to_infer_request(model, &body)?;
    let mut inference = Inference::decode(name, model, &request, None, state.options.max_elements)?;
    let tensors = std::mem::take(&mut inference.tensors);
    let results = execute(state, name, version, model, tensors, inference.elements).await?;
    let answer = inference.answer(name, version, model, results);
    crate::invocations::predictions(&answer.body)
}

/// `POST /v2/models/NAME[/versions/V]/explain`: the SHAP values of an inference request's
/// rows (see [`skiff_runtime::explain`]).
async fn explain(
    State(state): State<Shared>,
    Path(path): Path<ModelPath>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let started = std::time::Instant::now();
    let _in_flight = state.metrics.start();
    let (model, version) = state.metric_labels(&path.name, path.version.as_deref());
    let result = async {
        let body = read_body(&state, body)?;
        let header_length = headers
            .get(protocol::HEADER_LENGTH)
            .map(|v| v.to_str().unwrap_or("?"));
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap_or("?"));
        let json_header_size = protocol::check_content_type(content_type, header_length)?;
        explain_rows(&state, &path.name, path.version.as_deref(), |_| {
            Ok((
                body.to_vec(),
                header_length.or(json_header_size).map(str::to_string),
            ))
        })
        .await
    }
    .await;
    state.account(&model, &version, result.as_ref().err(), started, "explain");
    explained_response(result)
}

/// KServe's v1 protocol, its explainer verb: `POST /v1/models/NAME:explain` with
/// `{"instances": [...]}` rows, answered as `/v2/models/NAME/explain` answers.
async fn kserve_v1(
    State(state): State<Shared>,
    Path(target): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let Some(name) = target.strip_suffix(":explain") else {
        return ApiError::new(
            StatusCode::NOT_FOUND,
            format!(
                "POST /v1/models/{target}: skiff answers KServe's v1 protocol for :explain \
                 only; infer with POST /v2/models/NAME/infer"
            ),
        )
        .into_response();
    };
    let started = std::time::Instant::now();
    let _in_flight = state.metrics.start();
    let (model, version) = state.metric_labels(name, None);
    let result = async {
        let body = read_body(&state, body)?;
        explain_rows(&state, name, None, |model| {
            Ok((crate::invocations::to_infer_request(model, &body)?, None))
        })
        .await
    }
    .await;
    state.account(&model, &version, result.as_ref().err(), started, "explain");
    explained_response(result)
}

/// An explanation as JSON, or the error's answer.
fn explained_response(result: std::result::Result<serde_json::Value, ApiError>) -> Response {
    result.map_or_else(IntoResponse::into_response, |answer| {
        axum::Json(answer).into_response()
    })
}

/// The SHAP values of the rows of the OIP request `request` makes for the model (its body
/// and binary header length), as JSON.
async fn explain_rows(
    state: &AppState,
    name: &str,
    version: Option<&str>,
    request: impl FnOnce(&Model) -> std::result::Result<(Vec<u8>, Option<String>), ApiError>,
) -> std::result::Result<serde_json::Value, ApiError> {
    let repo = state.repo();
    let (version, model) = repo.get(name, version)?;
    let Some(background) = state.options.explain_background.clone() else {
        return Err(ApiError::bad_request(
            "this server explains no models: start it with skiff serve --explain-background \
             TRAIN.csv",
        ));
    };
    let (body, header_length) = request(model)?;
    let inference = Inference::decode(
        name,
        model,
        &body,
        header_length.as_deref(),
        state.options.max_elements,
    )?;
    let _permit = permit(state)?;
    let model = model.clone();
    let tensors = inference.tensors;
    let explained = tokio::task::spawn_blocking(move || {
        let explainer = model.explainer(|m| (background.0)(m))?;
        explainer.explain(tensors)
    });
    let explained = match state.options.timeout {
        Some(limit) => tokio::time::timeout(limit, explained).await.map_err(|_| {
            ApiError::new(
                StatusCode::GATEWAY_TIMEOUT,
                format!("explaining took longer than {limit:?}"),
            )
        })?,
        None => explained.await,
    }
    .map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("explanation task failed: {e}"),
        )
    })??;
    let n_outputs = explained.outputs.len();
    let values: Vec<Vec<&[f64]>> = (0..explained.rows)
        .map(|r| explained.row(r).chunks(n_outputs).collect())
        .collect();
    Ok(json!({
        "model_name": name,
        "model_version": version.to_string(),
        "method": explained.method,
        "transform": explained.transform,
        "features": explained.features.iter().map(|f| &f.name).collect::<Vec<_>>(),
        "outputs": explained.outputs,
        "base_values": explained.base_values,
        "values": values,
    }))
}

/// Requests with more elements than this run on the blocking pool, not on an I/O thread.
const INLINE_ELEMENTS: usize = 1 << 14;

/// Inference with its metrics and its log line.
async fn infer(
    State(state): State<Shared>,
    Path(path): Path<ModelPath>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let started = std::time::Instant::now();
    let _in_flight = state.metrics.start();
    let (model, version) = state.metric_labels(&path.name, path.version.as_deref());
    let result = infer_inner(&state, path, headers, body).await;
    state.account(&model, &version, result.as_ref().err(), started, "infer");
    result.unwrap_or_else(IntoResponse::into_response)
}

async fn infer_inner(
    state: &AppState,
    path: ModelPath,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let repo = state.repo();
    let (version, model) = repo.get(&path.name, path.version.as_deref())?;
    let body = read_body(state, body)?;
    let _permit = permit(state)?;
    let header_length = headers
        .get(protocol::HEADER_LENGTH)
        .map(|v| v.to_str().unwrap_or("?"));
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap_or("?"));
    let json_header_size = protocol::check_content_type(content_type, header_length)?;
    let mut inference = Inference::decode(
        &path.name,
        model,
        &body,
        header_length.or(json_header_size),
        state.options.max_elements,
    )?;
    let tensors = std::mem::take(&mut inference.tensors);
    let results = execute(
        state,
        &path.name,
        version,
        model,
        tensors,
        inference.elements,
    )
    .await?;
    let answer = inference.answer(&path.name, version, model, results);
    let Some(header_length) = answer.header_length else {
        return Ok((
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            answer.body,
        )
            .into_response());
    };
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            ),
            (
                header::HeaderName::from_static(protocol::HEADER_LENGTH),
                HeaderValue::from(header_length),
            ),
        ],
        answer.body,
    )
        .into_response())
}
