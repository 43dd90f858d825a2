//! Items to put through a trained model (`vae encode`, `vae score`): anything `--dataset`
//! names (both its splits, or one), or image files given one by one, each read at the
//! model's size and colour, each with a name that says where it came from.

use std::path::Path;

use super::catalog::{DataDirs, DatasetSpec, load_with};
use super::folder::{self, IMAGE_EXTENSIONS, Progress};
use super::options::DataOptions;
use super::{ImageShape, Images, Split, Values};
use crate::error::{Error, Result};

/// Which of a dataset's splits to take.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Which {
    /// The training items, then the test items.
    #[default]
    All,
    Train,
    Test,
}

/// Items with their names and class names.
#[derive(Clone, Debug)]
pub struct NamedItems {
    /// The items, with labels (0 where there are none).
    pub split: Split,
    /// Each item's name: `train:17`, `test:3` (its place in a dataset's split), or the path
    /// of an image file.
    pub names: Vec<String>,
    /// Each item's class name; `None` when unlabelled.
    pub labels: Option<Vec<String>>,
}

/// Whether `path` names one image file (by its name).
pub fn is_image_file(path: &Path) -> bool {
    path.is_file()
        && path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| IMAGE_EXTENSIONS.iter().any(|x| x.eq_ignore_ascii_case(e)))
}

/// The items of `inputs`, in order, as a model of `shape` reads them: each input is a
/// dataset ([`DatasetSpec`], read with `options`, `which` of its splits) or an image file.
pub fn load(
    inputs: &[String],
    shape: ImageShape,
    options: &DataOptions,
    which: Which,
    dirs: &DataDirs,
    progress: Progress<'_>,
) -> Result<NamedItems> {
    let mut parts = Vec::new();
    let mut files = Vec::new();
    for input in inputs {
        if is_image_file(Path::new(input)) {
            files.push(input.clone());
            continue;
        }
        if !files.is_empty() {
            parts.push(image_files(&std::mem::take(&mut files), shape)?);
        }
        let spec: DatasetSpec = input.parse()?;
        let data = load_with(&spec, dirs, options, progress)?;
        let mut sides = Vec::new();
        if which != Which::Test {
            sides.push(("train", data.train));
        }
        if which != Which::Train {
            sides.push(("test", data.test));
        }
        for (side, split) in sides {
            let names = (0..split.len()).map(|i| format!("{side}:{i}")).collect();
            let labels = data.labelled.then(|| {
                split
                    .labels
                    .iter()
                    .map(|&l| data.class_names[l as usize].clone())
                    .collect()
            });
            parts.push(NamedItems { split, names, labels });
        }
    }
    if !files.is_empty() {
        parts.push(image_files(&files, shape)?);
    }
    concat(parts, shape)
}

/// Image files decoded at `shape`, unlabelled.
fn image_files(paths: &[String], shape: ImageShape) -> Result<NamedItems> {
    if shape.is_vector() {
        return Err(Error::data_file(&paths[0], "is an image, and this model takes vectors"));
    }
    let mut pixels = vec![0u8; paths.len() * shape.values()];
    for (path, out) in paths.iter().zip(pixels.chunks_exact_mut(shape.values())) {
        folder::decode_into(Path::new(path), shape, out)?;
    }
    Ok(NamedItems {
        split: Split {
            images: Images {
                count: paths.len(),
                height: shape.height,
                width: shape.width,
                channels: shape.channels,
                values: Values::Bytes(pixels),
            },
            labels: vec![0; paths.len()],
        },
        names: paths.to_vec(),
        labels: None,
    })
}

/// The parts one after another. Labels are kept only when every part has them; bytes and
/// floats together become floats.
fn concat(parts: Vec<NamedItems>, shape: ImageShape) -> Result<NamedItems> {
    let labelled = !parts.is_empty() && parts.iter().all(|p| p.labels.is_some());
    let all_bytes = parts.iter().all(|p| p.split.images.values.as_bytes().is_some());
    let count: usize = parts.iter().map(|p| p.split.len()).sum();
    if count == 0 {
        return Err(Error::Dataset("no items to read".into()));
    }
    let values = if all_bytes {
        Values::Bytes(
            parts
                .iter()
                .flat_map(|p| p.split.images.values.as_bytes().unwrap_or(&[]))
                .copied()
                .collect(),
        )
    } else {
        let mut floats = Vec::with_capacity(count * shape.values());
        for p in &parts {
            match &p.split.images.values {
                Values::Bytes(b) => floats.extend(b.iter().map(|&v| v as f32 / 255.0)),
                Values::Floats(f) => floats.extend_from_slice(f),
            }
        }
        Values::Floats(floats)
    };
    let (mut names, mut labels, mut label_names) = (Vec::new(), Vec::new(), Vec::new());
    for part in parts {
        names.extend(part.names);
        labels.extend(part.split.labels);
        if let Some(l) = part.labels {
            label_names.extend(l);
        }
    }
    Ok(NamedItems {
        split: Split {
            images: Images {
                count,
                height: shape.height,
                width: shape.width,
                channels: shape.channels,
                values,
            },
            labels,
        },
        names,
        labels: labelled.then_some(label_names),
    })
}
