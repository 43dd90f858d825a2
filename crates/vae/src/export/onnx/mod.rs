//! `vae export RUN --onnx DIR`: `encoder.onnx` (image to `mu` and `logvar`, or an
//! autoencoder's `code`) and `decoder.onnx` (`code`, and a CVAE's one-hot `label`, to
//! `pixels`), with a dynamic batch size, opset [`OPSET`].
//!
//! The graphs are the PyTorch export's network ([`super::pytorch`]) written as ONNX
//! operators: `Conv`, `ConvTranspose`, `Flatten`, `Reshape`, `Gemm` (`transB = 1`: weights
//! stay `out x in`), `Relu`, `Sigmoid`, and for the Gaussian likelihood its standardisation
//! (`Sub`, `Div`) and back (`Mul`, `Add`). Images are NCHW in [0, 1]; vectors `[N, D]`.
//!
//! ONNX files are protocol buffers, written by [`proto`].

mod proto;

use std::path::{Path, PathBuf};

use proto::{Attribute, Graph, int_tensor, value_info};

use super::item_dims;
use crate::error::{Error, Result};
use crate::files::write_atomic;
use crate::model::{Arch, Model, ModelConfig, ModelKind};

/// The operator set the graphs are written for (ONNX 1.16, 2024).
pub const OPSET: i64 = 21;
/// The file format version of that opset.
const IR_VERSION: i64 = 10;

/// The files an export writes into its folder.
pub const FILES: [&str; 2] = ["encoder.onnx", "decoder.onnx"];

/// Writes `model`'s encoder and decoder into `dir` (made if missing) as [`FILES`], each
/// atomically; returns their paths.
///
/// # Errors
/// A file that cannot be written.
pub fn export(model: &Model, dir: &Path) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let tensors = super::pytorch::tensors(model);
    let paths: Vec<PathBuf> = FILES.iter().map(|f| dir.join(f)).collect();
    write_atomic(&paths[0], &encoder(&model.config, &tensors).model())?;
    write_atomic(&paths[1], &decoder(&model.config, &tensors).model())?;
    Ok(paths)
}

type Tensors = [(String, Vec<usize>, Vec<f32>)];

/// Adds a layer's weights as initializers; returns their names (bias last, if it has one).
fn weights(g: &mut Graph, tensors: &Tensors, layer: &str) -> Vec<String> {
    ["weight", "bias"]
        .iter()
        .filter_map(|part| {
            let name = format!("{layer}.{part}");
            let (_, dims, values) = tensors.iter().find(|(n, _, _)| *n == name)?;
            Some(g.weight(&name, dims, values))
        })
        .collect()
}

/// `op(x, layer's weight[, bias])`; returns its output (`out` when named).
fn layer_node(
    g: &mut Graph,
    op: &str,
    tensors: &Tensors,
    layer: &str,
    x: &str,
    attributes: &[Attribute],
    out: Option<&str>,
) -> String {
    let w = weights(g, tensors, layer);
    assert!(!w.is_empty(), "the model has no layer {layer}");
    let inputs: Vec<&str> = std::iter::once(x).chain(w.iter().map(String::as_str)).collect();
    g.node(op, &inputs, attributes, out)
}

/// `Gemm(x, W, b)` with `transB = 1`, plus the label's `Gemm` added where the layer has one,
/// then `Relu` if asked.
fn dense(
    g: &mut Graph,
    tensors: &Tensors,
    layer: &str,
    x: &str,
    label: Option<&str>,
    relu: bool,
    out: Option<&str>,
) -> String {
    let trans = [Attribute::Int("transB", 1)];
    let plain = !relu && label.is_none();
    let mut y = layer_node(g, "Gemm", tensors, layer, x, &trans, if plain { out } else { None });
    if let Some(label) = label {
        let l = layer_node(g, "Gemm", tensors, &format!("{layer}_label"), label, &trans, None);
        y = g.node("Add", &[&y, &l], &[], if relu { None } else { out });
    }
    if relu {
        y = g.node("Relu", &[&y], &[], out);
    }
    y
}

fn conv_attributes(output_padding: Option<usize>) -> Vec<Attribute> {
    use crate::model::{CONV_KERNEL, CONV_PADDING, CONV_STRIDE};
    let (k, s, p) = (CONV_KERNEL as i64, CONV_STRIDE as i64, CONV_PADDING as i64);
    let mut a = vec![
        Attribute::Ints("kernel_shape", vec![k, k]),
        Attribute::Ints("strides", vec![s, s]),
        Attribute::Ints("pads", vec![p, p, p, p]),
    ];
    if let Some(op) = output_padding {
        a.push(Attribute::Ints("output_padding", vec![op as i64, op as i64]));
    }
    a
}

