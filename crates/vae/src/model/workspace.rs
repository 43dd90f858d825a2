//! The buffers of one forward and backward pass, kept between batches so that a training
//! step allocates nothing once the first batch has sized them.

use crate::engine::Matrix;

/// The encoder's activations, kept for the backward pass.
#[derive(Debug, Default)]
pub struct EncoderActivations {
    /// Patch matrices of the convolutions (conv body).
    pub cols: Vec<Matrix>,
    /// Post-ReLU feature maps of the convolutions, channels last (conv body).
    pub maps: Vec<Matrix>,
    /// Post-ReLU outputs of the dense hidden layers.
    pub hidden: Vec<Matrix>,
}

/// The decoder's activations, kept for the backward pass.
#[derive(Debug, Default)]
pub struct DecoderActivations {
    /// Post-ReLU outputs of the dense hidden layers.
    pub hidden: Vec<Matrix>,
    /// Post-ReLU feature maps of the transposed convolutions but the last (conv body).
    pub maps: Vec<Matrix>,
    /// Scratch space of the transposed convolutions.
    pub cols: Matrix,
}

/// Activations and gradients of one batch. Contents are only meaningful between the calls
/// that fill them (see [`crate::model::Model::forward`]).
#[derive(Debug, Default)]
pub struct Workspace {
    pub encoder: EncoderActivations,
    /// Posterior mean (VAE).
    pub mu: Matrix,
    /// Posterior log-variance (VAE).
    pub logvar: Matrix,
    /// `exp(½·logvar)` (VAE).
    pub std: Matrix,
    /// The standard normal draws behind `z` (VAE).
    pub eps: Matrix,
    /// The latent code fed to the decoder.
    pub z: Matrix,
    pub decoder: DecoderActivations,
    /// Decoder output, one logit per pixel.
    pub logits: Matrix,
    /// Reconstruction loss of each image.
    pub recon_rows: Vec<f32>,
    /// KL term of each image.
    pub kl_rows: Vec<f32>,
    pub(crate) grad_logits: Matrix,
    pub(crate) grad_a: Matrix,
    pub(crate) grad_b: Matrix,
    pub(crate) grad_mu: Matrix,
    pub(crate) grad_logvar: Matrix,
    /// Patch matrices of the convolutions' backward passes.
    pub(crate) scratch: Matrix,
    /// The KL weight of each latent dimension in the training objective.
    pub(crate) kl_scale: Vec<f32>,
    /// Under the importance-weighted objective: each row's normalised weight over the batch.
    pub(crate) row_scale: Vec<f32>,
    /// Under the importance-weighted objective: the batch with each image repeated k times.
    pub(crate) repeated: Matrix,
    /// Under the importance-weighted objective: the condition repeated likewise (CVAE).
    pub(crate) repeated_condition: Matrix,
    /// Under the importance-weighted objective: the β on its prior ratio.
    pub(crate) iw_beta: f32,
}
