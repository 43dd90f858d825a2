//! Adam (Kingma & Ba 2015), as PyTorch's `torch.optim.Adam` computes it, over any list of
//! parameters. The moments are kept per parameter, in the order the model lists them.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

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
        assert_eq!(
            params.len(),
            self.m.len(),
            "Adam::update: parameter count changed"
        );
        self.step += 1;
        let AdamConfig {
            lr,
            beta1,
            beta2,
            eps,
        } = self.config;
        let t = self.step as i32;
        let bias1 = 1.0 - beta1.powi(t);
        let bias2_sqrt = (1.0 - beta2.powi(t)).sqrt();
        let step_size = lr / bias1;
        for ((p, m), v) in params.iter_mut().zip(&mut self.m).zip(&mut self.v) {
            assert_eq!(
                p.value.shape(),
                m.shape(),
                "Adam::update: parameter shape changed"
            );
            p.value
                .data
                .par_chunks_mut(CHUNK)
                .zip(p.grad.data.par_chunks(CHUNK))
                .zip(
                    m.data
                        .par_chunks_mut(CHUNK)
                        .zip(v.data.par_chunks_mut(CHUNK)),
                )
                .for_each(|((theta, g), (m, v))| {
                    for i in 0..theta.len() {
                        let g = g[i];
                        m[i] = beta1 * m[i] + (1.0 - beta1) * g;
                        v[i] = beta2 * v[i] + (1.0 - beta2) * g * g;
                        let denom = v[i].sqrt() / bias2_sqrt + eps;
                        theta[i] -= step_size * m[i] / denom;
                    }
                });
        }
    }
}
