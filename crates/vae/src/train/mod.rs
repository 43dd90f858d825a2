//! Training: shuffled mini-batches, Adam, an evaluation and pictures after every epoch, and
//! checkpoints from which `--resume` continues exactly where the run stopped.
//!
//! Reproducibility: the batch order of epoch `e` comes from its own seeded stream, the
//! training noise from one stream whose state is saved in each checkpoint, and every engine
//! operation is deterministic whatever the thread count. So the same seed gives the same
//! numbers, and a run stopped and resumed (even mid-epoch) ends bit-identical to one that
//! never stopped.
//!
//! The trainer computes and reports through events; drawing progress is the caller's job.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use serde::{Deserialize, Serialize};

mod state;

pub use state::{MAX_LOSS, TrainState};

use crate::checkpoint::{load_checkpoint, save_checkpoint, save_model};
use crate::data::{Binarize, Dataset, Split};
use crate::engine::{Adam, AdamConfig, Matrix};
use crate::error::{Error, Result};
use crate::eval::evaluate;
use crate::files::write_atomic;
use crate::image::encode_png;
use crate::model::{Bound, Model, Workspace};
use crate::pictures;
use crate::rng::{Stream, permutation, stream_rng};
use crate::run::{Objective, RunConfig, RunDir};
use crate::sampler::Sampler;

pub use crate::eval::LOSS_REDUCTION;

/// Running sums over the batches of an epoch.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EpochProgress {
    /// Σ over batches of (batch-mean loss x batch size).
    pub loss_sum: f64,
    pub images: usize,
    /// Training time so far, evaluation excluded.
    pub seconds: f64,
}

/// One line of `metrics.jsonl`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    /// 1-based.
    pub epoch: usize,
    /// Mean over the epoch's batches of the training objective (β of the warm-up, free bits
    /// applied); `test_loss` is always the negative ELBO at the target β.
    pub train_loss: f64,
    pub test_loss: f64,
    pub test_recon: f64,
    pub test_kl: f64,
    /// Training time of the epoch, evaluation excluded.
    pub seconds: f64,
    pub images_per_sec: f64,
    /// How the losses are reduced: [`LOSS_REDUCTION`].
    pub reduction: String,
    /// β of the training objective at the end of the epoch (below the target during warm-up).
    #[serde(default)]
    pub beta: f32,
    /// The free-bits floor of the training objective.
    #[serde(default)]
    pub free_bits: f32,
}

/// What the trainer reports as it goes.
#[derive(Clone, Debug)]
pub enum TrainEvent<'a> {
    /// Training begins (or resumes at `epoch`, `batch`, both 0-based).
    Started {
        epoch: usize,
        batch: usize,
        batches_per_epoch: usize,
        train_images: usize,
    },
    /// A batch is done.
    Batch {
        epoch: usize,
        batch: usize,
        batches_per_epoch: usize,
        /// Mean loss per image over the epoch so far.
        running_loss: f64,
        images_per_sec: f64,
    },
    /// The test split is being evaluated.
    Evaluating { epoch: usize },
    /// An epoch is done and its files are written.
    EpochDone(&'a EpochMetrics),
}

/// How a training call ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// All epochs are done.
    Finished,
    /// Stopped on request at the given point (0-based epoch, next batch), checkpoint saved.
    Interrupted { epoch: usize, batch: usize },
}

/// A model being trained, with everything needed to continue it.
pub struct Trainer {
    pub run: RunDir,
    pub config: RunConfig,
    pub model: Model,
    adam: Adam,
    pub state: TrainState,
}

impl Trainer {
    /// A fresh run in `run` (its folder should be locked by the caller), which must be absent
    /// or empty: see [`RunDir::ensure_fresh`].
    pub fn new(run: RunDir, config: RunConfig) -> Result<Self> {
        config.validate()?;
        run.ensure_fresh()?;
        Trainer::start(run, config)
    }

