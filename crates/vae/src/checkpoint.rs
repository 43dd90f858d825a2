//! Saving and loading weights and training state as safetensors.
//!
//! `model.safetensors` holds the weights under their paths (`encoder.fc1.weight`, shape
//! `[400, 784]`; biases 1-D), readable by PyTorch's `safetensors.torch.load_file`.
//! `checkpoint.safetensors` adds Adam's moments (`optimizer.m.<name>`, `optimizer.v.<name>`)
//! and, in its metadata, the training state as JSON: one file, written atomically, is all that
//! `--resume` needs, so a run can never resume from weights and state of different moments.
//!
//! Loading trusts nothing: every expected tensor must be present, `F32`, of the exact shape
//! the config implies, and finite; an unexpected tensor means the file and config disagree.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use safetensors::{Dtype, SafeTensors, tensor::TensorView};

use crate::engine::{Adam, AdamConfig, Matrix, Param};
use crate::error::{Error, Result};
use crate::files::{read_limited, write_atomic};
use crate::model::Model;
use crate::rng::{RunRng, Stream, stream_rng};
use crate::run::RunDir;

const TRAIN_STATE_KEY: &str = "train_state";
const FORMAT_KEY: &str = "format";
const FORMAT: &str = "vae";

fn checkpoint_error(path: &Path, problem: impl Into<String>) -> Error {
    Error::Checkpoint {
        path: path.to_path_buf(),
        problem: problem.into(),
    }
}

/// The on-disk shape of a parameter: biases are 1-D, as in PyTorch.
fn stored_shape(name: &str, m: &Matrix) -> Vec<usize> {
    if name.ends_with(".bias") {
        vec![m.cols]
    } else {
        vec![m.rows, m.cols]
    }
}

fn le_bytes(m: &Matrix) -> Vec<u8> {
    m.data.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// Serialises named matrices with metadata into safetensors bytes.
fn serialize(tensors: &[(String, &Matrix)], metadata: HashMap<String, String>) -> Result<Vec<u8>> {
    let bytes: Vec<Vec<u8>> = tensors.iter().map(|(_, m)| le_bytes(m)).collect();
    let views = tensors
        .iter()
        .zip(&bytes)
        .map(|((name, m), b)| {
            let view = TensorView::new(Dtype::F32, stored_shape(name, m), b).expect("sizes agree by construction");
            (name.clone(), view)
        })
        .collect::<Vec<_>>();
    safetensors::serialize(views, Some(metadata)).map_err(|e| Error::config("safetensors", e.to_string()))
}

/// Writes the model's weights to `path`, atomically.
pub fn save_model(path: &Path, model: &Model) -> Result<()> {
    save_weights(path, &model.named_params())
}

/// Writes named parameters' values to `path`, atomically.
pub fn save_weights(path: &Path, params: &[(String, &Param)]) -> Result<()> {
    let tensors: Vec<(String, &Matrix)> = params.iter().map(|(n, p)| (n.clone(), &p.value)).collect();
    let metadata = HashMap::from([(FORMAT_KEY.to_string(), FORMAT.to_string())]);
    write_atomic(path, &serialize(&tensors, metadata)?)
}

/// Loads every named parameter from the safetensors file at `path`, refusing missing,
/// unexpected, mistyped, misshapen or non-finite tensors.
pub fn load_weights(path: &Path, params: Vec<(String, &mut Param)>) -> Result<()> {
    let values: usize = params.iter().map(|(_, p)| p.value.data.len()).sum();
    let bytes = read_limited(path, size_limit(values))?;
    let st = parse(path, &bytes)?;
    let mut expected = HashSet::new();
    for (name, param) in params {
        load_tensor(path, &st, &name, &mut param.value)?;
        expected.insert(name);
    }
    refuse_unexpected(path, &st, &expected)
}

/// Room for a safetensors header: tensor names and shapes, and a checkpoint's training state
/// (its history grows ~300 bytes an epoch, up to [`crate::run::MAX_EPOCHS`]).
const MAX_HEADER_BYTES: u64 = 64 << 20;

/// The largest file that can hold `values` f32 values: anything larger is refused unread.
fn size_limit(values: usize) -> u64 {
    4 * values as u64 + MAX_HEADER_BYTES
}

fn parse<'a>(path: &Path, bytes: &'a [u8]) -> Result<SafeTensors<'a>> {
    SafeTensors::deserialize(bytes).map_err(|e| checkpoint_error(path, format!("not a valid safetensors file ({e})")))
}

/// Copies tensor `name` into `target`, checking dtype, shape and values.
fn load_tensor(path: &Path, st: &SafeTensors, name: &str, target: &mut Matrix) -> Result<()> {
    let view = st.tensor(name).map_err(|_| {
        checkpoint_error(
            path,
            format!("tensor {name} is missing (does config.json match these weights?)"),
        )
    })?;
    if view.dtype() != Dtype::F32 {
        return Err(checkpoint_error(
            path,
            format!("tensor {name} is {:?}, expected F32", view.dtype()),
        ));
    }
    let expected = stored_shape(name, target);
    if view.shape() != expected.as_slice() {
        return Err(checkpoint_error(
            path,
            format!(
                "tensor {name} has shape {:?}, the config implies {expected:?}",
                view.shape()
            ),
        ));
    }
    for (v, b) in target.data.iter_mut().zip(view.data().chunks_exact(4)) {
        *v = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    }
    if let Some(bad) = target.data.iter().find(|v| !v.is_finite()) {
        return Err(checkpoint_error(
            path,
            format!("tensor {name} holds a non-finite value ({bad})"),
        ));
    }
    Ok(())
}

