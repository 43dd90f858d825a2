//! NPY arrays and CSV tables as a dataset.
//!
//! ```text
//! DATA.npy                  N x D vectors, N x H x W grey or N x H x W x C (C = 1 or 3) images
//! DATA.csv, DATA.csv.gz     one vector per row (see [`super::table`] for headers and labels)
//! DIR/train.npy, DIR/test.npy (or .csv, .csv.gz)      the two splits as given
//! DIR/train-labels.npy, DIR/test-labels.npy           their labels, if any
//! ```
//!
//! Labels come from `--labels FILE` (an NPY array of N integers, or text with one label per
//! line), from a CSV's label column, or, for a split folder, from the `-labels.npy` files
//! beside the data. Classes are the distinct labels, sorted (as numbers when they all are),
//! and named as written. A single file's test split holds out `--test-fraction` of each
//! class by a hash of the row's index ([`super::split`]).
//!
//! `uint8` arrays stay bytes (pixels, read divided by 255); every other dtype and every CSV
//! becomes `f32` values, used as they are.

use std::path::{Path, PathBuf};

use super::idx::MAX_DATA_BYTES;
use super::options::DataOptions;
use super::split::held_out;
use super::table::{self, Table};
use super::values::Values;
use super::{Dataset, ImageShape, Images, Split, npy};
use crate::error::{Error, Result};
use crate::model::MAX_SIDE;

/// The most classes labels may name: labels are bytes.
pub const MAX_CLASSES: usize = 256;

/// What file names hold split data: `train` and `test` with one of these endings.
const SPLIT_ENDINGS: [&str; 3] = [".npy", ".csv", ".csv.gz"];

/// The kind of array file `path` is by its name, if any.
pub fn kind_of(path: &Path) -> Option<FileKind> {
    let name = path.file_name()?.to_str()?.to_ascii_lowercase();
    if name.ends_with(".npy") {
        Some(FileKind::Npy)
    } else if name.ends_with(".csv") || name.ends_with(".csv.gz") {
        Some(FileKind::Csv)
    } else {
        None
    }
}

/// An NPY array or a CSV table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    Npy,
    Csv,
}

/// The `train` and `test` files of a split folder, if it holds them.
pub fn split_files(dir: &Path) -> Option<(PathBuf, PathBuf)> {
    let find = |stem: &str| {
        SPLIT_ENDINGS
            .iter()
            .map(|end| dir.join(format!("{stem}{end}")))
            .find(|p| p.is_file())
    };
    Some((find("train")?, find("test")?))
}

/// Items read from one file, before they are split and their labels made classes.
struct Items {
    shape: ImageShape,
    count: usize,
    values: Values,
    /// Each item's label as written, and where the labels came from.
    labels: Option<(Vec<String>, PathBuf)>,
    /// Class names the file itself gives (scikit-learn's first line), by label index.
    class_names: Option<Vec<String>>,
}

/// Loads one NPY or CSV file as a dataset, its test split held out by row hash.
pub fn load_file(path: &Path, options: &DataOptions) -> Result<Dataset> {
    options.validate()?;
    let mut items = read_items(path, options.label_column.as_deref())?;
    if let Some(labels) = &options.labels {
        if items.labels.is_some() {
            return Err(Error::config(
                "labels",
                format!(
                    "{} has a label column already; give --labels or --label-column, not both",
                    path.display()
                ),
            ));
        }
        items.labels = Some((read_labels(labels, items.count, path)?, labels.clone()));
    }
    let (labels, class_names) = classes(&[&items])?;
    let classes = class_names.as_ref().map_or(1, Vec::len);
    let keys: Vec<String> = (0..items.count).map(|i| format!("row {i}")).collect();
    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    let test = held_out(&keys, &labels[0], classes, options.test_fraction);
    let n_test = test.iter().filter(|&&t| t).count();
    if n_test == 0 || n_test == items.count {
        return Err(Error::data_file(
            path,
            format!(
                "{} items, too few to hold out a test share of {}",
                items.count, options.test_fraction
            ),
        ));
    }
    let (train, test) = partition(&items, &labels[0], &test);
    Ok(dataset(path, train, test, class_names))
}

