//! Inference: encoding a batch, choosing its code, decoding codes into pixels.

use rand::Rng;

use super::{Latent, Model, Workspace, rows_of};
use crate::engine::Matrix;
use crate::engine::activation::sigmoid_into;
use crate::engine::layer::StackActivations;

impl Model {
    /// Encodes a batch: the body's output `ws.h`, then the code (`ws.z`, autoencoder) or the
    /// posterior (`ws.mu`, `ws.logvar`, VAE and CVAE).
    ///
    /// A Gaussian-likelihood model first standardises `x` into `ws.input` ([`super::Scaler`]),
    /// and reads that.
    ///
    /// # Shapes
    /// `x`: batch x pixels, values in [0, 1] (any real values for the Gaussian); `condition`
    /// (CVAE): batch x classes.
    pub fn encode(&self, x: &Matrix, condition: Option<&Matrix>, ws: &mut Workspace) {
        self.check_condition(x.rows, condition);
        let x = match &self.scaler {
            Some(scaler) => {
                scaler.standardize_into(x, &mut ws.input);
                &ws.input
            }
            None => x,
        };
        self.encoder.body.forward(x, condition, &mut ws.encoder, &mut ws.h);
        self.encoder.head.forward(ws);
    }

    /// Decoder outputs as values: pixels in [0, 1] through the sigmoid, or the Gaussian's
    /// means in the data's units.
    pub fn outputs_into(&self, logits: &Matrix, out: &mut Matrix) {
        match &self.scaler {
            Some(scaler) => {
                out.reshape_for_overwrite(logits.rows, logits.cols);
                out.data.copy_from_slice(&logits.data);
                scaler.unstandardize(out);
            }
            None => sigmoid_into(logits, out),
        }
    }

    /// Chooses `z` from the posterior that [`Model::encode`] left in `ws` (a no-op for the
    /// autoencoder, whose code is already `z`).
    pub fn draw_latent<R: Rng>(&self, ws: &mut Workspace, latent: Latent<R>) {
        self.encoder.head.draw(ws, latent);
    }

    /// Decodes `z` into one logit per pixel, keeping the activations in `acts`.
    ///
    /// # Shapes
    /// `z`: batch x latent; `condition` (CVAE): batch x classes; `logits`: batch x pixels
    /// (reshaped).
    pub fn decode_logits(
        &self,
        z: &Matrix,
        condition: Option<&Matrix>,
        acts: &mut StackActivations,
        logits: &mut Matrix,
    ) {
        self.check_condition(z.rows, condition);
        self.decoder.forward(z, condition, acts, logits);
    }

    /// Decodes codes into images with pixels in [0, 1] (a Gaussian's means, for vectors),
    /// [`Model::rows_per_pass`] rows at a time so that memory stays bounded however many
    /// codes come.
    ///
    /// # Shapes
    /// `z`: batch x latent; `condition` (CVAE): batch x classes; returns batch x pixels.
    pub fn decode(&self, z: &Matrix, condition: Option<&Matrix>) -> Matrix {
        let (mut acts, mut logits, mut part) = Default::default();
        let mut images = Matrix::zeros(z.rows, self.config.pixels());
        let step = self.rows_per_pass();
        for start in (0..z.rows).step_by(step) {
            let end = (start + step).min(z.rows);
            let c = condition.map(|c| rows_of(c, start, end));
            self.decode_logits(&rows_of(z, start, end), c.as_deref(), &mut acts, &mut logits);
            self.outputs_into(&logits, &mut part);
            images.data[start * part.cols..end * part.cols].copy_from_slice(&part.data);
        }
        images
    }

    /// Decodes `n` codes drawn from the prior at temperature `T` (see [`super::PriorDensity::sample`]; a
    /// CVAE draws the classes of `condition`, n rows).
    ///
    /// # Shapes
    /// Returns n x pixels, values in [0, 1].
    pub fn sample_prior(&self, n: usize, temperature: f32, condition: Option<&Matrix>, rng: &mut impl Rng) -> Matrix {
        self.decode(&self.prior_codes(n, temperature, rng), condition)
    }

    /// `n` codes drawn from the prior at temperature `T`.
    pub fn prior_codes(&self, n: usize, temperature: f32, rng: &mut impl Rng) -> Matrix {
        self.prior_density().sample(n, self.config.latent, temperature, rng)
    }

    /// Reconstructions of `x`, decoded from the posterior mean (no sampling noise: these are
    /// pictures, not loss estimates).
    ///
    /// # Shapes
    /// `x`: batch x pixels; returns batch x pixels, values in [0, 1].
    pub fn reconstruct(&self, x: &Matrix, condition: Option<&Matrix>) -> Matrix {
        let mut ws = Workspace::default();
        self.forward::<crate::rng::RunRng>(x, condition, &mut ws, Latent::Mean);
        let mut images = Matrix::default();
        self.outputs_into(&ws.logits, &mut images);
        images
    }

    /// Encode, choose `z`, decode: fills `ws` up to the logits.
    pub fn forward<R: Rng>(&self, x: &Matrix, condition: Option<&Matrix>, ws: &mut Workspace, latent: Latent<R>) {
        self.encode(x, condition, ws);
        self.draw_latent(ws, latent);
        self.decode_logits(&ws.z, condition, &mut ws.decoder, &mut ws.logits);
    }
}
