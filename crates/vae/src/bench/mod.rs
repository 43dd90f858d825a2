//! Throughput benchmark: training and evaluation images per second for a model, and how close
//! the engine runs to what the machine can do.
//!
//! Two yardsticks, both measured here, not assumed: the FP32 multiply-add peak of the threads
//! used ([`peak`]), which nothing can beat, and the matrix-product ceiling, the model's largest
//! product (the first encoder layer, batch x pixels times pixels x hidden) timed alone at the
//! same batch size, which says how much of the gap is the product library's and how much the
//! rest of the step's.

pub mod peak;
pub mod profile;

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::data::Split;
use crate::engine::matmul::{Op, matmul};
use crate::engine::{Adam, AdamConfig, Matrix, threads};
use crate::eval::EVAL_BATCH;
use crate::model::{Latent, Model, ModelConfig, Workspace};
use crate::rng::{Stream, permutation, stream_rng};

/// What to measure.
#[derive(Clone, Debug)]
pub struct BenchOptions {
    pub model: ModelConfig,
    pub batch_sizes: Vec<usize>,
    /// Timed seconds per measurement, after a warm-up.
    pub seconds: f64,
}

/// Longest measurement: an hour says all a throughput figure can.
pub const MAX_SECONDS: f64 = 3600.0;

impl BenchOptions {
    /// Refuses seconds outside (0, [`MAX_SECONDS`]] and batches that no training step of this
    /// model may take (the caps training has).
    pub fn validate(&self) -> crate::Result<()> {
        use crate::error::Error;
        self.model.validate()?;
        if !(self.seconds.is_finite() && self.seconds > 0.0 && self.seconds <= MAX_SECONDS) {
            return Err(Error::config(
                "seconds",
                format!("must be a number > 0 and at most {MAX_SECONDS}, got {}", self.seconds),
            ));
        }
        if self.batch_sizes.is_empty() {
            return Err(Error::config("batch-sizes", "name at least one"));
        }
        for &batch_size in &self.batch_sizes {
            crate::error::ensure_in_range("batch-sizes", batch_size, 1..=crate::run::MAX_BATCH_SIZE)?;
            self.model.ensure_step_fits("batch-sizes", batch_size)?;
        }
        Ok(())
    }
}

/// One measurement.
#[derive(Clone, Debug, Serialize)]
pub struct Throughput {
    /// `train` (forward, backward, Adam step) or `eval` (forward with sampling, loss).
    pub what: &'static str,
    pub batch_size: usize,
    pub images_per_sec: f64,
    /// Useful floating-point work per second, in GFLOP/s.
    pub gflops: f64,
    /// The matrix-product ceiling at this batch size, GFLOP/s.
    pub gemm_ceiling_gflops: f64,
    /// The threads' FP32 multiply-add peak, GFLOP/s (the same for every result of a run).
    pub peak_gflops: f64,
}

impl Throughput {
    /// The share of the multiply-add peak reached, in [0, 1].
    pub fn share_of_peak(&self) -> f64 {
        self.gflops / self.peak_gflops
    }
}

/// All measurements of one benchmark run.
#[derive(Clone, Debug, Serialize)]
pub struct BenchReport {
    pub framework: &'static str,
    pub threads: usize,
    pub hidden: Vec<usize>,
    pub latent: usize,
    pub peak: peak::Peak,
    pub results: Vec<Throughput>,
}

/// Seconds of the multiply-add loop: its figure settles within a few hundred milliseconds.
const PEAK_SECONDS: f64 = 1.0;

const WARMUP_STEPS: usize = 10;

/// Training steps as `vae train` takes them (forward, backward, Adam), on `train`'s images in
/// one shuffled order, `batch` at a time, starting over at its end.
pub(crate) struct TrainingSteps<'a> {
    pub model: Model,
    pub adam: Adam,
    /// Images per step (the batch asked for, or all of `train` when it has fewer).
    pub batch: usize,
    train: &'a Split,
    order: Vec<usize>,
    cursor: usize,
    ws: Workspace,
    x: Matrix,
    rng: crate::rng::RunRng,
}

impl<'a> TrainingSteps<'a> {
    pub fn new(config: &ModelConfig, train: &'a Split, batch: usize) -> crate::Result<Self> {
        let model = Model::new(config.clone(), &mut stream_rng(0, Stream::Init))?;
        let adam = Adam::new(AdamConfig::default(), &model.param_shapes());
        Ok(TrainingSteps {
            adam,
            model,
            batch: batch.min(train.len()),
            train,
            order: permutation(train.len(), &mut stream_rng(0, Stream::Shuffle { epoch: 0 })),
            cursor: 0,
            ws: Workspace::default(),
            x: Matrix::default(),
            rng: stream_rng(0, Stream::TrainNoise),
        })
    }