/// Loads a folder's `train` and `test` files (see [`split_files`]).
pub fn load_split_folder(dir: &Path, options: &DataOptions) -> Result<Dataset> {
    if options.labels.is_some() {
        return Err(Error::config(
            "labels",
            format!(
                "{} holds train and test files: their labels go beside them as train-labels.npy and test-labels.npy",
                dir.display()
            ),
        ));
    }
    let Some((train_path, test_path)) = split_files(dir) else {
        return Err(Error::data_file(
            dir,
            "holds no train and test files (.npy, .csv or .csv.gz)",
        ));
    };
    let mut train = read_items(&train_path, options.label_column.as_deref())?;
    let mut test = read_items(&test_path, options.label_column.as_deref())?;
    for (items, path, stem) in [(&mut train, &train_path, "train"), (&mut test, &test_path, "test")] {
        let beside = dir.join(format!("{stem}-labels.npy"));
        if beside.exists() {
            if items.labels.is_some() {
                return Err(Error::data_file(
                    &beside,
                    format!("{} has a label column already", path.display()),
                ));
            }
            items.labels = Some((read_labels(&beside, items.count, path)?, beside));
        }
    }
    if train.shape != test.shape {
        return Err(Error::data_file(
            dir,
            format!(
                "{} holds {} items, {} holds {}",
                train_path.display(),
                train.shape,
                test_path.display(),
                test.shape
            ),
        ));
    }
    if train.labels.is_some() != test.labels.is_some() {
        return Err(Error::data_file(dir, "one split has labels and the other has none"));
    }
    if matches!(
        (&train.values, &test.values),
        (Values::Bytes(_), Values::Floats(_)) | (Values::Floats(_), Values::Bytes(_))
    ) {
        return Err(Error::data_file(
            dir,
            "one split is uint8 and the other is not: the two must hold the same kind of values",
        ));
    }
    let (labels, class_names) = classes(&[&train, &test])?;
    let split = |items: Items, labels: Vec<u8>| Split {
        images: Images {
            count: items.count,
            height: items.shape.height,
            width: items.shape.width,
            channels: items.shape.channels,
            values: items.values,
        },
        labels,
    };
    let [train_labels, test_labels]: [Vec<u8>; 2] = labels.try_into().expect("two splits");
    Ok(dataset(
        dir,
        split(train, train_labels),
        split(test, test_labels),
        class_names,
    ))
}

fn dataset(path: &Path, train: Split, test: Split, class_names: Option<Vec<String>>) -> Dataset {
    Dataset {
        name: path.display().to_string(),
        train,
        test,
        labelled: class_names.is_some(),
        class_names: class_names.unwrap_or_else(|| vec!["all".into()]),
    }
}

/// Reads an NPY or CSV file's items.
fn read_items(path: &Path, label_column: Option<&str>) -> Result<Items> {
    match kind_of(path) {
        Some(FileKind::Npy) => {
            if label_column.is_some() {
                return Err(Error::config(
                    "label-column",
                    format!("{} is an NPY array: its labels come from --labels FILE", path.display()),
                ));
            }
            let array = npy::read(path)?;
            let (count, shape) = array_shape(&array.shape).map_err(|p| Error::data_file(path, p))?;
            Ok(Items {
                shape,
                count,
                values: array.values,
                labels: None,
                class_names: None,
            })
        }
        Some(FileKind::Csv) => {
            let Table {
                columns,
                rows,
                values,
                labels,
                class_names,
            } = table::read(path, label_column)?;
            Ok(Items {
                shape: ImageShape::vector(columns.len()),
                count: rows,
                values: Values::Floats(values),
                labels: labels.map(|(_, cells)| (cells, path.to_path_buf())),
                class_names,
            })
        }
        None => Err(Error::data_file(path, "is not a dataset file: .npy, .csv or .csv.gz")),
    }
}

/// The item count and item shape of an array of `shape`.
fn array_shape(shape: &[usize]) -> std::result::Result<(usize, ImageShape), String> {
    let found = npy::shape_text(shape);
    let item = match *shape {
        [_, d] => ImageShape::vector(d),
        [_, height, width] => ImageShape {
            height,
            width,
            channels: 1,
        },
        [_, height, width, channels @ (1 | 3)] => ImageShape {
            height,
            width,
            channels,
        },
        [_, _, _, c] => {
            return Err(format!(
                "shape {found}: images of {c} channels; N x H x W x C images must be grey (C = 1) or RGB (C = 3)"
            ));
        }
        _ => {
            return Err(format!(
                "shape {found}: data must be N x D vectors, N x H x W grey images or N x H x W x C images"
            ));
        }
    };
    let count = shape[0];
    if count == 0 || item.values() == 0 {
        return Err(format!("shape {found} holds no values"));
    }
    if !item.is_vector() && (item.height > MAX_SIDE || item.width > MAX_SIDE) {
        return Err(format!("shape {found}: images larger than {MAX_SIDE} on a side"));
    }
    Ok((count, item))
}

