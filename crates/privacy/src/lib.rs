//! Differential privacy for skiff: private summaries of a table built from OpenDP's
//! transformations and measurements ([`describe`]), and a privacy budget kept in a file
//! across fits and releases ([`Ledger`]).
//!
//! What is guaranteed, and what is not:
//! - Epsilons are OpenDP's own privacy maps, for one row added or removed. OpenDP marks the
//!   constructors used here `contrib`: proven on paper, not yet vetted by its committee.
//! - OpenDP adds float noise on a discrete grid and accounts for the rounding of float sums,
//!   which naive float Laplace noise does not (Mironov's attack). Its random bits come from
//!   the operating system through `rand`'s thread generator, not a vetted cryptographic
//!   source (OpenDP's OpenSSL feature, left off so skiff stays pure Rust).
//! - Bounds and categories must be known without looking at the data: skiff refuses to read
//!   them from it.

pub mod describe;
pub mod ledger;

pub use describe::{Release, Report, Request, Statistic, describe};
pub use ledger::{Held, Ledger, Spend};

/// Errors of private releases and budgets.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The request cannot be released as asked (no bounds, an unknown statistic, ...).
    #[error("{0}")]
    Request(String),
    /// The table could not be read.
    #[error(transparent)]
    Data(#[from] skiff_data::Error),
    /// OpenDP refused a step.
    #[error("OpenDP: {0}")]
    OpenDp(String),
    /// The ledger holds less budget than asked for.
    #[error("{0}")]
    OverBudget(String),
    /// The ledger file could not be read or written.
    #[error("{0}")]
    Ledger(String),
}

impl From<opendp::error::Error> for Error {
    fn from(e: opendp::error::Error) -> Error {
        Error::OpenDp(e.variant.to_string() + ": " + e.message.as_deref().unwrap_or(""))
    }
}

/// Results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
