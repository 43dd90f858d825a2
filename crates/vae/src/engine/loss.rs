//! Reconstruction losses. Each takes the decoder's outputs `s` (logits of pixels in [0, 1]
//! for BCE and MSE, means of real values for the Gaussian) and the targets `x`, returns the
//! loss of each row summed over its values, and can write the gradient with respect to `s`
//! in the same pass (one sweep over memory instead of two).

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::activation::{sigmoid, sigmoid_from};
use super::fastmath::{exp_nonpositive, ln_1p_unit, simd_kernel, sum_lanes};
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
    /// A Gaussian `N(x; s, e^v)` of each real value, its log-variance `v` learned per
    /// dimension: for vectors that are not intensities in [0, 1].
    Gaussian,
}

/// The learned log-variances of [`Recon::Gaussian`] are used clamped to this range (a
/// standard deviation from 0.01 to 100 of a standardised value): a dimension the decoder
/// predicts exactly would otherwise drive its variance, and the loss, to minus infinity.
pub const GAUSSIAN_LOGVAR_RANGE: (f32, f32) = (-9.2, 9.2);

/// `½·ln 2π`: the Gaussian's normalising constant per value.
const HALF_LN_TWO_PI: f32 = 0.918_938_5;

impl Recon {
    /// The word on the command line and in `config.json`.
    pub fn name(self) -> &'static str {
        match self {
            Recon::Bce => "bce",
            Recon::Mse => "mse",
            Recon::Gaussian => "gaussian",
        }
    }

    /// Whether it models values in [0, 1] (pixel intensities) through a sigmoid of `s`.
    pub fn is_for_intensities(self) -> bool {
        !matches!(self, Recon::Gaussian)
    }

    /// `log p(x | z) + loss(x, s)` for an image of `pixels` pixels: the constant that turns
    /// this loss into a negative log-likelihood.
    ///
    /// BCE is exactly the Bernoulli negative log-likelihood, so 0; so is the Gaussian's. The
    /// squared error is the Gaussian one with variance 1/2 per pixel,
    /// `-log N(x; x', 1/2) = (x - x')² + ½·log π`.
    pub fn log_likelihood_offset(self, pixels: usize) -> f64 {
        match self {
            Recon::Bce | Recon::Gaussian => 0.0,
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
    /// Gaussian with log-variance `v` (`logvar`, clamped to [`GAUSSIAN_LOGVAR_RANGE`]):
    ///   `ℓ = ½·((x - s)²·e^(-v) + v + ln 2π)`,  `∂ℓ/∂s = (s - x)·e^(-v)`
    /// (for `∂ℓ/∂v` see [`gaussian_logvar_grad`]).
    ///
    /// # Shapes
    /// `logits`, `target`: batch x pixels; `logvar`: pixels for the Gaussian, else unused;
    /// `row_loss`: batch; `grad`: batch x pixels (reshaped).
    pub fn loss(
        self,
        logits: &Matrix,
        target: &Matrix,
        logvar: &[f32],
        row_loss: &mut [f32],
        grad: Option<(&mut Matrix, f32)>,
    ) {
        assert_eq!(
            logits.shape(),
            target.shape(),
            "Recon::loss: logits and target differ in shape"
        );
        assert_eq!(row_loss.len(), logits.rows, "Recon::loss: one loss per row");
        match grad {
            None => self.row_losses(logits, Targets::Rows(target), logvar, row_loss),
            Some(_) if self == Recon::Gaussian => {
                assert_eq!(logvar.len(), logits.cols, "Recon::loss: one log-variance per value");
                gaussian_loss(logits, Targets::Rows(target), logvar, row_loss, grad);
            }
            Some((grad, scale)) => {
                let cols = logits.cols.max(1);
                let chunk = ROWS_PER_CHUNK * cols;
                let rows = row_loss
                    .par_chunks_mut(ROWS_PER_CHUNK)
                    .zip(logits.data.par_chunks(chunk).zip(target.data.par_chunks(chunk)));
                grad.reshape_for_overwrite(logits.rows, logits.cols);
                rows.zip(grad.data.par_chunks_mut(chunk))
                    .for_each(|((out, (s, x)), g)| {
                        let rows = out.iter_mut().zip(s.chunks_exact(cols)).zip(x.chunks_exact(cols));
                        for (((out, s), x), g) in rows.zip(g.chunks_exact_mut(cols)) {
                            *out = match self {
                                Recon::Bce => bce_row_grad(s, x, g, scale),
                                Recon::Mse | Recon::Gaussian => mse_row_grad(s, x, g, scale),
                            };
                        }
                    });
            }
        }
    }

    /// [`Recon::loss`] without the gradient, row `r` of `logits` scored against row
    /// `r / each` of `targets`: the draws of one image against that image, its pixels read
    /// once from cache instead of copied once per draw.
    ///
    /// # Shapes
    /// `logits`: (images · each) x pixels; `targets`: images x pixels; `row_loss`: images · each.
    pub fn loss_of_draws(self, logits: &Matrix, targets: &Matrix, each: usize, logvar: &[f32], row_loss: &mut [f32]) {
        assert_eq!(
            logits.cols, targets.cols,
            "Recon::loss_of_draws: logits and targets differ in width"
        );
        assert_eq!(
            logits.rows,
            targets.rows * each,
            "Recon::loss_of_draws: `each` rows per target"
        );
        assert_eq!(row_loss.len(), logits.rows, "Recon::loss_of_draws: one loss per row");
        self.row_losses(logits, Targets::Repeated { rows: targets, each }, logvar, row_loss);
    }

    /// The loss of every row of `logits` against its row of `targets`.
    fn row_losses(self, logits: &Matrix, targets: Targets, logvar: &[f32], row_loss: &mut [f32]) {
        if self == Recon::Gaussian {
            assert_eq!(logvar.len(), logits.cols, "Recon::loss: one log-variance per value");
            return gaussian_loss(logits, targets, logvar, row_loss, None);
        }
        let cols = logits.cols.max(1);
        row_loss
            .par_chunks_mut(ROWS_PER_CHUNK)
            .zip(logits.data.par_chunks(ROWS_PER_CHUNK * cols))
            .enumerate()
            .for_each(|(chunk, (out, s))| {
                for (i, (out, s)) in out.iter_mut().zip(s.chunks_exact(cols)).enumerate() {
                    let x = targets.row(chunk * ROWS_PER_CHUNK + i);
                    *out = match self {
                        Recon::Bce => bce_row(s, x),
                        Recon::Mse | Recon::Gaussian => mse_row(s, x),
                    };
                }
            });
    }
}

/// Where the target of each scored row is.
#[derive(Clone, Copy)]
enum Targets<'a> {
    /// Row `r` against row `r`.
    Rows(&'a Matrix),
    /// Row `r` against row `r / each`.
    Repeated { rows: &'a Matrix, each: usize },
}

impl Targets<'_> {
    fn row(&self, r: usize) -> &[f32] {
        match *self {
            Targets::Rows(m) => m.row(r),
            Targets::Repeated { rows, each } => rows.row(r / each),
        }
    }
}

/// The Gaussian loss of [`Recon::loss`]: vectors are short, so a plain loop.
fn gaussian_loss(
    means: &Matrix,
    target: Targets,
    logvar: &[f32],
    row_loss: &mut [f32],
    mut grad: Option<(&mut Matrix, f32)>,
) {
    let cols = means.cols;
    let (low, high) = GAUSSIAN_LOGVAR_RANGE;
    let v: Vec<f32> = logvar.iter().map(|&v| v.clamp(low, high)).collect();
    let precision: Vec<f32> = v.iter().map(|&v| (-v).exp()).collect();
    let constant: f32 = v.iter().map(|&v| 0.5 * v + HALF_LN_TWO_PI).sum();
    if let Some((g, _)) = grad.as_mut() {
        g.reshape_for_overwrite(means.rows, cols);
    }
    for (r, out) in row_loss.iter_mut().enumerate() {
        let (s, x) = (means.row(r), target.row(r));
        let mut sum = 0.0f32;
        for ((&s, &x), &p) in s.iter().zip(x).zip(&precision) {
            let d = s - x;
            sum += 0.5 * d * d * p;
        }
        *out = sum + constant;
        if let Some((g, scale)) = grad.as_mut() {
            for (((g, &s), &x), &p) in g.row_mut(r).iter_mut().zip(s).zip(x).zip(&precision) {
                *g = *scale * (s - x) * p;
            }
        }
    }
}

/// `∂L/∂v` of the Gaussian's log-variances, from the gradient `G = ∂L/∂s` the loss (and
/// any weighting of its rows) left: each row's `∂ℓ/∂v = ½ - ½·(x - s)²·e^(-v)`, and
/// `(x - s)²·e^(-v) = (s - x)·∂ℓ/∂s`, so with rows weighted by `c_r`,
///   `∂L/∂v_d = ½·Σ_r c_r - ½·Σ_r (s_rd - x_rd)·G_rd`.
/// Zero where `v` lies outside [`GAUSSIAN_LOGVAR_RANGE`] (the clamp holds it there).
///
/// # Shapes
/// `means`, `target`, `grad_means`: batch x values; `logvar`, `out`: values.
pub fn gaussian_logvar_grad(
    means: &Matrix,
    target: &Matrix,
    grad_means: &Matrix,
    logvar: &[f32],
    total_row_weight: f32,
    out: &mut [f32],
) {
    let (low, high) = GAUSSIAN_LOGVAR_RANGE;
    for (d, (out, &v)) in out.iter_mut().zip(logvar).enumerate() {
        if !(low..=high).contains(&v) {
            *out = 0.0;
            continue;
        }
        let mut sum = 0.0f64;
        for r in 0..means.rows {
            let i = r * means.cols + d;
            sum += ((means.data[i] - target.data[i]) * grad_means.data[i]) as f64;
        }
        *out = 0.5 * total_row_weight - 0.5 * sum as f32;
    }
}

/// `max(s, 0) - s·x + log(1 + e^(-|s|))`: binary cross-entropy of target `x` under logit `s`.
#[inline(always)]
fn bce(s: f32, x: f32) -> f32 {
    s.max(0.0) - s * x + ln_1p_unit(exp_nonpositive(-s.abs()))
}

/// `(σ(s) - x)²`.
#[inline(always)]
fn squared_error(s: f32, x: f32) -> f32 {
    let d = sigmoid(s) - x;
    d * d
}

#[inline(always)]
fn bce_row_kernel(s: &[f32], x: &[f32]) -> f32 {
    sum_lanes(s, x, bce)
}

#[inline(always)]
fn mse_row_kernel(s: &[f32], x: &[f32]) -> f32 {
    sum_lanes(s, x, squared_error)
}

/// The BCE of a row and, into `g`, `scale · (σ(s) - x)`, sharing `e^(-|s|)` between the two.
#[inline(always)]
fn bce_row_grad_kernel(s: &[f32], x: &[f32], g: &mut [f32], scale: f32) -> f32 {
    let mut acc = [0.0f32; 8];
    let (mut sc, mut xc, mut gc) = (s.chunks_exact(8), x.chunks_exact(8), g.chunks_exact_mut(8));
    for ((s8, x8), g8) in (&mut sc).zip(&mut xc).zip(&mut gc) {
        let (s8, x8, g8): (&[f32; 8], &[f32; 8], &mut [f32; 8]) =
            (s8.try_into().unwrap(), x8.try_into().unwrap(), g8.try_into().unwrap());
        for l in 0..8 {
            let (s, x) = (s8[l], x8[l]);
            let e = exp_nonpositive(-s.abs());
            g8[l] = scale * (sigmoid_from(s, e) - x);
            acc[l] += s.max(0.0) - s * x + ln_1p_unit(e);
        }
    }
    let mut tail = 0.0;
    for ((&s, &x), g) in sc.remainder().iter().zip(xc.remainder()).zip(gc.into_remainder()) {
        *g = scale * (sigmoid(s) - x);
        tail += bce(s, x);
    }
    acc.iter().sum::<f32>() + tail
}

/// The squared error of a row and, into `g`, `scale · 2(σ(s) - x)·σ(s)(1 - σ(s))`.
#[inline(always)]
fn mse_row_grad_kernel(s: &[f32], x: &[f32], g: &mut [f32], scale: f32) -> f32 {
    let mut acc = [0.0f32; 8];
    let (mut sc, mut xc, mut gc) = (s.chunks_exact(8), x.chunks_exact(8), g.chunks_exact_mut(8));
    let term = |s: f32, x: f32, g: &mut f32| {
        let y = sigmoid(s);
        let d = y - x;
        *g = scale * 2.0 * d * y * (1.0 - y);
        d * d
    };
    for ((s8, x8), g8) in (&mut sc).zip(&mut xc).zip(&mut gc) {
        for l in 0..8 {
            acc[l] += term(s8[l], x8[l], &mut g8[l]);
        }
    }
    let mut tail = 0.0;
    for ((&s, &x), g) in sc.remainder().iter().zip(xc.remainder()).zip(gc.into_remainder()) {
        tail += term(s, x, g);
    }
    acc.iter().sum::<f32>() + tail
}

simd_kernel! { fn bce_row(s: &[f32], x: &[f32]) -> f32 = bce_row_kernel; }
simd_kernel! { fn mse_row(s: &[f32], x: &[f32]) -> f32 = mse_row_kernel; }
simd_kernel! { fn bce_row_grad(s: &[f32], x: &[f32], g: &mut [f32], scale: f32) -> f32 = bce_row_grad_kernel; }
simd_kernel! { fn mse_row_grad(s: &[f32], x: &[f32], g: &mut [f32], scale: f32) -> f32 = mse_row_grad_kernel; }

/// Softmax cross-entropy of class labels under logits, per row, and optionally
/// `grad = scale · ∂ℓ/∂s`:
///
///   `ℓ = log Σ_j e^(s_j) - s_y`,  `∂ℓ/∂s = softmax(s) - onehot(y)`.
///
/// The log-sum-exp subtracts the row maximum first, so no exponential overflows.
///
/// # Shapes
/// `logits`: batch x classes; `labels`: batch, each < classes; `row_loss`: batch.
pub fn softmax_cross_entropy(
    logits: &Matrix,
    labels: &[u8],
    row_loss: &mut [f32],
    mut grad: Option<(&mut Matrix, f32)>,
) {
    assert_eq!(labels.len(), logits.rows, "softmax_cross_entropy: one label per row");
    assert_eq!(row_loss.len(), logits.rows, "softmax_cross_entropy: one loss per row");
    if let Some((g, _)) = grad.as_mut() {
        g.reshape_for_overwrite(logits.rows, logits.cols);
    }
    for (r, (&label, out)) in labels.iter().zip(row_loss.iter_mut()).enumerate() {
        let s = logits.row(r);
        let max = s.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let sum: f32 = s.iter().map(|&v| (v - max).exp()).sum();
        let log_sum = max + sum.ln();
        *out = log_sum - s[label as usize];
        if let Some((g, scale)) = grad.as_mut() {
            for (j, (g, &v)) in g.row_mut(r).iter_mut().zip(s).enumerate() {
                let p = (v - log_sum).exp();
                *g = *scale * (p - if j == label as usize { 1.0 } else { 0.0 });
            }
        }
    }
}

/// Row-wise softmax of `logits` into `probs` (reshaped).
pub fn softmax_into(logits: &Matrix, probs: &mut Matrix) {
    probs.reshape_for_overwrite(logits.rows, logits.cols);
    for r in 0..logits.rows {
        let s = logits.row(r);
        let max = s.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let out = probs.row_mut(r);
        let mut sum = 0.0;
        for (o, &v) in out.iter_mut().zip(s) {
            *o = (v - max).exp();
            sum += *o;
        }
        for o in out.iter_mut() {
            *o /= sum;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `loss - offset` is the negative log-likelihood: for the squared error, that of a
    /// Gaussian with variance ½ per pixel, written out from its density.
    #[test]
    fn the_squared_error_less_its_offset_is_a_gaussian_negative_log_likelihood() {
        let logits = Matrix::from_vec(1, 3, vec![-1.0, 0.5, 2.0]);
        let target = Matrix::from_vec(1, 3, vec![0.0, 0.9, 0.4]);
        let mut row = [0.0f32];
        Recon::Mse.loss(&logits, &target, &[], &mut row, None);
        let variance = 0.5f64;
        let nll: f64 = (0..3)
            .map(|i| {
                let mean = 1.0 / (1.0 + (-logits.data[i] as f64).exp());
                let d = target.data[i] as f64 - mean;
                0.5 * (2.0 * std::f64::consts::PI * variance).ln() + d * d / (2.0 * variance)
            })
            .sum();
        let offset = Recon::Mse.log_likelihood_offset(3);
        assert!(
            (row[0] as f64 - offset - nll).abs() < 1e-6,
            "{} vs {nll}",
            row[0] as f64 - offset
        );
        assert_eq!(Recon::Bce.log_likelihood_offset(3), 0.0);
    }

    /// Logits 1000 apart: exponentials taken without subtracting the maximum overflow.
    #[test]
    fn draws_scored_against_their_image_are_scored_as_against_its_copies() {
        // 3 images x 37 draws: more rows than one parallel chunk, and a chunk that straddles
        // two images; 19 values, so every kernel's lanes and tail are used.
        let (images, each, cols) = (3, 37, 19);
        let value = |i: usize, scale: f32| ((i * 7919 % 1000) as f32 / 1000.0 - 0.5) * scale;
        let logits = Matrix::from_vec(
            images * each,
            cols,
            (0..images * each * cols).map(|i| value(i, 12.0)).collect(),
        );
        let targets = Matrix::from_vec(
            images,
            cols,
            (0..images * cols).map(|i| value(i * 31, 1.0) + 0.5).collect(),
        );
        let mut copies = Matrix::default();
        targets.repeat_rows_into(each, &mut copies);
        let logvar: Vec<f32> = (0..cols).map(|d| value(d * 13, 2.0)).collect();
        for recon in [Recon::Bce, Recon::Mse, Recon::Gaussian] {
            let mut direct = vec![0.0; images * each];
            recon.loss(&logits, &copies, &logvar, &mut direct, None);
            let mut of_draws = vec![0.0; images * each];
            recon.loss_of_draws(&logits, &targets, each, &logvar, &mut of_draws);
            assert_eq!(of_draws, direct, "{recon:?}");
            // Not one loss for all: the rows differ.
            assert!(direct.iter().any(|&l| l != direct[0]), "{recon:?}");
        }
    }

    #[test]
    fn softmax_is_known_and_finite_for_huge_logits() {
        let logits = Matrix::from_vec(2, 3, vec![0.0, 2f32.ln(), 0.0, 1000.0, 1000.0 + 3f32.ln(), -1000.0]);
        let mut probs = Matrix::default();
        softmax_into(&logits, &mut probs);
        let expected = [0.25, 0.5, 0.25, 0.25, 0.75, 0.0];
        for (got, want) in probs.data.iter().zip(expected) {
            // 1000 + ln 3 rounds to f32 within ~6e-5.
            assert!((got - want).abs() < 2e-4, "{:?}", probs.data);
        }
    }
}
