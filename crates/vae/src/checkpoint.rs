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
use serde::{Serialize, de::DeserializeOwned};

use crate::engine::{Adam, AdamConfig, Matrix, Param};
use crate::error::{Error, Result};
use crate::files::{read_limited, write_atomic};
use crate::model::Model;

const TRAIN_STATE_KEY: &str = "train_state";
const FORMAT_KEY: &str = "format";
const FORMAT: &str = "vae";

/// The on-disk shape of a parameter: biases (and a learned prior's logits) are 1-D, as in
/// PyTorch.
pub(crate) fn stored_shape(name: &str, m: &Matrix) -> Vec<usize> {
    if name.ends_with(".bias") || name.ends_with(".logits") {
        vec![m.cols]
    } else {
        vec![m.rows, m.cols]
    }
}

/// A matrix as a named tensor of its stored shape.
fn entry(name: String, m: &Matrix) -> (String, Vec<usize>, &[f32]) {
    let shape = stored_shape(&name, m);
    (name, shape, &m.data)
}

/// Serialises named f32 tensors of the given shapes, with metadata, into safetensors bytes.
///
/// # Panics
/// If a shape does not hold its values (a caller's bug).
fn serialize(tensors: &[(String, Vec<usize>, &[f32])], metadata: HashMap<String, String>) -> Result<Vec<u8>> {
    let bytes: Vec<Vec<u8>> = tensors
        .iter()
        .map(|(_, _, v)| v.iter().flat_map(|x| x.to_le_bytes()).collect())
        .collect();
    let views = tensors
        .iter()
        .zip(&bytes)
        .map(|((name, shape, _), b)| {
            let view = TensorView::new(Dtype::F32, shape.clone(), b).expect("a shape holds its values");
            (name.clone(), view)
        })
        .collect::<Vec<_>>();
    safetensors::serialize(views, Some(metadata)).map_err(|e| Error::config("safetensors", e.to_string()))
}

/// Writes the model's weights to `path`, atomically.
pub fn save_model(path: &Path, model: &Model) -> Result<()> {
    save_weights(path, &model.params())
}

/// Writes parameters' values to `path` under their names, atomically.
pub fn save_weights(path: &Path, params: &[&Param]) -> Result<()> {
    let tensors: Vec<_> = params.iter().map(|p| entry(p.name.clone(), &p.value)).collect();
    let metadata = HashMap::from([(FORMAT_KEY.to_string(), FORMAT.to_string())]);
    write_atomic(path, &serialize(&tensors, metadata)?)
}

/// Writes tensors given with their own shapes (for layouts other programs read, such as
/// PyTorch's 4-D convolution weights) to `path`, atomically.
///
/// # Panics
/// If a shape does not hold its values (a caller's bug).
pub fn save_tensors(path: &Path, tensors: &[(String, Vec<usize>, Vec<f32>)]) -> Result<()> {
    let views: Vec<_> = tensors
        .iter()
        .map(|(name, shape, values)| (name.clone(), shape.clone(), values.as_slice()))
        .collect();
    let metadata = HashMap::from([(FORMAT_KEY.to_string(), FORMAT.to_string())]);
    write_atomic(path, &serialize(&views, metadata)?)
}

/// SHA-256 of the weights file at `path` written for `model` (read under the cap loading
/// uses), as lowercase hex: what ties a file fitted to these weights, a sampler's, to them.
pub fn weights_fingerprint(path: &Path, model: &Model) -> Result<String> {
    use sha2::{Digest, Sha256};
    let values: usize = model.param_shapes().iter().map(|(r, c)| r * c).sum();
    let bytes = read_limited(path, size_limit(values))?;
    Ok(Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect())
}

/// Loads every parameter from the safetensors file at `path` by its name, refusing missing,
/// unexpected, mistyped, misshapen or non-finite tensors.
pub fn load_weights(path: &Path, params: Vec<&mut Param>) -> Result<()> {
    let values: usize = params.iter().map(|p| p.value.data.len()).sum();
    let bytes = read_limited(path, size_limit(values))?;
    let st = parse(path, &bytes)?;
    let expected = load_params(path, &st, params)?;
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
    SafeTensors::deserialize(bytes).map_err(|e| Error::checkpoint(path, format!("not a valid safetensors file ({e})")))
}

