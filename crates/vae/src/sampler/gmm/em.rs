//! Fitting a [`GaussianMixture`] by expectation-maximisation (Dempster et al. 1977; Bishop
//! 2006, §9.2).
//!
//! **E-step**: each code's responsibilities `r_nk = π_k N(z_n; μ_k, Σ_k) / p(z_n)`, from the
//! mixture's [`Whitening`] (one matrix product for every code and component).
//!
//! **M-step**: `N_k = Σ_n r_nk`, `π_k = N_k / N`, `μ_k = Σ_n r_nk z_n / N_k`,
//! `Σ_k = Σ_n r_nk (z_n - μ_k)(z_n - μ_k)ᵀ / N_k + λI`: the floor `λ` keeps a component that
//! collapses onto a few codes (or a latent dimension that never varies) invertible.
//!
//! It starts from k-means++ centres (Arthur & Vassilvitskii 2007) refined by a few Lloyd
//! steps, and stops when the mean log-likelihood per code gains less than the tolerance.
//! Products run in `f32` on the engine's deterministic matrix product; sums, the parameters
//! and the factorisations are `f64`. Every random choice comes from the caller's generator,
//! so the same seed fits the same mixture, whatever the thread count.

use nalgebra::DMatrix;
use rand::{Rng, RngExt};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::{GaussianMixture, MAX_COMPONENTS, MAX_DIMS, ROWS_PER_PASS, Whitening, log_sum_exp};
use crate::engine::Matrix;
use crate::engine::matmul::{Op, matmul, matmul_tn_tall};
use crate::error::{Error, Result, ensure_in_range};

/// Most EM iterations one fit may ask for.
pub const MAX_ITERATIONS: usize = 10_000;
/// The covariance floor `λ`, as a share of the codes' mean variance per dimension: small
/// enough to leave any real spread alone, large enough that every `Σ_k` has a Cholesky factor.
pub const COVARIANCE_FLOOR: f64 = 1e-6;
/// Lloyd steps that refine the k-means++ centres before EM starts.
const LLOYD_STEPS: usize = 10;
/// A component with less responsibility than this (in codes) is empty: it keeps its mean,
/// takes the codes' overall covariance and a weight of almost nothing.
const EMPTY: f64 = 1e-3;

/// How a mixture is fitted.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GmmOptions {
    pub components: usize,
    pub max_iterations: usize,
    /// EM stops when the mean log-likelihood per code gains less than this, in nats.
    pub tolerance: f64,
}

impl Default for GmmOptions {
    fn default() -> Self {
        GmmOptions {
            components: 50,
            max_iterations: 200,
            // scikit-learn's default. On the built-in sample (a VAE's 8,100 codes, latent 16)
            // 1e-4 took twice the iterations for 0.002 nats of held-out log-likelihood.
            tolerance: 1e-3,
        }
    }
}

impl GmmOptions {
    /// Refuses settings no fit can have.
    pub fn validate(&self) -> Result<()> {
        ensure_in_range("components", self.components, 1..=MAX_COMPONENTS)?;
        ensure_in_range("max-iterations", self.max_iterations, 1..=MAX_ITERATIONS)?;
        if !(self.tolerance.is_finite() && self.tolerance >= 0.0) {
            return Err(Error::config("tolerance", "must be a finite number >= 0"));
        }
        Ok(())
    }
}

/// What one fit did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GmmFit {
    /// Codes it was fitted to.
    pub codes: usize,
    pub iterations: usize,
    /// Whether the gain fell below the tolerance before the iteration limit.
    pub converged: bool,
    /// Mean log-likelihood per code of the fitted codes under the final mixture, in nats.
    pub log_likelihood: f64,
    /// The `λ` added to every covariance's diagonal.
    pub covariance_floor: f64,
    /// Components whose spread, before the floor, had no Cholesky factor (a flat direction).
    pub degenerate_components: usize,
    /// Components that ended with (almost) no responsibility.
    pub empty_components: usize,
}

