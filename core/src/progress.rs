//! Progress reporting and cancellation, for a CLI progress bar or a Python callback.
//!
//! the `Progress` trait (begin/advance/end/cancelled), used by the CLI bar and,
//! later, Python callbacks.

/// Receives progress of long computations. Implementations must be cheap and
/// thread-safe: `advance` is called from worker threads.
pub trait Progress: Sync {
    /// A stage starts, with `total` units of work.
    fn begin(&self, _stage: &str, _total: u64) {}
    /// `n` more units are done.
    fn advance(&self, _n: u64) {}
    /// The current stage is over.
    fn end(&self) {}
    /// Whether the caller asked to stop; long loops check it between chunks
    /// and return [`crate::Error::Cancelled`].
    fn cancelled(&self) -> bool {
        false
    }
}

/// A [`Progress`] that ignores everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {}

/// Chunk size for parallel loops that report progress.
pub(crate) const CHUNK: usize = 4096;
