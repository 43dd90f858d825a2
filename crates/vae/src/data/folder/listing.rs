//! Which files a folder holds, their classes, and which split each goes to (see [the
//! folder module](super) for the rules).

use std::fs;
use std::path::{Path, PathBuf};

use crate::data::split::held_out;
use crate::error::{Error, Result};

/// File names this reader takes for images (compared without case).
pub const IMAGE_EXTENSIONS: [&str; 6] = ["png", "jpg", "jpeg", "gif", "bmp", "webp"];
/// The most classes (sub-folders) a labelled folder may have: labels are bytes.
pub const MAX_CLASSES: usize = 256;
/// The most images one folder may hold.
pub const MAX_IMAGES: usize = 10_000_000;
/// How deep below a class folder images are looked for (links may make loops).
const MAX_DEPTH: usize = 16;
/// The names of the sub-folders that hold given splits.
pub const TRAIN_DIR: &str = "train";
pub const TEST_DIR: &str = "test";

/// One image file and its class.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Item {
    pub path: PathBuf,
    /// The path below the dataset folder, `/`-separated: what the split hashes.
    pub relative: String,
    pub label: u8,
}

/// What a folder holds, before any image is decoded.
#[derive(Clone, Debug, PartialEq)]
pub struct Listing {
    /// Class names in label order (sub-folder names, sorted); empty when unlabelled.
    pub classes: Vec<String>,
    pub train: Vec<Item>,
    pub test: Vec<Item>,
    /// Whether `train/` and `test/` gave the split (else it was drawn by hash).
    pub split_given: bool,
    /// Files passed over: not images by their names.
    pub skipped: usize,
}

fn is_hidden(path: &Path) -> bool {
    path.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.'))
}

fn is_image_name(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.iter().any(|x| x.eq_ignore_ascii_case(e)))
}

/// Lists `root`: its classes, and which file goes to which split.
pub fn list(root: &Path, test_fraction: f64) -> Result<Listing> {
    let (train_dir, test_dir) = (root.join(TRAIN_DIR), root.join(TEST_DIR));
    let mut skipped = 0;
    let listing = if train_dir.is_dir() && test_dir.is_dir() {
        let train = list_split(root, &train_dir, &mut skipped)?;
        let test = list_split(root, &test_dir, &mut skipped)?;
        let mut classes: Vec<String> = train.iter().chain(&test).filter_map(|(_, c)| c.clone()).collect();
        classes.sort();
        classes.dedup();
        let labelled = |files: Vec<(String, Option<String>)>| -> Result<Vec<Item>> {
            if files.iter().any(|(_, c)| c.is_none()) && !classes.is_empty() {
                return Err(Error::data_file(
                    root,
                    "one split has class sub-folders and the other has none",
                ));
            }
            Ok(order_by_name(items(root, files, &classes)))
        };
        Listing {
            train: labelled(train)?,
            test: labelled(test)?,
            classes,
            split_given: true,
            skipped,
        }
    } else {
        let files = list_split(root, root, &mut skipped)?;
        let mut classes: Vec<String> = files.iter().filter_map(|(_, c)| c.clone()).collect();
        classes.dedup();
        let (train, test) = split_by_hash(items(root, files, &classes), classes.len().max(1), test_fraction);
        Listing {
            classes,
            train,
            test,
            split_given: false,
            skipped,
        }
    };
    if listing.train.is_empty() && listing.test.is_empty() {
        return Err(Error::data_file(
            root,
            format!(
                "holds no images ({} other files; images end in .{})",
                listing.skipped,
                IMAGE_EXTENSIONS.join(", .")
            ),
        ));
    }
    for (items, which) in [(&listing.train, "training"), (&listing.test, "test")] {
        if items.is_empty() {
            return Err(Error::data_file(
                root,
                format!(
                    "no {which} images: {} in all, too few to hold out a test share of {test_fraction}",
                    listing.train.len() + listing.test.len()
                ),
            ));
        }
    }
    Ok(listing)
}