impl GaussianMixture {
    /// Fits a mixture to the rows of `codes` by EM, from k-means++ centres drawn with `rng`.
    ///
    /// # Errors
    /// Fewer codes than components, codes wider than [`MAX_DIMS`], a non-finite code, or
    /// options out of range.
    pub fn fit(codes: &Matrix, options: &GmmOptions, rng: &mut impl Rng) -> Result<(Self, GmmFit)> {
        options.validate()?;
        let (n, d, k) = (codes.rows, codes.cols, options.components);
        ensure_in_range("code dimensions", d, 1..=MAX_DIMS)?;
        if n < k {
            return Err(Error::config(
                "components",
                format!("{k} components need at least as many codes, there are {n}"),
            ));
        }
        if codes.data.iter().any(|v| !v.is_finite()) {
            return Err(Error::config("codes", "hold a non-finite value"));
        }
        // Fit on centred codes, so that f32 products lose nothing to a far-off mean.
        let (centre, spread) = crate::latent::mean_and_covariance(codes);
        let mut x = codes.clone();
        for r in 0..n {
            for (v, m) in x.row_mut(r).iter_mut().zip(&centre) {
                *v -= *m as f32;
            }
        }
        let mean_variance = spread.diagonal().sum() / d as f64;
        let floor = (COVARIANCE_FLOOR * mean_variance).max(1e-12);
        let global = floored_cholesky(spread, floor);

        let centres = kmeans_centres(&x, k, rng);
        let mut resp = hard_responsibilities(&x, &centres);
        let mut step = MStep::new(floor, global);
        let mut mixture = step.run(&x, &resp, &centres);
        let mut previous = f64::NEG_INFINITY;
        let (mut iterations, mut converged) = (0, false);
        while iterations < options.max_iterations {
            iterations += 1;
            let ll = e_step(&mixture, &x, &mut resp);
            if ll - previous < options.tolerance {
                converged = true;
                break;
            }
            previous = ll;
            mixture = step.run(&x, &resp, &mixture.means);
        }
        let log_likelihood = e_step(&mixture, &x, &mut resp);
        let empty = step.empty;
        let degenerate = step.degenerate;
        for m in mixture.means.chunks_exact_mut(d) {
            for (v, o) in m.iter_mut().zip(&centre) {
                *v += o;
            }
        }
        Ok((
            mixture,
            GmmFit {
                codes: n,
                iterations,
                converged,
                log_likelihood,
                covariance_floor: floor,
                degenerate_components: degenerate,
                empty_components: empty,
            },
        ))
    }
}

/// The lower Cholesky factor of `cov + floor·I`; the floor makes a symmetric positive
/// semi-definite matrix definite, and one that still fails (rounding on a near-flat spread)
/// gets ten times the floor until it factors.
fn floored_cholesky(cov: DMatrix<f64>, floor: f64) -> DMatrix<f64> {
    let d = cov.nrows();
    let mut lambda = floor;
    for _ in 0..64 {
        let raised = &cov + DMatrix::identity(d, d) * lambda;
        if let Some(chol) = raised.cholesky() {
            return chol.l();
        }
        lambda *= 10.0;
    }
    // Out of reach for finite input; a round sphere of the floor's size if it happens.
    DMatrix::identity(d, d) * floor.sqrt()
}

/// Responsibilities of `mixture` for every row of `x` into `resp` (n x components); returns
/// the mean log-likelihood per code.
fn e_step(mixture: &GaussianMixture, x: &Matrix, resp: &mut Matrix) -> f64 {
    let k = mixture.components();
    let mut joint = Vec::new();
    Whitening::new(mixture).log_joint(x, &mut joint);
    resp.reshape_for_overwrite(x.rows, k);
    let lls: Vec<f64> = resp
        .data
        .par_chunks_mut(k)
        .zip(joint.par_chunks(k))
        .map(|(r, j)| {
            let ll = log_sum_exp(j);
            for (o, &v) in r.iter_mut().zip(j) {
                *o = ((v - ll) as f32).exp();
            }
            ll
        })
        .collect();
    // Summed in row order: the same total whatever the thread count.
    lls.iter().sum::<f64>() / x.rows.max(1) as f64
}

/// The M-step, with what it counts across iterations.
struct MStep {
    floor: f64,
    /// The factor of the codes' overall covariance: an empty component's.
    global: DMatrix<f64>,
    degenerate: usize,
    empty: usize,
}

impl MStep {
    fn new(floor: f64, global: DMatrix<f64>) -> Self {
        MStep {
            floor,
            global,
            degenerate: 0,
            empty: 0,
        }
    }

