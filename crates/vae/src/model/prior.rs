//! The prior `p(z)` that the KL term pulls the codes toward and that new codes are drawn
//! from: the fixed `N(0, I)`, or a learned prior whose parameters train with the model (a
//! mixture of Gaussians, or the VampPrior of Tomczak & Welling 2018: a mixture of the
//! encoder's own posteriors at K learned pseudo-inputs).
//!
//! `N(0, I)` has regions no training code reaches ("holes"); a learned prior moves its mass
//! to where the codes are, so draws from it decode to digits. Its KL term has no closed form:
//! training uses the Monte Carlo estimate `log q(z|x) - log p(z)` at the sampled `z`, the
//! importance-weighted bound with one sample (see [`super::Bound`]).
//!
//! [`Prior`] holds the parameters; [`PriorDensity`] is the density they define in code space,
//! worked out once (for the VampPrior, by encoding the pseudo-inputs) and then evaluated,
//! sampled and differentiated.

use rand::Rng;
use serde::{Deserialize, Serialize};

use super::objective::encoder_backward;
use super::{Model, ModelConfig, Workspace};
use crate::engine::gaussian::{log_prior_ratio, normal_quantile};
use crate::engine::mixture::{DiagonalMixture, log_softmax, log_softmax_backward};
use crate::engine::{Matrix, Param};

/// The prior a model is trained toward: the `--prior` flag and `config.json`'s `prior`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PriorKind {
    /// `N(0, I)`, fixed.
    #[default]
    Standard,
    /// A mixture of `--prior-components` diagonal Gaussians with learned means, variances
    /// and weights.
    Mog,
    /// The VampPrior: `p(z) = 1/K Σ_k q(z | u_k)`, the encoder's posteriors at K learned
    /// pseudo-inputs `u_k` (images, each pixel kept in [0, 1]).
    Vamp,
}

/// Components of a learned mixture prior unless asked otherwise: one per digit class.
pub const DEFAULT_MOG_COMPONENTS: usize = 10;
/// Pseudo-inputs of a VampPrior unless asked otherwise: Tomczak & Welling's choice for MNIST.
pub const DEFAULT_VAMP_COMPONENTS: usize = 500;
/// The most components a learned prior may have.
pub const MAX_PRIOR_COMPONENTS: usize = 5_000;

impl PriorKind {
    /// The word used on the command line and in `config.json`.
    pub fn name(self) -> &'static str {
        match self {
            PriorKind::Standard => "standard",
            PriorKind::Mog => "mog",
            PriorKind::Vamp => "vamp",
        }
    }

    pub fn is_standard(&self) -> bool {
        *self == PriorKind::Standard
    }

    /// Components unless the user asks for a number (0 for the standard normal, which has
    /// none).
    pub fn default_components(self) -> usize {
        match self {
            PriorKind::Standard => 0,
            PriorKind::Mog => DEFAULT_MOG_COMPONENTS,
            PriorKind::Vamp => DEFAULT_VAMP_COMPONENTS,
        }
    }
}

/// The prior's parameters, named `prior.*` in the checkpoint beside the layers'.
// One per model: the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, Default)]
pub enum Prior {
    /// `N(0, I)`, the VAE's, with nothing to learn.
    #[default]
    StandardNormal,
    /// `p(z) = Σ_k softmax(logits)_k N(z; means_k, diag e^(logvars_k))`.
    Mixture {
        /// K x latent.
        means: Param,
        /// K x latent.
        logvars: Param,
        /// 1 x K.
        logits: Param,
    },
    /// `p(z) = 1/K Σ_k q(z | clamp(pseudo_inputs_k, 0, 1))`.
    Vamp {
        /// K x pixels: images the encoder reads like any other (pixels clamped to [0, 1]).
        pseudo_inputs: Param,
    },
}

/// Tomczak & Welling's initial pseudo-inputs for MNIST: nearly blank images, pixels
/// `N(0.05, 0.01²)`, which training draws toward the data.
const PSEUDO_INPUT_MEAN: f32 = 0.05;
const PSEUDO_INPUT_STD: f32 = 0.01;

