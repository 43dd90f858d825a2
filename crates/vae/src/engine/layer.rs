//! One interface over the layers, and a stack of them: the encoder's body, the decoder and the
//! classifier are each a [`Stack`], so their forward and backward passes, their parameter
//! names and the walk over their parameters are written once, here.
//!
//! A stack's parameters are named as it is built (`encoder` + `conv1` → `encoder.conv1.weight`,
//! the way candle's `VarBuilder` hands out paths), so saving, loading, the optimizer and the
//! parameter count all walk the same list: [`Stack::params`].

use super::activation::{relu_backward, relu_forward};
use super::matmul::{Op, matmul};
use super::{Conv2d, ConvTranspose2d, GradInput, Linear, Matrix, Param};

/// A layer with parameters: `y = f(x; θ)`.
#[derive(Clone, Debug)]
pub enum Layer {
    Linear(Linear),
    Conv2d(Conv2d),
    ConvTranspose2d(ConvTranspose2d),
}

impl From<Linear> for Layer {
    fn from(l: Linear) -> Self {
        Layer::Linear(l)
    }
}

impl From<Conv2d> for Layer {
    fn from(c: Conv2d) -> Self {
        Layer::Conv2d(c)
    }
}

impl From<ConvTranspose2d> for Layer {
    fn from(c: ConvTranspose2d) -> Self {
        Layer::ConvTranspose2d(c)
    }
}

impl Layer {
    /// `y = f(x)`, keeping in `cache` what [`Layer::backward`] needs besides `x` (the patch
    /// matrix of a convolution; scratch space for a transposed one).
    pub fn forward(&self, x: &Matrix, cache: &mut Matrix, y: &mut Matrix) {
        match self {
            Layer::Linear(l) => l.forward(x, y),
            Layer::Conv2d(c) => c.forward(x, cache, y),
            Layer::ConvTranspose2d(c) => c.forward(x, cache, y),
        }
    }

    /// Given `dy = ∂L/∂y` at the input `x` and the `cache` of the forward pass, sets the
    /// parameters' gradients and `∂L/∂x` where `dx` says (`scratch` is scratch space). Each
    /// layer's own doc comment gives its formula.
    pub fn backward(&mut self, x: &Matrix, cache: &Matrix, dy: &Matrix, scratch: &mut Matrix, dx: GradInput) {
        match self {
            Layer::Linear(l) => l.backward(x, dy, dx),
            Layer::Conv2d(c) => c.backward(cache, dy, scratch, dx),
            Layer::ConvTranspose2d(c) => c.backward(x, dy, scratch, dx),
        }
    }

    /// The weight, then the bias.
    pub fn params(&self) -> [&Param; 2] {
        match self {
            Layer::Linear(l) => [&l.weight, &l.bias],
            Layer::Conv2d(c) => [&c.weight, &c.bias],
            Layer::ConvTranspose2d(c) => [&c.weight, &c.bias],
        }
    }

    /// The weight, then the bias, mutably.
    pub fn params_mut(&mut self) -> [&mut Param; 2] {
        match self {
            Layer::Linear(l) => [&mut l.weight, &mut l.bias],
            Layer::Conv2d(c) => [&mut c.weight, &mut c.bias],
            Layer::ConvTranspose2d(c) => [&mut c.weight, &mut c.bias],
        }
    }

    /// The same layer with its parameters named `PATH.weight` and `PATH.bias`.
    fn named(self, path: &str) -> Self {
        match self {
            Layer::Linear(l) => Layer::Linear(l.named(path)),
            Layer::Conv2d(c) => Layer::Conv2d(c.named(path)),
            Layer::ConvTranspose2d(c) => Layer::ConvTranspose2d(c.named(path)),
        }
    }
}

/// What follows a layer in a stack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    /// Nothing: the stack's output layer (logits, or a code).
    Identity,
    /// `max(0, ·)`, applied in place on the layer's output.
    Relu,
}

/// One layer of a stack with what follows it, and optionally the weights of a second input.
#[derive(Clone, Debug)]
pub struct Block {
    pub layer: Layer,
    pub activation: Activation,
    /// A conditioned dense layer's weights on the condition `c` (a CVAE's one-hot label):
    /// `y = x · Wᵀ + c · Lᵀ + b`, what PyTorch's `Linear(in + classes, out)` computes on
    /// `[x, c]` with its weight kept in two pieces, `out x classes` here.
    pub condition_weight: Option<Param>,
}

/// The buffers of one pass through a stack, kept between batches: a training step allocates
/// nothing once the first batch has sized them.
#[derive(Debug, Default)]
pub struct StackActivations {
    /// Every layer's output after its activation but the last's, which goes to the caller's
    /// `y`.
    pub hidden: Vec<Matrix>,
    /// Every layer's cache (see [`Layer::forward`]).
    pub caches: Vec<Matrix>,
}

