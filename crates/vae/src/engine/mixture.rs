//! A mixture of diagonal Gaussians over the latent space: the density of a learned prior
//! (a mixture with learned means, variances and weights, or the VampPrior's mixture of the
//! encoder's posteriors at its pseudo-inputs), its samples, and the backward pass of
//! `-log p(z)` into the codes and into every component's parameters.
//!
//!   `log N_k(z) = -½ Σ_j (log 2π + lv_kj + (z_j - m_kj)² e^(-lv_kj))`
//!   `log p(z)   = log Σ_k e^(a_k + log N_k(z))`, `a_k` the log-weights (`Σ_k e^(a_k) = 1`).

use rand::{Rng, RngExt};

use super::Matrix;
use super::matmul::{Op, matmul};

const LOG_2PI: f32 = 1.837_877_1;

/// K diagonal Gaussians over D dimensions and their log-weights.
#[derive(Clone, Debug, PartialEq)]
pub struct DiagonalMixture {
    /// `a_k`, summing to 1 once exponentiated. K values.
    pub log_weights: Vec<f32>,
    /// `m_k`, one row per component: K x D.
    pub means: Matrix,
    /// `lv_k = log σ_k²`, one row per component: K x D.
    pub logvars: Matrix,
}

/// `log Σ_k e^(v_k)` of `values`, and each `e^(v_k)` divided by that sum written back into
/// `values` (the softmax): the log-sum-exp and its gradient in one pass.
fn log_sum_exp_softmax(values: &mut [f32]) -> f32 {
    let max = values.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0f32;
    for v in values.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    for v in values.iter_mut() {
        *v /= sum;
    }
    max + sum.ln()
}

/// The pieces of every component's log-density that do not depend on the code, so that the
/// log-densities of a batch are one matrix product:
///
///   `a_k + log N_k(z) = c_k - ½ (z² · p_k - 2 z · (m_k ⊙ p_k))`,
///   `p_k = e^(-lv_k)`, `c_k = a_k - ½ Σ_j (log 2π + lv_kj + m_kj² p_kj)`.
struct Expanded {
    /// K x 2D: `[p_k, -2 m_k ⊙ p_k]`, the weights on `[z², z]`.
    weights: Matrix,
    /// K x D: `p_k`.
    precisions: Matrix,
    /// K.
    constants: Vec<f32>,
}

/// `[z², z]` of every row: rows x 2D.
fn squares_and_values(z: &Matrix) -> Matrix {
    let d = z.cols;
    let mut q = Matrix::zeros(z.rows, 2 * d);
    for r in 0..z.rows {
        let (zr, qr) = (z.row(r), &mut q.data[r * 2 * d..(r + 1) * 2 * d]);
        for j in 0..d {
            qr[j] = zr[j] * zr[j];
            qr[d + j] = zr[j];
        }
    }
    q
}

impl DiagonalMixture {
    pub fn components(&self) -> usize {
        self.means.rows
    }

    pub fn dims(&self) -> usize {
        self.means.cols
    }

    fn expanded(&self) -> Expanded {
        let (k_count, d) = (self.components(), self.dims());
        let mut weights = Matrix::zeros(k_count, 2 * d);
        let mut precisions = Matrix::zeros(k_count, d);
        let mut constants = Vec::with_capacity(k_count);
        for k in 0..k_count {
            let (m, lv) = (self.means.row(k), self.logvars.row(k));
            let mut c = 0.0f32;
            for j in 0..d {
                let p = (-lv[j]).exp();
                precisions.data[k * d + j] = p;
                weights.data[k * 2 * d + j] = p;
                weights.data[k * 2 * d + d + j] = -2.0 * m[j] * p;
                c += LOG_2PI + lv[j] + m[j] * m[j] * p;
            }
            constants.push(self.log_weights[k] - 0.5 * c);
        }
        Expanded {
            weights,
            precisions,
            constants,
        }
    }

    /// `a_k + log N_k(z_r)` of every row and component: rows x K.
    fn component_log_densities(&self, z: &Matrix, e: &Expanded) -> Matrix {
        let mut s = Matrix::default();
        matmul(&mut s, &squares_and_values(z), Op::N, &e.weights, Op::T, false);
        for row in s.data.chunks_exact_mut(self.components().max(1)) {
            for (v, &c) in row.iter_mut().zip(&e.constants) {
                *v = c - 0.5 * *v;
            }
        }
        s
    }

