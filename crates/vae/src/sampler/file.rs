//! `RUN/sampler-gmm.safetensors`: each mixture `g` (one, or one per class) as three `F64`
//! tensors, `mixture.g.weights` `[K]`, `mixture.g.means` `[K, D]` and `mixture.g.scale_tril`
//! `[K, D, D]` (the lower Cholesky factors, as `torch.distributions.MultivariateNormal`'s
//! `scale_tril`), and one metadata entry, `sampler`, holding the JSON record below: what it
//! is, the SHA-256 of the `model.safetensors` it was fitted to, and the fit's report.
//! `RUN/sampler-gmm.json` repeats the record for people; loading reads the safetensors only.
//!
//! Loading trusts nothing: the record must name this kind and these weights, every tensor
//! must be there with the shape the record and the model imply, and the parts must make a
//! mixture ([`GaussianMixture::new`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use safetensors::{Dtype, SafeTensors, tensor::TensorView};
use serde::{Deserialize, Serialize};

use super::gmm::{MAX_COMPONENTS, MAX_DIMS};
use super::{FittedGmm, GaussianMixture, GmmReport};
use crate::checkpoint::weights_fingerprint;
use crate::error::{Error, Result};
use crate::files::{read_limited, write_atomic};
use crate::model::Model;
use crate::run::RunDir;

const METADATA_KEY: &str = "sampler";
const FORMAT: &str = "vae-sampler";

/// The record in the metadata and beside the file.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Record {
    format: String,
    kind: String,
    /// SHA-256 of the weights the codes came from.
    model_sha256: String,
    latent: usize,
    mixtures: usize,
    report: GmmReport,
}

fn tensors_path(run: &RunDir) -> PathBuf {
    run.root.join("sampler-gmm.safetensors")
}

fn record_path(run: &RunDir) -> PathBuf {
    run.root.join("sampler-gmm.json")
}

