//! What a model is: everything needed to rebuild it, saved as `config.json` beside the
//! weights. The field names are the command-line flags and the JSON keys.

use serde::{Deserialize, Serialize};

use super::PriorKind;
use super::prior::MAX_PRIOR_COMPONENTS;
use crate::data::ImageShape;
use crate::engine::{ConvGeometry, ConvTransposeGeometry, Recon};
use crate::error::{Error, Result};

/// Deterministic autoencoder, variational autoencoder, or conditional VAE.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    /// `z = e(x)`, trained on the reconstruction loss alone.
    Ae,
    /// `q(z|x) = N(μ(x), σ(x)²)`, trained on reconstruction + β·KL (the negative ELBO).
    Vae,
    /// The VAE with the label `y` given to both sides: `q(z|x, y)`, `p(x|z, y)`, so the decoder
    /// draws the class it is asked for.
    Cvae,
}

impl ModelKind {
    /// The word used on the command line and in `config.json`.
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Ae => "ae",
            ModelKind::Vae => "vae",
            ModelKind::Cvae => "cvae",
        }
    }

    /// Whether the encoder outputs a normal law (VAE, CVAE) rather than a code (AE).
    pub fn is_variational(self) -> bool {
        matches!(self, ModelKind::Vae | ModelKind::Cvae)
    }

    /// Whether encoder and decoder take the label.
    pub fn is_conditional(self) -> bool {
        self == ModelKind::Cvae
    }
}

/// The body of encoder and decoder.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    /// Dense layers only.
    #[default]
    Mlp,
    /// Strided 3x3 convolutions before the dense layers; the decoder mirrors them with
    /// transposed convolutions.
    Conv,
}

impl Arch {
    /// The word used on the command line and in `config.json`.
    pub fn name(self) -> &'static str {
        match self {
            Arch::Mlp => "mlp",
            Arch::Conv => "conv",
        }
    }
}

/// The architecture and objective of a model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    /// `"model"` in configs written before it was named for what it is.
    #[serde(alias = "model")]
    pub kind: ModelKind,
    /// Absent from configs written before convolutional bodies existed: those are MLPs.
    #[serde(default)]
    pub arch: Arch,
    pub image_height: usize,
    pub image_width: usize,
    /// 1 for grey images, 3 for RGB. Absent from configs written before colour, and left out
    /// for grey: those are grey.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub image_channels: usize,
    /// Conv: output channels of the encoder's convolutions (3x3, stride 2, padding 1), input
    /// side first. Empty for the MLP.
    #[serde(default)]
    pub channels: Vec<usize>,
    /// Widths of the encoder's dense hidden layers, input side first; the decoder mirrors them.
    pub hidden: Vec<usize>,
    /// Size of the latent code `z`.
    pub latent: usize,
    pub recon: Recon,
    /// Weight of the KL term (1 = the plain VAE). Ignored by the autoencoder.
    pub beta: f32,
    /// CVAE: the number of classes of its one-hot label; 0 for the other models.
    #[serde(default)]
    pub classes: usize,
    /// The prior p(z): `N(0, I)`, or one learned with the model. Absent from configs written
    /// before learned priors, and left out for the standard normal: those are `N(0, I)`.
    #[serde(default, skip_serializing_if = "PriorKind::is_standard")]
    pub prior: PriorKind,
    /// A learned prior's mixture components (the VampPrior's pseudo-inputs); 0 for `N(0, I)`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub prior_components: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

fn one() -> usize {
    1
}

fn is_one(n: &usize) -> bool {
    *n == 1
}

/// The side of MNIST's images, and of the models made for them.
pub const MNIST_SIDE: usize = 28;
/// The widest layer a config may ask for: far beyond what helps on 784 pixels, far below what
/// would exhaust memory.
pub const MAX_WIDTH: usize = 16_384;
/// The largest image side a config may ask for.
pub const MAX_SIDE: usize = 1024;
/// The most parameters a model may have: far beyond any useful model of small images, well
/// within memory (400 MB of weights, as much again for each of gradient and Adam's moments).
pub const MAX_PARAMS: u64 = 100_000_000;
/// The most hidden layers a config may ask for.
pub const MAX_LAYERS: usize = 16;
/// The kernel, stride and padding of every convolution of a conv body: each halves the map.
pub const CONV_KERNEL: usize = 3;
pub const CONV_STRIDE: usize = 2;
pub const CONV_PADDING: usize = 1;
/// The most classes a CVAE label may have.
pub const MAX_CLASSES: usize = 256;
/// The most convolutions a conv body may have, and channels per convolution.
pub const MAX_CONV_LAYERS: usize = 6;
pub const MAX_CHANNELS: usize = 1024;
/// Activation values one training step may hold: rows x [`ModelConfig::activations_per_image`],
/// the rows being the batch (times k under the importance-weighted bound). 2^29 values are
/// 2 GiB of activations, about 3 GiB of process memory with gradients and workspace (measured
/// on the conv model at its largest batch, 9,104); the classic MLP takes steps of up to
/// ~120,000 images.
pub const MAX_STEP_ACTIVATIONS: usize = 1 << 29;

