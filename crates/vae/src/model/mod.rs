//! The models: an encoder and a decoder shared by the autoencoder and the VAE, so the two
//! compare fairly. Each file here has one job: this one the model's parts and how they are
//! built, [`plan`] the layers a config describes, [`condition`] the CVAE's label, [`forward`] inference, [`objective`] the losses and
//! the backward pass of a training step.
//!
//! Parameter names are paths (`encoder.fc1.weight`, `encoder.fc_mu.bias`, `decoder.fc_out.weight`)
//! given as the layers are built, and shapes follow PyTorch's `nn.Linear`, so a PyTorch user can
//! read a checkpoint as is.

mod condition;
mod config;
mod forward;
mod objective;
mod plan;
mod posterior;
mod prior;
mod scaler;
mod workspace;

pub use condition::Conditioning;
pub use config::{Arch, CONV_KERNEL, CONV_PADDING, CONV_STRIDE, MAX_SIDE, MNIST_SIDE, ModelConfig, ModelKind};
pub use objective::{Bound, LossBreakdown};
pub use plan::{LayerShape, Plan, PlannedLayer};
pub use posterior::EncoderHead;
pub use prior::{
    DEFAULT_MOG_COMPONENTS, DEFAULT_VAMP_COMPONENTS, MAX_PRIOR_COMPONENTS, Prior, PriorDensity, PriorKind,
};
pub use scaler::Scaler;
pub use workspace::Workspace;

use std::borrow::Cow;

use rand::Rng;

use crate::engine::layer::Stack;
use crate::engine::{Matrix, Param};
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
    /// What the KL term pulls the codes toward and new codes are drawn from: `N(0, I)`, or a
    /// learned prior trained with the model. The autoencoder was never trained toward its
    /// `N(0, I)`: its draws show what its decoder makes of codes it did not expect.
    pub prior: Prior,
    /// The Gaussian likelihood's learned log-variance of each value, `decoder.logvar`
    /// (1 x values); `None` for the others.
    pub output_logvar: Option<Param>,
    /// The Gaussian likelihood's standardisation of its inputs (see [`Scaler`]); `None` for
    /// the others, whose inputs are intensities in [0, 1] as they are.
    pub scaler: Option<Scaler>,
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

impl Model {
    /// A freshly initialised model (PyTorch's default initialisation), layers drawn in
    /// execution order from `rng`.
    pub fn new(config: ModelConfig, rng: &mut impl Rng) -> Result<Self> {
        config.validate()?;
        let plan = config.plan();
        let mut body = Stack::new("encoder");
        for layer in &plan.body {
            layer.push_onto(&mut body, rng);
        }
        let head = EncoderHead::new(config.kind, plan.head_inputs(), config.latent, rng);
        let mut decoder = Stack::new("decoder");
        for layer in &plan.decoder {
            layer.push_onto(&mut decoder, rng);
        }
        // Drawn last, so a model with the standard prior starts where it always did.
        let prior = Prior::new(&config, rng);
        let gaussian = config.recon == crate::engine::Recon::Gaussian;
        // Unit variances to start with, as the standardised data has.
        let output_logvar = gaussian.then(|| {
            let mut p = Param::new(Matrix::zeros(1, config.pixels()));
            p.name = "decoder.logvar".into();
            p
        });
        let scaler = gaussian.then(|| Scaler::identity(config.pixels()));
        Ok(Model {
            config,
            encoder: Encoder { body, head },
            decoder,
            prior,
            output_logvar,
            scaler,
        })
    }

    /// Every parameter, named, in a fixed order (the encoder's body, its head, the decoder,
    /// the Gaussian likelihood's log-variances, a learned prior's): the one walk that saving,
    /// loading, the optimizer and the parameter count share.
    pub fn params(&self) -> Vec<&Param> {
        self.encoder
            .body
            .params()
            .chain(self.encoder.head.params())
            .chain(self.decoder.params())
            .chain(self.output_logvar.iter())
            .chain(self.prior.params())
            .collect()
    }

    /// Every parameter, mutably, in the order of [`Model::params`].
    pub fn params_mut(&mut self) -> Vec<&mut Param> {
        self.encoder
            .body
            .params_mut()
            .chain(self.encoder.head.params_mut())
            .chain(self.decoder.params_mut())
            .chain(self.output_logvar.iter_mut())
            .chain(self.prior.params_mut())
            .collect()
    }

    /// The Gaussian likelihood's log-variances (empty for the others).
    pub fn output_logvar(&self) -> &[f32] {
        self.output_logvar.as_ref().map_or(&[], |p| &p.value.data)
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
