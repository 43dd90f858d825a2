//! A folder of image files as a dataset: the same data through the IDX door and the PNG-folder
//! door agree to the bit, colour emoji load and train, and every kind of broken folder is a
//! one-line error naming the file.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use image::{GrayImage, Luma, LumaA, Rgb, RgbImage, Rgba, RgbaImage};
use vae::data::folder::{self, Listing};
use vae::data::{ColorMode, DataOptions, Dataset, ImageSize, Split};
use vae::eval::evaluate;
use vae::model::{Arch, ModelConfig, ModelKind};
use vae::rng::seeded;
use vae::run::{RunConfig, RunDir, TrainConfig};

fn load(dir: &Path, options: &DataOptions) -> vae::error::Result<Dataset> {
    folder::load(dir, options, None, &|_, _| {})
}

fn load_err(dir: &Path, options: &DataOptions) -> String {
    load(dir, options)
        .expect_err("a broken folder must be refused")
        .to_string()
}

/// Writes `split`'s images as `dir/LABEL/INDEX.png`, indices zero-padded: the layout that
/// keeps a dataset's order.
fn write_split(split: &Split, dir: &Path) {
    let (h, w) = (split.images.height as u32, split.images.width as u32);
    for i in 0..split.len() {
        let class = dir.join(split.labels[i].to_string());
        fs::create_dir_all(&class).unwrap();
        let image = GrayImage::from_raw(w, h, split.images.image(i).unwrap().to_vec()).unwrap();
        image.save(class.join(format!("{i:05}.png"))).unwrap();
    }
}

/// Fashion-MNIST from Debian's package, or `None` (the test says it skipped).
fn fashion() -> Option<Dataset> {
    let dir = PathBuf::from("/usr/share/datasets/fashion-mnist");
    if !dir.is_dir() {
        common::skip_without_data("the package dataset-fashion-mnist is not installed");
        return None;
    }
    Some(vae::data::catalog::load_dir(&dir).unwrap())
}

#[test]
fn fashion_mnist_as_a_png_folder_is_its_idx_files_to_the_bit() {
    let Some(idx) = fashion() else { return };
    let idx = Dataset::labelled("fashion".into(), idx.train.take(2_000), idx.test.take(500));
    let dir = tempfile::tempdir().unwrap();
    write_split(&idx.train, &dir.path().join("train"));
    write_split(&idx.test, &dir.path().join("test"));
    // Extra files a user's folder has are passed over.
    fs::write(dir.path().join("train/README.txt"), "Fashion-MNIST").unwrap();

    let png = load(dir.path(), &DataOptions::default()).unwrap();
    assert_eq!(png.shape(), idx.shape());
    assert!(png.labelled);
    assert_eq!(png.class_names, (0..10).map(|c| c.to_string()).collect::<Vec<_>>());
    assert_eq!(png.train.images, idx.train.images);
    assert_eq!(png.train.labels, idx.train.labels);
    assert_eq!(png.test.images, idx.test.images);
    assert_eq!(png.test.labels, idx.test.labels);

    // So a run trained on either, with the same seed, is the same run.
    let config = RunConfig {
        model: ModelConfig {
            hidden: vec![64],
            latent: 8,
            ..ModelConfig::mlp_vae()
        },
        train: TrainConfig {
            epochs: 1,
            seed: 5,
            threads: 2,
            ..TrainConfig::default()
        },
    };
    let losses: Vec<f64> = [&idx, &png]
        .iter()
        .map(|data| {
            let run_dir = tempfile::tempdir().unwrap();
            let trainer = common::train(&RunDir::new(run_dir.path()), config.clone(), data);
            evaluate(&trainer.model, &data.test, &mut seeded(1)).unwrap().total
        })
        .collect();
    eprintln!("test loss: IDX {:.6}, PNG folder {:.6}", losses[0], losses[1]);
    assert!((losses[0] - losses[1]).abs() <= 1e-9 * losses[0].abs(), "{losses:?}");
}

/// A folder of small synthetic images, for the cases no real dataset has.
fn folder_of(files: &[(&str, DynamicPicture)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, picture) in files {
        let path = dir.path().join(name);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        picture.save(&path);
    }
    dir
}

enum DynamicPicture {
    Gray(GrayImage),
    GrayAlpha(image::GrayAlphaImage),
    Rgb(RgbImage),
    Rgba(RgbaImage),
}

impl DynamicPicture {
    fn save(&self, path: &Path) {
        match self {
            DynamicPicture::Gray(i) => i.save(path),
            DynamicPicture::GrayAlpha(i) => i.save(path),
            DynamicPicture::Rgb(i) => i.save(path),
            DynamicPicture::Rgba(i) => i.save(path),
        }
        .unwrap()
    }
}

