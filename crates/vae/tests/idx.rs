//! The IDX reader against real files and a corpus of broken ones: every broken file gives a
//! typed error that names the file and the problem, never a panic.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::write::GzEncoder;
use vae::Error;
use vae::data::catalog::load_dir;
use vae::data::idx::{IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC, read_images, read_labels};

fn images_header(count: u32, rows: u32, cols: u32) -> Vec<u8> {
    [IDX_IMAGES_MAGIC, count, rows, cols]
        .iter()
        .flat_map(|v| v.to_be_bytes())
        .collect()
}

fn labels_header(count: u32) -> Vec<u8> {
    [IDX_LABELS_MAGIC, count].iter().flat_map(|v| v.to_be_bytes()).collect()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn reads_the_canonical_mnist_test_set() {
    let Some(dir) = common::shared_mnist() else {
        return;
    };
    let images = read_images(&dir.join("t10k-images-idx3-ubyte.gz")).unwrap();
    let labels = read_labels(&dir.join("t10k-labels-idx1-ubyte.gz")).unwrap();
    assert_eq!((images.count, images.height, images.width), (10_000, 28, 28));
    assert_eq!(labels.len(), 10_000);
    // Known values: the first test digit is a 7, the second a 2 (LeCun's t10k order).
    assert_eq!(&labels[..3], &[7, 2, 1]);
    // Digits are white strokes on black: corners are empty, the centre is not, on average.
    let mean = |i: usize| (0..10_000).map(|n| images.image(n).unwrap()[i] as f64).sum::<f64>() / 10_000.0;
    assert_eq!(mean(0), 0.0);
    assert!(mean(14 * 28 + 14) > 50.0);
}

#[test]
fn raw_and_gzip_files_read_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = images_header(2, 28, 28);
    bytes.extend((0..2 * 784).map(|i| (i % 251) as u8));
    let raw = read_images(&write(dir.path(), "raw", &bytes)).unwrap();
    let gz = read_images(&write(dir.path(), "gz", &gzip(&bytes))).unwrap();
    assert_eq!(raw, gz);
    assert_eq!(raw.image(1).unwrap()[0], (784 % 251) as u8);
}

/// A broken file, what reading it must say, and which reader.
struct Case {
    name: &'static str,
    bytes: Vec<u8>,
    labels: bool,
    expect: &'static str,
}

