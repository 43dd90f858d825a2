//! A folder of image files as a dataset.
//!
//! ```text
//! DIR/cat/001.png, DIR/dog/002.jpg ...        labels from the sub-folders' names
//! DIR/001.png, DIR/002.png ...                unlabelled
//! DIR/train/..., DIR/test/...                 the two splits as given, each as above
//! ```
//!
//! Without `train/` and `test/`, a share of each class (`--test-fraction`) is held out: the
//! items whose relative paths hash lowest, so the split depends on the files' names alone,
//! never on the order the file system lists them in, and a file keeps its side when others
//! are added. Within a split, items are ordered by file name, then by path: that interleaves
//! classes whose files are numbered alike (`cat/001.png`, `dog/001.png`, `cat/002.png`, ...),
//! and a dataset written out as `CLASS/INDEX.png` with zero-padded indices keeps its order.
//!
//! Every image is decoded to 8-bit RGB, transparency composited onto white (as a page shows
//! it), resized to `--image-size` if asked (scaled to cover the size, keeping its aspect
//! ratio, then cropped to the centre; a triangle filter, which averages when shrinking), then
//! kept as grey (the luma, Rec. 709 weights) or RGB bytes.

use std::fs;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use image::imageops::FilterType;
use image::{DynamicImage, ImageReader, Limits, RgbImage};
use rayon::prelude::*;
use sha2::{Digest, Sha256};

use super::idx::MAX_DATA_BYTES;
use super::options::{ColorMode, DataOptions, ImageSize};
use super::{Dataset, ImageShape, Images, Split};
use crate::error::{Error, Result};
use crate::files::{read_limited, write_atomic};

/// File names this reader takes for images (compared without case).
pub const IMAGE_EXTENSIONS: [&str; 6] = ["png", "jpg", "jpeg", "gif", "bmp", "webp"];
/// The largest image file read: far above any image worth training on.
pub const MAX_IMAGE_FILE_BYTES: u64 = 64 << 20;
/// The largest side and decoded size of one image, whatever its file claims.
pub const MAX_DECODED_SIDE: u32 = 16_384;
pub const MAX_DECODED_BYTES: u64 = 512 << 20;
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

