//! Packs skiff models into OCI images and moves them between layouts and registries.
//!
//! ```no_run
//! use std::collections::BTreeMap;
//! use std::path::Path;
//! use skiff_pack::image::{ServerBinary, ServerImage};
//! use skiff_pack::oci::Platform;
//!
//! # fn main() -> skiff_pack::Result<()> {
//! let model = std::fs::read("iris.onnx").unwrap();
//! let image = ServerImage {
//!     servers: vec![ServerBinary {
//!         platform: Platform::parse("linux/amd64")?,
//!         path: Path::new("target/x86_64-unknown-linux-musl/server/skiff-server"),
//!     }],
//!     model: &model,
//!     model_name: "iris",
//!     version: env!("CARGO_PKG_VERSION"),
//!     labels: BTreeMap::from([("dev.skiff.model.task".into(), "classification".into())]),
//! };
//! let manifest = skiff_pack::image::write_server_image(Path::new("out"), "v1", &image)?;
//! println!("oci:out:v1 is {}", manifest.digest);
//! assert_eq!(skiff_pack::image::read_model(Path::new("out"), "v1")?, model);
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]

pub mod archive;
pub mod auth;
pub mod base;
pub mod component;
mod entries;
pub mod error;
pub mod image;
pub mod inspect;
pub mod k8s;
pub mod layout;
pub mod media;
pub mod modelpack;
pub mod oci;
pub mod provenance;
pub mod reference;
pub mod referrers;
pub mod registry;
pub mod sbom;
pub mod sign;
pub mod signatures;
mod transport;

pub use error::{Error, Result};
pub use layout::Layout;
pub use oci::Descriptor;
pub use reference::Reference;