    /// One step on the next batch.
    pub fn step(&mut self) {
        if self.cursor + self.batch > self.train.len() {
            self.cursor = 0;
        }
        let picked = &self.order[self.cursor..self.cursor + self.batch];
        self.cursor += self.batch;
        self.train.batch_into(picked, &mut self.x);
        let condition = self
            .model
            .condition(&self.train.labels_of(picked))
            .expect("dataset labels fit");
        let bound = self.model.elbo();
        self.model
            .compute_gradients(&self.x, condition.as_ref(), &mut self.ws, &mut self.rng, bound);
        self.adam.update(&mut self.model.params_mut());
    }
}

/// Runs `step` repeatedly for `seconds` after a warm-up; returns steps per second.
pub(crate) fn steps_per_sec(seconds: f64, mut step: impl FnMut()) -> f64 {
    for _ in 0..WARMUP_STEPS {
        step();
    }
    let budget = Duration::from_secs_f64(seconds);
    let start = Instant::now();
    let mut steps = 0usize;
    while start.elapsed() < budget || steps < 3 {
        step();
        steps += 1;
    }
    steps as f64 / start.elapsed().as_secs_f64()
}

/// GFLOP/s of the model's first-layer product `x · Wᵀ` at `batch` rows.
fn gemm_ceiling(config: &ModelConfig, batch: usize, seconds: f64) -> f64 {
    let (inputs, outputs) = config.layer_shapes()[0];
    let mut rng = stream_rng(0, Stream::Init);
    let x = Matrix::standard_normal(batch, inputs, &mut rng);
    let w = Matrix::standard_normal(outputs, inputs, &mut rng);
    let mut y = Matrix::default();
    let rate = steps_per_sec(seconds, || matmul(&mut y, &x, Op::N, &w, Op::T, false));
    rate * 2.0 * (batch * inputs * outputs) as f64 / 1e9
}

/// FLOPs of one training step per image: the forward pass, the weight gradients (as many
/// again), and the input gradients of every layer but the first (whose input is the data).
pub fn train_flops_per_image(config: &ModelConfig) -> f64 {
    let forward = config.forward_flops() as f64;
    // The layer reading the data: its input gradient is never computed.
    let first = config.plan().shapes().next().map_or(0, |s| s.forward_flops()) as f64 / 2.0;
    3.0 * forward - 2.0 * first
}

/// Measures training at each batch size and evaluation at [`EVAL_BATCH`], on `train`'s images.
pub fn run(
    train: &Split,
    options: &BenchOptions,
    on_result: &mut dyn FnMut(&Throughput),
) -> crate::Result<BenchReport> {
    let config = &options.model;
    options.validate()?;
    let peak = peak::measure(threads(), PEAK_SECONDS.min(options.seconds));
    let mut results = Vec::new();
    let mut record = |r: Throughput, results: &mut Vec<Throughput>| {
        on_result(&r);
        results.push(r);
    };
    let train_flops = train_flops_per_image(config);
    let mut last_model = None;
    for &batch_size in &options.batch_sizes {
        let mut steps = TrainingSteps::new(config, train, batch_size)?;
        let rate = steps_per_sec(options.seconds, || steps.step());
        let images_per_sec = rate * steps.batch as f64;
        record(
            Throughput {
                what: "train",
                batch_size,
                images_per_sec,
                gflops: images_per_sec * train_flops / 1e9,
                gemm_ceiling_gflops: gemm_ceiling(config, batch_size, options.seconds.min(2.0)),
                peak_gflops: peak.gflops,
            },
            &mut results,
        );
        last_model = Some(steps.model);
    }
    let model = match last_model {
        Some(m) => m,
        None => Model::new(config.clone(), &mut stream_rng(0, Stream::Init))?,
    };
    let order = permutation(train.len(), &mut stream_rng(0, Stream::Shuffle { epoch: 0 }));
    let mut rng = stream_rng(0, Stream::Eval { epoch: 0 });
    let (mut ws, mut x) = (Workspace::default(), Matrix::default());
    let eval_batch = EVAL_BATCH.min(train.len());
    train.batch_into(&order[..eval_batch], &mut x);
    let eval_condition = model.condition(&train.labels_of(&order[..eval_batch]))?;
    let rate = steps_per_sec(options.seconds, || {
        model.forward(&x, eval_condition.as_ref(), &mut ws, Latent::Sample(&mut rng));
        model.loss(&x, &mut ws, false);
    });
    let images_per_sec = rate * eval_batch as f64;
    record(
        Throughput {
            what: "eval",
            batch_size: eval_batch,
            images_per_sec,
            gflops: images_per_sec * config.forward_flops() as f64 / 1e9,
            gemm_ceiling_gflops: gemm_ceiling(config, eval_batch, options.seconds.min(2.0)),
            peak_gflops: peak.gflops,
        },
        &mut results,
    );
    Ok(BenchReport {
        framework: "vae",
        threads: threads(),
        hidden: config.hidden.clone(),
        latent: config.latent,
        peak,
        results,
    })
}
