//! Hashes of what a run reads, for its lineage and for incremental runs:
//! the SHA-256 of a file, and of a directory layer through its partitions.

use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// A file read for a run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct InputFile {
    /// `layers.<name>` or `zones.<name>`.
    pub role: String,
    /// The path as resolved.
    pub path: PathBuf,
    /// SHA-256 of the file's bytes, hex.
    pub sha256: String,
    /// The layer's CRS as read (before any reprojection).
    pub crs: String,
    /// What was read, skipped, repaired.
    pub report: terrastat_core::ReadReport,
}

/// A partition of the streamed layer, as recorded in a manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Partition {
    /// Path relative to the layer's directory.
    pub path: String,
    /// SHA-256 of the file.
    pub sha256: String,
    /// The bbox its GeoParquet metadata declares (`None`: not declared).
    pub bbox: Option<[f64; 4]>,
    /// Rows in the file (from its footer; 0 in manifests older than this key).
    #[serde(default)]
    pub rows: usize,
}

/// SHA-256 of a file, hex. A directory (a partitioned dataset) hashes the
/// list of its `.parquet` files' relative paths and hashes, in path order
/// (the files a directory layer reads; see [`directory_hash`]).
pub fn sha256_file(path: &std::path::Path) -> Result<String> {
    use std::io::Read;
    if path.is_dir() {
        let parts = partitions(path)?;
        return Ok(directory_hash(&parts));
    }
    let mut f = std::fs::File::open(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut h = Sha256::new();
    // One buffer per thread: thousands of partitions hashed in parallel
    // would otherwise each zero a fresh megabyte.
    thread_local! {
        static BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    BUF.with_borrow_mut(|buf| {
        buf.resize(1 << 20, 0);
        loop {
            let n = f.read(buf).map_err(|source| Error::Io {
                path: path.to_path_buf(),
                source,
            })?;
            if n == 0 {
                return Ok::<(), Error>(());
            }
            h.update(&buf[..n]);
        }
    })?;
    Ok(format!("{:x}", h.finalize()))
}

/// SHA-256 of each `.parquet` file of a directory layer, in path order
/// (paths relative to `dir`), hashed in parallel, with declared bboxes.
pub fn partitions(dir: &Path) -> Result<Vec<Partition>> {
    partitions_with(dir, true)
}

/// [`partitions`], with the footers' rows and bboxes only if `footers`
/// (else 0 and none: a caller reading the footers anyway fills them).
pub(crate) fn partitions_with(dir: &Path, footers: bool) -> Result<Vec<Partition>> {
    let files = terrastat_core::io::dataset_files(dir)?;
    files
        .par_iter()
        .map(|f| {
            let (rows, bbox) = match footers {
                true => terrastat_core::io::footer_facts(f)?,
                false => (0, None),
            };
            Ok(Partition {
                path: relative(dir, f),
                sha256: sha256_file(f)?,
                bbox,
                rows,
            })
        })
        .collect()
}

/// The hash of a directory layer from its partitions' (what
/// [`sha256_file`] gives for the directory).
pub fn directory_hash(parts: &[Partition]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(format!("{} {}\n", p.path, p.sha256).as_bytes());
    }
    format!("{:x}", h.finalize())
}

/// A partition's path relative to its layer's directory, as in a manifest.
pub(crate) fn relative(dir: &Path, f: &Path) -> String {
    f.strip_prefix(dir)
        .unwrap_or(f)
        .to_string_lossy()
        .into_owned()
}
