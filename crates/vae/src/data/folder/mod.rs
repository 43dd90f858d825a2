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
//! Loading reads every file's header first ([`decode::probe`]): that settles the shape (the
//! files' common size or `--image-size`; RGB if any file has colour, or `--color`) and the
//! memory needed before any pixel is decoded. Each image is then decoded to 8-bit RGB,
//! transparency composited onto white (as a page shows it), resized if it is not of that size
//! (scaled to cover it, keeping its aspect ratio, then cropped to the centre; a triangle
//! filter, which averages when shrinking), and kept as grey (the luma, Rec. 709 weights) or
//! RGB bytes, straight into the dataset's buffer.

mod cache;
pub mod decode;
mod listing;

pub use decode::{Probe, decode_into, probe};
pub use listing::{IMAGE_EXTENSIONS, Item, Listing, MAX_CLASSES, MAX_IMAGES, TEST_DIR, TRAIN_DIR, list};

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use rayon::prelude::*;

use super::idx::MAX_DATA_BYTES;
use super::options::DataOptions;
use super::{Dataset, ImageShape, Images, Split, Values};
use crate::error::{Error, Result};

/// Progress of decoding: images done, of how many.
pub type Progress<'a> = &'a (dyn Fn(usize, usize) + Sync);

/// Loads the folder at `root` as [the module](self) describes. With a `cache` folder, the
/// decoded pixels are kept there in one packed file named by the SHA-256 of every source
/// file's path, label and content and of the shape, and read back from it while none of
/// those change: a second run, or `vae eval` after `vae train`, starts without decoding (the
/// files are still read, to hash them). A cache file that is missing, short or stale is
/// decoded afresh and replaced; one that cannot be written costs only the time.
pub fn load(root: &Path, options: &DataOptions, cache: Option<&Path>, progress: Progress<'_>) -> Result<Dataset> {
    options.validate()?;
    let listing = list(root, options.test_fraction)?;
    let items: Vec<&Item> = listing.train.iter().chain(&listing.test).collect();
    let probes = items
        .par_iter()
        .map(|item| probe(&item.path))
        .collect::<Result<Vec<_>>>()?;
    let shape = resolve_shape(root, &items, &probes, options)?;
    let kept = cache.map(|dir| cache::path(dir, &items, &probes, shape));
    let mut pixels = match kept.as_deref().and_then(|path| cache::read(path, shape, items.len())) {
        Some(pixels) => pixels,
        None => {
            let pixels = decode_all(&items, shape, progress)?;
            if let Some(path) = &kept {
                let _ = cache::write(path, shape, items.len(), &pixels);
            }
            pixels
        }
    };
    // The training split's pixels come first: the test split's are split off, not copied.
    let n_train = listing.train.len();
    let test_pixels = pixels.split_off(n_train * shape.values());
    let split = |pixels: Vec<u8>, items: &[Item]| Split {
        images: Images {
            count: items.len(),
            height: shape.height,
            width: shape.width,
            channels: shape.channels,
            values: Values::Bytes(pixels),
        },
        labels: items.iter().map(|i| i.label).collect(),
    };
    let labelled = !listing.classes.is_empty();
    Ok(Dataset {
        name: root.display().to_string(),
        train: split(pixels, &listing.train),
        test: split(test_pixels, &listing.test),
        class_names: if labelled { listing.classes } else { vec!["all".into()] },
        labelled,
    })
}

/// The shape the images are read at, from their headers and the options; refuses files of
/// different sizes without `--image-size`, and a folder whose pixels would pass
/// [`MAX_DATA_BYTES`].
pub fn resolve_shape(root: &Path, items: &[&Item], probes: &[Probe], options: &DataOptions) -> Result<ImageShape> {
    let first = &probes[0];
    if options.image_size.is_none()
        && let Some(i) = probes
            .iter()
            .position(|p| (p.height, p.width) != (first.height, first.width))
    {
        return Err(Error::data_file(
            root,
            format!(
                "images of different sizes: {} is {}x{}, {} is {}x{}; pass --image-size to resize them",
                items[0].relative, first.height, first.width, items[i].relative, probes[i].height, probes[i].width
            ),
        ));
    }
    let found = ImageShape {
        height: first.height,
        width: first.width,
        channels: if probes.iter().any(|p| p.color) { 3 } else { 1 },
    };
    let shape = options.applied_to(found);
    if (shape.values() as u64).saturating_mul(items.len() as u64) > MAX_DATA_BYTES {
        return Err(Error::data_file(
            root,
            format!(
                "{} images of {shape} would take more than {} MiB: pass a smaller --image-size",
                items.len(),
                MAX_DATA_BYTES >> 20
            ),
        ));
    }
    Ok(shape)
}

/// Decodes `items` as images of `shape`, in order, each straight into its place.
fn decode_all(items: &[&Item], shape: ImageShape, progress: Progress<'_>) -> Result<Vec<u8>> {
    let mut pixels = vec![0u8; items.len() * shape.values()];
    let done = AtomicUsize::new(0);
    pixels
        .par_chunks_mut(shape.values())
        .zip(items)
        .try_for_each(|(out, item)| {
            decode_into(&item.path, shape, out)?;
            progress(done.fetch_add(1, Ordering::Relaxed) + 1, items.len());
            Ok(())
        })?;
    Ok(pixels)
}
