//! Evaluation: the test loss (the negative ELBO for a VAE, with `z` sampled exactly as in
//! training, never the deterministic shortcut `z = μ`), and the importance-weighted estimate of
//! `-log p(x)` (Burda et al. 2016).

use rand::Rng;
use std::path::PathBuf;

use serde::Serialize;

use crate::data::Split;
use crate::engine::Matrix;
use crate::engine::gaussian::reparameterize;
use crate::error::{Error, Result};
use crate::metrics::LatentReport;
use crate::model::{Latent, LossBreakdown, Model, Workspace};

/// Images per evaluation batch: large batches amortise the matrix products.
pub const EVAL_BATCH: usize = 1024;

/// The mean loss per image over `split`, with `z` sampled from the posterior.
///
/// # Errors
/// A CVAE given a label beyond its classes.
pub fn evaluate(model: &Model, split: &Split, rng: &mut impl Rng) -> Result<LossBreakdown> {
    let (mut ws, mut x) = (Workspace::default(), Matrix::default());
    let (mut recon, mut kl) = (0.0f64, 0.0f64);
    let indices: Vec<usize> = (0..split.len()).collect();
    for chunk in indices.chunks(EVAL_BATCH) {
        split.batch_into(chunk, &mut x);
        let condition = model.condition(&split.labels_of(chunk))?;
        model.forward(&x, condition.as_ref(), &mut ws, Latent::Sample(rng));
        let loss = model.loss(&x, &mut ws, false);
        recon += loss.reconstruction * chunk.len() as f64;
        kl += loss.kl * chunk.len() as f64;
    }
    let n = split.len().max(1) as f64;
    let (reconstruction, kl) = (recon / n, kl / n);
    Ok(LossBreakdown {
        total: reconstruction + model.kl_weight() as f64 * kl,
        reconstruction,
        kl,
    })
}

/// `log((1/n) Σ exp(v_i))` of values given one at a time, in constant memory and without
/// overflow: the running maximum `m` and the scaled sum `Σ exp(v_i - m)`, rescaled whenever
/// a new maximum arrives.
#[derive(Clone, Copy, Debug)]
pub struct LogMeanExp {
    max: f64,
    sum: f64,
    count: usize,
}

impl Default for LogMeanExp {
    fn default() -> Self {
        LogMeanExp {
            max: f64::NEG_INFINITY,
            sum: 0.0,
            count: 0,
        }
    }
}

impl LogMeanExp {
    pub fn add(&mut self, v: f64) {
        if v > self.max {
            self.sum = self.sum * (self.max - v).exp() + 1.0;
            self.max = v;
        } else {
            self.sum += (v - self.max).exp();
        }
        self.count += 1;
    }

    /// The log-mean-exp of the values so far (-inf for none).
    pub fn value(&self) -> f64 {
        self.max + self.sum.ln() - (self.count as f64).ln()
    }
}

/// How every loss in this tool is reduced, written into each metrics line and report.
pub const LOSS_REDUCTION: &str = "per image: summed over pixels and latent dimensions, averaged over images";

/// What `vae eval` measured on a run: what its `--json` prints, one object.
#[derive(Clone, Debug, Serialize)]
pub struct EvalReport {
    pub run: PathBuf,
    pub dataset: String,
    /// Test images evaluated.
    pub images: usize,
    /// Seed of the sampled latent codes.
    pub seed: u64,
    /// Reconstruction + β · KL at the model's β.
    pub test_loss: f64,
    pub test_recon: f64,
    pub test_kl: f64,
    /// The importance-weighted estimate's draws per image (its K), when asked for.
    pub iw_k: Option<usize>,
    /// Its `-log p̂(x)` per image.
    pub iw_nll: Option<f64>,
    /// How every loss here is reduced ([`LOSS_REDUCTION`]).
    pub reduction: &'static str,
    /// The latent-space measurements, when asked for.
    pub latent: Option<LatentReport>,
}

impl EvalReport {
    /// The report of `loss` (with `iw` and `latent` when measured) on `images` test images of
    /// `dataset` for the run at `run`.
    pub fn new(
        run: PathBuf,
        dataset: String,
        images: usize,
        seed: u64,
        loss: LossBreakdown,
        iw: Option<IwEstimate>,
        latent: Option<LatentReport>,
    ) -> Self {
        EvalReport {
            run,
            dataset,
            images,
            seed,
            test_loss: loss.total,
            test_recon: loss.reconstruction,
            test_kl: loss.kl,
            iw_k: iw.map(|e| e.k),
            iw_nll: iw.map(|e| e.nll),
            reduction: LOSS_REDUCTION,
            latent,
        }
    }
}

/// The importance-weighted estimate of the negative log-likelihood.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct IwEstimate {
    /// Mean over images of `-log p̂(x)`, in nats per image.
    pub nll: f64,
    /// Draws of q(z|x) per image: as many as were averaged (the K asked for).
    pub k: usize,
    pub images: usize,
}

/// Rows decoded at once: bounds memory whatever K is (2,048 x 784 floats is 6 MB).
const IW_ROWS: usize = 2048;

