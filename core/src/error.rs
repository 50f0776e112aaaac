//! The error type of `terrastat-core`.
//!
//! `Error` (`#[non_exhaustive]`, thiserror): every variant names the file,
//! layer, feature or column.

use std::path::PathBuf;

/// Errors raised while reading, checking, indexing or writing geodata.
///
/// Every variant names the thing that failed (file, layer, feature, column),
/// so a message can be shown to a user as it is.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file could not be opened, read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file's extension or content is not a format terrastat reads.
    #[error("{path}: unsupported format ({reason})")]
    UnsupportedFormat {
        /// The file.
        path: PathBuf,
        /// Why it is not supported.
        reason: String,
    },
    /// A file could be opened but its content is malformed.
    #[error("{path}: {message}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// One feature could not be decoded and the layer was read in strict mode.
    #[error("{path}: feature {feature}: {message}")]
    Feature {
        /// The file.
        path: PathBuf,
        /// Row index of the feature in the file (0-based).
        feature: usize,
        /// What is wrong with it.
        message: String,
    },
    /// A layer has no CRS, and none was given in the spec.
    #[error("{path}: the layer has no CRS; set `crs = \"EPSG:XXXX\"` on the layer in the spec")]
    MissingCrs {
        /// The file.
        path: PathBuf,
    },
    /// A layer's CRS is not the working CRS and PROJ is not available to reproject it.
    #[error("{path}: layer CRS {layer_crs} differs from the working CRS {working_crs}; reproject the file, or build terrastat with the `proj` feature")]
    CrsMismatch {
        /// The file.
        path: PathBuf,
        /// The layer's CRS.
        layer_crs: String,
        /// The working CRS of the run.
        working_crs: String,
    },
    /// A CRS string could not be understood, or PROJ failed.
    #[error("CRS error: {0}")]
    Crs(String),
    /// A column is missing from a layer.
    #[error("{layer}: no column `{column}` (available: {available})")]
    MissingColumn {
        /// The layer (name or file).
        layer: String,
        /// The column that was asked for.
        column: String,
        /// The columns the layer has, comma-separated.
        available: String,
    },
    /// A column exists but its type does not fit the use.
    #[error("{layer}: column `{column}` has type {found}, expected {expected}")]
    ColumnType {
        /// The layer (name or file).
        layer: String,
        /// The column.
        column: String,
        /// Its Arrow type.
        found: String,
        /// What was expected.
        expected: String,
    },
    /// A layer has no usable feature.
    #[error("{path}: the layer is empty{detail}")]
    EmptyLayer {
        /// The file.
        path: PathBuf,
        /// Extra detail (e.g. how many features were skipped).
        detail: String,
    },
    /// A geometry of the wrong kind for the use (e.g. lines as zones).
    #[error("{layer}: {message}")]
    GeometryType {
        /// The layer (name or file).
        layer: String,
        /// What is wrong.
        message: String,
    },
    /// Invalid arguments to a function.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// Arrow failed.
    #[error("arrow: {0}")]
    Arrow(#[from] arrow_schema::ArrowError),
    /// Parquet failed.
    #[error("{path}: parquet: {source}")]
    Parquet {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: parquet::errors::ParquetError,
    },
    /// A raster cannot be used as asked (missing band, rotated grid, grids
    /// that do not match…).
    #[error("{path}: {message}")]
    Raster {
        /// The raster file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The computation was cancelled by the caller.
    #[error("cancelled")]
    Cancelled,
}

/// The result type of `terrastat-core`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
    /// A [`Error::Format`] error: `path` holds something it should not.
    pub fn format(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Error::Format {
            path: path.into(),
            message: message.into(),
        }
    }
    pub(crate) fn raster(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Error::Raster {
            path: path.into(),
            message: message.into(),
        }
    }
    pub(crate) fn parquet(path: impl Into<PathBuf>, source: parquet::errors::ParquetError) -> Self {
        Error::Parquet {
            path: path.into(),
            source,
        }
    }
}
