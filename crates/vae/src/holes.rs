//! How well drawn codes land where the training images' codes are: the numbers behind "the
//! prior has holes". Each is computed on codes, before any decoding, so it says where a
//! sampler draws, not what the decoder makes of it.
//!
//! - **active units** (Burda et al. 2016): latent dimensions whose code varies over the
//!   training images, `Var_x(code_i(x)) > 0.01`; the others carry nothing, whatever is drawn
//!   there.
//! - **hole share**: the share of draws whose nearest training code is farther away than the
//!   99th percentile of the training codes' distances to their own nearest (other) training
//!   code. A draw there lies in a region no training image maps to. Codes of the test images
//!   give the share a sampler that draws like the data would have (about 1%).
//! - **MMD**: the squared maximum mean discrepancy (Gretton et al. 2012, the unbiased
//!   estimate) between draws and training codes, with a sum of Gaussian kernels whose
//!   bandwidths² are the median squared distance between training codes times 1, 1/4 and 1/16
//!   (the broad one sees the overall spread, the narrow ones the clumps and the gaps between
//!   them): 0 when the draws are distributed as the codes are, whatever their shape. Draws
//!   and test codes are compared in equal numbers, so that their estimates are equally noisy.

use rayon::prelude::*;
use serde::Serialize;

use crate::engine::Matrix;
use crate::engine::matmul::{MatView, Op, matmul, matmul_views};

/// A dimension is active when its code's variance over the training images exceeds this.
pub const ACTIVE_VARIANCE: f64 = 0.01;
/// Training codes that nearest-neighbour distances are measured against.
pub const REFERENCE_CODES: usize = 10_000;
/// The percentile of the training codes' nearest-neighbour distances beyond which a draw is in
/// a hole.
pub const NEIGHBOUR_PERCENTILE: f64 = 0.99;
/// Codes on each side of the MMD estimate (its cost grows with the square).
pub const MMD_CODES: usize = 2_000;
/// Query codes per product of the nearest-neighbour search.
const QUERIES_PER_PASS: usize = 1024;
/// Reference codes per product of the nearest-neighbour search: with [`QUERIES_PER_PASS`],
/// 8 MB of distances, reused from tile to tile.
const REFERENCE_PER_PASS: usize = 2048;

/// Where drawn codes land, compared with the training codes.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Coverage {
    pub latent: usize,
    /// Dimensions whose training codes vary by more than [`ACTIVE_VARIANCE`].
    pub active_units: usize,
    /// Training codes the distances are measured against.
    pub reference_codes: usize,
    pub draws: usize,
    /// The [`NEIGHBOUR_PERCENTILE`] of the reference codes' nearest-neighbour distances.
    pub neighbour_radius: f64,
    /// Share of draws farther than `neighbour_radius` from every reference code.
    pub hole_share: f64,
    /// The same share for the test images' codes: what drawing like the data scores.
    pub hole_share_of_test_codes: f64,
    /// Squared MMD between draws and training codes.
    pub mmd: f64,
    /// The same between the test images' codes and the training codes: the floor.
    pub mmd_of_test_codes: f64,
}

/// The coverage of `draws` (n x latent) against `train` codes, with `test` codes as the
/// reference a perfect sampler would score.
pub fn coverage(train: &Matrix, test: &Matrix, draws: &Matrix) -> Coverage {
    assert!(
        train.cols == draws.cols && test.cols == draws.cols,
        "coverage: codes of different widths"
    );
    let reference = first_rows(train, REFERENCE_CODES);
    let mut own = nearest_squared(&reference, &reference, true);
    own.sort_by(f32::total_cmp);
    let radius = own
        .get(((own.len() as f64 - 1.0) * NEIGHBOUR_PERCENTILE).round() as usize)
        .map_or(0.0, |&d| (d as f64).sqrt());
    let share = |queries: &Matrix| {
        let beyond = nearest_squared(queries, &reference, false)
            .iter()
            .filter(|&&d| (d as f64).sqrt() > radius)
            .count();
        beyond as f64 / queries.rows.max(1) as f64
    };
    let m = MMD_CODES.min(draws.rows).min(test.rows);
    let mmd_train = first_rows(train, MMD_CODES);
    let bandwidth = median_squared_distance(&mmd_train);
    Coverage {
        latent: train.cols,
        active_units: active_units(train),
        reference_codes: reference.rows,
        draws: draws.rows,
        neighbour_radius: radius,
        hole_share: share(draws),
        hole_share_of_test_codes: share(test),
        mmd: mmd(&first_rows(draws, m), &mmd_train, bandwidth),
        mmd_of_test_codes: mmd(&first_rows(test, m), &mmd_train, bandwidth),
    }
}