/// Refuses tensors that no parameter claims.
fn refuse_unexpected(path: &Path, st: &SafeTensors, expected: &HashSet<String>) -> Result<()> {
    match st.names().into_iter().find(|n| !expected.contains(*n)) {
        Some(extra) => Err(checkpoint_error(
            path,
            format!("unexpected tensor {extra} (does config.json match these weights?)"),
        )),
        None => Ok(()),
    }
}

fn load_params(path: &Path, st: &SafeTensors, model: &mut Model) -> Result<HashSet<String>> {
    let mut names = HashSet::new();
    for (name, param) in model.named_params_mut() {
        load_tensor(path, st, &name, &mut param.value)?;
        names.insert(name);
    }
    Ok(names)
}

/// Rebuilds a trained model from a run folder: `config.json` says what it is,
/// `model.safetensors` holds its weights.
pub fn load_model(run: &RunDir) -> Result<Model> {
    let config = run.read_config()?;
    let mut model = Model::new(config.model, &mut stream_rng(0, Stream::Init))?;
    load_weights(&run.model(), model.named_params_mut())?;
    Ok(model)
}

/// Where a run stands, saved in the checkpoint's metadata.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
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
    pub partial: crate::train::EpochProgress,
    /// Metrics of every finished epoch (what `metrics.jsonl` holds).
    pub history: Vec<crate::train::EpochMetrics>,
    /// The run's configuration when the checkpoint was written, so that a resume under an
    /// edited `config.json` is refused rather than silently training another objective.
    pub config: crate::run::RunConfig,
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
        let bad = |problem: String| Err(checkpoint_error(path, format!("invalid training state: {problem}")));
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
        let elbo = self.config.train.objective == crate::run::TrainObjective::Elbo;
        for (i, m) in self.history.iter().enumerate() {
            let loss_ok =
                |v: f64, non_negative: bool| v.is_finite() && v.abs() <= MAX_LOSS && (!non_negative || v >= -ROUNDING);
            let problem = if m.epoch != i + 1 {
                Some(format!("is numbered {}", m.epoch))
            } else if !loss_ok(m.train_loss, elbo) {
                Some(format!("train_loss {} is out of range", shown(m.train_loss)))
            } else if !(loss_ok(m.test_loss, true) && loss_ok(m.test_recon, true) && loss_ok(m.test_kl, true)) {
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
        let bad = |problem: String| Err(checkpoint_error(path, problem));
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

/// Writes weights, optimizer moments and training state to `path`, atomically.
pub fn save_checkpoint(path: &Path, model: &Model, adam: &Adam, state: &TrainState) -> Result<()> {
    let params = model.named_params();
    let mut tensors: Vec<(String, &Matrix)> = params.iter().map(|(n, p)| (n.clone(), &p.value)).collect();
    for (((name, _), m), v) in params.iter().zip(&adam.m).zip(&adam.v) {
        tensors.push((format!("optimizer.m.{name}"), m));
        tensors.push((format!("optimizer.v.{name}"), v));
    }
    // One metadata key only: safetensors writes its metadata map in hash order, and a single
    // entry keeps the file's bytes a function of the run alone (the kill test compares them).
    let metadata = HashMap::from([(
        TRAIN_STATE_KEY.to_string(),
        serde_json::to_string(state).expect("state serialises"),
    )]);
    write_atomic(path, &serialize(&tensors, metadata)?)
}

/// Reads a checkpoint written by [`save_checkpoint`] for a model of `model`'s architecture,
/// loading weights into `model`; returns the optimizer and the training state.
pub fn load_checkpoint(path: &Path, model: &mut Model, adam_config: AdamConfig) -> Result<(Adam, TrainState)> {
    // Weights and Adam's two moments.
    let values: usize = model.param_shapes().iter().map(|(r, c)| r * c).sum();
    let bytes = read_limited(path, size_limit(3 * values))?;
    let st = parse(path, &bytes)?;
    let mut expected = load_params(path, &st, model)?;
    let mut adam = Adam::new(adam_config, &model.param_shapes());
    let names: Vec<String> = model.named_params().into_iter().map(|(n, _)| n).collect();
    for ((name, m), v) in names.iter().zip(&mut adam.m).zip(&mut adam.v) {
        for (kind, target) in [("m", m), ("v", v)] {
            let key = format!("optimizer.{kind}.{name}");
            load_tensor(path, &st, &key, target)?;
            // The second moment is a running mean of squares: a negative one is forged, and
            // its square root would turn the weights to NaN on the first step.
            if kind == "v" && target.data.iter().any(|&x| x < 0.0) {
                return Err(checkpoint_error(path, format!("tensor {key} holds a negative value")));
            }
            expected.insert(key);
        }
    }
    refuse_unexpected(path, &st, &expected)?;
    let (_, metadata) = SafeTensors::read_metadata(&bytes).map_err(|e| checkpoint_error(path, e.to_string()))?;
    let state_json = metadata
        .metadata()
        .as_ref()
        .and_then(|m| m.get(TRAIN_STATE_KEY))
        .ok_or_else(|| checkpoint_error(path, "no training state in the metadata: not a checkpoint"))?;
    let state: TrainState = serde_json::from_str(state_json)
        .map_err(|e| checkpoint_error(path, format!("invalid training state ({e})")))?;
    adam.step = state.adam_step;
    Ok((adam, state))
}

/// Exposes a parameter list's values for comparisons in tests and tools.
pub fn param_values(model: &Model) -> Vec<(String, Vec<f32>)> {
    model
        .named_params()
        .into_iter()
        .map(|(n, p): (String, &Param)| (n, p.value.data.clone()))
        .collect()
}
