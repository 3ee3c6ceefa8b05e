//! Prometheus metrics of the inference endpoints, served at `GET /metrics`.
//!
//! Every protocol records through the same few methods: [`Metrics::record_request`] once per
//! request, [`Metrics::record_queue`] once per request that reached a model run, and
//! [`Metrics::record_execution`] once per model run (with dynamic batching one run serves
//! several requests, so executions fall below requests).
//!
//! Names are skiff's (`skiff_*`, OpenMetrics) by default, or Triton's ([`MetricsNames::Triton`]:
//! `nv_inference_*` counters with `model` and `version` labels, durations as counters of
//! microseconds, in the Prometheus text format) so that dashboards built for Triton work as
//! they are.

use crate::Repository;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use skiff_runtime::{Model, Tensor};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

/// The media type `GET /metrics` answers with under skiff's names.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The media type under Triton's names: the Prometheus text format, as Triton serves it.
pub const TRITON_CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Which names `GET /metrics` uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum MetricsNames {
    /// skiff's own: `skiff_inference_requests_total`, histograms in seconds (OpenMetrics).
    #[default]
    Skiff,
    /// Triton's: `nv_inference_request_success`, `nv_inference_count`, durations as
    /// counters of microseconds (Prometheus text format); skiff's histograms and gauges
    /// follow under their own names.
    Triton,
}

impl std::str::FromStr for MetricsNames {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "skiff" => Ok(MetricsNames::Skiff),
            "triton" => Ok(MetricsNames::Triton),
            other => Err(format!(
                "unknown metrics names {other:?}: use skiff or triton"
            )),
        }
    }
}

/// How a request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Answered.
    Success,
    /// Refused or failed.
    Failure,
}

