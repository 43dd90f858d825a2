//! What a training step minimises (the ELBO with β and free bits, the importance-weighted
//! bound), its value on a batch and its backward pass.

use rand::Rng;

use super::workspace::PosteriorGradient;
use super::{Encoder, EncoderHead, Latent, Model, Workspace};
use crate::engine::gaussian::{kl_per_dimension, reparameterize_kl_backward, reparameterize_sampled_backward};
use crate::engine::layer::Pass;
use crate::engine::loss::gaussian_logvar_grad;
use crate::engine::{GradInput, Matrix, Param};

/// The loss of a batch broken into its parts, each per image: summed over pixels (and latent
/// dimensions), averaged over the batch.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LossBreakdown {
    /// `reconstruction + β·kl`: the negative ELBO when β = 1.
    pub total: f64,
    pub reconstruction: f64,
    /// 0 for the autoencoder.
    pub kl: f64,
}

/// The bound on log p(x) whose negative one step minimises: reconstruction + β · Σ_j
/// max(free_bits, KL̄_j), with KL̄_j the batch mean of latent dimension j's KL term. `free_bits = 0` is the plain β-VAE loss; a
/// floor keeps the optimiser from pushing a dimension's KL below it (Kingma et al. 2016), so
/// dimensions are not abandoned early. The autoencoder ignores both.
///
/// With `k > 1` the VAE is trained on the importance-weighted bound instead (Burda et al.
/// 2016): `-log (1/k) Σ_i w_i`, `log w_i = log p(x|z_i) + β·(log p(z_i) - log q(z_i|x))`,
/// `z_i ~ q(z|x)`; free bits do not apply to it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bound {
    pub beta: f32,
    pub free_bits: f32,
    /// Importance weights per image: 1 is the ELBO.
    pub k: usize,
}

impl Model {
    /// Per-image reconstruction loss and KL of the batch that [`Model::forward`] left in
    /// `ws`, into `ws.recon_rows` and `ws.kl_rows`; with `with_grad`, also the gradient of
    /// the batch-mean loss with respect to the logits. Returns the batch means.
    pub fn loss(&self, x: &Matrix, ws: &mut Workspace, with_grad: bool) -> LossBreakdown {
        let batch = x.rows;
        ws.recon_rows.resize(batch, 0.0);
        ws.kl_rows.resize(batch, 0.0);
        let grad = with_grad.then(|| (&mut ws.grad_logits, 1.0 / batch as f32));
        let target = if self.scaler.is_some() { &ws.input } else { x };
        self.reconstruction_rows(&ws.logits, target, &mut ws.recon_rows, grad);
        self.prior_into(ws);
        self.encoder.head.kl_rows(ws);
        let mean = |rows: &[f32]| rows.iter().map(|&v| v as f64).sum::<f64>() / batch.max(1) as f64;
        let reconstruction = mean(&ws.recon_rows);
        let kl = mean(&ws.kl_rows);
        LossBreakdown {
            total: reconstruction + self.kl_weight() as f64 * kl,
            reconstruction,
            kl,
        }
    }

    /// Each row's reconstruction loss of `target` under `logits` (and its gradient, as
    /// [`crate::engine::Recon::loss`] writes it). `target` is what the encoder read: for the
    /// Gaussian the standardised input (`ws.input`), whose losses are then made those of
    /// the values as given, `+ Σ_d ln std_d` per row: nats of the data, comparable with any
    /// other model of it.
    pub fn reconstruction_rows(
        &self,
        logits: &Matrix,
        target: &Matrix,
        recon_rows: &mut [f32],
        grad: Option<(&mut Matrix, f32)>,
    ) {
        self.config
            .recon
            .loss(logits, target, self.output_logvar(), recon_rows, grad);
        self.unstandardise_rows(recon_rows);
    }

    /// [`Model::reconstruction_rows`] of `each` draws per image: row `r` of `logits` against
    /// row `r / each` of `targets` (see [`crate::engine::Recon::loss_of_draws`]).
    pub fn reconstruction_rows_of_draws(&self, logits: &Matrix, targets: &Matrix, each: usize, recon_rows: &mut [f32]) {
        self.config
            .recon
            .loss_of_draws(logits, targets, each, self.output_logvar(), recon_rows);
        self.unstandardise_rows(recon_rows);
    }

