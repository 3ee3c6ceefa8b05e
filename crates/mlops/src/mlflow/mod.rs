//! MLflow: runs and registered models on a tracking server, over its REST API ([`Client`]),
//! and MLflow's model format for ONNX models ([`model`]).
//!
//! MLflow 3.13 and later refuse the old `mlruns/` file store, so skiff speaks only to a
//! tracking server (`mlflow server`), as MLflow's own client does with an `http(s)://` URI.

mod client;
mod fetch;
mod log;
pub mod model;

pub use client::Client;
pub use fetch::{Fetched, ModelUri, VersionRef, fetch};
pub use log::{Outcome, Target, log_run};
