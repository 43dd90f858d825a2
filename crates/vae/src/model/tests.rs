//! Whole-model checks: the backward pass through every layer against finite differences, for
//! each model kind and reconstruction loss, on a model small enough to perturb every weight.

use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;

use super::*;
use crate::engine::Recon;

fn tiny_config(model: ModelKind, recon: Recon, hidden: Vec<usize>) -> ModelConfig {
    ModelConfig {
        kind: model,
        image_height: 2,
        image_width: 3,
        hidden,
        latent: 2,
        recon,
        beta: 0.8,
        classes: if model.is_conditional() { 3 } else { 0 },
        ..ModelConfig::mlp_vae()
    }
}

/// A conv body small enough to perturb every weight: 6x6 images through two convolutions
/// (6 -> 3 -> 2), so the decoder's transposed convolutions need output padding 0 (2 -> 3) and
/// 1 (3 -> 6).
fn tiny_conv_config(model: ModelKind, recon: Recon) -> ModelConfig {
    ModelConfig {
        arch: Arch::Conv,
        image_height: 6,
        image_width: 6,
        channels: vec![2, 3],
        ..tiny_config(model, recon, vec![4])
    }
}

fn tiny(model: ModelKind, recon: Recon, hidden: Vec<usize>) -> Model {
    Model::new(
        tiny_config(model, recon, hidden),
        &mut Xoshiro256PlusPlus::seed_from_u64(1),
    )
    .unwrap()
}

/// Two images of the config's size with pixels spread over [0, 1], and (CVAE) their labels.
fn tiny_batch(config: &ModelConfig) -> (Matrix, Option<Matrix>) {
    let pixels = config.pixels();
    let x = Matrix::from_vec(
        2,
        pixels,
        (0..2 * pixels).map(|i| ((i * 7 + 3) % 11) as f32 / 10.0).collect(),
    );
    let model = Model::new(config.clone(), &mut Xoshiro256PlusPlus::seed_from_u64(1)).unwrap();
    (x, model.condition(&[2, 0]).unwrap())
}

/// The batch-mean loss with the noise drawn from a fixed seed, so each evaluation sees the
/// same ε, and which ReLUs are active: where that pattern changes between `θ - h` and `θ + h`,
/// a kink lies in between and the finite difference says nothing about the derivative.
fn loss_at(model: &Model, x: &Matrix, condition: Option<&Matrix>, bound: Bound) -> (f64, Vec<bool>) {
    let mut ws = Workspace::default();
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(99);
    let total = model.bound_value(x, condition, &mut ws, &mut rng, bound).total;
    // Free bits switch a dimension's KL on and off: another kink to stay clear of.
    let floors = ws.kl_scale.iter().map(|&s| s > 0.0);
    // The VampPrior's pass over its pseudo-inputs has ReLUs too, and a clamp to [0, 1].
    let prior_pass: Vec<&Matrix> = ws
        .prior_pass
        .iter()
        .flat_map(|p| p.encoder.hidden.iter().chain([&p.h]))
        .collect();
    let clamps = model
        .prior
        .params()
        .into_iter()
        .filter(|p| p.name == "prior.pseudo_inputs")
        .flat_map(|p| p.value.data.iter().map(|&v| (0.0..=1.0).contains(&v)))
        .collect::<Vec<_>>();
    let active = ws
        .encoder
        .hidden
        .iter()
        .chain([&ws.h])
        .chain(&ws.decoder.hidden)
        .chain(prior_pass)
        .flat_map(|m| m.data.iter().map(|&v| v > 0.0))
        .chain(floors)
        .chain(clamps)
        .collect();
    (total, active)
}

fn check_model(model: ModelKind, recon: Recon, hidden: Vec<usize>) {
    let bound = tiny(model, recon, hidden.clone()).elbo();
    check_bound(model, recon, hidden, bound);
}

fn check_bound(model: ModelKind, recon: Recon, hidden: Vec<usize>, bound: Bound) {
    check_config(tiny_config(model, recon, hidden), bound);
}

