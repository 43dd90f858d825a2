//! The models: an MLP encoder and decoder shared by the autoencoder and the VAE, so the two
//! compare fairly, with the forward pass, the loss and the backward pass of a training step.
//!
//! Parameter names are paths (`encoder.fc1.weight`, `encoder.fc_mu.bias`, `decoder.fc_out.weight`)
//! and shapes follow PyTorch's `nn.Linear`, so a PyTorch user can read a checkpoint as is.

mod config;
mod workspace;

pub use config::{MNIST_SIDE, ModelConfig, ModelKind};
pub use workspace::Workspace;

use rand::Rng;

use crate::engine::activation::{relu_backward, relu_forward, sigmoid_into};
use crate::engine::gaussian::{
    kl_divergence, kl_per_dimension, reparameterize, reparameterize_iw_backward, reparameterize_kl_backward,
};
use crate::engine::{GradInput, Linear, Matrix, Param};
use crate::error::Result;

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

/// What a training step minimises: reconstruction + β · Σ_j max(free_bits, KL̄_j), with KL̄_j
/// the batch mean of latent dimension j's KL term. `free_bits = 0` is the plain β-VAE loss; a
/// floor keeps the optimiser from pushing a dimension's KL below it (Kingma et al. 2016), so
/// dimensions are not abandoned early. The autoencoder ignores both.
///
/// With `k > 1` the VAE is trained on the importance-weighted bound instead (Burda et al.
/// 2016): `-log (1/k) Σ_i w_i`, `log w_i = log p(x|z_i) + β·(log p(z_i) - log q(z_i|x))`,
/// `z_i ~ q(z|x)`; free bits do not apply to it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Objective {
    pub beta: f32,
    pub free_bits: f32,
    /// Importance samples per image: 1 is the ELBO.
    pub k: usize,
}

/// How the latent code is obtained from the encoder's output.
#[derive(Clone, Debug)]
pub enum EncoderHead {
    /// Autoencoder: `z = fc_z(h)`.
    Code { fc_z: Linear },
    /// VAE: `μ = fc_mu(h)`, `logvar = fc_logvar(h)`.
    Gaussian { fc_mu: Linear, fc_logvar: Linear },
}

/// `x → h`: linear layers, each followed by ReLU, then the head.
#[derive(Clone, Debug)]
pub struct Encoder {
    /// `fc1`, `fc2`, …
    pub layers: Vec<Linear>,
    pub head: EncoderHead,
}

/// `z → logits`: linear layers with ReLU, then `fc_out` to one logit per pixel.
#[derive(Clone, Debug)]
pub struct Decoder {
    /// `fc1`, `fc2`, …
    pub layers: Vec<Linear>,
    pub fc_out: Linear,
}

/// An autoencoder or VAE: its configuration and its weights.
#[derive(Clone, Debug)]
pub struct Model {
    pub config: ModelConfig,
    pub encoder: Encoder,
    pub decoder: Decoder,
}

/// How the latent code is chosen from the posterior in a forward pass.
pub enum Latent<'a, R: Rng> {
    /// `z = μ + σ ⊙ ε`, `ε ~ N(0, I)`: training and loss evaluation.
    Sample(&'a mut R),
    /// `z = μ`: pictures of reconstructions.
    Mean,
}

/// The last of `outputs`, or `input` when there are none (a body without hidden layers).
fn last_or<'a>(outputs: &'a [Matrix], input: &'a Matrix) -> &'a Matrix {
    outputs.last().unwrap_or(input)
}

impl Model {
    /// A freshly initialised model (PyTorch's default initialisation), layers drawn in
    /// execution order from `rng`.
    pub fn new(config: ModelConfig, rng: &mut impl Rng) -> Result<Self> {
        config.validate()?;
        let mut width = config.pixels();
        let mut encoder_layers = Vec::new();
        for &h in &config.hidden {
            encoder_layers.push(Linear::new(width, h, rng));
            width = h;
        }
        let head = match config.model {
            ModelKind::Ae => EncoderHead::Code {
                fc_z: Linear::new(width, config.latent, rng),
            },
            ModelKind::Vae => EncoderHead::Gaussian {
                fc_mu: Linear::new(width, config.latent, rng),
                fc_logvar: Linear::new(width, config.latent, rng),
            },
        };
        let mut width = config.latent;
        let mut decoder_layers = Vec::new();
        for &h in config.hidden.iter().rev() {
            decoder_layers.push(Linear::new(width, h, rng));
            width = h;
        }
        let fc_out = Linear::new(width, config.pixels(), rng);
        Ok(Model {
            config,
            encoder: Encoder {
                layers: encoder_layers,
                head,
            },
            decoder: Decoder {
                layers: decoder_layers,
                fc_out,
            },
        })
    }

