//! A small digit classifier, the measuring instrument of the latent-space metrics: it says
//! which class a decoded image looks like and how sure it is (completeness, label flips along
//! interpolations), and its last hidden layer gives the features for a digit-specific Fréchet
//! distance. It is a small convolutional net (two 3x3 stride-2 convolutions, a dense layer)
//! trained with softmax cross-entropy on a dataset's training split, with every image shifted
//! by up to two pixels each epoch, and saved like a run: `config.json` beside
//! `model.safetensors`. This file is the network (building, scoring, saving); `training.rs`
//! trains one and finds or trains a dataset's default one.

use std::path::Path;

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::checkpoint::{load_weights, save_weights};
use crate::data::Split;
use crate::engine::layer::{Activation, GradScratch, Pass, Stack, StackActivations};
use crate::engine::loss::softmax_into;
use crate::engine::{Conv2d, ConvGeometry, GradInput, Linear, Matrix};
use crate::error::{Error, Result};
use crate::files::write_atomic;
use crate::rng::{Stream, stream_rng};

mod training;

pub use training::{
    ClassifierEpoch, ClassifierEvent, ClassifierTraining, classifier_for, default_dir, default_epochs, train,
};

/// Classes of MNIST and Fashion-MNIST.
pub const CLASSES: usize = 10;
/// Images per forward pass when scoring many images: bounds memory. At 256 the largest buffer
/// of a pass (the second convolution's patches, 14 MB) is reused from pass to pass by the
/// allocator; at 1024 (58 MB) it was mapped afresh and faulted in page by page for every call.
const CHUNK: usize = 256;

/// The classifier's architecture and where it came from: its `config.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassifierConfig {
    pub image_height: usize,
    pub image_width: usize,
    /// 1 grey, 3 RGB (absent from the config of a grey one).
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub image_channels: usize,
    /// Output channels of the convolutions (3x3, stride 2, padding 1, ReLU), input side first.
    pub channels: Vec<usize>,
    /// Dense hidden layer widths after the convolutions; the last one is the feature layer.
    pub hidden: Vec<usize>,
    pub classes: usize,
    /// The dataset it was trained on.
    pub dataset: String,
    pub epochs: usize,
    pub seed: u64,
    /// Accuracy on that dataset's test split, measured after training.
    pub test_accuracy: f64,
}

fn one() -> usize {
    1
}

fn is_one(n: &usize) -> bool {
    *n == 1
}

/// The classifier: ReLU convolutions `conv1`, `conv2`, …, ReLU dense layers `fc1`, `fc2`, …,
/// then `fc_out` to one logit per class, all in one stack (`classifier.conv1.weight`, …).
#[derive(Clone, Debug)]
pub struct Classifier {
    pub config: ClassifierConfig,
    pub layers: Stack,
}

/// The buffers of a forward and backward pass.
#[derive(Default)]
struct Activations {
    stack: StackActivations,
    logits: Matrix,
    grad: GradScratch,
}

/// Kernel, stride and padding of every convolution: each halves the image, rounding up.
const KERNEL: usize = 3;
const STRIDE: usize = 2;
const PADDING: usize = 1;

impl Classifier {
    /// A freshly initialised classifier.
    pub fn new(config: ClassifierConfig, rng: &mut impl Rng) -> Result<Self> {
        if config.hidden.is_empty() || config.hidden.contains(&0) || config.channels.contains(&0) {
            return Err(Error::config(
                "hidden",
                "the classifier needs hidden layers and channels of at least 1 unit",
            ));
        }
        let mut layers = Stack::new("classifier");
        if !matches!(config.image_channels, 1 | 3) {
            return Err(Error::config(
                "image_channels",
                "the classifier takes grey (1) or RGB (3) images",
            ));
        }
        let (mut h, mut w, mut c) = (config.image_height, config.image_width, config.image_channels);
        for (i, &out) in config.channels.iter().enumerate() {
            let geometry = ConvGeometry {
                in_channels: c,
                out_channels: out,
                kernel: KERNEL,
                stride: STRIDE,
                padding: PADDING,
                in_height: h,
                in_width: w,
            };
            if !geometry.is_valid() {
                return Err(Error::config("channels", "too many convolutions for the image size"));
            }
            (h, w, c) = (geometry.out_height(), geometry.out_width(), out);
            layers.push(&format!("conv{}", i + 1), Conv2d::new(geometry, rng), Activation::Relu);
        }
        let mut width = h * w * c;
        for (i, &units) in config.hidden.iter().enumerate() {
            layers.push(
                &format!("fc{}", i + 1),
                Linear::new(width, units, rng),
                Activation::Relu,
            );
            width = units;
        }
        layers.push("fc_out", Linear::new(width, config.classes, rng), Activation::Identity);
        Ok(Classifier { config, layers })
    }

