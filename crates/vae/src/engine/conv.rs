//! 2-D convolution over channels-last images, as a matrix product: `im2col` gathers every
//! receptive field into a row, one GEMM with the weights gives every output, and the backward
//! pass is two GEMMs and the scatter `col2im`.
//!
//! Layout: a batch is a matrix with one row per image, each row the image in (row, column,
//! channel) order, channels last. The product of the patch matrix and the weights then comes
//! out in that same layout for the next layer, with no transposes. Patch rows are gathered in
//! (ky, kx, channel) order, so that each kernel tap copies one contiguous run of channels.
//! Weights keep PyTorch's `[out_channels, in_channels, kh, kw]` order, flattened to
//! `out x (in·kh·kw)`, so checkpoints read the same in both worlds; each pass permutes them to
//! the patch order (a few thousand values, nothing next to the products) and the weight
//! gradient back.

use rand::{Rng, RngExt};
use serde::{Deserialize, Serialize};

use super::linear::{GradInput, Param};
use super::matmul::{MatView, Op, matmul, matmul_tn_tall, matmul_views};
use super::matrix::Matrix;
pub use super::patches::{col2im, im2col};
use super::rows::{add_to_rows, broadcast_rows};

/// Sizes of a convolution and of its input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConvGeometry {
    pub in_channels: usize,
    pub out_channels: usize,
    /// Square kernels: `kernel x kernel`.
    pub kernel: usize,
    pub stride: usize,
    pub padding: usize,
    pub in_height: usize,
    pub in_width: usize,
}

impl ConvGeometry {
    /// `⌊(H + 2p - k) / s⌋ + 1`.
    pub fn out_height(&self) -> usize {
        (self.in_height + 2 * self.padding - self.kernel) / self.stride + 1
    }

    /// `⌊(W + 2p - k) / s⌋ + 1`.
    pub fn out_width(&self) -> usize {
        (self.in_width + 2 * self.padding - self.kernel) / self.stride + 1
    }

    /// Values per input image.
    pub fn in_size(&self) -> usize {
        self.in_height * self.in_width * self.in_channels
    }

    /// Values per output image.
    pub fn out_size(&self) -> usize {
        self.out_height() * self.out_width() * self.out_channels
    }

    /// Values per receptive field: `in_channels · k · k`.
    pub fn patch(&self) -> usize {
        self.in_channels * self.kernel * self.kernel
    }

    /// Kernel taps: `k · k`.
    pub fn taps(&self) -> usize {
        self.kernel * self.kernel
    }

    /// Whether the kernel fits the padded input at all.
    pub fn is_valid(&self) -> bool {
        self.kernel >= 1
            && self.stride >= 1
            && self.in_channels >= 1
            && self.out_channels >= 1
            && self.in_height + 2 * self.padding >= self.kernel
            && self.in_width + 2 * self.padding >= self.kernel
    }
}

/// Reorders each row of a weight matrix from PyTorch's (channel, ky, kx) columns to the patch
/// order (ky, kx, channel), `channels` being the patch's channel count.
fn to_patch_order(w: &Matrix, channels: usize, taps: usize) -> Matrix {
    let mut out = Matrix::zeros(w.rows, w.cols);
    for (src, dst) in w.data.chunks_exact(w.cols).zip(out.data.chunks_exact_mut(w.cols)) {
        for ch in 0..channels {
            for tap in 0..taps {
                dst[tap * channels + ch] = src[ch * taps + tap];
            }
        }
    }
    out
}

/// The inverse of [`to_patch_order`], written into `w`.
fn from_patch_order(patch: &Matrix, channels: usize, taps: usize, w: &mut Matrix) {
    w.reshape_for_overwrite(patch.rows, patch.cols);
    for (src, dst) in patch
        .data
        .chunks_exact(patch.cols)
        .zip(w.data.chunks_exact_mut(patch.cols))
    {
        for ch in 0..channels {
            for tap in 0..taps {
                dst[ch * taps + tap] = src[tap * channels + ch];
            }
        }
    }
}

/// `y[b, oy, ox, o] = b_o + Σ_{c, ky, kx} W[o, c, ky, kx] · x[b, oy·s + ky - p, ox·s + kx - p, c]`.
#[derive(Clone, Debug)]
pub struct Conv2d {
    /// `out x (in·k·k)`: PyTorch's `[out, in, k, k]` flattened.
    pub weight: Param,
    /// `1 x out`.
    pub bias: Param,
    pub geometry: ConvGeometry,
}

impl Conv2d {
    /// PyTorch's default initialisation: uniform in `±1/sqrt(in·k·k)`.
    pub fn new(geometry: ConvGeometry, rng: &mut impl Rng) -> Self {
        assert!(geometry.is_valid(), "Conv2d::new: invalid geometry {geometry:?}");
        let fan_in = geometry.patch();
        let bound = 1.0 / (fan_in as f32).sqrt();
        let mut uniform = |n| -> Vec<f32> { (0..n).map(|_| rng.random_range(-bound..bound)).collect() };
        let weight = Matrix::from_vec(geometry.out_channels, fan_in, uniform(geometry.out_channels * fan_in));
        let bias = Matrix::from_vec(1, geometry.out_channels, uniform(geometry.out_channels));
        Conv2d {
            weight: Param::new(weight),
            bias: Param::new(bias),
            geometry,
        }
    }