/// Whether `dir` looks like an image folder: it holds an image file or a sub-folder.
pub fn is_image_folder(dir: &Path) -> bool {
    fs::read_dir(dir).is_ok_and(|mut entries| {
        entries.any(|e| e.is_ok_and(|e| !is_hidden(&e.path()) && (e.path().is_dir() || is_image_name(&e.path()))))
    })
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
                return Err(Error::DataFile {
                    path: root.to_path_buf(),
                    problem: "one split has class sub-folders and the other has none".into(),
                });
            }
            Ok(order_by_name(items(root, files, &classes)?))
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
        let (train, test) = split_by_hash(items(root, files, &classes)?, classes.len().max(1), test_fraction);
        Listing {
            classes,
            train,
            test,
            split_given: false,
            skipped,
        }
    };
    if listing.train.is_empty() && listing.test.is_empty() {
        return Err(Error::DataFile {
            path: root.to_path_buf(),
            problem: format!(
                "holds no images ({} other files; images end in .{})",
                listing.skipped,
                IMAGE_EXTENSIONS.join(", .")
            ),
        });
    }
    for (items, which) in [(&listing.train, "training"), (&listing.test, "test")] {
        if items.is_empty() {
            return Err(Error::DataFile {
                path: root.to_path_buf(),
                problem: format!(
                    "no {which} images: {} in all, too few to hold out a test share of {test_fraction}",
                    listing.train.len() + listing.test.len()
                ),
            });
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
        return Err(Error::DataFile {
            path: dir.to_path_buf(),
            problem: format!(
                "holds images ({}) beside class sub-folders ({}): put every image in a class folder, or none",
                relative(root, &top[0]),
                classes[0].0
            ),
        });
    }
    if classes.len() > MAX_CLASSES {
        return Err(Error::DataFile {
            path: dir.to_path_buf(),
            problem: format!("{} class sub-folders: at most {MAX_CLASSES}", classes.len()),
        });
    }
    let mut out: Vec<(String, Option<String>)> = top.iter().map(|p| (relative(root, p), None)).collect();
    for (name, files) in classes {
        out.extend(files.iter().map(|p| (relative(root, p), Some(name.clone()))));
    }
    if out.len() > MAX_IMAGES {
        return Err(Error::DataFile {
            path: dir.to_path_buf(),
            problem: format!("{} images: at most {MAX_IMAGES}", out.len()),
        });
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
        return Err(Error::DataFile {
            path: dir.to_path_buf(),
            problem: format!("folders nested more than {MAX_DEPTH} deep (a link loop?)"),
        });
    }
    for path in sorted_entries(dir)? {
        if path.is_dir() {
            walk(&path, depth + 1, files, skipped)?;
        } else if is_image_name(&path) {
            files.push(path);
            if files.len() > MAX_IMAGES {
                return Err(Error::DataFile {
                    path: dir.to_path_buf(),
                    problem: format!("more than {MAX_IMAGES} images"),
                });
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

fn items(root: &Path, files: Vec<(String, Option<String>)>, classes: &[String]) -> Result<Vec<Item>> {
    Ok(files
        .into_iter()
        .map(|(relative, class)| Item {
            path: root.join(&relative),
            label: class.map_or(0, |c| classes.binary_search(&c).expect("a listed class") as u8),
            relative,
        })
        .collect())
}

/// The split's hash of an item: the first 8 bytes of SHA-256 of its relative path.
fn path_hash(relative: &str) -> u64 {
    let digest = Sha256::digest(relative.as_bytes());
    u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"))
}

/// Items by file name, then by path.
fn order_by_name(mut items: Vec<Item>) -> Vec<Item> {
    items.sort_by_cached_key(|i| {
        let name = i.relative.rsplit('/').next().unwrap_or_default().to_string();
        (name, i.relative.clone())
    });
    items
}

/// Holds out `test_fraction` of each class (rounded, at least one of a class of two or
/// more, never the last one): those whose paths hash lowest.
fn split_by_hash(items: Vec<Item>, classes: usize, test_fraction: f64) -> (Vec<Item>, Vec<Item>) {
    let mut by_class: Vec<Vec<Item>> = vec![Vec::new(); classes];
    let mut items = items;
    items.sort_by_cached_key(|i| (path_hash(&i.relative), i.relative.clone()));
    for item in items {
        by_class[item.label as usize].push(item);
    }
    let (mut train, mut test) = (Vec::new(), Vec::new());
    for mut class in by_class {
        let n = class.len();
        let held = if n < 2 {
            0
        } else {
            ((n as f64 * test_fraction).round() as usize).clamp(1, n - 1)
        };
        let rest = class.split_off(held);
        test.extend(class);
        train.extend(rest);
    }
    (order_by_name(train), order_by_name(test))
}

/// One decoded image: RGB bytes, its size, and whether its file holds colour.
struct Decoded {
    rgb: Vec<u8>,
    height: usize,
    width: usize,
    color: bool,
}

/// Decodes one file as [the module](self) describes, resized to `size` if given.
fn decode(path: &Path, size: Option<ImageSize>) -> Result<Decoded> {
    let bytes = read_limited(path, MAX_IMAGE_FILE_BYTES)?;
    let problem = |what: String| Error::DataFile {
        path: path.to_path_buf(),
        problem: what,
    };
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| Error::io(path, e))?;
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_DECODED_SIDE);
    limits.max_image_height = Some(MAX_DECODED_SIDE);
    limits.max_alloc = Some(MAX_DECODED_BYTES);
    reader.limits(limits);
    if reader.format().is_none() {
        return Err(problem(
            "not an image this tool reads (PNG, JPEG, GIF, BMP, WebP)".into(),
        ));
    }
    let image = reader
        .decode()
        .map_err(|e| problem(format!("not a readable image: {e}")))?;
    let color = image.color().has_color();
    let mut rgb = on_white(&image);
    if let Some(size) = size {
        rgb = DynamicImage::ImageRgb8(rgb)
            .resize_to_fill(size.width as u32, size.height as u32, FilterType::Triangle)
            .into_rgb8();
    }
    Ok(Decoded {
        height: rgb.height() as usize,
        width: rgb.width() as usize,
        color,
        rgb: rgb.into_raw(),
    })
}

/// Decodes one file in full (a truncated one fails here) and returns its size, height first.
pub fn decode_size(path: &Path) -> Result<(usize, usize)> {
    decode(path, None).map(|d| (d.height, d.width))
}

/// `image` as RGB, its transparency composited onto white.
fn on_white(image: &DynamicImage) -> RgbImage {
    if !image.color().has_alpha() {
        return image.to_rgb8();
    }
    let rgba = image.to_rgba8();
    let mut out = RgbImage::new(rgba.width(), rgba.height());
    for (o, p) in out.pixels_mut().zip(rgba.pixels()) {
        let alpha = p[3] as u32;
        for c in 0..3 {
            o[c] = ((p[c] as u32 * alpha + 255 * (255 - alpha) + 127) / 255) as u8;
        }
    }
    out
}

/// The luma of an RGB pixel, Rec. 709 weights (exact for grey: they sum to one).
fn luma(p: &[u8]) -> u8 {
    ((2126 * p[0] as u32 + 7152 * p[1] as u32 + 722 * p[2] as u32 + 5000) / 10_000) as u8
}

/// Progress of decoding: images done, of how many.
pub type Progress<'a> = &'a (dyn Fn(usize, usize) + Sync);

/// Loads the folder at `root` as [the module](self) describes. With a `cache` folder, the
/// decoded pixels are kept there in one packed file named by the SHA-256 of every source
/// file's path, label and content and of the options, and read back from it while none of
/// those change: a second run starts without decoding (the files are still read, to hash
/// them). A cache file that is missing, short or stale is decoded afresh and replaced; one
/// that cannot be written costs only the time.
pub fn load(root: &Path, options: &DataOptions, cache: Option<&Path>, progress: Progress<'_>) -> Result<Dataset> {
    options.validate()?;
    let listing = list(root, options.test_fraction)?;
    let total = listing.train.len() + listing.test.len();
    let cached = match cache {
        Some(dir) => Some(dir.join(format!("{}.images", cache_key(&listing, options)?))),
        None => None,
    };
    let from_cache = cached.as_deref().and_then(|path| read_cache(path, total));
    let (shape, pixels) = match from_cache {
        Some(found) => found,
        None => {
            let decoded = decode_all(root, &listing, options, progress)?;
            if let Some(path) = &cached {
                let _ = write_cache(path, decoded.0, &decoded.1);
            }
            decoded
        }
    };
    // The training split's pixels come first: the test split's are split off, not copied.
    let mut train_pixels = pixels;
    let n_train = listing.train.len();
    let test_pixels = train_pixels.split_off(n_train * shape.values());
    let split = |count: usize, pixels: Vec<u8>, items: &[Item]| Split {
        images: Images {
            count,
            height: shape.height,
            width: shape.width,
            channels: shape.channels,
            pixels,
        },
        labels: items.iter().map(|i| i.label).collect(),
    };
    let labelled = !listing.classes.is_empty();
    Ok(Dataset {
        name: root.display().to_string(),
        train: split(n_train, train_pixels, &listing.train),
        test: split(total - n_train, test_pixels, &listing.test),
        class_names: if labelled { listing.classes } else { vec!["all".into()] },
        labelled,
    })
}

/// What identifies a folder's decoded pixels: the format, the options, and every item's
/// path, label and content, in order.
fn cache_key(listing: &Listing, options: &DataOptions) -> Result<String> {
    let items: Vec<&Item> = listing.train.iter().chain(&listing.test).collect();
    let digests: Vec<[u8; 32]> = items
        .par_iter()
        .map(|item| Ok(Sha256::digest(read_limited(&item.path, MAX_IMAGE_FILE_BYTES)?).into()))
        .collect::<Result<_>>()?;
    let mut key = Sha256::new();
    key.update(CACHE_MAGIC);
    key.update(format!(
        "{:?} {:?} {}\n",
        options.image_size,
        options.color,
        listing.train.len()
    ));
    for (item, digest) in items.iter().zip(&digests) {
        key.update(item.relative.as_bytes());
        key.update([0, item.label]);
        key.update(digest);
    }
    Ok(key.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// The first bytes of a cache file; a new layout takes a new one.
const CACHE_MAGIC: &[u8; 8] = b"VAEIMG01";
/// Magic, then height, width and channels (u32) and the count (u64), little-endian.
const CACHE_HEADER: usize = 8 + 12 + 8;

/// The shape and pixels of a cache file of `count` images, or `None` if it is not one.
fn read_cache(path: &Path, count: usize) -> Option<(ImageShape, Vec<u8>)> {
    let bytes = read_limited(path, MAX_DATA_BYTES + CACHE_HEADER as u64).ok()?;
    if bytes.len() < CACHE_HEADER || &bytes[..8] != CACHE_MAGIC {
        return None;
    }
    let word = |i: usize| u32::from_le_bytes(bytes[8 + 4 * i..12 + 4 * i].try_into().expect("4 bytes")) as usize;
    let shape = ImageShape {
        height: word(0),
        width: word(1),
        channels: word(2),
    };
    let stored = u64::from_le_bytes(bytes[20..28].try_into().expect("8 bytes"));
    let fits = stored == count as u64
        && matches!(shape.channels, 1 | 3)
        && (shape.values() as u64).checked_mul(stored) == Some((bytes.len() - CACHE_HEADER) as u64);
    fits.then(|| {
        let mut pixels = bytes;
        pixels.drain(..CACHE_HEADER);
        (shape, pixels)
    })
}

fn write_cache(path: &Path, shape: ImageShape, pixels: &[u8]) -> Result<()> {
    let dir = path.parent().expect("a cache file is in a folder");
    fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let mut bytes = Vec::with_capacity(CACHE_HEADER + pixels.len());
    bytes.extend_from_slice(CACHE_MAGIC);
    for v in [shape.height, shape.width, shape.channels] {
        bytes.extend_from_slice(&(v as u32).to_le_bytes());
    }
    bytes.extend_from_slice(&((pixels.len() / shape.values().max(1)) as u64).to_le_bytes());
    bytes.extend_from_slice(pixels);
    write_atomic(path, &bytes)
}

/// Decodes every item of `listing`, training split first: their shape and pixels.
fn decode_all(
    root: &Path,
    listing: &Listing,
    options: &DataOptions,
    progress: Progress<'_>,
) -> Result<(ImageShape, Vec<u8>)> {
    let all: Vec<&Item> = listing.train.iter().chain(&listing.test).collect();
    let total = all.len();
    // The first image gives the size, so the memory a folder needs is known before the rest
    // is decoded.
    let first = decode(&all[0].path, options.image_size)?;
    let bytes_each = (first.height * first.width * 3) as u64;
    if bytes_each.saturating_mul(total as u64) > MAX_DATA_BYTES {
        return Err(Error::DataFile {
            path: root.to_path_buf(),
            problem: format!(
                "{total} images of {}x{} would take more than {} MiB: pass a smaller --image-size",
                first.height,
                first.width,
                MAX_DATA_BYTES >> 20
            ),
        });
    }
    let done = AtomicUsize::new(1);
    progress(1, total);
    let rest: Vec<Decoded> = all[1..]
        .par_iter()
        .map(|item| {
            let decoded = decode(&item.path, options.image_size)?;
            if (decoded.height, decoded.width) != (first.height, first.width) {
                return Err(Error::DataFile {
                    path: root.to_path_buf(),
                    problem: format!(
                        "images of different sizes: {} is {}x{}, {} is {}x{}; pass --image-size to resize them",
                        all[0].relative, first.height, first.width, item.relative, decoded.height, decoded.width
                    ),
                });
            }
            progress(done.fetch_add(1, Ordering::Relaxed) + 1, total);
            Ok(decoded)
        })
        .collect::<Result<_>>()?;
    let decoded: Vec<Decoded> = std::iter::once(first).chain(rest).collect();
    let color = options.color.unwrap_or(if decoded.iter().any(|d| d.color) {
        ColorMode::Rgb
    } else {
        ColorMode::Gray
    });
    let shape = ImageShape {
        height: decoded[0].height,
        width: decoded[0].width,
        channels: color.channels(),
    };
    let mut pixels = Vec::with_capacity(decoded.len() * shape.values());
    // Each decoded image is freed as soon as its pixels are packed.
    for d in decoded {
        match color {
            ColorMode::Rgb => pixels.extend_from_slice(&d.rgb),
            ColorMode::Gray => pixels.extend(d.rgb.chunks_exact(3).map(luma)),
        }
    }
    Ok((shape, pixels))
}
