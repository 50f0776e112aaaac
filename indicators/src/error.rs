//! The error type of `terrastat-indicators`.

use std::path::PathBuf;

/// Errors of specs, expressions and evaluation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The spec file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The spec file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The spec is not valid TOML or has an unknown or ill-typed key.
    #[error("{path}: {message}")]
    SpecSyntax {
        /// The spec file.
        path: PathBuf,
        /// The TOML parser's message (with line and column).
        message: String,
    },
    /// The spec is valid TOML but says something wrong.
    #[error("{path}:{line}: {what}: {message}")]
    Spec {
        /// The spec file.
        path: PathBuf,
        /// 1-based line of the offending table.
        line: usize,
        /// What is wrong: `indicator `n_buildings`, key `column``.
        what: String,
        /// The message.
        message: String,
    },
    /// An expression (`filter`, `expr`) could not be parsed or evaluated.
    #[error("expression `{expr}`: {message}")]
    Expr {
        /// The expression.
        expr: String,
        /// What is wrong.
        message: String,
    },
    /// An error from the core (reading, CRS, geometry…).
    #[error(transparent)]
    Core(#[from] terrastat_core::Error),
    /// Arrow failed.
    #[error("arrow: {0}")]
    Arrow(#[from] arrow_schema::ArrowError),
    /// An invariant of the engine was broken: a bug, not bad input. Please
    /// report it with the spec that shows it.
    #[error("internal error (a bug of terrastat, please report it): {what}")]
    Internal {
        /// What went wrong.
        what: String,
    },
    /// Something else about one indicator.
    #[error("indicator `{indicator}`: {message}")]
    Indicator {
        /// The indicator.
        indicator: String,
        /// The message.
        message: String,
    },
}

/// The result type of `terrastat-indicators`.
pub type Result<T, E = Error> = std::result::Result<T, E>;
