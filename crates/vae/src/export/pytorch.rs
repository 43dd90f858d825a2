//! `vae export RUN --pytorch DIR`: `model.py`, the network as a `torch.nn.Module` built from
//! `nn.Linear`, `nn.Conv2d` and `nn.ConvTranspose2d`; `model.safetensors`, its weights in
//! PyTorch's layouts; `train.py`, which continues training it on a GPU or, under `torchrun`,
//! on several (DistributedDataParallel).
//!
//! Our layers already keep PyTorch's weight shapes; what differs is how an image is laid out.
//! We store images and feature maps channels-last, one row per image in (row, column,
//! channel) order, where PyTorch works in NCHW and its `flatten` gives (channel, row,
//! column). So the dense layer that reads a flattened image or feature map gets its input
//! columns permuted, the dense layer that writes one gets its output rows (and bias)
//! permuted, and convolution weights are stored 4-D (`[out, in, 3, 3]`, transposed
//! `[in, out, 3, 3]`) instead of flattened. Nothing else changes, so the module computes our
//! numbers to rounding.

use std::path::{Path, PathBuf};

use crate::checkpoint::save_tensors;
use crate::error::{Error, Result};
use crate::files::write_atomic;
use crate::model::{Arch, LayerShape, Model, ModelConfig, ModelKind};

/// The files an export writes into its folder.
pub const FILES: [&str; 3] = ["model.py", "model.safetensors", "train.py"];

/// Why a model cannot be exported (yet), if it cannot: one line naming what.
pub fn refusal(config: &ModelConfig) -> Option<String> {
    if !config.prior.is_standard() {
        return Some(format!(
            "its learned prior ({}) has no PyTorch export yet (models with the prior N(0, I) have)",
            config.prior.name()
        ));
    }
    if config.kind == ModelKind::Cvae && config.hidden.is_empty() {
        return Some("a CVAE without hidden layers has no layer for its label to join".into());
    }
    None
}

/// Writes `model` into `dir` (made if missing) as [`FILES`], each file atomically; returns
/// their paths.
///
/// # Errors
/// A model [`refusal`] names, or a file that cannot be written.
pub fn export(model: &Model, dir: &Path) -> Result<Vec<PathBuf>> {
    let config = &model.config;
    if let Some(why) = refusal(config) {
        return Err(Error::CannotExport(why));
    }
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let paths: Vec<PathBuf> = FILES.iter().map(|f| dir.join(f)).collect();
    write_atomic(&paths[0], model_py(config).as_bytes())?;
    save_tensors(&paths[1], &tensors(model))?;
    write_atomic(&paths[2], TRAIN_PY.as_bytes())?;
    Ok(paths)
}

/// A flattened `(height, width, channels)` block: where value `(h, w, c)` sits channels-last
/// and where PyTorch's `flatten` of `[channels, height, width]` puts it.
#[derive(Clone, Copy, Debug)]
struct Block {
    height: usize,
    width: usize,
    channels: usize,
}

impl Block {
    /// One item of the data: the image, or a vector (one row, one channel).
    fn of_item(config: &ModelConfig) -> Block {
        Block {
            height: config.image_height,
            width: config.image_width,
            channels: config.image_channels,
        }
    }

    fn len(&self) -> usize {
        self.height * self.width * self.channels
    }

    /// For each PyTorch position, the channels-last position holding the same value.
    fn channels_last_of_each(&self) -> Vec<usize> {
        let (h, w, c) = (self.height, self.width, self.channels);
        let mut out = Vec::with_capacity(self.len());
        for ch in 0..c {
            for y in 0..h {
                for x in 0..w {
                    out.push((y * w + x) * c + ch);
                }
            }
        }
        out
    }
}

/// The block that dense layers read or write flattened, and those layers' paths.
struct Flattened {
    /// The image (MLP), or the encoder's last feature map (conv).
    block: Block,
    /// The layers reading it: the encoder's first dense layer, or with no hidden layer its
    /// heads.
    readers: Vec<String>,
    /// The layer writing it: `decoder.fc_out`, or the conv decoder's last dense layer.
    writer: String,
}

impl Flattened {
    fn of(config: &ModelConfig) -> Flattened {
        let block = match config.encoder_convs().last() {
            Some(g) => Block {
                height: g.out_height(),
                width: g.out_width(),
                channels: g.out_channels,
            },
            None => Block::of_item(config),
        };
        let readers = if config.hidden.is_empty() {
            ["encoder.fc_mu", "encoder.fc_logvar", "encoder.fc_z"]
                .map(String::from)
                .to_vec()
        } else {
            vec!["encoder.fc1".to_string()]
        };
        let writer = match config.arch {
            Arch::Mlp => "decoder.fc_out".to_string(),
            Arch::Conv => format!("decoder.fc{}", config.hidden.len() + 1),
        };
        Flattened { block, readers, writer }
    }
}

/// For each value of one item in PyTorch's order (NCHW flattened), the position of that
/// value in ours (channels-last); the identity for vectors and grey images.
fn data_order(config: &ModelConfig) -> Vec<usize> {
    Block::of_item(config).channels_last_of_each()
}

