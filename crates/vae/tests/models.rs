//! The convolutional body and the conditional VAE, trained for real on digits of the built-in
//! sample: they learn, they reload, and a CVAE draws the class it is asked for.

mod common;

use std::sync::atomic::AtomicBool;

use vae::classifier::{ClassifierTraining, argmax, train as train_classifier};
use vae::eval::{evaluate, importance_weighted_nll};
use vae::model::{Arch, ModelConfig, ModelKind};
use vae::rng::seeded;
use vae::run::{Objective, RunConfig, RunDir, TrainConfig};
use vae::train::Trainer;

fn run_config(model: ModelConfig, epochs: usize) -> RunConfig {
    RunConfig {
        model,
        train: TrainConfig {
            dataset: "mnist-sample".into(),
            epochs,
            batch_size: 64,
            seed: 5,
            threads: 2,
            ..TrainConfig::default()
        },
    }
}

use common::train;

#[test]
fn a_conv_vae_learns_and_reloads_exactly() {
    let data = common::small_sample(2_000, 300);
    let config = ModelConfig {
        channels: vec![8, 16],
        hidden: vec![64],
        latent: 8,
        ..ModelConfig::conv_vae()
    };
    let dir = tempfile::tempdir().unwrap();
    let run = RunDir::new(dir.path());
    let trainer = train(&run, run_config(config, 3), &data);
    let h = &trainer.state.history;
    assert!(h[2].test_loss < 0.85 * h[0].test_loss, "{h:?}");
    assert!(h[2].test_loss < 230.0, "{h:?}");
    let loaded = run.load_model().unwrap();
    assert_eq!(loaded.config.arch, Arch::Conv);
    let x = data.test.range_batch(0, 10);
    assert_eq!(loaded.reconstruct(&x, None), trainer.model.reconstruct(&x, None));
}

#[test]
fn a_cvae_draws_the_class_it_is_asked_for() {
    let data = common::small_sample(5_000, 500);
    let classifier = train_classifier(
        &data,
        &ClassifierTraining {
            channels: vec![16, 32],
            hidden: vec![128],
            epochs: Some(6),
            max_shift: 0,
            ..ClassifierTraining::default()
        },
        &mut |_| {},
    )
    .unwrap();
    let config = ModelConfig {
        kind: ModelKind::Cvae,
        classes: data.classes(),
        hidden: vec![256],
        // A small code leaves the class to the label, as in the classic CVAE demonstration.
        latent: 2,
        ..ModelConfig::mlp_vae()
    };
    let dir = tempfile::tempdir().unwrap();
    let trainer = train(&RunDir::new(dir.path()), run_config(config, 6), &data);
    let model = &trainer.model;
    let per_class = 40;
    let mut hits = Vec::new();
    for label in 0..10u8 {
        let condition = model.label_condition(per_class, Some(label)).unwrap();
        let images = model.sample_prior(per_class, 1.0, condition.as_ref(), &mut seeded(label as u64));
        let probs = classifier.probabilities(&images);
        let right = (0..per_class)
            .filter(|&r| argmax(probs.row(r)) == label as usize)
            .count();
        hits.push(right as f64 / per_class as f64);
    }
    let mean = hits.iter().sum::<f64>() / 10.0;
    eprintln!("share classified as asked: {hits:?}");
    assert!(mean > 0.8, "share of samples classified as asked, per class: {hits:?}");
    assert!(hits.iter().all(|&h| h > 0.5), "{hits:?}");
}

#[test]
fn a_cvae_trains_on_the_importance_weighted_bound() {
    let data = common::small_sample(2_000, 200);
    let config = ModelConfig {
        kind: ModelKind::Cvae,
        classes: 10,
        hidden: vec![64],
        latent: 4,
        ..ModelConfig::mlp_vae()
    };
    let mut run = run_config(config, 2);
    run.train.objective = Objective::Iwae;
    run.train.k = 3;
    let dir = tempfile::tempdir().unwrap();
    let trainer = train(&RunDir::new(dir.path()), run, &data);
    let h = &trainer.state.history;
    assert!(h[1].train_loss < h[0].train_loss, "{h:?}");
    // The bound it was trained on, estimated with more samples, is tighter than its ELBO.
    let elbo = evaluate(&trainer.model, &data.test, &mut seeded(1)).unwrap().total;
    let iw = importance_weighted_nll(&trainer.model, &data.test, 50, &mut seeded(2), &mut |_| {}).unwrap();
    assert!(iw.nll < elbo, "{} vs {elbo}", iw.nll);
}