fn gray(w: u32, h: u32, v: u8) -> DynamicPicture {
    DynamicPicture::Gray(GrayImage::from_pixel(w, h, Luma([v])))
}

#[test]
fn transparency_is_white_and_colour_comes_from_the_files() {
    // Grey with alpha: a transparent pixel shows the white background, a half-transparent
    // black one is mid-grey; the folder stays grey.
    let mut ga = image::GrayAlphaImage::from_pixel(2, 1, LumaA([0, 0]));
    ga.put_pixel(1, 0, LumaA([0, 128]));
    let dir = folder_of(&[
        ("a.png", DynamicPicture::GrayAlpha(ga.clone())),
        ("b.png", gray(2, 1, 7)),
    ]);
    let options = DataOptions {
        test_fraction: 0.5,
        ..DataOptions::default()
    };
    let data = load(dir.path(), &options).unwrap();
    assert_eq!(data.shape().channels, 1);
    assert!(!data.labelled);
    let all: Vec<&[u8]> = [&data.train, &data.test]
        .iter()
        .map(|s| s.images.image(0).unwrap())
        .collect();
    assert!(all.contains(&&[255u8, 127][..]), "{all:?}");
    assert!(all.contains(&&[7u8, 7][..]), "{all:?}");

    // One colour image makes the folder RGB; `--color gray` takes the luma instead.
    let red = DynamicPicture::Rgba(RgbaImage::from_pixel(2, 1, Rgba([255, 0, 0, 255])));
    let dir = folder_of(&[("a.png", DynamicPicture::GrayAlpha(ga)), ("b.png", red)]);
    let data = load(dir.path(), &options).unwrap();
    assert_eq!(data.shape().channels, 3);
    let all: Vec<&[u8]> = [&data.train, &data.test]
        .iter()
        .map(|s| s.images.image(0).unwrap())
        .collect();
    assert!(all.contains(&&[255u8, 0, 0, 255, 0, 0][..]), "{all:?}");
    assert!(all.contains(&&[255u8, 255, 255, 127, 127, 127][..]), "{all:?}");
    let grey = DataOptions {
        color: Some(ColorMode::Gray),
        ..options
    };
    let data = load(dir.path(), &grey).unwrap();
    let all: Vec<&[u8]> = [&data.train, &data.test]
        .iter()
        .map(|s| s.images.image(0).unwrap())
        .collect();
    // Rec. 709: red is 0.2126 of white.
    assert!(all.contains(&&[54u8, 54][..]), "{all:?}");
}

#[test]
fn image_size_resizes_and_mixed_sizes_without_it_name_two_files() {
    let wide = DynamicPicture::Rgb(RgbImage::from_pixel(8, 4, Rgb([10, 20, 30])));
    let dir = folder_of(&[
        ("x/a.png", gray(4, 4, 200)),
        ("x/b.png", gray(4, 4, 100)),
        ("y/c.png", wide),
    ]);
    let problem = load_err(dir.path(), &DataOptions::default());
    assert!(problem.contains("different sizes"), "{problem}");
    assert!(problem.contains("is 4x4") && problem.contains("is 4x8"), "{problem}");
    assert!(problem.contains("--image-size"), "{problem}");

    let options = DataOptions {
        image_size: Some("2x3".parse().unwrap()),
        ..DataOptions::default()
    };
    let data = load(dir.path(), &options).unwrap();
    assert_eq!(
        (data.shape().height, data.shape().width, data.shape().channels),
        (2, 3, 3)
    );
    assert_eq!(data.class_names, ["x", "y"]);
    // A flat colour stays that colour whatever the resize does.
    for split in [&data.train, &data.test] {
        for i in 0..split.len() {
            let image = split.images.image(i).unwrap();
            let expected: &[u8] = match split.labels[i] {
                0 => &[image[0]; 3],
                _ => &[10, 20, 30],
            };
            assert!(image.chunks(3).all(|p| p == expected), "{image:?}");
        }
    }
    assert_eq!("32".parse::<ImageSize>().unwrap(), ImageSize { height: 32, width: 32 });
    assert!("0x5".parse::<ImageSize>().is_err() && "big".parse::<ImageSize>().is_err());
}

