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
use crate::engine::Param;
use crate::error::{Error, Result};
use crate::files::write_atomic;
use crate::model::{Arch, Model, ModelConfig, ModelKind};

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
    let tensors = tensors(model);
    let views: Vec<(String, Vec<usize>, &[f32])> = tensors
        .iter()
        .map(|(n, s, v)| (n.clone(), s.clone(), v.as_slice()))
        .collect();
    let paths: Vec<PathBuf> = FILES.iter().map(|f| dir.join(f)).collect();
    write_atomic(&paths[0], model_py(config).as_bytes())?;
    save_tensors(&paths[1], &views)?;
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

/// What the dense layers next to the image or feature map read and write: the block the
/// first dense layer of the encoder reads, and the block the last dense layer of the decoder
/// writes, with those layers' parameter paths.
fn flattened_blocks(config: &ModelConfig) -> [(String, Block); 2] {
    let block = match (config.arch, config.encoder_convs().last()) {
        (Arch::Conv, Some(g)) => Block {
            height: g.out_height(),
            width: g.out_width(),
            channels: g.out_channels,
        },
        _ => Block {
            height: config.image_height,
            width: config.image_width,
            channels: config.image_channels,
        },
    };
    let reader = if config.hidden.is_empty() {
        // No hidden layer: the heads read the input themselves (handled by the caller, which
        // permutes every head).
        "encoder.fc_head".to_string()
    } else {
        "encoder.fc1".to_string()
    };
    let writer = match config.arch {
        Arch::Mlp => "decoder.fc_out".to_string(),
        Arch::Conv => format!("decoder.fc{}", config.hidden.len() + 1),
    };
    [(reader, block), (writer, block)]
}

/// For each value of one item in PyTorch's order (NCHW flattened), the position of that
/// value in ours (channels-last); the identity for vectors and grey images.
pub(super) fn data_order(config: &ModelConfig) -> Vec<usize> {
    Block {
        height: config.image_height,
        width: config.image_width,
        channels: config.image_channels,
    }
    .channels_last_of_each()
}

/// Every parameter under its name, with the shape and values PyTorch's layer expects (and
/// ONNX's, which are the same).
///
/// The Gaussian likelihood's scaler comes as `scaler.mean` and `scaler.std` (buffers in
/// PyTorch, initializers in ONNX).
pub(super) fn tensors(model: &Model) -> Vec<(String, Vec<usize>, Vec<f32>)> {
    let config = &model.config;
    let [(reader, read_block), (writer, write_block)] = flattened_blocks(config);
    let reads_input = |name: &str| {
        let layer = name.rsplit_once('.').map_or(name, |(l, _)| l);
        if reader == "encoder.fc_head" {
            matches!(layer, "encoder.fc_mu" | "encoder.fc_logvar" | "encoder.fc_z")
        } else {
            layer == reader
        }
    };
    let kernel = crate::model::CONV_KERNEL;
    let data = data_order(config);
    let scaler = model.scaler.iter().flat_map(|sc| {
        [
            ("scaler.mean".to_string(), vec![data.len()], permute(&sc.mean, &data)),
            ("scaler.std".to_string(), vec![data.len()], permute(&sc.std, &data)),
        ]
    });
    let mut tensors: Vec<_> = model
        .params()
        .into_iter()
        .map(|p: &Param| {
            let name = p.name.clone();
            let m = &p.value;
            let is_bias = name.ends_with(".bias");
            let layer = name.rsplit_once('.').map_or(name.as_str(), |(l, _)| l);
            let is_conv = layer
                .rsplit('.')
                .next()
                .is_some_and(|l| l.starts_with("conv") || l.starts_with("deconv"));
            if is_bias {
                let values = if layer == writer {
                    permute(&m.data, &write_block.channels_last_of_each())
                } else {
                    m.data.clone()
                };
                return (name, vec![m.cols], values);
            }
            if is_conv {
                return (
                    name,
                    vec![m.rows, m.cols / (kernel * kernel), kernel, kernel],
                    m.data.clone(),
                );
            }
            if reads_input(&name) && read_block.channels > 1 {
                let order = read_block.channels_last_of_each();
                let values = m
                    .data
                    .chunks_exact(m.cols)
                    .flat_map(|row| permute(row, &order))
                    .collect();
                return (name, vec![m.rows, m.cols], values);
            }
            if layer == writer && write_block.channels > 1 {
                let order = write_block.channels_last_of_each();
                let values = order.iter().flat_map(|&r| m.row(r).to_vec()).collect();
                return (name, vec![m.rows, m.cols], values);
            }
            if name == "decoder.logvar" {
                // One log-variance per value: in PyTorch's order of the values.
                return (name, vec![m.rows, m.cols], permute(&m.data, &data));
            }
            (name, vec![m.rows, m.cols], m.data.clone())
        })
        .collect();
    tensors.extend(scaler);
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
    let shape = config.image_shape();
    let input = if shape.is_vector() {
        format!("[{}]", shape.width)
    } else {
        list(&[shape.channels, shape.height, shape.width])
    };
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
