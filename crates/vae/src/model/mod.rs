//! The models: an MLP encoder and decoder shared by the autoencoder and the VAE, so the two
//! compare fairly, with the forward pass, the loss and the backward pass of a training step.
//!
//! Parameter names are paths (`encoder.fc1.weight`, `encoder.fc_mu.bias`, `decoder.fc_out.weight`)
//! and shapes follow PyTorch's `nn.Linear`, so a PyTorch user can read a checkpoint as is.

mod config;
mod workspace;

pub use config::{Arch, MNIST_SIDE, ModelConfig, ModelKind};
pub use workspace::{DecoderActivations, EncoderActivations, Workspace};

use std::borrow::Cow;

use rand::Rng;

use crate::engine::activation::{relu_backward, relu_forward, sigmoid_into};
use crate::engine::gaussian::{
    kl_divergence, kl_per_dimension, log_prior_ratio, reparameterize, reparameterize_iw_backward,
    reparameterize_kl_backward,
};
use crate::engine::matmul::{Op, matmul};
use crate::engine::{Conv2d, ConvTranspose2d, GradInput, Linear, Matrix, Param};
use crate::error::{Error, Result};

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

/// `x → h`: convolutions (conv body), then dense layers, each followed by ReLU, then the head.
#[derive(Clone, Debug)]
pub struct Encoder {
    /// `conv1`, `conv2`, …: empty for the MLP.
    pub convs: Vec<Conv2d>,
    /// `fc1`, `fc2`, …: the first reads the pixels (MLP) or the flattened last feature map.
    pub layers: Vec<Linear>,
    /// CVAE: `fc1`'s weights on the one-hot label. `fc1` then computes what PyTorch's
    /// `Linear(in + classes, out)` computes on `[h, y]`, its weight kept in two pieces.
    pub fc1_label: Option<Param>,
    pub head: EncoderHead,
}

/// What turns the decoder's last dense output into one logit per pixel.
#[derive(Clone, Debug)]
pub enum DecoderOutput {
    /// MLP: `fc_out`, a linear layer to the pixels.
    Dense { fc_out: Linear },
    /// Conv body: `deconv1`, `deconv2`, …, transposed convolutions with ReLU between them,
    /// mirroring the encoder's convolutions; the last has one output channel.
    Deconv { deconvs: Vec<ConvTranspose2d> },
}

