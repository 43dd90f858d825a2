//! `set_threads`: the engine's thread count follows the setting, within the pool the first
//! call builds, and out-of-range requests are clamped. Alone in its own test binary, since the
//! setting and rayon's global pool are process-wide.

use vae::engine::{set_threads, threads};

#[test]
fn the_thread_count_follows_the_setting_within_the_first_pool() {
    // The first call sizes the global pool: three threads, whatever the machine has.
    set_threads(3);
    assert_eq!(threads(), 3);
    set_threads(1);
    assert_eq!(threads(), 1);
    // More than the pool holds: the pool's size.
    set_threads(8);
    assert_eq!(threads(), 3);
    // Zero means one; a typo's hundred thousand is clamped, then held to the pool.
    set_threads(0);
    assert_eq!(threads(), 1);
    set_threads(100_000);
    assert_eq!(threads(), 3);
}
