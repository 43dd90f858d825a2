//! The built-in `mnist-sample` is the first 10,000 MNIST training digits, split 9,000/1,000.

mod common;

use vae::data::idx::{read_images, read_labels};

#[test]
fn the_sample_splits_nine_thousand_and_one_thousand_real_digits() {
    let data = common::sample();
    assert_eq!((data.train.len(), data.test.len()), (9_000, 1_000));
    assert_eq!(
        (data.train.images.height, data.train.images.width),
        (28, 28)
    );
    // Every digit appears in both splits, roughly a tenth each.
    for split in [&data.train, &data.test] {
        let mut counts = [0usize; 10];
        for &l in &split.labels {
            counts[l as usize] += 1;
        }
        for c in counts {
            assert!(c * 20 > split.len() && c * 5 < split.len(), "{counts:?}");
        }
    }
}

#[test]
fn the_sample_is_byte_for_byte_the_start_of_canonical_mnist() {
    let Some(dir) = common::shared_mnist() else {
        return;
    };
    let images = read_images(&dir.join("train-images-idx3-ubyte.10k.gz")).unwrap();
    let labels = read_labels(&dir.join("train-labels-idx1-ubyte.gz")).unwrap();
    let data = common::sample();
    let pixels = 784;
    assert_eq!(data.train.images.pixels, images.pixels[..9_000 * pixels]);
    assert_eq!(data.test.images.pixels, images.pixels[9_000 * pixels..]);
    assert_eq!(data.train.labels, labels[..9_000]);
    assert_eq!(data.test.labels, labels[9_000..10_000]);
}
