//! Image datasets: the IDX file format, the named datasets and where they are found, their
//! download, and the batches the trainer reads.

pub mod arrays;
pub mod catalog;
pub mod download;
mod embedded;
pub mod folder;
pub mod idx;
pub mod inspect;
pub mod items;
pub mod npy;
pub mod options;
pub mod split;
pub mod table;
pub mod values;

pub use catalog::{DataDirs, DatasetName, DatasetSpec, Location};
pub use idx::Images;
pub use options::{ColorMode, DataOptions, ImageSize};
pub use values::{ValueSummary, Values};

use std::borrow::Cow;

use rand::RngExt;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::engine::Matrix;
use crate::engine::parallel::ROWS_PER_CHUNK;
use crate::rng::{RunRng, Stream, stream_rng};

/// The size of one image: rows, columns and channels (1 grey, 3 RGB).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageShape {
    pub height: usize,
    pub width: usize,
    pub channels: usize,
}

impl ImageShape {
    /// MNIST's 28x28 grey.
    pub const MNIST: ImageShape = ImageShape {
        height: 28,
        width: 28,
        channels: 1,
    };

    /// Vectors of `values` numbers, kept as images of one row.
    pub fn vector(values: usize) -> ImageShape {
        ImageShape {
            height: 1,
            width: values,
            channels: 1,
        }
    }

    /// Whether the items are vectors (one grey row) rather than pictures.
    pub fn is_vector(&self) -> bool {
        self.height == 1 && self.channels == 1
    }

    /// Values in one image: height x width x channels.
    pub fn values(&self) -> usize {
        self.height * self.width * self.channels
    }

    /// Whether pixels have colour.
    pub fn is_color(&self) -> bool {
        self.channels == 3
    }
}

impl std::fmt::Display for ImageShape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.is_vector() {
            return write!(f, "{}-value vectors", self.width);
        }
        let colour = if self.is_color() { "rgb" } else { "grey" };
        write!(f, "{}x{} {colour}", self.height, self.width)
    }
}

/// Images with their labels.
#[derive(Clone, Debug)]
pub struct Split {
    pub images: Images,
    pub labels: Vec<u8>,
}

impl Split {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.images.count
    }

    /// Whether the split holds no image.
    pub fn is_empty(&self) -> bool {
        self.images.count == 0
    }

    /// The first `n` images (or all, if fewer).
    pub fn take(&self, n: usize) -> Split {
        let n = n.min(self.len());
        let pixels = self.images.pixels_per_image();
        Split {
            images: Images {
                count: n,
                height: self.images.height,
                width: self.images.width,
                channels: self.images.channels,
                values: self.images.values.slice(0..n * pixels),
            },
            labels: self.labels[..n].to_vec(),
        }
    }

    /// Images `indices` as a batch with pixels scaled to [0, 1].
    ///
    /// # Shapes
    /// `out`: indices.len() x pixels (reshaped).
    pub fn batch_into(&self, indices: &[usize], out: &mut Matrix) {
        let pixels = self.images.pixels_per_image();
        out.reshape_for_overwrite(indices.len(), pixels);
        if pixels == 0 {
            return;
        }
        // In parallel: a batch of 1024 MNIST images is 3 MB to convert, a few percent of a
        // training step on one thread.
        out.data
            .par_chunks_mut(ROWS_PER_CHUNK * pixels)
            .zip(indices.par_chunks(ROWS_PER_CHUNK))
            .for_each(|(rows, indices)| {
                for (row, &i) in rows.chunks_exact_mut(pixels).zip(indices) {
                    self.images.read_into(i, row);
                }
            });
    }

    /// Every pixel drawn as black or white with probability its grey level (`p/255` white;
    /// a float value `v` in [0, 1] is white with probability `v`).
    pub fn binarized(&self, rng: &mut RunRng) -> Split {
        let mut out = self.clone();
        match &mut out.images.values {
            Values::Bytes(bytes) => {
                for p in bytes {
                    *p = if rng.random_range(0..255u32) < *p as u32 {
                        255
                    } else {
                        0
                    };
                }
            }
            Values::Floats(floats) => {
                for v in floats {
                    *v = if rng.random_range(0.0f32..1.0) < *v { 1.0 } else { 0.0 };
                }
            }
        }
        out
    }

    /// Pixels in [0, 1] of a batch, each binarized in place with probability its value.
    pub fn binarize_batch(x: &mut Matrix, rng: &mut RunRng) {
        for v in &mut x.data {
            *v = if rng.random_range(0.0f32..1.0) < *v { 1.0 } else { 0.0 };
        }
    }

    /// The labels of the images at `indices`, in that order.
    pub fn labels_of(&self, indices: &[usize]) -> Vec<u8> {
        indices.iter().map(|&i| self.labels[i]).collect()
    }

    /// Images `start..end` (clamped to the split) as a batch.
    pub fn range_batch(&self, start: usize, end: usize) -> Matrix {
        let indices: Vec<usize> = (start..end.min(self.len())).collect();
        let mut out = Matrix::default();
        self.batch_into(&indices, &mut out);
        out
    }
}