/// Every parameter's analytic gradient against the central difference of the loss.
fn check_config(config: ModelConfig, bound: Bound) {
    check_built(
        Model::new(config, &mut Xoshiro256PlusPlus::seed_from_u64(1)).unwrap(),
        bound,
    );
}

/// [`check_config`] for a model as built.
fn check_built(mut m: Model, bound: Bound) {
    let config = m.config.clone();
    let (x, condition) = tiny_batch(&config);
    let condition = condition.as_ref();
    let label = format!("{}/{}/{:?}", config.kind.name(), config.arch.name(), config.recon);
    let mut ws = Workspace::default();
    m.compute_gradients(
        &x,
        condition,
        &mut ws,
        &mut Xoshiro256PlusPlus::seed_from_u64(99),
        bound,
    );
    let names: Vec<String> = m.params().into_iter().map(|p| p.name.clone()).collect();
    let analytic: Vec<Vec<f32>> = m.params().iter().map(|p| p.grad.data.clone()).collect();
    let step = 1e-2f32;
    // Measured worst errors: 1.6e-3 for MLP bodies, 1.7e-2 for conv bodies, whose f32
    // forward sums thousands of products per output and so rounds the loss differences more.
    let tolerance = match m.config.arch {
        crate::model::Arch::Mlp => 4e-3,
        crate::model::Arch::Conv => 2.5e-2,
    };
    let (mut checked, mut skipped) = (0, 0);
    for (p, (name, grads)) in names.iter().zip(&analytic).enumerate() {
        for (i, &a) in grads.iter().enumerate() {
            let mut probe = m.clone();
            let original = probe.params_mut()[p].value.data[i];
            probe.params_mut()[p].value.data[i] = original + step;
            let (up, up_active) = loss_at(&probe, &x, condition, bound);
            probe.params_mut()[p].value.data[i] = original - step;
            let (down, down_active) = loss_at(&probe, &x, condition, bound);
            if up_active != down_active {
                skipped += 1;
                continue;
            }
            checked += 1;
            let numeric = (up - down) / (2.0 * step as f64);
            let a = a as f64;
            let error = (a - numeric).abs() / (a.abs() + numeric.abs()).max(1e-2);
            assert!(
                error < tolerance,
                "{label} {name}[{i}]: analytic {a}, finite difference {numeric}"
            );
        }
    }
    assert!(
        skipped * 10 < checked,
        "{skipped} entries straddle a ReLU kink, {checked} checked"
    );
}

#[test]
fn vae_gradients_match_finite_differences() {
    check_model(ModelKind::Vae, Recon::Bce, vec![5, 4]);
    check_model(ModelKind::Vae, Recon::Mse, vec![4]);
}

#[test]
fn gaussian_likelihood_gradients_match_finite_differences() {
    // Through the standardisation of a scaler that is not the identity, and log-variances
    // away from their start, for the ELBO and the importance-weighted bound.
    for (kind, k) in [
        (ModelKind::Vae, 1),
        (ModelKind::Vae, 3),
        (ModelKind::Ae, 1),
        (ModelKind::Cvae, 1),
    ] {
        let mut m = tiny(kind, Recon::Gaussian, vec![4]);
        let pixels = m.config.pixels();
        m.scaler = Some(super::Scaler {
            mean: (0..pixels).map(|i| 0.1 * i as f32).collect(),
            std: (0..pixels).map(|i| 0.5 + 0.2 * i as f32).collect(),
        });
        for (i, v) in m.output_logvar.as_mut().unwrap().value.data.iter_mut().enumerate() {
            *v = 0.3 * (i as f32 - 2.0);
        }
        let bound = Bound { k, ..m.elbo() };
        check_built(m, bound);
    }
}

