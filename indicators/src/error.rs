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
    /// An input of the spec (a layer, zone layer or raster, named by its
    /// role: `zones `grid``) cannot be used as the spec says.
    #[error("{input}: {message}")]
    Input {
        /// The input's role in the spec.
        input: String,
        /// What is wrong.
        message: String,
    },
    /// An option of a run or of a command is out of its range.
    #[error("option `{option}`: {message}")]
    Option {
        /// The option.
        option: String,
        /// What is wrong.
        message: String,
    },
    /// An output could not be serialised.
    #[error("writing {what}: {source}")]
    Serialize {
        /// The output (`catalog.json`).
        what: String,
        /// The serialiser's error.
        #[source]
        source: serde_json::Error,
    },
    /// A table of partial aggregates (a distributed run) is malformed.
    #[error("partials: {message}")]
    Partials {
        /// What is wrong, with the row.
        message: String,
    },
    /// What was asked for is not in a run's outputs (`terrastat explain`).
    #[error("{what}")]
    NotFound {
        /// What is missing.
        what: String,
    },
}

/// What kind of failure an [`Error`] is: a closed set, for callers that
/// map errors to their own (the Python exceptions, exit codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The spec is wrong (file, line and key in the message).
    Spec,
    /// A CRS is missing, unknown, or differs from the working CRS.
    Crs,
    /// A file could not be read or written, by the operating system's reason.
    Io(std::io::ErrorKind),
    /// An input cannot be used: bad format, wrong column, empty layer…
    Input,
    /// An option is out of range.
    Option,
    /// Something asked for does not exist in a run's outputs.
    NotFound,
    /// The run was cancelled.
    Cancelled,
    /// A bug of terrastat (an internal invariant broken).
    Internal,
}

impl Error {
    /// What kind of failure this is.
    ///
    /// ```
    /// use terrastat_indicators::{Error, ErrorKind};
    /// let e = Error::Internal { what: "x".into() };
    /// assert_eq!(e.kind(), ErrorKind::Internal);
    /// ```
    pub fn kind(&self) -> ErrorKind {
        use terrastat_core::Error as Core;
        match self {
            Error::Io { source, .. } => ErrorKind::Io(source.kind()),
            Error::SpecSyntax { .. } | Error::Spec { .. } | Error::Expr { .. } => ErrorKind::Spec,
            Error::Core(c) => match c {
                Core::Io { source, .. } => ErrorKind::Io(source.kind()),
                Core::MissingCrs { .. } | Core::CrsMismatch { .. } | Core::Crs(_) => ErrorKind::Crs,
                Core::Cancelled => ErrorKind::Cancelled,
                _ => ErrorKind::Input,
            },
            Error::Arrow(_) | Error::Input { .. } => ErrorKind::Input,
            Error::Option { .. } => ErrorKind::Option,
            Error::Serialize { .. } | Error::Internal { .. } => ErrorKind::Internal,
            Error::Partials { .. } => ErrorKind::Input,
            Error::NotFound { .. } => ErrorKind::NotFound,
        }
    }
}

/// The result type of `terrastat-indicators`.
pub type Result<T, E = Error> = std::result::Result<T, E>;