    /// Losses of standardised values made those of the values as given.
    fn unstandardise_rows(&self, recon_rows: &mut [f32]) {
        if let Some(scaler) = &self.scaler {
            let shift = scaler.log_std_sum();
            for r in recon_rows {
                *r += shift;
            }
        }
    }

    /// The model's own bound: the ELBO at its configured β, no free bits.
    pub fn elbo(&self) -> Bound {
        Bound {
            beta: self.config.beta,
            free_bits: 0.0,
            k: 1,
        }
    }

    /// The batch loss under `bound`, with the gradient with respect to the logits and the
    /// KL weight of every latent dimension left in `ws` for [`Model::backward`].
    pub(super) fn bound_loss(&self, x: &Matrix, ws: &mut Workspace, bound: Bound) -> LossBreakdown {
        ws.posterior_gradient = PosteriorGradient::Elbo;
        let mut loss = self.loss(x, ws, true);
        let latent = self.config.latent;
        let per_row = 1.0 / x.rows.max(1) as f32;
        ws.kl_scale.clear();
        match self.encoder.head {
            EncoderHead::Code { .. } => {
                ws.kl_scale.resize(latent, 0.0);
                loss.total = loss.reconstruction;
            }
            EncoderHead::Gaussian { .. } if bound.free_bits > 0.0 => {
                let floor = bound.free_bits as f64;
                let per_dim = kl_per_dimension(&ws.mu, &ws.logvar);
                // Below the floor a dimension's KL is replaced by the constant floor: no gradient.
                ws.kl_scale.extend(
                    per_dim
                        .iter()
                        .map(|&k| if k >= floor { bound.beta * per_row } else { 0.0 }),
                );
                let kl_term: f64 = per_dim.iter().map(|&k| k.max(floor)).sum();
                loss.total = loss.reconstruction + bound.beta as f64 * kl_term;
            }
            EncoderHead::Gaussian { .. } => {
                ws.kl_scale.resize(latent, bound.beta * per_row);
                loss.total = loss.reconstruction + bound.beta as f64 * loss.kl;
            }
        }
        loss
    }

    /// β for the VAE, 0 for the autoencoder, whose code has no KL term.
    pub fn kl_weight(&self) -> f32 {
        if self.encoder.head.has_posterior() {
            self.config.beta
        } else {
            0.0
        }
    }

    /// Forward, loss and backward of one training batch: leaves `∂loss/∂θ` of the batch-mean
    /// `bound` in every parameter's `grad`, and returns that loss (its `total` is the
    /// bound's value; `reconstruction` and `kl` are the plain means over the rows decoded).
    pub fn compute_gradients<R: Rng>(
        &mut self,
        x: &Matrix,
        condition: Option<&Matrix>,
        ws: &mut Workspace,
        rng: &mut R,
        bound: Bound,
    ) -> LossBreakdown {
        let loss = self.bound_value(x, condition, ws, rng, bound);
        if self.importance_weighted(bound) {
            let (repeated, repeated_condition) = (
                std::mem::take(&mut ws.repeated),
                std::mem::take(&mut ws.repeated_condition),
            );
            let condition = condition.map(|_| &repeated_condition);
            self.backward(&repeated, condition, ws);
            (ws.repeated, ws.repeated_condition) = (repeated, repeated_condition);
        } else {
            self.backward(x, condition, ws);
        }
        loss
    }

    /// The log importance weight of one sample `z = μ + σ ⊙ ε` of the posterior,
    /// `log w = -recon + β·(log p(z) - log q(z|x))`, `recon` its reconstruction loss and
    /// `log_ratio` its `log p(z) - log q(z|x)` ([`super::PriorDensity::log_ratios`]): the one formula
    /// behind training's bound (any β) and `vae eval`'s estimate (β = 1).
    pub fn log_weight(recon: f32, beta: f32, log_ratio: f64) -> f64 {
        -(recon as f64) + beta as f64 * log_ratio
    }

