//! Learned priors on real trained runs: a mixture prior and the VampPrior train with the
//! model, move their mass to where the codes are, are saved and read back with the weights,
//! resume to the same numbers, and are what sampling and the importance-weighted estimate
//! use.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};

use vae::eval::importance_weighted_nll;
use vae::latent::split_codes;
use vae::model::{Model, ModelConfig, PriorDensity, PriorKind};
use vae::rng::seeded;
use vae::run::{RunConfig, RunDir, TrainConfig};
use vae::train::{Outcome, TrainEvent, Trainer};

fn config(prior: PriorKind, components: usize, epochs: usize) -> RunConfig {
    RunConfig {
        model: ModelConfig {
            hidden: vec![64],
            latent: 4,
            prior,
            prior_components: components,
            ..ModelConfig::mlp_vae()
        },
        train: TrainConfig {
            dataset: "mnist-sample".into(),
            epochs,
            batch_size: 50,
            threads: 1,
            ..TrainConfig::default()
        },
    }
}

fn params(model: &Model) -> Vec<(String, Vec<f32>)> {
    model
        .params()
        .iter()
        .map(|p| (p.name.clone(), p.value.data.clone()))
        .collect()
}

/// Mean `log p(z)` of the test images' posterior means under `density`.
fn mean_log_density(model: &Model, density: &PriorDensity, data: &vae::data::Dataset) -> f64 {
    let codes = split_codes(model, &data.test).unwrap();
    (0..codes.rows).map(|r| density.log_density(codes.row(r))).sum::<f64>() / codes.rows as f64
}

#[test]
fn a_learned_prior_trains_toward_the_codes_and_is_saved_with_the_weights() {
    let data = common::small_sample(1_000, 200);
    for (prior, components) in [(PriorKind::Mog, 5), (PriorKind::Vamp, 20)] {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::new(dir.path());
        let mut trainer = Trainer::new(run.clone(), config(prior, components, 4)).unwrap();
        let initial = trainer.model.prior_density();
        trainer.train(&data, &AtomicBool::new(false), &mut |_| {}).unwrap();
        let model = run.load_model().unwrap();
        assert_eq!(params(&model), params(&trainer.model), "{prior:?}");
        assert_eq!(model.prior.kind(), prior);
        // Stored as a PyTorch user would shape them: the logits 1-D like a bias.
        let bytes = std::fs::read(run.model()).unwrap();
        let stored = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let shape = |name: &str| stored.tensor(name).unwrap().shape().to_vec();
        match prior {
            PriorKind::Mog => {
                assert_eq!(shape("prior.means"), [components, 4]);
                assert_eq!(shape("prior.logvars"), [components, 4]);
                assert_eq!(shape("prior.logits"), [components]);
            }
            _ => assert_eq!(shape("prior.pseudo_inputs"), [components, 784]),
        }
        let learned = model.prior_density();
        assert_ne!(learned, initial, "{prior:?}: the prior did not move");
        // Held-out codes are far more likely under the prior trained toward them than under
        // N(0, I), which a VAE's codes only approximately fill.
        let (under_learned, under_standard) = (
            mean_log_density(&model, &learned, &data),
            mean_log_density(&model, &PriorDensity::StandardNormal, &data),
        );
        assert!(
            under_learned > under_standard + 0.5,
            "{prior:?}: {under_learned} vs {under_standard} nats"
        );
        // Draws come from the learned prior: they are as likely under it as the codes are,
        // and the seed fixes them.
        let draws = model.prior_codes(2_000, 1.0, &mut seeded(3));
        assert_eq!(draws, model.prior_codes(2_000, 1.0, &mut seeded(3)));
        let draw_ll = (0..draws.rows).map(|r| learned.log_density(draws.row(r))).sum::<f64>() / 2_000.0;
        assert!(
            draw_ll > under_standard,
            "{prior:?}: draws {draw_ll}, codes under N(0, I) {under_standard}"
        );
        // The importance-weighted estimate uses the learned prior: with K = 1 it is the
        // negative ELBO, here as with any prior an upper bound of the K = 50 estimate.
        let nll = |k| {
            importance_weighted_nll(&model, &data.test, k, &mut seeded(5), &mut |_| {})
                .unwrap()
                .nll
        };
        let (one, fifty) = (nll(1), nll(50));
        assert!(fifty < one && fifty > 0.0, "{prior:?}: K = 50 {fifty}, K = 1 {one}");
    }
}

