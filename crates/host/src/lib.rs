//! The Open Inference Protocol (KServe v2 REST) server.
//!
//! [`router`] answers the protocol's endpoints for the models of a [`Repository`], JSON and
//! Triton's binary tensor extension alike; `skiff serve` and the static server inside images
//! both run it through [`serve`], which also answers the protocol's gRPC form when
//! [`Listeners`] has a gRPC listener.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let model = skiff_runtime::Model::from_path("iris.onnx".as_ref())?;
//! let repo = skiff_host::Repository::single("iris", model);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! skiff_host::serve(listener, repo, skiff_host::Options::default(), std::future::pending()).await?;
//! # Ok(())
//! # }
//! ```
//!
//! Without its default feature `server` (axum, tokio), the crate is the protocol alone:
//! [`protocol`]'s bodies and errors, and [`answer`], which answers one request at a time on the
//! calling thread. That is what a model component serves under `wasi:http`.

#![deny(missing_docs)]

#[cfg(feature = "cli")]
pub mod cli;
mod direct;
mod error;
pub mod invocations;
pub mod openapi;
pub mod protocol;
mod repository;
#[cfg(feature = "server")]
mod server;
mod sources;

pub use direct::{Reply, Request, answer};
pub use error::{Error, LoadError, Result};
pub use protocol::{ApiError, EXTENSIONS};
pub use repository::{MODEL_FILE, Repository};
#[cfg(feature = "server")]
pub use server::*;
pub use sources::{LoadModel, Source, Sources};