/// Gradient buffers a backward pass through a stack works in; one set serves every stack of a
/// model, since their backward passes run one after the other.
#[derive(Debug, Default)]
pub struct GradScratch {
    pub(crate) a: Matrix,
    pub(crate) b: Matrix,
    /// The layers' scratch space (a convolution's patch gradients).
    pub(crate) patches: Matrix,
}

/// A forward pass through a stack, as [`Stack::backward`] needs it back.
#[derive(Clone, Copy)]
pub struct Pass<'a> {
    /// The stack's input.
    pub x: &'a Matrix,
    /// The condition of its conditioned layers, if any.
    pub condition: Option<&'a Matrix>,
    /// What [`Stack::forward`] kept.
    pub acts: &'a StackActivations,
    /// The stack's output.
    pub y: &'a Matrix,
}

/// Layers applied one after the other, each followed by its activation.
#[derive(Clone, Debug)]
pub struct Stack {
    /// The path that prefixes its parameters' names (`encoder`).
    pub path: String,
    pub blocks: Vec<Block>,
}

impl Stack {
    /// An empty stack whose parameters will be named `PATH.<layer>.<weight|bias>`.
    pub fn new(path: &str) -> Self {
        Stack {
            path: path.to_string(),
            blocks: Vec::new(),
        }
    }

    /// Appends `layer`, naming its parameters `PATH.NAME.weight` and `PATH.NAME.bias`.
    pub fn push(&mut self, name: &str, layer: impl Into<Layer>, activation: Activation) -> &mut Self {
        let layer = layer.into().named(&format!("{}.{name}", self.path));
        self.blocks.push(Block {
            layer,
            activation,
            condition_weight: None,
        });
        self
    }

    /// Appends a dense layer that also reads the condition, through `weight` (outputs x
    /// condition width), named `PATH.NAME_label.weight`.
    pub fn push_conditioned(&mut self, name: &str, layer: Linear, weight: Param, activation: Activation) -> &mut Self {
        assert_eq!(
            weight.value.rows,
            layer.outputs(),
            "a condition weight needs one row per output"
        );
        self.push(name, layer, activation);
        let path = format!("{}.{name}_label.weight", self.path);
        self.blocks.last_mut().expect("just pushed").condition_weight = Some(weight.named(path));
        self
    }

