//! The latent part: what the encoder's head makes of the body's output `h` (the posterior
//! q(z|x), or a single code). The prior p(z) that codes are drawn from is [`super::prior`].
//! What a model does with its codes (draw them, weigh their KL, report their spread) is asked
//! of these types, not of the model's kind.

use rand::Rng;

use super::{Latent, ModelKind, Workspace};
use crate::engine::gaussian::reparameterize;
use crate::engine::{Linear, Matrix, Param};

/// How the latent code is obtained from the encoder body's output `h`.
// One per model, built once: the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub enum EncoderHead {
    /// Autoencoder: one code per image, `z = fc_z(h)`.
    Code { fc_z: Linear },
    /// VAE: a diagonal Gaussian `q(z|x) = N(μ, diag σ²)`, `μ = fc_mu(h)`,
    /// `log σ² = fc_logvar(h)`, trained toward the prior by its KL term.
    Gaussian { fc_mu: Linear, fc_logvar: Linear },
}

impl EncoderHead {
    /// The head a model of `kind` needs, from `width` body outputs to `latent` dimensions,
    /// its layers named `encoder.fc_z` or `encoder.fc_mu` and `encoder.fc_logvar`.
    pub fn new(kind: ModelKind, width: usize, latent: usize, rng: &mut impl Rng) -> Self {
        match kind {
            ModelKind::Ae => EncoderHead::Code {
                fc_z: Linear::new(width, latent, rng).named("encoder.fc_z"),
            },
            ModelKind::Vae | ModelKind::Cvae => EncoderHead::Gaussian {
                fc_mu: Linear::new(width, latent, rng).named("encoder.fc_mu"),
                fc_logvar: Linear::new(width, latent, rng).named("encoder.fc_logvar"),
            },
        }
    }

    /// Every parameter: each layer's weight, then its bias.
    pub fn params(&self) -> Vec<&Param> {
        match self {
            EncoderHead::Code { fc_z } => vec![&fc_z.weight, &fc_z.bias],
            EncoderHead::Gaussian { fc_mu, fc_logvar } => {
                vec![&fc_mu.weight, &fc_mu.bias, &fc_logvar.weight, &fc_logvar.bias]
            }
        }
    }

    /// Every parameter, mutably, in the order of [`EncoderHead::params`].
    pub fn params_mut(&mut self) -> Vec<&mut Param> {
        match self {
            EncoderHead::Code { fc_z } => vec![&mut fc_z.weight, &mut fc_z.bias],
            EncoderHead::Gaussian { fc_mu, fc_logvar } => vec![
                &mut fc_mu.weight,
                &mut fc_mu.bias,
                &mut fc_logvar.weight,
                &mut fc_logvar.bias,
            ],
        }
    }

    /// Reads `ws.h` into the code (`ws.z`) or the posterior (`ws.mu`, `ws.logvar`).
    pub(super) fn forward(&self, ws: &mut Workspace) {
        match self {
            EncoderHead::Code { fc_z } => fc_z.forward(&ws.h, &mut ws.z),
            EncoderHead::Gaussian { fc_mu, fc_logvar } => {
                fc_mu.forward(&ws.h, &mut ws.mu);
                fc_logvar.forward(&ws.h, &mut ws.logvar);
            }
        }
    }

    /// Chooses `ws.z` from the posterior [`EncoderHead::forward`] left (a code is already
    /// `z`).
    pub(super) fn draw<R: Rng>(&self, ws: &mut Workspace, latent: Latent<R>) {
        if let EncoderHead::Code { .. } = self {
            return;
        }
        ws.eps.reshape_for_overwrite(ws.mu.rows, ws.mu.cols);
        match latent {
            Latent::Sample(rng) => ws.eps.fill_standard_normal(rng),
            Latent::Mean => ws.eps.data.fill(0.0),
        }
        reparameterize(&ws.mu, &ws.logvar, &ws.eps, &mut ws.z, &mut ws.std);
    }

    /// Each image's KL term `KL(q(z|x) || p(z))` into `ws.kl_rows`, against the prior density
    /// `ws.density` ([`PriorDensity::kl_rows`]); 0 for a code, which is not a distribution.
    pub(super) fn kl_rows(&self, ws: &mut Workspace) {
        match self {
            EncoderHead::Code { .. } => ws.kl_rows.fill(0.0),
            EncoderHead::Gaussian { .. } => ws.density.kl_rows(&ws.mu, &ws.logvar, &ws.z, &ws.eps, &mut ws.kl_rows),
        }
    }

    /// The code that stands for each image of the last [`EncoderHead::forward`]: the
    /// posterior mean, or the code itself.
    pub fn code<'w>(&self, ws: &'w Workspace) -> &'w Matrix {
        match self {
            EncoderHead::Code { .. } => &ws.z,
            EncoderHead::Gaussian { .. } => &ws.mu,
        }
    }

    /// The posterior's standard deviation around [`EncoderHead::code`] after a draw; `None`
    /// for a code, which has no spread.
    pub fn spread<'w>(&self, ws: &'w Workspace) -> Option<&'w Matrix> {
        match self {
            EncoderHead::Code { .. } => None,
            EncoderHead::Gaussian { .. } => Some(&ws.std),
        }
    }

    /// Whether the head is a distribution `q(z|x)` rather than a single code: then it has a
    /// KL term that pulls the codes toward the prior (so the prior is where they live) and a
    /// density that importance weights can be formed from.
    pub fn has_posterior(&self) -> bool {
        matches!(self, EncoderHead::Gaussian { .. })
    }

    /// What [`EncoderHead::code`] is, in words, for pictures' titles.
    pub fn code_name(&self) -> &'static str {
        match self {
            EncoderHead::Code { .. } => "codes",
            EncoderHead::Gaussian { .. } => "posterior means",
        }
    }
}