impl ModelConfig {
    /// The classic VAE of `arch` ([`ModelConfig::mlp_vae`] or [`ModelConfig::conv_vae`]),
    /// with its channels and hidden widths replaced where given.
    pub fn for_body(arch: Arch, channels: Option<Vec<usize>>, hidden: Option<Vec<usize>>) -> Self {
        let base = match arch {
            Arch::Mlp => ModelConfig::mlp_vae(),
            Arch::Conv => ModelConfig::conv_vae(),
        };
        ModelConfig {
            channels: channels.unwrap_or(base.channels.clone()),
            hidden: hidden.unwrap_or(base.hidden.clone()),
            ..base
        }
    }

    /// The classic MLP VAE of the PyTorch example: 784-400-20, Bernoulli likelihood.
    pub fn mlp_vae() -> Self {
        ModelConfig {
            kind: ModelKind::Vae,
            image_height: MNIST_SIDE,
            image_width: MNIST_SIDE,
            image_channels: 1,
            hidden: vec![400],
            latent: 20,
            recon: Recon::Bce,
            beta: 1.0,
            classes: 0,
            arch: Arch::Mlp,
            channels: Vec::new(),
            prior: PriorKind::Standard,
            prior_components: 0,
        }
    }

    /// The conv body of the common Keras example: convolutions to 32 and 64 channels, a
    /// 256-unit dense layer, latent 20.
    pub fn conv_vae() -> Self {
        ModelConfig {
            arch: Arch::Conv,
            channels: vec![32, 64],
            hidden: vec![256],
            ..Self::mlp_vae()
        }
    }

    /// Values per image (pixels x channels): the width of the model's input and output.
    pub fn pixels(&self) -> usize {
        self.image_height * self.image_width * self.image_channels
    }

    /// The size of the images the model takes and makes.
    pub fn image_shape(&self) -> ImageShape {
        ImageShape {
            height: self.image_height,
            width: self.image_width,
            channels: self.image_channels,
        }
    }

    /// Takes the size of `shape`'s images.
    pub fn fit_image_shape(&mut self, shape: ImageShape) {
        (self.image_height, self.image_width, self.image_channels) = (shape.height, shape.width, shape.channels);
    }

