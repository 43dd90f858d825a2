//! The machine's FP32 multiply-add peak, measured: every thread runs a loop of independent
//! fused multiply-adds in the widest vectors the processor has, and the FLOPs done by all of
//! them together, divided by the wall time, is the figure a training step is compared with.
//!
//! A loop of one chain of FMAs would measure their latency (4 cycles), not their throughput:
//! each thread keeps [`CHAINS`] independent accumulators, more than pipes x latency on any
//! current x86 core (2 x 4), so every pipe starts an FMA each cycle. Whatever clock the cores
//! hold under wide-vector load is in the figure, as it is in a training step's.

use std::time::{Duration, Instant};

/// Independent accumulators per thread.
const CHAINS: usize = 12;

/// FMAs per accumulator per call of a kernel: long enough that the call and the clock reads
/// around it are noise, short enough to stop within a millisecond of the budget.
const ROUNDS: usize = 100_000;

/// The vector width the loop ran at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Width {
    /// 16 lanes (AVX-512F).
    Avx512,
    /// 8 lanes (AVX2 + FMA).
    Avx2,
    /// Whatever the compiler makes of scalar `mul_add` on this processor.
    Portable,
}

impl Width {
    fn lanes(self) -> usize {
        match self {
            Width::Avx512 => 16,
            Width::Avx2 => 8,
            Width::Portable => 1,
        }
    }

    /// The widest this processor runs.
    pub fn detect() -> Width {
        #[cfg(target_arch = "x86_64")]
        {
            if std::is_x86_feature_detected!("avx512f") {
                return Width::Avx512;
            }
            if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                return Width::Avx2;
            }
        }
        Width::Portable
    }
}

/// A measured peak.
#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct Peak {
    pub gflops: f64,
    pub threads: usize,
    pub width: Width,
}

/// Runs the FMA loop on `threads` threads at once for about `seconds` and returns the FLOP
/// rate they reached together (one FMA = 2 FLOPs).
pub fn measure(threads: usize, seconds: f64) -> Peak {
    let width = Width::detect();
    let threads = threads.max(1);
    let budget = Duration::from_secs_f64(seconds);
    let start = Instant::now();
    let calls: usize = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                scope.spawn(move || {
                    let mut calls = 0usize;
                    let mut sink = 0.0f32;
                    while calls == 0 || start.elapsed() < budget {
                        sink += run_kernel(width, t as f32);
                        calls += 1;
                    }
                    // The sum keeps the loop's results alive; it is never large or NaN.
                    std::hint::black_box(sink);
                    calls
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("the FMA loop does not panic"))
            .sum()
    });
    let elapsed = start.elapsed().as_secs_f64();
    let flops = calls as f64 * (ROUNDS * CHAINS * width.lanes() * 2) as f64;
    Peak {
        gflops: flops / elapsed / 1e9,
        threads,
        width,
    }
}

/// One call of the loop at `width`; `seed` varies the start so no two threads' work is the
/// same constant the compiler could fold.
fn run_kernel(width: Width, seed: f32) -> f32 {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: `width` came from `Width::detect`, which checked the features each needs.
        match width {
            Width::Avx512 => return unsafe { x86::avx512(seed) },
            Width::Avx2 => return unsafe { x86::avx2(seed) },
            Width::Portable => {}
        }
    }
    portable(seed)
}

/// `acc = acc · m + c` with `m` just below 1 and `c` small: every value stays near `c / (1 -
/// m)`, finite and normal, however long the loop runs.
const M: f32 = 0.999_999;
const C: f32 = 1e-6;

fn portable(seed: f32) -> f32 {
    let mut acc = [seed; CHAINS];
    for _ in 0..ROUNDS {
        for a in &mut acc {
            *a = a.mul_add(std::hint::black_box(M), C);
        }
    }
    acc.iter().sum()
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::{C, CHAINS, M, ROUNDS};

    #[target_feature(enable = "avx512f")]
    pub(super) fn avx512(seed: f32) -> f32 {
        let (m, c) = (_mm512_set1_ps(M), _mm512_set1_ps(C));
        let mut acc = [_mm512_set1_ps(seed); CHAINS];
        for _ in 0..ROUNDS {
            for a in &mut acc {
                *a = _mm512_fmadd_ps(*a, m, c);
            }
        }
        acc.iter().map(|&a| _mm512_reduce_add_ps(a)).sum()
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) fn avx2(seed: f32) -> f32 {
        let (m, c) = (_mm256_set1_ps(M), _mm256_set1_ps(C));
        let mut acc = [_mm256_set1_ps(seed); CHAINS];
        for _ in 0..ROUNDS {
            for a in &mut acc {
                *a = _mm256_fmadd_ps(*a, m, c);
            }
        }
        let mut lanes = [0.0f32; 8];
        acc.iter()
            .map(|&a| {
                // SAFETY: `lanes` holds 8 floats, what an unaligned 256-bit store writes.
                unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), a) };
                lanes.iter().sum::<f32>()
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_width_this_processor_has_computes_the_same_recurrence() {
        // Each lane follows acc = acc·M + C from the seed: the closed form after n steps is
        // M^n (seed - L) + L with L = C / (1 - M); every width must land on it.
        let n = ROUNDS as f64;
        let (m, c) = (M as f64, C as f64);
        let limit = c / (1.0 - m);
        let expected_lane = m.powf(n) * (2.0 - limit) + limit;
        let width = Width::detect();
        let got = run_kernel(width, 2.0) as f64 / (CHAINS * width.lanes()) as f64;
        assert!(
            (got - expected_lane).abs() < 1e-3 * expected_lane,
            "{width:?}: {got} vs {expected_lane}"
        );
        let scalar = portable(2.0) as f64 / CHAINS as f64;
        assert!(
            (scalar - expected_lane).abs() < 1e-3 * expected_lane,
            "portable: {scalar}"
        );
    }

    #[test]
    fn the_peak_counts_every_thread() {
        let one = measure(1, 0.05);
        assert!(one.gflops > 0.1, "{one:?}");
        assert_eq!(one.width, Width::detect());
        let two = measure(2, 0.05);
        assert_eq!(two.threads, 2);
        assert!(two.gflops.is_finite() && two.gflops > 0.0);
    }
}