#[test]
fn gaussian_outputs_are_means_in_the_data_units() {
    let mut m = tiny(ModelKind::Vae, Recon::Gaussian, vec![4]);
    let pixels = m.config.pixels();
    let z = Matrix::zeros(1, m.config.latent);
    let plain = m.decode(&z, None);
    m.scaler = Some(super::Scaler {
        mean: vec![10.0; pixels],
        std: vec![2.0; pixels],
    });
    let scaled = m.decode(&z, None);
    for (a, b) in plain.data.iter().zip(&scaled.data) {
        assert!((b - (10.0 + 2.0 * a)).abs() < 1e-5, "{a} -> {b}");
    }
    assert_eq!(m.params().iter().filter(|p| p.name == "decoder.logvar").count(), 1);
}

#[test]
fn autoencoder_gradients_match_finite_differences() {
    check_model(ModelKind::Ae, Recon::Bce, vec![5, 4]);
    check_model(ModelKind::Ae, Recon::Mse, vec![4]);
}

#[test]
fn free_bits_and_beta_gradients_match_finite_differences() {
    // A floor between the two dimensions' KL terms: one is trained, one is held.
    let m = tiny(ModelKind::Vae, Recon::Bce, vec![4]);
    let (x, _) = tiny_batch(&m.config);
    let mut ws = Workspace::default();
    m.forward(
        &x,
        None,
        &mut ws,
        Latent::Sample(&mut Xoshiro256PlusPlus::seed_from_u64(99)),
    );
    let per_dim = crate::engine::gaussian::kl_per_dimension(&ws.mu, &ws.logvar);
    let floor = ((per_dim[0] + per_dim[1]) / 2.0) as f32;
    check_bound(
        ModelKind::Vae,
        Recon::Bce,
        vec![4],
        Bound {
            beta: 0.3,
            free_bits: floor,
            k: 1,
        },
    );
}

#[test]
fn importance_weighted_gradients_match_finite_differences() {
    check_bound(
        ModelKind::Vae,
        Recon::Bce,
        vec![4],
        Bound {
            beta: 1.0,
            free_bits: 0.0,
            k: 3,
        },
    );
    check_bound(
        ModelKind::Vae,
        Recon::Mse,
        vec![5],
        Bound {
            beta: 0.6,
            free_bits: 0.0,
            k: 2,
        },
    );
}

#[test]
fn free_bits_floor_each_dimension_on_known_values() {
    // μ = 0, logvar = 0 (all weights and biases of the heads zero): every KL_j is 0, so the
    // objective is reconstruction + β · latent · floor exactly.
    let mut m = tiny(ModelKind::Vae, Recon::Bce, vec![4]);
    if let EncoderHead::Gaussian { fc_mu, fc_logvar } = &mut m.encoder.head {
        for l in [fc_mu, fc_logvar] {
            l.weight.value.data.fill(0.0);
            l.bias.value.data.fill(0.0);
        }
    }
    let x = Matrix::from_vec(1, 6, vec![0.0, 0.2, 1.0, 0.7, 0.1, 0.9]);
    let mut ws = Workspace::default();
    let loss = m.compute_gradients(
        &x,
        None,
        &mut ws,
        &mut Xoshiro256PlusPlus::seed_from_u64(1),
        Bound {
            beta: 2.0,
            free_bits: 0.25,
            k: 1,
        },
    );
    assert_eq!(loss.kl, 0.0);
    assert!(
        (loss.total - (loss.reconstruction + 2.0 * 2.0 * 0.25)).abs() < 1e-9,
        "{loss:?}"
    );
    assert_eq!(ws.kl_scale, vec![0.0, 0.0]);
}

#[test]
fn a_body_without_hidden_layers_works() {
    check_model(ModelKind::Vae, Recon::Bce, vec![]);
}

