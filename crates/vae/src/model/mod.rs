//! The models: an encoder and a decoder shared by the autoencoder and the VAE, so the two
//! compare fairly. Each file here has one job: this one the model's parts and how they are
//! built, [`condition`] the CVAE's label, [`forward`] inference, [`objective`] the losses and
//! the backward pass of a training step.
//!
//! Parameter names are paths (`encoder.fc1.weight`, `encoder.fc_mu.bias`, `decoder.fc_out.weight`)
//! given as the layers are built, and shapes follow PyTorch's `nn.Linear`, so a PyTorch user can
//! read a checkpoint as is.

mod condition;
mod config;
mod forward;
mod objective;
mod posterior;
mod workspace;

pub use config::{Arch, MNIST_SIDE, ModelConfig, ModelKind};
pub use objective::{Bound, LossBreakdown};
pub use posterior::{EncoderHead, Prior};
pub use workspace::Workspace;

use std::borrow::Cow;

use rand::Rng;

use crate::engine::layer::{Activation, Stack};
use crate::engine::{Conv2d, ConvTranspose2d, Linear, Matrix, Param};
use crate::error::Result;

/// `x → h → code`: the body (convolutions for the conv body, then dense layers, each followed
/// by ReLU; a CVAE's label joins `fc1`), then the head.
#[derive(Clone, Debug)]
pub struct Encoder {
    /// `conv1`, `conv2`, …, `fc1`, `fc2`, …: the first dense layer reads the pixels (MLP) or
    /// the flattened last feature map.
    pub body: Stack,
    pub head: EncoderHead,
}

/// An autoencoder or VAE: its configuration and its weights.
#[derive(Clone, Debug)]
pub struct Model {
    pub config: ModelConfig,
    pub encoder: Encoder,
    /// `z → logits`: dense layers with ReLU `fc1`, `fc2`, … (for the conv body the last one
    /// reaches the size of the encoder's last feature map), then `fc_out` to the pixels (MLP)
    /// or transposed convolutions `deconv1`, `deconv2`, … mirroring the encoder's, ReLU between
    /// them, the last with one output channel.
    pub decoder: Stack,
    /// What new codes are drawn from. The autoencoder was never trained toward it: its
    /// draws show what its decoder makes of codes it did not expect.
    pub prior: Prior,
}

/// How the latent code is chosen from the posterior in a forward pass.
pub enum Latent<'a, R: Rng> {
    /// `z = μ + σ ⊙ ε`, `ε ~ N(0, I)`: training and loss evaluation.
    Sample(&'a mut R),
    /// `z = μ`: pictures of reconstructions.
    Mean,
}

/// Activation values one pass of [`Model::decode`] or [`crate::latent::encode_codes`] may hold.
const ACTIVATION_BUDGET: usize = 64 << 20;
/// The most images one such pass takes: large enough to amortise the products.
pub const MAX_ROWS_PER_PASS: usize = 1024;

/// Rows `start..end` of `m`: `m` itself when that is all of it (a pass that holds every row
/// copies nothing), else a copy.
pub(crate) fn rows_of(m: &Matrix, start: usize, end: usize) -> Cow<'_, Matrix> {
    if start == 0 && end == m.rows {
        return Cow::Borrowed(m);
    }
    Cow::Owned(Matrix::from_vec(
        end - start,
        m.cols,
        m.data[start * m.cols..end * m.cols].to_vec(),
    ))
}

/// Appends dense layer `fc{number}` of `inputs` to `outputs` with ReLU. A CVAE's first one
/// also reads the `classes` label columns: initialised as one PyTorch layer over the
/// concatenation, then split into the layer and its label columns.
fn push_dense(stack: &mut Stack, number: usize, inputs: usize, outputs: usize, classes: usize, rng: &mut impl Rng) {
    let name = format!("fc{number}");
    let columns = if number == 1 { classes } else { 0 };
    let layer = Linear::new(inputs + columns, outputs, rng);
    if columns == 0 {
        stack.push(&name, layer, Activation::Relu);
        return;
    }
    let (mut data, mut label) = (
        Vec::with_capacity(outputs * inputs),
        Vec::with_capacity(outputs * columns),
    );
    for row in layer.weight.value.data.chunks_exact(inputs + columns) {
        data.extend_from_slice(&row[..inputs]);
        label.extend_from_slice(&row[inputs..]);
    }
    let layer = Linear {
        weight: Param::new(Matrix::from_vec(outputs, inputs, data)),
        bias: layer.bias,
    };
    let weight = Param::new(Matrix::from_vec(outputs, columns, label));
    stack.push_conditioned(&name, layer, weight, Activation::Relu);
}