/// Copies tensor `name` into `target`, checking dtype, shape and values.
fn load_tensor(path: &Path, st: &SafeTensors, name: &str, target: &mut Matrix) -> Result<()> {
    let view = st.tensor(name).map_err(|_| {
        Error::checkpoint(
            path,
            format!("tensor {name} is missing (does config.json match these weights?)"),
        )
    })?;
    if view.dtype() != Dtype::F32 {
        return Err(Error::checkpoint(
            path,
            format!("tensor {name} is {:?}, expected F32", view.dtype()),
        ));
    }
    let expected = stored_shape(name, target);
    if view.shape() != expected.as_slice() {
        return Err(Error::checkpoint(
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
        return Err(Error::checkpoint(
            path,
            format!("tensor {name} holds a non-finite value ({bad})"),
        ));
    }
    Ok(())
}

/// Refuses tensors that no parameter claims.
fn refuse_unexpected(path: &Path, st: &SafeTensors, expected: &HashSet<String>) -> Result<()> {
    match st.names().into_iter().find(|n| !expected.contains(*n)) {
        Some(extra) => Err(Error::checkpoint(
            path,
            format!("unexpected tensor {extra} (does config.json match these weights?)"),
        )),
        None => Ok(()),
    }
}

/// Loads each parameter's tensor; returns the names read.
fn load_params(path: &Path, st: &SafeTensors, params: Vec<&mut Param>) -> Result<HashSet<String>> {
    let mut names = HashSet::new();
    for param in params {
        load_tensor(path, st, &param.name, &mut param.value)?;
        names.insert(param.name.clone());
    }
    Ok(names)
}

/// Writes weights, optimizer moments and the training state (any serialisable record; the
/// trainer's is [`crate::train::TrainState`]) to `path`, atomically.
pub fn save_checkpoint(path: &Path, model: &Model, adam: &Adam, state: &impl Serialize) -> Result<()> {
    let params = model.params();
    let mut tensors: Vec<_> = params.iter().map(|p| entry(p.name.clone(), &p.value)).collect();
    for ((p, m), v) in params.iter().zip(&adam.m).zip(&adam.v) {
        tensors.push(entry(format!("optimizer.m.{}", p.name), m));
        tensors.push(entry(format!("optimizer.v.{}", p.name), v));
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
/// loading weights into `model`; returns the optimizer (its step count not yet restored: the
/// state holds it) and the training state, parsed but not yet checked.
pub fn load_checkpoint<S: DeserializeOwned>(
    path: &Path,
    model: &mut Model,
    adam_config: AdamConfig,
) -> Result<(Adam, S)> {
    // Weights and Adam's two moments.
    let values: usize = model.param_shapes().iter().map(|(r, c)| r * c).sum();
    let bytes = read_limited(path, size_limit(3 * values))?;
    let st = parse(path, &bytes)?;
    let mut expected = load_params(path, &st, model.params_mut())?;
    let mut adam = Adam::new(adam_config, &model.param_shapes());
    let names: Vec<String> = model.params().into_iter().map(|p| p.name.clone()).collect();
    for ((name, m), v) in names.iter().zip(&mut adam.m).zip(&mut adam.v) {
        for (kind, target) in [("m", m), ("v", v)] {
            let key = format!("optimizer.{kind}.{name}");
            load_tensor(path, &st, &key, target)?;
            // The second moment is a running mean of squares: a negative one is forged, and
            // its square root would turn the weights to NaN on the first step.
            if kind == "v" && target.data.iter().any(|&x| x < 0.0) {
                return Err(Error::checkpoint(path, format!("tensor {key} holds a negative value")));
            }
            expected.insert(key);
        }
    }
    refuse_unexpected(path, &st, &expected)?;
    let (_, metadata) = SafeTensors::read_metadata(&bytes).map_err(|e| Error::checkpoint(path, e.to_string()))?;
    let state_json = metadata
        .metadata()
        .as_ref()
        .and_then(|m| m.get(TRAIN_STATE_KEY))
        .ok_or_else(|| Error::checkpoint(path, "no training state in the metadata: not a checkpoint"))?;
    let state = serde_json::from_str(state_json)
        .map_err(|e| Error::checkpoint(path, format!("invalid training state ({e})")))?;
    Ok((adam, state))
}

/// Exposes a parameter list's values for comparisons in tests and tools.
pub fn param_values(model: &Model) -> Vec<(String, Vec<f32>)> {
    model
        .params()
        .into_iter()
        .map(|p| (p.name.clone(), p.value.data.clone()))
        .collect()
}