#[test]
fn a_run_with_the_vampprior_stopped_mid_epoch_resumes_to_the_same_numbers() {
    let data = common::small_sample(600, 100);
    let straight_dir = tempfile::tempdir().unwrap();
    let straight_run = RunDir::new(straight_dir.path());
    let mut straight = Trainer::new(straight_run, config(PriorKind::Vamp, 8, 2)).unwrap();
    straight.train(&data, &AtomicBool::new(false), &mut |_| {}).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let run = RunDir::new(dir.path());
    let mut first = Trainer::new(run.clone(), config(PriorKind::Vamp, 8, 2)).unwrap();
    let stop = AtomicBool::new(false);
    let outcome = first
        .train(&data, &stop, &mut |e| {
            if let TrainEvent::Batch { epoch: 1, batch: 3, .. } = e {
                stop.store(true, Ordering::Relaxed)
            }
        })
        .unwrap();
    assert_eq!(outcome, Outcome::Interrupted { epoch: 1, batch: 4 });
    drop(first);
    let mut resumed = Trainer::resume(run, None).unwrap();
    resumed.train(&data, &AtomicBool::new(false), &mut |_| {}).unwrap();
    assert_eq!(params(&resumed.model), params(&straight.model));
}

#[test]
fn free_bits_are_refused_with_a_learned_prior() {
    let mut c = config(PriorKind::Mog, 3, 1);
    c.train.free_bits = 0.5;
    let e = c.validate().unwrap_err().to_string();
    assert!(e.contains("free-bits") && e.contains("--prior standard"), "{e}");
}

#[test]
fn a_prior_is_named_counted_and_written_as_the_flags_say() {
    use vae::run::NewRun;
    // The flag's defaults: ten Gaussians, five hundred pseudo-inputs, none for N(0, I).
    for (prior, word, components) in [
        (PriorKind::Standard, "standard", 0),
        (PriorKind::Mog, "mog", 10),
        (PriorKind::Vamp, "vamp", 500),
    ] {
        assert_eq!(prior.name(), word);
        assert_eq!(prior.is_standard(), prior == PriorKind::Standard);
        let config = NewRun {
            prior,
            ..NewRun::default()
        }
        .config()
        .unwrap();
        assert_eq!(config.model.prior_components, components);
        let json = serde_json::to_string(&config.model).unwrap();
        if prior.is_standard() {
            // Written as before learned priors existed.
            assert!(!json.contains("prior"), "{json}");
        } else {
            assert!(json.contains(&format!("\"prior\":\"{word}\"")), "{json}");
            assert!(json.contains(&format!("\"prior_components\":{components}")), "{json}");
        }
    }
    let model = |prior, k| {
        Model::new(config(prior, k, 1).model, &mut seeded(0))
            .unwrap()
            .prior
            .name()
    };
    assert_eq!(model(PriorKind::Standard, 0), "N(0, I)");
    assert_eq!(model(PriorKind::Mog, 5), "MoG (5 learned Gaussians)");
    assert_eq!(model(PriorKind::Vamp, 20), "VampPrior (20 pseudo-inputs)");
}

#[test]
fn the_standard_prior_draws_at_its_temperature() {
    let z = PriorDensity::StandardNormal.sample(20_000, 3, 0.5, &mut seeded(1));
    assert_eq!((z.rows, z.cols), (20_000, 3));
    let sd = (z.data.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / z.data.len() as f64).sqrt();
    assert!((sd - 0.5).abs() < 0.01, "{sd}");
}

#[test]
fn only_the_standard_normal_has_common_quantiles() {
    let standard = PriorDensity::StandardNormal;
    assert_eq!(standard.quantile(0.5).map(|q| q.abs() < 1e-9), Some(true));
    let q = standard.quantile(0.975).unwrap();
    assert!((q - 1.959_964).abs() < 1e-5, "{q}");
    let model = Model::new(config(PriorKind::Mog, 3, 1).model, &mut seeded(0)).unwrap();
    assert_eq!(model.prior_density().quantile(0.5), None);
}

#[test]
fn a_mixture_prior_s_kl_term_is_log_q_minus_log_p_at_the_drawn_code() {
    use vae::engine::Matrix;
    use vae::engine::mixture::DiagonalMixture;
    // One component N(0, I): KL estimate = ½ Σ_j (z_j² - ε_j² - logvar_j), by hand 1.925
    // for z = (1, 2), ε = (0.5, -1), logvar = (0.1, -0.2).
    let density = PriorDensity::Mixture(DiagonalMixture {
        log_weights: vec![0.0],
        means: Matrix::zeros(1, 2),
        logvars: Matrix::zeros(1, 2),
    });
    let (z, eps, logvar) = (
        Matrix::from_vec(1, 2, vec![1.0, 2.0]),
        Matrix::from_vec(1, 2, vec![0.5, -1.0]),
        Matrix::from_vec(1, 2, vec![0.1, -0.2]),
    );
    let mu = Matrix::zeros(1, 2);
    let mut kl = [0.0f32];
    density.kl_rows(&mu, &logvar, &z, &eps, &mut kl);
    assert!((kl[0] - 1.925).abs() < 1e-5, "{}", kl[0]);
    let mut ratios = Vec::new();
    density.log_ratios(&z, &eps, &logvar, &mut ratios);
    assert!((ratios[0] + 1.925).abs() < 1e-5, "{ratios:?}");
}
