//! A Gaussian mixture with full covariances over codes: what a fitted sampler draws from.
//!
//!   `p(z) = Σ_k π_k N(z; μ_k, Σ_k)`,   `Σ_k = L_k L_kᵀ` (Cholesky, `L_k` lower triangular),
//!
//!   `log N(z; μ, Σ) = -½ (D log 2π + 2 Σ_i log L_ii + ||L⁻¹(z - μ)||²)`: the whitened
//!   `L_k⁻¹(z - μ_k)` of every code and component is one matrix product, `Z · [W_1 … W_K]`
//!   with `W_k = L_k⁻ᵀ`, less the row `μ_k W_k` ([`Whitening`]).
//!
//! Its parts, read back from a file, are checked ([`GaussianMixture::new`]); fitting it by EM
//! is [`em`]'s.

mod em;

pub use em::{COVARIANCE_FLOOR, GmmFit, GmmOptions, MAX_ITERATIONS};

use nalgebra::DMatrix;
use rand::{Rng, RngExt};
use rayon::prelude::*;

use crate::engine::Matrix;
use crate::engine::matmul::{MatView, Op, matmul_views_here};
use crate::error::{Error, Result};

/// Most components of one mixture: each holds a `D x D` covariance, and the E-step is
/// `N x K x D²` work.
pub const MAX_COMPONENTS: usize = 1_000;
/// Widest code a full-covariance mixture is fitted to (`K·D²` parameters).
pub const MAX_DIMS: usize = 256;
/// Largest mean or Cholesky entry a mixture read from a file may hold.
pub const MAX_MAGNITUDE: f64 = 1e12;
/// Codes per matrix product of the E-step: bounds its memory (`rows x K·D` values).
const ROWS_PER_PASS: usize = 2048;

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
}

/// `log Σ exp(v)`, stable.
fn log_sum_exp(v: &[f64]) -> f64 {
    let top = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if top == f64::NEG_INFINITY {
        return top;
    }
    top + v.iter().map(|x| (x - top).exp()).sum::<f64>().ln()
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::seeded;

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
}
