//! The IDX format of MNIST (LeCun et al.): a big-endian header, then raw bytes.
//!
//! Images: magic `0x00000803`, count, rows, columns (u32 each), then count·rows·columns pixels.
//! Labels: magic `0x00000801`, count, then count bytes. Files may be gzip-compressed.
//!
//! The reader trusts nothing: the header's sizes are checked for overflow, and never more
//! bytes are decompressed than the header allows (plus one, to notice trailing data), so a
//! gzip bomb cannot fill memory.

use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;

use super::{ImageShape, Values};
use crate::error::{Error, Result};

pub const IDX_IMAGES_MAGIC: u32 = 0x0000_0803;
pub const IDX_LABELS_MAGIC: u32 = 0x0000_0801;
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// The most data bytes a file may declare: far above any MNIST-like set (60,000 28x28 images
/// are 47 MB), far below what would exhaust memory.
pub const MAX_DATA_BYTES: u64 = 1 << 31;

/// Images of one size, one value per channel of a pixel: row-major, the channels of a pixel
/// side by side (grey: 1 channel; colour: red, green, blue). Vectors are images of one row.
#[derive(Clone, Debug, PartialEq)]
pub struct Images {
    pub count: usize,
    pub height: usize,
    pub width: usize,
    /// 1 for grey, 3 for RGB.
    pub channels: usize,
    pub values: Values,
}

impl Images {
    /// Values (bytes) in one image: height x width x channels.
    pub fn pixels_per_image(&self) -> usize {
        self.height * self.width * self.channels
    }

    /// The size of one image.
    pub fn shape(&self) -> ImageShape {
        ImageShape {
            height: self.height,
            width: self.width,
            channels: self.channels,
        }
    }

    /// Image `i`'s bytes, when the values are bytes.
    pub fn image(&self, i: usize) -> Option<&[u8]> {
        let n = self.pixels_per_image();
        self.values.as_bytes().map(|b| &b[i * n..(i + 1) * n])
    }

    /// Image `i` as the model reads it (bytes scaled to [0, 1]) into `out`.
    pub fn read_into(&self, i: usize, out: &mut [f32]) {
        self.values.read_into(i * self.pixels_per_image(), out);
    }
}

/// Opens `path`, transparently decompressing gzip.
pub(crate) fn open_maybe_gzip(path: &Path) -> Result<Box<dyn Read>> {
    // A FIFO or a device (a link to /dev/zero) is refused by its type, before any read.
    let (file, _) = crate::files::open_regular(path)?;
    let mut file = BufReader::new(file);
    let mut magic = [0u8; 2];
    let n = read_up_to(&mut file, &mut magic).map_err(|e| Error::io(path, e))?;
    let head = std::io::Cursor::new(magic[..n].to_vec());
    let whole = head.chain(file);
    Ok(if n == 2 && magic == GZIP_MAGIC {
        Box::new(GzDecoder::new(whole))
    } else {
        Box::new(whole)
    })
}

/// Reads IDX images from a file (raw or gzip).
pub fn read_images(path: &Path) -> Result<Images> {
    parse_images(open_maybe_gzip(path)?, path)
}

/// Reads IDX labels from a file (raw or gzip).
pub fn read_labels(path: &Path) -> Result<Vec<u8>> {
    parse_labels(open_maybe_gzip(path)?, path)
}

/// Reads IDX images that must be `height x width`, refusing other sizes from the header,
/// before any data is read.
pub fn read_images_sized(path: &Path, size: (usize, usize)) -> Result<Images> {
    parse_images_sized(open_maybe_gzip(path)?, path, Some(size))
}

/// Parses IDX images from a stream; `source` names it in errors.
pub fn parse_images(reader: impl Read, source: &Path) -> Result<Images> {
    parse_images_sized(reader, source, None)
}

