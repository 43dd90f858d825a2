//! A Gaussian mixture with full covariances, fitted by expectation-maximisation (Dempster et
//! al. 1977; Bishop 2006, §9.2):
//!
//!   `p(z) = Σ_k π_k N(z; μ_k, Σ_k)`,   `Σ_k = L_k L_kᵀ` (Cholesky, `L_k` lower triangular).
//!
//! **E-step**: each code's responsibilities `r_nk = π_k N(z_n; μ_k, Σ_k) / p(z_n)`, with
//! `log N(z; μ, Σ) = -½ (D log 2π + 2 Σ_i log L_ii + ||L⁻¹(z - μ)||²)`. The whitened
//! `L_k⁻¹(z - μ_k)` of every code and component is one matrix product, `Z · [W_1 … W_K]`
//! with `W_k = L_k⁻ᵀ`, less the row `μ_k W_k`.
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

use crate::engine::Matrix;
use crate::engine::matmul::{MatView, Op, matmul, matmul_tn_tall, matmul_views_here};
use crate::error::{Error, Result, ensure_in_range};

/// Most components of one mixture: each holds a `D x D` covariance, and the E-step is
/// `N x K x D²` work.
pub const MAX_COMPONENTS: usize = 1_000;
/// Widest code a full-covariance mixture is fitted to (`K·D²` parameters).
pub const MAX_DIMS: usize = 256;
/// Most EM iterations one fit may ask for.
pub const MAX_ITERATIONS: usize = 10_000;
/// The covariance floor `λ`, as a share of the codes' mean variance per dimension: small
/// enough to leave any real spread alone, large enough that every `Σ_k` has a Cholesky factor.
pub const COVARIANCE_FLOOR: f64 = 1e-6;
/// Largest mean or Cholesky entry a mixture read from a file may hold.
pub const MAX_MAGNITUDE: f64 = 1e12;
/// Lloyd steps that refine the k-means++ centres before EM starts.
const LLOYD_STEPS: usize = 10;
/// Codes per matrix product of the E-step: bounds its memory (`rows x K·D` values).
const ROWS_PER_PASS: usize = 2048;
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

/// A mixture of full-covariance Gaussians over `dim`-dimensional codes.
#[derive(Clone, Debug, PartialEq)]
pub struct GaussianMixture {
    dim: usize,
    /// Mixing weights `π_k`, summing to 1.
    weights: Vec<f64>,
    /// Means `μ_k`: components x dim, row-major.
    means: Vec<f64>,
    /// Lower Cholesky factors `L_k`: components blocks of dim x dim, row-major.
    scale_tril: Vec<f64>,
}

