//! Where a training step's time goes: every layer's forward and backward pass, the loss and
//! its gradient, and the optimizer, each timed alone at the step's batch size and thread
//! count, against the whole step. What the parts do not add up to is the rest: the
//! reparameterisation and KL, copies, and the threads waiting on each other between parts.
//!
//! Each part runs on inputs of its real shape drawn at random (the time of a product does not
//! depend on its values; a loss's barely does), so the table needs no training data.

use serde::Serialize;

use super::TrainingSteps;
use crate::data::Split;
use crate::engine::layer::{Activation, GradScratch, Pass, Stack, StackActivations};
use crate::engine::{GradInput, Matrix};
use crate::model::{LayerShape, ModelConfig, PlannedLayer};
use crate::rng::{Stream, stream_rng};

/// What kind of work a part is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Work {
    /// A layer's matrix products (and a convolution's patch gathering), with its ReLU.
    Product,
    /// Per-value work: the reconstruction loss and its gradient.
    ElementWise,
    /// The Adam update of every parameter.
    Optimizer,
    /// The step's time not in any part above.
    Rest,
    /// The whole step, as training runs it.
    Step,
}

/// One row of the profile.
#[derive(Clone, Debug, Serialize)]
pub struct Part {
    /// `encoder.fc1 forward`, `loss (bce) + gradient`, `Adam`, `rest`, `step`.
    pub name: String,
    pub work: Work,
    /// Milliseconds per step.
    pub ms: f64,
    /// FLOP rate of the part, for the products.
    pub gflops: Option<f64>,
}

/// Times `f` for about `seconds` after a warm-up; milliseconds per call.
fn ms_per_call(seconds: f64, f: impl FnMut()) -> f64 {
    1e3 / super::steps_per_sec(seconds, f)
}