impl Model {
    /// A freshly initialised model (PyTorch's default initialisation), layers drawn in
    /// execution order from `rng`.
    pub fn new(config: ModelConfig, rng: &mut impl Rng) -> Result<Self> {
        config.validate()?;
        let classes = config.classes;
        let mut body = Stack::new("encoder");
        for (i, g) in config.encoder_convs().into_iter().enumerate() {
            body.push(&format!("conv{}", i + 1), Conv2d::new(g, rng), Activation::Relu);
        }
        let mut width = config.dense_input();
        for (i, &h) in config.hidden.iter().enumerate() {
            push_dense(&mut body, i + 1, width, h, classes, rng);
            width = h;
        }
        let head = EncoderHead::new(config.kind, width, config.latent, rng);
        // The decoder's dense widths: the hidden layers mirrored, then (conv body) the size of
        // the encoder's last feature map, which the transposed convolutions take from there.
        let mut widths: Vec<usize> = config.hidden.iter().rev().copied().collect();
        if config.arch == Arch::Conv {
            widths.push(config.dense_input());
        }
        let mut decoder = Stack::new("decoder");
        let mut width = config.latent;
        for (i, h) in widths.into_iter().enumerate() {
            push_dense(&mut decoder, i + 1, width, h, classes, rng);
            width = h;
        }
        match config.arch {
            Arch::Mlp => {
                decoder.push("fc_out", Linear::new(width, config.pixels(), rng), Activation::Identity);
            }
            Arch::Conv => {
                let deconvs = config.decoder_deconvs();
                let last = deconvs.len() - 1;
                for (i, g) in deconvs.into_iter().enumerate() {
                    let activation = if i == last {
                        Activation::Identity
                    } else {
                        Activation::Relu
                    };
                    decoder.push(&format!("deconv{}", i + 1), ConvTranspose2d::new(g, rng), activation);
                }
            }
        }
        Ok(Model {
            config,
            encoder: Encoder { body, head },
            decoder,
            prior: Prior::StandardNormal,
        })
    }

    /// Every parameter, named, in a fixed order (the encoder's body, its head, the decoder):
    /// the one walk that saving, loading, the optimizer and the parameter count share.
    pub fn params(&self) -> Vec<&Param> {
        self.encoder
            .body
            .params()
            .chain(self.encoder.head.params())
            .chain(self.decoder.params())
            .collect()
    }

    /// Every parameter, mutably, in the order of [`Model::params`].
    pub fn params_mut(&mut self) -> Vec<&mut Param> {
        self.encoder
            .body
            .params_mut()
            .chain(self.encoder.head.params_mut())
            .chain(self.decoder.params_mut())
            .collect()
    }

    /// The parameter named `name` (`encoder.fc1.weight`), if the model has one.
    pub fn param_mut(&mut self, name: &str) -> Option<&mut Param> {
        self.params_mut().into_iter().find(|p| p.name == name)
    }

    /// Shapes of every parameter, in the order of [`Model::params`].
    pub fn param_shapes(&self) -> Vec<(usize, usize)> {
        self.params().iter().map(|p| p.value.shape()).collect()
    }

    /// How many images one pass may hold: as many as keep the activations of a pass near
    /// 64 M values (256 MB), at most [`MAX_ROWS_PER_PASS`].
    pub fn rows_per_pass(&self) -> usize {
        let per_image = self.config.activations_per_image().max(1);
        (ACTIVATION_BUDGET / per_image).clamp(1, MAX_ROWS_PER_PASS)
    }
}

#[cfg(test)]
mod tests;