/// `count` labels for the items of `data` from `path`: an NPY array of N integers (N or
/// N x 1), or text with one label per line.
fn read_labels(path: &Path, count: usize, data: &Path) -> Result<Vec<String>> {
    let bad = |problem: String| Error::data_file(path, problem);
    let labels: Vec<String> = match kind_of(path) {
        Some(FileKind::Npy) => {
            let array = npy::read(path)?;
            if !matches!(array.shape[..], [_] | [_, 1]) {
                return Err(bad(format!(
                    "shape {}: labels must be one integer per item (N or N x 1)",
                    npy::shape_text(&array.shape)
                )));
            }
            // Labels are numbers as written: a uint8 array's bytes are not pixels here.
            let numbers: Vec<f32> = match array.values {
                Values::Bytes(b) => b.into_iter().map(f32::from).collect(),
                Values::Floats(f) => f,
            };
            let mut labels = Vec::with_capacity(numbers.len());
            for (i, &v) in numbers.iter().enumerate() {
                if v.fract() != 0.0 {
                    return Err(bad(format!("label {i} is {v}: labels must be integers")));
                }
                labels.push(format!("{v}"));
            }
            labels
        }
        _ => {
            let (file, size) = crate::files::open_regular(path)?;
            if size > MAX_DATA_BYTES {
                return Err(bad(format!("more than {} MiB of labels", MAX_DATA_BYTES >> 20)));
            }
            let text = std::io::read_to_string(file).map_err(|e| Error::io(path, e))?;
            let mut labels = Vec::new();
            for (n, line) in text.lines().enumerate() {
                let line = line.trim();
                if line.is_empty() {
                    return Err(bad(format!(
                        "line {} is empty: one label per line, no blank lines",
                        n + 1
                    )));
                }
                labels.push(line.to_string());
            }
            labels
        }
    };
    if labels.len() != count {
        return Err(bad(format!(
            "{} labels for the {count} items of {}",
            labels.len(),
            data.display()
        )));
    }
    Ok(labels)
}

/// Each set's labels as class indices, and the class names (`None` when unlabelled).
type Classes = (Vec<Vec<u8>>, Option<Vec<String>>);

/// The labels of `sets` as [`Classes`]: the distinct labels of all sets, sorted as numbers
/// when they all are, else as text; a file that names its classes keeps its own order and
/// names.
fn classes(sets: &[&Items]) -> Result<Classes> {
    if sets.iter().all(|s| s.labels.is_none()) {
        return Ok((sets.iter().map(|s| vec![0; s.count]).collect(), None));
    }
    if let Some(names) = sets.iter().find_map(|s| s.class_names.clone()) {
        // The reader checked each label is an index below names.len().
        let indices = sets
            .iter()
            .map(|s| {
                let cells = s.labels.as_ref().map_or(&[][..], |(c, _)| c);
                cells.iter().map(|c| c.parse::<u8>().unwrap_or(0)).collect()
            })
            .collect();
        if names.len() > MAX_CLASSES {
            return Err(Error::Dataset(format!(
                "{} classes: at most {MAX_CLASSES}",
                names.len()
            )));
        }
        return Ok((indices, Some(names)));
    }
    let all = || sets.iter().flat_map(|s| s.labels.iter().flat_map(|(c, _)| c.iter()));
    let mut names: Vec<&String> = all().collect();
    let numeric = names.iter().all(|n| n.parse::<f64>().is_ok());
    if numeric {
        names.sort_by(|a, b| {
            a.parse::<f64>()
                .unwrap_or(0.0)
                .total_cmp(&b.parse::<f64>().unwrap_or(0.0))
        });
    } else {
        names.sort();
    }
    names.dedup();
    if names.len() > MAX_CLASSES {
        let from = sets
            .iter()
            .find_map(|s| s.labels.as_ref().map(|(_, p)| p.clone()))
            .unwrap_or_default();
        return Err(Error::data_file(
            from,
            format!(
                "{} distinct labels: at most {MAX_CLASSES} classes (is this really a label column?)",
                names.len()
            ),
        ));
    }
    let names: Vec<String> = names.into_iter().cloned().collect();
    let lookup: std::collections::HashMap<&str, u8> =
        names.iter().enumerate().map(|(i, n)| (n.as_str(), i as u8)).collect();
    let index = |cell: &String| lookup.get(cell.as_str()).copied().unwrap_or(0);
    let indices = sets
        .iter()
        .map(|s| match &s.labels {
            Some((cells, _)) => cells.iter().map(index).collect(),
            None => vec![0; s.count],
        })
        .collect();
    Ok((indices, Some(names)))
}

/// The items split by `test` (true: test), each side in row order.
fn partition(items: &Items, labels: &[u8], test: &[bool]) -> (Split, Split) {
    let per = items.shape.values();
    let side = |want: bool| {
        let rows: Vec<usize> = (0..items.count).filter(|&i| test[i] == want).collect();
        let values = match &items.values {
            Values::Bytes(b) => Values::Bytes(rows.iter().flat_map(|&i| &b[i * per..(i + 1) * per]).copied().collect()),
            Values::Floats(f) => {
                Values::Floats(rows.iter().flat_map(|&i| &f[i * per..(i + 1) * per]).copied().collect())
            }
        };
        Split {
            images: Images {
                count: rows.len(),
                height: items.shape.height,
                width: items.shape.width,
                channels: items.shape.channels,
                values,
            },
            labels: rows.iter().map(|&i| labels[i]).collect(),
        }
    };
    (side(false), side(true))
}
