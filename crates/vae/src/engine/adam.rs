//! Adam (Kingma & Ba 2015), as PyTorch's `torch.optim.Adam` computes it, over any list of
//! parameters. The moments are kept per parameter, in the order the model lists them.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::fastmath::simd_kernel;
use super::linear::Param;
use super::matrix::Matrix;

/// Adam's hyper-parameters.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct AdamConfig {
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
}

impl Default for AdamConfig {
    /// PyTorch's defaults.
    fn default() -> Self {
        AdamConfig {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        }
    }
}

/// The optimizer: its settings, how many steps it has taken, and the first and second
/// moment estimates of every parameter.
#[derive(Clone, Debug)]
pub struct Adam {
    pub config: AdamConfig,
    pub step: u64,
    /// First moments, one per parameter.
    pub m: Vec<Matrix>,
    /// Second moments, one per parameter.
    pub v: Vec<Matrix>,
}

/// Elements per parallel chunk of the update.
const CHUNK: usize = 16 * 1024;

impl Adam {
    /// A fresh optimizer for parameters of these shapes.
    pub fn new(config: AdamConfig, shapes: &[(usize, usize)]) -> Self {
        let zeros = || shapes.iter().map(|&(r, c)| Matrix::zeros(r, c)).collect();
        Adam {
            config,
            step: 0,
            m: zeros(),
            v: zeros(),
        }
    }

    /// One step, with `t` the step count after increment:
    ///
    ///   `m ← β₁m + (1-β₁)g`,  `v ← β₂v + (1-β₂)g²`,
    ///   `θ ← θ - lr · (m / (1-β₁ᵗ)) / (sqrt(v / (1-β₂ᵗ)) + ε)`.
    ///
    /// # Panics
    /// If `params` does not match the shapes the optimizer was made for (a bug).
    pub fn update(&mut self, params: &mut [&mut Param]) {
        assert_eq!(params.len(), self.m.len(), "Adam::update: parameter count changed");
        self.step += 1;
        let AdamConfig { lr, beta1, beta2, eps } = self.config;
        let t = self.step as i32;
        let bias1 = 1.0 - beta1.powi(t);
        let bias2_sqrt = (1.0 - beta2.powi(t)).sqrt();
        let step = AdamStep {
            beta1,
            beta2,
            eps,
            step_size: lr / bias1,
            bias2_sqrt,
        };
        // Every parameter's chunks in one parallel loop: one hand-off to the threads per
        // step instead of one per parameter, most of which (the biases) are a single chunk.
        let mut chunks = Vec::new();
        for ((p, m), v) in params.iter_mut().zip(&mut self.m).zip(&mut self.v) {
            assert_eq!(p.value.shape(), m.shape(), "Adam::update: parameter shape changed");
            let Param { value, grad, .. } = &mut **p;
            let theta = value.data.chunks_mut(CHUNK);
            let moments = m.data.chunks_mut(CHUNK).zip(v.data.chunks_mut(CHUNK));
            chunks.extend(theta.zip(grad.data.chunks(CHUNK)).zip(moments));
        }
        chunks
            .into_par_iter()
            .for_each(|((theta, g), (m, v))| adam_chunk(theta, g, m, v, step));
    }
}

/// The per-step constants of the update.
#[derive(Clone, Copy)]
struct AdamStep {
    beta1: f32,
    beta2: f32,
    eps: f32,
    /// `lr / (1 - β₁ᵗ)`.
    step_size: f32,
    /// `sqrt(1 - β₂ᵗ)`.
    bias2_sqrt: f32,
}

#[inline(always)]
fn adam_chunk_kernel(theta: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], c: AdamStep) {
    let n = theta.len().min(g.len()).min(m.len()).min(v.len());
    let (theta, g, m, v) = (&mut theta[..n], &g[..n], &mut m[..n], &mut v[..n]);
    for i in 0..n {
        let g = g[i];
        m[i] = c.beta1 * m[i] + (1.0 - c.beta1) * g;
        v[i] = c.beta2 * v[i] + (1.0 - c.beta2) * g * g;
        let denom = v[i].sqrt() / c.bias2_sqrt + c.eps;
        theta[i] -= c.step_size * m[i] / denom;
    }
}

simd_kernel! { fn adam_chunk(theta: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], c: AdamStep) = adam_chunk_kernel; }

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_step_moves_each_weight_by_lr_against_its_gradient_sign() {
        // After one step m̂ = g and v̂ = g², so the update is lr · g / (|g| + ε) ≈ lr · sign(g).
        let mut p = Param::new(Matrix::from_vec(1, 3, vec![1.0, 2.0, 3.0]));
        p.grad = Matrix::from_vec(1, 3, vec![0.5, -2.0, 0.0]);
        let mut adam = Adam::new(AdamConfig::default(), &[(1, 3)]);
        adam.update(&mut [&mut p]);
        let expected = [1.0 - 1e-3, 2.0 + 1e-3, 3.0];
        for (v, e) in p.value.data.iter().zip(expected) {
            assert!((v - e).abs() < 1e-6, "{v} vs {e}");
        }
        assert_eq!(adam.step, 1);
    }

    #[test]
    fn three_steps_match_the_formula_computed_by_hand() {
        // Expected values: the update of the doc comment evaluated step by step in double
        // precision (Python, math.sqrt), lr 0.1, PyTorch's β₁ 0.9, β₂ 0.999, ε 1e-8. After one
        // step bias correction makes every move lr·sign(g); the second and third steps tell
        // the moments apart (swapping β₁ and β₂ gives 0.89471, -0.35666 after three).
        let mut p = Param::new(Matrix::from_vec(1, 2, vec![1.0, -0.5]));
        let config = AdamConfig {
            lr: 0.1,
            ..AdamConfig::default()
        };
        let mut adam = Adam::new(config, &[(1, 2)]);
        let steps = [
            ([0.5, -2.0], [0.900000002, -0.4000000005]),
            ([-1.0, 0.25], [0.9366103542405654, -0.34274654332895554]),
            ([2.0, 3.0], [0.8946447927181046, -0.37112377589765777]),
        ];
        for (t, (grad, expected)) in steps.into_iter().enumerate() {
            p.grad = Matrix::from_vec(1, 2, grad.to_vec());
            adam.update(&mut [&mut p]);
            for (v, e) in p.value.data.iter().zip(expected) {
                assert!((*v as f64 - e).abs() < 2e-6, "step {}: {v} vs {e}", t + 1);
            }
        }
    }

    #[test]
    fn epsilon_keeps_the_step_of_a_vanishing_gradient_small() {
        // After one step the move is lr·g / (|g| + ε): for g = 1e-10, far below ε = 1e-8,
        // that is 1e-3 · 1e-10 / 1.01e-8 = 9.9e-6 against the gradient, not lr.
        let mut p = Param::new(Matrix::from_vec(1, 1, vec![1.0]));
        p.grad = Matrix::from_vec(1, 1, vec![1e-10]);
        let mut adam = Adam::new(AdamConfig::default(), &[(1, 1)]);
        adam.update(&mut [&mut p]);
        let moved = 1.0 - p.value.data[0] as f64;
        assert!((moved - 9.9e-6).abs() < 3e-7, "moved by {moved}");
    }
}