/// Every layer of the model, with the stack it belongs to and whether its input gradient is
/// computed in training (not for the layer reading the data).
fn layers(config: &ModelConfig) -> Vec<(&'static str, PlannedLayer, bool)> {
    let plan = config.plan();
    let mut out: Vec<(&'static str, PlannedLayer, bool)> = Vec::new();
    for (i, layer) in plan.body.into_iter().enumerate() {
        out.push(("encoder", layer, i > 0));
    }
    let heads = if plan.head.len() == 2 {
        ["fc_mu", "fc_logvar"].as_slice()
    } else {
        &["fc_z"]
    };
    for (name, shape) in heads.iter().zip(plan.head) {
        let layer = PlannedLayer {
            name: name.to_string(),
            shape,
            activation: Activation::Identity,
        };
        out.push(("encoder", layer, true));
    }
    for layer in plan.decoder {
        out.push(("decoder", layer, true));
    }
    out
}

/// The input width of a layer.
fn inputs(shape: &LayerShape) -> usize {
    match *shape {
        LayerShape::Dense { inputs, .. } => inputs,
        LayerShape::Conv(g) => g.in_size(),
        LayerShape::Deconv(g) => g.in_size(),
    }
}

/// Profiles one training step of `config` at `batch` images, each part timed for about
/// `seconds`. The step itself runs on `train`'s images, as `vae bench` runs it.
pub fn profile(config: &ModelConfig, train: &Split, batch: usize, seconds: f64) -> crate::Result<Vec<Part>> {
    config.validate()?;
    let mut rng = stream_rng(0, Stream::Init);
    let mut parts = Vec::new();
    for (side, planned, input_grad) in layers(config) {
        let mut stack = Stack::new(side);
        planned.push_onto(&mut stack, &mut rng);
        let x = Matrix::standard_normal(batch, inputs(&planned.shape), &mut rng);
        let condition = match planned.shape {
            LayerShape::Dense { label, .. } if label > 0 => Some(Matrix::zeros(batch, label)),
            _ => None,
        };
        let (mut acts, mut y) = (StackActivations::default(), Matrix::default());
        let forward_ms = ms_per_call(seconds, || stack.forward(&x, condition.as_ref(), &mut acts, &mut y));
        // The backward pass works on dy in place only through its ReLU's mask, which gives
        // the same dy again when applied again: every call does the same work with no copy.
        let mut dy = Matrix::standard_normal(y.rows, y.cols, &mut rng);
        let (mut scratch, mut dx) = (GradScratch::default(), Matrix::default());
        let backward_ms = ms_per_call(seconds, || {
            let pass = Pass {
                x: &x,
                condition: condition.as_ref(),
                acts: &acts,
                y: &y,
            };
            let target = if input_grad {
                GradInput::Write(&mut dx)
            } else {
                GradInput::Skip
            };
            stack.backward(pass, &mut dy, &mut scratch, target);
        });
        let flops = (planned.shape.forward_flops() * batch as u64) as f64;
        let backward_flops = flops * if input_grad { 2.0 } else { 1.0 };
        let name = format!("{side}.{}", planned.name);
        parts.push(Part {
            name: format!("{name} forward"),
            work: Work::Product,
            ms: forward_ms,
            gflops: Some(flops / forward_ms / 1e6),
        });
        parts.push(Part {
            name: format!("{name} backward"),
            work: Work::Product,
            ms: backward_ms,
            gflops: Some(backward_flops / backward_ms / 1e6),
        });
    }

    let pixels = config.pixels();
    let logits = Matrix::standard_normal(batch, pixels, &mut rng);
    let mut target = Matrix::standard_normal(batch, pixels, &mut rng);
    for v in &mut target.data {
        *v = 0.5 + 0.25 * v.tanh();
    }
    let logvar = vec![0.0f32; pixels];
    let (mut rows, mut grad) = (vec![0.0f32; batch], Matrix::default());
    let loss_ms = ms_per_call(seconds, || {
        config
            .recon
            .loss(&logits, &target, &logvar, &mut rows, Some((&mut grad, 1.0)));
    });
    parts.push(Part {
        name: format!("loss ({}) + gradient", config.recon.name()),
        work: Work::ElementWise,
        ms: loss_ms,
        gflops: None,
    });

    let mut steps = TrainingSteps::new(config, train, batch)?;
    let adam_ms = ms_per_call(seconds, || steps.adam.update(&mut steps.model.params_mut()));
    parts.push(Part {
        name: "Adam".into(),
        work: Work::Optimizer,
        ms: adam_ms,
        gflops: None,
    });

    let batch = steps.batch;
    let step_ms = ms_per_call(seconds.max(0.5), || steps.step());
    let accounted: f64 = parts.iter().map(|p| p.ms).sum();
    parts.push(Part {
        name: "rest".into(),
        work: Work::Rest,
        ms: step_ms - accounted,
        gflops: None,
    });
    parts.push(Part {
        name: "step".into(),
        work: Work::Step,
        ms: step_ms,
        gflops: Some(crate::bench::train_flops_per_image(config) * batch as f64 / step_ms / 1e6),
    });
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{DataDirs, DatasetName, DatasetSpec, catalog};

    #[test]
    fn the_parts_cover_every_layer_and_add_up_to_the_step() {
        let data = catalog::load(&DatasetSpec::Named(DatasetName::MnistSample), &DataDirs::from_env()).unwrap();
        let config = ModelConfig {
            hidden: vec![64],
            latent: 4,
            ..ModelConfig::for_body(crate::model::Arch::Mlp, None, None)
        };
        let parts = profile(&config, &data.train, 32, 0.01).unwrap();
        let names: Vec<&str> = parts.iter().map(|p| p.name.as_str()).collect();
        for layer in [
            "encoder.fc1",
            "encoder.fc_mu",
            "encoder.fc_logvar",
            "decoder.fc1",
            "decoder.fc_out",
        ] {
            assert!(names.contains(&format!("{layer} forward").as_str()), "{names:?}");
            assert!(names.contains(&format!("{layer} backward").as_str()), "{names:?}");
        }
        let step = parts.iter().find(|p| p.work == Work::Step).unwrap().ms;
        let sum: f64 = parts.iter().filter(|p| p.work != Work::Step).map(|p| p.ms).sum();
        assert!((sum - step).abs() < 1e-9 * step.max(1.0), "{sum} vs {step}");
        assert!(
            parts
                .iter()
                .filter(|p| p.work == Work::Product)
                .all(|p| p.ms > 0.0 && p.gflops.unwrap() > 0.0)
        );
    }
}
