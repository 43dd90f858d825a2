//! Receptive fields of a convolution: where each kernel tap reads in an image, gathering
//! every field into a row of a patch matrix ([`im2col`]), and adding such rows back onto the
//! image positions they came from ([`col2im`], its adjoint). Patch rows are in (ky, kx,
//! channel) order, so that each tap is one contiguous run of channels.

use rayon::prelude::*;

use super::conv::ConvGeometry;
use super::fastmath::simd_kernel;
use super::matrix::Matrix;
use super::rows::copy_run;

/// A kernel tap over the padding, in [`tap_sources`].
const PADDING: usize = usize::MAX;

/// For every output position and kernel tap of `g`, in patch order: where in an input image
/// (the index of its first channel) the tap reads, or [`PADDING`]. The same for every image,
/// so worked out once per pass instead of once per value.
fn tap_sources(g: &ConvGeometry) -> Vec<usize> {
    let mut sources = Vec::with_capacity(g.out_height() * g.out_width() * g.taps());
    for oy in 0..g.out_height() {
        for ox in 0..g.out_width() {
            for ky in 0..g.kernel {
                for kx in 0..g.kernel {
                    let y = (oy * g.stride + ky).checked_sub(g.padding);
                    let x = (ox * g.stride + kx).checked_sub(g.padding);
                    sources.push(match (y, x) {
                        (Some(y), Some(x)) if y < g.in_height && x < g.in_width => (y * g.in_width + x) * g.in_channels,
                        _ => PADDING,
                    });
                }
            }
        }
    }
    sources
}

/// Gathers receptive fields: row `(b, oy, ox)` of `col` holds input image `b`'s values under
/// the kernel placed at output position `(oy, ox)`, in (ky, kx, channel) order, zeros where
/// the kernel overhangs the padding.
///
/// # Shapes
/// `x`: batch x (H·W·C); `col`: (batch·Ho·Wo) x (k·k·C) (reshaped).
pub fn im2col(x: &Matrix, g: &ConvGeometry, col: &mut Matrix) {
    assert_eq!(
        x.cols,
        g.in_size(),
        "im2col: input rows must hold {}x{}x{} images",
        g.in_height,
        g.in_width,
        g.in_channels
    );
    let (oh, ow, patch, c) = (g.out_height(), g.out_width(), g.patch(), g.in_channels);
    let sources = tap_sources(g);
    col.reshape_for_overwrite(x.rows * oh * ow, patch);
    col.data
        .par_chunks_mut(oh * ow * patch)
        .zip(x.data.par_chunks(x.cols))
        .for_each(|(rows, image)| gather_patches(rows, image, &sources, c));
}

/// One image's part of [`im2col`]: the run of `c` channels each tap reads, or zeros over the
/// padding. Apart from the closure that calls it, so that it is compiled with the vector
/// instructions the processor has.
#[inline(always)]
fn gather_patches_kernel(rows: &mut [f32], image: &[f32], sources: &[usize], c: usize) {
    if c == 1 {
        // One value per tap: a plain gather. Through `copy_from_slice` every value would be
        // a call to `memcpy` of four bytes, which made the 1-channel layers' gathers cost
        // more than their products.
        for (out, &at) in rows.iter_mut().zip(sources) {
            *out = if at == PADDING { 0.0 } else { image[at] };
        }
        return;
    }
    for (out, &at) in rows.chunks_exact_mut(c).zip(sources) {
        if at == PADDING {
            out.fill(0.0);
        } else {
            copy_run(out, &image[at..at + c]);
        }
    }
}

simd_kernel! { fn gather_patches(rows: &mut [f32], image: &[f32], sources: &[usize], c: usize) = gather_patches_kernel; }

/// The adjoint of [`im2col`]: adds every row of `col` back onto the input positions it was
/// gathered from (overlapping fields add up), onto what `dx` holds when `accumulate`.
///
/// # Shapes
/// `col`: (batch·Ho·Wo) x (k·k·C); `dx`: batch x (H·W·C) (reshaped unless accumulating).
pub fn col2im(col: &Matrix, g: &ConvGeometry, batch: usize, dx: &mut Matrix, accumulate: bool) {
    let (oh, ow, patch, c) = (g.out_height(), g.out_width(), g.patch(), g.in_channels);
    assert_eq!(
        col.shape(),
        (batch * oh * ow, patch),
        "col2im: patch matrix has the wrong shape"
    );
    let sources = tap_sources(g);
    if accumulate {
        assert_eq!(
            dx.shape(),
            (batch, g.in_size()),
            "col2im: accumulator has the wrong shape"
        );
    } else {
        dx.reshape_for_overwrite(batch, g.in_size());
    }
    dx.data
        .par_chunks_mut(g.in_size())
        .zip(col.data.par_chunks(oh * ow * patch))
        .for_each(|(image, rows)| {
            if !accumulate {
                image.fill(0.0);
            }
            add_patches(image, rows, &sources, c);
        });
}

/// One image's part of [`col2im`]: each run of `c` values of `rows` added onto the input
/// position its tap reads, in order. Apart from the closure that calls it, so that it is
/// compiled with the vector instructions the processor has.
#[inline(always)]
fn add_patches_kernel(image: &mut [f32], rows: &[f32], sources: &[usize], c: usize) {
    for (values, &at) in rows.chunks_exact(c).zip(sources) {
        if at != PADDING {
            for (d, v) in image[at..at + c].iter_mut().zip(values) {
                *d += v;
            }
        }
    }
}

simd_kernel! { fn add_patches(image: &mut [f32], rows: &[f32], sources: &[usize], c: usize) = add_patches_kernel; }