    /// Every linear layer with its path, in a fixed order (the order of the optimizer state).
    fn named_layers(&self) -> Vec<(String, &Linear)> {
        let mut out: Vec<(String, &Linear)> = Vec::new();
        for (i, l) in self.encoder.layers.iter().enumerate() {
            out.push((format!("encoder.fc{}", i + 1), l));
        }
        match &self.encoder.head {
            EncoderHead::Code { fc_z } => out.push(("encoder.fc_z".into(), fc_z)),
            EncoderHead::Gaussian { fc_mu, fc_logvar } => {
                out.push(("encoder.fc_mu".into(), fc_mu));
                out.push(("encoder.fc_logvar".into(), fc_logvar));
            }
        }
        for (i, l) in self.decoder.layers.iter().enumerate() {
            out.push((format!("decoder.fc{}", i + 1), l));
        }
        out.push(("decoder.fc_out".into(), &self.decoder.fc_out));
        out
    }

    fn layers_mut(&mut self) -> Vec<&mut Linear> {
        let mut out: Vec<&mut Linear> = self.encoder.layers.iter_mut().collect();
        match &mut self.encoder.head {
            EncoderHead::Code { fc_z } => out.push(fc_z),
            EncoderHead::Gaussian { fc_mu, fc_logvar } => {
                out.push(fc_mu);
                out.push(fc_logvar);
            }
        }
        out.extend(self.decoder.layers.iter_mut());
        out.push(&mut self.decoder.fc_out);
        out
    }

    /// Every parameter with its safetensors name (`encoder.fc1.weight`, …), in a fixed order.
    pub fn named_params(&self) -> Vec<(String, &Param)> {
        self.named_layers()
            .into_iter()
            .flat_map(|(name, l)| [(format!("{name}.weight"), &l.weight), (format!("{name}.bias"), &l.bias)])
            .collect()
    }

    /// Every parameter, mutably, in the order of [`Model::named_params`].
    pub fn params_mut(&mut self) -> Vec<&mut Param> {
        self.layers_mut()
            .into_iter()
            .flat_map(|l| [&mut l.weight, &mut l.bias])
            .collect()
    }

    /// Every parameter with its name, mutably, in the order of [`Model::named_params`].
    pub fn named_params_mut(&mut self) -> Vec<(String, &mut Param)> {
        let names: Vec<String> = self.named_params().into_iter().map(|(n, _)| n).collect();
        names.into_iter().zip(self.params_mut()).collect()
    }

    /// Shapes of every parameter, in the order of [`Model::named_params`].
    pub fn param_shapes(&self) -> Vec<(usize, usize)> {
        self.named_params().iter().map(|(_, p)| p.value.shape()).collect()
    }

    /// Encodes a batch: the hidden activations, then the code (`ws.z`, autoencoder) or the
    /// posterior (`ws.mu`, `ws.logvar`, VAE).
    ///
    /// # Shapes
    /// `x`: batch x pixels, values in [0, 1].
    pub fn encode(&self, x: &Matrix, ws: &mut Workspace) {
        ws.encoder_hidden
            .resize_with(self.encoder.layers.len(), Matrix::default);
        for i in 0..self.encoder.layers.len() {
            let (done, rest) = ws.encoder_hidden.split_at_mut(i);
            let input = last_or(done, x);
            self.encoder.layers[i].forward(input, &mut rest[0]);
            relu_forward(&mut rest[0]);
        }
        let h = last_or(&ws.encoder_hidden, x);
        match &self.encoder.head {
            EncoderHead::Code { fc_z } => fc_z.forward(h, &mut ws.z),
            EncoderHead::Gaussian { fc_mu, fc_logvar } => {
                fc_mu.forward(h, &mut ws.mu);
                fc_logvar.forward(h, &mut ws.logvar);
            }
        }
    }