#[test]
fn parameter_names_follow_the_pytorch_layout() {
    let m = Model::new(ModelConfig::mlp_vae(), &mut Xoshiro256PlusPlus::seed_from_u64(0)).unwrap();
    let params = m.params();
    let shape = |name: &str| params.iter().find(|p| p.name == name).unwrap().value.shape();
    assert_eq!(shape("encoder.fc1.weight"), (400, 784));
    assert_eq!(shape("encoder.fc1.bias"), (1, 400));
    assert_eq!(shape("encoder.fc_mu.weight"), (20, 400));
    assert_eq!(shape("encoder.fc_logvar.weight"), (20, 400));
    assert_eq!(shape("decoder.fc1.weight"), (400, 20));
    assert_eq!(shape("decoder.fc_out.weight"), (784, 400));
    assert_eq!(params.len(), 10);
    // The parameter count PyTorch reports for its example VAE.
    let counted: usize = params.iter().map(|p| p.value.data.len()).sum();
    assert_eq!(counted, 652_824);
    assert_eq!(ModelConfig::mlp_vae().parameters(), 652_824);
    // 784·400 + 400·20·2 + 20·400 + 400·784 multiply-adds, 2 flops each.
    assert_eq!(
        ModelConfig::mlp_vae().forward_flops(),
        2 * (313_600 + 16_000 + 8_000 + 313_600)
    );
}

#[test]
fn conv_body_gradients_match_finite_differences() {
    for (model, recon) in [(ModelKind::Vae, Recon::Bce), (ModelKind::Ae, Recon::Mse)] {
        let config = tiny_conv_config(model, recon);
        let bound = Model::new(config.clone(), &mut Xoshiro256PlusPlus::seed_from_u64(1))
            .unwrap()
            .elbo();
        check_config(config, bound);
    }
}

#[test]
fn colour_images_pass_their_channels_through_both_bodies() {
    // RGB: the conv body's first convolution takes 3 input channels and its last transposed
    // convolution gives 3 back; the MLP's input is 3 values a pixel.
    let conv = ModelConfig {
        image_channels: 3,
        ..tiny_conv_config(ModelKind::Vae, Recon::Bce)
    };
    assert_eq!(conv.encoder_convs()[0].in_channels, 3);
    assert_eq!(conv.decoder_deconvs().last().unwrap().out_channels, 3);
    let mlp = ModelConfig {
        image_channels: 3,
        ..tiny_config(ModelKind::Vae, Recon::Bce, vec![4])
    };
    assert_eq!(mlp.pixels(), 2 * 3 * 3);
    for config in [conv, mlp] {
        let bound = Model::new(config.clone(), &mut Xoshiro256PlusPlus::seed_from_u64(1))
            .unwrap()
            .elbo();
        check_config(config, bound);
    }
    let two = ModelConfig {
        image_channels: 2,
        ..ModelConfig::mlp_vae()
    };
    assert!(two.validate().unwrap_err().to_string().contains("1 (grey) or 3 (rgb)"));
}

#[test]
fn conditional_gradients_match_finite_differences() {
    let elbo = Bound {
        beta: 0.8,
        free_bits: 0.0,
        k: 1,
    };
    check_config(tiny_config(ModelKind::Cvae, Recon::Bce, vec![5, 4]), elbo);
    check_config(tiny_conv_config(ModelKind::Cvae, Recon::Bce), elbo);
    // The importance-weighted bound repeats the condition with the images.
    check_config(
        tiny_config(ModelKind::Cvae, Recon::Mse, vec![4]),
        Bound {
            beta: 1.0,
            free_bits: 0.0,
            k: 3,
        },
    );
}

fn with_prior(config: ModelConfig, prior: PriorKind, components: usize) -> ModelConfig {
    ModelConfig {
        prior,
        prior_components: components,
        ..config
    }
}

