//! Element-wise activations. ReLU works in place on the layer output; its backward needs only
//! that output, since `relu(a) > 0` exactly where `a > 0`.

use rayon::prelude::*;

use super::fastmath::{exp_nonpositive, simd_kernel};
use super::matrix::Matrix;
use super::parallel::{ROWS_PER_CHUNK, VALUES_PER_TASK};

/// `y = max(x, 0)`, in place.
pub fn relu_forward(x: &mut Matrix) {
    x.data.par_chunks_mut(VALUES_PER_TASK).for_each(relu_slice);
}

/// `∂L/∂x = ∂L/∂y · 1[y > 0]`, in place on `grad`, given the forward output `y`.
pub fn relu_backward(y: &Matrix, grad: &mut Matrix) {
    debug_assert_eq!(y.shape(), grad.shape());
    grad.data
        .par_chunks_mut(VALUES_PER_TASK)
        .zip(y.data.par_chunks(VALUES_PER_TASK))
        .for_each(|(g, y)| relu_mask_slice(g, y));
}

// Both kernels store every value, picked by a comparison, instead of storing only the values
// that change: a conditional store is a branch on the sign of each value, mispredicted half
// the time on a layer's outputs (it made the 20-to-400 layer's ReLU cost nine times its
// product), while a select vectorises.
#[inline(always)]
fn relu_slice_kernel(x: &mut [f32]) {
    for v in x {
        // Not `v.max(0.0)`: that maps NaN to 0 and would hide a diverged weight; NaN < 0 is
        // false, so NaN stays.
        *v = if *v < 0.0 { 0.0 } else { *v };
    }
}

#[inline(always)]
fn relu_mask_slice_kernel(grad: &mut [f32], y: &[f32]) {
    for (g, &y) in grad.iter_mut().zip(y) {
        *g = if y <= 0.0 { 0.0 } else { *g };
    }
}

simd_kernel! { fn relu_slice(x: &mut [f32]) = relu_slice_kernel; }
simd_kernel! { fn relu_mask_slice(grad: &mut [f32], y: &[f32]) = relu_mask_slice_kernel; }

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
