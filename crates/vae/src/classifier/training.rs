//! Training the classifier (Adam on softmax cross-entropy, shifted images, a lower rate for the
//! last third of the epochs), and the default classifier of a dataset: found, or trained once.

use std::path::{Path, PathBuf};

use rand::RngExt;

use super::{Activations, CLASSES, Classifier, ClassifierConfig};
use crate::data::Dataset;
use crate::engine::loss::softmax_cross_entropy;
use crate::engine::{Adam, AdamConfig, Matrix};
use crate::error::{Error, Result};
use crate::rng::{RunRng, Stream, permutation, stream_rng};

/// Progress of classifier training, one per epoch.
#[derive(Clone, Copy, Debug)]
pub struct ClassifierEpoch {
    /// 1-based.
    pub epoch: usize,
    pub train_loss: f64,
    pub test_accuracy: f64,
    /// Training images a second over the epoch's steps (the test pass not counted).
    pub images_per_sec: f64,
}

/// How to train a classifier.
#[derive(Clone, Debug)]
pub struct ClassifierTraining {
    pub channels: Vec<usize>,
    pub hidden: Vec<usize>,
    /// `None`: [`default_epochs`] for the dataset's size.
    pub epochs: Option<usize>,
    pub batch_size: usize,
    pub lr: f32,
    pub seed: u64,
    /// Shift each training image by up to this many pixels, anew each epoch.
    pub max_shift: usize,
}

impl Default for ClassifierTraining {
    /// Convolutions of 32 and 64 channels, a 128-unit feature layer, Adam, shifts of up to 2
    /// pixels: 98.6% on the built-in sample's test digits.
    fn default() -> Self {
        ClassifierTraining {
            channels: vec![32, 64],
            hidden: vec![256],
            epochs: None,
            batch_size: 128,
            lr: 1e-3,
            seed: 0,
            max_shift: 2,
        }
    }
}

/// About 120,000 image passes: 14 epochs on 9,000 images, 3 on 60,000.
pub fn default_epochs(train_images: usize) -> usize {
    120_000usize.div_ceil(train_images.max(1)).clamp(3, 15)
}

/// Moves every image of the batch (`side`: height, width; a pixel's channels side by side)
/// by its own random offset of up to `max` pixels in each direction, filling with black: the
/// classifier learns that a digit is a digit wherever it sits, which the decoded samples it
/// judges need.
fn shift_batch(x: &mut Matrix, side: (usize, usize), max: usize, rng: &mut RunRng) {
    if max == 0 {
        return;
    }
    let (h, w) = side;
    let c = x.cols / (h * w).max(1);
    let span = 2 * max as i64 + 1;
    let mut shifted = vec![0.0f32; x.cols];
    for r in 0..x.rows {
        let dy = rng.random_range(0..span) - max as i64;
        let dx = rng.random_range(0..span) - max as i64;
        shifted.fill(0.0);
        let row = x.row_mut(r);
        for y in 0..h as i64 {
            let sy = y - dy;
            if sy < 0 || sy >= h as i64 {
                continue;
            }
            for xx in 0..w as i64 {
                let sx = xx - dx;
                if sx >= 0 && sx < w as i64 {
                    let (to, from) = ((y * w as i64 + xx) as usize * c, (sy * w as i64 + sx) as usize * c);
                    shifted[to..to + c].copy_from_slice(&row[from..from + c]);
                }
            }
        }
        row.copy_from_slice(&shifted);
    }
}

/// Refuses data the classifier is not made for: it tells apart up to ten classes of images,
/// grey or colour (MNIST's digits and look-alikes, a folder's categories), learning from
/// their labels.
pub fn ensure_classifiable(data: &Dataset) -> Result<()> {
    let problem = if !data.labelled {
        "has no labels to learn from".to_string()
    } else if data.shape().is_vector() {
        format!("holds {}, and the classifier takes images", data.shape())
    } else if data.classes() > CLASSES {
        format!("has {} classes, more than the classifier's {CLASSES}", data.classes())
    } else {
        return Ok(());
    };
    Err(Error::Dataset(format!(
        "{}: {problem}: the sample-quality measures need a classifier of labelled images",
        data.name
    )))
}

