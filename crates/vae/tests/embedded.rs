//! The built-in `mnist-sample` is the first 10,000 MNIST training digits, split 9,000/1,000.

mod common;

use vae::data::idx::{read_images, read_labels};

#[test]
fn the_sample_splits_nine_thousand_and_one_thousand_real_digits() {
    let data = common::sample();
    assert_eq!((data.train.len(), data.test.len()), (9_000, 1_000));
    assert_eq!((data.train.images.height, data.train.images.width), (28, 28));
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
    assert_eq!(
        data.train.images.values.as_bytes().unwrap(),
        &images.values.as_bytes().unwrap()[..9_000 * pixels]
    );
    assert_eq!(
        data.test.images.values.as_bytes().unwrap(),
        &images.values.as_bytes().unwrap()[9_000 * pixels..]
    );
    assert_eq!(data.train.labels, labels[..9_000]);
    assert_eq!(data.test.labels, labels[9_000..10_000]);
}

#[test]
fn fashion_mnist_is_found_where_debian_installs_it() {
    use vae::data::{DataDirs, DatasetName, DatasetSpec, Location, catalog};
    let system = std::path::PathBuf::from("/usr/share/datasets");
    if !system.join("fashion-mnist").is_dir() {
        common::skip_without_data("the package dataset-fashion-mnist is not installed");
        return;
    }
    let user = tempfile::tempdir().unwrap();
    let dirs = DataDirs {
        user: user.path().to_path_buf(),
        system: system.clone(),
    };
    assert_eq!(
        catalog::locate(DatasetName::FashionMnist, &dirs),
        Location::Dir(system.join("fashion-mnist"))
    );
    assert!(matches!(
        catalog::locate(DatasetName::Mnist, &dirs),
        Location::Missing { .. }
    ));
    let data = catalog::load(&DatasetSpec::Named(DatasetName::FashionMnist), &dirs).unwrap();
    assert_eq!((data.train.len(), data.test.len()), (60_000, 10_000));
    // Known value: Fashion-MNIST's first training image is an ankle boot (class 9).
    assert_eq!(data.train.labels[0], 9);
    let error = catalog::load(&DatasetSpec::Named(DatasetName::Mnist), &dirs)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("run `vae data fetch mnist` or pass --dataset DIR"),
        "{error}"
    );
}

#[test]
fn binarization_draws_each_pixel_with_its_grey_level() {
    use vae::data::Binarize;
    let data = common::small_sample(2_000, 500);
    let mean = |pixels: &[u8]| pixels.iter().map(|&p| p as f64 / 255.0).sum::<f64>() / pixels.len() as f64;
    let binary = |pixels: &[u8]| pixels.iter().all(|&p| p == 0 || p == 255);

    let fixed = data.prepared(Binarize::Static, 1);
    assert!(
        binary(fixed.train.images.values.as_bytes().unwrap()) && binary(fixed.test.images.values.as_bytes().unwrap())
    );
    // Each pixel is white with probability its grey level: the mean brightness is kept.
    let (grey, drawn) = (
        mean(data.train.images.values.as_bytes().unwrap()),
        mean(fixed.train.images.values.as_bytes().unwrap()),
    );
    assert!((grey - drawn).abs() < 0.002, "{grey} vs {drawn}");
    assert_eq!(fixed.train.labels, data.train.labels);
    // Same seed, same draw; another seed, another.
    assert_eq!(data.prepared(Binarize::Static, 1).train.images, fixed.train.images);
    assert_ne!(data.prepared(Binarize::Static, 2).train.images, fixed.train.images);

    let dynamic = data.prepared(Binarize::Dynamic, 1);
    assert_eq!(
        dynamic.train.images, data.train.images,
        "training images are drawn batch by batch"
    );
    assert!(binary(dynamic.test.images.values.as_bytes().unwrap()));
    assert_eq!(data.prepared(Binarize::None, 1).test.images, data.test.images);
}
