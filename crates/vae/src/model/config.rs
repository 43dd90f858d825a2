//! What a model is: everything needed to rebuild it, saved as `config.json` beside the
//! weights. The field names are the command-line flags and the JSON keys.

use serde::{Deserialize, Serialize};

use crate::engine::Recon;
use crate::error::{Error, Result};

/// Deterministic autoencoder or variational autoencoder.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    /// `z = e(x)`, trained on the reconstruction loss alone.
    Ae,
    /// `q(z|x) = N(μ(x), σ(x)²)`, trained on reconstruction + β·KL (the negative ELBO).
    Vae,
}

impl ModelKind {
    /// The word used on the command line and in `config.json`.
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Ae => "ae",
            ModelKind::Vae => "vae",
        }
    }
}

/// The architecture and objective of a model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    pub model: ModelKind,
    pub image_height: usize,
    pub image_width: usize,
    /// Widths of the encoder's hidden layers, input side first; the decoder mirrors them.
    pub hidden: Vec<usize>,
    /// Size of the latent code `z`.
    pub latent: usize,
    pub recon: Recon,
    /// Weight of the KL term (1 = the plain VAE). Ignored by the autoencoder.
    pub beta: f32,
}

/// Images are 28 x 28 in every dataset this tool reads.
pub const MNIST_SIDE: usize = 28;
/// The widest layer a config may ask for: far beyond what helps on 784 pixels, far below what
/// would exhaust memory.
pub const MAX_WIDTH: usize = 16_384;
/// The most hidden layers a config may ask for.
pub const MAX_LAYERS: usize = 16;

impl ModelConfig {
    /// The classic MLP VAE of the PyTorch example: 784-400-20, Bernoulli likelihood.
    pub fn mlp_vae() -> Self {
        ModelConfig {
            model: ModelKind::Vae,
            image_height: MNIST_SIDE,
            image_width: MNIST_SIDE,
            hidden: vec![400],
            latent: 20,
            recon: Recon::Bce,
            beta: 1.0,
        }
    }

    /// Pixels per image: the width of the model's input and output.
    pub fn pixels(&self) -> usize {
        self.image_height * self.image_width
    }

    /// Refuses sizes no model can have.
    pub fn validate(&self) -> Result<()> {
        if self.image_height == 0 || self.image_width == 0 {
            return Err(Error::config("image size", "must be at least 1x1"));
        }
        if self.latent == 0 {
            return Err(Error::config("latent", "must be at least 1"));
        }
        if self.latent > MAX_WIDTH {
            return Err(Error::config("latent", format!("must be at most {MAX_WIDTH}")));
        }
        if self.hidden.contains(&0) {
            return Err(Error::config("hidden", "every layer needs at least 1 unit"));
        }
        if self.hidden.iter().any(|&h| h > MAX_WIDTH) || self.hidden.len() > MAX_LAYERS {
            return Err(Error::config(
                "hidden",
                format!("at most {MAX_LAYERS} layers of at most {MAX_WIDTH} units"),
            ));
        }
        if !(self.beta.is_finite() && self.beta >= 0.0) {
            return Err(Error::config(
                "beta",
                format!("must be a finite number >= 0, got {}", self.beta),
            ));
        }
        Ok(())
    }

    /// Floating-point operations of one forward pass for one image (2 per multiply-add).
    pub fn forward_flops(&self) -> u64 {
        self.layer_shapes().iter().map(|&(i, o)| 2 * (i * o) as u64).sum()
    }

    /// `(inputs, outputs)` of every linear layer, in execution order.
    pub fn layer_shapes(&self) -> Vec<(usize, usize)> {
        let mut shapes = Vec::new();
        let mut width = self.pixels();
        for &h in &self.hidden {
            shapes.push((width, h));
            width = h;
        }
        let heads = if self.model == ModelKind::Vae { 2 } else { 1 };
        shapes.extend(std::iter::repeat_n((width, self.latent), heads));
        width = self.latent;
        for &h in self.hidden.iter().rev() {
            shapes.push((width, h));
            width = h;
        }
        shapes.push((width, self.pixels()));
        shapes
    }
}
