//! Element-wise activations. ReLU works in place on the layer output; its backward needs only
//! that output, since `relu(a) > 0` exactly where `a > 0`.

use rayon::prelude::*;

use super::fastmath::{exp_nonpositive, simd_kernel};
use super::matrix::Matrix;
use super::parallel::ROWS_PER_CHUNK;

/// `y = max(x, 0)`, in place.
pub fn relu_forward(x: &mut Matrix) {
    let chunk = ROWS_PER_CHUNK * x.cols.max(1);
    x.data.par_chunks_mut(chunk).for_each(|c| {
        for v in c {
            // Not `v.max(0.0)`: that maps NaN to 0 and would hide a diverged weight.
            if *v < 0.0 {
                *v = 0.0;
            }
        }
    });
}

/// `∂L/∂x = ∂L/∂y · 1[y > 0]`, in place on `grad`, given the forward output `y`.
pub fn relu_backward(y: &Matrix, grad: &mut Matrix) {
    debug_assert_eq!(y.shape(), grad.shape());
    let chunk = ROWS_PER_CHUNK * y.cols.max(1);
    grad.data
        .par_chunks_mut(chunk)
        .zip(y.data.par_chunks(chunk))
        .for_each(|(g, y)| {
            for (g, &y) in g.iter_mut().zip(y) {
                if y <= 0.0 {
                    *g = 0.0;
                }
            }
        });
}

/// The logistic function `σ(x) = 1 / (1 + e^(-x))`, written so that `e^(-|x|)` never
/// overflows, and branch-free so that loops over it vectorise.
#[inline(always)]
pub fn sigmoid(x: f32) -> f32 {
    sigmoid_from(x, exp_nonpositive(-x.abs()))
}

/// `σ(x)` given `e = e^(-|x|)`, for callers that need `e` for something else too.
#[inline(always)]
pub fn sigmoid_from(x: f32, e: f32) -> f32 {
    let inv = 1.0 / (1.0 + e);
    if x >= 0.0 { inv } else { e * inv }
}

/// `∂L/∂x = ∂L/∂y · y(1 - y)`, in place on `grad`, given the forward output `y = σ(x)`.
pub fn sigmoid_backward(y: &Matrix, grad: &mut Matrix) {
    debug_assert_eq!(y.shape(), grad.shape());
    for (g, &y) in grad.data.iter_mut().zip(&y.data) {
        *g *= y * (1.0 - y);
    }
}

/// `σ(x)` of every element, into `out` (reshaped).
pub fn sigmoid_into(x: &Matrix, out: &mut Matrix) {
    out.reshape_for_overwrite(x.rows, x.cols);
    let chunk = ROWS_PER_CHUNK * x.cols.max(1);
    out.data
        .par_chunks_mut(chunk)
        .zip(x.data.par_chunks(chunk))
        .for_each(|(o, x)| sigmoid_slice(x, o));
}

#[inline(always)]
fn sigmoid_slice_kernel(x: &[f32], out: &mut [f32]) {
    for (o, &x) in out.iter_mut().zip(x) {
        *o = sigmoid(x);
    }
}

simd_kernel! { fn sigmoid_slice(x: &[f32], out: &mut [f32]) = sigmoid_slice_kernel; }