    /// Writes the config and builds the untrained model and optimizer.
    fn start(run: RunDir, config: RunConfig) -> Result<Self> {
        let model = Model::new(config.model.clone(), &mut stream_rng(config.train.seed, Stream::Init))?;
        let adam = Adam::new(adam_config(&config), &model.param_shapes());
        let state = TrainState {
            epochs_done: 0,
            next_batch: 0,
            adam_step: 0,
            noise_rng: stream_rng(config.train.seed, Stream::TrainNoise),
            partial: EpochProgress::default(),
            history: Vec::new(),
            config: config.clone(),
        };
        run.write_config(&config)?;
        Ok(Trainer {
            run,
            config,
            model,
            adam,
            state,
        })
    }

    /// Reopens a run from its checkpoint. `epochs`, when given, replaces the planned number of
    /// epochs (to train a finished run further).
    ///
    /// Never destroys what the folder holds: a run whose checkpoint is gone but whose model
    /// or metrics remain is refused, not retrained from scratch over them.
    pub fn resume(run: RunDir, epochs: Option<usize>) -> Result<Self> {
        let mut config = run.read_config()?;
        if !run.checkpoint().exists() {
            if let Some(kept) = [run.model(), run.metrics()].into_iter().find(|p| p.exists()) {
                return Err(Error::Run {
                    path: run.checkpoint(),
                    problem: format!(
                        "is missing, so the run cannot continue; {} is kept as it is (start a new run with another --out to train again)",
                        kept.display()
                    ),
                });
            }
            // Stopped before its first checkpoint (killed in the first batches): nothing was
            // learnt or written yet, so resuming is starting afresh from the saved config.
            if let Some(epochs) = epochs {
                config.train.epochs = epochs;
            }
            config.validate()?;
            return Trainer::start(run, config);
        }
        let mut model = Model::new(config.model.clone(), &mut stream_rng(config.train.seed, Stream::Init))?;
        let (mut adam, state): (Adam, TrainState) =
            load_checkpoint(&run.checkpoint(), &mut model, adam_config(&config))?;
        run.load_scaler(&mut model)?;
        adam.step = state.adam_step;
        let refuse = |problem: String| Error::Run {
            path: run.config(),
            problem,
        };
        // Everything but the planned epochs and the thread count must be as it was.
        let mut saved = state.config.clone();
        saved.train.epochs = config.train.epochs;
        saved.train.threads = config.train.threads;
        if saved != config {
            return Err(refuse(
                "differs from the configuration the checkpoint was trained with; restore it, or start a new run".into(),
            ));
        }
        state.check(&run.checkpoint())?;
        if let Some(epochs) = epochs {
            let started = state.epochs_done + usize::from(state.next_batch > 0);
            if epochs < started.max(1) {
                return Err(Error::config(
                    "epochs",
                    format!("the run has already started epoch {started}; ask for at least {started}"),
                ));
            }
            config.train.epochs = epochs;
        }
        config.validate()?;
        run.write_config(&config)?;
        // A crash between the checkpoint and the files derived from it leaves those behind:
        // the checkpoint is the truth.
        write_metrics(&run, &state.history)?;
        if state.next_batch == 0 && state.epochs_done > 0 {
            save_model(&run.model(), &model)?;
        }
        Ok(Trainer {
            run,
            config,
            model,
            adam,
            state,
        })
    }