#[test]
fn broken_idx_files_give_one_line_errors_naming_the_file() {
    let mut truncated = images_header(3, 28, 28);
    truncated.extend(vec![0u8; 784 * 2]);
    let mut trailing = labels_header(2);
    trailing.extend([1, 2, 3]);
    // A whole image whose gzip checksum (the trailer's first 4 bytes) is wrong.
    let mut one_image = images_header(1, 28, 28);
    one_image.extend(vec![9u8; 784]);
    let mut corrupt_gzip = gzip(&one_image);
    let n = corrupt_gzip.len();
    corrupt_gzip[n - 8] ^= 0xff;
    // A gzip bomb: 1 GB of zeros compresses to ~1 MB; the header admits 784 bytes.
    let bomb = {
        let mut e = GzEncoder::new(Vec::new(), Compression::best());
        e.write_all(&images_header(1, 28, 28)).unwrap();
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..64 {
            e.write_all(&zeros).unwrap();
        }
        e.finish().unwrap()
    };
    let cases = vec![
        Case {
            name: "empty",
            bytes: vec![],
            labels: false,
            expect: "is empty",
        },
        Case {
            name: "short-header",
            bytes: images_header(1, 28, 28)[..10].to_vec(),
            labels: false,
            expect: "truncated header",
        },
        Case {
            name: "labels-as-images",
            bytes: labels_header(5),
            labels: false,
            expect: "magic number 0x00000801, expected 0x00000803",
        },
        Case {
            name: "images-as-labels",
            bytes: images_header(1, 1, 1),
            labels: true,
            expect: "magic number 0x00000803, expected 0x00000801",
        },
        Case {
            name: "truncated",
            bytes: truncated,
            labels: false,
            expect: "truncated: the header promises 2352 bytes of data, the file holds 1568",
        },
        Case {
            name: "zero-images",
            bytes: images_header(0, 28, 28),
            labels: false,
            expect: "holds no images",
        },
        Case {
            name: "zero-labels",
            bytes: labels_header(0),
            labels: true,
            expect: "holds no labels",
        },
        Case {
            name: "overflow",
            bytes: images_header(u32::MAX, u32::MAX, u32::MAX),
            labels: false,
            expect: "implausibly large",
        },
        Case {
            name: "zero-width",
            bytes: images_header(5, 28, 0),
            labels: false,
            expect: "declares images of 28x0",
        },
        Case {
            name: "trailing",
            bytes: trailing,
            labels: true,
            expect: "has data after the 2 bytes its header declares",
        },
        Case {
            name: "corrupt.gz",
            bytes: corrupt_gzip,
            labels: false,
            expect: "corrupt data",
        },
        Case {
            name: "bomb.gz",
            bytes: bomb,
            labels: false,
            expect: "has data after the 784 bytes",
        },
    ];
    let dir = tempfile::tempdir().unwrap();
    for case in cases {
        let path = write(dir.path(), case.name, &case.bytes);
        let error = if case.labels {
            read_labels(&path).map(|_| ())
        } else {
            read_images(&path).map(|_| ())
        }
        .expect_err(case.name);
        let message = error.to_string();
        assert!(
            message.starts_with(&path.display().to_string()),
            "{}: {message}",
            case.name
        );
        assert!(message.contains(case.expect), "{}: {message}", case.name);
        assert!(!message.contains('\n'), "{}: {message}", case.name);
    }
    // A directory where a file should be.
    let error = read_images(dir.path()).unwrap_err().to_string();
    assert!(error.contains("is a directory"), "{error}");
    // A file that does not exist.
    let missing = dir.path().join("nope");
    assert!(matches!(read_images(&missing), Err(Error::Io { .. })));
}

/// A dataset directory of four small files, with the given image size and label count.
fn dataset_dir(side: u32, train_labels: u32) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let images = |n: u32| {
        let mut b = images_header(n, side, side);
        b.extend(vec![7u8; (n * side * side) as usize]);
        b
    };
    let labels = |n: u32| {
        let mut b = labels_header(n);
        b.extend((0..n).map(|i| (i % 10) as u8));
        b
    };
    write(dir.path(), "train-images-idx3-ubyte.gz", &gzip(&images(4)));
    write(dir.path(), "train-labels-idx1-ubyte", &labels(train_labels));
    write(dir.path(), "t10k-images-idx3-ubyte", &images(2));
    write(dir.path(), "t10k-labels-idx1-ubyte.gz", &gzip(&labels(2)));
    dir
}

#[test]
fn a_directory_of_idx_files_loads_gzip_or_raw() {
    let dir = dataset_dir(28, 4);
    let data = load_dir(dir.path()).unwrap();
    assert_eq!((data.train.len(), data.test.len()), (4, 2));
    assert_eq!(data.train.labels, vec![0, 1, 2, 3]);
}

#[test]
fn mismatched_counts_and_wrong_sizes_are_refused() {
    let dir = dataset_dir(28, 3);
    let message = load_dir(dir.path()).unwrap_err().to_string();
    assert!(message.contains("holds 4 images but"), "{message}");
    assert!(message.contains("holds 3 labels"), "{message}");

    let dir = dataset_dir(32, 4);
    let message = load_dir(dir.path()).unwrap_err().to_string();
    assert!(
        message.contains("train-images-idx3-ubyte.gz: images are 32x32; this tool needs 28x28"),
        "{message}"
    );

    let dir = tempfile::tempdir().unwrap();
    let message = load_dir(dir.path()).unwrap_err().to_string();
    assert!(
        message.contains("no train-images-idx3-ubyte or train-images-idx3-ubyte.gz"),
        "{message}"
    );
}