/// `z → logits`: dense layers with ReLU (for the conv body, the last one reaches the size of
/// the encoder's last feature map), then the output stage.
#[derive(Clone, Debug)]
pub struct Decoder {
    /// `fc1`, `fc2`, …
    pub layers: Vec<Linear>,
    /// CVAE: `fc1`'s weights on the one-hot label.
    pub fc1_label: Option<Param>,
    pub output: DecoderOutput,
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

/// The last of `outputs`, or `input` when there are none (a body without hidden layers).
fn last_or<'a>(outputs: &'a [Matrix], input: &'a Matrix) -> &'a Matrix {
    outputs.last().unwrap_or(input)
}

/// A dense layer of `inputs` (+ `classes` label columns when `classes > 0`) to `outputs`:
/// initialised as one PyTorch layer over the concatenation, then split into the layer and its
/// label columns.
fn dense_with_label(inputs: usize, outputs: usize, classes: usize, rng: &mut impl Rng) -> (Linear, Option<Param>) {
    let mut layer = Linear::new(inputs + classes, outputs, rng);
    if classes == 0 {
        return (layer, None);
    }
    let w = &layer.weight.value;
    let (mut data, mut label) = (
        Vec::with_capacity(outputs * inputs),
        Vec::with_capacity(outputs * classes),
    );
    for row in w.data.chunks_exact(inputs + classes) {
        data.extend_from_slice(&row[..inputs]);
        label.extend_from_slice(&row[inputs..]);
    }
    layer.weight = Param::new(Matrix::from_vec(outputs, inputs, data));
    (layer, Some(Param::new(Matrix::from_vec(outputs, classes, label))))
}

/// `y += c · Wᵀ`: the label's part of a conditioned layer's pre-activation.
fn add_label(weight: &Option<Param>, condition: Option<&Matrix>, y: &mut Matrix) {
    if let (Some(w), Some(c)) = (weight, condition) {
        matmul(y, c, Op::N, &w.value, Op::T, true);
    }
}

/// `∂L/∂W = dyᵀ · c` for the label's part of a conditioned layer.
fn label_backward(weight: &mut Option<Param>, condition: Option<&Matrix>, dy: &Matrix) {
    if let (Some(w), Some(c)) = (weight, condition) {
        matmul(&mut w.grad, dy, Op::T, c, Op::N, false);
    }
}

/// Every parameter of a model with its safetensors name, in the fixed order of the optimizer
/// state: one walk for shared and mutable borrows alike.
macro_rules! walk_params {
    ($model:expr, $iter:ident, $($ref_:tt)+) => {{
        let m = $model;
        let mut out = Vec::new();
        for (i, c) in m.encoder.convs.$iter().enumerate() {
            pair(&mut out, ParamPath::layer("encoder.conv", Some(i + 1)), $($ref_)+ c.weight, $($ref_)+ c.bias);
        }
        for (i, l) in m.encoder.layers.$iter().enumerate() {
            pair(&mut out, ParamPath::layer("encoder.fc", Some(i + 1)), $($ref_)+ l.weight, $($ref_)+ l.bias);
        }
        if let Some(p) = $($ref_)+ m.encoder.fc1_label {
            out.push((ParamPath::layer("encoder.fc1_label", None).field("weight"), p));
        }
        match $($ref_)+ m.encoder.head {
            EncoderHead::Code { fc_z } => pair(&mut out, ParamPath::layer("encoder.fc_z", None), $($ref_)+ fc_z.weight, $($ref_)+ fc_z.bias),
            EncoderHead::Gaussian { fc_mu, fc_logvar } => {
                pair(&mut out, ParamPath::layer("encoder.fc_mu", None), $($ref_)+ fc_mu.weight, $($ref_)+ fc_mu.bias);
                pair(&mut out, ParamPath::layer("encoder.fc_logvar", None), $($ref_)+ fc_logvar.weight, $($ref_)+ fc_logvar.bias);
            }
        }
        for (i, l) in m.decoder.layers.$iter().enumerate() {
            pair(&mut out, ParamPath::layer("decoder.fc", Some(i + 1)), $($ref_)+ l.weight, $($ref_)+ l.bias);
        }
        if let Some(p) = $($ref_)+ m.decoder.fc1_label {
            out.push((ParamPath::layer("decoder.fc1_label", None).field("weight"), p));
        }
        match $($ref_)+ m.decoder.output {
            DecoderOutput::Dense { fc_out } => {
                pair(&mut out, ParamPath::layer("decoder.fc_out", None), $($ref_)+ fc_out.weight, $($ref_)+ fc_out.bias)
            }
            DecoderOutput::Deconv { deconvs } => {
                for (i, d) in deconvs.$iter().enumerate() {
                    pair(&mut out, ParamPath::layer("decoder.deconv", Some(i + 1)), $($ref_)+ d.weight, $($ref_)+ d.bias);
                }
            }
        }
        out
    }};
}

/// Appends a layer's `NAME.weight` and `NAME.bias`.
fn pair<T>(out: &mut Vec<(ParamPath, T)>, layer: ParamPath, weight: T, bias: T) {
    out.push((layer.field("weight"), weight));
    out.push((layer.field("bias"), bias));
}

/// A parameter's safetensors name (`encoder.fc1.weight`) in pieces: walking the parameters,
/// which the optimizer does every step, then builds no string.
#[derive(Clone, Copy, Debug)]
struct ParamPath {
    layer: &'static str,
    /// The layer's number, 1-based, for stacks of layers (`fc1`, `fc2`, …).
    index: Option<usize>,
    field: &'static str,
}

impl ParamPath {
    fn layer(layer: &'static str, index: Option<usize>) -> Self {
        ParamPath {
            layer,
            index,
            field: "",
        }
    }

    fn field(self, field: &'static str) -> Self {
        ParamPath { field, ..self }
    }
}

impl std::fmt::Display for ParamPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.layer)?;
        if let Some(i) = self.index {
            write!(f, "{i}")?;
        }
        write!(f, ".{}", self.field)
    }
}

/// Where a layer whose input may be the data puts its input gradient: nowhere when it is the
/// data, else written into or added onto `grad`.
fn input_grad(grad: &mut Matrix, needed: bool, add: bool) -> GradInput<'_> {
    match (needed, add) {
        (false, _) => GradInput::Skip,
        (true, false) => GradInput::Write(grad),
        (true, true) => GradInput::Add(grad),
    }
}

