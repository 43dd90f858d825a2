//! Pictures: tiled grids of a model's images, grey or colour ([`Picture`]), the RGB canvas
//! charts draw on ([`RgbImage`]), and the one PNG encoder. Drawing is apart from computing: these
//! functions take pixels and return bytes; the caller writes the file. Charts draw on an
//! [`RgbImage`] in [`crate::plot`].

use crate::data::ImageShape;
use crate::engine::Matrix;
use crate::error::{Error, Result};

/// An 8-bit image, grey (1 channel) or RGB (3): what a grid of a model's images is.
#[derive(Clone, Debug, PartialEq)]
pub struct Picture {
    pub width: usize,
    pub height: usize,
    pub channels: usize,
    /// Row-major, `channels` bytes a pixel.
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
    /// Channels of a source pixel: 1 grey, 3 RGB.
    pub channels: usize,
    /// Tiles per row.
    pub columns: usize,
    /// Every source pixel becomes a `scale x scale` block, so small digits stay legible.
    pub scale: usize,
}

/// Most pixels of one picture (a 16k x 8k grey grid, 128 MiB): past this a grid is refused
/// before any image is decoded for it.
pub const MAX_PICTURE_PIXELS: usize = 1 << 27;

impl GridLayout {
    /// Tiles of `shape`'s images, small ones (a side of 32 or less, MNIST's 28 among them)
    /// doubled in size so they stay legible.
    pub fn of(shape: ImageShape, columns: usize) -> Self {
        GridLayout {
            tile: (shape.height, shape.width),
            channels: shape.channels,
            columns: columns.max(1),
            scale: if shape.height.max(shape.width) <= 32 { 2 } else { 1 },
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
        width.checked_mul(height)?.checked_mul(self.channels.max(1))?;
        Some((width, height))
    }

    /// Refuses a grid of `count` tiles larger than [`MAX_PICTURE_PIXELS`], up front.
    pub fn ensure_fits(&self, count: usize) -> Result<()> {
        match self.size(count) {
            Some((w, h)) if w * h * self.channels.max(1) <= MAX_PICTURE_PIXELS => Ok(()),
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

/// Tiles the rows of `images` (values in [0, 1], one image per row, a pixel's channels side
/// by side) left to right, top to bottom.
pub fn tile_grid(images: &Matrix, layout: GridLayout) -> Picture {
    let (th, tw) = layout.tile;
    let c = layout.channels.max(1);
    assert_eq!(
        images.cols,
        th * tw * c,
        "tile_grid: rows must hold {th}x{tw}x{c} images"
    );
    let columns = layout.columns.max(1).min(images.rows.max(1));
    let s = layout.scale.max(1);
    let (width, height) = layout
        .size(images.rows)
        .expect("tile_grid: a grid of images held in memory has a size that fits in usize");
    let mut pixels = vec![GAP_GREY; width * height * c];
    for i in 0..images.rows {
        let (gy, gx) = (i / columns, i % columns);
        let (oy, ox) = (GAP + gy * (th * s + GAP), GAP + gx * (tw * s + GAP));
        let image = images.row(i);
        for y in 0..th * s {
            for x in 0..tw * s {
                let source = &image[((y / s) * tw + x / s) * c..][..c];
                let target = ((oy + y) * width + ox + x) * c;
                for (t, &v) in pixels[target..target + c].iter_mut().zip(source) {
                    *t = to_byte(v);
                }
            }
        }
    }
    Picture {
        width,
        height,
        channels: c,
        pixels,
    }
}

/// One image (values in [0, 1], a pixel's channels side by side) at its own size, without
/// the grid's margins: what a folder of images holds.
pub fn single_image(values: &[f32], shape: crate::data::ImageShape) -> Picture {
    assert_eq!(values.len(), shape.values(), "single_image: values must fill the shape");
    Picture {
        width: shape.width,
        height: shape.height,
        channels: shape.channels,
        pixels: values.iter().map(|&v| to_byte(v)).collect(),
    }
}

/// A value in [0, 1] as a grey level; NaN shows as black.
fn to_byte(v: f32) -> u8 {
    (v.clamp(0.0, 1.0) * 255.0).round() as u8
}

/// Stacks pictures vertically (all with the same channels), e.g. inputs above their
/// reconstructions; narrower ones are padded on the right.
pub fn stack_vertically(parts: &[Picture]) -> Picture {
    let width = parts.iter().map(|p| p.width).max().unwrap_or(0);
    let channels = parts.first().map_or(1, |p| p.channels);
    assert!(
        parts.iter().all(|p| p.channels == channels),
        "stack_vertically: pictures differ in channels"
    );
    let mut pixels = Vec::new();
    let mut height = 0;
    for p in parts {
        for row in p.pixels.chunks_exact((p.width * channels).max(1)) {
            pixels.extend_from_slice(row);
            pixels.resize(pixels.len() + (width - p.width) * channels, GAP_GREY);
        }
        height += p.height;
    }
    Picture {
        width,
        height,
        channels,
        pixels,
    }
}

/// Encodes as an 8-bit PNG: greyscale or RGB, as the picture is.
pub fn encode_png(image: &Picture) -> Result<Vec<u8>> {
    let colour = match image.channels {
        3 => png::ColorType::Rgb,
        _ => png::ColorType::Grayscale,
    };
    encode_pixels(image.width, image.height, colour, &image.pixels)
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
pub fn comparison_grid(inputs: &Matrix, outputs: &Matrix, shape: ImageShape, columns: usize) -> Picture {
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
            tile_grid(&slice(inputs), GridLayout::of(shape, columns)),
            tile_grid(&slice(outputs), GridLayout::of(shape, columns)),
        ]);
        // A wider gap between pairs of rows than within a pair.
        pair.pixels
            .resize(pair.pixels.len() + 4 * pair.width * pair.channels, GAP_GREY);
        pair.height += 4;
        parts.push(pair);
    }
    stack_vertically(&parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_tiles_keep_each_pixels_channels_and_grey_ones_their_level() {
        // Two 1x2 RGB images: red|green and blue|white.
        let images = Matrix::from_vec(2, 6, vec![1., 0., 0., 0., 1., 0., 0., 0., 1., 1., 1., 1.]);
        let shape = ImageShape {
            height: 1,
            width: 2,
            channels: 3,
        };
        let layout = GridLayout {
            scale: 1,
            ..GridLayout::of(shape, 2)
        };
        let picture = tile_grid(&images, layout);
        assert_eq!(picture.channels, 3);
        // Gap, tile, gap, tile, gap: 2 + 2 + 2 + 2 + 2 wide; 2 + 1 + 2 high.
        assert_eq!((picture.width, picture.height), (10, 5));
        let at = |x: usize, y: usize| &picture.pixels[(y * picture.width + x) * 3..][..3];
        assert_eq!(at(2, 2), [255, 0, 0]);
        assert_eq!(at(3, 2), [0, 255, 0]);
        assert_eq!(at(6, 2), [0, 0, 255]);
        assert_eq!(at(7, 2), [255, 255, 255]);
        assert_eq!(at(0, 0), [GAP_GREY; 3]);
        let png = encode_png(&picture).unwrap();
        // The PNG header's colour type: 2 is RGB, 0 greyscale.
        assert_eq!(png[25], 2);

        let grey = Matrix::from_vec(1, 4, vec![0.0, 0.5, 1.0, f32::NAN]);
        let small = GridLayout::of(
            ImageShape {
                height: 2,
                width: 2,
                channels: 1,
            },
            1,
        );
        assert_eq!(small.scale, 2, "small tiles are doubled");
        let picture = tile_grid(&grey, small);
        assert_eq!((picture.width, picture.height, picture.channels), (8, 8, 1));
        assert_eq!(picture.pixels[2 * 8 + 2..2 * 8 + 6], [0, 0, 128, 128]);
        assert_eq!(picture.pixels[5 * 8 + 2..5 * 8 + 6], [255, 255, 0, 0]);
        assert_eq!(encode_png(&picture).unwrap()[25], 0);
        let large = ImageShape {
            height: 64,
            width: 64,
            channels: 3,
        };
        assert_eq!(GridLayout::of(large, 8).scale, 1, "large tiles are not");
    }
}
