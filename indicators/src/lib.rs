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

pub mod builder;
pub mod catalog;
pub mod distributed;
pub mod docs;
pub mod error;
pub mod eval;
pub mod explain;
pub mod expr;
pub mod generate;
pub mod incremental;
pub mod inputs;
mod kinds;
pub mod lineage;
pub mod plan;
pub mod quality;
pub mod rasters;
pub mod run;
pub mod spec;
pub mod stream;
pub mod tables;
pub mod templates;
pub mod units;
pub mod zonal;

pub use crate::builder::{Indicator, SpecBuilder};
pub use crate::error::{Error, ErrorKind, Result};
pub use crate::eval::ZoneTable;
pub use crate::plan::Plan;
pub use crate::spec::Spec;

/// Load the inputs of `spec` and compute every indicator: one Arrow table
/// per zone layer (no file written; see [`run::run`] for a run with its
/// outputs, catalog and lineage).
pub fn compute(spec: &Spec) -> Result<Vec<ZoneTable>> {
    Ok(eval::evaluate_quiet(spec)?.1)
}