impl Model {
    /// A freshly initialised model (PyTorch's default initialisation), layers drawn in
    /// execution order from `rng`.
    pub fn new(config: ModelConfig, rng: &mut impl Rng) -> Result<Self> {
        config.validate()?;
        let convs: Vec<Conv2d> = config
            .encoder_convs()
            .into_iter()
            .map(|g| Conv2d::new(g, rng))
            .collect();
        let classes = config.classes;
        let mut width = config.dense_input();
        let mut encoder_layers = Vec::new();
        let mut encoder_label = None;
        for &h in &config.hidden {
            let first = encoder_layers.is_empty();
            let (layer, label) = dense_with_label(width, h, if first { classes } else { 0 }, rng);
            encoder_layers.push(layer);
            encoder_label = encoder_label.or(label);
            width = h;
        }
        let head = match config.model {
            ModelKind::Ae => EncoderHead::Code {
                fc_z: Linear::new(width, config.latent, rng),
            },
            ModelKind::Vae | ModelKind::Cvae => EncoderHead::Gaussian {
                fc_mu: Linear::new(width, config.latent, rng),
                fc_logvar: Linear::new(width, config.latent, rng),
            },
        };
        // The decoder's dense widths: the hidden layers mirrored, then (conv body) the size of
        // the encoder's last feature map, which the transposed convolutions take from there.
        let mut widths: Vec<usize> = config.hidden.iter().rev().copied().collect();
        if config.arch == Arch::Conv {
            widths.push(config.dense_input());
        }
        let mut width = config.latent;
        let mut decoder_layers = Vec::new();
        let mut decoder_label = None;
        for h in widths {
            let first = decoder_layers.is_empty();
            let (layer, label) = dense_with_label(width, h, if first { classes } else { 0 }, rng);
            decoder_layers.push(layer);
            decoder_label = decoder_label.or(label);
            width = h;
        }
        let output = match config.arch {
            Arch::Mlp => DecoderOutput::Dense {
                fc_out: Linear::new(width, config.pixels(), rng),
            },
            Arch::Conv => DecoderOutput::Deconv {
                deconvs: config
                    .decoder_deconvs()
                    .into_iter()
                    .map(|g| ConvTranspose2d::new(g, rng))
                    .collect(),
            },
        };
        Ok(Model {
            config,
            encoder: Encoder {
                convs,
                layers: encoder_layers,
                fc1_label: encoder_label,
                head,
            },
            decoder: Decoder {
                layers: decoder_layers,
                fc1_label: decoder_label,
                output,
            },
        })
    }

    /// Every parameter with its safetensors name (`encoder.fc1.weight`, …), in a fixed order.
    pub fn named_params(&self) -> Vec<(String, &Param)> {
        let params: Vec<(ParamPath, &Param)> = walk_params!(self, iter, &);
        params.into_iter().map(|(path, p)| (path.to_string(), p)).collect()
    }

    /// Every parameter with its name, mutably, in the order of [`Model::named_params`].
    pub fn named_params_mut(&mut self) -> Vec<(String, &mut Param)> {
        let params: Vec<(ParamPath, &mut Param)> = walk_params!(self, iter_mut, &mut);
        params.into_iter().map(|(path, p)| (path.to_string(), p)).collect()
    }

    /// Every parameter, mutably, in the order of [`Model::named_params`].
    pub fn params_mut(&mut self) -> Vec<&mut Param> {
        let params: Vec<(ParamPath, &mut Param)> = walk_params!(self, iter_mut, &mut);
        params.into_iter().map(|(_, p)| p).collect()
    }

    /// Shapes of every parameter, in the order of [`Model::named_params`].
    pub fn param_shapes(&self) -> Vec<(usize, usize)> {
        self.named_params().iter().map(|(_, p)| p.value.shape()).collect()
    }

    /// The one-hot condition of a CVAE for `labels`; `None` for the unconditional models,
    /// which take no label.
    ///
    /// # Errors
    /// A label at or beyond the model's number of classes.
    pub fn condition(&self, labels: &[u8]) -> Result<Option<Matrix>> {
        if !self.config.model.is_conditional() {
            return Ok(None);
        }
        let classes = self.config.classes;
        let mut c = Matrix::zeros(labels.len(), classes);
        for (row, &label) in c.data.chunks_exact_mut(classes).zip(labels) {
            let slot = row.get_mut(label as usize).ok_or_else(|| {
                Error::config(
                    "label",
                    format!("{label} is not a class of this model (it knows 0 to {})", classes - 1),
                )
            })?;
            *slot = 1.0;
        }
        Ok(Some(c))
    }