/// Every parameter under its name, with the shape and values PyTorch's layer expects (and
/// ONNX's, which are the same).
///
/// The Gaussian likelihood's scaler comes as `scaler.mean` and `scaler.std` (buffers in
/// PyTorch, initializers in ONNX), in PyTorch's order of the values.
pub(super) fn tensors(model: &Model) -> Vec<(String, Vec<usize>, Vec<f32>)> {
    let config = &model.config;
    let flat = Flattened::of(config);
    let order = flat.block.channels_last_of_each();
    let data = data_order(config);
    let plan = config.plan();
    let convs: Vec<String> = (plan.body.iter().map(|l| ("encoder", l)))
        .chain(plan.decoder.iter().map(|l| ("decoder", l)))
        .filter(|(_, l)| matches!(l.shape, LayerShape::Conv(_) | LayerShape::Deconv(_)))
        .map(|(side, l)| format!("{side}.{}", l.name))
        .collect();
    let kernel = crate::model::CONV_KERNEL;
    let mut tensors: Vec<_> = model
        .params()
        .into_iter()
        .map(|p| {
            let (name, m) = (p.name.clone(), &p.value);
            let (layer, part) = name.rsplit_once('.').unwrap_or((name.as_str(), ""));
            let is_conv = convs.iter().any(|c| c == layer);
            let shape = if is_conv && part == "weight" {
                vec![m.rows, m.cols / (kernel * kernel), kernel, kernel]
            } else {
                crate::checkpoint::stored_shape(&name, m)
            };
            let values = match part {
                "bias" if layer == flat.writer => permute(&m.data, &order),
                "weight" if flat.readers.iter().any(|r| r == layer) => m
                    .data
                    .chunks_exact(m.cols)
                    .flat_map(|row| permute(row, &order))
                    .collect(),
                "weight" if layer == flat.writer => order.iter().flat_map(|&r| m.row(r).to_vec()).collect(),
                // One log-variance per value of the Gaussian likelihood.
                "logvar" if layer == "decoder" => permute(&m.data, &data),
                _ => m.data.clone(),
            };
            (name, shape, values)
        })
        .collect();
    if let Some(scaler) = &model.scaler {
        tensors.push(("scaler.mean".into(), vec![data.len()], permute(&scaler.mean, &data)));
        tensors.push(("scaler.std".into(), vec![data.len()], permute(&scaler.std, &data)));
    }
    tensors
}

/// `out[i] = values[order[i]]`.
fn permute(values: &[f32], order: &[usize]) -> Vec<f32> {
    order.iter().map(|&i| values[i]).collect()
}

/// `model.py`: the generic module below, with this model's sizes.
fn model_py(config: &ModelConfig) -> String {
    let list = |v: &[usize]| format!("[{}]", v.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(", "));
    let padding: Vec<usize> = config.decoder_deconvs().iter().map(|g| g.output_padding).collect();
    let input = list(&super::item_dims(config));
    let feature_map = match config.encoder_convs().last() {
        Some(g) => list(&[g.out_channels, g.out_height(), g.out_width()]),
        None => "None".into(),
    };
    let settings = format!(
        "CONFIG = {{\n    \"kind\": \"{}\",\n    \"arch\": \"{}\",\n    \"input\": {input},\n    \"channels\": {},\n    \"hidden\": {},\n    \"latent\": {},\n    \"classes\": {},\n    \"recon\": \"{}\",\n    \"beta\": {:?},\n    \"feature_map\": {feature_map},\n    \"output_padding\": {},\n}}\n",
        config.kind.name(),
        config.arch.name(),
        list(&config.channels),
        list(&config.hidden),
        config.latent,
        config.classes,
        config.recon.name(),
        config.beta as f64,
        list(&padding),
    );
    MODEL_PY.replace("CONFIG = {}  # filled in by vae export\n", &settings)
}

const MODEL_PY: &str = include_str!("model.py");
const TRAIN_PY: &str = include_str!("train.py");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_py_carries_the_sizes_and_both_scripts_parse_as_python() {
        let config = ModelConfig {
            kind: ModelKind::Cvae,
            classes: 10,
            ..ModelConfig::for_body(Arch::Conv, None, None)
        };
        let py = model_py(&config);
        assert!(!py.contains("filled in by vae export"), "the sizes were not written in");
        for needle in [
            "\"kind\": \"cvae\"",
            "\"channels\": [32, 64]",
            "\"feature_map\": [64, 7, 7]",
            "\"output_padding\": [1, 1]",
        ] {
            assert!(py.contains(needle), "{needle} missing from:\n{py}");
        }
        // Syntax only (no torch needed), where a Python is found.
        let tmp = tempfile::tempdir().unwrap();
        for (name, text) in [("model.py", py.as_str()), ("train.py", TRAIN_PY)] {
            let path = tmp.path().join(name);
            std::fs::write(&path, text).unwrap();
            let parsed = std::process::Command::new("python3")
                .args(["-c", "import ast, sys; ast.parse(open(sys.argv[1]).read())"])
                .arg(&path)
                .output();
            match parsed {
                Ok(o) => assert!(o.status.success(), "{name}: {}", String::from_utf8_lossy(&o.stderr)),
                Err(e) => eprintln!("skipped parsing {name}: no python3 ({e})"),
            }
        }
    }

    #[test]
    fn a_pytorch_position_reads_the_value_channels_last_storage_holds_there() {
        // 2 x 2 pixels, 3 channels: channels-last value (h, w, c) is 100h + 10w + c.
        let block = Block {
            height: 2,
            width: 2,
            channels: 3,
        };
        let stored: Vec<f32> = (0..2)
            .flat_map(|h| (0..2).flat_map(move |w| (0..3).map(move |c| (100 * h + 10 * w + c) as f32)))
            .collect();
        let chw = permute(&stored, &block.channels_last_of_each());
        // PyTorch's flatten of [3, 2, 2]: channel 0's four pixels first.
        assert_eq!(&chw[..4], &[0.0, 10.0, 100.0, 110.0]);
        assert_eq!(&chw[4..8], &[1.0, 11.0, 101.0, 111.0]);
        assert_eq!(chw[11], 112.0);
    }
}