    /// Chooses `z` from the posterior that [`Model::encode`] left in `ws` (a no-op for the
    /// autoencoder, whose code is already `z`).
    pub fn draw_latent<R: Rng>(&self, ws: &mut Workspace, latent: Latent<R>) {
        if self.config.model == ModelKind::Ae {
            return;
        }
        ws.eps.reshape_for_overwrite(ws.mu.rows, ws.mu.cols);
        match latent {
            Latent::Sample(rng) => ws.eps.fill_standard_normal(rng),
            Latent::Mean => ws.eps.data.fill(0.0),
        }
        reparameterize(&ws.mu, &ws.logvar, &ws.eps, &mut ws.z, &mut ws.std);
    }

    /// Decodes `z` into one logit per pixel, keeping the hidden activations in `hidden`.
    ///
    /// # Shapes
    /// `z`: batch x latent; `logits`: batch x pixels (reshaped).
    pub fn decode_logits(&self, z: &Matrix, hidden: &mut Vec<Matrix>, logits: &mut Matrix) {
        hidden.resize_with(self.decoder.layers.len(), Matrix::default);
        for i in 0..self.decoder.layers.len() {
            let (done, rest) = hidden.split_at_mut(i);
            self.decoder.layers[i].forward(last_or(done, z), &mut rest[0]);
            relu_forward(&mut rest[0]);
        }
        self.decoder.fc_out.forward(last_or(hidden, z), logits);
    }

    /// Decodes codes into images with pixels in [0, 1].
    ///
    /// # Shapes
    /// `z`: batch x latent; returns batch x pixels.
    pub fn decode(&self, z: &Matrix) -> Matrix {
        let (mut hidden, mut logits, mut images) = (Vec::new(), Matrix::default(), Matrix::default());
        self.decode_logits(z, &mut hidden, &mut logits);
        sigmoid_into(&logits, &mut images);
        images
    }

    /// Decodes `n` codes drawn from the prior `N(0, T²·I)`, `T` the temperature. An autoencoder
    /// has no prior; the same draws show what its decoder makes of codes it was never trained
    /// to expect.
    ///
    /// # Shapes
    /// Returns n x pixels, values in [0, 1].
    pub fn sample_prior(&self, n: usize, temperature: f32, rng: &mut impl Rng) -> Matrix {
        let mut z = Matrix::standard_normal(n, self.config.latent, rng);
        for v in &mut z.data {
            *v *= temperature;
        }
        self.decode(&z)
    }

    /// Reconstructions of `x`, decoded from the posterior mean (no sampling noise: these are
    /// pictures, not loss estimates).
    ///
    /// # Shapes
    /// `x`: batch x pixels; returns batch x pixels, values in [0, 1].
    pub fn reconstruct(&self, x: &Matrix) -> Matrix {
        let mut ws = Workspace::default();
        self.forward::<crate::rng::RunRng>(x, &mut ws, Latent::Mean);
        let mut images = Matrix::default();
        sigmoid_into(&ws.logits, &mut images);
        images
    }

    /// Encode, choose `z`, decode: fills `ws` up to the logits.
    pub fn forward<R: Rng>(&self, x: &Matrix, ws: &mut Workspace, latent: Latent<R>) {
        self.encode(x, ws);
        self.draw_latent(ws, latent);
        self.decode_logits(&ws.z, &mut ws.decoder_hidden, &mut ws.logits);
    }

    /// Per-image reconstruction loss and KL of the batch that [`Model::forward`] left in
    /// `ws`, into `ws.recon_rows` and `ws.kl_rows`; with `with_grad`, also the gradient of
    /// the batch-mean loss with respect to the logits. Returns the batch means.
    pub fn loss(&self, x: &Matrix, ws: &mut Workspace, with_grad: bool) -> LossBreakdown {
        let batch = x.rows;
        ws.recon_rows.resize(batch, 0.0);
        ws.kl_rows.resize(batch, 0.0);
        let grad = with_grad.then(|| (&mut ws.grad_logits, 1.0 / batch as f32));
        self.config.recon.loss(&ws.logits, x, &mut ws.recon_rows, grad);
        match self.config.model {
            ModelKind::Ae => ws.kl_rows.fill(0.0),
            ModelKind::Vae => kl_divergence(&ws.mu, &ws.logvar, &mut ws.kl_rows),
        }
        let mean = |rows: &[f32]| rows.iter().map(|&v| v as f64).sum::<f64>() / batch.max(1) as f64;
        let reconstruction = mean(&ws.recon_rows);
        let kl = mean(&ws.kl_rows);
        LossBreakdown {
            total: reconstruction + self.kl_weight() as f64 * kl,
            reconstruction,
            kl,
        }
    }