impl Prior {
    /// The prior `config` asks for, its parameters (if any) drawn from `rng`: a mixture's
    /// means from `N(0, I)` with unit variances and equal weights, so it starts as broad as
    /// the standard normal.
    pub fn new(config: &ModelConfig, rng: &mut impl Rng) -> Self {
        let k = config.prior_components;
        match config.prior {
            PriorKind::Standard => Prior::StandardNormal,
            PriorKind::Mog => Prior::Mixture {
                means: Param::new(Matrix::standard_normal(k, config.latent, rng)).named("prior.means"),
                logvars: Param::new(Matrix::zeros(k, config.latent)).named("prior.logvars"),
                logits: Param::new(Matrix::zeros(1, k)).named("prior.logits"),
            },
            PriorKind::Vamp => {
                let mut u = Matrix::standard_normal(k, config.pixels(), rng);
                for v in &mut u.data {
                    *v = PSEUDO_INPUT_MEAN + PSEUDO_INPUT_STD * *v;
                }
                Prior::Vamp {
                    pseudo_inputs: Param::new(u).named("prior.pseudo_inputs"),
                }
            }
        }
    }

    pub fn kind(&self) -> PriorKind {
        match self {
            Prior::StandardNormal => PriorKind::Standard,
            Prior::Mixture { .. } => PriorKind::Mog,
            Prior::Vamp { .. } => PriorKind::Vamp,
        }
    }

    /// Whether the prior has parameters that train with the model.
    pub fn is_learned(&self) -> bool {
        !matches!(self, Prior::StandardNormal)
    }

    pub fn params(&self) -> Vec<&Param> {
        match self {
            Prior::StandardNormal => vec![],
            Prior::Mixture { means, logvars, logits } => vec![means, logvars, logits],
            Prior::Vamp { pseudo_inputs } => vec![pseudo_inputs],
        }
    }

    pub fn params_mut(&mut self) -> Vec<&mut Param> {
        match self {
            Prior::StandardNormal => vec![],
            Prior::Mixture { means, logvars, logits } => vec![means, logvars, logits],
            Prior::Vamp { pseudo_inputs } => vec![pseudo_inputs],
        }
    }

    /// What the prior is, in words, for reports.
    pub fn name(&self) -> String {
        match self {
            Prior::StandardNormal => "N(0, I)".into(),
            Prior::Mixture { means, .. } => format!("MoG ({} learned Gaussians)", means.value.rows),
            Prior::Vamp { pseudo_inputs } => format!("VampPrior ({} pseudo-inputs)", pseudo_inputs.value.rows),
        }
    }
}

/// The prior's density over codes.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum PriorDensity {
    #[default]
    StandardNormal,
    Mixture(DiagonalMixture),
}

/// The gradients of `Σ_r w_r · (-log p(z_r))` with respect to a mixture density's parts (see
/// [`DiagonalMixture::neg_log_density_backward`]).
#[derive(Debug, Default)]
pub(crate) struct DensityGradient {
    means: Matrix,
    logvars: Matrix,
    log_weights: Vec<f32>,
}

const LOG_2PI: f64 = 1.837_877_066_409_345_5;

impl PriorDensity {
    /// `n` codes of `latent` dimensions drawn at temperature `T`: for the standard normal
    /// `N(0, T²·I)`, for a mixture a component by weight, then its Gaussian with σ scaled by T.
    pub fn sample(&self, n: usize, latent: usize, temperature: f32, rng: &mut impl Rng) -> Matrix {
        match self {
            PriorDensity::StandardNormal => {
                let mut z = Matrix::standard_normal(n, latent, rng);
                for v in &mut z.data {
                    *v *= temperature;
                }
                z
            }
            PriorDensity::Mixture(m) => m.sample(n, temperature, rng),
        }
    }

    /// `log p(z)` of one code: for the standard normal, `-½ (D log 2π + ||z||²)`.
    pub fn log_density(&self, z: &[f32]) -> f64 {
        match self {
            PriorDensity::StandardNormal => {
                let squares: f64 = z.iter().map(|&v| (v as f64).powi(2)).sum();
                -0.5 * (z.len() as f64 * LOG_2PI + squares)
            }
            PriorDensity::Mixture(m) => m.log_density(z),
        }
    }

    /// `log p(z)` of every row of `z` (a mixture's in one product over the rows).
    pub fn log_densities(&self, z: &Matrix) -> Vec<f64> {
        match self {
            PriorDensity::StandardNormal => (0..z.rows).map(|r| self.log_density(z.row(r))).collect(),
            PriorDensity::Mixture(m) => {
                let mut out = vec![0.0f32; z.rows];
                m.log_densities(z, &mut out);
                out.into_iter().map(f64::from).collect()
            }
        }
    }