    /// Trains until all epochs are done or `stop` is set (checked after every batch).
    pub fn train(
        &mut self,
        data: &Dataset,
        stop: &AtomicBool,
        on_event: &mut dyn FnMut(TrainEvent),
    ) -> Result<Outcome> {
        let binarize = self.config.train.binarize;
        let (train, test) = data.prepared_splits(binarize, self.config.train.seed);
        let (train, test) = (train.as_ref(), test.as_ref());
        if self.model.scaler.is_some() && self.state.epochs_done == 0 && self.state.next_batch == 0 {
            // Fitted once, before the first step, and kept beside the weights it goes with.
            let scaler = crate::model::Scaler::fit(train);
            write_atomic(&self.run.scaler(), scaler.to_json().as_bytes())?;
            self.model.scaler = Some(scaler);
        }
        // A label the CVAE cannot take fails here, not after an epoch of work.
        self.model.check_labels(&train.labels, "training labels")?;
        self.model.check_labels(&test.labels, "test labels")?;
        let batch_size = self.config.train.batch_size;
        let batches = train.len().div_ceil(batch_size);
        self.state
            .check_against(&self.run.checkpoint(), train.len(), batch_size)?;
        on_event(TrainEvent::Started {
            epoch: self.state.epochs_done,
            batch: self.state.next_batch,
            batches_per_epoch: batches,
            train_images: train.len(),
        });
        let (mut ws, mut x) = (Workspace::default(), Matrix::default());
        while self.state.epochs_done < self.config.train.epochs {
            let epoch = self.state.epochs_done;
            let order = permutation(
                train.len(),
                &mut stream_rng(self.config.train.seed, Stream::Shuffle { epoch }),
            );
            let mut clock = Instant::now();
            for batch in self.state.next_batch..batches {
                let indices = &order[batch * batch_size..((batch + 1) * batch_size).min(train.len())];
                train.batch_into(indices, &mut x);
                let condition = self.model.condition(&train.labels_of(indices))?;
                if binarize == Binarize::Dynamic {
                    let seed = self.config.train.seed;
                    Split::binarize_batch(&mut x, &mut stream_rng(seed, Stream::BinarizeBatch { epoch, batch }));
                }
                let bound = self.bound_at(epoch, batch, batches);
                let loss =
                    self.model
                        .compute_gradients(&x, condition.as_ref(), &mut ws, &mut self.state.noise_rng, bound);
                // Past MAX_LOSS the run has diverged as surely as at infinity, and no record
                // may hold such a loss (a resume refuses it).
                if !(loss.total.is_finite() && loss.total.abs() <= MAX_LOSS) {
                    return Err(Error::NonFiniteLoss {
                        epoch: epoch + 1,
                        batch: batch + 1,
                        loss: loss.total,
                    });
                }
                self.adam.update(&mut self.model.params_mut());
                let p = &mut self.state.partial;
                p.loss_sum += loss.total * indices.len() as f64;
                p.images += indices.len();
                p.seconds += clock.elapsed().as_secs_f64();
                clock = Instant::now();
                self.state.next_batch = batch + 1;
                self.state.adam_step = self.adam.step;
                on_event(TrainEvent::Batch {
                    epoch,
                    batch,
                    batches_per_epoch: batches,
                    running_loss: p.loss_sum / p.images as f64,
                    images_per_sec: p.images as f64 / p.seconds.max(1e-9),
                });
                let last = batch + 1 == batches;
                if stop.load(Ordering::Relaxed) && !last {
                    self.save_checkpoint()?;
                    return Ok(Outcome::Interrupted {
                        epoch,
                        batch: batch + 1,
                    });
                }
                let every = self.config.train.checkpoint_every;
                if every > 0 && (batch + 1) % every == 0 && !last {
                    self.save_checkpoint()?;
                    clock = Instant::now();
                }
            }
            on_event(TrainEvent::Evaluating { epoch });
            self.finish_epoch(test, batches)?;
            on_event(TrainEvent::EpochDone(self.state.history.last().expect("just pushed")));
            if stop.load(Ordering::Relaxed) && self.state.epochs_done < self.config.train.epochs {
                return Ok(Outcome::Interrupted {
                    epoch: self.state.epochs_done,
                    batch: 0,
                });
            }
        }
        Ok(Outcome::Finished)
    }

