//! Dynamic batching, as Triton does it: concurrent requests to one model are stacked into one
//! run, up to a preferred number of rows or a maximum queue delay, then split back.

use super::metrics::Meter;
use skiff_runtime::{Model, Tensor};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// When to close a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Batching {
    /// Run as soon as this many rows are waiting.
    pub max_rows: usize,
    /// Run at the latest this long after the first request of a batch arrived.
    pub max_delay: Duration,
}

type Reply = oneshot::Sender<skiff_runtime::Result<Vec<Tensor>>>;

struct Job {
    inputs: Vec<Tensor>,
    reply: Reply,
    /// When the request was ready to run.
    queued: Instant,
}

impl Job {
    fn rows(&self) -> usize {
        self.inputs
            .first()
            .map_or(0, |t| t.shape.first().copied().unwrap_or(0))
    }
}

/// A queue in front of one model; dropping it ends its task.
#[derive(Debug, Clone)]
pub(crate) struct Batcher {
    jobs: mpsc::UnboundedSender<Job>,
}

impl Batcher {
    /// Whether `model` can be batched: every input and output has a variable first axis.
    pub(crate) fn eligible(model: &Model) -> bool {
        model
            .inputs()
            .iter()
            .chain(model.outputs())
            .all(|io| io.shape.first() == Some(&-1))
    }

    /// Starts the batching task of `model` (on the current tokio runtime).
    pub(crate) fn spawn(model: Arc<Model>, batching: Batching, meter: Meter) -> Batcher {
        let (jobs, queue) = mpsc::unbounded_channel();
        tokio::spawn(collect(model, batching, meter, queue));
        Batcher { jobs }
    }

    /// Runs `inputs` as part of a batch.
    pub(crate) async fn run(&self, inputs: Vec<Tensor>) -> skiff_runtime::Result<Vec<Tensor>> {
        let (reply, answer) = oneshot::channel();
        let gone = || skiff_runtime::Error::Run("the batching queue stopped".into());
        let job = Job {
            inputs,
            reply,
            queued: Instant::now(),
        };
        self.jobs.send(job).map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }
}

async fn collect(
    model: Arc<Model>,
    batching: Batching,
    meter: Meter,
    mut queue: mpsc::UnboundedReceiver<Job>,
) {
    while let Some(first) = queue.recv().await {
        let deadline = tokio::time::Instant::now() + batching.max_delay;
        let mut rows = first.rows();
        let mut jobs = vec![first];
        while rows < batching.max_rows {
            match tokio::time::timeout_at(deadline, queue.recv()).await {
                Ok(Some(job)) => {
                    rows += job.rows();
                    jobs.push(job);
                }
                Ok(None) | Err(_) => break,
            }
        }
        tracing::debug!(requests = jobs.len(), rows, "running a batch");
        let model = model.clone();
        let meter = meter.clone();
        // Not awaited: the next batch gathers while this one runs.
        tokio::task::spawn_blocking(move || run_batch(&model, &meter, jobs));
    }
}

fn run_batch(model: &Model, meter: &Meter, jobs: Vec<Job>) {
    for job in &jobs {
        meter.queued(job.queued);
    }
    if jobs.len() == 1 {
        let job = jobs.into_iter().next().expect("one job");
        let _ = job.reply.send(meter.run(model, job.inputs, 1));
        return;
    }
    let rows: Vec<usize> = jobs.iter().map(Job::rows).collect();
    let n_inputs = model.inputs().len();
    let mut columns: Vec<Vec<Tensor>> = (0..n_inputs)
        .map(|_| Vec::with_capacity(jobs.len()))
        .collect();
    let mut replies = Vec::with_capacity(jobs.len());
    let mut originals = Vec::with_capacity(jobs.len());
    for job in jobs {
        for (column, tensor) in columns.iter_mut().zip(&job.inputs) {
            column.push(tensor.clone());
        }
        originals.push(job.inputs);
        replies.push(job.reply);
    }
    let stacked: Option<Vec<Tensor>> = columns.into_iter().map(Tensor::concat_rows).collect();
    let batched = stacked.map(|inputs| meter.run(model, inputs, replies.len()));
    match batched {
        Some(Ok(outputs))
            if outputs
                .iter()
                .all(|o| o.shape.first() == Some(&rows.iter().sum())) =>
        {
            let mut per_job: Vec<Vec<Tensor>> = (0..replies.len()).map(|_| Vec::new()).collect();
            for output in outputs {
                for (job, part) in per_job.iter_mut().zip(output.split_rows(&rows)) {
                    job.push(part);
                }
            }
            for (reply, outputs) in replies.into_iter().zip(per_job) {
                let _ = reply.send(Ok(outputs));
            }
        }
        // Row shapes that do not stack, or a failed batch: each request on its own, so each
        // gets its own answer or error.
        _ => {
            for (reply, inputs) in replies.into_iter().zip(originals) {
                let _ = reply.send(meter.run(model, inputs, 1));
            }
        }
    }
}