    /// `log p(z) - log q(z|x)` of every row's draw `z = μ + σ ⊙ ε` of a diagonal Gaussian
    /// posterior with log-variances `logvar`, `log q(z|x) = -½ Σ_j (ε_j² + logvar_j + log 2π)`:
    /// the prior's part of each importance weight, into `out` (a mixture's densities in one
    /// product over the rows).
    pub fn log_ratios(&self, z: &Matrix, eps: &Matrix, logvar: &Matrix, out: &mut Vec<f64>) {
        out.clear();
        match self {
            PriorDensity::StandardNormal => {
                out.extend((0..z.rows).map(|r| log_prior_ratio(z.row(r), eps.row(r), logvar.row(r))));
            }
            PriorDensity::Mixture(m) => {
                let mut log_p = vec![0.0f32; z.rows];
                m.log_densities(z, &mut log_p);
                out.extend(
                    log_p
                        .iter()
                        .enumerate()
                        .map(|(r, &lp)| lp as f64 - log_posterior(eps.row(r), logvar.row(r))),
                );
            }
        }
    }

    /// Each row's KL term into `out`: against the standard normal in closed form (Kingma &
    /// Welling 2014, appendix B); against a mixture, which has none, the one-sample Monte
    /// Carlo estimate `log q(z|x) - log p(z)` at the drawn `z`.
    pub fn kl_rows(&self, mu: &Matrix, logvar: &Matrix, z: &Matrix, eps: &Matrix, out: &mut [f32]) {
        match self {
            PriorDensity::StandardNormal => crate::engine::gaussian::kl_divergence(mu, logvar, out),
            PriorDensity::Mixture(m) => {
                m.log_densities(z, out);
                for (r, o) in out.iter_mut().enumerate() {
                    *o = (log_posterior(eps.row(r), logvar.row(r)) - *o as f64) as f32;
                }
            }
        }
    }

    /// The value below which a share `p` of one coordinate's prior mass lies, where the
    /// coordinates are independent and alike (the standard normal); `None` for a mixture.
    pub fn quantile(&self, p: f64) -> Option<f64> {
        match self {
            PriorDensity::StandardNormal => Some(normal_quantile(p)),
            PriorDensity::Mixture(_) => None,
        }
    }

    /// `dz = ∂L/∂z` of `L = Σ_r w_r · (-log p(z_r))` (for the standard normal `w_r z_r`), and
    /// for a mixture the gradients with respect to its parts, into `grads`.
    fn neg_log_density_backward(&self, z: &Matrix, row_weight: &[f32], dz: &mut Matrix, grads: &mut DensityGradient) {
        match self {
            PriorDensity::StandardNormal => {
                dz.reshape_for_overwrite(z.rows, z.cols);
                for (r, (d, z)) in dz
                    .data
                    .chunks_exact_mut(z.cols.max(1))
                    .zip(z.data.chunks_exact(z.cols.max(1)))
                    .enumerate()
                {
                    for (d, &z) in d.iter_mut().zip(z) {
                        *d = row_weight[r] * z;
                    }
                }
            }
            PriorDensity::Mixture(m) => m.neg_log_density_backward(
                z,
                row_weight,
                dz,
                &mut grads.means,
                &mut grads.logvars,
                &mut grads.log_weights,
            ),
        }
    }
}

/// `log q(z|x) = -½ Σ_j (ε_j² + logvar_j + log 2π)` of the draw `z = μ + σ ⊙ ε`.
fn log_posterior(eps: &[f32], logvar: &[f32]) -> f64 {
    -0.5 * eps
        .iter()
        .zip(logvar)
        .map(|(&e, &lv)| (e * e + lv) as f64 + LOG_2PI)
        .sum::<f64>()
}

/// `clamp(u, 0, 1)` of every pseudo-input pixel, into `out`.
fn clamp_pixels(u: &Matrix, out: &mut Matrix) {
    out.reshape_for_overwrite(u.rows, u.cols);
    for (o, &v) in out.data.iter_mut().zip(&u.data) {
        *o = v.clamp(0.0, 1.0);
    }
}