    /// Evaluates, records the epoch, and writes the checkpoint, metrics, weights and pictures.
    fn finish_epoch(&mut self, test_split: &Split, batches: usize) -> Result<()> {
        let epoch = self.state.epochs_done;
        let seed = self.config.train.seed;
        let test = evaluate(&self.model, test_split, &mut stream_rng(seed, Stream::Eval { epoch }))?;
        let p = std::mem::take(&mut self.state.partial);
        let end_of_epoch = self.bound_at(epoch, batches.saturating_sub(1), batches);
        self.state.history.push(EpochMetrics {
            epoch: epoch + 1,
            train_loss: p.loss_sum / p.images.max(1) as f64,
            test_loss: test.total,
            test_recon: test.reconstruction,
            test_kl: test.kl,
            seconds: p.seconds,
            images_per_sec: p.images as f64 / p.seconds.max(1e-9),
            reduction: LOSS_REDUCTION.into(),
            beta: end_of_epoch.beta,
            free_bits: end_of_epoch.free_bits,
        });
        self.state.epochs_done += 1;
        self.state.next_batch = 0;
        // The checkpoint first: it is the truth the other files are derived from.
        self.save_checkpoint()?;
        write_metrics(&self.run, &self.state.history)?;
        save_model(&self.run.model(), &self.model)?;
        write_pictures(&self.run, &self.model, test_split, seed)
    }

    /// The bound of batch `batch` of `batches` in epoch `epoch` (0-based): β ramps up
    /// linearly over the warm-up epochs, batch by batch, then holds at its target.
    pub fn bound_at(&self, epoch: usize, batch: usize, batches: usize) -> Bound {
        let train = &self.config.train;
        let progress = epoch as f64 + (batch + 1) as f64 / batches.max(1) as f64;
        let ramp = match train.kl_warmup {
            0 => 1.0,
            warmup => (progress / warmup as f64).min(1.0),
        };
        Bound {
            beta: (self.config.model.beta as f64 * ramp) as f32,
            free_bits: train.free_bits,
            k: match train.objective {
                Objective::Elbo => 1,
                Objective::Iwae => train.k,
            },
        }
    }

    fn save_checkpoint(&mut self) -> Result<()> {
        // A non-finite weight can hide behind a finite loss (a dead unit); never save one.
        if let Some(p) = self
            .model
            .params()
            .into_iter()
            .find(|p| p.value.data.iter().any(|v| !v.is_finite()))
        {
            return Err(Error::Diverged {
                epoch: self.state.epochs_done + 1,
                detail: format!("{} holds a non-finite value", p.name),
            });
        }
        self.state.adam_step = self.adam.step;
        save_checkpoint(&self.run.checkpoint(), &self.model, &self.adam, &self.state)
    }
}

fn adam_config(config: &RunConfig) -> AdamConfig {
    AdamConfig {
        lr: config.train.lr,
        ..AdamConfig::default()
    }
}

/// Rewrites `metrics.jsonl` from the history, atomically.
fn write_metrics(run: &RunDir, history: &[EpochMetrics]) -> Result<()> {
    let mut text = String::new();
    for m in history {
        text.push_str(&serde_json::to_string(m).expect("metrics serialise"));
        text.push('\n');
    }
    write_atomic(&run.metrics(), text.as_bytes())
}

/// `samples.png` (the same prior draws every epoch; a CVAE's in a row per class) and
/// `reconstructions.png`; for vectors, which are not pictures, `reconstruction-errors.png`
/// instead: the histogram of the test items' reconstruction losses.
pub fn write_pictures(run: &RunDir, model: &Model, test: &Split, seed: u64) -> Result<()> {
    let mut rng = stream_rng(seed, Stream::Samples);
    if model.config.image_shape().is_vector() {
        let scores = crate::score::score(model, test, None, &mut rng)?;
        let losses: Vec<f64> = scores.iter().map(|s| s.reconstruction).collect();
        let mean = losses.iter().sum::<f64>() / losses.len().max(1) as f64;
        let picture = crate::plot::histogram_plot(&crate::plot::Histogram {
            sets: &[("test items", &losses)],
            title: "reconstruction loss of the test items".into(),
            x_label: "nats per item".into(),
            note: Some(format!("mean {mean:.2} nats; one draw of z each")),
        });
        return write_atomic(&run.reconstruction_errors(), &crate::image::encode_png_rgb(&picture)?);
    }
    write_atomic(
        &run.samples(),
        &encode_png(&pictures::run_samples(model, &Sampler::prior_of(model), &mut rng)?)?,
    )?;
    write_atomic(
        &run.reconstructions(),
        &encode_png(&pictures::run_reconstructions(model, test)?)?,
    )
}
