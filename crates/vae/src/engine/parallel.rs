//! How many threads the engine uses, and the row-chunked parallel loops built on it.
//!
//! Work is split by rows, in chunks whose boundaries depend only on the matrix size, and every
//! reduction adds the chunks' partial results in order, so results are bit-identical whatever
//! the thread count.

use std::sync::atomic::{AtomicUsize, Ordering};

static THREADS: AtomicUsize = AtomicUsize::new(0);

/// Rows per parallel chunk: large enough that a chunk outweighs rayon's scheduling cost.
pub const ROWS_PER_CHUNK: usize = 16;

/// Values per parallel task of element-wise passes: a pass over a few thousand values costs
/// less than handing it to another thread, so small layers run on the calling thread alone.
pub const VALUES_PER_TASK: usize = 1 << 16;

/// The most threads the engine starts: more than any machine this tool targets has cores,
/// few enough that a typo (`--threads 100000`) cannot exhaust the process's threads.
pub const MAX_THREADS: usize = 256;

/// Stack of each pool thread: that of a program's main thread on Linux, since [`on_pool`] runs
/// whole commands on one of them (rayon's default is 2 MiB).
const POOL_STACK_BYTES: usize = 8 << 20;

/// Sets the number of threads for matrix products and element-wise work. The first call also
/// sizes rayon's global pool; later calls can only lower the number used.
pub fn set_threads(n: usize) {
    let n = n.clamp(1, MAX_THREADS);
    // An error only means the global pool already exists, which is fine: we then use at most
    // as many threads as it has.
    let _ = rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .stack_size(POOL_STACK_BYTES)
        .build_global();
    THREADS.store(n.min(rayon::current_num_threads()), Ordering::Relaxed);
}

/// The number of threads the engine uses (all of rayon's pool unless [`set_threads`] said less).
pub fn threads() -> usize {
    match THREADS.load(Ordering::Relaxed) {
        0 => rayon::current_num_threads(),
        n => n,
    }
}

/// Runs `work` on one of the global pool's threads (building the pool first if nothing has),
/// the calling thread waiting asleep until it is done.
///
/// Work started from a thread outside the pool makes one thread more than the pool has: while
/// it runs its serial parts (the steps between two parallel loops), the pool's threads spin
/// looking for work, and on a machine with as many cores as pool threads one of them takes
/// the core it needs. Run on a pool thread, the serial parts and the spinning never share a
/// core, and the thread that starts a parallel loop works in it instead of waiting.
pub fn on_pool<R: Send>(work: impl FnOnce() -> R + Send) -> R {
    if rayon::current_thread_index().is_some() {
        return work();
    }
    rayon::scope(|_| work())
}

/// `gemm`'s parallelism setting for the current thread count.
pub(crate) fn gemm_parallelism() -> gemm::Parallelism {
    match threads() {
        1 => gemm::Parallelism::None,
        n => gemm::Parallelism::Rayon(n),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn work_handed_to_the_pool_runs_on_a_pool_thread_and_nested_work_stays_where_it_is() {
        assert_eq!(
            rayon::current_thread_index(),
            None,
            "the test harness's thread is outside the pool"
        );
        let (outer, inner) = on_pool(|| (rayon::current_thread_index(), on_pool(rayon::current_thread_index)));
        assert!(outer.is_some());
        assert_eq!(inner, outer);
        // What the work returns comes back.
        assert_eq!(on_pool(|| (1..=10).sum::<i32>()), 55);
    }
}
