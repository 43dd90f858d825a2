//! The layers a [`ModelConfig`] describes, in the order they run and draw their initial
//! weights: what [`Model::new`](super::Model::new) builds, and what the parameter count, the
//! FLOP count and the activation budget add up, so that none of them can drift from the others.

use rand::Rng;

use super::config::{Arch, ModelConfig};
use crate::engine::layer::{Activation, Stack};
use crate::engine::{Conv2d, ConvGeometry, ConvTranspose2d, ConvTransposeGeometry, Linear, Matrix, Param};

/// One layer's kind and sizes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LayerShape {
    /// `inputs` to `outputs`; a CVAE's first dense layer of each side also reads `label`
    /// one-hot columns.
    Dense {
        inputs: usize,
        outputs: usize,
        label: usize,
    },
    Conv(ConvGeometry),
    Deconv(ConvTransposeGeometry),
}

impl LayerShape {
    /// Weights and biases.
    pub fn parameters(&self) -> u64 {
        match *self {
            LayerShape::Dense { inputs, outputs, label } => ((inputs + label + 1) * outputs) as u64,
            LayerShape::Conv(g) => ((g.patch() + 1) * g.out_channels) as u64,
            LayerShape::Deconv(g) => (g.in_channels * g.out_channels * g.kernel * g.kernel + g.out_channels) as u64,
        }
    }

    /// Floating-point operations of its forward pass for one image (2 per multiply-add); a
    /// transposed convolution costs what the convolution it is the adjoint of costs.
    pub fn forward_flops(&self) -> u64 {
        let conv = |g: ConvGeometry| 2 * (g.out_height() * g.out_width() * g.out_channels * g.patch()) as u64;
        match *self {
            LayerShape::Dense { inputs, outputs, label } => 2 * ((inputs + label) * outputs) as u64,
            LayerShape::Conv(g) => conv(g),
            LayerShape::Deconv(g) => conv(g.adjoint()),
        }
    }

    /// Values its forward and backward pass keep per image, roughly: its input and output,
    /// or a feature map and its patch matrix (a transposed convolution those of its adjoint).
    pub fn activations(&self) -> usize {
        let conv = |g: ConvGeometry| g.out_size() + g.out_height() * g.out_width() * g.patch();
        match *self {
            LayerShape::Dense { inputs, outputs, label } => inputs + label + outputs,
            LayerShape::Conv(g) => conv(g),
            LayerShape::Deconv(g) => conv(g.adjoint()),
        }
    }
}

/// A layer of a stack: its name in the stack's path, its shape and what follows it.
#[derive(Clone, Debug, PartialEq)]
pub struct PlannedLayer {
    pub name: String,
    pub shape: LayerShape,
    pub activation: Activation,
}

impl PlannedLayer {
    /// Builds the layer onto `stack`, its weights drawn from `rng` as PyTorch initialises
    /// them. A dense layer with label columns is initialised as one PyTorch layer over the
    /// concatenation, then split into the layer and its label columns.
    pub fn push_onto(&self, stack: &mut Stack, rng: &mut impl Rng) {
        let (name, activation) = (self.name.as_str(), self.activation);
        match self.shape {
            LayerShape::Conv(g) => {
                stack.push(name, Conv2d::new(g, rng), activation);
            }
            LayerShape::Deconv(g) => {
                stack.push(name, ConvTranspose2d::new(g, rng), activation);
            }
            LayerShape::Dense {
                inputs,
                outputs,
                label: 0,
            } => {
                stack.push(name, Linear::new(inputs, outputs, rng), activation);
            }
            LayerShape::Dense { inputs, outputs, label } => {
                let joint = Linear::new(inputs + label, outputs, rng);
                let (mut data, mut columns) = (
                    Vec::with_capacity(outputs * inputs),
                    Vec::with_capacity(outputs * label),
                );
                for row in joint.weight.value.data.chunks_exact(inputs + label) {
                    data.extend_from_slice(&row[..inputs]);
                    columns.extend_from_slice(&row[inputs..]);
                }
                let layer = Linear {
                    weight: Param::new(Matrix::from_vec(outputs, inputs, data)),
                    bias: joint.bias,
                };
                let weight = Param::new(Matrix::from_vec(outputs, label, columns));
                stack.push_conditioned(name, layer, weight, activation);
            }
        }
    }
}

