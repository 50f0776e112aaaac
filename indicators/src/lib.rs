//! # terrastat-indicators
//!
//! Indicator definitions, the declarative [`spec`], [`eval`]uation over the
//! overlay engine of `terrastat-core`, the [`catalog`], the synthetic data
//! [`generate`]or, and the `terrastat` CLI (in `src/bin`).
//!
//! ```
//! use terrastat_indicators::{spec::Spec, run::{run, RunOptions}};
//! let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/samples/idf92/indicators.toml");
//! let spec = Spec::load(&path)?;
//! let out = tempfile::tempdir().unwrap();
//! let result = run(&spec, out.path(), &RunOptions::default(), &terrastat_core::NoProgress)?;
//! let communes = &result.tables[0];
//! assert_eq!(communes.batch.num_rows(), 36);
//! assert!(out.path().join("catalog.json").exists());
//! # Ok::<(), terrastat_indicators::Error>(())
//! ```

pub mod catalog;
pub mod distributed;
pub mod docs;
pub mod error;
pub mod eval;
pub mod explain;
pub mod expr;
pub mod generate;
pub mod incremental;
mod kinds;
pub mod quality;
pub mod run;
pub mod spec;
pub mod stream;
pub mod tables;
pub mod templates;
pub mod units;
pub mod zonal;

pub use crate::error::{Error, ErrorKind, Result};
