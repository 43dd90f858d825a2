//! The buffers of one forward and backward pass, kept between batches so that a training
//! step allocates nothing once the first batch has sized them.

use super::prior::{DensityGradient, PriorDensity};
use crate::engine::Matrix;
use crate::engine::layer::{GradScratch, StackActivations};

/// Activations and gradients of one batch. Contents are only meaningful between the calls
/// that fill them (see [`crate::model::Model::forward`]).
#[derive(Debug, Default)]
pub struct Workspace {
    /// A Gaussian-likelihood model's standardised input: what the encoder reads and the
    /// likelihood scores.
    pub input: Matrix,
    /// The encoder body's activations, kept for the backward pass.
    pub encoder: StackActivations,
    /// The encoder body's output: what the head reads.
    pub h: Matrix,
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
    /// The decoder's activations, kept for the backward pass.
    pub decoder: StackActivations,
    /// Decoder output, one logit per pixel.
    pub logits: Matrix,
    /// Reconstruction loss of each image.
    pub recon_rows: Vec<f32>,
    /// KL term of each image.
    pub kl_rows: Vec<f32>,
    pub(crate) grad_logits: Matrix,
    /// The stacks' gradient buffers.
    pub(crate) grad: GradScratch,
    pub(crate) grad_h: Matrix,
    pub(crate) grad_z: Matrix,
    pub(crate) grad_mu: Matrix,
    pub(crate) grad_logvar: Matrix,
    /// The KL weight of each latent dimension in the training objective.
    pub(crate) kl_scale: Vec<f32>,
    /// Under the importance-weighted objective: each row's normalised weight over the batch.
    pub(crate) row_scale: Vec<f32>,
    /// Under the importance-weighted objective: the batch with each image repeated k times.
    pub(crate) repeated: Matrix,
    /// Under the importance-weighted objective: the condition repeated likewise (CVAE).
    pub(crate) repeated_condition: Matrix,
    /// How the objective's gradient reaches the posterior.
    pub(crate) posterior_gradient: PosteriorGradient,
    /// The prior's density over codes for this batch (see [`crate::model::Model::prior_density`]).
    pub(crate) density: PriorDensity,
    /// VampPrior: the encoder's pass over the pseudo-inputs.
    pub(crate) prior_pass: Option<Box<Workspace>>,
    /// VampPrior: the pseudo-inputs clamped to [0, 1], as the encoder reads them.
    pub(crate) prior_inputs: Matrix,
    /// VampPrior: the loss's gradient with respect to the clamped pseudo-inputs.
    pub(crate) prior_input_grad: Matrix,
    /// Each row's weight `w_r` on `-log p(z_r)` in the loss.
    pub(crate) prior_row_weight: Vec<f32>,
    /// `∂L/∂z` of the prior's part of the loss.
    pub(crate) prior_dz: Matrix,
    /// The prior's part of the loss differentiated with respect to the density's parts.
    pub(crate) prior_grads: DensityGradient,
    /// The encoder's gradients of the main pass while the VampPrior's pass runs.
    pub(crate) saved_grads: Vec<Matrix>,
}

/// How the code's gradient reaches the posterior's mean and log-variance, as the bound
/// that filled the workspace left it.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) enum PosteriorGradient {
    /// Through `z = μ + σ ⊙ ε` and the KL term, each latent dimension's KL weighted by
    /// `ws.kl_scale`.
    #[default]
    Elbo,
    /// Through each importance sample's log-weight, weighted by its normalised weight
    /// (`ws.row_scale`), with `β` on the prior ratio.
    ImportanceWeighted { beta: f32 },
}