#[test]
fn the_held_out_share_is_per_class_and_depends_on_names_only() {
    let dir = tempfile::tempdir().unwrap();
    for class in ["cat", "dog"] {
        fs::create_dir_all(dir.path().join(class)).unwrap();
        for i in 0..40 {
            gray(1, 1, i).save(&dir.path().join(format!("{class}/{i:03}.png")));
        }
    }
    let listing = folder::list(dir.path(), 0.25).unwrap();
    assert!(!listing.split_given);
    for label in 0..2u8 {
        assert_eq!(listing.test.iter().filter(|i| i.label == label).count(), 10);
        assert_eq!(listing.train.iter().filter(|i| i.label == label).count(), 30);
    }
    // Ordered by file name: the classes interleave.
    let names: Vec<&str> = listing.train.iter().map(|i| &i.relative[4..]).collect();
    assert!(names.is_sorted(), "{names:?}");
    assert!(listing.train[..6].iter().any(|i| i.label == 0) && listing.train[..6].iter().any(|i| i.label == 1));
    // A new file does not move the others.
    let side = |l: &Listing, name: &str| l.test.iter().any(|i| i.relative == name);
    gray(1, 1, 0).save(&dir.path().join("cat/zzz.png"));
    let more = folder::list(dir.path(), 0.25).unwrap();
    let moved = listing
        .train
        .iter()
        .chain(&listing.test)
        .filter(|i| side(&listing, &i.relative) != side(&more, &i.relative))
        .count();
    // Adding one to a class of 40 may move its rounded share by one, no more.
    assert!(moved <= 1, "{moved} files changed sides");
}

#[test]
fn broken_folders_are_one_line_errors_naming_the_problem() {
    let options = DataOptions::default();
    let empty = tempfile::tempdir().unwrap();
    assert!(load_err(empty.path(), &options).contains("holds no images"));

    let texts = tempfile::tempdir().unwrap();
    fs::write(texts.path().join("notes.txt"), "hello").unwrap();
    let problem = load_err(texts.path(), &options);
    assert!(problem.contains("holds no images (1 other files"), "{problem}");

    for (what, bytes) in [
        ("text named .png", b"this is not a picture".to_vec()),
        ("truncated PNG", {
            let mut png = Vec::new();
            let image = GrayImage::from_pixel(16, 16, Luma([9]));
            image
                .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
                .unwrap();
            png.truncate(png.len() / 2);
            png
        }),
        ("empty file", Vec::new()),
    ] {
        let dir = folder_of(&[("a.png", gray(16, 16, 1)), ("b.png", gray(16, 16, 2))]);
        fs::write(dir.path().join("c.png"), &bytes).unwrap();
        let problem = load_err(dir.path(), &options);
        assert!(problem.contains("c.png"), "{what}: {problem}");
        assert!(!problem.contains('\n'), "{what}: {problem}");
    }

    let mixed = folder_of(&[("a.png", gray(2, 2, 1)), ("cats/b.png", gray(2, 2, 2))]);
    let problem = load_err(mixed.path(), &options);
    assert!(problem.contains("beside class sub-folders"), "{problem}");

    let one = folder_of(&[("a.png", gray(2, 2, 1))]);
    assert!(load_err(one.path(), &options).contains("no test images: 1 in all"));
    let bad_fraction = DataOptions {
        test_fraction: 1.0,
        ..options
    };
    assert!(load_err(one.path(), &bad_fraction).contains("test-fraction"));
}

/// The emoji folder `scripts/emoji-folder.py` makes from the npm package, at `VAE_EMOJI_DIR`.
fn emoji() -> Option<PathBuf> {
    match std::env::var_os("VAE_EMOJI_DIR").map(PathBuf::from) {
        Some(dir) if dir.is_dir() => Some(dir),
        _ => {
            common::skip_without_data("VAE_EMOJI_DIR names no folder (see scripts/emoji-folder.py)");
            None
        }
    }
}