#[test]
fn a_cvae_refuses_labels_beyond_its_classes() {
    let data = common::small_sample(300, 50);
    let config = ModelConfig {
        kind: ModelKind::Cvae,
        classes: 5,
        hidden: vec![16],
        latent: 2,
        ..ModelConfig::mlp_vae()
    };
    let without_hidden = ModelConfig {
        hidden: vec![],
        ..config.clone()
    };
    let error = without_hidden.validate().unwrap_err().to_string();
    assert!(error.contains("a cvae needs a hidden layer"), "{error}");
    let dir = tempfile::tempdir().unwrap();
    let mut trainer = Trainer::new(RunDir::new(dir.path()), run_config(config, 1)).unwrap();
    let error = trainer
        .train(&data, &AtomicBool::new(false), &mut |_| {})
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("training labels: label") && error.contains("5 classes"),
        "{error}"
    );
}

/// A VAE whose encoder outputs the prior for every image (μ = 0, logvar = 0) and whose decoder
/// ignores the code (its first layer's weights are zero): every importance weight is then
/// `p(x|z) p(z) / q(z|x) = p(x)`, so the estimate of -log p(x) is the reconstruction term
/// exactly, for every K. Dropping the `- ln K` of the average, or a chunk of samples, shows.
#[test]
fn the_importance_weighted_estimate_is_exact_where_the_posterior_is_the_prior() {
    let data = common::small_sample(10, 20);
    for recon in [vae::engine::Recon::Bce, vae::engine::Recon::Mse] {
        let config = ModelConfig {
            hidden: vec![16],
            latent: 3,
            recon,
            ..ModelConfig::mlp_vae()
        };
        let mut model = vae::model::Model::new(config, &mut seeded(1)).unwrap();
        for param in model.params_mut() {
            let name = param.name.clone();
            if name.starts_with("encoder.fc_mu")
                || name.starts_with("encoder.fc_logvar")
                || name == "decoder.fc1.weight"
            {
                param.value.data.fill(0.0);
            }
        }
        let loss = evaluate(&model, &data.test, &mut seeded(2)).unwrap();
        assert!(loss.kl.abs() < 1e-9, "KL of the prior against itself: {}", loss.kl);
        // -log p(x) = recon - offset (the Gaussian constant of the squared error; 0 for BCE).
        let expected = loss.reconstruction - recon.log_likelihood_offset(784);
        // K = 5000 spans three chunks of samples per image.
        for k in [1, 50, 5000] {
            let mut done = 0;
            let estimate = importance_weighted_nll(&model, &data.test, k, &mut seeded(3), &mut |n| done = n).unwrap();
            assert_eq!(done, data.test.len(), "the progress reported at the end");
            assert_eq!(estimate.k, k, "draws averaged per image");
            assert!(
                (estimate.nll - expected).abs() < 1e-3,
                "{recon:?}, K = {k}: {} vs {expected}",
                estimate.nll
            );
        }
    }
}

#[test]
fn the_test_loss_weighs_the_kl_term_by_beta() {
    let data = common::small_sample(10, 30);
    for beta in [0.5f32, 1.0, 4.0] {
        let config = ModelConfig {
            hidden: vec![16],
            latent: 3,
            beta,
            ..ModelConfig::mlp_vae()
        };
        let model = vae::model::Model::new(config, &mut seeded(1)).unwrap();
        let loss = evaluate(&model, &data.test, &mut seeded(2)).unwrap();
        assert!(loss.kl > 0.0, "an untrained encoder's posterior is not the prior");
        let expected = loss.reconstruction + beta as f64 * loss.kl;
        assert!(
            (loss.total - expected).abs() < 1e-9,
            "beta {beta}: {} vs {expected}",
            loss.total
        );
    }
}