/// The Gaussian likelihood's scaler, as [`super::pytorch::tensors`] orders it, as two
/// initializers shaped like one input so that they broadcast over the batch.
fn scaler(g: &mut Graph, config: &ModelConfig, tensors: &Tensors) -> Option<(String, String)> {
    let dims = item_dims(config);
    let mut add = |name: &str| {
        let (_, _, values) = tensors.iter().find(|(n, _, _)| n == name)?;
        Some(g.weight(name, &dims, values))
    };
    Some((add("scaler.mean")?, add("scaler.std")?))
}

fn encoder(config: &ModelConfig, tensors: &Tensors) -> Graph {
    let mut g = Graph::new("encoder");
    let input = if config.image_shape().is_vector() {
        "values"
    } else {
        "image"
    };
    g.inputs.push(value_info(input, &item_dims(config)));
    let label = (config.classes > 0).then_some("label");
    if label.is_some() {
        g.inputs.push(value_info("label", &[config.classes]));
    }
    let mut h = input.to_string();
    if let Some((mean, std)) = scaler(&mut g, config, tensors) {
        let centred = g.node("Sub", &[&h, &mean], &[], None);
        h = g.node("Div", &[&centred, &std], &[], None);
    }
    for i in 0..config.channels.len() {
        let layer = format!("encoder.conv{}", i + 1);
        let y = layer_node(&mut g, "Conv", tensors, &layer, &h, &conv_attributes(None), None);
        h = g.node("Relu", &[&y], &[], None);
    }
    if !config.image_shape().is_vector() {
        h = g.node("Flatten", &[&h], &[Attribute::Int("axis", 1)], None);
    }
    for i in 0..config.hidden.len() {
        let l = if i == 0 { label } else { None };
        h = dense(&mut g, tensors, &format!("encoder.fc{}", i + 1), &h, l, true, None);
    }
    if config.kind == ModelKind::Ae {
        dense(&mut g, tensors, "encoder.fc_z", &h, None, false, Some("code"));
        g.outputs.push(value_info("code", &[config.latent]));
    } else {
        dense(&mut g, tensors, "encoder.fc_mu", &h, None, false, Some("mu"));
        dense(&mut g, tensors, "encoder.fc_logvar", &h, None, false, Some("logvar"));
        g.outputs.push(value_info("mu", &[config.latent]));
        g.outputs.push(value_info("logvar", &[config.latent]));
    }
    g
}

fn decoder(config: &ModelConfig, tensors: &Tensors) -> Graph {
    let mut g = Graph::new("decoder");
    g.inputs.push(value_info("code", &[config.latent]));
    let label = (config.classes > 0).then_some("label");
    if label.is_some() {
        g.inputs.push(value_info("label", &[config.classes]));
    }
    let scaler = scaler(&mut g, config, tensors);
    let dims = item_dims(config);
    let output = if config.image_shape().is_vector() {
        "values"
    } else {
        "pixels"
    };
    let widths = config.hidden.len() + usize::from(config.arch == Arch::Conv);
    let mut h = "code".to_string();
    for i in 0..widths {
        let l = if i == 0 { label } else { None };
        h = dense(&mut g, tensors, &format!("decoder.fc{}", i + 1), &h, l, true, None);
    }
    let logits = match config.encoder_convs().last() {
        None => {
            let s = dense(&mut g, tensors, "decoder.fc_out", &h, None, false, None);
            let shape: Vec<i64> = std::iter::once(-1).chain(dims.iter().map(|&d| d as i64)).collect();
            g.initializers.push(int_tensor("output_shape", &shape));
            g.node("Reshape", &[&s, "output_shape"], &[], None)
        }
        Some(last) => {
            let map = [
                -1,
                last.out_channels as i64,
                last.out_height() as i64,
                last.out_width() as i64,
            ];
            g.initializers.push(int_tensor("feature_map_shape", &map));
            h = g.node("Reshape", &[&h, "feature_map_shape"], &[], None);
            let deconvs = config.decoder_deconvs();
            for (i, d) in deconvs.iter().enumerate() {
                let layer = format!("decoder.deconv{}", i + 1);
                let attributes = conv_attributes(Some(d.output_padding));
                h = layer_node(&mut g, "ConvTranspose", tensors, &layer, &h, &attributes, None);
                if i + 1 < deconvs.len() {
                    h = g.node("Relu", &[&h], &[], None);
                }
            }
            h
        }
    };
    match scaler {
        // The Gaussian's means, back in the data's units.
        Some((mean, std)) => {
            let scaled = g.node("Mul", &[&logits, &std], &[], None);
            g.node("Add", &[&mean, &scaled], &[], Some(output));
        }
        None => {
            g.node("Sigmoid", &[&logits], &[], Some(output));
        }
    }
    g.outputs.push(value_info(output, &dims));
    g
}