impl GaussianMixture {
    /// A mixture from its parts (as a file holds them), checked: `K` weights that are finite,
    /// non-negative and sum to 1 (within 1e-6), `K x D` finite means, and `K`
    /// lower-triangular `D x D` factors with a positive diagonal, no entry beyond
    /// [`MAX_MAGNITUDE`].
    ///
    /// # Errors
    /// The first part that is not what it must be, in words.
    pub fn new(dim: usize, weights: Vec<f64>, means: Vec<f64>, scale_tril: Vec<f64>) -> Result<Self> {
        let k = weights.len();
        let field = "gmm";
        if k == 0 || dim == 0 {
            return Err(Error::config(field, "a mixture needs a component and a dimension"));
        }
        if means.len() != k * dim || scale_tril.len() != k * dim * dim {
            return Err(Error::config(
                field,
                format!(
                    "{k} components of {dim} dimensions need {} means and {} factor values",
                    k * dim,
                    k * dim * dim
                ),
            ));
        }
        if weights.iter().chain(&means).chain(&scale_tril).any(|v| !v.is_finite()) {
            return Err(Error::config(field, "holds a non-finite value"));
        }
        // No code is this far out: a value beyond it would draw infinite f32 codes.
        if means.iter().chain(&scale_tril).any(|v| v.abs() > MAX_MAGNITUDE) {
            return Err(Error::config(
                field,
                format!("holds a mean or factor beyond ±{MAX_MAGNITUDE:e}"),
            ));
        }
        let total: f64 = weights.iter().sum();
        if weights.iter().any(|&w| w < 0.0) || (total - 1.0).abs() > 1e-6 {
            return Err(Error::config(
                field,
                format!("weights must be >= 0 and sum to 1, they sum to {total}"),
            ));
        }
        for (c, l) in scale_tril.chunks_exact(dim * dim).enumerate() {
            for i in 0..dim {
                if l[i * dim + i] <= 0.0 {
                    return Err(Error::config(
                        field,
                        format!("component {c}: its Cholesky factor has a diagonal entry <= 0"),
                    ));
                }
                if l[i * dim + i + 1..(i + 1) * dim].iter().any(|&v| v != 0.0) {
                    return Err(Error::config(
                        field,
                        format!("component {c}: its Cholesky factor is not lower triangular"),
                    ));
                }
            }
        }
        Ok(GaussianMixture {
            dim,
            weights,
            means,
            scale_tril,
        })
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    pub fn components(&self) -> usize {
        self.weights.len()
    }

    pub fn weights(&self) -> &[f64] {
        &self.weights
    }

    /// components x dim, row-major.
    pub fn means(&self) -> &[f64] {
        &self.means
    }

    /// Each component's `L_k`, dim x dim row-major, one after another.
    pub fn scale_tril(&self) -> &[f64] {
        &self.scale_tril
    }

    /// `log p(z)` of every row of `z`.
    ///
    /// # Shapes
    /// `z`: n x dim; returns n values.
    pub fn log_densities(&self, z: &Matrix) -> Vec<f64> {
        assert_eq!(z.cols, self.dim, "log_densities: codes of the wrong width");
        let mut joint = Vec::new();
        Whitening::new(self).log_joint(z, &mut joint);
        joint.chunks_exact(self.components()).map(log_sum_exp).collect()
    }

    /// The mean of [`GaussianMixture::log_densities`]: the average log-likelihood per code.
    pub fn mean_log_likelihood(&self, z: &Matrix) -> f64 {
        let d = self.log_densities(z);
        d.iter().sum::<f64>() / d.len().max(1) as f64
    }

    /// The component that a uniform draw `u` in [0, 1) picks: `k` with probability `π_k`.
    fn component(&self, cumulative: &[f64], u: f64) -> usize {
        cumulative.partition_point(|&c| c <= u).min(self.components() - 1)
    }

    /// `π_1, π_1 + π_2, …`: what [`GaussianMixture::component`] searches.
    fn cumulative_weights(&self) -> Vec<f64> {
        self.weights
            .iter()
            .scan(0.0, |acc, &w| {
                *acc += w;
                Some(*acc)
            })
            .collect()
    }

    /// `out = μ_k + T · L_k ε` for one code.
    fn place(&self, k: usize, eps: &[f32], temperature: f32, out: &mut [f32]) {
        let d = self.dim;
        let (mean, l) = (
            &self.means[k * d..(k + 1) * d],
            &self.scale_tril[k * d * d..(k + 1) * d * d],
        );
        for i in 0..d {
            let spread: f64 = l[i * d..i * d + i + 1]
                .iter()
                .zip(eps)
                .map(|(&a, &b)| a * b as f64)
                .sum();
            out[i] = (mean[i] + temperature as f64 * spread) as f32;
        }
    }

    /// Rewrites each row of `z`, which holds standard normal draws `ε`, as a draw from the
    /// mixture: a component `k` with probability `π_k` (one uniform draw from `rng` per row),
    /// then `z = μ_k + T · L_k ε` (temperature `T` scales each component's spread, as it
    /// scales the standard normal prior's).
    pub fn place_rows(
        &self,
        z: &mut Matrix,
        rows: impl IntoIterator<Item = usize>,
        temperature: f32,
        rng: &mut impl Rng,
    ) {
        let cumulative = self.cumulative_weights();
        let mut out = vec![0.0f32; self.dim];
        for r in rows {
            let k = self.component(&cumulative, rng.random());
            self.place(k, z.row(r), temperature, &mut out);
            z.row_mut(r).copy_from_slice(&out);
        }
    }

    /// `n` draws at temperature `T`: the standard normal draws first (as the prior makes
    /// them), then the components ([`GaussianMixture::place_rows`]).
    ///
    /// # Shapes
    /// Returns n x dim.
    pub fn sample(&self, n: usize, temperature: f32, rng: &mut impl Rng) -> Matrix {
        let mut z = Matrix::standard_normal(n, self.dim, rng);
        self.place_rows(&mut z, 0..n, temperature, rng);
        z
    }

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
        let global = Covariance::floored(spread, floor);

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

/// `log Σ exp(v)`, stable.
fn log_sum_exp(v: &[f64]) -> f64 {
    let top = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if top == f64::NEG_INFINITY {
        return top;
    }
    top + v.iter().map(|x| (x - top).exp()).sum::<f64>().ln()
}

/// A covariance's lower Cholesky factor, with the floor on its diagonal.
struct Covariance;

impl Covariance {
    /// The factor of `cov + floor·I`; the floor makes a symmetric positive semi-definite
    /// matrix definite, and one that still fails (rounding on a near-flat spread) gets ten
    /// times the floor until it factors.
    fn floored(cov: DMatrix<f64>, floor: f64) -> DMatrix<f64> {
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
}

/// Each component's whitening `W_k = L_k⁻ᵀ` side by side, the rows `μ_k W_k` and the constant
/// part of each component's log-density: what the E-step reuses for every code.
struct Whitening {
    dim: usize,
    components: usize,
    /// dim x (components·dim).
    w: Matrix,
    /// components·dim.
    offsets: Vec<f64>,
    /// `log π_k - ½ D log 2π - Σ_i log L_ii`.
    log_norm: Vec<f64>,
}

impl Whitening {
    fn new(m: &GaussianMixture) -> Self {
        let (d, k) = (m.dim, m.components());
        let mut w = Matrix::zeros(d, k * d);
        let mut offsets = vec![0.0; k * d];
        let mut log_norm = Vec::with_capacity(k);
        for c in 0..k {
            let l = DMatrix::from_row_slice(d, d, &m.scale_tril[c * d * d..(c + 1) * d * d]);
            let inverse = l
                .solve_lower_triangular(&DMatrix::identity(d, d))
                .expect("a checked factor has a positive diagonal");
            // W = L⁻ᵀ: W[i][j] = L⁻¹[j][i].
            for i in 0..d {
                for j in 0..d {
                    w.data[i * k * d + c * d + j] = inverse[(j, i)] as f32;
                }
            }
            let mean = &m.means[c * d..(c + 1) * d];
            for j in 0..d {
                offsets[c * d + j] = (0..d).map(|i| mean[i] * inverse[(j, i)]).sum();
            }
            let log_det: f64 = (0..d).map(|i| l[(i, i)].ln()).sum();
            let log_weight = if m.weights[c] > 0.0 {
                m.weights[c].ln()
            } else {
                f64::NEG_INFINITY
            };
            log_norm.push(log_weight - 0.5 * d as f64 * (2.0 * std::f64::consts::PI).ln() - log_det);
        }
        Whitening {
            dim: d,
            components: k,
            w,
            offsets,
            log_norm,
        }
    }

    /// `log π_k + log N(z_n; μ_k, Σ_k)` for every code `n` and component `k`, row-major
    /// (n x components) into `out`. Fixed chunks of codes run in parallel, each its own
    /// product, so that every value is the same whatever the thread count.
    fn log_joint(&self, z: &Matrix, out: &mut Vec<f64>) {
        let (d, k) = (self.dim, self.components);
        out.clear();
        out.resize(z.rows * k, 0.0);
        let offsets: Vec<f32> = self.offsets.iter().map(|&o| o as f32).collect();
        out.par_chunks_mut(ROWS_PER_PASS * k)
            .zip(z.data.par_chunks(ROWS_PER_PASS * d))
            .for_each(|(joint, rows)| {
                let rows = MatView::new(rows.len() / d, d, rows);
                let mut whitened = Matrix::default();
                matmul_views_here(&mut whitened, rows, Op::N, (&self.w).into(), Op::N);
                for (joint, y) in joint.chunks_exact_mut(k).zip(whitened.data.chunks_exact(k * d)) {
                    for (c, j) in joint.iter_mut().enumerate() {
                        let q: f32 = y[c * d..(c + 1) * d]
                            .iter()
                            .zip(&offsets[c * d..(c + 1) * d])
                            .map(|(&v, &o)| (v - o) * (v - o))
                            .sum();
                        *j = self.log_norm[c] - 0.5 * q as f64;
                    }
                }
            });
    }
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
                (mean, Covariance::floored(cov, self.floor), degenerate, false)
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
    fn the_log_density_is_the_mixture_formula() {
        // A two-component 2-D mixture written by hand.
        let m = GaussianMixture::new(
            2,
            vec![0.3, 0.7],
            vec![0.0, 0.0, 1.0, -1.0],
            vec![1.0, 0.0, 0.5, 2.0, 0.5, 0.0, 0.0, 0.25],
        )
        .unwrap();
        let z = Matrix::from_vec(2, 2, vec![0.3, -0.2, 1.5, -0.75]);
        let got = m.log_densities(&z);
        for (r, &g) in got.iter().enumerate() {
            let (x, y) = (z.row(r)[0] as f64, z.row(r)[1] as f64);
            // Component 0: Σ = L Lᵀ = [[1, 0.5], [0.5, 4.25]]; component 1: diag(0.25, 0.0625).
            let gauss = |dx: f64, dy: f64, a: f64, b: f64, c: f64| {
                let det = a * c - b * b;
                let q = (c * dx * dx - 2.0 * b * dx * dy + a * dy * dy) / det;
                (-0.5 * q).exp() / (2.0 * std::f64::consts::PI * det.sqrt())
            };
            let p = 0.3 * gauss(x, y, 1.0, 0.5, 4.25) + 0.7 * gauss(x - 1.0, y + 1.0, 0.25, 0.0, 0.0625);
            assert!((g - p.ln()).abs() < 1e-5, "row {r}: {g} vs {}", p.ln());
        }
    }

    #[test]
    fn draws_follow_the_weights_means_and_spread() {
        let m = GaussianMixture::new(
            2,
            vec![0.2, 0.8],
            vec![-5.0, 0.0, 5.0, 2.0],
            vec![1.0, 0.0, 0.0, 1.0, 0.5, 0.0, 0.3, 0.4],
        )
        .unwrap();
        let z = m.sample(20_000, 1.0, &mut seeded(3));
        let right: Vec<usize> = (0..z.rows).filter(|&r| z.row(r)[0] > 0.0).collect();
        let share = right.len() as f64 / z.rows as f64;
        assert!((share - 0.8).abs() < 0.015, "{share}");
        let right = Matrix::from_vec(right.len(), 2, right.iter().flat_map(|&r| z.row(r).to_vec()).collect());
        let (mean, cov) = crate::latent::mean_and_covariance(&right);
        assert!((mean[0] - 5.0).abs() < 0.02 && (mean[1] - 2.0).abs() < 0.02, "{mean:?}");
        // Σ = L Lᵀ = [[0.25, 0.15], [0.15, 0.25]].
        assert!((cov[(0, 0)] - 0.25).abs() < 0.01, "{cov}");
        assert!((cov[(0, 1)] - 0.15).abs() < 0.01, "{cov}");
        assert!((cov[(1, 1)] - 0.25).abs() < 0.01, "{cov}");
        // Temperature 0 draws the means themselves.
        let cold = m.sample(10, 0.0, &mut seeded(3));
        assert!((0..10).all(|r| cold.row(r) == [-5.0, 0.0] || cold.row(r) == [5.0, 2.0]));
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