    /// The mixture the responsibilities `resp` (n x K) imply for the codes `x`; an empty
    /// component keeps its row of `previous_means`.
    fn run(&mut self, x: &Matrix, resp: &Matrix, previous_means: &[f64]) -> GaussianMixture {
        let (n, d, k) = (x.rows, x.cols, resp.cols);
        let mut totals = vec![0.0f64; k];
        for r in 0..n {
            for (t, &v) in totals.iter_mut().zip(resp.row(r)) {
                *t += v as f64;
            }
        }
        let mut sums = Matrix::default();
        matmul_tn_tall(&mut sums, resp.into(), x.into());
        // Each component's mean and factor, the components in parallel (each its own
        // products, so the result does not depend on the thread count).
        let parts: Vec<(Vec<f64>, DMatrix<f64>, bool, bool)> = (0..k)
            .into_par_iter()
            .map(|c| {
                if totals[c] < EMPTY {
                    let mean = previous_means[c * d..(c + 1) * d].to_vec();
                    return (mean, self.global.clone(), false, true);
                }
                let mean: Vec<f64> = sums.row(c).iter().map(|&s| s as f64 / totals[c]).collect();
                let mean32: Vec<f32> = mean.iter().map(|&m| m as f32).collect();
                let mut data = Vec::with_capacity(n * d);
                for r in 0..n {
                    let w = resp.row(r)[c].sqrt();
                    data.extend(x.row(r).iter().zip(&mean32).map(|(&v, &m)| w * (v - m)));
                }
                let weighted = Matrix::from_vec(n, d, data);
                let mut scatter = Matrix::default();
                matmul_tn_tall(&mut scatter, (&weighted).into(), (&weighted).into());
                let cov = DMatrix::from_fn(d, d, |i, j| {
                    // Symmetric by construction, up to the product's rounding.
                    0.5 * (scatter.row(i)[j] + scatter.row(j)[i]) as f64 / totals[c]
                });
                let degenerate = cov.clone().cholesky().is_none();
                (mean, floored_cholesky(cov, self.floor), degenerate, false)
            })
            .collect();
        let (mut degenerate, mut empty) = (0, 0);
        let mut means = vec![0.0; k * d];
        let mut scale_tril = vec![0.0; k * d * d];
        for (c, (mean, factor, flat, hollow)) in parts.into_iter().enumerate() {
            degenerate += usize::from(flat);
            empty += usize::from(hollow);
            means[c * d..(c + 1) * d].copy_from_slice(&mean);
            for i in 0..d {
                for j in 0..=i {
                    scale_tril[c * d * d + i * d + j] = factor[(i, j)];
                }
            }
        }
        self.degenerate = degenerate;
        self.empty = empty;
        let weights = totals.iter().map(|t| t.max(0.0) / n as f64).collect::<Vec<_>>();
        let total: f64 = weights.iter().sum();
        GaussianMixture {
            dim: d,
            weights: weights.iter().map(|w| w / total).collect(),
            means,
            scale_tril,
        }
    }
}

/// k-means++ centres (the first uniformly, each next one with probability proportional to its
/// squared distance to the nearest chosen centre), refined by [`LLOYD_STEPS`] Lloyd steps.
/// Returns components x dim, row-major.
fn kmeans_centres(x: &Matrix, k: usize, rng: &mut impl Rng) -> Vec<f64> {
    let (n, d) = (x.rows, x.cols);
    let squared = |r: usize, c: &[f64]| -> f64 { x.row(r).iter().zip(c).map(|(&v, &m)| (v as f64 - m).powi(2)).sum() };
    let mut centres = Vec::with_capacity(k * d);
    let first = rng.random_range(0..n);
    centres.extend(x.row(first).iter().map(|&v| v as f64));
    let mut nearest: Vec<f64> = (0..n).map(|r| squared(r, &centres[0..d])).collect();
    for c in 1..k {
        let total: f64 = nearest.iter().sum();
        let pick = if total > 0.0 {
            let target = rng.random::<f64>() * total;
            let mut acc = 0.0;
            nearest
                .iter()
                .position(|&v| {
                    acc += v;
                    acc > target
                })
                .unwrap_or(n - 1)
        } else {
            // Every code sits on a centre already: any code will do.
            rng.random_range(0..n)
        };
        centres.extend(x.row(pick).iter().map(|&v| v as f64));
        let new = &centres[c * d..(c + 1) * d];
        for (r, v) in nearest.iter_mut().enumerate() {
            *v = v.min(squared(r, new));
        }
    }
    for _ in 0..LLOYD_STEPS {
        let labels = nearest_centres(x, &centres, k);
        let mut sums = vec![0.0f64; k * d];
        let mut counts = vec![0usize; k];
        for (r, &c) in labels.iter().enumerate() {
            counts[c] += 1;
            for (s, &v) in sums[c * d..(c + 1) * d].iter_mut().zip(x.row(r)) {
                *s += v as f64;
            }
        }
        for c in 0..k {
            // An empty cluster keeps its centre.
            if counts[c] > 0 {
                for (m, s) in centres[c * d..(c + 1) * d].iter_mut().zip(&sums[c * d..(c + 1) * d]) {
                    *m = s / counts[c] as f64;
                }
            }
        }
    }
    centres
}