    /// The layer with its parameters named `PATH.weight` and `PATH.bias`.
    pub fn named(self, path: &str) -> Self {
        Conv2d {
            weight: self.weight.named(format!("{path}.weight")),
            bias: self.bias.named(format!("{path}.bias")),
            ..self
        }
    }

    /// The convolution; keeps the patch matrix in `col` for the backward pass.
    ///
    /// # Shapes
    /// `x`: batch x (H·W·C); `y`: batch x (Ho·Wo·out) (reshaped).
    pub fn forward(&self, x: &Matrix, col: &mut Matrix, y: &mut Matrix) {
        let g = &self.geometry;
        im2col(x, g, col);
        // One output row per (image, position): (batch·Ho·Wo) x out, which is batch x
        // (Ho·Wo·out) in memory.
        y.reshape_for_overwrite(col.rows, g.out_channels);
        broadcast_rows(&mut y.data, &self.bias.value.data);
        let w = to_patch_order(&self.weight.value, g.in_channels, g.taps());
        matmul(y, col, Op::N, &w, Op::T, true);
        y.rows = x.rows;
        y.cols = g.out_size();
    }

    /// Given `dy`, sets `∂L/∂W = dyᵀ · col` and `∂L/∂b = Σ dy` over images and positions,
    /// and `∂L/∂x = col2im(dy · W)` where `dx` says (`dcol` is scratch space).
    ///
    /// # Shapes
    /// `col`: from [`Conv2d::forward`]; `dy`: batch x (Ho·Wo·out); `dx`: batch x (H·W·C).
    pub fn backward(&mut self, col: &Matrix, dy: &Matrix, dcol: &mut Matrix, dx: GradInput) {
        let g = self.geometry;
        let batch = dy.rows;
        // dy seen as one row per (image, position): (batch·Ho·Wo) x out.
        let rows = MatView::new(batch * g.out_height() * g.out_width(), g.out_channels, &dy.data);
        let mut dw = Matrix::default();
        matmul_tn_tall(&mut dw, rows, col.into());
        from_patch_order(&dw, g.in_channels, g.taps(), &mut self.weight.grad);
        let db = &mut self.bias.grad.data;
        db.fill(0.0);
        for row in dy.data.chunks_exact(g.out_channels) {
            for (d, v) in db.iter_mut().zip(row) {
                *d += v;
            }
        }
        let (dx, accumulate) = match dx {
            GradInput::Skip => return,
            GradInput::Write(dx) => (dx, false),
            GradInput::Add(dx) => (dx, true),
        };
        let w = to_patch_order(&self.weight.value, g.in_channels, g.taps());
        matmul_views(dcol, rows, Op::N, (&w).into(), Op::N, false);
        col2im(dcol, &g, batch, dx, accumulate);
    }
}

/// Sizes of a transposed convolution (PyTorch's `ConvTranspose2d`) and of its input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConvTransposeGeometry {
    pub in_channels: usize,
    pub out_channels: usize,
    pub kernel: usize,
    pub stride: usize,
    pub padding: usize,
    /// Extra rows and columns on the bottom and right of the output (less than the stride),
    /// to reach sizes a strided convolution maps to the same input size.
    pub output_padding: usize,
    pub in_height: usize,
    pub in_width: usize,
}

impl ConvTransposeGeometry {
    /// `(H - 1)·s - 2p + k + output_padding`.
    pub fn out_height(&self) -> usize {
        (self.in_height - 1) * self.stride + self.kernel + self.output_padding - 2 * self.padding
    }

    /// `(W - 1)·s - 2p + k + output_padding`.
    pub fn out_width(&self) -> usize {
        (self.in_width - 1) * self.stride + self.kernel + self.output_padding - 2 * self.padding
    }

    /// Values per output image.
    pub fn out_size(&self) -> usize {
        self.out_height() * self.out_width() * self.out_channels
    }

    /// Values per input image.
    pub fn in_size(&self) -> usize {
        self.in_height * self.in_width * self.in_channels
    }

    /// Whether the sizes make sense (output padding below the stride, a positive output).
    pub fn is_valid(&self) -> bool {
        self.kernel >= 1
            && self.stride >= 1
            && self.in_channels >= 1
            && self.out_channels >= 1
            && self.in_height >= 1
            && self.in_width >= 1
            && self.output_padding < self.stride
            && (self.in_height - 1) * self.stride + self.kernel + self.output_padding > 2 * self.padding
            && (self.in_width - 1) * self.stride + self.kernel + self.output_padding > 2 * self.padding
    }

