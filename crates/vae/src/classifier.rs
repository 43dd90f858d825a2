//! A small digit classifier, the measuring instrument of the latent-space metrics: it says
//! which class a decoded image looks like and how sure it is (completeness, label flips along
//! interpolations), and its last hidden layer gives the features for a digit-specific Fréchet
//! distance. It is an MLP trained with softmax cross-entropy on a dataset's training split,
//! saved like a run: `config.json` beside `model.safetensors`.

use std::path::{Path, PathBuf};

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::checkpoint::{load_weights, save_weights};
use crate::data::{Dataset, Split};
use crate::engine::activation::{relu_backward, relu_forward};
use crate::engine::loss::{softmax_cross_entropy, softmax_into};
use crate::engine::{Adam, AdamConfig, GradInput, Linear, Matrix, Param};
use crate::error::{Error, Result};
use crate::rng::{Stream, permutation, stream_rng};
use crate::run::write_atomic;

/// Classes of MNIST and Fashion-MNIST.
pub const CLASSES: usize = 10;
/// Images per forward pass when scoring many images: bounds memory.
const CHUNK: usize = 1024;

/// The classifier's architecture and where it came from: its `config.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassifierConfig {
    pub image_height: usize,
    pub image_width: usize,
    /// Hidden layer widths; the last one is the feature layer.
    pub hidden: Vec<usize>,
    pub classes: usize,
    /// The dataset it was trained on.
    pub dataset: String,
    pub epochs: usize,
    pub seed: u64,
    /// Accuracy on that dataset's test split, measured after training.
    pub test_accuracy: f64,
}

/// An MLP classifier: ReLU hidden layers, then `fc_out` to one logit per class.
#[derive(Clone, Debug)]
pub struct Classifier {
    pub config: ClassifierConfig,
    /// `fc1`, `fc2`, …
    pub layers: Vec<Linear>,
    pub fc_out: Linear,
}

/// Progress of classifier training, one per epoch.
#[derive(Clone, Copy, Debug)]
pub struct ClassifierEpoch {
    /// 1-based.
    pub epoch: usize,
    pub train_loss: f64,
    pub test_accuracy: f64,
}

impl Classifier {
    /// A freshly initialised classifier.
    pub fn new(config: ClassifierConfig, rng: &mut impl Rng) -> Result<Self> {
        if config.hidden.is_empty() || config.hidden.contains(&0) {
            return Err(Error::config(
                "hidden",
                "the classifier needs hidden layers of at least 1 unit",
            ));
        }
        let mut width = config.image_height * config.image_width;
        let mut layers = Vec::new();
        for &h in &config.hidden {
            layers.push(Linear::new(width, h, rng));
            width = h;
        }
        let fc_out = Linear::new(width, config.classes, rng);
        Ok(Classifier {
            config,
            layers,
            fc_out,
        })
    }

    /// Every parameter with its safetensors name (`classifier.fc1.weight`, …).
    pub fn named_params(&self) -> Vec<(String, &Param)> {
        let mut out = Vec::new();
        let layers = self
            .layers
            .iter()
            .enumerate()
            .map(|(i, l)| (format!("classifier.fc{}", i + 1), l));
        for (name, l) in layers.chain(std::iter::once((
            "classifier.fc_out".to_string(),
            &self.fc_out,
        ))) {
            out.push((format!("{name}.weight"), &l.weight));
            out.push((format!("{name}.bias"), &l.bias));
        }
        out
    }

    fn named_params_mut(&mut self) -> Vec<(String, &mut Param)> {
        let names: Vec<String> = self.named_params().into_iter().map(|(n, _)| n).collect();
        let params = self
            .layers
            .iter_mut()
            .chain(std::iter::once(&mut self.fc_out))
            .flat_map(|l| [&mut l.weight, &mut l.bias]);
        names.into_iter().zip(params).collect()
    }

    /// Hidden activations into `hidden`, logits into `logits`.
    fn forward(&self, x: &Matrix, hidden: &mut Vec<Matrix>, logits: &mut Matrix) {
        hidden.resize_with(self.layers.len(), Matrix::default);
        for i in 0..self.layers.len() {
            let (done, rest) = hidden.split_at_mut(i);
            self.layers[i].forward(done.last().unwrap_or(x), &mut rest[0]);
            relu_forward(&mut rest[0]);
        }
        self.fc_out.forward(hidden.last().unwrap_or(x), logits);
    }

