//! Reconstruction losses. Both take the decoder's logits `s` and the target pixels `x` in
//! [0, 1], return the loss of each row summed over its pixels, and can write the gradient
//! with respect to the logits in the same pass (one sweep over memory instead of two).

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::activation::sigmoid;
use super::matrix::Matrix;
use super::parallel::ROWS_PER_CHUNK;

/// How a reconstruction is scored against its input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Recon {
    /// Bernoulli likelihood of each pixel, from the logits (binary cross-entropy).
    Bce,
    /// Squared error `||x - x'||²` between the input and `x' = σ(s)`.
    Mse,
}

impl Recon {
    /// The word used on the command line and in `config.json`.
    pub fn name(self) -> &'static str {
        match self {
            Recon::Bce => "bce",
            Recon::Mse => "mse",
        }
    }

    /// `log p(x | z) + loss(x, s)` for an image of `pixels` pixels: the constant that turns
    /// this loss into a negative log-likelihood.
    ///
    /// BCE is exactly the Bernoulli negative log-likelihood, so 0. The squared error is the
    /// Gaussian one with variance 1/2 per pixel, `-log N(x; x', 1/2) = (x - x')² + ½·log π`.
    pub fn log_likelihood_offset(self, pixels: usize) -> f64 {
        match self {
            Recon::Bce => 0.0,
            Recon::Mse => -0.5 * pixels as f64 * std::f64::consts::PI.ln(),
        }
    }

    /// Per-row losses into `row_loss`; when `grad` is given, also
    /// `grad = scale · ∂loss/∂s`.
    ///
    /// BCE with logits, the stable form (never `log σ(s)`):
    ///   `ℓ = max(s, 0) - s·x + log(1 + e^(-|s|))`,  `∂ℓ/∂s = σ(s) - x`.
    /// Squared error on `x' = σ(s)`:
    ///   `ℓ = (σ(s) - x)²`,  `∂ℓ/∂s = 2(σ(s) - x)·σ(s)(1 - σ(s))`.
    ///
    /// # Shapes
    /// `logits`, `target`: batch x pixels; `row_loss`: batch; `grad`: batch x pixels (reshaped).
    pub fn loss(
        self,
        logits: &Matrix,
        target: &Matrix,
        row_loss: &mut [f32],
        grad: Option<(&mut Matrix, f32)>,
    ) {
        assert_eq!(
            logits.shape(),
            target.shape(),
            "Recon::loss: logits and target differ in shape"
        );
        assert_eq!(row_loss.len(), logits.rows, "Recon::loss: one loss per row");
        let cols = logits.cols.max(1);
        let chunk = ROWS_PER_CHUNK * cols;
        match grad {
            None => {
                row_loss
                    .par_chunks_mut(ROWS_PER_CHUNK)
                    .zip(
                        logits
                            .data
                            .par_chunks(chunk)
                            .zip(target.data.par_chunks(chunk)),
                    )
                    .for_each(|(out, (s, x))| self.rows_forward(s, x, cols, out));
            }
            Some((grad, scale)) => {
                grad.reshape_for_overwrite(logits.rows, logits.cols);
                row_loss
                    .par_chunks_mut(ROWS_PER_CHUNK)
                    .zip(
                        logits
                            .data
                            .par_chunks(chunk)
                            .zip(target.data.par_chunks(chunk)),
                    )
                    .zip(grad.data.par_chunks_mut(chunk))
                    .for_each(|((out, (s, x)), g)| {
                        self.rows_forward_backward(s, x, cols, out, g, scale)
                    });
            }
        }
    }

    fn rows_forward(self, s: &[f32], x: &[f32], cols: usize, out: &mut [f32]) {
        for ((out, s), x) in out
            .iter_mut()
            .zip(s.chunks_exact(cols))
            .zip(x.chunks_exact(cols))
        {
            *out = match self {
                Recon::Bce => s.iter().zip(x).map(|(&s, &x)| bce(s, x)).sum(),
                Recon::Mse => s
                    .iter()
                    .zip(x)
                    .map(|(&s, &x)| {
                        let d = sigmoid(s) - x;
                        d * d
                    })
                    .sum(),
            };
        }
    }

    fn rows_forward_backward(
        self,
        s: &[f32],
        x: &[f32],
        cols: usize,
        out: &mut [f32],
        g: &mut [f32],
        scale: f32,
    ) {
        let rows = out
            .iter_mut()
            .zip(s.chunks_exact(cols))
            .zip(x.chunks_exact(cols))
            .zip(g.chunks_exact_mut(cols));
        for (((out, s), x), g) in rows {
            let mut total = 0.0f32;
            match self {
                Recon::Bce => {
                    for ((&s, &x), g) in s.iter().zip(x).zip(g.iter_mut()) {
                        total += bce(s, x);
                        *g = scale * (sigmoid(s) - x);
                    }
                }
                Recon::Mse => {
                    for ((&s, &x), g) in s.iter().zip(x).zip(g.iter_mut()) {
                        let y = sigmoid(s);
                        let d = y - x;
                        total += d * d;
                        *g = scale * 2.0 * d * y * (1.0 - y);
                    }
                }
            }
            *out = total;
        }
    }
}

/// `max(s, 0) - s·x + log(1 + e^(-|s|))`: binary cross-entropy of target `x` under logit `s`.
#[inline]
fn bce(s: f32, x: f32) -> f32 {
    s.max(0.0) - s * x + (-s.abs()).exp().ln_1p()
}