#[test]
fn learned_prior_gradients_match_finite_differences() {
    // The KL term is then log q(z|x) - log p(z) at the drawn z: its gradient reaches the
    // posterior through z, a mixture's means, variances and logits directly, and the
    // VampPrior's pseudo-inputs through the encoder (whose own gradient gains that path).
    let elbo = Bound {
        beta: 0.8,
        free_bits: 0.0,
        k: 1,
    };
    check_config(
        with_prior(tiny_config(ModelKind::Vae, Recon::Bce, vec![5, 4]), PriorKind::Mog, 3),
        elbo,
    );
    check_config(
        with_prior(tiny_config(ModelKind::Cvae, Recon::Mse, vec![4]), PriorKind::Mog, 2),
        elbo,
    );
    check_config(
        with_prior(tiny_config(ModelKind::Vae, Recon::Bce, vec![5, 4]), PriorKind::Vamp, 3),
        elbo,
    );
    check_config(
        with_prior(tiny_config(ModelKind::Vae, Recon::Mse, vec![]), PriorKind::Vamp, 2),
        elbo,
    );
    check_config(
        with_prior(tiny_conv_config(ModelKind::Vae, Recon::Bce), PriorKind::Vamp, 2),
        elbo,
    );
    // Under the importance-weighted bound each sample's prior term is weighted by its
    // normalised weight.
    let iw = Bound { k: 3, ..elbo };
    check_config(
        with_prior(tiny_config(ModelKind::Vae, Recon::Bce, vec![4]), PriorKind::Vamp, 3),
        iw,
    );
    check_config(
        with_prior(tiny_config(ModelKind::Vae, Recon::Bce, vec![4]), PriorKind::Mog, 3),
        iw,
    );
}

#[test]
fn a_one_component_mixture_at_the_origin_estimates_the_standard_kl() {
    // With one component N(0, I) the learned prior is the standard normal: the Monte Carlo
    // KL averages to the closed form, and log p(z) is the same function.
    let config = with_prior(tiny_config(ModelKind::Vae, Recon::Bce, vec![4]), PriorKind::Mog, 1);
    let mut m = Model::new(config, &mut Xoshiro256PlusPlus::seed_from_u64(1)).unwrap();
    m.param_mut("prior.means").unwrap().value.data.fill(0.0);
    let (x, _) = tiny_batch(&m.config);
    let mut ws = Workspace::default();
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(5);
    let (mut sum, draws) = (0.0f64, 20_000);
    for _ in 0..draws {
        m.forward(&x, None, &mut ws, Latent::Sample(&mut rng));
        sum += m.loss(&x, &mut ws, false).kl;
    }
    let mut closed = [0.0f32; 2];
    crate::engine::gaussian::kl_divergence(&ws.mu, &ws.logvar, &mut closed);
    let closed = (closed[0] + closed[1]) as f64 / 2.0;
    let estimate = sum / draws as f64;
    assert!(closed > 0.01, "the posterior is not the prior: {closed}");
    assert!(
        (estimate - closed).abs() < 0.02 * closed.max(1.0),
        "{estimate} vs {closed}"
    );
    let z = [0.3f32, -1.2];
    let standard = PriorDensity::StandardNormal.log_density(&z);
    assert!((m.prior_density().log_density(&z) - standard).abs() < 1e-5);
}

#[test]
fn the_vampprior_is_the_mixture_of_the_posteriors_at_its_pseudo_inputs() {
    let config = with_prior(tiny_config(ModelKind::Vae, Recon::Bce, vec![4]), PriorKind::Vamp, 3);
    let mut m = Model::new(config, &mut Xoshiro256PlusPlus::seed_from_u64(1)).unwrap();
    // Pixels outside [0, 1] are read as the nearest bound.
    let u = &mut m.param_mut("prior.pseudo_inputs").unwrap().value;
    u.data[0] = -3.0;
    u.data[1] = 2.0;
    let mut clamped = u.clone();
    clamped.data[0] = 0.0;
    clamped.data[1] = 1.0;
    let mut ws = Workspace::default();
    m.encode(&clamped, None, &mut ws);
    let PriorDensity::Mixture(mixture) = m.prior_density() else {
        panic!("the VampPrior is a mixture")
    };
    assert_eq!(mixture.means, ws.mu);
    assert_eq!(mixture.logvars, ws.logvar);
    let third = (1.0f32 / 3.0).ln();
    assert!(mixture.log_weights.iter().all(|&a| (a - third).abs() < 1e-6));
}