    /// Applies `f(features, probabilities)` to `x` in chunks, so any number of images fits.
    fn score_chunks(&self, x: &Matrix, mut f: impl FnMut(&Matrix, &Matrix)) {
        let (mut hidden, mut logits, mut probs) =
            (Vec::new(), Matrix::default(), Matrix::default());
        for start in (0..x.rows).step_by(CHUNK) {
            let end = (start + CHUNK).min(x.rows);
            let chunk = Matrix::from_vec(
                end - start,
                x.cols,
                x.data[start * x.cols..end * x.cols].to_vec(),
            );
            self.forward(&chunk, &mut hidden, &mut logits);
            softmax_into(&logits, &mut probs);
            f(hidden.last().expect("at least one hidden layer"), &probs);
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
        let width = *self
            .config
            .hidden
            .last()
            .expect("at least one hidden layer");
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
        save_weights(&dir.join("model.safetensors"), &self.named_params())
    }

    /// Reads a classifier saved by [`Classifier::save`].
    pub fn load(dir: &Path) -> Result<Self> {
        let path = dir.join("config.json");
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        let config: ClassifierConfig = serde_json::from_str(&text).map_err(|e| Error::Run {
            path: path.clone(),
            problem: format!("invalid classifier config: {e}"),
        })?;
        let mut classifier = Classifier::new(config, &mut stream_rng(0, Stream::Init))?;
        load_weights(
            &dir.join("model.safetensors"),
            classifier.named_params_mut(),
        )?;
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

/// How to train a classifier.
#[derive(Clone, Debug)]
pub struct ClassifierTraining {
    pub hidden: Vec<usize>,
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: f32,
    pub seed: u64,
}

impl Default for ClassifierTraining {
    /// 784-512-256-10, 10 epochs of Adam: about 98% on MNIST.
    fn default() -> Self {
        ClassifierTraining {
            hidden: vec![512, 256],
            epochs: 10,
            batch_size: 128,
            lr: 1e-3,
            seed: 0,
        }
    }
}

/// Trains a classifier on `data.train`, reporting each epoch with its test accuracy.
pub fn train(
    data: &Dataset,
    options: &ClassifierTraining,
    on_epoch: &mut dyn FnMut(ClassifierEpoch),
) -> Result<Classifier> {
    if options.epochs == 0 || options.batch_size == 0 {
        return Err(Error::config(
            "classifier",
            "epochs and batch size must be at least 1",
        ));
    }
    let images = &data.train.images;
    let config = ClassifierConfig {
        image_height: images.height,
        image_width: images.width,
        hidden: options.hidden.clone(),
        classes: CLASSES,
        dataset: data.name.clone(),
        epochs: options.epochs,
        seed: options.seed,
        test_accuracy: 0.0,
    };
    let mut model = Classifier::new(config, &mut stream_rng(options.seed, Stream::Init))?;
    let shapes: Vec<(usize, usize)> = model
        .named_params()
        .iter()
        .map(|(_, p)| p.value.shape())
        .collect();
    let mut adam = Adam::new(
        AdamConfig {
            lr: options.lr,
            ..AdamConfig::default()
        },
        &shapes,
    );
    let train = &data.train;
    let (mut x, mut hidden, mut logits, mut grad, mut grad_b) = (
        Matrix::default(),
        Vec::new(),
        Matrix::default(),
        Matrix::default(),
        Matrix::default(),
    );
    let mut labels = Vec::new();
    let mut rows = Vec::new();
    for epoch in 0..options.epochs {
        let order = permutation(
            train.len(),
            &mut stream_rng(options.seed, Stream::Shuffle { epoch }),
        );
        let mut loss_sum = 0.0f64;
        for batch in order.chunks(options.batch_size) {
            train.batch_into(batch, &mut x);
            labels.clear();
            labels.extend(batch.iter().map(|&i| train.labels[i]));
            if labels.iter().any(|&l| l as usize >= CLASSES) {
                return Err(Error::Dataset(format!(
                    "{}: labels must be 0 to 9 for the classifier",
                    data.name
                )));
            }
            model.forward(&x, &mut hidden, &mut logits);
            rows.resize(batch.len(), 0.0);
            softmax_cross_entropy(
                &logits,
                &labels,
                &mut rows,
                Some((&mut grad, 1.0 / batch.len() as f32)),
            );
            loss_sum += rows.iter().map(|&v| v as f64).sum::<f64>();
            // Backward: fc_out, then each hidden layer through its ReLU.
            let last = hidden.last().expect("at least one hidden layer");
            model
                .fc_out
                .backward(last, &grad, GradInput::Write(&mut grad_b));
            std::mem::swap(&mut grad, &mut grad_b);
            for i in (0..model.layers.len()).rev() {
                relu_backward(&hidden[i], &mut grad);
                let input = if i == 0 { &x } else { &hidden[i - 1] };
                let dx = if i == 0 {
                    GradInput::Skip
                } else {
                    GradInput::Write(&mut grad_b)
                };
                model.layers[i].backward(input, &grad, dx);
                std::mem::swap(&mut grad, &mut grad_b);
            }
            let mut params: Vec<&mut Param> = model
                .named_params_mut()
                .into_iter()
                .map(|(_, p)| p)
                .collect();
            adam.update(&mut params);
        }
        let test_accuracy = model.accuracy(&data.test);
        model.config.test_accuracy = test_accuracy;
        on_epoch(ClassifierEpoch {
            epoch: epoch + 1,
            train_loss: loss_sum / train.len().max(1) as f64,
            test_accuracy,
        });
    }
    Ok(model)
}

/// Where the classifier for a dataset lives by default: `DATA_DIR/classifiers/<dataset>`.
pub fn default_dir(data_dir: &Path, dataset: &str) -> PathBuf {
    let word: String = dataset
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    data_dir.join("classifiers").join(word.trim_matches('_'))
}