/// The image files of one split folder with their classes (sorted by path): the images of
/// each sub-folder (at any depth) as its class, or the folder's own images, unlabelled.
fn list_split(root: &Path, dir: &Path, skipped: &mut usize) -> Result<Vec<(String, Option<String>)>> {
    let mut top = Vec::new();
    let mut classes = Vec::new();
    for path in sorted_entries(dir)? {
        if path.is_dir() {
            let mut files = Vec::new();
            walk(&path, 0, &mut files, skipped)?;
            if !files.is_empty() {
                let name = path
                    .file_name()
                    .expect("a listed entry has a name")
                    .to_string_lossy()
                    .into_owned();
                classes.push((name, files));
            }
        } else if is_image_name(&path) {
            top.push(path);
        } else {
            *skipped += 1;
        }
    }
    if !top.is_empty() && !classes.is_empty() {
        return Err(Error::data_file(
            dir,
            format!(
                "holds images ({}) beside class sub-folders ({}): put every image in a class folder, or none",
                relative(root, &top[0]),
                classes[0].0
            ),
        ));
    }
    if classes.len() > MAX_CLASSES {
        return Err(Error::data_file(
            dir,
            format!("{} class sub-folders: at most {MAX_CLASSES}", classes.len()),
        ));
    }
    let mut out: Vec<(String, Option<String>)> = top.iter().map(|p| (relative(root, p), None)).collect();
    for (name, files) in classes {
        out.extend(files.iter().map(|p| (relative(root, p), Some(name.clone()))));
    }
    if out.len() > MAX_IMAGES {
        return Err(Error::data_file(
            dir,
            format!("{} images: at most {MAX_IMAGES}", out.len()),
        ));
    }
    Ok(out)
}

/// The entries of `dir` that are not hidden, sorted by name.
fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut paths = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let path = entry.map_err(|e| Error::io(dir, e))?.path();
        if !is_hidden(&path) {
            paths.push(path);
        }
    }
    paths.sort();
    Ok(paths)
}

/// Collects the image files at and below `dir`, in path order.
fn walk(dir: &Path, depth: usize, files: &mut Vec<PathBuf>, skipped: &mut usize) -> Result<()> {
    if depth > MAX_DEPTH {
        return Err(Error::data_file(
            dir,
            format!("folders nested more than {MAX_DEPTH} deep (a link loop?)"),
        ));
    }
    for path in sorted_entries(dir)? {
        if path.is_dir() {
            walk(&path, depth + 1, files, skipped)?;
        } else if is_image_name(&path) {
            files.push(path);
            if files.len() > MAX_IMAGES {
                return Err(Error::data_file(dir, format!("more than {MAX_IMAGES} images")));
            }
        } else {
            *skipped += 1;
        }
    }
    Ok(())
}

/// `path` below `root`, `/`-separated.
fn relative(root: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(root).unwrap_or(path);
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// The files as items, labelled by their classes' places in `classes` (sorted).
fn items(root: &Path, files: Vec<(String, Option<String>)>, classes: &[String]) -> Vec<Item> {
    files
        .into_iter()
        .map(|(relative, class)| Item {
            path: root.join(&relative),
            label: class.map_or(0, |c| classes.binary_search(&c).expect("a listed class") as u8),
            relative,
        })
        .collect()
}

/// Items by file name, then by path.
fn order_by_name(mut items: Vec<Item>) -> Vec<Item> {
    items.sort_by_cached_key(|i| {
        let name = i.relative.rsplit('/').next().unwrap_or_default().to_string();
        (name, i.relative.clone())
    });
    items
}

/// Holds out `test_fraction` of each class by [`held_out`], each in name order.
fn split_by_hash(items: Vec<Item>, classes: usize, test_fraction: f64) -> (Vec<Item>, Vec<Item>) {
    let keys: Vec<&str> = items.iter().map(|i| i.relative.as_str()).collect();
    let labels: Vec<u8> = items.iter().map(|i| i.label).collect();
    let test = held_out(&keys, &labels, classes, test_fraction);
    let (test, train): (Vec<_>, Vec<_>) = items.into_iter().zip(test).partition(|(_, t)| *t);
    let unzip = |v: Vec<(Item, bool)>| v.into_iter().map(|(i, _)| i).collect();
    (order_by_name(unzip(train)), order_by_name(unzip(test)))
}