    /// Whether `bound` asks this model for the importance-weighted bound: with k > 1, or
    /// with a learned prior, whose KL term has no closed form, at k = 1 (the ELBO with a
    /// Monte Carlo KL).
    fn importance_weighted(&self, bound: Bound) -> bool {
        self.encoder.head.has_posterior() && (bound.k > 1 || self.prior.is_learned())
    }

    /// Forward and loss of a training batch under `bound`, leaving in `ws` what the
    /// backward pass needs (for `k > 1`, the input and condition repeated k times in
    /// `ws.repeated` and `ws.repeated_condition`).
    pub(super) fn bound_value<R: Rng>(
        &self,
        x: &Matrix,
        condition: Option<&Matrix>,
        ws: &mut Workspace,
        rng: &mut R,
        bound: Bound,
    ) -> LossBreakdown {
        if !self.importance_weighted(bound) {
            self.forward(x, condition, ws, Latent::Sample(rng));
            return self.bound_loss(x, ws, bound);
        }
        let k = bound.k;
        let (mut repeated, mut repeated_condition) = (
            std::mem::take(&mut ws.repeated),
            std::mem::take(&mut ws.repeated_condition),
        );
        x.repeat_rows_into(k, &mut repeated);
        if let Some(c) = condition {
            c.repeat_rows_into(k, &mut repeated_condition);
        }
        let rc = condition.map(|_| &repeated_condition);
        self.forward(&repeated, rc, ws, Latent::Sample(rng));
        let loss = self.importance_weighted_loss(&repeated, x.rows, ws, bound);
        (ws.repeated, ws.repeated_condition) = (repeated, repeated_condition);
        loss
    }

    /// The importance-weighted bound of `images` images, each repeated `k` times in `xr`
    /// (rows `i·k .. i·k + k`), whose forward pass is in `ws`. Leaves the logit gradient and
    /// each row's weight `w̃_r / images` (its normalised importance weight over the batch) in
    /// `ws` for the backward pass: `∂L/∂θ = Σ_r (w̃_r / images) · ∂(-log w_r)/∂θ`.
    fn importance_weighted_loss(&self, xr: &Matrix, images: usize, ws: &mut Workspace, bound: Bound) -> LossBreakdown {
        let k = bound.k;
        let rows = xr.rows;
        ws.recon_rows.resize(rows, 0.0);
        ws.kl_rows.resize(rows, 0.0);
        let target = if self.scaler.is_some() { &ws.input } else { xr };
        self.reconstruction_rows(&ws.logits, target, &mut ws.recon_rows, Some((&mut ws.grad_logits, 1.0)));
        self.prior_into(ws);
        self.encoder.head.kl_rows(ws);
        let mut log_w = Vec::new();
        ws.density.log_ratios(&ws.z, &ws.eps, &ws.logvar, &mut log_w);
        for (w, &recon) in log_w.iter_mut().zip(&ws.recon_rows) {
            *w = Model::log_weight(recon, bound.beta, *w);
        }
        ws.row_scale.clear();
        ws.posterior_gradient = PosteriorGradient::ImportanceWeighted { beta: bound.beta };
        let mut bound = 0.0;
        for weights in log_w.chunks(k) {
            let max = weights.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let sum: f64 = weights.iter().map(|&w| (w - max).exp()).sum();
            bound += max + sum.ln() - (k as f64).ln();
            ws.row_scale
                .extend(weights.iter().map(|&w| ((w - max).exp() / sum / images as f64) as f32));
        }
        for (g, &s) in ws.grad_logits.data.chunks_exact_mut(xr.cols.max(1)).zip(&ws.row_scale) {
            for v in g {
                *v *= s;
            }
        }
        ws.kl_scale.clear();
        let mean = |v: &[f32]| v.iter().map(|&x| x as f64).sum::<f64>() / rows.max(1) as f64;
        LossBreakdown {
            total: -bound / images.max(1) as f64,
            reconstruction: mean(&ws.recon_rows),
            kl: mean(&ws.kl_rows),
        }
    }