    /// The model's own objective: its configured β, no free bits.
    pub fn objective(&self) -> Objective {
        Objective {
            beta: self.config.beta,
            free_bits: 0.0,
            k: 1,
        }
    }

    /// The batch loss under `objective`, with the gradient with respect to the logits and the
    /// KL weight of every latent dimension left in `ws` for [`Model::backward`].
    fn objective_loss(&self, x: &Matrix, ws: &mut Workspace, objective: Objective) -> LossBreakdown {
        ws.row_scale.clear();
        let mut loss = self.loss(x, ws, true);
        let latent = self.config.latent;
        let per_row = 1.0 / x.rows.max(1) as f32;
        ws.kl_scale.clear();
        match self.config.model {
            ModelKind::Ae => {
                ws.kl_scale.resize(latent, 0.0);
                loss.total = loss.reconstruction;
            }
            ModelKind::Vae if objective.free_bits > 0.0 => {
                let floor = objective.free_bits as f64;
                let per_dim = kl_per_dimension(&ws.mu, &ws.logvar);
                // Below the floor a dimension's KL is replaced by the constant floor: no gradient.
                ws.kl_scale.extend(
                    per_dim
                        .iter()
                        .map(|&k| if k >= floor { objective.beta * per_row } else { 0.0 }),
                );
                let kl_term: f64 = per_dim.iter().map(|&k| k.max(floor)).sum();
                loss.total = loss.reconstruction + objective.beta as f64 * kl_term;
            }
            ModelKind::Vae => {
                ws.kl_scale.resize(latent, objective.beta * per_row);
                loss.total = loss.reconstruction + objective.beta as f64 * loss.kl;
            }
        }
        loss
    }

    /// β for the VAE, 0 for the autoencoder.
    pub fn kl_weight(&self) -> f32 {
        match self.config.model {
            ModelKind::Ae => 0.0,
            ModelKind::Vae => self.config.beta,
        }
    }

    /// Forward, loss and backward of one training batch: leaves `∂loss/∂θ` of the batch-mean
    /// `objective` in every parameter's `grad`, and returns that loss (its `total` is the
    /// objective's value; `reconstruction` and `kl` are the plain means over the rows decoded).
    pub fn compute_gradients<R: Rng>(
        &mut self,
        x: &Matrix,
        ws: &mut Workspace,
        rng: &mut R,
        objective: Objective,
    ) -> LossBreakdown {
        let loss = self.objective_value(x, ws, rng, objective);
        if objective.k > 1 && self.config.model == ModelKind::Vae {
            let repeated = std::mem::take(&mut ws.repeated);
            self.backward(&repeated, ws);
            ws.repeated = repeated;
        } else {
            self.backward(x, ws);
        }
        loss
    }

    /// Forward and loss of a training batch under `objective`, leaving in `ws` what the
    /// backward pass needs (for `k > 1`, the input repeated k times in `ws.repeated`).
    fn objective_value<R: Rng>(
        &self,
        x: &Matrix,
        ws: &mut Workspace,
        rng: &mut R,
        objective: Objective,
    ) -> LossBreakdown {
        if objective.k <= 1 || self.config.model != ModelKind::Vae {
            self.forward(x, ws, Latent::Sample(rng));
            return self.objective_loss(x, ws, objective);
        }
        let k = objective.k;
        let mut repeated = std::mem::take(&mut ws.repeated);
        repeated.reshape_for_overwrite(x.rows * k, x.cols);
        for (r, row) in repeated.data.chunks_exact_mut(x.cols.max(1)).enumerate() {
            row.copy_from_slice(x.row(r / k));
        }
        self.forward(&repeated, ws, Latent::Sample(rng));
        let loss = self.importance_weighted_loss(&repeated, x.rows, ws, objective);
        ws.repeated = repeated;
        loss
    }