/// Trains a classifier on `data.train`, reporting each epoch with its test accuracy.
pub fn train(
    data: &Dataset,
    options: &ClassifierTraining,
    on_epoch: &mut dyn FnMut(ClassifierEpoch),
) -> Result<Classifier> {
    ensure_classifiable(data)?;
    let epochs = options.epochs.unwrap_or_else(|| default_epochs(data.train.len()));
    if epochs == 0 || options.batch_size == 0 {
        return Err(Error::config("classifier", "epochs and batch size must be at least 1"));
    }
    let images = &data.train.images;
    let config = ClassifierConfig {
        image_height: images.height,
        image_width: images.width,
        image_channels: images.channels,
        channels: options.channels.clone(),
        hidden: options.hidden.clone(),
        classes: CLASSES,
        dataset: data.name.clone(),
        epochs,
        seed: options.seed,
        test_accuracy: 0.0,
    };
    let mut model = Classifier::new(config, &mut stream_rng(options.seed, Stream::Init))?;
    let shapes: Vec<(usize, usize)> = model.layers.params().map(|p| p.value.shape()).collect();
    let mut adam = Adam::new(
        AdamConfig {
            lr: options.lr,
            ..AdamConfig::default()
        },
        &shapes,
    );
    let train = &data.train;
    let mut a = Activations::default();
    let (mut x, mut grad) = (Matrix::default(), Matrix::default());
    let (mut labels, mut rows) = (Vec::new(), Vec::new());
    let mut shifts = stream_rng(options.seed, Stream::TrainNoise);
    for epoch in 0..epochs {
        // The last third at a tenth of the rate: the settled weights generalise better.
        adam.config.lr = if 3 * epoch >= 2 * epochs {
            options.lr / 10.0
        } else {
            options.lr
        };
        let order = permutation(train.len(), &mut stream_rng(options.seed, Stream::Shuffle { epoch }));
        let mut loss_sum = 0.0f64;
        let started = std::time::Instant::now();
        for batch in order.chunks(options.batch_size) {
            train.batch_into(batch, &mut x);
            shift_batch(&mut x, (images.height, images.width), options.max_shift, &mut shifts);
            labels.clear();
            labels.extend(batch.iter().map(|&i| train.labels[i]));
            if labels.iter().any(|&l| l as usize >= CLASSES) {
                return Err(Error::Dataset(format!(
                    "{}: labels must be 0 to 9 for the classifier",
                    data.name
                )));
            }
            model.forward(&x, &mut a);
            rows.resize(batch.len(), 0.0);
            softmax_cross_entropy(
                &a.logits,
                &labels,
                &mut rows,
                Some((&mut grad, 1.0 / batch.len() as f32)),
            );
            loss_sum += rows.iter().map(|&v| v as f64).sum::<f64>();
            model.backward(&x, &mut a, &mut grad);
            adam.update(&mut model.layers.params_mut().collect::<Vec<_>>());
        }
        let images_per_sec = train.len() as f64 / started.elapsed().as_secs_f64().max(1e-9);
        let test_accuracy = model.accuracy(&data.test);
        model.config.test_accuracy = test_accuracy;
        on_epoch(ClassifierEpoch {
            epoch: epoch + 1,
            train_loss: loss_sum / train.len().max(1) as f64,
            test_accuracy,
            images_per_sec,
        });
    }
    Ok(model)
}

/// What [`classifier_for`] reports while it works.
#[derive(Clone, Copy, Debug)]
pub enum ClassifierEvent<'a> {
    /// No classifier in `dir` yet: one is trained on `images` training images, for `epochs`.
    Training {
        dir: &'a Path,
        images: usize,
        epochs: usize,
    },
    /// An epoch of that training finished.
    Epoch(ClassifierEpoch),
}