#[test]
fn colour_emoji_load_at_any_size_and_a_conv_vae_learns_them() {
    let Some(dir) = emoji() else { return };
    let options = DataOptions {
        image_size: Some("32".parse().unwrap()),
        ..DataOptions::default()
    };
    let data = load(&dir, &options).unwrap();
    assert_eq!(data.train.len() + data.test.len(), 3_786);
    assert_eq!(data.class_names.len(), 10);
    assert!(data.class_names.contains(&"Smileys & Emotion".to_string()));
    assert_eq!(
        (data.shape().height, data.shape().width, data.shape().channels),
        (32, 32, 3)
    );
    assert!((370..=390).contains(&data.test.len()), "{}", data.test.len());
    // The same folder gives the same dataset.
    assert_eq!(load(&dir, &options).unwrap().test.images, data.test.images);

    let native = load(&dir, &DataOptions::default()).unwrap();
    assert_eq!((native.shape().height, native.shape().width), (64, 64));

    let mut config = RunConfig {
        model: ModelConfig {
            kind: ModelKind::Vae,
            channels: vec![16, 32],
            hidden: vec![64],
            latent: 8,
            ..ModelConfig::for_body(Arch::Conv, None, None)
        },
        train: TrainConfig {
            epochs: 2,
            threads: 2,
            ..TrainConfig::default()
        },
    };
    config.fit_to(&data).unwrap();
    assert_eq!(config.model.pixels(), 32 * 32 * 3);
    let run_dir = tempfile::tempdir().unwrap();
    let untrained = vae::model::Model::new(config.model.clone(), &mut seeded(0)).unwrap();
    let before = evaluate(&untrained, &data.test, &mut seeded(1)).unwrap().total;
    let trainer = common::train(&RunDir::new(run_dir.path()), config, &data);
    let after = evaluate(&trainer.model, &data.test, &mut seeded(1)).unwrap().total;
    eprintln!("emoji 32x32 test loss {before:.1} -> {after:.1}");
    assert!(after < 0.8 * before, "{before} -> {after}");
    // Its pictures are in colour.
    let samples = image::open(run_dir.path().join("samples.png")).unwrap();
    assert_eq!(samples.color(), image::ColorType::Rgb8);
}

#[test]
fn a_decoded_folder_is_cached_by_content_and_read_back_until_a_file_changes() {
    let dir = folder_of(&[
        ("x/a.png", gray(3, 2, 10)),
        ("x/b.png", gray(3, 2, 20)),
        ("y/c.png", gray(3, 2, 30)),
    ]);
    let cache = tempfile::tempdir().unwrap();
    let options = DataOptions {
        test_fraction: 0.5,
        ..DataOptions::default()
    };
    let decodes = std::sync::atomic::AtomicUsize::new(0);
    let counted = |_: usize, _: usize| {
        decodes.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    };
    let cold = folder::load(dir.path(), &options, Some(cache.path()), &counted).unwrap();
    assert!(decodes.load(std::sync::atomic::Ordering::Relaxed) > 0);
    let files: Vec<_> = fs::read_dir(cache.path()).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(files.len(), 1, "{files:?}");
    // 28 bytes of header, then the pixels.
    assert_eq!(fs::metadata(&files[0]).unwrap().len(), 28 + 3 * 6);

    decodes.store(0, std::sync::atomic::Ordering::Relaxed);
    let warm = folder::load(dir.path(), &options, Some(cache.path()), &counted).unwrap();
    assert_eq!(
        decodes.load(std::sync::atomic::Ordering::Relaxed),
        0,
        "read from the cache"
    );
    assert_eq!(warm.train.images, cold.train.images);
    assert_eq!(warm.test.images, cold.test.images);
    assert_eq!(
        (warm.train.labels.clone(), warm.class_names.clone()),
        (cold.train.labels.clone(), cold.class_names.clone())
    );

    // Another file's content, another key: decoded afresh.
    gray(3, 2, 99).save(&dir.path().join("x/b.png"));
    let changed = folder::load(dir.path(), &options, Some(cache.path()), &counted).unwrap();
    assert!(decodes.load(std::sync::atomic::Ordering::Relaxed) > 0);
    let all: Vec<u8> = changed
        .train
        .images
        .values
        .as_bytes()
        .unwrap()
        .iter()
        .chain(changed.test.images.values.as_bytes().unwrap())
        .copied()
        .collect();
    assert!(all.contains(&99), "{all:?}");
    assert_eq!(fs::read_dir(cache.path()).unwrap().count(), 2);

    // A cache file cut short is decoded afresh and replaced.
    for entry in fs::read_dir(cache.path()).unwrap() {
        let path = entry.unwrap().path();
        let bytes = fs::read(&path).unwrap();
        fs::write(&path, &bytes[..bytes.len() - 1]).unwrap();
    }
    decodes.store(0, std::sync::atomic::Ordering::Relaxed);
    let again = folder::load(dir.path(), &options, Some(cache.path()), &counted).unwrap();
    assert!(decodes.load(std::sync::atomic::Ordering::Relaxed) > 0);
    assert_eq!(again.train.images, changed.train.images);
    // And a different size is another entry.
    let small = DataOptions {
        image_size: Some("1".parse().unwrap()),
        ..options
    };
    let resized = folder::load(dir.path(), &small, Some(cache.path()), &counted).unwrap();
    assert_eq!(resized.shape().height, 1);
    assert_eq!(fs::read_dir(cache.path()).unwrap().count(), 3);
}