    /// The forward pass, keeping what the backward pass needs in `a`.
    fn forward(&self, x: &Matrix, a: &mut Activations) {
        self.layers.forward(x, None, &mut a.stack, &mut a.logits);
    }

    /// The last hidden layer's output of the pass that [`Classifier::forward`] left in `a`.
    fn features_of(a: &Activations) -> &Matrix {
        a.stack.hidden.last().expect("at least one hidden layer")
    }

    /// Backward from `grad = ∂L/∂logits`, leaving every parameter's gradient.
    fn backward(&mut self, x: &Matrix, a: &mut Activations, grad: &mut Matrix) {
        let pass = Pass {
            x,
            condition: None,
            acts: &a.stack,
            y: &a.logits,
        };
        self.layers.backward(pass, grad, &mut a.grad, GradInput::Skip);
    }

    /// Applies `f(features, probabilities)` to `x` in chunks, so any number of images fits.
    fn score_chunks(&self, x: &Matrix, mut f: impl FnMut(&Matrix, &Matrix)) {
        let (mut a, mut probs) = (Activations::default(), Matrix::default());
        for start in (0..x.rows).step_by(CHUNK) {
            let end = (start + CHUNK).min(x.rows);
            let chunk = Matrix::from_vec(end - start, x.cols, x.data[start * x.cols..end * x.cols].to_vec());
            self.forward(&chunk, &mut a);
            softmax_into(&a.logits, &mut probs);
            f(Self::features_of(&a), &probs);
        }
    }

    /// Class probabilities of each image.
    ///
    /// # Shapes
    /// `x`: n x pixels, values in [0, 1]; returns n x classes.
    pub fn probabilities(&self, x: &Matrix) -> Matrix {
        let mut out = Matrix::zeros(0, self.config.classes);
        self.score_chunks(x, |_, p| {
            out.data.extend_from_slice(&p.data);
            out.rows += p.rows;
        });
        out
    }

    /// The last hidden layer's activations: the features of the Fréchet distance.
    ///
    /// # Shapes
    /// `x`: n x pixels; returns n x (last hidden width).
    pub fn features(&self, x: &Matrix) -> Matrix {
        let width = *self.config.hidden.last().expect("at least one hidden layer");
        let mut out = Matrix::zeros(0, width);
        self.score_chunks(x, |h, _| {
            out.data.extend_from_slice(&h.data);
            out.rows += h.rows;
        });
        out
    }

    /// Share of `split` classified correctly.
    pub fn accuracy(&self, split: &Split) -> f64 {
        let x = split.range_batch(0, split.len());
        let probs = self.probabilities(&x);
        let correct = (0..probs.rows)
            .filter(|&r| argmax(probs.row(r)) == split.labels[r] as usize)
            .count();
        correct as f64 / split.len().max(1) as f64
    }

    /// Writes `config.json` and `model.safetensors` into `dir`.
    pub fn save(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let json = serde_json::to_string_pretty(&self.config).expect("a config serialises");
        write_atomic(&dir.join("config.json"), format!("{json}\n").as_bytes())?;
        save_weights(
            &dir.join("model.safetensors"),
            &self.layers.params().collect::<Vec<_>>(),
        )
    }

    /// Reads a classifier saved by [`Classifier::save`].
    pub fn load(dir: &Path) -> Result<Self> {
        let path = dir.join("config.json");
        let text = crate::files::read_text_limited(&path, crate::files::MAX_CONFIG_BYTES)?;
        let config: ClassifierConfig = serde_json::from_str(&text).map_err(|e| Error::Run {
            path: path.clone(),
            problem: format!("invalid classifier config: {e}"),
        })?;
        let mut classifier = Classifier::new(config, &mut stream_rng(0, Stream::Init))?;
        load_weights(&dir.join("model.safetensors"), classifier.layers.params_mut().collect())?;
        Ok(classifier)
    }
}

/// Index of the largest value.
pub fn argmax(values: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in values.iter().enumerate() {
        if v > values[best] {
            best = i;
        }
    }
    best
}
