//! The named datasets and where each is found: embedded (`mnist-sample`), in the user's data
//! directory, in Debian's dataset packages, or any directory holding the four IDX files.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use super::folder::{self, Progress};
use super::idx::{read_images_sized, read_labels};
use super::options::DataOptions;
use super::{Dataset, Split, arrays, embedded};
use crate::error::{Error, Result};
use crate::model::MNIST_SIDE;

/// A dataset this tool knows by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DatasetName {
    MnistSample,
    Mnist,
    FashionMnist,
}

impl DatasetName {
    pub const ALL: [DatasetName; 3] = [DatasetName::MnistSample, DatasetName::Mnist, DatasetName::FashionMnist];

    /// The name on the command line and in directory names.
    pub fn as_str(self) -> &'static str {
        match self {
            DatasetName::MnistSample => "mnist-sample",
            DatasetName::Mnist => "mnist",
            DatasetName::FashionMnist => "fashion-mnist",
        }
    }

    /// One line saying what it is.
    pub fn description(self) -> &'static str {
        match self {
            DatasetName::MnistSample => "first 10,000 MNIST training digits, built in (9,000 train / 1,000 test)",
            DatasetName::Mnist => "MNIST handwritten digits (60,000 train / 10,000 test)",
            DatasetName::FashionMnist => "Zalando's Fashion-MNIST clothing images (60,000 train / 10,000 test)",
        }
    }
}

impl fmt::Display for DatasetName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What `--dataset` names: a known dataset, a folder (of IDX files, of images, or of train
/// and test NPY or CSV files), or one NPY or CSV file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DatasetSpec {
    Named(DatasetName),
    Dir(PathBuf),
    File(PathBuf),
}

impl DatasetSpec {
    /// Whether it names NPY or CSV data: a file, or a folder of train and test files.
    pub fn is_arrays(&self) -> bool {
        match self {
            DatasetSpec::File(_) => true,
            DatasetSpec::Dir(dir) => !is_complete(dir) && arrays::split_files(dir).is_some(),
            DatasetSpec::Named(_) => false,
        }
    }
}

impl FromStr for DatasetSpec {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        if let Some(name) = DatasetName::ALL.into_iter().find(|n| n.as_str() == s) {
            return Ok(DatasetSpec::Named(name));
        }
        let path = PathBuf::from(s);
        if path.is_dir() {
            return Ok(DatasetSpec::Dir(path));
        }
        if path.exists() {
            return match arrays::kind_of(&path) {
                Some(_) => Ok(DatasetSpec::File(path)),
                None => Err(Error::data_file(path, "is not a dataset file: .npy, .csv or .csv.gz")),
            };
        }
        Err(Error::Dataset(format!(
            "unknown dataset '{s}': not one of mnist-sample, mnist, fashion-mnist, nor a folder or an NPY or CSV file"
        )))
    }
}

impl fmt::Display for DatasetSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DatasetSpec::Named(n) => n.fmt(f),
            DatasetSpec::Dir(p) | DatasetSpec::File(p) => write!(f, "{}", p.display()),
        }
    }
}

/// Where named datasets are looked for.
#[derive(Clone, Debug)]
pub struct DataDirs {
    /// The user's data directory: `$VAE_DATA_DIR`, default `~/.cache/vae`. Downloads go here.
    pub user: PathBuf,
    /// Installed system datasets (Debian's `dataset-*` packages): `/usr/share/datasets`.
    pub system: PathBuf,
}

impl DataDirs {
    /// The directories from the environment: `VAE_DATA_DIR`, else `$HOME/.cache/vae`.
    pub fn from_env() -> Self {
        let user = std::env::var_os("VAE_DATA_DIR")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache").join("vae")))
            .unwrap_or_else(|| PathBuf::from(".vae-data"));
        DataDirs {
            user,
            system: PathBuf::from("/usr/share/datasets"),
        }
    }

    /// Where the decoded pixels of image folders are kept: `USER/cache/images`.
    pub fn image_cache(&self) -> PathBuf {
        self.user.join("cache").join("images")
    }

    /// Where a download of `name` goes.
    pub fn download_dir(&self, name: DatasetName) -> PathBuf {
        self.user.join(name.as_str())
    }
}

/// Where a dataset was found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    /// Compiled into the binary.
    Embedded,
    /// A directory holding the four files.
    Dir(PathBuf),
    /// Not found; the directories that were searched.
    Missing { searched: Vec<PathBuf> },
}

/// The four files of a dataset directory, by their canonical names (each may end in `.gz`).
pub const TRAIN_IMAGES: &str = "train-images-idx3-ubyte";
pub const TRAIN_LABELS: &str = "train-labels-idx1-ubyte";
pub const TEST_IMAGES: &str = "t10k-images-idx3-ubyte";
pub const TEST_LABELS: &str = "t10k-labels-idx1-ubyte";
pub const FILES: [&str; 4] = [TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS];