/// Parses IDX images, refusing any size but `size` when given.
fn parse_images_sized(mut reader: impl Read, source: &Path, size: Option<(usize, usize)>) -> Result<Images> {
    let header = read_header::<4>(&mut reader, source, IDX_IMAGES_MAGIC, "images")?;
    let [count, height, width] = [header[1], header[2], header[3]].map(|v| v as u64);
    let bytes = count
        .checked_mul(height)
        .and_then(|v| v.checked_mul(width))
        .filter(|&b| b <= MAX_DATA_BYTES)
        .ok_or_else(|| {
            invalid(
                source,
                format!("header declares {count} images of {height}x{width}: implausibly large"),
            )
        })?;
    if count == 0 {
        return Err(invalid(source, "holds no images"));
    }
    if height == 0 || width == 0 {
        return Err(invalid(source, format!("declares images of {height}x{width} pixels")));
    }
    if let Some((h, w)) = size.filter(|&s| s != (height as usize, width as usize)) {
        return Err(invalid(
            source,
            format!("images are {height}x{width}; this tool needs {h}x{w}"),
        ));
    }
    let pixels = read_data(&mut reader, source, bytes)?;
    Ok(Images {
        count: count as usize,
        height: height as usize,
        width: width as usize,
        channels: 1,
        values: Values::Bytes(pixels),
    })
}

/// Parses IDX labels from a stream; `source` names it in errors.
pub fn parse_labels(mut reader: impl Read, source: &Path) -> Result<Vec<u8>> {
    let header = read_header::<2>(&mut reader, source, IDX_LABELS_MAGIC, "labels")?;
    let count = header[1] as u64;
    if count == 0 {
        return Err(invalid(source, "holds no labels"));
    }
    read_data(&mut reader, source, count)
}

fn invalid(path: &Path, problem: impl Into<String>) -> Error {
    Error::IdxInvalid {
        path: path.to_path_buf(),
        problem: problem.into(),
    }
}

/// Reads into `buf` until it is full or the stream ends; returns how much was read.
pub(crate) fn read_up_to(reader: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// A read error on a file that opened fine: corrupt compressed data, most likely.
fn read_error(path: &Path, e: std::io::Error) -> Error {
    match e.kind() {
        std::io::ErrorKind::UnexpectedEof => invalid(path, "truncated: the compressed stream ends early"),
        std::io::ErrorKind::InvalidInput | std::io::ErrorKind::InvalidData => {
            invalid(path, format!("corrupt data ({e})"))
        }
        _ => Error::io(path, e),
    }
}

fn read_header<const N: usize>(
    reader: &mut impl Read,
    path: &Path,
    magic: u32,
    kind: &'static str,
) -> Result<[u32; N]> {
    let mut flat = vec![0u8; 4 * N];
    let n = read_up_to(reader, &mut flat).map_err(|e| read_error(path, e))?;
    if n == 0 {
        return Err(invalid(path, "is empty"));
    }
    let word = |i: usize| u32::from_be_bytes([flat[4 * i], flat[4 * i + 1], flat[4 * i + 2], flat[4 * i + 3]]);
    let found = word(0);
    if n >= 4 && found != magic {
        return Err(Error::IdxMagic {
            path: path.to_path_buf(),
            kind,
            expected: magic,
            found,
        });
    }
    if n < flat.len() {
        return Err(invalid(path, format!("truncated header: {n} of {} bytes", flat.len())));
    }
    Ok(std::array::from_fn(word))
}

/// Reads exactly `bytes` bytes of data, refusing less and refusing more.
fn read_data(reader: &mut impl Read, path: &Path, bytes: u64) -> Result<Vec<u8>> {
    // Reserve what a real file needs at most; a header can claim anything.
    let mut data = Vec::with_capacity(bytes.min(64 << 20) as usize);
    reader
        .take(bytes)
        .read_to_end(&mut data)
        .map_err(|e| read_error(path, e))?;
    if (data.len() as u64) < bytes {
        return Err(Error::IdxTruncated {
            path: PathBuf::from(path),
            expected: bytes,
            found: data.len() as u64,
        });
    }
    let mut extra = [0u8; 1];
    if read_up_to(reader, &mut extra).map_err(|e| read_error(path, e))? > 0 {
        return Err(invalid(
            path,
            format!("has data after the {bytes} bytes its header declares"),
        ));
    }
    Ok(data)
}