#[test]
fn a_learned_prior_is_refused_where_it_cannot_train() {
    let refused = |config: ModelConfig, field: &str| {
        let e = config.validate().unwrap_err().to_string();
        assert!(e.contains(field), "{e}");
    };
    refused(
        with_prior(tiny_config(ModelKind::Ae, Recon::Bce, vec![4]), PriorKind::Mog, 3),
        "prior",
    );
    refused(
        with_prior(tiny_config(ModelKind::Cvae, Recon::Bce, vec![4]), PriorKind::Vamp, 3),
        "pseudo-inputs",
    );
    refused(
        with_prior(tiny_config(ModelKind::Vae, Recon::Bce, vec![4]), PriorKind::Mog, 0),
        "prior-components",
    );
    refused(
        with_prior(tiny_config(ModelKind::Vae, Recon::Bce, vec![4]), PriorKind::Standard, 3),
        "prior-components",
    );
    let too_many = MAX_PRIOR_COMPONENTS + 1;
    refused(
        with_prior(
            tiny_config(ModelKind::Vae, Recon::Bce, vec![4]),
            PriorKind::Vamp,
            too_many,
        ),
        "5000",
    );
}

#[test]
fn the_conv_body_is_the_keras_example_by_default() {
    let m = Model::new(ModelConfig::conv_vae(), &mut Xoshiro256PlusPlus::seed_from_u64(0)).unwrap();
    let params = m.params();
    let shape = |name: &str| params.iter().find(|p| p.name == name).unwrap().value.shape();
    // PyTorch's [out, in, 3, 3] flattened; 28 -> 14 -> 7.
    assert_eq!(shape("encoder.conv1.weight"), (32, 9));
    assert_eq!(shape("encoder.conv2.weight"), (64, 32 * 9));
    assert_eq!(shape("encoder.fc1.weight"), (256, 7 * 7 * 64));
    assert_eq!(shape("encoder.fc_mu.weight"), (20, 256));
    assert_eq!(shape("decoder.fc1.weight"), (256, 20));
    assert_eq!(shape("decoder.fc2.weight"), (7 * 7 * 64, 256));
    // ConvTranspose2d keeps PyTorch's [in, out, 3, 3].
    assert_eq!(shape("decoder.deconv1.weight"), (64, 32 * 9));
    assert_eq!(shape("decoder.deconv2.weight"), (32, 9));
    let counted: usize = params.iter().map(|p| p.value.data.len()).sum();
    // By hand: conv1 32·9+32, conv2 64·288+64, fc1 3136·256+256, fc_mu and fc_logvar 256·20+20
    // each, decoder fc1 20·256+256, fc2 256·3136+3136, deconv1 64·32·9+32, deconv2 32·9+1.
    assert_eq!(counted, 1_662_249);
    assert_eq!(m.config.parameters(), counted as u64);
    let deconvs = m.config.decoder_deconvs();
    assert_eq!(
        deconvs
            .iter()
            .map(|g| (g.out_height(), g.output_padding))
            .collect::<Vec<_>>(),
        vec![(14, 1), (28, 1)]
    );
    let images = m.decode(&Matrix::zeros(3, 20), None);
    assert_eq!(images.shape(), (3, 784));
}

#[test]
fn a_cvae_takes_its_label_as_extra_columns_of_fc1() {
    let config = ModelConfig {
        kind: ModelKind::Cvae,
        classes: 10,
        ..ModelConfig::mlp_vae()
    };
    let m = Model::new(config, &mut Xoshiro256PlusPlus::seed_from_u64(0)).unwrap();
    let params = m.params();
    let shape = |name: &str| params.iter().find(|p| p.name == name).unwrap().value.shape();
    assert_eq!(shape("encoder.fc1.weight"), (400, 784));
    assert_eq!(shape("encoder.fc1_label.weight"), (400, 10));
    assert_eq!(shape("decoder.fc1_label.weight"), (400, 10));
    // The label changes what the decoder draws from the same code.
    let z = Matrix::zeros(2, 20);
    let images = m.decode(&z, m.condition(&[3, 7]).unwrap().as_ref());
    assert_ne!(images.row(0), images.row(1));
    let error = m.condition(&[10]).unwrap_err().to_string();
    assert!(error.contains("10 is not a class"), "{error}");
}