/// The classifier in `dir` when one is named, else the dataset's default one under
/// `data_dir` ([`default_dir`]), trained with the default settings and saved there first if
/// there is none yet: the measuring instrument every latent-space report of a dataset shares.
pub fn classifier_for(
    data: &Dataset,
    dir: Option<&Path>,
    data_dir: &Path,
    on_event: &mut dyn FnMut(ClassifierEvent),
) -> Result<Classifier> {
    ensure_classifiable(data)?;
    let fits = |classifier: Classifier, dir: &Path| -> Result<Classifier> {
        let c = &classifier.config;
        let shape = data.shape();
        if (c.image_height, c.image_width, c.image_channels) != (shape.height, shape.width, shape.channels) {
            let colour = if c.image_channels == 3 { "rgb" } else { "grey" };
            return Err(Error::Run {
                path: dir.to_path_buf(),
                problem: format!(
                    "a classifier of {}x{} {colour} images cannot judge {}'s {shape} images",
                    c.image_height, c.image_width, data.name
                ),
            });
        }
        Ok(classifier)
    };
    if let Some(dir) = dir {
        return fits(Classifier::load(dir)?, dir);
    }
    let dir = default_dir(data_dir, &data.name);
    if dir.join("model.safetensors").is_file() {
        return fits(Classifier::load(&dir)?, &dir);
    }
    let options = ClassifierTraining::default();
    on_event(ClassifierEvent::Training {
        dir: &dir,
        images: data.train.len(),
        epochs: options.epochs.unwrap_or_else(|| default_epochs(data.train.len())),
    });
    let classifier = train(data, &options, &mut |e| on_event(ClassifierEvent::Epoch(e)))?;
    classifier.save(&dir)?;
    Ok(classifier)
}

/// Where the classifier for a dataset lives by default: `DATA_DIR/classifiers/<dataset>`.
pub fn default_dir(data_dir: &Path, dataset: &str) -> PathBuf {
    let word: String = dataset
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' })
        .collect();
    data_dir.join("classifiers").join(word.trim_matches('_'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shifting_moves_each_image_by_at_most_max_and_fills_with_black() {
        // One lit pixel at row 3, column 4 of a 7x7 image, 400 times.
        let (h, w, max) = (7usize, 7usize, 2i64);
        let mut image = vec![0.0f32; h * w];
        image[3 * w + 4] = 1.0;
        let mut x = Matrix::from_vec(400, h * w, image.repeat(400));
        let mut rng = stream_rng(1, Stream::TrainNoise);
        shift_batch(&mut x, (h, w), max as usize, &mut rng);
        let mut offsets = std::collections::HashSet::new();
        for r in 0..x.rows {
            let lit: Vec<usize> = (0..h * w).filter(|&i| x.row(r)[i] != 0.0).collect();
            assert_eq!(lit.len(), 1, "row {r}: the pixel must move, not spread or vanish");
            let (y, c) = ((lit[0] / w) as i64, (lit[0] % w) as i64);
            let (dy, dx) = (y - 3, c - 4);
            assert!(dy.abs() <= max && dx.abs() <= max, "row {r}: moved by ({dy}, {dx})");
            offsets.insert((dy, dx));
        }
        assert_eq!(offsets.len(), 25, "every offset of up to 2 in each direction comes up");

        // A pixel in the corner leaves the image when moved away: black comes in.
        let mut corner = vec![0.0f32; h * w];
        corner[0] = 1.0;
        let mut x = Matrix::from_vec(200, h * w, corner.repeat(200));
        shift_batch(&mut x, (h, w), 2, &mut rng);
        let emptied = (0..x.rows).filter(|&r| x.row(r).iter().all(|&v| v == 0.0)).count();
        // The pixel stays only for non-negative offsets in both directions: 9 of 25.
        assert!((100..=150).contains(&emptied), "{emptied} of 200 rows lost the pixel");

        // A colour pixel moves with its three channels together.
        let mut colour = vec![0.0f32; h * w * 3];
        colour[(3 * w + 4) * 3..(3 * w + 4) * 3 + 3].copy_from_slice(&[0.2, 0.5, 0.9]);
        let mut x = Matrix::from_vec(50, h * w * 3, colour.repeat(50));
        shift_batch(&mut x, (h, w), 2, &mut rng);
        for r in 0..x.rows {
            let lit: Vec<usize> = (0..h * w * 3).filter(|&i| x.row(r)[i] != 0.0).collect();
            assert_eq!(lit.len(), 3, "row {r}");
            assert_eq!(lit[0] % 3, 0, "row {r}: the channels stay in their order");
            assert_eq!([x.row(r)[lit[0]], x.row(r)[lit[1]], x.row(r)[lit[2]]], [0.2, 0.5, 0.9]);
        }

        let before = Matrix::from_vec(1, h * w, image.clone());
        let mut same = before.clone();
        shift_batch(&mut same, (h, w), 0, &mut rng);
        assert_eq!(same, before);
    }
}