fn f64_bytes(v: &[f64]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Writes the mixtures and their record, each atomically.
pub fn save(run: &RunDir, model: &Model, fitted: &FittedGmm) -> Result<()> {
    let record = Record {
        format: FORMAT.into(),
        kind: "gmm".into(),
        model_sha256: weights_fingerprint(&run.model(), model)?,
        latent: model.config.latent,
        mixtures: fitted.mixtures.len(),
        report: fitted.report.clone(),
    };
    let mut named = Vec::new();
    for (g, m) in fitted.mixtures.iter().enumerate() {
        let (k, d) = (m.components(), m.dim());
        named.push((format!("mixture.{g}.weights"), vec![k], f64_bytes(m.weights())));
        named.push((format!("mixture.{g}.means"), vec![k, d], f64_bytes(m.means())));
        named.push((
            format!("mixture.{g}.scale_tril"),
            vec![k, d, d],
            f64_bytes(m.scale_tril()),
        ));
    }
    let views: Vec<(String, TensorView)> = named
        .iter()
        .map(|(name, shape, bytes)| {
            let view = TensorView::new(Dtype::F64, shape.clone(), bytes).expect("sizes agree by construction");
            (name.clone(), view)
        })
        .collect();
    let json = serde_json::to_string(&record).expect("a record serialises");
    let metadata = HashMap::from([(METADATA_KEY.to_string(), json)]);
    let bytes =
        safetensors::serialize(views, Some(metadata)).map_err(|e| Error::config("safetensors", e.to_string()))?;
    write_atomic(&tensors_path(run), &bytes)?;
    let pretty = serde_json::to_string_pretty(&record).expect("a record serialises");
    write_atomic(&record_path(run), format!("{pretty}\n").as_bytes())
}

/// Reads the fitted mixtures of the run in `run`, whose model is `model`.
pub fn load(run: &RunDir, model: &Model) -> Result<FittedGmm> {
    let path = tensors_path(run);
    let d = model.config.latent;
    let groups = model.conditioning().classes().unwrap_or(1);
    if d > MAX_DIMS {
        return Err(Error::checkpoint(
            &path,
            format!("a latent of {d} is beyond the {MAX_DIMS} dimensions a mixture is fitted to"),
        ));
    }
    if !path.exists() {
        return Err(Error::checkpoint(
            &path,
            format!(
                "no fitted sampler here: run `vae fit-sampler {} --kind gmm` first",
                run.root.display()
            ),
        ));
    }
    let limit = (groups * MAX_COMPONENTS * (1 + d + d * d) * 8) as u64 + (1 << 20);
    let bytes = read_limited(&path, limit)?;
    let st = SafeTensors::deserialize(&bytes)
        .map_err(|e| Error::checkpoint(&path, format!("not a valid safetensors file ({e})")))?;
    let (_, metadata) = SafeTensors::read_metadata(&bytes).map_err(|e| Error::checkpoint(&path, e.to_string()))?;
    let json = metadata
        .metadata()
        .as_ref()
        .and_then(|m| m.get(METADATA_KEY))
        .ok_or_else(|| Error::checkpoint(&path, "no sampler record in the metadata: not a sampler file"))?;
    let record: Record =
        serde_json::from_str(json).map_err(|e| Error::checkpoint(&path, format!("invalid sampler record ({e})")))?;
    if record.format != FORMAT || record.kind != "gmm" {
        return Err(Error::checkpoint(
            &path,
            format!("holds a {} {}, not a gmm sampler", record.format, record.kind),
        ));
    }
    if record.model_sha256 != weights_fingerprint(&run.model(), model)? {
        return Err(Error::checkpoint(
            &path,
            format!(
                "was fitted to other weights than {} (trained further since?): run `vae fit-sampler {} --kind gmm` again",
                run.model().display(),
                run.root.display()
            ),
        ));
    }
    if record.latent != d || record.mixtures != groups {
        return Err(Error::checkpoint(
            &path,
            format!(
                "holds {} mixture(s) of {} dimensions, this run needs {groups} of {d}",
                record.mixtures, record.latent
            ),
        ));
    }
    let mut mixtures = Vec::with_capacity(groups);
    for g in 0..groups {
        let weights = read_f64(&path, &st, &format!("mixture.{g}.weights"), None)?;
        let k = weights.len();
        let means = read_f64(&path, &st, &format!("mixture.{g}.means"), Some(&[k, d]))?;
        let tril = read_f64(&path, &st, &format!("mixture.{g}.scale_tril"), Some(&[k, d, d]))?;
        let mixture = GaussianMixture::new(d, weights, means, tril)
            .map_err(|e| Error::checkpoint(&path, format!("mixture {g}: {e}")))?;
        mixtures.push(mixture);
    }
    if st.len() != 3 * groups {
        return Err(Error::checkpoint(&path, "holds tensors beyond its mixtures"));
    }
    Ok(FittedGmm {
        mixtures,
        report: record.report,
    })
}

/// Tensor `name` as `f64` values, of `shape` when given (else 1-D of at most
/// [`MAX_COMPONENTS`] values).
fn read_f64(path: &Path, st: &SafeTensors, name: &str, shape: Option<&[usize]>) -> Result<Vec<f64>> {
    let view = st
        .tensor(name)
        .map_err(|_| Error::checkpoint(path, format!("tensor {name} is missing")))?;
    if view.dtype() != Dtype::F64 {
        return Err(Error::checkpoint(
            path,
            format!("tensor {name} is {:?}, expected F64", view.dtype()),
        ));
    }
    let ok = match shape {
        Some(shape) => view.shape() == shape,
        None => view.shape().len() == 1 && (1..=MAX_COMPONENTS).contains(&view.shape()[0]),
    };
    if !ok {
        let expected = shape.map_or(format!("[K] with K from 1 to {MAX_COMPONENTS}"), |s| format!("{s:?}"));
        return Err(Error::checkpoint(
            path,
            format!("tensor {name} has shape {:?}, expected {expected}", view.shape()),
        ));
    }
    Ok(view
        .data()
        .chunks_exact(8)
        .map(|b| f64::from_le_bytes(b.try_into().expect("chunks of eight")))
        .collect())
}