    /// The importance-weighted bound of `images` images, each repeated `k` times in `xr`
    /// (rows `i·k .. i·k + k`), whose forward pass is in `ws`. Leaves the logit gradient and
    /// each row's weight `w̃_r / images` (its normalised importance weight over the batch) in
    /// `ws` for the backward pass: `∂L/∂θ = Σ_r (w̃_r / images) · ∂(-log w_r)/∂θ`.
    fn importance_weighted_loss(
        &self,
        xr: &Matrix,
        images: usize,
        ws: &mut Workspace,
        objective: Objective,
    ) -> LossBreakdown {
        let k = objective.k;
        let rows = xr.rows;
        ws.recon_rows.resize(rows, 0.0);
        ws.kl_rows.resize(rows, 0.0);
        self.config
            .recon
            .loss(&ws.logits, xr, &mut ws.recon_rows, Some((&mut ws.grad_logits, 1.0)));
        kl_divergence(&ws.mu, &ws.logvar, &mut ws.kl_rows);
        // log w_r = -recon_r + β·(log p(z) - log q(z|x)), where for z = μ + σ ⊙ ε
        // log p(z) - log q(z|x) = -½ Σ_j (z_j² - ε_j² - logvar_j) (the 2π terms cancel).
        let beta = objective.beta as f64;
        let log_w: Vec<f64> = (0..rows)
            .map(|r| {
                let ratio: f64 =
                    ws.z.row(r)
                        .iter()
                        .zip(ws.eps.row(r))
                        .zip(ws.logvar.row(r))
                        .map(|((&z, &e), &lv)| (z * z - e * e - lv) as f64)
                        .sum();
                -(ws.recon_rows[r] as f64) - beta * 0.5 * ratio
            })
            .collect();
        ws.row_scale.clear();
        ws.iw_beta = objective.beta;
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

    /// Backward pass from `ws.grad_logits` and `ws.kl_scale` (left by `objective_loss`).
    fn backward(&mut self, x: &Matrix, ws: &mut Workspace) {
        let Workspace {
            encoder_hidden,
            mu,
            logvar,
            std,
            eps,
            z,
            decoder_hidden,
            grad_logits,
            grad_a,
            grad_b,
            grad_mu,
            grad_logvar,
            kl_scale,
            row_scale,
            iw_beta,
            ..
        } = ws;
        let beta = *iw_beta;

        // Decoder, from the logits back to z; grad_a holds ∂L/∂(current layer's output).
        self.decoder
            .fc_out
            .backward(last_or(decoder_hidden, z), grad_logits, GradInput::Write(grad_a));
        for i in (0..self.decoder.layers.len()).rev() {
            relu_backward(&decoder_hidden[i], grad_a);
            let input = last_or(&decoder_hidden[..i], z);
            self.decoder.layers[i].backward(input, grad_a, GradInput::Write(grad_b));
            std::mem::swap(grad_a, grad_b);
        }
        // grad_a = ∂L/∂z. Through the head to the last hidden layer's output.
        let h = last_or(encoder_hidden, x);
        // Without hidden layers the head's input is the data: no gradient needed there.
        let need_dx = !self.encoder.layers.is_empty();
        match &mut self.encoder.head {
            EncoderHead::Code { fc_z } => {
                let dx = if need_dx {
                    GradInput::Write(grad_b)
                } else {
                    GradInput::Skip
                };
                fc_z.backward(h, grad_a, dx);
            }
            EncoderHead::Gaussian { fc_mu, fc_logvar } => {
                if row_scale.is_empty() {
                    reparameterize_kl_backward(mu, logvar, eps, std, grad_a, kl_scale, grad_mu, grad_logvar);
                } else {
                    reparameterize_iw_backward(z, eps, std, grad_a, row_scale, beta, grad_mu, grad_logvar);
                }
                let dx = if need_dx {
                    GradInput::Write(&mut *grad_b)
                } else {
                    GradInput::Skip
                };
                fc_mu.backward(h, grad_mu, dx);
                let dx = if need_dx {
                    GradInput::Add(grad_b)
                } else {
                    GradInput::Skip
                };
                fc_logvar.backward(h, grad_logvar, dx);
            }
        }
        std::mem::swap(grad_a, grad_b);
        // Encoder layers; the first one's input is the data, whose gradient nobody needs.
        for i in (0..self.encoder.layers.len()).rev() {
            relu_backward(&encoder_hidden[i], grad_a);
            let input = last_or(&encoder_hidden[..i], x);
            let dx = if i == 0 {
                GradInput::Skip
            } else {
                GradInput::Write(grad_b)
            };
            self.encoder.layers[i].backward(input, grad_a, dx);
            std::mem::swap(grad_a, grad_b);
        }
    }
}

#[cfg(test)]
mod tests;