    /// Whether every one of `labels` is a class of this model (always, for the unconditional
    /// models, which ignore labels).
    ///
    /// # Errors
    /// The first label beyond the classes, named with `what`.
    pub fn check_labels(&self, labels: &[u8], what: &str) -> Result<()> {
        if !self.config.model.is_conditional() {
            return Ok(());
        }
        match labels.iter().find(|&&l| l as usize >= self.config.classes) {
            Some(l) => Err(Error::config(
                what,
                format!(
                    "label {l} is not a class of this cvae, which knows {} classes",
                    self.config.classes
                ),
            )),
            None => Ok(()),
        }
    }

    /// The condition of `n` images to draw: all of class `label` when one is chosen, else
    /// labels 0, 1, … cycling through the classes (the label prior of a balanced dataset).
    /// `None` for unconditional models, whatever `label` says.
    ///
    /// # Errors
    /// A label at or beyond the model's number of classes.
    pub fn label_condition(&self, n: usize, label: Option<u8>) -> Result<Option<Matrix>> {
        let classes = self.config.classes.max(1);
        let labels: Vec<u8> = match label {
            Some(l) => vec![l; n],
            None => (0..n).map(|i| (i % classes) as u8).collect(),
        };
        self.condition(&labels)
    }

    /// A CVAE must be given a condition of one row per image, the others none: a caller's bug
    /// otherwise.
    fn check_condition(&self, rows: usize, condition: Option<&Matrix>) {
        match (self.config.model.is_conditional(), condition) {
            (true, Some(c)) => assert_eq!(
                c.shape(),
                (rows, self.config.classes),
                "a CVAE's condition needs one row of {} classes per image",
                self.config.classes
            ),
            (true, None) => panic!("a CVAE needs a condition"),
            (false, Some(_)) => panic!("only a CVAE takes a condition"),
            (false, None) => {}
        }
    }

    /// Encodes a batch: the hidden activations, then the code (`ws.z`, autoencoder) or the
    /// posterior (`ws.mu`, `ws.logvar`, VAE and CVAE).
    ///
    /// # Shapes
    /// `x`: batch x pixels, values in [0, 1]; `condition` (CVAE): batch x classes.
    pub fn encode(&self, x: &Matrix, condition: Option<&Matrix>, ws: &mut Workspace) {
        self.check_condition(x.rows, condition);
        let EncoderActivations { cols, maps, hidden } = &mut ws.encoder;
        let convs = &self.encoder.convs;
        maps.resize_with(convs.len(), Matrix::default);
        cols.resize_with(convs.len(), Matrix::default);
        for (i, conv) in convs.iter().enumerate() {
            let (done, rest) = maps.split_at_mut(i);
            conv.forward(last_or(done, x), &mut cols[i], &mut rest[0]);
            relu_forward(&mut rest[0]);
        }
        let flat = last_or(maps, x);
        hidden.resize_with(self.encoder.layers.len(), Matrix::default);
        for (i, layer) in self.encoder.layers.iter().enumerate() {
            let (done, rest) = hidden.split_at_mut(i);
            layer.forward(last_or(done, flat), &mut rest[0]);
            if i == 0 {
                add_label(&self.encoder.fc1_label, condition, &mut rest[0]);
            }
            relu_forward(&mut rest[0]);
        }
        let h = last_or(hidden, flat);
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
        if !self.config.model.is_variational() {
            return;
        }
        ws.eps.reshape_for_overwrite(ws.mu.rows, ws.mu.cols);
        match latent {
            Latent::Sample(rng) => ws.eps.fill_standard_normal(rng),
            Latent::Mean => ws.eps.data.fill(0.0),
        }
        reparameterize(&ws.mu, &ws.logvar, &ws.eps, &mut ws.z, &mut ws.std);
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
        acts: &mut DecoderActivations,
        logits: &mut Matrix,
    ) {
        self.check_condition(z.rows, condition);
        let DecoderActivations { hidden, maps, cols } = acts;
        hidden.resize_with(self.decoder.layers.len(), Matrix::default);
        for (i, layer) in self.decoder.layers.iter().enumerate() {
            let (done, rest) = hidden.split_at_mut(i);
            layer.forward(last_or(done, z), &mut rest[0]);
            if i == 0 {
                add_label(&self.decoder.fc1_label, condition, &mut rest[0]);
            }
            relu_forward(&mut rest[0]);
        }
        let h = last_or(hidden, z);
        match &self.decoder.output {
            DecoderOutput::Dense { fc_out } => fc_out.forward(h, logits),
            DecoderOutput::Deconv { deconvs } => {
                let last = deconvs.len() - 1;
                maps.resize_with(last, Matrix::default);
                for (i, deconv) in deconvs.iter().enumerate() {
                    let (done, rest) = maps.split_at_mut(i);
                    let input = last_or(done, h);
                    if i == last {
                        deconv.forward(input, cols, logits);
                    } else {
                        deconv.forward(input, cols, &mut rest[0]);
                        relu_forward(&mut rest[0]);
                    }
                }
            }
        }
    }

