//! Prometheus metrics of the inference endpoint, served at `GET /metrics`.

use crate::Repository;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

/// The media type `GET /metrics` answers with.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    model: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ModelLabels {
    model: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VersionLabels {
    model: String,
    version: String,
}

type LatencyFamily = Family<ModelLabels, Histogram, fn() -> Histogram>;

/// The server's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: LatencyFamily,
    in_flight: Gauge,
    load: Family<VersionLabels, Gauge<f64, AtomicU64>>,
}

fn latency_histogram() -> Histogram {
    // 25 µs to about 0.8 s.
    Histogram::new(exponential_buckets(25e-6, 2.0, 16))
}

impl Metrics {
    /// Registers every metric, with the load time of each model in `repo`.
    pub fn new(repo: &Repository) -> Metrics {
        let mut registry = Registry::with_prefix("skiff");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "inference_requests",
            "Inference requests by model and HTTP status",
            requests.clone(),
        );
        let latency: LatencyFamily = Family::new_with_constructor(latency_histogram);
        registry.register(
            "inference_request_duration_seconds",
            "Time from request to response of inference requests",
            latency.clone(),
        );
        let in_flight = Gauge::default();
        registry.register(
            "inference_requests_in_flight",
            "Inference requests being served",
            in_flight.clone(),
        );
        let load = Family::<VersionLabels, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "model_load_seconds",
            "Time to parse and optimise each model",
            load.clone(),
        );
        let metrics = Metrics {
            registry,
            requests,
            latency,
            in_flight,
            load,
        };
        metrics.set_load_times(repo);
        metrics
    }

    /// Records the load time of every model in `repo` (after a reload, say).
    pub(crate) fn set_load_times(&self, repo: &Repository) {
        self.load.clear();
        for (model, version, time) in repo.load_times() {
            self.load
                .get_or_create(&VersionLabels {
                    model,
                    version: version.to_string(),
                })
                .set(time.as_secs_f64());
        }
    }

    /// Counts a request as started; the guard counts it as done.
    pub(crate) fn start(&self) -> InFlight<'_> {
        self.in_flight.inc();
        InFlight(&self.in_flight)
    }

    /// Records a finished request; `model` is empty when the model is unknown.
    pub(crate) fn record(&self, model: &str, status: u16, elapsed: Duration) {
        let model = if model.is_empty() { "(unknown)" } else { model }.to_string();
        self.requests
            .get_or_create(&RequestLabels {
                model: model.clone(),
                status: status.to_string(),
            })
            .inc();
        self.latency
            .get_or_create(&ModelLabels { model })
            .observe(elapsed.as_secs_f64());
    }

    /// The metrics in the OpenMetrics text format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String");
        out
    }
}

/// Decrements the in-flight gauge when dropped, whatever path the request took.
pub(crate) struct InFlight<'a>(&'a Gauge);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}
