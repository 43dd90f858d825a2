//! NPY arrays and CSV tables as datasets: the same images through the IDX door and the NPY
//! door agree to the bit, scikit-learn's bundled tables load with their classes, and every
//! kind of broken file is a one-line error naming the file and the problem.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use vae::data::arrays::{load_file, load_split_folder};
use vae::data::npy;
use vae::data::{DataOptions, Dataset, ImageShape, Values};
use vae::eval::evaluate;
use vae::model::ModelConfig;
use vae::rng::seeded;
use vae::run::{RunConfig, RunDir, TrainConfig};

/// scikit-learn's bundled tables: `$VAE_SKLEARN_DIR` (CI extracts Debian's python3-sklearn
/// there), else the installed package's; `None` (the test says it skipped) without either.
fn sklearn_data() -> Option<PathBuf> {
    let dir = std::env::var_os("VAE_SKLEARN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/lib/python3/dist-packages/sklearn/datasets/data"));
    if dir.join("breast_cancer.csv").is_file() {
        Some(dir)
    } else {
        common::skip_without_data(&format!(
            "{} holds no breast_cancer.csv (apt-get download python3-sklearn, dpkg -x, set VAE_SKLEARN_DIR)",
            dir.display()
        ));
        None
    }
}

fn options() -> DataOptions {
    DataOptions::default()
}

fn write_npy_u8(path: &Path, shape: &[usize], values: &[u8]) {
    let mut bytes = Vec::new();
    npy::write_u8(&mut bytes, shape, values).unwrap();
    fs::write(path, bytes).unwrap();
}