    /// Whether the stack has no layers (its output is its input).
    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }

    /// Every parameter: each block's weight, bias and condition weight, input side first.
    pub fn params(&self) -> impl Iterator<Item = &Param> {
        self.blocks
            .iter()
            .flat_map(|b| b.layer.params().into_iter().chain(b.condition_weight.as_ref()))
    }

    /// Every parameter, mutably, in the order of [`Stack::params`].
    pub fn params_mut(&mut self) -> impl Iterator<Item = &mut Param> {
        self.blocks
            .iter_mut()
            .flat_map(|b| b.layer.params_mut().into_iter().chain(b.condition_weight.as_mut()))
    }

    /// `y = stack(x)`, with `condition` for the conditioned layers (one row per row of `x`),
    /// keeping in `acts` what [`Stack::backward`] needs. With no layers, `y` is a copy of `x`.
    ///
    /// # Panics
    /// A conditioned layer without a condition: a caller's bug.
    pub fn forward(&self, x: &Matrix, condition: Option<&Matrix>, acts: &mut StackActivations, y: &mut Matrix) {
        let Some(last) = self.blocks.len().checked_sub(1) else {
            y.reshape_for_overwrite(x.rows, x.cols);
            y.data.copy_from_slice(&x.data);
            return;
        };
        let StackActivations { hidden, caches } = acts;
        hidden.resize_with(last, Matrix::default);
        caches.resize_with(self.blocks.len(), Matrix::default);
        for (i, block) in self.blocks.iter().enumerate() {
            let (done, rest) = hidden.split_at_mut(i);
            let input = done.last().unwrap_or(x);
            let out = if i == last { &mut *y } else { &mut rest[0] };
            block.layer.forward(input, &mut caches[i], out);
            if let Some(w) = &block.condition_weight {
                let c = condition.expect("a conditioned layer needs its condition");
                matmul(out, c, Op::N, &w.value, Op::T, true);
            }
            if block.activation == Activation::Relu {
                relu_forward(out);
            }
        }
    }

    /// Given `dy = ∂L/∂y` of `pass`, sets every parameter's gradient and `∂L/∂x` where
    /// `dx` says. Through each block, from the top: the activation's backward, `∂L/∂L_w = dyᵀ ·
    /// c` for a condition weight, then the layer's backward. `dy` is overwritten.
    pub fn backward(&mut self, pass: Pass, dy: &mut Matrix, scratch: &mut GradScratch, dx: GradInput) {
        let Pass { x, condition, acts, y } = pass;
        let Some(last) = self.blocks.len().checked_sub(1) else {
            match dx {
                GradInput::Skip => {}
                GradInput::Write(dx) => {
                    dx.reshape_for_overwrite(dy.rows, dy.cols);
                    dx.data.copy_from_slice(&dy.data);
                }
                GradInput::Add(dx) => {
                    for (d, g) in dx.data.iter_mut().zip(&dy.data) {
                        *d += g;
                    }
                }
            }
            return;
        };
        let GradScratch { a, b, patches } = scratch;
        let mut dx = Some(dx);
        for i in (0..=last).rev() {
            let block = &mut self.blocks[i];
            // ∂L/∂(this block's output): the caller's dy at the top, else what the block
            // above left in `a`.
            let grad: &mut Matrix = if i == last { &mut *dy } else { &mut *a };
            let out = if i == last { y } else { &acts.hidden[i] };
            if block.activation == Activation::Relu {
                relu_backward(out, grad);
            }
            if let Some(w) = &mut block.condition_weight {
                let c = condition.expect("a conditioned layer needs its condition");
                matmul(&mut w.grad, grad, Op::T, c, Op::N, false);
            }
            let input = if i == 0 { x } else { &acts.hidden[i - 1] };
            let target = if i == 0 {
                dx.take().expect("the input's gradient is asked once")
            } else {
                GradInput::Write(&mut *b)
            };
            block.layer.backward(input, &acts.caches[i], grad, patches, target);
            std::mem::swap(a, b);
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_xoshiro::Xoshiro256PlusPlus;

    use super::*;

    #[test]
    fn an_empty_stack_passes_its_input_and_its_gradient_through() {
        let mut stack = Stack::new("none");
        let x = Matrix::from_vec(2, 3, vec![1.0, -2.0, 3.0, 0.5, 0.0, -1.0]);
        let (mut acts, mut y) = (StackActivations::default(), Matrix::default());
        stack.forward(&x, None, &mut acts, &mut y);
        assert_eq!(y, x);
        let dy = Matrix::from_vec(2, 3, vec![0.1, 0.2, 0.3, 0.4, 0.5, 0.6]);
        let pass = Pass {
            x: &x,
            condition: None,
            acts: &acts,
            y: &y,
        };
        let mut scratch = GradScratch::default();
        let mut dx = Matrix::default();
        stack.backward(pass, &mut dy.clone(), &mut scratch, GradInput::Write(&mut dx));
        assert_eq!(dx, dy);
        let mut sum = Matrix::from_vec(2, 3, vec![1.0; 6]);
        stack.backward(pass, &mut dy.clone(), &mut scratch, GradInput::Add(&mut sum));
        let expected: Vec<f32> = dy.data.iter().map(|g| 1.0 + g).collect();
        assert_eq!(sum.data, expected);
        assert_eq!(stack.params().count(), 0);
    }

    #[test]
    fn a_stack_names_its_parameters_by_path_and_walks_them_input_side_first() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
        let mut stack = Stack::new("net");
        stack.push("fc1", Linear::new(3, 4, &mut rng), Activation::Relu);
        let label = Param::new(Matrix::zeros(2, 5));
        stack.push_conditioned("fc2", Linear::new(4, 2, &mut rng), label, Activation::Identity);
        let expected = [
            ("net.fc1.weight", (4, 3)),
            ("net.fc1.bias", (1, 4)),
            ("net.fc2.weight", (2, 4)),
            ("net.fc2.bias", (1, 2)),
            ("net.fc2_label.weight", (2, 5)),
        ];
        let walked: Vec<(String, (usize, usize))> = stack.params().map(|p| (p.name.clone(), p.value.shape())).collect();
        let expected: Vec<(String, (usize, usize))> = expected.iter().map(|&(n, s)| (n.to_string(), s)).collect();
        assert_eq!(walked, expected);
        let names_mut: Vec<String> = stack.params_mut().map(|p| p.name.clone()).collect();
        let names: Vec<String> = expected.into_iter().map(|(n, _)| n).collect();
        assert_eq!(names_mut, names);
    }
    #[test]
    fn convolutions_name_both_their_weight_and_their_bias() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
        let conv = super::super::ConvGeometry {
            in_channels: 1,
            out_channels: 2,
            kernel: 3,
            stride: 2,
            padding: 1,
            in_height: 4,
            in_width: 4,
        };
        let deconv = super::super::ConvTransposeGeometry {
            in_channels: 2,
            out_channels: 1,
            kernel: 3,
            stride: 2,
            padding: 1,
            output_padding: 1,
            in_height: 2,
            in_width: 2,
        };
        let mut stack = Stack::new("net");
        stack.push("conv1", Conv2d::new(conv, &mut rng), Activation::Relu);
        stack.push("deconv1", ConvTranspose2d::new(deconv, &mut rng), Activation::Identity);
        let names: Vec<&str> = stack.params().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "net.conv1.weight",
                "net.conv1.bias",
                "net.deconv1.weight",
                "net.deconv1.bias"
            ]
        );
    }
}
