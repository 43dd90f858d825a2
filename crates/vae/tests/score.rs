//! Using a trained model: codes of items, their scores, and how well a score tells another
//! dataset from the model's own.

mod common;

use std::path::PathBuf;

use vae::latent::split_codes;
use vae::model::ModelConfig;
use vae::rng::seeded;
use vae::run::{RunConfig, RunDir, TrainConfig};
use vae::score::{MEASURES, Typical, auroc, encode, score};

fn trained_on_digits() -> vae::train::Trainer {
    let data = common::small_sample(3_000, 500);
    let config = RunConfig {
        model: ModelConfig {
            hidden: vec![128],
            latent: 8,
            ..ModelConfig::mlp_vae()
        },
        train: TrainConfig {
            epochs: 3,
            threads: 2,
            ..TrainConfig::default()
        },
    };
    let dir = tempfile::tempdir().unwrap();
    common::train(&RunDir::new(dir.path()), config, &data)
}

#[test]
fn codes_are_the_posterior_means_and_their_spreads() {
    let trainer = trained_on_digits();
    let test = common::small_sample(10, 200).test;
    let codes = encode(&trainer.model, &test).unwrap();
    assert_eq!(codes.mean, split_codes(&trainer.model, &test).unwrap());
    let std = codes.std.unwrap();
    assert_eq!(std.shape(), (200, 8));
    assert!(std.data.iter().all(|&s| s > 0.0 && s.is_finite()));
}

#[test]
fn scores_tell_fashion_from_digits() {
    let fashion_dir = PathBuf::from("/usr/share/datasets/fashion-mnist");
    if !fashion_dir.is_dir() {
        common::skip_without_data("the package dataset-fashion-mnist is not installed");
        return;
    }
    let trainer = trained_on_digits();
    let digits = common::small_sample(10, 500).test;
    let fashion = vae::data::catalog::load_dir(&fashion_dir).unwrap().test.take(500);
    let (ours, theirs) = (
        score(&trainer.model, &digits, Some(4), &mut seeded(1)).unwrap(),
        score(&trainer.model, &fashion, Some(4), &mut seeded(1)).unwrap(),
    );
    for s in &ours {
        assert!((s.neg_elbo - s.reconstruction - s.kl).abs() < 1e-9);
    }
    // The importance-weighted bound is the tighter one, on average (a single draw's ELBO
    // of one image is noisy either way).
    let mean = |f: fn(&vae::score::ItemScore) -> f64| ours.iter().map(f).sum::<f64>() / ours.len() as f64;
    assert!(mean(|s| s.neg_log_px.unwrap()) < mean(|s| s.neg_elbo));
    let by = |f: fn(&vae::score::ItemScore) -> f64| {
        auroc(
            &ours.iter().map(f).collect::<Vec<_>>(),
            &theirs.iter().map(f).collect::<Vec<_>>(),
        )
        .unwrap()
    };
    let (elbo, iw) = (by(|s| s.neg_elbo), by(|s| s.neg_log_px.unwrap()));
    eprintln!("AUROC of Fashion-MNIST against digits: neg_elbo {elbo:.4}, neg_log_px {iw:.4}");
    assert!(
        elbo > 0.95 && iw > 0.95,
        "a model of digits finds clothes unusual: {elbo}, {iw}"
    );
    // And the scores are the seed's: the same seed, the same numbers.
    assert_eq!(
        score(&trainer.model, &digits, None, &mut seeded(1)).unwrap()[7].neg_elbo,
        ours[7].neg_elbo
    );
}

#[test]
fn a_model_of_clothes_finds_digits_likely_and_the_complexity_ratio_sees_through_it() {
    let fashion_dir = PathBuf::from("/usr/share/datasets/fashion-mnist");
    if !fashion_dir.is_dir() {
        common::skip_without_data("the package dataset-fashion-mnist is not installed");
        return;
    }
    let fashion = vae::data::catalog::load_dir(&fashion_dir).unwrap();
    let data = vae::data::Dataset::labelled("fashion".into(), fashion.train.take(6_000), fashion.test.take(500));
    let config = RunConfig {
        model: ModelConfig {
            hidden: vec![128],
            latent: 8,
            ..ModelConfig::mlp_vae()
        },
        train: TrainConfig {
            epochs: 5,
            threads: 2,
            ..TrainConfig::default()
        },
    };
    let dir = tempfile::tempdir().unwrap();
    let trainer = common::train(&RunDir::new(dir.path()), config, &data);
    let digits = common::small_sample(10, 500).test;
    let typical = Typical::of(&score(&trainer.model, &data.train.take(2_000), None, &mut seeded(2)).unwrap());
    let ours = score(&trainer.model, &data.test, None, &mut seeded(1)).unwrap();
    let theirs = score(&trainer.model, &digits, None, &mut seeded(1)).unwrap();
    let by = |name: &str| {
        let (_, measure) = MEASURES.iter().find(|(n, _)| *n == name).unwrap();
        let of = |s: &[vae::score::ItemScore]| s.iter().map(|s| measure(s, &typical).unwrap()).collect::<Vec<_>>();
        auroc(&of(&ours), &of(&theirs)).unwrap()
    };
    let (elbo, ratio) = (by("neg_elbo"), by("per_complexity"));
    eprintln!("AUROC of digits against clothes: neg_elbo {elbo:.4}, per_complexity {ratio:.4}");
    assert!(
        elbo < 0.5,
        "digits score as more likely than the model's own clothes (Nalisnick et al.): {elbo}"
    );
    assert!(
        ratio > 0.9,
        "per nat of the compressor, digits cost the model more: {ratio}"
    );
}