/// `dir/stem.gz` or `dir/stem`, whichever exists (gzip first, as distributed). Whatever
/// exists counts: a FIFO or a device there is then refused by name when it is opened, not
/// passed over as if missing.
fn find_file(dir: &Path, stem: &str) -> Option<PathBuf> {
    [format!("{stem}.gz"), stem.to_string()]
        .into_iter()
        .map(|name| dir.join(name))
        .find(|p| p.exists())
}

/// Whether `dir` holds all four files.
pub fn is_complete(dir: &Path) -> bool {
    FILES.iter().all(|f| find_file(dir, f).is_some())
}

/// Finds a named dataset: embedded, then the user's directory, then the system's.
pub fn locate(name: DatasetName, dirs: &DataDirs) -> Location {
    if name == DatasetName::MnistSample {
        return Location::Embedded;
    }
    let searched = vec![dirs.user.join(name.as_str()), dirs.system.join(name.as_str())];
    match searched.iter().find(|d| is_complete(d)) {
        Some(d) => Location::Dir(d.clone()),
        None => Location::Missing { searched },
    }
}

/// Loads a dataset that is present, as it is; a missing named dataset is an error that says
/// how to get it (see [`super::download`] to fetch it).
pub fn load(spec: &DatasetSpec, dirs: &DataDirs) -> Result<Dataset> {
    load_with(spec, dirs, &DataOptions::default(), &|_, _| {})
}

/// Loads a dataset that is present, read as `options` say: a folder of images is decoded
/// ([`folder::load`], reporting `progress`); IDX, NPY and CSV data must already be what the
/// options ask for.
pub fn load_with(
    spec: &DatasetSpec,
    dirs: &DataDirs,
    options: &DataOptions,
    progress: Progress<'_>,
) -> Result<Dataset> {
    let dataset = load_as_is(spec, dirs, options, progress)?;
    if !spec.is_arrays() && (options.labels.is_some() || options.label_column.is_some()) {
        let flag = if options.labels.is_some() {
            "labels"
        } else {
            "label-column"
        };
        return Err(Error::config(
            flag,
            format!("{}: labels are given this way only for NPY and CSV files", dataset.name),
        ));
    }
    let shape = dataset.shape();
    let asked = options.applied_to(shape);
    if asked != shape {
        return Err(Error::Dataset(format!(
            "{}: images are {shape}, not the {asked} asked for (only a folder of image files is resized or recoloured)",
            dataset.name
        )));
    }
    Ok(dataset)
}

fn load_as_is(spec: &DatasetSpec, dirs: &DataDirs, options: &DataOptions, progress: Progress<'_>) -> Result<Dataset> {
    let (name, dir) = match spec {
        DatasetSpec::File(path) => return arrays::load_file(path, options),
        DatasetSpec::Dir(dir) if spec.is_arrays() => return arrays::load_split_folder(dir, options),
        DatasetSpec::Dir(dir) if !is_complete(dir) => {
            return folder::load(dir, options, Some(&dirs.image_cache()), progress);
        }
        DatasetSpec::Dir(dir) => (dir.display().to_string(), dir.clone()),
        DatasetSpec::Named(name) => match locate(*name, dirs) {
            Location::Embedded => return embedded::load(),
            Location::Dir(dir) => (name.to_string(), dir),
            Location::Missing { searched } => {
                let searched: Vec<String> = searched.iter().map(|p| p.display().to_string()).collect();
                return Err(Error::Dataset(format!(
                    "dataset {name} not found in {}; run `vae data fetch {name}` or pass --dataset DIR",
                    searched.join(" or ")
                )));
            }
        },
    };
    let mut dataset = load_dir(&dir)?;
    dataset.name = name;
    dataset.class_names = class_names(&dataset.name, dataset.classes());
    Ok(dataset)
}

/// Loads the four IDX files of a directory.
pub fn load_dir(dir: &Path) -> Result<Dataset> {
    let file = |stem: &str| {
        find_file(dir, stem)
            .ok_or_else(|| Error::Dataset(format!("{}: no {stem} or {stem}.gz in this directory", dir.display())))
    };
    let split = |images: &str, labels: &str| -> Result<Split> {
        let (images_path, labels_path) = (file(images)?, file(labels)?);
        let images = read_images_sized(&images_path, (MNIST_SIDE, MNIST_SIDE))?;
        let labels = read_labels(&labels_path)?;
        if labels.len() != images.count {
            return Err(Error::CountMismatch {
                images: images_path,
                labels: labels_path,
                image_count: images.count,
                label_count: labels.len(),
            });
        }
        Ok(Split { images, labels })
    };
    Ok(Dataset::labelled(
        dir.display().to_string(),
        split(TRAIN_IMAGES, TRAIN_LABELS)?,
        split(TEST_IMAGES, TEST_LABELS)?,
    ))
}

/// Names of the `classes` classes of an IDX dataset: clothing for Fashion-MNIST's ten,
/// numbers otherwise (digits for MNIST's ten).
pub fn class_names(dataset: &str, classes: usize) -> Vec<String> {
    const FASHION: [&str; 10] = [
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ];
    if dataset.contains("fashion") && classes == FASHION.len() {
        FASHION.iter().map(|s| s.to_string()).collect()
    } else {
        (0..classes).map(|d| d.to_string()).collect()
    }
}
