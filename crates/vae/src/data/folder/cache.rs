//! The decoded pixels of a folder, kept in one packed file so that the next run need not
//! decode: `CACHE/<key>.images`, the key being the SHA-256 of every file's path, label and
//! content and of the shape the pixels were decoded to.
//!
//! ```text
//! "VAEIMG01", height, width, channels (u32 LE), count (u64 LE), then count x values bytes
//! ```

use std::fs;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::super::ImageShape;
use super::super::idx::MAX_DATA_BYTES;
use super::Item;
use super::decode::Probe;
use crate::error::{Error, Result};
use crate::files::{read_limited, write_atomic};

/// The first bytes of a cache file; a new layout takes a new one.
const MAGIC: &[u8; 8] = b"VAEIMG01";
/// Magic, then height, width and channels (u32) and the count (u64).
const HEADER: usize = 8 + 12 + 8;

/// Where the pixels of `items` (with their `probes`, in order) decoded to `shape` are kept.
pub fn path(cache: &Path, items: &[&Item], probes: &[Probe], shape: ImageShape) -> PathBuf {
    let mut key = Sha256::new();
    key.update(MAGIC);
    key.update(header(shape, items.len()));
    for (item, probe) in items.iter().zip(probes) {
        key.update(item.relative.as_bytes());
        key.update([0, item.label]);
        key.update(probe.digest);
    }
    let hex: String = key.finalize().iter().map(|b| format!("{b:02x}")).collect();
    cache.join(format!("{hex}.images"))
}

fn header(shape: ImageShape, count: usize) -> Vec<u8> {
    let mut bytes = MAGIC.to_vec();
    for v in [shape.height, shape.width, shape.channels] {
        bytes.extend_from_slice(&(v as u32).to_le_bytes());
    }
    bytes.extend_from_slice(&(count as u64).to_le_bytes());
    bytes
}

/// The pixels of `count` images of `shape` kept at `path`, or `None` if the file is missing
/// or not exactly that.
pub fn read(path: &Path, shape: ImageShape, count: usize) -> Option<Vec<u8>> {
    let mut bytes = read_limited(path, MAX_DATA_BYTES + HEADER as u64).ok()?;
    let fits = bytes.len() == HEADER + count * shape.values() && bytes[..HEADER] == header(shape, count)[..];
    fits.then(|| {
        bytes.drain(..HEADER);
        bytes
    })
}

/// Keeps `pixels`, `count` images of `shape`, at `path` (written atomically).
pub fn write(path: &Path, shape: ImageShape, count: usize, pixels: &[u8]) -> Result<()> {
    let dir = path.parent().expect("a cache file is in a folder");
    fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let mut bytes = header(shape, count);
    bytes.extend_from_slice(pixels);
    write_atomic(path, &bytes)
}
