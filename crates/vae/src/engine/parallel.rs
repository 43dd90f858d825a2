//! How many threads the engine uses, and the row-chunked parallel loops built on it.
//!
//! Work is split by rows, in chunks whose boundaries depend only on the matrix size, and every
//! reduction adds the chunks' partial results in order, so results are bit-identical whatever
//! the thread count.

use std::sync::atomic::{AtomicUsize, Ordering};

static THREADS: AtomicUsize = AtomicUsize::new(0);

/// Rows per parallel chunk: large enough that a chunk outweighs rayon's scheduling cost.
pub const ROWS_PER_CHUNK: usize = 16;

/// The most threads the engine starts: more than any machine this tool targets has cores,
/// few enough that a typo (`--threads 100000`) cannot exhaust the process's threads.
pub const MAX_THREADS: usize = 256;

/// Sets the number of threads for matrix products and element-wise work. The first call also
/// sizes rayon's global pool; later calls can only lower the number used.
pub fn set_threads(n: usize) {
    let n = n.clamp(1, MAX_THREADS);
    // An error only means the global pool already exists, which is fine: we then use at most
    // as many threads as it has.
    let _ = rayon::ThreadPoolBuilder::new().num_threads(n).build_global();
    THREADS.store(n.min(rayon::current_num_threads()), Ordering::Relaxed);
}

/// The number of threads the engine uses (all of rayon's pool unless [`set_threads`] said less).
pub fn threads() -> usize {
    match THREADS.load(Ordering::Relaxed) {
        0 => rayon::current_num_threads(),
        n => n,
    }
}

/// `gemm`'s parallelism setting for the current thread count.
pub(crate) fn gemm_parallelism() -> gemm::Parallelism {
    match threads() {
        1 => gemm::Parallelism::None,
        n => gemm::Parallelism::Rayon(n),
    }
}
