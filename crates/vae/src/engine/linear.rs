//! The fully connected layer, with PyTorch's weight layout and initialisation so that a
//! checkpoint reads the same in both worlds.

use rand::{Rng, RngExt};
use rayon::prelude::*;

use super::fastmath::simd_kernel;
use super::matmul::{Op, matmul};
use super::matrix::Matrix;

/// Where a backward pass puts `∂L/∂x`.
pub enum GradInput<'a> {
    /// Not needed (the layer reads the data itself).
    Skip,
    /// Overwrite this matrix with it.
    Write(&'a mut Matrix),
    /// Add it to this matrix (a layer input that feeds two layers).
    Add(&'a mut Matrix),
}

/// A trainable tensor, the gradient of the loss with respect to it, and its name: the
/// path its layer was given when the network was built (`encoder.fc1.weight`), which is its
/// safetensors key and names its optimizer state.
#[derive(Clone, Debug, Default)]
pub struct Param {
    pub name: String,
    pub value: Matrix,
    pub grad: Matrix,
}

impl Param {
    /// A parameter holding `value`, with a zero gradient of the same shape, not yet named.
    pub fn new(value: Matrix) -> Self {
        let grad = Matrix::zeros(value.rows, value.cols);
        Param {
            name: String::new(),
            value,
            grad,
        }
    }

    /// The same parameter named `name`.
    pub fn named(self, name: impl Into<String>) -> Self {
        Param {
            name: name.into(),
            ..self
        }
    }
}

/// `y = x · Wᵀ + b`, with `W` stored `out x in` as in PyTorch's `nn.Linear`.
#[derive(Clone, Debug)]
pub struct Linear {
    /// `out x in`.
    pub weight: Param,
    /// `1 x out`.
    pub bias: Param,
}

impl Linear {
    /// PyTorch's default initialisation: `W` and `b` uniform in `±1/sqrt(in)` (what
    /// `kaiming_uniform_(a = sqrt(5))` works out to).
    pub fn new(inputs: usize, outputs: usize, rng: &mut impl Rng) -> Self {
        let bound = 1.0 / (inputs as f32).sqrt();
        let mut uniform = |n| -> Vec<f32> { (0..n).map(|_| rng.random_range(-bound..bound)).collect() };
        let weight = Matrix::from_vec(outputs, inputs, uniform(outputs * inputs));
        let bias = Matrix::from_vec(1, outputs, uniform(outputs));
        Linear {
            weight: Param::new(weight),
            bias: Param::new(bias),
        }
    }

    /// The layer with its parameters named `PATH.weight` and `PATH.bias`.
    pub fn named(self, path: &str) -> Self {
        Linear {
            weight: self.weight.named(format!("{path}.weight")),
            bias: self.bias.named(format!("{path}.bias")),
        }
    }

    /// Number of outputs per row.
    pub fn outputs(&self) -> usize {
        self.weight.value.rows
    }

    /// `y = x · Wᵀ + b`.
    ///
    /// # Shapes
    /// `x`: batch x in, `y`: batch x out (reshaped).
    pub fn forward(&self, x: &Matrix, y: &mut Matrix) {
        y.reshape_for_overwrite(x.rows, self.outputs());
        // Start from the broadcast bias and let the product accumulate onto it: one pass.
        broadcast_rows(&mut y.data, &self.bias.value.data);
        matmul(y, x, Op::N, &self.weight.value, Op::T, true);
    }

    /// Given `dy = ∂L/∂y`, sets the parameter gradients
    /// `∂L/∂W = dyᵀ · x` and `∂L/∂b = Σ_rows dy`,
    /// and `∂L/∂x = dy · W` where `dx` says.
    ///
    /// Gradients are overwritten, not accumulated: each layer is used once per step.
    ///
    /// # Shapes
    /// `x`: batch x in, `dy`: batch x out, `dx`: batch x in (reshaped).
    pub fn backward(&mut self, x: &Matrix, dy: &Matrix, dx: GradInput) {
        matmul(&mut self.weight.grad, dy, Op::T, x, Op::N, false);
        sum_rows(&dy.data, &mut self.bias.grad.data);
        match dx {
            GradInput::Skip => {}
            GradInput::Write(dx) => matmul(dx, dy, Op::N, &self.weight.value, Op::N, false),
            GradInput::Add(dx) => matmul(dx, dy, Op::N, &self.weight.value, Op::N, true),
        }
    }
}

/// `out = Σ_rows m`, `m` a row-major matrix with `out.len()` columns, the rows added in order.
#[inline(always)]
fn sum_rows_kernel(m: &[f32], out: &mut [f32]) {
    out.fill(0.0);
    for row in m.chunks_exact(out.len().max(1)) {
        for (o, v) in out.iter_mut().zip(row) {
            *o += v;
        }
    }
}

simd_kernel! { fn sum_rows(m: &[f32], out: &mut [f32]) = sum_rows_kernel; }

/// Values per parallel task of [`broadcast_rows`] and [`add_to_rows`].
const BROADCAST_CHUNK: usize = 1 << 16;

/// Every row of `out` (a whole number of rows as long as `row`) set to `row`: a layer's bias,
/// broadcast before its product accumulates onto it. In parallel tasks of whole rows: at
/// batch 1024 the output of a 784-wide layer is 3 MB, which one thread copying alone took
/// while the others waited.
pub fn broadcast_rows(out: &mut [f32], row: &[f32]) {
    let chunk = (BROADCAST_CHUNK / row.len().max(1)).max(1) * row.len().max(1);
    out.par_chunks_mut(chunk).for_each(|rows| {
        for r in rows.chunks_exact_mut(row.len().max(1)) {
            r.copy_from_slice(row);
        }
    });
}

/// `row` added onto every row of `out`, in parallel tasks of whole rows as in
/// [`broadcast_rows`].
pub fn add_to_rows(out: &mut [f32], row: &[f32]) {
    let chunk = (BROADCAST_CHUNK / row.len().max(1)).max(1) * row.len().max(1);
    out.par_chunks_mut(chunk).for_each(|rows| {
        for r in rows.chunks_exact_mut(row.len().max(1)) {
            for (v, b) in r.iter_mut().zip(row) {
                *v += b;
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bias_reaches_every_row_across_parallel_tasks() {
        // 300 rows of 784: several tasks of 83 rows and a shorter last one.
        let bias: Vec<f32> = (0..784).map(|i| i as f32 * 0.5 - 7.0).collect();
        let mut out = vec![f32::NAN; 300 * 784];
        broadcast_rows(&mut out, &bias);
        for row in out.chunks_exact(784) {
            assert_eq!(row, &bias[..]);
        }
        let mut sums: Vec<f32> = (0..300 * 784).map(|i| (i / 784) as f32).collect();
        add_to_rows(&mut sums, &bias);
        for (r, row) in sums.chunks_exact(784).enumerate() {
            for (v, b) in row.iter().zip(&bias) {
                assert_eq!(*v, r as f32 + b);
            }
        }
    }
}