impl Outcome {
    /// The outcome of an HTTP status: 2xx is a success.
    pub fn of_status(status: u16) -> Outcome {
        if (200..300).contains(&status) {
            Outcome::Success
        } else {
            Outcome::Failure
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    model: String,
    version: String,
    outcome: &'static str,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet, PartialOrd, Ord)]
struct VersionLabels {
    model: String,
    version: String,
}

type DurationFamily = Family<VersionLabels, Histogram, fn() -> Histogram>;

/// Triton's per-model counters.
#[derive(Debug, Default, Clone, Copy)]
struct TritonCounts {
    success: u64,
    failure: u64,
    inferences: u64,
    executions: u64,
    request_us: u64,
    queue_us: u64,
    compute_us: u64,
}

/// The server's metrics.
#[derive(Debug)]
pub struct Metrics {
    names: MetricsNames,
    /// skiff's counters (left out under Triton's names, which count the same things).
    counts: Registry,
    /// Histograms and gauges, under skiff's names in both modes.
    timings: Registry,
    requests: Family<RequestLabels, Counter>,
    rows: Family<VersionLabels, Counter>,
    executions: Family<VersionLabels, Counter>,
    latency: DurationFamily,
    queue: DurationFamily,
    compute: DurationFamily,
    in_flight: Gauge,
    load: Family<VersionLabels, Gauge<f64, AtomicU64>>,
    triton: Mutex<BTreeMap<VersionLabels, TritonCounts>>,
}

fn duration_histogram() -> Histogram {
    // 25 µs to about 0.8 s.
    Histogram::new(exponential_buckets(25e-6, 2.0, 16))
}

/// The labels of a model version; an unknown model is `(unknown)`, so that names sent by
/// clients do not each make a series.
fn labels(model: &str, version: &str) -> VersionLabels {
    VersionLabels {
        model: if model.is_empty() { "(unknown)" } else { model }.to_string(),
        version: version.to_string(),
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

impl Metrics {
    /// Registers every metric, with the load time of each model in `repo`.
    pub fn new(repo: &Repository, names: MetricsNames) -> Metrics {
        let mut counts = Registry::with_prefix("skiff");
        let mut timings = Registry::with_prefix("skiff");
        let requests = Family::<RequestLabels, Counter>::default();
        counts.register(
            "inference_requests",
            "Inference requests by model, version, outcome and HTTP status",
            requests.clone(),
        );
        let rows = Family::<VersionLabels, Counter>::default();
        counts.register(
            "inference_rows",
            "Inferences: rows run through the model (a request of n rows counts n)",
            rows.clone(),
        );
        let executions = Family::<VersionLabels, Counter>::default();
        counts.register(
            "inference_executions",
            "Model runs (with dynamic batching one run serves several requests)",
            executions.clone(),
        );
        let latency: DurationFamily = Family::new_with_constructor(duration_histogram);
        timings.register(
            "inference_request_duration_seconds",
            "Time from request to response of inference requests",
            latency.clone(),
        );
        let queue: DurationFamily = Family::new_with_constructor(duration_histogram);
        timings.register(
            "inference_queue_duration_seconds",
            "Time a request waited for its model run (for a batch, or a thread)",
            queue.clone(),
        );
        let compute: DurationFamily = Family::new_with_constructor(duration_histogram);
        timings.register(
            "inference_compute_duration_seconds",
            "Time of each model run",
            compute.clone(),
        );
        let in_flight = Gauge::default();
        timings.register(
            "inference_requests_in_flight",
            "Inference requests being served",
            in_flight.clone(),
        );
        let load = Family::<VersionLabels, Gauge<f64, AtomicU64>>::default();
        timings.register(
            "model_load_seconds",
            "Time to parse and optimise each model",
            load.clone(),
        );
        let metrics = Metrics {
            names,
            counts,
            timings,
            requests,
            rows,
            executions,
            latency,
            queue,
            compute,
            in_flight,
            load,
            triton: Mutex::default(),
        };
        metrics.set_load_times(repo);
        metrics
    }

    /// Records the load time of every model in `repo` (after a reload, say).
    pub(crate) fn set_load_times(&self, repo: &Repository) {
        self.load.clear();
        for (model, version, time) in repo.load_times() {
            self.load
                .get_or_create(&labels(&model, &version.to_string()))
                .set(time.as_secs_f64());
        }
    }

    /// Counts a request as started; the guard counts it as done.
    pub fn start(&self) -> InFlight<'_> {
        self.in_flight.inc();
        InFlight(&self.in_flight)
    }

    /// Updates Triton's counters of a model version, when they are served.
    fn triton(&self, model: &str, version: &str, update: impl FnOnce(&mut TritonCounts)) {
        if self.names != MetricsNames::Triton {
            return;
        }
        let mut counts = self.triton.lock().unwrap_or_else(|e| e.into_inner());
        update(counts.entry(labels(model, version)).or_default());
    }

    /// Records a finished request: `model` is empty when the model is unknown, `version` when
    /// no version was resolved; `status` is the HTTP status (another protocol passes its
    /// nearest HTTP equivalent).
    pub fn record_request(&self, model: &str, version: &str, status: u16, elapsed: Duration) {
        let outcome = Outcome::of_status(status);
        let key = labels(model, version);
        self.requests
            .get_or_create(&RequestLabels {
                model: key.model.clone(),
                version: key.version.clone(),
                outcome: outcome.as_str(),
                status: status.to_string(),
            })
            .inc();
        self.latency
            .get_or_create(&key)
            .observe(elapsed.as_secs_f64());
        self.triton(model, version, |c| match outcome {
            Outcome::Success => {
                c.success += 1;
                c.request_us += micros(elapsed);
            }
            Outcome::Failure => c.failure += 1,
        });
    }

    /// Records how long one request waited between being decoded and its model run starting.
    pub fn record_queue(&self, model: &str, version: &str, waited: Duration) {
        self.queue
            .get_or_create(&labels(model, version))
            .observe(waited.as_secs_f64());
        self.triton(model, version, |c| c.queue_us += micros(waited));
    }

    /// Records one successful model run of `rows` rows that answered `requests` requests in
    /// `took`.
    pub fn record_execution(
        &self,
        model: &str,
        version: &str,
        rows: usize,
        requests: usize,
        took: Duration,
    ) {
        let key = labels(model, version);
        self.rows.get_or_create(&key).inc_by(rows as u64);
        self.executions.get_or_create(&key).inc();
        self.compute.get_or_create(&key).observe(took.as_secs_f64());
        // Triton adds a run's compute time to each request it served.
        self.triton(model, version, |c| {
            c.inferences += rows as u64;
            c.executions += 1;
            c.compute_us += micros(took).saturating_mul(requests as u64);
        });
    }

    /// The media type of [`Metrics::encode`]'s text.
    pub fn content_type(&self) -> &'static str {
        match self.names {
            MetricsNames::Skiff => CONTENT_TYPE,
            MetricsNames::Triton => TRITON_CONTENT_TYPE,
        }
    }

    /// The metrics as text: OpenMetrics under skiff's names, the Prometheus text format under
    /// Triton's.
    pub fn encode(&self) -> String {
        use prometheus_client::encoding::{prometheus_text, text};
        let mut out = String::new();
        match self.names {
            MetricsNames::Skiff => {
                text::encode_registry(&mut out, &self.counts).expect("writing to a String");
                text::encode_registry(&mut out, &self.timings).expect("writing to a String");
                text::encode_eof(&mut out).expect("writing to a String");
            }
            MetricsNames::Triton => {
                self.encode_triton(&mut out);
                prometheus_text::encode(&mut out, &self.timings).expect("writing to a String");
            }
        }
        out
    }

    /// Triton's counters, named as Triton names them. prometheus-client writes every counter
    /// with a `_total` suffix, which Triton's names do not have, so these few lines are
    /// written here.
    fn encode_triton(&self, out: &mut String) {
        type Field = fn(&TritonCounts) -> u64;
        const COUNTERS: [(&str, &str, Field); 7] = [
            (
                "nv_inference_request_success",
                "Number of successful inference requests, all batch sizes",
                |c| c.success,
            ),
            (
                "nv_inference_request_failure",
                "Number of failed inference requests, all batch sizes",
                |c| c.failure,
            ),
            (
                "nv_inference_count",
                "Number of inferences performed (does not include cached requests)",
                |c| c.inferences,
            ),
            (
                "nv_inference_exec_count",
                "Number of model executions performed (does not include cached requests)",
                |c| c.executions,
            ),
            (
                "nv_inference_request_duration_us",
                "Cumulative inference request duration in microseconds (includes cached requests)",
                |c| c.request_us,
            ),
            (
                "nv_inference_queue_duration_us",
                "Cumulative inference queuing duration in microseconds (includes cached requests)",
                |c| c.queue_us,
            ),
            (
                "nv_inference_compute_infer_duration_us",
                "Cumulative compute inference duration in microseconds (does not include cached requests)",
                |c| c.compute_us,
            ),
        ];
        let counts = self.triton.lock().unwrap_or_else(|e| e.into_inner());
        for (name, help, field) in COUNTERS {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for (key, c) in counts.iter() {
                let _ = writeln!(
                    out,
                    "{name}{{model=\"{}\",version=\"{}\"}} {}",
                    escape(&key.model),
                    escape(&key.version),
                    field(c)
                );
            }
        }
    }
}

/// The metrics of one model version, for the code that runs it.
#[derive(Debug, Clone)]
pub(crate) struct Meter {
    pub(crate) metrics: std::sync::Arc<Metrics>,
    pub(crate) model: String,
    pub(crate) version: String,
}

impl Meter {
    /// Records that a request waited from `since` until now for its run.
    pub(crate) fn queued(&self, since: Instant) {
        self.metrics
            .record_queue(&self.model, &self.version, since.elapsed());
    }

    /// Runs `model` on `inputs` for `requests` requests, recording the run when it succeeds.
    pub(crate) fn run(
        &self,
        model: &Model,
        inputs: Vec<Tensor>,
        requests: usize,
    ) -> skiff_runtime::Result<Vec<Tensor>> {
        let rows = rows(model, &inputs);
        let started = Instant::now();
        let outputs = model.run(inputs)?;
        self.metrics.record_execution(
            &self.model,
            &self.version,
            rows,
            requests,
            started.elapsed(),
        );
        Ok(outputs)
    }
}

/// The rows of a request: the first axis when the model's first input has a variable one,
/// else 1 (one inference, as Triton counts a model without batching).
fn rows(model: &Model, inputs: &[Tensor]) -> usize {
    let batched = model
        .inputs()
        .first()
        .is_some_and(|i| i.shape.first() == Some(&-1));
    match inputs.first().and_then(|t| t.shape.first()) {
        Some(&n) if batched => n,
        _ => 1,
    }
}

/// A label value as the text format quotes it.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Decrements the in-flight gauge when dropped, whatever path the request took.
pub struct InFlight<'a>(&'a Gauge);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn triton_names_are_counters_without_a_suffix() {
        let metrics = Metrics::new(&Repository::default(), MetricsNames::Triton);
        metrics.record_queue("m\"x", "1", Duration::from_micros(7));
        metrics.record_execution("m\"x", "1", 3, 2, Duration::from_micros(10));
        metrics.record_request("m\"x", "1", 200, Duration::from_micros(30));
        metrics.record_request("m\"x", "1", 400, Duration::from_micros(30));
        let text = metrics.encode();
        for line in [
            "# TYPE nv_inference_request_success counter",
            "nv_inference_request_success{model=\"m\\\"x\",version=\"1\"} 1",
            "nv_inference_request_failure{model=\"m\\\"x\",version=\"1\"} 1",
            "nv_inference_count{model=\"m\\\"x\",version=\"1\"} 3",
            "nv_inference_exec_count{model=\"m\\\"x\",version=\"1\"} 1",
            "nv_inference_request_duration_us{model=\"m\\\"x\",version=\"1\"} 30",
            "nv_inference_queue_duration_us{model=\"m\\\"x\",version=\"1\"} 7",
            "nv_inference_compute_infer_duration_us{model=\"m\\\"x\",version=\"1\"} 20",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
        }
        assert!(!text.contains("# EOF"), "{text}");
        assert!(!text.contains("skiff_inference_requests_total"), "{text}");
    }
}