/// For a CVAE the same estimate, given each image's label, is of `-log p(x|y)`.
///
/// `-log p(x) ≈ -log (1/K) Σ_k p(x|z_k) p(z_k) / q(z_k|x)`, `z_k ~ q(z|x)`, averaged over
/// `split`, with `log w = log p(x|z) + log p(z) - log q(z|x)` ([`Model::log_weight`]).
///
/// The log-sum-exp over the K weights is streamed (running maximum and scaled sum), so K =
/// 5,000 needs no more memory than K = 50. `on_progress` receives the images done so far.
pub fn importance_weighted_nll(
    model: &Model,
    split: &Split,
    k: usize,
    rng: &mut impl Rng,
    on_progress: &mut dyn FnMut(usize),
) -> Result<IwEstimate> {
    let per_image = importance_weighted_nll_per_image(model, split, k, rng, on_progress)?;
    Ok(IwEstimate {
        nll: per_image.total / split.len().max(1) as f64,
        k: per_image.k,
        images: split.len(),
    })
}

/// [`importance_weighted_nll`] of each image on its own.
#[derive(Clone, Debug)]
pub struct IwPerImage {
    /// `-log p̂(x)` of each image, in split order.
    pub nll: Vec<f64>,
    /// Their sum, added in the order the estimate always has (a group of images at a time).
    pub total: f64,
    pub k: usize,
}

/// The importance-weighted `-log p̂(x)` of every image of `split` (see
/// [`importance_weighted_nll`]).
pub fn importance_weighted_nll_per_image(
    model: &Model,
    split: &Split,
    k: usize,
    rng: &mut impl Rng,
    on_progress: &mut dyn FnMut(usize),
) -> Result<IwPerImage> {
    if !model.encoder.head.has_posterior() {
        return Err(Error::config(
            "k",
            "the importance-weighted bound needs a VAE or CVAE (--kind vae|cvae)",
        ));
    }
    if k == 0 {
        return Err(Error::config("k", "must be at least 1"));
    }
    let offset = model.config.recon.log_likelihood_offset(model.config.pixels());
    let prior = model.prior_density();
    let mut log_ratios = Vec::new();
    // Images per group and draws per chunk, so that one decode holds at most IW_ROWS rows.
    let per_chunk = k.min(IW_ROWS);
    let group = (IW_ROWS / per_chunk).max(1);
    let latent = model.config.latent;
    let (mut ws, mut x) = (Workspace::default(), Matrix::default());
    let (mut z, mut std, mut mu, mut logvar): (Matrix, Matrix, Matrix, Matrix) = Default::default();
    let mut condition = Matrix::default();
    let (mut total, mut averaged) = (0.0f64, k);
    let mut nll = Vec::with_capacity(split.len());
    let indices: Vec<usize> = (0..split.len()).collect();
    for images in indices.chunks(group) {
        split.batch_into(images, &mut x);
        let labels = split.labels_of(images);
        let image_condition = model.condition(&labels)?;
        model.encode(&x, image_condition.as_ref(), &mut ws);
        // Per image, the log-mean-exp of its weights, streamed.
        let mut weights = vec![LogMeanExp::default(); images.len()];
        let mut done = 0;
        while done < k {
            let draws = per_chunk.min(k - done);
            let rows = images.len() * draws;
            // Row r = image r / draws, draw r % draws: each image's posterior and pixels repeated.
            ws.mu.repeat_rows_into(draws, &mut mu);
            ws.logvar.repeat_rows_into(draws, &mut logvar);
            if let Some(c) = &image_condition {
                c.repeat_rows_into(draws, &mut condition);
            }
            let eps = Matrix::standard_normal(rows, latent, rng);
            reparameterize(&mu, &logvar, &eps, &mut z, &mut std);
            let row_condition = image_condition.as_ref().map(|_| &condition);
            model.decode_logits(&z, row_condition, &mut ws.decoder, &mut ws.logits);
            ws.recon_rows.resize(rows, 0.0);
            // Against what the encoder read: the Gaussian's standardised input.
            let read = if model.scaler.is_some() { &ws.input } else { &x };
            model.reconstruction_rows_of_draws(&ws.logits, read, draws, &mut ws.recon_rows);
            prior.log_ratios(&z, &eps, &logvar, &mut log_ratios);
            for r in 0..rows {
                let log_w = Model::log_weight(ws.recon_rows[r], 1.0, log_ratios[r]);
                weights[r / draws].add(log_w + offset);
            }
            done += draws;
        }
        total -= weights.iter().map(LogMeanExp::value).sum::<f64>();
        nll.extend(weights.iter().map(|w| -w.value()));
        averaged = weights[0].count;
        on_progress(images[images.len() - 1] + 1);
    }
    Ok(IwPerImage {
        nll,
        total,
        k: averaged,
    })
}

#[cfg(test)]
mod tests {
    use super::LogMeanExp;

    #[test]
    fn the_streamed_log_mean_exp_is_the_direct_one_in_any_order() {
        // Values spread over 1,000 nats: exp() of them directly would underflow, so the
        // reference shifts by the known maximum.
        let values: Vec<f64> = (0..200)
            .map(|i| -1000.0 + ((i * 37) % 200) as f64 * 5.0 + (i as f64).sin())
            .collect();
        let max = values.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let direct = max + (values.iter().map(|v| (v - max).exp()).sum::<f64>() / values.len() as f64).ln();
        for order in [values.clone(), values.iter().rev().cloned().collect::<Vec<_>>()] {
            let mut streamed = LogMeanExp::default();
            for v in order {
                streamed.add(v);
            }
            assert!(
                (streamed.value() - direct).abs() < 1e-9,
                "{} vs {direct}",
                streamed.value()
            );
        }
        // Two values by hand: log((e^0 + e^-ln 3)/2) = log(2/3).
        let mut two = LogMeanExp::default();
        two.add(-(3f64.ln()));
        two.add(0.0);
        assert!((two.value() - (2.0f64 / 3.0).ln()).abs() < 1e-12);
    }
}