    /// The convolution this one is the adjoint of: from this output's size back to this
    /// input's size, channels swapped.
    pub fn adjoint(&self) -> ConvGeometry {
        ConvGeometry {
            in_channels: self.out_channels,
            out_channels: self.in_channels,
            kernel: self.kernel,
            stride: self.stride,
            padding: self.padding,
            in_height: self.out_height(),
            in_width: self.out_width(),
        }
    }
}

/// The transposed convolution: each input pixel spreads its channels through the kernel onto
/// the output, `y = col2im(x · W) + b`, the adjoint of [`Conv2d`] with the same kernel.
#[derive(Clone, Debug)]
pub struct ConvTranspose2d {
    /// `in x (out·k·k)`: PyTorch's `[in, out, k, k]` flattened.
    pub weight: Param,
    /// `1 x out`.
    pub bias: Param,
    pub geometry: ConvTransposeGeometry,
}

impl ConvTranspose2d {
    /// PyTorch's default initialisation: uniform in `±1/sqrt(out·k·k)` (its fan-in is computed
    /// from the weight's second dimension).
    pub fn new(geometry: ConvTransposeGeometry, rng: &mut impl Rng) -> Self {
        assert!(
            geometry.is_valid(),
            "ConvTranspose2d::new: invalid geometry {geometry:?}"
        );
        let fan = geometry.out_channels * geometry.kernel * geometry.kernel;
        let bound = 1.0 / (fan as f32).sqrt();
        let mut uniform = |n| -> Vec<f32> { (0..n).map(|_| rng.random_range(-bound..bound)).collect() };
        let weight = Matrix::from_vec(geometry.in_channels, fan, uniform(geometry.in_channels * fan));
        let bias = Matrix::from_vec(1, geometry.out_channels, uniform(geometry.out_channels));
        ConvTranspose2d {
            weight: Param::new(weight),
            bias: Param::new(bias),
            geometry,
        }
    }

    /// The layer with its parameters named `PATH.weight` and `PATH.bias`.
    pub fn named(self, path: &str) -> Self {
        ConvTranspose2d {
            weight: self.weight.named(format!("{path}.weight")),
            bias: self.bias.named(format!("{path}.bias")),
            ..self
        }
    }

    /// `y = col2im(x · W) + b` (`cols` is scratch space).
    ///
    /// # Shapes
    /// `x`: batch x (H·W·in); `y`: batch x (Ho·Wo·out) (reshaped).
    pub fn forward(&self, x: &Matrix, cols: &mut Matrix, y: &mut Matrix) {
        let g = &self.geometry;
        assert_eq!(
            x.cols,
            g.in_size(),
            "ConvTranspose2d: input rows must hold {}x{}x{} maps",
            g.in_height,
            g.in_width,
            g.in_channels
        );
        let rows = MatView::new(x.rows * g.in_height * g.in_width, g.in_channels, &x.data);
        let w = to_patch_order(&self.weight.value, g.out_channels, g.kernel * g.kernel);
        matmul_views(cols, rows, Op::N, (&w).into(), Op::N, false);
        col2im(cols, &g.adjoint(), x.rows, y, false);
        add_to_rows(&mut y.data, &self.bias.value.data);
    }

    /// Given `dy`, sets `∂L/∂W = xᵀ · im2col(dy)` and `∂L/∂b = Σ dy` over images and positions,
    /// and `∂L/∂x = im2col(dy) · Wᵀ` where `dx` says (`dcols` is scratch space).
    ///
    /// # Shapes
    /// `x`: batch x (H·W·in); `dy`: batch x (Ho·Wo·out); `dx`: batch x (H·W·in).
    pub fn backward(&mut self, x: &Matrix, dy: &Matrix, dcols: &mut Matrix, dx: GradInput) {
        let g = self.geometry;
        im2col(dy, &g.adjoint(), dcols);
        let rows = MatView::new(x.rows * g.in_height * g.in_width, g.in_channels, &x.data);
        let taps = g.kernel * g.kernel;
        let mut dw = Matrix::default();
        matmul_tn_tall(&mut dw, rows, (&*dcols).into());
        from_patch_order(&dw, g.out_channels, taps, &mut self.weight.grad);
        let db = &mut self.bias.grad.data;
        db.fill(0.0);
        for pixel in dy.data.chunks_exact(g.out_channels) {
            for (d, v) in db.iter_mut().zip(pixel) {
                *d += v;
            }
        }
        let (dx, accumulate) = match dx {
            GradInput::Skip => return,
            GradInput::Write(dx) => (dx, false),
            GradInput::Add(dx) => (dx, true),
        };
        let batch = x.rows;
        if accumulate {
            assert_eq!(
                dx.shape(),
                (batch, g.in_size()),
                "ConvTranspose2d: dx has the wrong shape"
            );
        }
        // dx seen as one row per input pixel, (batch·H·W) x in, for the product; then as images.
        (dx.rows, dx.cols) = (batch * g.in_height * g.in_width, g.in_channels);
        let w = to_patch_order(&self.weight.value, g.out_channels, taps);
        matmul_views(dx, (&*dcols).into(), Op::N, (&w).into(), Op::T, accumulate);
        (dx.rows, dx.cols) = (batch, g.in_size());
    }
}