impl Model {
    /// The density of the model's prior over codes (for the VampPrior, the encoder's
    /// posteriors at its pseudo-inputs, encoded here).
    pub fn prior_density(&self) -> PriorDensity {
        let mut ws = Workspace::default();
        self.prior_into(&mut ws);
        ws.density
    }

    /// Works out the prior density into `ws.density`, keeping (VampPrior) the pass over the
    /// pseudo-inputs in `ws.prior_pass` for [`Model::prior_backward`].
    pub(super) fn prior_into(&self, ws: &mut Workspace) {
        ws.density = match &self.prior {
            Prior::StandardNormal => PriorDensity::StandardNormal,
            Prior::Mixture { means, logvars, logits } => PriorDensity::Mixture(DiagonalMixture {
                log_weights: log_softmax(&logits.value.data),
                means: means.value.clone(),
                logvars: logvars.value.clone(),
            }),
            Prior::Vamp { pseudo_inputs } => {
                let pass = ws.prior_pass.get_or_insert_with(Default::default);
                clamp_pixels(&pseudo_inputs.value, &mut ws.prior_inputs);
                self.encode(&ws.prior_inputs, None, pass);
                let k = pseudo_inputs.value.rows;
                PriorDensity::Mixture(DiagonalMixture {
                    log_weights: vec![-(k as f32).ln(); k],
                    means: pass.mu.clone(),
                    logvars: pass.logvar.clone(),
                })
            }
        };
    }

    /// `∂L/∂z` of the prior's part `L = Σ_r w_r · (-log p(z_r))` of the loss into
    /// `ws.prior_dz`, keeping what the prior's own gradients need in `ws`. `w_r` is
    /// `ws.prior_row_weight`.
    pub(super) fn prior_code_backward(&self, ws: &mut Workspace) {
        ws.density
            .neg_log_density_backward(&ws.z, &ws.prior_row_weight, &mut ws.prior_dz, &mut ws.prior_grads);
    }

    /// The prior parameters' gradients from what [`Model::prior_code_backward`] left, once
    /// the main backward pass has set the encoder's (the VampPrior's gradient reaches its
    /// pseudo-inputs through the encoder, and adds to the encoder's own).
    pub(super) fn prior_backward(&mut self, ws: &mut Workspace) {
        let grads = &ws.prior_grads;
        if let Prior::Mixture { means, logvars, logits } = &mut self.prior {
            means.grad.data.copy_from_slice(&grads.means.data);
            logvars.grad.data.copy_from_slice(&grads.logvars.data);
            log_softmax_backward(&logits.value.data, &grads.log_weights, &mut logits.grad.data);
            return;
        }
        if self.prior.kind() != PriorKind::Vamp {
            return;
        }
        let pass = ws.prior_pass.as_mut().expect("the VampPrior's pass ran");
        pass.grad_mu.clone_from(&grads.means);
        pass.grad_logvar.clone_from(&grads.logvars);
        // The encoder's backward writes its gradients: keep the main pass's aside and add
        // them back.
        ws.saved_grads.clear();
        ws.saved_grads.extend(self.encoder_params().map(|p| p.grad.clone()));
        encoder_backward(
            &mut self.encoder,
            &ws.prior_inputs,
            None,
            pass,
            Some(&mut ws.prior_input_grad),
        );
        for (p, saved) in self.encoder_params_mut().zip(&ws.saved_grads) {
            for (g, &s) in p.grad.data.iter_mut().zip(&saved.data) {
                *g += s;
            }
        }
        if let Prior::Vamp { pseudo_inputs } = &mut self.prior {
            // The clamp passes the gradient only where it is the identity.
            for ((g, &d), &u) in pseudo_inputs
                .grad
                .data
                .iter_mut()
                .zip(&ws.prior_input_grad.data)
                .zip(&pseudo_inputs.value.data)
            {
                *g = if (0.0..=1.0).contains(&u) { d } else { 0.0 };
            }
        }
    }

    fn encoder_params(&self) -> impl Iterator<Item = &Param> {
        self.encoder.body.params().chain(self.encoder.head.params())
    }

    fn encoder_params_mut(&mut self) -> impl Iterator<Item = &mut Param> {
        self.encoder.body.params_mut().chain(self.encoder.head.params_mut())
    }
}
