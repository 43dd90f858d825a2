//! Branch-free `exp` and `log(1 + e)` that the compiler turns into SIMD code, for the
//! per-pixel work of the losses. The C library's scalar `expf` and `log1pf` made up a sixth of
//! a training step; these are as accurate as the losses need (relative error below 3e-7, see
//! the tests) and vectorise 8 wide.
//!
//! [`simd_kernel!`] wraps a kernel so that it runs compiled for AVX2 + FMA when the processor
//! has them (checked at run time) and portable otherwise: one binary runs everywhere.
//!
//! The polynomials use plain `a * b + c`, not `mul_add`: without hardware FMA, `mul_add` is a
//! slow library call, and with it the compiler vectorises the plain form just as well.

/// `e^x` for `x <= 0` (the losses only need `e^(-|s|)`), relative error below 3e-7.
///
/// Cephes' method: `x = n·ln 2 + r` with `|r| <= ½ ln 2`, `e^r` by a degree-6 polynomial,
/// then `2^n` by building the float's exponent bits. Below -87 the result flushes to 0.
#[inline(always)]
pub fn exp_nonpositive(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    // ln 2 split into a part exact in f32 and the remainder, so `x - n·ln 2` loses nothing.
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Adding and subtracting 1.5·2^23 rounds to the nearest integer with plain arithmetic
    // (no `floor`, which is a library call on processors without SSE4.1).
    const ROUND: f32 = 12_582_912.0;
    // Not `x.max(-87.0)`, which would turn NaN into a number: NaN must show in the loss.
    let x = if x < -87.0 { -87.0 } else { x };
    let rounded = x * LOG2E + ROUND;
    let n = rounded - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let mut p = 1.987_569_1e-4_f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    let er = p * r * r + r + 1.0;
    // n is in [-126, 0] here, so the biased exponent stays a normal float's. `rounded` lies in
    // [2^23, 2^24), where a float's step is 1, so its bits minus ROUND's are n itself: integer
    // arithmetic that vectorises, where `n as i32` (a saturating cast) is one scalar
    // conversion per lane.
    let exponent = rounded.to_bits().wrapping_sub(ROUND.to_bits()).wrapping_add(127);
    let scale = f32::from_bits(exponent << 23);
    er * scale
}

/// `log(1 + e)` for `e` in [0, 1], relative error below 3e-7 even for tiny `e`.
///
/// `log(1 + e) = 2·atanh(t)` with `t = e / (2 + e)` in [0, 1/3], and
/// `atanh(t) = t·(1 + t²/3 + t⁴/5 + …)`: eight terms reach f32 precision at `t = 1/3`.
#[inline(always)]
pub fn ln_1p_unit(e: f32) -> f32 {
    let t = e / (2.0 + e);
    let t2 = t * t;
    let mut s = 1.0f32 / 15.0;
    s = s * t2 + 1.0 / 13.0;
    s = s * t2 + 1.0 / 11.0;
    s = s * t2 + 1.0 / 9.0;
    s = s * t2 + 1.0 / 7.0;
    s = s * t2 + 1.0 / 5.0;
    s = s * t2 + 1.0 / 3.0;
    s = s * t2 + 1.0;
    2.0 * t * s
}

/// Whether this processor runs the AVX2 + FMA builds of the kernels.
#[inline]
pub fn has_avx2_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Defines `fn $name(args) = $kernel(args)`, where the call runs a copy of `$kernel` compiled
/// for AVX2 + FMA when the processor has them. `$kernel` must be `#[inline(always)]` and free of
/// closures in its hot loop (a closure is compiled apart, without the features).
macro_rules! simd_kernel {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? = $kernel:path;) => {
        $(#[$meta])*
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2,fma")]
                fn fast($($arg: $ty),*) $(-> $ret)? {
                    $kernel($($arg),*)
                }
                if $crate::engine::fastmath::has_avx2_fma() {
                    // SAFETY: the features `fast` is compiled for were just detected.
                    return unsafe { fast($($arg),*) };
                }
            }
            $kernel($($arg),*)
        }
    };
}
pub(crate) use simd_kernel;

/// `Σ_i term(a[i], b[i])` accumulated in 8 interleaved lanes, so the loop vectorises (a single
/// running sum would chain every addition), then the lanes in a fixed order: deterministic.
#[inline(always)]
pub fn sum_lanes(a: &[f32], b: &[f32], term: impl Fn(f32, f32) -> f32 + Copy) -> f32 {
    let mut acc = [0.0f32; 8];
    let (mut ac, mut bc) = (a.chunks_exact(8), b.chunks_exact(8));
    for (a8, b8) in (&mut ac).zip(&mut bc) {
        let (a8, b8): (&[f32; 8], &[f32; 8]) = (a8.try_into().unwrap(), b8.try_into().unwrap());
        for l in 0..8 {
            acc[l] += term(a8[l], b8[l]);
        }
    }
    let tail: f32 = ac
        .remainder()
        .iter()
        .zip(bc.remainder())
        .map(|(&a, &b)| term(a, b))
        .sum();
    acc.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lanes_and_tail_sum_every_term() {
        // 21 terms: two full chunks of 8 lanes and a tail of 5.
        let a: Vec<f32> = (1..=21).map(|i| i as f32).collect();
        let b: Vec<f32> = (1..=21).map(|i| 0.5 * i as f32).collect();
        let direct: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert_eq!(sum_lanes(&a, &b, |x, y| x * y), direct);
        assert_eq!(direct, 0.5 * (21 * 22 * 43 / 6) as f32);
        assert_eq!(sum_lanes(&a[..3], &b[..3], |x, _| x), 6.0);
    }

    #[test]
    fn exp_matches_the_library_to_f32_precision() {
        let mut worst = 0.0f64;
        for i in 0..=200_000 {
            let x = -87.0 * i as f32 / 200_000.0;
            let reference = (x as f64).exp();
            let error = ((exp_nonpositive(x) as f64 - reference) / reference).abs();
            worst = worst.max(error);
        }
        assert!(worst < 3e-7, "worst relative error {worst}");
        assert_eq!(exp_nonpositive(0.0), 1.0);
        assert!(exp_nonpositive(-1000.0) < 1e-37);
    }

    #[test]
    fn exp_builds_its_power_of_two_as_the_integer_cast_would() {
        // 2^n from the rounded sum's bits must be the float that `n as i32` gives, at every n.
        const ROUND: f32 = 12_582_912.0;
        for n in -126..=0 {
            let rounded = n as f32 + ROUND;
            let from_bits = f32::from_bits(rounded.to_bits().wrapping_sub(ROUND.to_bits()).wrapping_add(127) << 23);
            assert_eq!(from_bits, 2f32.powi(n), "n = {n}");
        }
        assert!(exp_nonpositive(f32::NAN).is_nan());
    }

    #[test]
    fn ln_1p_matches_the_library_to_f32_precision() {
        let mut worst = 0.0f64;
        for i in 0..=200_000 {
            // Cover [0, 1] and, through the square, many tiny values too.
            let e = (i as f32 / 200_000.0).powi(4);
            let reference = (e as f64).ln_1p();
            let error = if reference == 0.0 {
                ln_1p_unit(e) as f64
            } else {
                ((ln_1p_unit(e) as f64 - reference) / reference).abs()
            };
            worst = worst.max(error);
        }
        assert!(worst < 3e-7, "worst relative error {worst}");
    }
}
