//! Pictures: one image type per colour model ([`GrayImage`], [`RgbImage`]), batches of
//! images tiled into grids, and the one PNG encoder. Drawing is apart from computing: these
//! functions take pixels and return bytes; the caller writes the file. Charts draw on an
//! [`RgbImage`] in [`crate::plot`].

use crate::engine::Matrix;
use crate::error::{Error, Result};

/// An 8-bit grey image.
#[derive(Clone, Debug, PartialEq)]
pub struct GrayImage {
    pub width: usize,
    pub height: usize,
    pub pixels: Vec<u8>,
}

/// An RGB colour.
pub type Rgb = [u8; 3];

/// An 8-bit RGB image.
#[derive(Clone, Debug, PartialEq)]
pub struct RgbImage {
    pub width: usize,
    pub height: usize,
    /// Row-major, 3 bytes a pixel.
    pub pixels: Vec<u8>,
}

impl RgbImage {
    /// A canvas filled with `background`.
    pub fn new(width: usize, height: usize, background: Rgb) -> Self {
        RgbImage {
            width,
            height,
            pixels: background.repeat(width * height),
        }
    }
}

/// Grey of the gaps between tiles: distinct from both the black background of a digit and
/// its white strokes.
const GAP_GREY: u8 = 96;
/// Pixels between tiles.
const GAP: usize = 2;

/// How to lay out tiles.
#[derive(Clone, Copy, Debug)]
pub struct GridLayout {
    /// Height and width of one tile, in source pixels.
    pub tile: (usize, usize),
    /// Tiles per row.
    pub columns: usize,
    /// Every source pixel becomes a `scale x scale` block, so small digits stay legible.
    pub scale: usize,
}

/// Most pixels of one picture (a 16k x 8k grey grid, 128 MiB): past this a grid is refused
/// before any image is decoded for it.
pub const MAX_PICTURE_PIXELS: usize = 1 << 27;

impl GridLayout {
    /// 28x28 tiles, doubled in size.
    pub fn mnist(columns: usize) -> Self {
        GridLayout {
            tile: (28, 28),
            columns: columns.max(1),
            scale: 2,
        }
    }

    /// Width and height of the grid of `count` tiles, or `None` past `usize`.
    pub fn size(&self, count: usize) -> Option<(usize, usize)> {
        let (th, tw) = self.tile;
        let count = count.max(1);
        let columns = self.columns.max(1).min(count);
        let rows = count.div_ceil(columns);
        let s = self.scale.max(1);
        let width = columns.checked_mul(tw.checked_mul(s)? + GAP)? + GAP;
        let height = rows.checked_mul(th.checked_mul(s)? + GAP)? + GAP;
        width.checked_mul(height)?;
        Some((width, height))
    }

    /// Refuses a grid of `count` tiles larger than [`MAX_PICTURE_PIXELS`], up front.
    pub fn ensure_fits(&self, count: usize) -> Result<()> {
        match self.size(count) {
            Some((w, h)) if w * h <= MAX_PICTURE_PIXELS => Ok(()),
            size => Err(Error::config(
                "picture",
                format!(
                    "{count} images make a picture of {}, more than the {MAX_PICTURE_PIXELS} pixels one may have: ask for fewer",
                    size.map_or("more pixels than can be counted".to_string(), |(w, h)| format!(
                        "{w}x{h} pixels"
                    ))
                ),
            )),
        }
    }
}

/// Tiles the rows of `images` (pixel values in [0, 1], one image per row) left to right, top
/// to bottom.
pub fn tile_grid(images: &Matrix, layout: GridLayout) -> GrayImage {
    let (th, tw) = layout.tile;
    assert_eq!(images.cols, th * tw, "tile_grid: rows must hold {th}x{tw} images");
    let columns = layout.columns.max(1).min(images.rows.max(1));
    let s = layout.scale.max(1);
    let (width, height) = layout
        .size(images.rows)
        .expect("tile_grid: a grid of images held in memory has a size that fits in usize");
    let mut pixels = vec![GAP_GREY; width * height];
    for i in 0..images.rows {
        let (gy, gx) = (i / columns, i % columns);
        let (oy, ox) = (GAP + gy * (th * s + GAP), GAP + gx * (tw * s + GAP));
        for y in 0..th * s {
            for x in 0..tw * s {
                let v = images.row(i)[(y / s) * tw + x / s];
                pixels[(oy + y) * width + ox + x] = to_byte(v);
            }
        }
    }
    GrayImage { width, height, pixels }
}

/// A value in [0, 1] as a grey level; NaN shows as black.
fn to_byte(v: f32) -> u8 {
    (v.clamp(0.0, 1.0) * 255.0).round() as u8
}

/// Stacks grids vertically (all the same width), e.g. inputs above their reconstructions.
pub fn stack_vertically(parts: &[GrayImage]) -> GrayImage {
    let width = parts.iter().map(|p| p.width).max().unwrap_or(0);
    let mut pixels = Vec::new();
    let mut height = 0;
    for p in parts {
        for row in p.pixels.chunks_exact(p.width.max(1)) {
            pixels.extend_from_slice(row);
            pixels.resize(pixels.len() + width - p.width, GAP_GREY);
        }
        height += p.height;
    }
    GrayImage { width, height, pixels }
}

/// Encodes as an 8-bit greyscale PNG.
pub fn encode_png(image: &GrayImage) -> Result<Vec<u8>> {
    encode_pixels(image.width, image.height, png::ColorType::Grayscale, &image.pixels)
}

/// Encodes as an 8-bit RGB PNG.
pub fn encode_png_rgb(image: &RgbImage) -> Result<Vec<u8>> {
    encode_pixels(image.width, image.height, png::ColorType::Rgb, &image.pixels)
}

/// Encodes 8-bit pixels of the given colour type as a PNG.
fn encode_pixels(width: usize, height: usize, colour: png::ColorType, pixels: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width as u32, height as u32);
    encoder.set_color(colour);
    encoder.set_depth(png::BitDepth::Eight);
    let png_error = |e: png::EncodingError| Error::config("png", e.to_string());
    let mut writer = encoder.write_header().map_err(png_error)?;
    writer.write_image_data(pixels).map_err(png_error)?;
    writer.finish().map_err(png_error)?;
    Ok(out)
}

/// Inputs interleaved with their reconstructions, `columns` per row: a row of inputs, the row
/// of their reconstructions beneath it, and so on.
pub fn comparison_grid(inputs: &Matrix, outputs: &Matrix, columns: usize) -> GrayImage {
    assert_eq!(
        inputs.shape(),
        outputs.shape(),
        "comparison_grid: inputs and outputs differ in shape"
    );
    let columns = columns.max(1);
    let mut parts = Vec::new();
    for start in (0..inputs.rows).step_by(columns) {
        let end = (start + columns).min(inputs.rows);
        let slice = |m: &Matrix| Matrix::from_vec(end - start, m.cols, m.data[start * m.cols..end * m.cols].to_vec());
        let mut pair = stack_vertically(&[
            tile_grid(&slice(inputs), GridLayout::mnist(columns)),
            tile_grid(&slice(outputs), GridLayout::mnist(columns)),
        ]);
        // A wider gap between pairs of rows than within a pair.
        pair.pixels.resize(pair.pixels.len() + 4 * pair.width, GAP_GREY);
        pair.height += 4;
        parts.push(pair);
    }
    stack_vertically(&parts)
}