fn write_npy_f32(path: &Path, shape: &[usize], values: &[f32]) {
    let mut bytes = Vec::new();
    npy::write_f32(&mut bytes, shape, values).unwrap();
    fs::write(path, bytes).unwrap();
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

/// One epoch of a small MLP VAE on `data`, and its test loss.
fn test_loss(data: &Dataset) -> f64 {
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
    let run_dir = tempfile::tempdir().unwrap();
    let trainer = common::train(&RunDir::new(run_dir.path()), config, data);
    evaluate(&trainer.model, &data.test, &mut seeded(1)).unwrap().total
}

#[test]
fn fashion_mnist_as_npy_files_is_its_idx_files() {
    let Some(idx) = fashion() else { return };
    let idx = Dataset::labelled("fashion".into(), idx.train.take(2_000), idx.test.take(500));
    let (bytes_dir, floats_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    for (split, stem) in [(&idx.train, "train"), (&idx.test, "test")] {
        let pixels = split.images.values.as_bytes().unwrap();
        let shape = [split.len(), 28, 28];
        write_npy_u8(&bytes_dir.path().join(format!("{stem}.npy")), &shape, pixels);
        // The float door: each pixel as the model reads a byte.
        let floats: Vec<f32> = pixels.iter().map(|&p| p as f32 / 255.0).collect();
        write_npy_f32(
            &floats_dir.path().join(format!("{stem}.npy")),
            &[split.len(), 784],
            &floats,
        );
        for dir in [&bytes_dir, &floats_dir] {
            write_npy_u8(
                &dir.path().join(format!("{stem}-labels.npy")),
                &[split.len()],
                &split.labels,
            );
        }
    }
    let bytes = load_split_folder(bytes_dir.path(), &options()).unwrap();
    assert_eq!(bytes.train.images, idx.train.images, "uint8 arrays stay bytes");
    assert_eq!(
        (bytes.train.labels.clone(), bytes.test.labels.clone()),
        (idx.train.labels.clone(), idx.test.labels.clone())
    );
    assert_eq!(bytes.class_names, (0..10).map(|c| c.to_string()).collect::<Vec<_>>());
    let floats = load_split_folder(floats_dir.path(), &options()).unwrap();
    assert_eq!(floats.shape(), ImageShape::vector(784), "N x D arrays are vectors");
    assert!(matches!(floats.train.images.values, Values::Floats(_)));

    // The MLP sees the same numbers through every door: the same run, the same test loss.
    let losses: Vec<f64> = [&idx, &bytes, &floats].iter().map(|d| test_loss(d)).collect();
    eprintln!(
        "test loss: IDX {:.6}, uint8 NPY {:.6}, float32 NPY {:.6}",
        losses[0], losses[1], losses[2]
    );
    assert_eq!(losses[0], losses[1]);
    assert!((losses[0] - losses[2]).abs() <= 1e-9 * losses[0], "{losses:?}");
}

#[test]
fn scikit_learn_tables_load_with_their_classes() {
    let Some(dir) = sklearn_data() else { return };
    let cancer = load_file(&dir.join("breast_cancer.csv"), &options()).unwrap();
    assert_eq!(cancer.shape(), ImageShape::vector(30));
    assert_eq!(cancer.train.len() + cancer.test.len(), 569);
    assert_eq!(cancer.class_names, ["malignant", "benign"], "named by the first line");
    let benign = |d: &Dataset| d.train.labels.iter().chain(&d.test.labels).filter(|&&l| l == 1).count();
    assert_eq!(benign(&cancer), 357);
    let Values::Floats(values) = &cancer.train.images.values else {
        panic!("CSV values are floats")
    };
    assert!(values.iter().any(|&v| v > 1000.0), "the values as written, not scaled");

    let digits_options = DataOptions {
        label_column: Some("last".into()),
        ..options()
    };
    let digits = load_file(&dir.join("digits.csv.gz"), &digits_options).unwrap();
    assert_eq!(digits.shape(), ImageShape::vector(64));
    assert_eq!(
        (digits.train.len(), digits.test.len()),
        (1_618, 179),
        "10% of each class held out"
    );
    assert_eq!(digits.classes(), 10);
    // The split is the rows' own: the same every time, a share of every class.
    let again = load_file(&dir.join("digits.csv.gz"), &digits_options).unwrap();
    assert_eq!(again.test.images, digits.test.images);
    for class in 0..10u8 {
        let held = digits.test.labels.iter().filter(|&&l| l == class).count();
        assert!((17..=19).contains(&held), "class {class}: {held} held out");
    }
    // Without --label-column the label is one more feature.
    let unlabelled = load_file(&dir.join("digits.csv.gz"), &options()).unwrap();
    assert_eq!(unlabelled.shape(), ImageShape::vector(65));
    assert!(!unlabelled.labelled);
}

#[test]
fn labels_come_from_a_second_file() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("x.npy");
    let values: Vec<f32> = (0..40).map(|i| (i % 7) as f32 / 7.0).collect();
    write_npy_f32(&data, &[20, 2], &values);
    let labels = dir.path().join("y.txt");
    let words: Vec<&str> = (0..20).map(|i| if i % 2 == 0 { "cat" } else { "dog" }).collect();
    fs::write(&labels, words.join("\n") + "\n").unwrap();
    let with = |labels: &Path| DataOptions {
        labels: Some(labels.to_path_buf()),
        ..options()
    };
    let set = load_file(&data, &with(&labels)).unwrap();
    assert_eq!(set.class_names, ["cat", "dog"]);
    assert_eq!((set.train.len(), set.test.len()), (18, 2));
    // Integer labels from NPY: classes sorted as numbers, not as text.
    let numbered = dir.path().join("y.npy");
    let raw: Vec<f32> = (0..20).map(|i| [10.0, 9.0, 100.0][i % 3]).collect();
    write_npy_f32(&numbered, &[20], &raw);
    assert_eq!(
        load_file(&data, &with(&numbered)).unwrap().class_names,
        ["9", "10", "100"]
    );

    let problem = |options: &DataOptions| load_file(&data, options).unwrap_err().to_string();
    fs::write(&labels, "cat\ndog\n").unwrap();
    assert_eq!(
        problem(&with(&labels)),
        format!("{}: 2 labels for the 20 items of {}", labels.display(), data.display())
    );
    write_npy_f32(&numbered, &[20], &[0.5; 20]);
    assert!(problem(&with(&numbered)).contains("label 0 is 0.5: labels must be integers"));
    write_npy_f32(&numbered, &[10, 2], &[0.0; 20]);
    assert!(problem(&with(&numbered)).contains("labels must be one integer per item"));
}

#[test]
fn broken_files_are_one_line_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name);
    let problem = |name: &str, bytes: &[u8]| {
        fs::write(path(name), bytes).unwrap();
        let spec: vae::data::DatasetSpec = path(name).to_str().unwrap().parse().unwrap();
        let e = vae::data::catalog::load_with(&spec, &vae::data::DataDirs::from_env(), &options(), &|_, _| {})
            .unwrap_err()
            .to_string();
        assert!(!e.contains('\n'), "one line: {e}");
        assert!(e.starts_with(&path(name).display().to_string()), "names the file: {e}");
        e
    };
    let mut f32_file = Vec::new();
    npy::write_f32(&mut f32_file, &[4, 3], &[0.5; 12]).unwrap();
    assert!(problem("cut.npy", &f32_file[..f32_file.len() - 5]).contains("needs 48 bytes of data, the file holds 43"));
    let fortran = String::from_utf8_lossy(&f32_file[10..]).replace("False", "True ");
    let mut fortran_file = f32_file[..10].to_vec();
    fortran_file.extend(fortran.as_bytes());
    assert!(problem("fortran.npy", &fortran_file).contains("Fortran order"));
    let mut text = Vec::new();
    npy::write_u8(&mut text, &[4, 2, 2, 4], &[0; 64]).unwrap();
    assert!(problem("rgba.npy", &text).contains("images of 4 channels"));
    let mut flat = Vec::new();
    npy::write_u8(&mut flat, &[16], &[0; 16]).unwrap();
    assert!(problem("flat.npy", &flat).contains("shape (16,): data must be N x D vectors"));
    assert!(problem("header.npy", b"\x93NUMPY\x01\x00\x40\x00{'descr': '<f4'}").contains("truncated"));
    assert!(problem("words.csv", b"a,b\n1,2\n3,x\n").contains("line 3, column 2 (b): 'x' is not a number"));
    assert!(problem("ragged.csv", b"1,2\n3,4\n5\n").contains("line 3 has 1 columns, line 1 has 2"));
    assert!(problem("nan.csv", b"1,2\n3,NaN\n").contains("'NaN' is not a finite number"));
    assert!(problem("few.csv", b"1,2\n").contains("too few to hold out a test share"));
    let gz = {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(b"1,2\n3,4\n").unwrap();
        let mut bytes = e.finish().unwrap();
        bytes.truncate(bytes.len() - 6);
        bytes
    };
    problem("cut.csv.gz", &gz);
    fs::write(path("notes.txt"), "hello").unwrap();
    let e = path("notes.txt")
        .to_str()
        .unwrap()
        .parse::<vae::data::DatasetSpec>()
        .unwrap_err();
    assert!(e.to_string().contains("is not a dataset file"), "{e}");
}

#[test]
fn float_values_outside_the_unit_interval_need_another_likelihood() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wide.csv");
    let rows: Vec<String> = (0..30).map(|i| format!("{},{}", i, i % 3)).collect();
    fs::write(&path, rows.join("\n")).unwrap();
    let data = load_file(&path, &options()).unwrap();
    let mut config = RunConfig {
        model: ModelConfig::mlp_vae(),
        train: TrainConfig::default(),
    };
    let e = config.fit_to(&data).unwrap_err().to_string();
    assert!(e.contains("values run from 0 to 29") && e.contains("[0, 1]"), "{e}");
}
