//! The fully connected layer, with PyTorch's weight layout and initialisation so that a
//! checkpoint reads the same in both worlds.

use rand::{Rng, RngExt};

use super::fastmath::simd_kernel;
use super::matmul::{Op, matmul};
use super::matrix::Matrix;
use super::rows::broadcast_rows;

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