/// The index of each row's nearest centre, by `||x||² - 2 x·c + ||c||²` (one product).
fn nearest_centres(x: &Matrix, centres: &[f64], k: usize) -> Vec<usize> {
    let d = x.cols;
    let c = Matrix::from_vec(k, d, centres.iter().map(|&v| v as f32).collect());
    let norms: Vec<f32> = (0..k).map(|i| c.row(i).iter().map(|v| v * v).sum()).collect();
    let mut labels = Vec::with_capacity(x.rows);
    let mut dots = Matrix::default();
    for start in (0..x.rows).step_by(ROWS_PER_PASS) {
        let end = (start + ROWS_PER_PASS).min(x.rows);
        let rows = Matrix::from_vec(end - start, d, x.data[start * d..end * d].to_vec());
        matmul(&mut dots, &rows, Op::N, &c, Op::T, false);
        for r in 0..dots.rows {
            // ||x||² is the same for every centre: leave it out.
            let best = (0..k)
                .map(|j| norms[j] - 2.0 * dots.row(r)[j])
                .enumerate()
                .min_by(|a, b| a.1.total_cmp(&b.1))
                .map_or(0, |(j, _)| j);
            labels.push(best);
        }
    }
    labels
}

/// One-hot responsibilities of each row's nearest centre: the M-step that starts EM.
fn hard_responsibilities(x: &Matrix, centres: &[f64]) -> Matrix {
    let k = centres.len() / x.cols;
    let mut resp = Matrix::zeros(x.rows, k);
    for (r, c) in nearest_centres(x, centres, k).into_iter().enumerate() {
        resp.row_mut(r)[c] = 1.0;
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::seeded;
    use rand_distr::StandardNormal;

    /// Codes from two well-separated, differently shaped 2-D Gaussians, 3:1.
    fn two_blobs(n: usize) -> Matrix {
        let mut rng = seeded(11);
        let mut z = Matrix::zeros(n, 2);
        for r in 0..n {
            let (a, b): (f32, f32) = (rng.sample(StandardNormal), rng.sample(StandardNormal));
            let row = z.row_mut(r);
            if r % 4 == 3 {
                // Mean (6, -4), correlated: Σ = [[1, 0.8], [0.8, 1]].
                row[0] = 6.0 + a;
                row[1] = -4.0 + 0.8 * a + 0.6 * b;
            } else {
                // Mean (-2, 1), axis-aligned: sd 0.5 and 2.
                row[0] = -2.0 + 0.5 * a;
                row[1] = 1.0 + 2.0 * b;
            }
        }
        z
    }

    fn options(components: usize) -> GmmOptions {
        GmmOptions {
            components,
            ..GmmOptions::default()
        }
    }

    #[test]
    fn em_recovers_two_known_gaussians() {
        let z = two_blobs(4000);
        let (m, fit) = GaussianMixture::fit(&z, &options(2), &mut seeded(1)).unwrap();
        assert!(fit.converged, "{fit:?}");
        // Find the component near (6, -4).
        let far = if m.means()[0] > 0.0 { 0 } else { 1 };
        let near = 1 - far;
        assert!((m.weights()[far] - 0.25).abs() < 0.02, "{:?}", m.weights());
        let mean = |c: usize| [m.means()[2 * c], m.means()[2 * c + 1]];
        let cov = |c: usize| {
            let l = &m.scale_tril()[4 * c..4 * c + 4];
            // Σ = L Lᵀ for L = [[a, 0], [b, c]].
            [l[0] * l[0], l[0] * l[2], l[2] * l[2] + l[3] * l[3]]
        };
        let close = |a: f64, b: f64, tol: f64| assert!((a - b).abs() < tol, "{a} vs {b}");
        let [x, y] = mean(far);
        close(x, 6.0, 0.1);
        close(y, -4.0, 0.1);
        let [x, y] = mean(near);
        close(x, -2.0, 0.05);
        close(y, 1.0, 0.1);
        let [sxx, sxy, syy] = cov(far);
        close(sxx, 1.0, 0.15);
        close(sxy, 0.8, 0.15);
        close(syy, 1.0, 0.15);
        let [sxx, sxy, syy] = cov(near);
        close(sxx, 0.25, 0.03);
        close(sxy, 0.0, 0.06);
        close(syy, 4.0, 0.3);
    }

    #[test]
    fn more_components_fit_better_and_the_fit_is_seeded() {
        let z = two_blobs(2000);
        let (one, f1) = GaussianMixture::fit(&z, &options(1), &mut seeded(1)).unwrap();
        let (two, f2) = GaussianMixture::fit(&z, &options(2), &mut seeded(1)).unwrap();
        assert!(f2.log_likelihood > f1.log_likelihood + 0.5, "{f1:?} {f2:?}");
        // The fit measures centred codes; the mixture, moved back, measures them as given.
        let again = one.mean_log_likelihood(&z);
        assert!(
            (again - f1.log_likelihood).abs() < 1e-5,
            "{again} vs {}",
            f1.log_likelihood
        );
        let (again, _) = GaussianMixture::fit(&z, &options(2), &mut seeded(1)).unwrap();
        assert_eq!(two, again);
    }

    #[test]
    fn a_flat_direction_is_floored_and_said() {
        // Every code on the line y = 2x: no covariance of it has an inverse without the floor.
        let z = Matrix::from_vec(
            200,
            2,
            (0..200).flat_map(|i| [i as f32 / 50.0, i as f32 / 25.0]).collect(),
        );
        let (m, fit) = GaussianMixture::fit(&z, &options(3), &mut seeded(2)).unwrap();
        assert_eq!(fit.degenerate_components, 3, "{fit:?}");
        assert!(fit.covariance_floor > 0.0);
        assert!(m.mean_log_likelihood(&z).is_finite());
        // Identical codes: zero spread everywhere, still a mixture.
        let same = Matrix::from_vec(10, 2, vec![1.0; 20]);
        let (m, fit) = GaussianMixture::fit(&same, &options(2), &mut seeded(2)).unwrap();
        assert!(m.mean_log_likelihood(&same).is_finite(), "{fit:?}");
    }

    #[test]
    fn bad_requests_are_refused() {
        let z = two_blobs(10);
        let err = GaussianMixture::fit(&z, &options(11), &mut seeded(1)).unwrap_err();
        assert!(err.to_string().contains("at least as many codes"), "{err}");
        assert!(GaussianMixture::fit(&z, &options(0), &mut seeded(1)).is_err());
        let mut bad = z.clone();
        bad.data[3] = f32::NAN;
        assert!(GaussianMixture::fit(&bad, &options(2), &mut seeded(1)).is_err());
        // Parts that are not a mixture.
        let ok = |w: Vec<f64>, l: Vec<f64>| GaussianMixture::new(1, w, vec![0.0, 0.0], l);
        assert!(ok(vec![0.5, 0.5], vec![1.0, 1.0]).is_ok());
        assert!(ok(vec![0.7, 0.5], vec![1.0, 1.0]).is_err());
        assert!(ok(vec![1.5, -0.5], vec![1.0, 1.0]).is_err());
        assert!(ok(vec![0.5, 0.5], vec![1.0, 0.0]).is_err());
        assert!(GaussianMixture::new(2, vec![1.0], vec![0.0; 2], vec![1.0, 0.5, 0.0, 1.0]).is_err());
    }
}