    /// `log p(z)` of one code.
    pub fn log_density(&self, z: &[f32]) -> f64 {
        let mut out = [0.0];
        self.log_densities(&Matrix::from_vec(1, z.len(), z.to_vec()), &mut out);
        out[0] as f64
    }

    /// `log p(z)` of every row of `z`, into `out`.
    pub fn log_densities(&self, z: &Matrix, out: &mut [f32]) {
        assert_eq!(z.cols, self.dims(), "log_densities: z has the wrong width");
        let mut s = self.component_log_densities(z, &self.expanded());
        for (o, row) in out.iter_mut().zip(s.data.chunks_exact_mut(self.components().max(1))) {
            *o = log_sum_exp_softmax(row);
        }
    }

    /// `n` codes: a component drawn by weight, then `m_k + T·σ_k ⊙ ε`, `ε ~ N(0, I)` (`T` the
    /// temperature: below 1 draws closer to each component's mean).
    pub fn sample(&self, n: usize, temperature: f32, rng: &mut impl Rng) -> Matrix {
        let mut cumulative: Vec<f64> = self.log_weights.iter().map(|&a| (a as f64).exp()).collect();
        for k in 1..cumulative.len() {
            cumulative[k] += cumulative[k - 1];
        }
        let total = cumulative.last().copied().unwrap_or(1.0);
        let dims = self.dims();
        let eps = Matrix::standard_normal(n, dims, rng);
        let mut z = Matrix::zeros(n, dims);
        for r in 0..n {
            let u = rng.random::<f64>() * total;
            let k = cumulative.partition_point(|&c| c <= u).min(cumulative.len() - 1);
            let (m, lv) = (self.means.row(k), self.logvars.row(k));
            for j in 0..dims {
                z.data[r * dims + j] = m[j] + temperature * (0.5 * lv[j]).exp() * eps.data[r * dims + j];
            }
        }
        z
    }

    /// Backward of `L = Σ_r w_r · (-log p(z_r))`. With `γ_rk = e^(a_k + log N_k(z_r)) / p(z_r)`
    /// (component k's responsibility for code r), `W_rk = w_r γ_rk`, `S_k = Σ_r W_rk`:
    ///
    ///   `∂L/∂z_r  = Σ_k W_rk (z_r - m_k) ⊙ p_k`                 `= z ⊙ (W P) - W (M ⊙ P)`
    ///   `∂L/∂m_k  = -Σ_r W_rk (z_r - m_k) ⊙ p_k`                `= -p_k ⊙ ((Wᵀ Z)_k - S_k m_k)`
    ///   `∂L/∂lv_k = Σ_r W_rk · ½ (1 - (z_r - m_k)² ⊙ p_k)`
    ///             `= ½ (S_k - p_k ⊙ ((Wᵀ Z²)_k - 2 m_k ⊙ (Wᵀ Z)_k + S_k m_k²))`
    ///   `∂L/∂a_k  = -S_k`
    ///
    /// each a matrix product over the batch. Everything is written, not added to.
    ///
    /// # Shapes
    /// `z`, `dz`: rows x D; `row_weight`: rows; `dmeans`, `dlogvars`: K x D (reshaped);
    /// `dlog_weights`: K (resized).
    pub fn neg_log_density_backward(
        &self,
        z: &Matrix,
        row_weight: &[f32],
        dz: &mut Matrix,
        dmeans: &mut Matrix,
        dlogvars: &mut Matrix,
        dlog_weights: &mut Vec<f32>,
    ) {
        assert_eq!(z.cols, self.dims(), "neg_log_density_backward: z has the wrong width");
        assert_eq!(row_weight.len(), z.rows, "neg_log_density_backward: one weight per row");
        let (k_count, d) = (self.components(), self.dims());
        let e = self.expanded();
        // W = diag(w) Γ.
        let mut w = self.component_log_densities(z, &e);
        for (row, &wr) in w.data.chunks_exact_mut(k_count.max(1)).zip(row_weight) {
            log_sum_exp_softmax(row);
            for v in row.iter_mut() {
                *v *= wr;
            }
        }
        let mut mp = self.means.clone();
        for (v, &p) in mp.data.iter_mut().zip(&e.precisions.data) {
            *v *= p;
        }
        let (mut wp, mut wmp) = (Matrix::default(), Matrix::default());
        matmul(&mut wp, &w, Op::N, &e.precisions, Op::N, false);
        matmul(&mut wmp, &w, Op::N, &mp, Op::N, false);
        dz.reshape_for_overwrite(z.rows, d);
        for i in 0..z.data.len() {
            dz.data[i] = z.data[i] * wp.data[i] - wmp.data[i];
        }
        let q = squares_and_values(z);
        // Wᵀ [Z², Z]: K x 2D, the squares' sums then the values'.
        let mut wq = Matrix::default();
        matmul(&mut wq, &w, Op::T, &q, Op::N, false);
        let mut s = vec![0.0f32; k_count];
        for row in w.data.chunks_exact(k_count.max(1)) {
            for (s, &v) in s.iter_mut().zip(row) {
                *s += v;
            }
        }
        dmeans.reshape_for_overwrite(k_count, d);
        dlogvars.reshape_for_overwrite(k_count, d);
        for (k, &s_k) in s.iter().enumerate() {
            let (m, p) = (self.means.row(k), e.precisions.row(k));
            let (a2, a) = (
                &wq.data[k * 2 * d..k * 2 * d + d],
                &wq.data[k * 2 * d + d..(k + 1) * 2 * d],
            );
            for j in 0..d {
                dmeans.data[k * d + j] = -p[j] * (a[j] - s_k * m[j]);
                dlogvars.data[k * d + j] = 0.5 * (s_k - p[j] * (a2[j] - 2.0 * m[j] * a[j] + s_k * m[j] * m[j]));
            }
        }
        dlog_weights.clear();
        dlog_weights.extend(s.iter().map(|&s| -s));
    }
}