/// How grey pixels become the binary ones the Bernoulli likelihood of published MNIST results
/// assumes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Binarize {
    /// Pixels stay grey levels in [0, 1].
    #[default]
    None,
    /// Each pixel is drawn once as 1 with probability `grey level`, for good.
    Static,
    /// Training pixels are drawn afresh for every batch (the protocol of the published MNIST
    /// likelihoods); the test split is drawn once.
    Dynamic,
}

impl Binarize {
    /// The word used on the command line and in `config.json`.
    pub fn name(self) -> &'static str {
        match self {
            Binarize::None => "none",
            Binarize::Static => "static",
            Binarize::Dynamic => "dynamic",
        }
    }
}

/// A dataset's training and test splits.
#[derive(Clone, Debug)]
pub struct Dataset {
    /// The name it was asked for by: a known name or a directory.
    pub name: String,
    pub train: Split,
    pub test: Split,
    /// A name for each class a label can be, in label order (`["all"]` when unlabelled).
    pub class_names: Vec<String>,
    /// Whether the labels say something: false for a folder of images without class
    /// sub-folders, whose labels are all 0.
    pub labelled: bool,
}

impl Dataset {
    /// Labelled splits, their classes named as [`catalog::class_names`] names them.
    pub fn labelled(name: String, train: Split, test: Split) -> Dataset {
        let mut dataset = Dataset {
            name,
            train,
            test,
            class_names: Vec::new(),
            labelled: true,
        };
        dataset.class_names = catalog::class_names(&dataset.name, dataset.classes());
        dataset
    }

    /// The number of classes: one more than the largest label of either split (10 for every
    /// dataset this tool names).
    pub fn classes(&self) -> usize {
        let max = self.train.labels.iter().chain(&self.test.labels).copied().max();
        max.map_or(1, |m| m as usize + 1)
    }

    /// The size of its images.
    pub fn shape(&self) -> ImageShape {
        self.train.images.shape()
    }

    /// The training and test splits as a run with this binarization sees them: `static`
    /// binarizes both once, `dynamic` the test split once (training batches are drawn as they
    /// are used). Grey splits are borrowed, not copied: a full dataset is tens of megabytes.
    pub fn prepared_splits(&self, binarize: Binarize, seed: u64) -> (Cow<'_, Split>, Cow<'_, Split>) {
        let mut rng = stream_rng(seed, Stream::Binarize);
        // The training split draws first, so that `static` keeps its stream order.
        let train = match binarize {
            Binarize::Static => Cow::Owned(self.train.binarized(&mut rng)),
            Binarize::None | Binarize::Dynamic => Cow::Borrowed(&self.train),
        };
        let test = match binarize {
            Binarize::None => Cow::Borrowed(&self.test),
            Binarize::Static | Binarize::Dynamic => Cow::Owned(self.test.binarized(&mut rng)),
        };
        (train, test)
    }

    /// [`Dataset::prepared_splits`] as a dataset (a copy unless nothing is binarized).
    pub fn prepared(&self, binarize: Binarize, seed: u64) -> Cow<'_, Dataset> {
        match self.prepared_splits(binarize, seed) {
            (Cow::Borrowed(_), Cow::Borrowed(_)) => Cow::Borrowed(self),
            (train, test) => Cow::Owned(Dataset {
                name: self.name.clone(),
                train: train.into_owned(),
                test: test.into_owned(),
                class_names: self.class_names.clone(),
                labelled: self.labelled,
            }),
        }
    }
}
