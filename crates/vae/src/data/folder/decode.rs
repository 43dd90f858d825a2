//! One image file: what its header says (cheap: no pixel is decoded), and its pixels as a
//! dataset of a given shape holds them.

use std::io::Cursor;
use std::path::Path;

use image::imageops::FilterType;
use image::{DynamicImage, ImageDecoder, ImageReader, Limits, RgbImage};
use sha2::{Digest, Sha256};

use super::super::ImageShape;
use crate::error::{Error, Result};
use crate::files::read_limited;

/// The largest image file read: far above any image worth training on.
pub const MAX_IMAGE_FILE_BYTES: u64 = 64 << 20;
/// The largest side and decoded size of one image, whatever its file claims.
pub const MAX_DECODED_SIDE: u32 = 16_384;
pub const MAX_DECODED_BYTES: u64 = 512 << 20;

/// What a file's header says, and the SHA-256 of its content.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Probe {
    pub height: usize,
    pub width: usize,
    /// Whether the file stores colour (not only grey levels).
    pub color: bool,
    pub digest: [u8; 32],
}

/// A reader for `bytes` with this tool's limits, refusing what is no image it reads.
fn reader(path: &Path, bytes: Vec<u8>) -> Result<ImageReader<Cursor<Vec<u8>>>> {
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| Error::io(path, e))?;
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_DECODED_SIDE);
    limits.max_image_height = Some(MAX_DECODED_SIDE);
    limits.max_alloc = Some(MAX_DECODED_BYTES);
    reader.limits(limits);
    if reader.format().is_none() {
        return Err(Error::data_file(
            path,
            "not an image this tool reads (PNG, JPEG, GIF, BMP, WebP)",
        ));
    }
    Ok(reader)
}

fn unreadable(path: &Path, e: image::ImageError) -> Error {
    Error::data_file(path, format!("not a readable image: {e}"))
}

/// Reads `path`'s header and hashes its content.
pub fn probe(path: &Path) -> Result<Probe> {
    let bytes = read_limited(path, MAX_IMAGE_FILE_BYTES)?;
    let digest = Sha256::digest(&bytes).into();
    let decoder = reader(path, bytes)?.into_decoder().map_err(|e| unreadable(path, e))?;
    let (width, height) = decoder.dimensions();
    Ok(Probe {
        height: height as usize,
        width: width as usize,
        color: decoder.color_type().has_color(),
        digest,
    })
}

/// Decodes `path` into `out` as an image of `shape`: transparency composited onto white,
/// resized (to cover, centre crop, triangle filter) unless it has the size already, then
/// grey (the luma, Rec. 709 weights) or RGB bytes.
///
/// # Shapes
/// `out`: `shape.values()` bytes.
pub fn decode_into(path: &Path, shape: ImageShape, out: &mut [u8]) -> Result<()> {
    let bytes = read_limited(path, MAX_IMAGE_FILE_BYTES)?;
    let image = reader(path, bytes)?.decode().map_err(|e| unreadable(path, e))?;
    let mut rgb = on_white(&image);
    if (rgb.height() as usize, rgb.width() as usize) != (shape.height, shape.width) {
        rgb = DynamicImage::ImageRgb8(rgb)
            .resize_to_fill(shape.width as u32, shape.height as u32, FilterType::Triangle)
            .into_rgb8();
    }
    match shape.channels {
        3 => out.copy_from_slice(rgb.as_raw()),
        _ => {
            for (o, p) in out.iter_mut().zip(rgb.as_raw().chunks_exact(3)) {
                *o = luma(p);
            }
        }
    }
    Ok(())
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