    /// Decodes codes into images with pixels in [0, 1], [`Model::rows_per_pass`] rows at a
    /// time so that memory stays bounded however many codes come.
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
            sigmoid_into(&logits, &mut part);
            images.data[start * part.cols..end * part.cols].copy_from_slice(&part.data);
        }
        images
    }

    /// How many images one pass may hold: as many as keep the activations of a pass near
    /// 64 M values (256 MB), at most [`MAX_ROWS_PER_PASS`].
    pub fn rows_per_pass(&self) -> usize {
        let per_image = self.config.activations_per_image().max(1);
        (ACTIVATION_BUDGET / per_image).clamp(1, MAX_ROWS_PER_PASS)
    }

    /// Decodes `n` codes drawn from the prior `N(0, T²·I)`, `T` the temperature (a CVAE draws
    /// the classes of `condition`, n rows). An autoencoder has no prior; the same draws show
    /// what its decoder makes of codes it was never trained to expect.
    ///
    /// # Shapes
    /// Returns n x pixels, values in [0, 1].
    pub fn sample_prior(&self, n: usize, temperature: f32, condition: Option<&Matrix>, rng: &mut impl Rng) -> Matrix {
        self.decode(&self.prior_codes(n, temperature, rng), condition)
    }

    /// `n` codes drawn from `N(0, T²·I)`.
    pub fn prior_codes(&self, n: usize, temperature: f32, rng: &mut impl Rng) -> Matrix {
        let mut z = Matrix::standard_normal(n, self.config.latent, rng);
        for v in &mut z.data {
            *v *= temperature;
        }
        z
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
        sigmoid_into(&ws.logits, &mut images);
        images
    }

    /// Encode, choose `z`, decode: fills `ws` up to the logits.
    pub fn forward<R: Rng>(&self, x: &Matrix, condition: Option<&Matrix>, ws: &mut Workspace, latent: Latent<R>) {
        self.encode(x, condition, ws);
        self.draw_latent(ws, latent);
        self.decode_logits(&ws.z, condition, &mut ws.decoder, &mut ws.logits);
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
            ModelKind::Vae | ModelKind::Cvae => kl_divergence(&ws.mu, &ws.logvar, &mut ws.kl_rows),
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
            ModelKind::Vae | ModelKind::Cvae if objective.free_bits > 0.0 => {
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
            ModelKind::Vae | ModelKind::Cvae => {
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
            ModelKind::Vae | ModelKind::Cvae => self.config.beta,
        }
    }

    /// Forward, loss and backward of one training batch: leaves `∂loss/∂θ` of the batch-mean
    /// `objective` in every parameter's `grad`, and returns that loss (its `total` is the
    /// objective's value; `reconstruction` and `kl` are the plain means over the rows decoded).
    pub fn compute_gradients<R: Rng>(
        &mut self,
        x: &Matrix,
        condition: Option<&Matrix>,
        ws: &mut Workspace,
        rng: &mut R,
        objective: Objective,
    ) -> LossBreakdown {
        let loss = self.objective_value(x, condition, ws, rng, objective);
        if self.importance_weighted(objective) {
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

    /// Whether `objective` asks this model for the importance-weighted bound.
    fn importance_weighted(&self, objective: Objective) -> bool {
        objective.k > 1 && self.config.model.is_variational()
    }

    /// Forward and loss of a training batch under `objective`, leaving in `ws` what the
    /// backward pass needs (for `k > 1`, the input and condition repeated k times in
    /// `ws.repeated` and `ws.repeated_condition`).
    fn objective_value<R: Rng>(
        &self,
        x: &Matrix,
        condition: Option<&Matrix>,
        ws: &mut Workspace,
        rng: &mut R,
        objective: Objective,
    ) -> LossBreakdown {
        if !self.importance_weighted(objective) {
            self.forward(x, condition, ws, Latent::Sample(rng));
            return self.objective_loss(x, ws, objective);
        }
        let k = objective.k;
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
        let loss = self.importance_weighted_loss(&repeated, x.rows, ws, objective);
        (ws.repeated, ws.repeated_condition) = (repeated, repeated_condition);
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
        // log w_r = -recon_r + β·(log p(z) - log q(z|x)).
        let beta = objective.beta as f64;
        let log_w: Vec<f64> = (0..rows)
            .map(|r| -(ws.recon_rows[r] as f64) + beta * log_prior_ratio(ws.z.row(r), ws.eps.row(r), ws.logvar.row(r)))
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
    fn backward(&mut self, x: &Matrix, condition: Option<&Matrix>, ws: &mut Workspace) {
        let Workspace {
            encoder,
            mu,
            logvar,
            std,
            eps,
            z,
            decoder,
            grad_logits,
            grad_a,
            grad_b,
            grad_mu,
            grad_logvar,
            scratch,
            kl_scale,
            row_scale,
            iw_beta,
            ..
        } = ws;
        let beta = *iw_beta;

        // Decoder, from the logits back to z; grad_a holds ∂L/∂(current layer's output).
        let h = last_or(&decoder.hidden, z);
        match &mut self.decoder.output {
            DecoderOutput::Dense { fc_out } => fc_out.backward(h, grad_logits, GradInput::Write(grad_a)),
            DecoderOutput::Deconv { deconvs } => {
                let last = deconvs.len() - 1;
                for i in (0..deconvs.len()).rev() {
                    if i < last {
                        relu_backward(&decoder.maps[i], grad_a);
                    }
                    let input = last_or(&decoder.maps[..i], h);
                    let dy = if i == last { &*grad_logits } else { &*grad_a };
                    deconvs[i].backward(input, dy, scratch, GradInput::Write(grad_b));
                    std::mem::swap(grad_a, grad_b);
                }
            }
        }
        for i in (0..self.decoder.layers.len()).rev() {
            relu_backward(&decoder.hidden[i], grad_a);
            if i == 0 {
                label_backward(&mut self.decoder.fc1_label, condition, grad_a);
            }
            let input = last_or(&decoder.hidden[..i], z);
            self.decoder.layers[i].backward(input, grad_a, GradInput::Write(grad_b));
            std::mem::swap(grad_a, grad_b);
        }
        // grad_a = ∂L/∂z. Through the head to the last hidden layer's output.
        let flat = last_or(&encoder.maps, x);
        let h = last_or(&encoder.hidden, flat);
        // Without hidden layers or convolutions the head's input is the data: no gradient
        // needed there.
        let need_dx = !self.encoder.layers.is_empty() || !self.encoder.convs.is_empty();
        match &mut self.encoder.head {
            EncoderHead::Code { fc_z } => fc_z.backward(h, grad_a, input_grad(grad_b, need_dx, false)),
            EncoderHead::Gaussian { fc_mu, fc_logvar } => {
                if row_scale.is_empty() {
                    reparameterize_kl_backward(mu, logvar, eps, std, grad_a, kl_scale, grad_mu, grad_logvar);
                } else {
                    reparameterize_iw_backward(z, eps, std, grad_a, row_scale, beta, grad_mu, grad_logvar);
                }
                fc_mu.backward(h, grad_mu, input_grad(grad_b, need_dx, false));
                fc_logvar.backward(h, grad_logvar, input_grad(grad_b, need_dx, true));
            }
        }
        std::mem::swap(grad_a, grad_b);
        // Dense layers, then convolutions; the first layer's input is the data, whose
        // gradient nobody needs.
        let convs = self.encoder.convs.len();
        for i in (0..self.encoder.layers.len()).rev() {
            relu_backward(&encoder.hidden[i], grad_a);
            if i == 0 {
                label_backward(&mut self.encoder.fc1_label, condition, grad_a);
            }
            let input = last_or(&encoder.hidden[..i], flat);
            self.encoder.layers[i].backward(input, grad_a, input_grad(grad_b, i > 0 || convs > 0, false));
            std::mem::swap(grad_a, grad_b);
        }
        for i in (0..convs).rev() {
            relu_backward(&encoder.maps[i], grad_a);
            self.encoder.convs[i].backward(&encoder.cols[i], grad_a, scratch, input_grad(grad_b, i > 0, false));
            std::mem::swap(grad_a, grad_b);
        }
    }
}

#[cfg(test)]
mod tests;