    /// Backward pass from `ws.grad_logits` and what the bound left in `ws` (how the
    /// code's gradient reaches the posterior: `ws.posterior_gradient`).
    fn backward(&mut self, x: &Matrix, condition: Option<&Matrix>, ws: &mut Workspace) {
        if let PosteriorGradient::ImportanceWeighted { beta } = ws.posterior_gradient {
            // Each row's -log p(z) enters the loss with weight β·(its normalised weight).
            ws.prior_row_weight.clear();
            ws.prior_row_weight.extend(ws.row_scale.iter().map(|&s| beta * s));
            self.prior_code_backward(ws);
        }
        if let Some(logvar) = &mut self.output_logvar {
            // The loss's rows weigh 1 in all: a batch mean, or normalised importance weights.
            let target = if self.scaler.is_some() { &ws.input } else { x };
            let Param { value, grad, .. } = logvar;
            gaussian_logvar_grad(&ws.logits, target, &ws.grad_logits, &value.data, 1.0, &mut grad.data);
        }
        {
            let Workspace {
                mu,
                logvar,
                std,
                eps,
                z,
                decoder,
                logits,
                grad_logits,
                grad,
                grad_z,
                grad_mu,
                grad_logvar,
                kl_scale,
                prior_dz,
                prior_row_weight,
                posterior_gradient,
                ..
            } = ws;
            let pass = Pass {
                x: z,
                condition,
                acts: decoder,
                y: logits,
            };
            self.decoder.backward(pass, grad_logits, grad, GradInput::Write(grad_z));
            if self.encoder.head.has_posterior() {
                match *posterior_gradient {
                    PosteriorGradient::Elbo => {
                        reparameterize_kl_backward(mu, logvar, eps, std, grad_z, kl_scale, grad_mu, grad_logvar);
                    }
                    PosteriorGradient::ImportanceWeighted { .. } => {
                        reparameterize_sampled_backward(
                            eps,
                            std,
                            grad_z,
                            prior_dz,
                            prior_row_weight,
                            grad_mu,
                            grad_logvar,
                        );
                    }
                }
            }
        }
        // The encoder's first layer reads the data, whose gradient nobody needs.
        let input = std::mem::take(&mut ws.input);
        let read = if self.scaler.is_some() { &input } else { x };
        encoder_backward(&mut self.encoder, read, condition, ws, None);
        ws.input = input;
        if self.prior.is_learned() && ws.posterior_gradient != PosteriorGradient::Elbo {
            self.prior_backward(ws);
        }
    }
}

/// Where a layer puts its input gradient: nowhere, or written into or added onto `grad`.
fn into(grad: Option<&mut Matrix>, add: bool) -> GradInput<'_> {
    match (grad, add) {
        (None, _) => GradInput::Skip,
        (Some(m), false) => GradInput::Write(m),
        (Some(m), true) => GradInput::Add(m),
    }
}

/// Backward through the encoder from the gradients at its head's outputs (`ws.grad_z` for a
/// code, `ws.grad_mu` and `ws.grad_logvar` for a posterior): sets every encoder parameter's
/// gradient and, where `dx` is given, the gradient with respect to its input `x`.
pub(super) fn encoder_backward(
    encoder: &mut Encoder,
    x: &Matrix,
    condition: Option<&Matrix>,
    ws: &mut Workspace,
    dx: Option<&mut Matrix>,
) {
    let Workspace {
        encoder: acts,
        h,
        grad,
        grad_h,
        grad_z,
        grad_mu,
        grad_logvar,
        ..
    } = ws;
    let body = !encoder.body.is_empty();
    // Without a body the head reads the input itself.
    let (head_grad, dx) = if body { (Some(&mut *grad_h), dx) } else { (dx, None) };
    let mut head_grad = head_grad;
    match &mut encoder.head {
        EncoderHead::Code { fc_z } => fc_z.backward(h, grad_z, into(head_grad.as_deref_mut(), false)),
        EncoderHead::Gaussian { fc_mu, fc_logvar } => {
            fc_mu.backward(h, grad_mu, into(head_grad.as_deref_mut(), false));
            fc_logvar.backward(h, grad_logvar, into(head_grad, true));
        }
    }
    if body {
        let pass = Pass {
            x,
            condition,
            acts,
            y: h,
        };
        encoder.body.backward(pass, grad_h, grad, into(dx, false));
    }
}