    /// Refuses sizes no model can have.
    pub fn validate(&self) -> Result<()> {
        if self.image_height == 0 || self.image_width == 0 {
            return Err(Error::config("image size", "must be at least 1x1"));
        }
        if self.image_height > MAX_SIDE || self.image_width > MAX_SIDE {
            return Err(Error::config(
                "image size",
                format!("must be at most {MAX_SIDE}x{MAX_SIDE}"),
            ));
        }
        if !matches!(self.image_channels, 1 | 3) {
            return Err(Error::config(
                "image channels",
                format!("must be 1 (grey) or 3 (rgb), got {}", self.image_channels),
            ));
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
        match self.arch {
            Arch::Mlp if !self.channels.is_empty() => {
                return Err(Error::config("channels", "only a conv body has channels"));
            }
            Arch::Mlp => {}
            Arch::Conv => {
                if self.image_height != self.image_width {
                    return Err(Error::config("arch", "a conv body needs square images"));
                }
                if self.channels.is_empty() || self.channels.contains(&0) {
                    return Err(Error::config(
                        "channels",
                        "a conv body needs at least one layer of at least 1 channel",
                    ));
                }
                if self.channels.iter().any(|&c| c > MAX_CHANNELS) || self.channels.len() > MAX_CONV_LAYERS {
                    return Err(Error::config(
                        "channels",
                        format!("at most {MAX_CONV_LAYERS} layers of at most {MAX_CHANNELS} channels"),
                    ));
                }
            }
        }
        match (self.kind.is_conditional(), self.classes) {
            (true, 0) => return Err(Error::config("classes", "a cvae needs at least 1 class")),
            (true, c) if c > MAX_CLASSES => {
                return Err(Error::config("classes", format!("must be at most {MAX_CLASSES}")));
            }
            (true, _) if self.hidden.is_empty() => {
                return Err(Error::config(
                    "hidden",
                    "a cvae needs a hidden layer: the label joins the first one",
                ));
            }
            (false, c) if c != 0 => return Err(Error::config("classes", "only a cvae takes a label")),
            _ => {}
        }
        self.validate_prior()?;
        if self.parameters() > MAX_PARAMS {
            return Err(Error::config(
                "model",
                format!(
                    "{} parameters: more than the {MAX_PARAMS} this tool allows",
                    self.parameters()
                ),
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

    /// Refuses a prior the model cannot be trained toward.
    fn validate_prior(&self) -> Result<()> {
        let k = self.prior_components;
        match self.prior {
            PriorKind::Standard if k != 0 => Err(Error::config(
                "prior-components",
                "only a learned prior (--prior mog or vamp) has components",
            )),
            PriorKind::Standard => Ok(()),
            _ if !self.kind.is_variational() => Err(Error::config(
                "prior",
                "an autoencoder has no KL term to train a prior with (use --kind vae or cvae)",
            )),
            PriorKind::Vamp if self.kind.is_conditional() => Err(Error::config(
                "prior",
                "the VampPrior's pseudo-inputs have no labels for a cvae's encoder (use --prior mog)",
            )),
            PriorKind::Vamp if !self.recon.is_for_intensities() => Err(Error::config(
                "prior",
                "the VampPrior's pseudo-inputs are intensities in [0, 1], not the Gaussian's real values (use --prior mog)",
            )),
            _ if k == 0 || k > MAX_PRIOR_COMPONENTS => Err(Error::config(
                "prior-components",
                format!("must be between 1 and {MAX_PRIOR_COMPONENTS}, got {k}"),
            )),
            _ => Ok(()),
        }
    }

    /// Parameters of the prior: a mixture's means, log-variances and logits, or the
    /// VampPrior's pseudo-inputs.
    pub fn prior_parameters(&self) -> u64 {
        let k = self.prior_components as u64;
        match self.prior {
            PriorKind::Standard => 0,
            PriorKind::Mog => k * (2 * self.latent as u64 + 1),
            PriorKind::Vamp => k * self.pixels() as u64,
        }
    }

    /// Refuses a training step of `rows` images whose activations would pass
    /// [`MAX_STEP_ACTIVATIONS`], naming `field` (the flag that sets the rows).
    pub fn ensure_step_fits(&self, field: &str, rows: usize) -> Result<()> {
        let per_image = self.activations_per_image().max(1);
        let values = rows.saturating_mul(per_image);
        if values <= MAX_STEP_ACTIVATIONS {
            return Ok(());
        }
        Err(Error::config(
            field,
            format!(
                "{rows} images a step need {values} activation values, more than the {MAX_STEP_ACTIVATIONS} a step may hold: at most {} for this model",
                MAX_STEP_ACTIVATIONS / per_image
            ),
        ))
    }

    /// The encoder's convolutions, input side first (none for the MLP).
    pub fn encoder_convs(&self) -> Vec<ConvGeometry> {
        let (mut height, mut width, mut channels) = (self.image_height, self.image_width, self.image_channels);
        let mut convs = Vec::new();
        for &out in &self.channels {
            let g = ConvGeometry {
                in_channels: channels,
                out_channels: out,
                kernel: CONV_KERNEL,
                stride: CONV_STRIDE,
                padding: CONV_PADDING,
                in_height: height,
                in_width: width,
            };
            (height, width, channels) = (g.out_height(), g.out_width(), out);
            convs.push(g);
        }
        convs
    }

    /// The decoder's transposed convolutions, each undoing one of the encoder's: same kernel,
    /// channels swapped, output padding chosen to give back the encoder's map size exactly.
    pub fn decoder_deconvs(&self) -> Vec<ConvTransposeGeometry> {
        self.encoder_convs()
            .iter()
            .rev()
            .map(|g| {
                let undone = (g.out_height() - 1) * g.stride + g.kernel - 2 * g.padding;
                ConvTransposeGeometry {
                    in_channels: g.out_channels,
                    out_channels: g.in_channels,
                    kernel: g.kernel,
                    stride: g.stride,
                    padding: g.padding,
                    output_padding: g.in_height - undone,
                    in_height: g.out_height(),
                    in_width: g.out_width(),
                }
            })
            .collect()
    }

    /// Width of the dense part's input: the pixels for the MLP, the flattened last feature map
    /// (rows, columns, channels) for the conv body.
    pub fn dense_input(&self) -> usize {
        self.encoder_convs().last().map_or(self.pixels(), |g| g.out_size())
    }
}
