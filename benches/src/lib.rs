//! Benchmarks of terrastat (criterion kernels and peer comparisons).