/// Dimensions of `codes` whose variance over the rows exceeds [`ACTIVE_VARIANCE`].
pub fn active_units(codes: &Matrix) -> usize {
    let (mean, cov) = crate::latent::mean_and_covariance(codes);
    (0..mean.len()).filter(|&i| cov[(i, i)] > ACTIVE_VARIANCE).count()
}

fn first_rows(m: &Matrix, n: usize) -> Matrix {
    let n = n.min(m.rows);
    Matrix::from_vec(n, m.cols, m.data[..n * m.cols].to_vec())
}

/// `||row||²` of each row.
fn squared_norms(m: &Matrix) -> Vec<f32> {
    (0..m.rows).map(|r| m.row(r).iter().map(|v| v * v).sum()).collect()
}

/// `||a_i - b_j||²` for every pair, by `||a||² + ||b||² - 2 a·b` (one product; clamped at 0
/// against rounding).
///
/// # Shapes
/// Returns a.rows x b.rows.
fn pairwise_squared(a: &Matrix, b: &Matrix) -> Matrix {
    let (na, nb) = (squared_norms(a), squared_norms(b));
    let mut out = Matrix::default();
    matmul(&mut out, a, Op::N, b, Op::T, false);
    out.data.par_chunks_mut(b.rows.max(1)).zip(&na).for_each(|(row, &x)| {
        for (v, &y) in row.iter_mut().zip(&nb) {
            *v = (x + y - 2.0 * *v).max(0.0);
        }
    });
    out
}

/// Each query's squared distance to its nearest reference code; with `skip_self` the
/// queries are the reference codes themselves and each skips its own row.
///
/// The distances are worked out a tile of [`QUERIES_PER_PASS`] x [`REFERENCE_PER_PASS`] at a
/// time into one buffer, each tile folded into the running minima at once: the whole
/// 1024 x 10,000 block of distances, allocated afresh for each pass, had the demo spend more
/// time faulting in new pages than computing distances.
fn nearest_squared(queries: &Matrix, reference: &Matrix, skip_self: bool) -> Vec<f32> {
    let c = queries.cols;
    let (query_norms, reference_norms) = (squared_norms(queries), squared_norms(reference));
    let mut nearest = vec![f32::INFINITY; queries.rows];
    let mut products = Matrix::default();
    for q0 in (0..queries.rows).step_by(QUERIES_PER_PASS) {
        let q1 = (q0 + QUERIES_PER_PASS).min(queries.rows);
        let part = MatView::new(q1 - q0, c, &queries.data[q0 * c..q1 * c]);
        for r0 in (0..reference.rows).step_by(REFERENCE_PER_PASS) {
            let r1 = (r0 + REFERENCE_PER_PASS).min(reference.rows);
            let codes = MatView::new(r1 - r0, c, &reference.data[r0 * c..r1 * c]);
            matmul_views(&mut products, part, Op::N, codes, Op::T, false);
            products
                .data
                .par_chunks(r1 - r0)
                .zip(&mut nearest[q0..q1])
                .enumerate()
                .for_each(|(i, (dots, best))| {
                    let q = q0 + i;
                    for (j, &dot) in dots.iter().enumerate() {
                        let r = r0 + j;
                        if !(skip_self && r == q) {
                            *best = best.min((query_norms[q] + reference_norms[r] - 2.0 * dot).max(0.0));
                        }
                    }
                });
        }
    }
    nearest
}

