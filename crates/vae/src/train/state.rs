//! Where a run stands between two batches: what a checkpoint's metadata holds beside the
//! weights and Adam's moments, and the checks that refuse a state no run can have written.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{EpochMetrics, EpochProgress};
use crate::error::{Error, Result};
use crate::rng::RunRng;
use crate::run::{Objective, RunConfig};

/// Where a run stands, saved in the checkpoint's metadata.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    /// Epochs finished.
    pub epochs_done: usize,
    /// The next batch of the current epoch (0 at an epoch boundary).
    pub next_batch: usize,
    /// Adam's step count.
    pub adam_step: u64,
    /// The training-noise generator, exactly where it stopped.
    pub noise_rng: RunRng,
    /// Sums over the batches of the current epoch so far.
    pub partial: EpochProgress,
    /// Metrics of every finished epoch (what `metrics.jsonl` holds).
    pub history: Vec<EpochMetrics>,
    /// The run's configuration when the checkpoint was written, so that a resume under an
    /// edited `config.json` is refused rather than silently training another objective.
    pub config: RunConfig,
}

/// Largest per-image loss a run may record: beyond this a run has diverged (the trainer stops
/// it) or the file was forged. A 1024x1024 image's squared error is at most ~1e6.
pub const MAX_LOSS: f64 = 1e12;
/// Fastest training a record may claim, in images per second.
const MAX_IMAGES_PER_SEC: f64 = 1e9;
/// How far below 0 a sum of non-negative terms may round.
const ROUNDING: f64 = 1e-3;

/// A number for a message: plain when moderate, in exponent form when huge or tiny.
fn shown(v: f64) -> String {
    if v == 0.0 || (1e-3..1e6).contains(&v.abs()) {
        format!("{v}")
    } else {
        format!("{v:e}")
    }
}

impl TrainState {
    /// Refuses a restored state that no run can have written: a dead random generator
    /// (xoshiro's all-zero state yields zeros forever, and the normal sampler would spin), or
    /// sums and records that are not finite, negative where they cannot be, or inconsistent.
    pub fn check(&self, path: &Path) -> Result<()> {
        let bad = |problem: String| Err(Error::checkpoint(path, format!("invalid training state: {problem}")));
        let rng = serde_json::to_value(&self.noise_rng).expect("a generator serialises");
        if rng["s"]
            .as_array()
            .is_some_and(|s| s.iter().all(|v| v.as_u64() == Some(0)))
        {
            return bad("the noise generator's state is all zeros".into());
        }
        if self.history.len() != self.epochs_done {
            return bad(format!(
                "{} epochs done but {} in the history",
                self.epochs_done,
                self.history.len()
            ));
        }
        let p = &self.partial;
        if !(p.loss_sum.is_finite() && p.loss_sum.abs() <= MAX_LOSS * p.images as f64) {
            return bad(format!("the epoch's loss sum {} is out of range", shown(p.loss_sum)));
        }
        if !(p.seconds.is_finite() && p.seconds >= 0.0) {
            return bad(format!("the epoch's seconds {} are out of range", shown(p.seconds)));
        }
        // A discrete likelihood's losses are never negative; a density's (the Gaussian's) may be.
        let discrete = self.config.model.recon.is_for_intensities();
        let elbo = discrete && self.config.train.objective == Objective::Elbo;
        for (i, m) in self.history.iter().enumerate() {
            let loss_ok =
                |v: f64, non_negative: bool| v.is_finite() && v.abs() <= MAX_LOSS && (!non_negative || v >= -ROUNDING);
            let problem = if m.epoch != i + 1 {
                Some(format!("is numbered {}", m.epoch))
            } else if !loss_ok(m.train_loss, elbo) {
                Some(format!("train_loss {} is out of range", shown(m.train_loss)))
            } else if !(loss_ok(m.test_loss, discrete) && loss_ok(m.test_recon, discrete) && loss_ok(m.test_kl, true)) {
                Some("a test loss is negative, non-finite or beyond 1e12".into())
            } else if !(m.seconds.is_finite() && m.seconds >= 0.0) {
                Some(format!("seconds {} are out of range", shown(m.seconds)))
            } else if !(m.images_per_sec.is_finite() && (0.0..=MAX_IMAGES_PER_SEC).contains(&m.images_per_sec)) {
                Some(format!("images_per_sec {} is out of range", shown(m.images_per_sec)))
            } else if !(m.beta.is_finite() && m.beta >= 0.0 && m.free_bits.is_finite() && m.free_bits >= 0.0) {
                Some("beta or free_bits is negative or non-finite".into())
            } else {
                None
            };
            if let Some(problem) = problem {
                return bad(format!("epoch {} of the history: {problem}", i + 1));
            }
        }
        Ok(())
    }

    /// Refuses a state that does not fit the data it is resumed on: `train_len` images in
    /// batches of `batch_size` (the batch it stopped at, the images counted so far, and one
    /// optimizer step per batch).
    pub fn check_against(&self, path: &Path, train_len: usize, batch_size: usize) -> Result<()> {
        let batches = train_len.div_ceil(batch_size);
        let bad = |problem: String| Err(Error::checkpoint(path, problem));
        if self.next_batch >= batches.max(1) {
            return bad(format!(
                "stopped at batch {} of an epoch of {batches}: not this dataset's checkpoint",
                self.next_batch
            ));
        }
        let seen = (self.next_batch * batch_size).min(train_len);
        if self.partial.images != seen {
            return bad(format!(
                "invalid training state: {} images counted in an epoch stopped after {seen}",
                self.partial.images
            ));
        }
        let steps = (self.epochs_done * batches + self.next_batch) as u64;
        if self.adam_step != steps {
            return bad(format!(
                "invalid training state: {} optimizer steps where {} epochs and {} batches make {steps}",
                self.adam_step, self.epochs_done, self.next_batch
            ));
        }
        Ok(())
    }
}
