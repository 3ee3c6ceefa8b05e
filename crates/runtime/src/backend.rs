//! Which engine runs a model, and how it is set up.
//!
//! Two engines run the same ONNX files: tract (pure Rust, everywhere, the default) and ONNX
//! Runtime, loaded at run time from a shared library when one is installed (cargo feature
//! `ort`), on its CPU or CUDA execution provider. [`BackendKind::Auto`] takes CUDA when ONNX
//! Runtime has the provider and a device answers, and tract otherwise.

use crate::{Error, Result, Tensor};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// An engine that runs one loaded model.
///
/// [`crate::Model`] checks inputs against the model's declared inputs before it calls
/// [`Backend::run`], and every backend returns the model's outputs in declaration order with
/// the same element types, so callers never see which one ran.
pub trait Backend: Send + Sync + fmt::Debug {
    /// Runs the model on checked inputs (one per model input, in order).
    fn run(&self, inputs: Vec<Tensor>) -> Result<Vec<Tensor>>;

    /// What runs the model, for logs and metadata: `tract`, `onnxruntime-cpu`,
    /// `onnxruntime-cuda:DEVICE` or `wasmtime`.
    fn describe(&self) -> String;

    /// Whether a small run may go inline on an async runtime's thread. A backend whose runs
    /// block on I/O of their own (a WebAssembly guest's WASI calls) says no, and runs on a
    /// blocking pool.
    fn inline(&self) -> bool {
        true
    }
}

/// The engine asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// CUDA through ONNX Runtime when it is installed with the CUDA provider and a GPU answers;
    /// tract otherwise.
    #[default]
    Auto,
    /// tract, in process, pure Rust.
    Tract,
    /// ONNX Runtime on its CPU provider.
    Ort,
    /// ONNX Runtime on its CUDA provider; an error when that cannot start.
    Cuda,
}

impl BackendKind {
    /// Every kind, in the order help texts list them.
    pub const ALL: [BackendKind; 4] = [
        BackendKind::Auto,
        BackendKind::Tract,
        BackendKind::Ort,
        BackendKind::Cuda,
    ];

    fn name(self) -> &'static str {
        match self {
            BackendKind::Auto => "auto",
            BackendKind::Tract => "tract",
            BackendKind::Ort => "ort",
            BackendKind::Cuda => "cuda",
        }
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for BackendKind {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        BackendKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| {
                Error::Backend(format!(
                    "unknown backend {s:?}: use one of auto, tract, ort, cuda"
                ))
            })
    }
}

/// How much ONNX Runtime rewrites a graph before it runs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GraphOptimization {
    /// No rewrites.
    Disable,
    /// Constant folding and redundant-node removal.
    Basic,
    /// Basic plus fusions.
    Extended,
    /// Everything, including layout changes (ONNX Runtime's default).
    All,
}

impl FromStr for GraphOptimization {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        serde_json::from_value(serde_json::Value::String(s.to_string())).map_err(|_| {
            Error::Backend(format!(
                "unknown graph optimisation level {s:?}: use one of disable, basic, extended, all"
            ))
        })
    }
}

/// The backend and its settings, server-wide or per model (a repository's
/// `<name>/config.json` holds the same fields).
///
/// The ONNX Runtime settings are ignored by tract.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BackendOptions {
    /// Which engine runs the model.
    pub backend: BackendKind,
    /// Threads one ONNX Runtime run may use (default 1: requests run side by side instead).
    pub intra_op_threads: Option<usize>,
    /// ONNX Runtime's graph optimisation level (default `all`).
    pub graph_optimization: Option<GraphOptimization>,
    /// The CUDA device that runs the model.
    pub cuda_device: u32,
    /// ONNX Runtime sessions that run requests side by side (default: one per CPU core on the
    /// CPU provider, one on CUDA).
    pub instances: Option<usize>,
    /// Bind inputs and outputs to ONNX Runtime's memory before a run (I/O binding), which
    /// saves copies of large batches on a GPU.
    pub io_binding: bool,
    /// Keep the ONNX file in memory so that [`crate::Model::explainer`] can explain it.
    pub explain: bool,
}

impl BackendOptions {
    /// Options for `backend` with every setting at its default.
    pub fn new(backend: BackendKind) -> BackendOptions {
        BackendOptions {
            backend,
            ..BackendOptions::default()
        }
    }

    /// These options with the fields set in `overrides` (a JSON object of the same fields)
    /// replaced: how a repository's per-model config applies over the server's options.
    pub fn with_overrides(&self, overrides: &serde_json::Value, source_name: &str) -> Result<Self> {
        let serde_json::Value::Object(fields) = overrides else {
            return Err(Error::Backend(format!(
                "{source_name} must be a JSON object of backend options, e.g. {{\"backend\": \"ort\"}}"
            )));
        };
        let mut merged = serde_json::to_value(self).expect("options serialise");
        for (key, value) in fields {
            merged[key] = value.clone();
        }
        serde_json::from_value(merged).map_err(|e| {
            Error::Backend(format!(
                "{source_name}: {e} (fields: backend, intra_op_threads, graph_optimization, cuda_device, instances, io_binding, explain)"
            ))
        })
    }
}

/// What the tract backend reports itself as.
pub(crate) const TRACT: &str = "tract";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_parse_from_their_names_and_nothing_else() {
        for kind in BackendKind::ALL {
            assert_eq!(kind.to_string().parse::<BackendKind>().unwrap(), kind);
        }
        let err = "gpu".parse::<BackendKind>().unwrap_err().to_string();
        assert!(err.contains("auto, tract, ort, cuda"), "{err}");
    }

    #[test]
    fn per_model_overrides_replace_only_their_fields() {
        let server = BackendOptions {
            backend: BackendKind::Ort,
            intra_op_threads: Some(4),
            ..BackendOptions::default()
        };
        let merged = server
            .with_overrides(&serde_json::json!({"backend": "tract"}), "m/config.json")
            .unwrap();
        assert_eq!(merged.backend, BackendKind::Tract);
        assert_eq!(merged.intra_op_threads, Some(4));
        let err = server
            .with_overrides(&serde_json::json!({"threads": 2}), "m/config.json")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("m/config.json") && err.contains("threads"),
            "{err}"
        );
        let err = server
            .with_overrides(&serde_json::json!({"backend": "gpu"}), "m/config.json")
            .unwrap_err()
            .to_string();
        assert!(err.contains("gpu"), "{err}");
    }
}