/// `log softmax(logits)`: log-weights from unconstrained logits.
pub fn log_softmax(logits: &[f32]) -> Vec<f32> {
    let mut p = logits.to_vec();
    let lse = log_sum_exp_softmax(&mut p);
    logits.iter().map(|&l| l - lse).collect()
}

/// Backward of [`log_softmax`]: given `∂L/∂a` at `a = log softmax(l)`,
/// `∂L/∂l_j = ∂L/∂a_j - softmax(l)_j · Σ_k ∂L/∂a_k`.
pub fn log_softmax_backward(logits: &[f32], da: &[f32], dl: &mut [f32]) {
    let mut p = logits.to_vec();
    log_sum_exp_softmax(&mut p);
    let total: f32 = da.iter().sum();
    for ((d, &a), &p) in dl.iter_mut().zip(da).zip(&p) {
        *d = a - p * total;
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_xoshiro::Xoshiro256PlusPlus;

    use super::*;

    fn mixture() -> DiagonalMixture {
        DiagonalMixture {
            log_weights: log_softmax(&[0.3, -0.2, 0.5]),
            means: Matrix::from_vec(3, 2, vec![0.0, 1.0, -1.0, 0.5, 2.0, -0.5]),
            logvars: Matrix::from_vec(3, 2, vec![0.0, -0.5, 0.3, 0.1, -1.0, 0.4]),
        }
    }

    #[test]
    fn one_component_is_the_diagonal_normal_density() {
        // N((1, -1), diag(e^0.5, e^-0.2)) at (0.5, 0): the log-density by hand.
        let m = DiagonalMixture {
            log_weights: vec![0.0],
            means: Matrix::from_vec(1, 2, vec![1.0, -1.0]),
            logvars: Matrix::from_vec(1, 2, vec![0.5, -0.2]),
        };
        let want =
            -0.5 * ((2.0 * std::f64::consts::PI).ln() * 2.0 + 0.5 + 0.25 * (-0.5f64).exp() + -0.2 + 1.0 * 0.2f64.exp());
        assert!((m.log_density(&[0.5, 0.0]) - want).abs() < 1e-5);
    }

    #[test]
    fn the_backward_pass_matches_finite_differences() {
        let mix = mixture();
        let z = Matrix::from_vec(2, 2, vec![0.4, 0.2, -0.7, 1.1]);
        let w = [0.7f32, 1.3];
        let loss = |mix: &DiagonalMixture, z: &Matrix| -> f64 {
            (0..z.rows).map(|r| -(w[r] as f64) * mix.log_density(z.row(r))).sum()
        };
        let (mut dz, mut dm, mut dlv, mut da) = Default::default();
        mix.neg_log_density_backward(&z, &w, &mut dz, &mut dm, &mut dlv, &mut da);
        let h = 1e-3f32;
        let numeric = |up: f64, down: f64| (up - down) / (2.0 * h as f64);
        let close = |a: f32, n: f64, what: &str| {
            assert!((a as f64 - n).abs() < 2e-3 * (1.0 + n.abs()), "{what}: {a} vs {n}");
        };
        for i in 0..z.data.len() {
            let (mut up, mut down) = (z.clone(), z.clone());
            up.data[i] += h;
            down.data[i] -= h;
            close(dz.data[i], numeric(loss(&mix, &up), loss(&mix, &down)), "z");
        }
        for i in 0..mix.means.data.len() {
            for (which, grad) in [(0, &dm), (1, &dlv)] {
                let (mut up, mut down) = (mix.clone(), mix.clone());
                let (u, d) = if which == 0 {
                    (&mut up.means, &mut down.means)
                } else {
                    (&mut up.logvars, &mut down.logvars)
                };
                u.data[i] += h;
                d.data[i] -= h;
                close(grad.data[i], numeric(loss(&up, &z), loss(&down, &z)), "component");
            }
        }
        // The log-weights through the softmax of their logits.
        let logits = [0.3f32, -0.2, 0.5];
        let mut dl = [0.0f32; 3];
        log_softmax_backward(&logits, &da, &mut dl);
        for k in 0..3 {
            let at = |shift: f32| {
                let mut l = logits;
                l[k] += shift;
                loss(
                    &DiagonalMixture {
                        log_weights: log_softmax(&l),
                        ..mix.clone()
                    },
                    &z,
                )
            };
            close(dl[k], numeric(at(h), at(-h)), "logit");
        }
    }

    #[test]
    fn samples_follow_the_weights_and_the_components() {
        // Two components far apart in 2-D, weights 1 : 3 (given unnormalised: the draw
        // normalises), each dimension with its own spread, drawn at temperature 0.5.
        let mix = DiagonalMixture {
            log_weights: vec![0.0, 3f32.ln()],
            means: Matrix::from_vec(2, 2, vec![-10.0, 5.0, 10.0, -5.0]),
            logvars: Matrix::from_vec(2, 2, vec![4f32.ln(), 0.0, 0.0, 9f32.ln()]),
        };
        let n = 8000;
        let z = mix.sample(n, 0.5, &mut Xoshiro256PlusPlus::seed_from_u64(3));
        // σ·T per component and dimension: (2, 1)·0.5 and (1, 3)·0.5.
        let expected = [([-10.0, 5.0], [1.0, 0.5]), ([10.0, -5.0], [0.5, 1.5])];
        let mut right = 0;
        for (k, (mean, sd)) in expected.iter().enumerate() {
            let rows: Vec<&[f32]> = (0..n).map(|r| z.row(r)).filter(|r| (r[0] > 0.0) == (k == 1)).collect();
            if k == 1 {
                right = rows.len();
            }
            for j in 0..2 {
                let m = rows.iter().map(|r| r[j] as f64).sum::<f64>() / rows.len() as f64;
                let v = rows.iter().map(|r| (r[j] as f64 - m).powi(2)).sum::<f64>() / rows.len() as f64;
                assert!((m - mean[j]).abs() < 0.1, "component {k}, dim {j}: mean {m}");
                assert!(
                    (v.sqrt() - sd[j]).abs() < 0.06 * sd[j],
                    "component {k}, dim {j}: sd {}",
                    v.sqrt()
                );
            }
        }
        let share = right as f64 / n as f64;
        assert!((share - 0.75).abs() < 0.02, "{share}");
    }
}