/// The median of the squared distances between distinct rows of `codes` (1 if there are none,
/// or all coincide).
fn median_squared_distance(codes: &Matrix) -> f64 {
    let d = pairwise_squared(codes, codes);
    let mut v: Vec<f32> = (0..d.rows).flat_map(|i| d.row(i)[i + 1..].to_vec()).collect();
    if v.is_empty() {
        return 1.0;
    }
    let mid = v.len() / 2;
    let (_, m, _) = v.select_nth_unstable_by(mid, f32::total_cmp);
    if *m > 0.0 { *m as f64 } else { 1.0 }
}

/// Bandwidths² of the MMD's kernels, as shares of the median squared distance.
const KERNEL_SCALES: [f64; 3] = [1.0, 0.25, 0.0625];

/// The unbiased estimate of the squared MMD between the rows of `x` and of `y`, with the
/// kernel `Σ_s exp(-||a - b||² / (2 s h²))` over [`KERNEL_SCALES`], `h²` = `bandwidth`.
fn mmd(x: &Matrix, y: &Matrix, bandwidth: f64) -> f64 {
    let kernel_mean = |a: &Matrix, b: &Matrix, same: bool| {
        let d = pairwise_squared(a, b);
        let mut total = 0.0f64;
        for i in 0..d.rows {
            for (j, &v) in d.row(i).iter().enumerate() {
                if !(same && i == j) {
                    total += KERNEL_SCALES
                        .iter()
                        .map(|s| (-(v as f64) / (2.0 * s * bandwidth)).exp())
                        .sum::<f64>();
                }
            }
        }
        let pairs = if same {
            a.rows * a.rows.saturating_sub(1)
        } else {
            a.rows * b.rows
        };
        total / pairs.max(1) as f64
    };
    kernel_mean(x, x, true) + kernel_mean(y, y, true) - 2.0 * kernel_mean(x, y, false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::seeded;

    fn normal(n: usize, d: usize, scale: f32, shift: f32, seed: u64) -> Matrix {
        let mut m = Matrix::standard_normal(n, d, &mut seeded(seed));
        for v in &mut m.data {
            *v = *v * scale + shift;
        }
        m
    }

    #[test]
    fn draws_like_the_codes_cover_them_and_draws_elsewhere_do_not() {
        let train = normal(3000, 4, 1.0, 0.0, 1);
        let test = normal(500, 4, 1.0, 0.0, 2);
        let like = coverage(&train, &test, &normal(1000, 4, 1.0, 0.0, 3));
        assert!(like.hole_share < 0.05, "{like:?}");
        assert!(like.hole_share_of_test_codes < 0.05, "{like:?}");
        assert!(like.mmd.abs() < 0.01, "{like:?}");
        assert_eq!(like.active_units, 4);
        // Draws from a wider law: many land beyond every training code.
        let wide = coverage(&train, &test, &normal(1000, 4, 3.0, 0.0, 3));
        assert!(wide.hole_share > 0.3, "{wide:?}");
        assert!(wide.mmd > 10.0 * like.mmd.abs().max(1e-3), "{wide:?}");
        // A shifted law too.
        let shifted = coverage(&train, &test, &normal(1000, 4, 1.0, 2.0, 3));
        assert!(shifted.mmd > wide.mmd * 0.3 && shifted.hole_share > 0.1, "{shifted:?}");
    }

    #[test]
    fn the_radius_is_the_percentile_and_a_draw_on_it_is_not_in_a_hole() {
        // Nearest-neighbour distances 1, 1, 2: the 99th percentile (rounded to an index) is 2.
        let train = Matrix::from_vec(3, 1, vec![0.0, 1.0, 3.0]);
        // A draw exactly 2 from its nearest code is at the radius, not beyond; 2.5 away is.
        let draws = Matrix::from_vec(2, 1, vec![5.0, 5.5]);
        let c = coverage(&train, &train, &draws);
        assert_eq!(c.neighbour_radius, 2.0, "{c:?}");
        assert_eq!(c.hole_share, 0.5, "{c:?}");
        assert_eq!(c.hole_share_of_test_codes, 0.0, "{c:?}");
        // Triangular numbers 0, 1, 3, 6, …, 5050: distances 1, 1, 2, …, 100, the percentile 99.
        let line: Vec<f32> = (0..=100).map(|i: i32| (i * (i + 1) / 2) as f32 / 100.0).collect();
        let train = Matrix::from_vec(101, 1, line);
        let c = coverage(&train, &train, &train);
        assert!((c.neighbour_radius - 0.99).abs() < 2e-3, "{c:?}");
    }

    #[test]
    fn a_dimension_that_does_not_vary_is_not_active() {
        let mut codes = normal(1000, 3, 1.0, 0.0, 4);
        for r in 0..codes.rows {
            codes.row_mut(r)[1] *= 0.05;
        }
        assert_eq!(active_units(&codes), 2);
    }

    #[test]
    fn nearest_neighbours_are_found_and_self_is_skipped() {
        let reference = Matrix::from_vec(3, 1, vec![0.0, 1.0, 5.0]);
        let queries = Matrix::from_vec(2, 1, vec![0.9, 4.0]);
        let near = |got: Vec<f32>, want: &[f32]| {
            assert_eq!(got.len(), want.len());
            for (g, w) in got.iter().zip(want) {
                assert!((g - w).abs() < 1e-5, "{got:?} vs {want:?}");
            }
        };
        near(nearest_squared(&queries, &reference, false), &[0.01, 1.0]);
        near(nearest_squared(&reference, &reference, true), &[1.0, 1.0, 16.0]);
        // Squared distances between distinct rows 1, 25, 16: the median is 16.
        assert_eq!(median_squared_distance(&reference), 16.0);
        // Codes that all coincide have no spread to take: the bandwidth falls back to 1.
        assert_eq!(median_squared_distance(&Matrix::from_vec(3, 1, vec![2.0; 3])), 1.0);
    }

    #[test]
    fn nearest_neighbours_across_tiles_are_those_of_the_definition() {
        // More queries and reference codes than one tile holds, neither a whole number of
        // tiles: every query's nearest code, self skipped or not, is the brute-force one.
        let mut rng = seeded(7);
        let reference = Matrix::standard_normal(REFERENCE_PER_PASS + 37, 3, &mut rng);
        let queries = Matrix::standard_normal(QUERIES_PER_PASS + 5, 3, &mut rng);
        let brute = |queries: &Matrix, skip_self: bool| -> Vec<f32> {
            (0..queries.rows)
                .map(|q| {
                    (0..reference.rows)
                        .filter(|&r| !(skip_self && r == q))
                        .map(|r| {
                            queries
                                .row(q)
                                .iter()
                                .zip(reference.row(r))
                                .map(|(a, b)| (a - b) * (a - b))
                                .sum::<f32>()
                        })
                        .fold(f32::INFINITY, f32::min)
                })
                .collect()
        };
        for (queries, skip_self) in [(&queries, false), (&reference, true)] {
            let (got, want) = (
                nearest_squared(queries, &reference, skip_self),
                brute(queries, skip_self),
            );
            assert_eq!(got.len(), want.len());
            for (q, (g, w)) in got.iter().zip(&want).enumerate() {
                assert!(
                    (g - w).abs() < 1e-4 * (1.0 + w),
                    "query {q} (skip self {skip_self}): {g} vs {w}"
                );
            }
        }
        // Not skipping self, each reference code is its own nearest.
        assert!(nearest_squared(&reference, &reference, false).iter().all(|&d| d < 1e-5));
    }

    #[test]
    fn the_mmd_is_its_formula_on_two_points_each() {
        // x = {0, 0}, y = {1, 1}, h² = 1: k(x, x') = k(y, y') = 3 (three kernels at distance 0),
        // k(x, y) = e^-1/2 + e^-2 + e^-8.
        let (x, y) = (
            Matrix::from_vec(2, 1, vec![0.0; 2]),
            Matrix::from_vec(2, 1, vec![1.0; 2]),
        );
        let cross = (-0.5f64).exp() + (-2.0f64).exp() + (-8.0f64).exp();
        let expected = 3.0 + 3.0 - 2.0 * cross;
        assert!(
            (mmd(&x, &y, 1.0) - expected).abs() < 1e-6,
            "{} vs {expected}",
            mmd(&x, &y, 1.0)
        );
        // The bandwidth scales the distances: h² = 4 at distance 2 is the same.
        let far = Matrix::from_vec(2, 1, vec![2.0; 2]);
        assert!((mmd(&x, &far, 4.0) - expected).abs() < 1e-6);
    }
}