#[test]
fn configs_beyond_memory_are_refused_before_allocation() {
    let huge = ModelConfig {
        image_height: 1000,
        image_width: 1000,
        hidden: vec![10_000],
        ..ModelConfig::mlp_vae()
    };
    let error = huge.validate().unwrap_err().to_string();
    assert!(error.contains("parameters: more than"), "{error}");
    let wide = ModelConfig {
        image_height: 5000,
        ..ModelConfig::mlp_vae()
    };
    assert!(wide.validate().unwrap_err().to_string().contains("at most 1024x1024"));
}

#[test]
fn many_images_are_decoded_and_encoded_in_bounded_passes_with_the_same_result() {
    let config = ModelConfig {
        hidden: vec![16],
        latent: 3,
        ..ModelConfig::mlp_vae()
    };
    let m = Model::new(config, &mut Xoshiro256PlusPlus::seed_from_u64(2)).unwrap();
    let n = 2 * m.rows_per_pass() + 37;
    assert!(m.rows_per_pass() < n);
    let z = Matrix::standard_normal(n, 3, &mut Xoshiro256PlusPlus::seed_from_u64(3));
    let all = m.decode(&z, None);
    assert_eq!(all.shape(), (n, 784));
    for r in [0, m.rows_per_pass(), n - 1] {
        let one = m.decode(&rows_of(&z, r, r + 1), None);
        for (a, b) in all.row(r).iter().zip(one.row(0)) {
            assert!((a - b).abs() < 1e-5, "row {r}: {a} vs {b}");
        }
    }
    let codes = crate::latent::encode_codes(&m, &all, &[]).unwrap();
    let last = crate::latent::encode_codes(&m, &rows_of(&all, n - 1, n), &[]).unwrap();
    for (a, b) in codes.row(n - 1).iter().zip(last.row(0)) {
        assert!((a - b).abs() < 1e-5, "{a} vs {b}");
    }
    // A conv body's passes hold fewer images.
    let conv = Model::new(ModelConfig::conv_vae(), &mut Xoshiro256PlusPlus::seed_from_u64(2)).unwrap();
    assert!(conv.rows_per_pass() <= m.rows_per_pass());
}

#[test]
fn the_plan_counts_what_the_model_builds_for_every_kind_and_body() {
    use crate::engine::Recon::Bce;
    for kind in [ModelKind::Ae, ModelKind::Vae, ModelKind::Cvae] {
        for config in [tiny_config(kind, Bce, vec![5, 4]), tiny_conv_config(kind, Bce)] {
            let model = Model::new(config.clone(), &mut Xoshiro256PlusPlus::seed_from_u64(1)).unwrap();
            let built: usize = model.params().iter().map(|p| p.value.data.len()).sum();
            assert_eq!(config.parameters(), built as u64, "{config:?}");
            // Every planned layer is in the model under its name, and nothing else is.
            let plan = config.plan();
            let mut planned: Vec<String> = plan
                .body
                .iter()
                .map(|l| format!("encoder.{}.weight", l.name))
                .chain(plan.decoder.iter().map(|l| format!("decoder.{}.weight", l.name)))
                .collect();
            planned.extend(
                model
                    .encoder
                    .head
                    .params()
                    .iter()
                    .filter(|p| p.name.ends_with(".weight"))
                    .map(|p| p.name.clone()),
            );
            let mut weights: Vec<String> = model
                .params()
                .iter()
                .map(|p| p.name.clone())
                .filter(|n| n.ends_with(".weight") && !n.contains("_label"))
                .collect();
            planned.sort();
            weights.sort();
            assert_eq!(planned, weights, "{config:?}");
            assert_eq!(plan.head.len(), model.encoder.head.params().len() / 2);
        }
    }
}