/// Every layer of a model, in execution order.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// The encoder's body: convolutions (conv body), then the dense hidden layers.
    pub body: Vec<PlannedLayer>,
    /// The encoder's head: one layer from the body's outputs to the code (`fc_z`), or two to
    /// a Gaussian's mean and log-variance (`fc_mu`, `fc_logvar`).
    pub head: Vec<LayerShape>,
    /// The decoder: the hidden layers mirrored, then `fc_out` (MLP), or a dense layer to the
    /// encoder's last feature map and the transposed convolutions (conv).
    pub decoder: Vec<PlannedLayer>,
}

impl Plan {
    /// Every layer's shape, body, head and decoder.
    pub fn shapes(&self) -> impl Iterator<Item = &LayerShape> {
        self.body
            .iter()
            .map(|l| &l.shape)
            .chain(&self.head)
            .chain(self.decoder.iter().map(|l| &l.shape))
    }

    /// The body's output width: what the head reads.
    pub fn head_inputs(&self) -> usize {
        match self.head.first() {
            Some(LayerShape::Dense { inputs, .. }) => *inputs,
            _ => unreachable!("a head is dense layers"),
        }
    }
}

impl ModelConfig {
    /// Weights and biases of the model this config describes.
    pub fn parameters(&self) -> u64 {
        self.plan().shapes().map(|s| s.parameters()).sum::<u64>() + self.prior_parameters()
    }

    /// Values a forward and backward pass keeps per image: every layer's, and the output
    /// pixels. Sizes the passes over many images.
    pub fn activations_per_image(&self) -> usize {
        self.plan().shapes().map(|s| s.activations()).sum::<usize>() + self.pixels()
    }

    /// Floating-point operations of one forward pass for one image (2 per multiply-add).
    pub fn forward_flops(&self) -> u64 {
        self.plan().shapes().map(|s| s.forward_flops()).sum()
    }

    /// `(inputs, outputs)` of every linear layer, in execution order; the first layer of each
    /// side counts the label's columns of a CVAE among its inputs.
    pub fn layer_shapes(&self) -> Vec<(usize, usize)> {
        self.plan()
            .shapes()
            .filter_map(|s| match *s {
                LayerShape::Dense { inputs, outputs, label } => Some((inputs + label, outputs)),
                _ => None,
            })
            .collect()
    }

    /// The layers this config describes (call after [`ModelConfig::validate`]: a conv body's
    /// geometry needs sizes it accepts).
    pub fn plan(&self) -> Plan {
        let label = self.classes;
        // Dense layers `fc1`, `fc2`, … from `width` through `widths`, the label joining the
        // first; ReLU after each.
        let dense = |layers: &mut Vec<PlannedLayer>, mut width: usize, widths: &[usize]| {
            for (i, &outputs) in widths.iter().enumerate() {
                layers.push(PlannedLayer {
                    name: format!("fc{}", i + 1),
                    shape: LayerShape::Dense {
                        inputs: width,
                        outputs,
                        label: if i == 0 { label } else { 0 },
                    },
                    activation: Activation::Relu,
                });
                width = outputs;
            }
            width
        };

        let mut body: Vec<PlannedLayer> = self
            .encoder_convs()
            .into_iter()
            .enumerate()
            .map(|(i, g)| PlannedLayer {
                name: format!("conv{}", i + 1),
                shape: LayerShape::Conv(g),
                activation: Activation::Relu,
            })
            .collect();
        let width = dense(&mut body, self.dense_input(), &self.hidden);
        let heads = if self.kind.is_variational() { 2 } else { 1 };
        let head = vec![
            LayerShape::Dense {
                inputs: width,
                outputs: self.latent,
                label: 0
            };
            heads
        ];

        // The decoder's dense widths: the hidden layers mirrored, then (conv body) the size of
        // the encoder's last feature map, which the transposed convolutions take from there.
        let mut widths: Vec<usize> = self.hidden.iter().rev().copied().collect();
        if self.arch == Arch::Conv {
            widths.push(self.dense_input());
        }
        let mut decoder = Vec::new();
        let width = dense(&mut decoder, self.latent, &widths);
        match self.arch {
            Arch::Mlp => decoder.push(PlannedLayer {
                name: "fc_out".into(),
                shape: LayerShape::Dense {
                    inputs: width,
                    outputs: self.pixels(),
                    label: 0,
                },
                activation: Activation::Identity,
            }),
            Arch::Conv => {
                let deconvs = self.decoder_deconvs();
                let last = deconvs.len() - 1;
                decoder.extend(deconvs.into_iter().enumerate().map(|(i, g)| PlannedLayer {
                    name: format!("deconv{}", i + 1),
                    shape: LayerShape::Deconv(g),
                    activation: if i == last {
                        Activation::Identity
                    } else {
                        Activation::Relu
                    },
                }));
            }
        }
        Plan { body, head, decoder }
    }
}
