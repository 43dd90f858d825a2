//! Fitted samplers on real trained runs: a mixture fitted to a run's codes is saved beside
//! it, read back exactly, tied to the weights it was fitted to, drawn per class for a CVAE,
//! and every broken or mismatched file is a one-line error naming it.

mod common;

use std::sync::atomic::AtomicBool;

use vae::checkpoint::save_model;
use vae::data::Dataset;
use vae::holes::coverage;
use vae::latent::split_codes;
use vae::model::{Model, ModelConfig, ModelKind};
use vae::pictures;
use vae::rng::seeded;
use vae::run::{RunConfig, RunDir, TrainConfig};
use vae::sampler::{FittedGmm, GmmOptions, Sampler, SamplerKind, TwoStage, TwoStageOptions, default_components};
use vae::train::Trainer;

/// A small run of `kind`, trained for two epochs on 600 sample digits.
fn trained(kind: ModelKind) -> (tempfile::TempDir, RunDir, Model, Dataset) {
    let data = common::small_sample(600, 200);
    let dir = tempfile::tempdir().unwrap();
    let run = RunDir::new(dir.path());
    let model = ModelConfig {
        hidden: vec![32],
        latent: 4,
        kind,
        classes: if kind == ModelKind::Cvae { 10 } else { 0 },
        ..ModelConfig::mlp_vae()
    };
    let config = RunConfig {
        model,
        train: TrainConfig {
            dataset: "mnist-sample".into(),
            epochs: 2,
            batch_size: 50,
            threads: 1,
            ..TrainConfig::default()
        },
    };
    let mut trainer = Trainer::new(run.clone(), config).unwrap();
    trainer.train(&data, &AtomicBool::new(false), &mut |_| {}).unwrap();
    let model = run.load_model().unwrap();
    (dir, run, model, data)
}

fn options(components: usize) -> GmmOptions {
    GmmOptions {
        components,
        ..GmmOptions::default()
    }
}

#[test]
fn a_fitted_mixture_is_saved_read_back_and_drawn_near_the_codes() {
    let (_dir, run, model, data) = trained(ModelKind::Vae);
    let fitted = FittedGmm::fit(&model, &data.train, "mnist-sample", &options(4), 7).unwrap();
    let group = &fitted.report.groups[0];
    assert_eq!(group.fit.codes + group.held_out_codes, 600);
    assert_eq!(group.held_out_codes, 60);
    // The mixture knows where the held-out codes lie better than N(0, I) does.
    let (gmm, prior) = (
        group.held_out_log_likelihood.unwrap(),
        group.held_out_prior_log_likelihood.unwrap(),
    );
    assert!(gmm > prior, "mixture {gmm} vs prior {prior}");
    // Seeded: the same fit again.
    let again = FittedGmm::fit(&model, &data.train, "mnist-sample", &options(4), 7).unwrap();
    assert_eq!(again.mixtures, fitted.mixtures);
    // The prior's held-out figure is the mean log-density of exactly the held-out codes: the
    // first 60 of the seed's permutation.
    let codes = split_codes(&model, &data.train).unwrap();
    let order = vae::rng::permutation(600, &mut seeded(7));
    let prior_mean = order[..60]
        .iter()
        .map(|&i| model.prior_density().log_density(codes.row(i)))
        .sum::<f64>()
        / 60.0;
    assert!((prior - prior_mean).abs() < 1e-9, "{prior} vs {prior_mean}");
    // As many components as codes: none can be held out, and no held-out figure is made up.
    let small = data.train.take(6);
    let tight = FittedGmm::fit(&model, &small, "mnist-sample", &options(6), 7).unwrap();
    let group = &tight.report.groups[0];
    assert_eq!(group.held_out_codes, 0);
    assert_eq!(
        (group.held_out_log_likelihood, group.held_out_prior_log_likelihood),
        (None, None)
    );

    fitted.save(&run, &model).unwrap();
    assert!(run.root.join("sampler-gmm.json").is_file());
    let Sampler::Gmm(loaded) = Sampler::load(&run, SamplerKind::Gmm, &model).unwrap() else {
        panic!("a gmm sampler")
    };
    assert_eq!(loaded.mixtures, fitted.mixtures);
    assert_eq!(loaded.report, fitted.report);

    // Its draws land among the training codes far more than the prior's hole share allows.
    let sampler = Sampler::Gmm(loaded);
    assert_eq!(
        sampler.describe(),
        "a Gaussian mixture of 4 components fitted to the training posterior means"
    );
    assert_eq!(Sampler::prior_of(&model).describe(), "the prior N(0, I)");
    assert!(!sampler.per_class() && !Sampler::prior_of(&model).per_class());
    let draws = sampler.draw(500, None, 1.0, &mut seeded(1)).unwrap();
    assert_eq!(draws.shape(), (500, 4));
    let train = split_codes(&model, &data.train).unwrap();
    let test = split_codes(&model, &data.test).unwrap();
    let from_gmm = coverage(&train, &test, &draws);
    let from_prior = coverage(
        &train,
        &test,
        &Sampler::prior_of(&model).draw(500, None, 1.0, &mut seeded(1)).unwrap(),
    );
    assert!(from_gmm.mmd < from_prior.mmd, "{from_gmm:?} vs {from_prior:?}");
    // Same seed, same draws; a picture of them.
    assert_eq!(draws, sampler.draw(500, None, 1.0, &mut seeded(1)).unwrap());
    let picture = pictures::samples(&model, &sampler, 9, 1.0, None, &mut seeded(2)).unwrap();
    let prior = Sampler::prior_of(&model);
    let of_prior = pictures::samples(&model, &prior, 9, 1.0, None, &mut seeded(2)).unwrap();
    assert_eq!((picture.width, picture.height), (of_prior.width, of_prior.height));
    assert_ne!(picture.pixels, of_prior.pixels, "other codes, another picture");
}

#[test]
fn a_sampler_refuses_weights_it_was_not_fitted_to() {
    let (_dir, run, mut model, data) = trained(ModelKind::Ae);
    let fitted = FittedGmm::fit(&model, &data.train, "mnist-sample", &options(3), 0).unwrap();
    assert_eq!(fitted.report.codes, "codes");
    fitted.save(&run, &model).unwrap();
    assert!(Sampler::load(&run, SamplerKind::Gmm, &model).is_ok());
    // Training further rewrites the weights: the mixture no longer describes their codes.
    model.params_mut()[0].value.data[0] += 0.5;
    save_model(&run.model(), &model).unwrap();
    let err = Sampler::load(&run, SamplerKind::Gmm, &model).unwrap_err().to_string();
    assert!(
        err.contains("sampler-gmm.safetensors") && err.contains("other weights"),
        "{err}"
    );
    assert!(err.contains("vae fit-sampler"), "{err}");
}

#[test]
fn a_cvae_gets_one_mixture_per_class_and_draws_the_class_asked_for() {
    let (_dir, run, model, data) = trained(ModelKind::Cvae);
    let fitted = FittedGmm::fit(&model, &data.train, "mnist-sample", &options(2), 3).unwrap();
    assert_eq!(fitted.mixtures.len(), 10);
    let labels: Vec<Option<u8>> = fitted.report.groups.iter().map(|g| g.label).collect();
    assert_eq!(labels, (0..10).map(Some).collect::<Vec<_>>());
    fitted.save(&run, &model).unwrap();
    let sampler = Sampler::load(&run, SamplerKind::Gmm, &model).unwrap();
    assert!(sampler.per_class());
    assert_eq!(
        sampler.describe(),
        "a Gaussian mixture per class (10 classes, 2 components each) fitted to the training posterior means"
    );
    // 50 components in all by default, shared out over the classes.
    assert_eq!(default_components(model.conditioning()), 5);
    assert_eq!(default_components(vae::model::Conditioning::Unconditional), 50);
    assert_eq!(default_components(vae::model::Conditioning::Label { classes: 64 }), 1);
    // Each class's draws come from its own mixture: the class's mean code, roughly.
    let train = split_codes(&model, &data.train).unwrap();
    for class in [0u8, 7] {
        let draws = sampler.draw(400, Some(&[class; 400]), 1.0, &mut seeded(5)).unwrap();
        let mean_draw: Vec<f64> = (0..4)
            .map(|j| (0..400).map(|r| draws.row(r)[j] as f64).sum::<f64>() / 400.0)
            .collect();
        let rows: Vec<usize> = (0..data.train.len())
            .filter(|&i| data.train.labels[i] == class)
            .collect();
        let mean_code: Vec<f64> = (0..4)
            .map(|j| rows.iter().map(|&r| train.row(r)[j] as f64).sum::<f64>() / rows.len() as f64)
            .collect();
        for (a, b) in mean_draw.iter().zip(&mean_code) {
            assert!((a - b).abs() < 0.25, "class {class}: {mean_draw:?} vs {mean_code:?}");
        }
    }
    let err = sampler.draw(3, None, 1.0, &mut seeded(5)).unwrap_err().to_string();
    assert!(err.contains("class of every draw"), "{err}");
    let picture = pictures::samples_per_class(&model, &sampler, 4, 1.0, &mut seeded(2)).unwrap();
    let prior = Sampler::prior_of(&model);
    let of_prior = pictures::samples_per_class(&model, &prior, 4, 1.0, &mut seeded(2)).unwrap();
    assert_eq!((picture.width, picture.height), (of_prior.width, of_prior.height));
    // Too many components for a class's codes: the class is named.
    let err = FittedGmm::fit(&model, &data.train, "mnist-sample", &options(500), 3)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("class 0") && err.contains("at least as many codes"),
        "{err}"
    );
}

#[test]
fn broken_sampler_files_are_named_errors() {
    let (_dir, run, model, data) = trained(ModelKind::Vae);
    let path = run.root.join("sampler-gmm.safetensors");
    let err = Sampler::load(&run, SamplerKind::Gmm, &model).unwrap_err().to_string();
    assert!(
        err.contains("no fitted sampler") && err.contains("fit-sampler"),
        "{err}"
    );
    FittedGmm::fit(&model, &data.train, "mnist-sample", &options(2), 0)
        .unwrap()
        .save(&run, &model)
        .unwrap();
    let good = std::fs::read(&path).unwrap();
    let load_with = |bytes: &[u8]| {
        std::fs::write(&path, bytes).unwrap();
        let err = Sampler::load(&run, SamplerKind::Gmm, &model).unwrap_err().to_string();
        assert!(err.starts_with(&path.display().to_string()), "{err}");
        assert!(!err.contains('\n'), "one line: {err}");
        err
    };
    load_with(&good[..good.len() / 2]);
    load_with(b"not a safetensors file");
    // A mixture whose weights no longer sum to one.
    let mut forged = good.clone();
    let header = u64::from_le_bytes(good[..8].try_into().unwrap()) as usize;
    let data_start = 8 + header;
    // The first weight (an f64) doubled.
    let st = safetensors::SafeTensors::deserialize(&good).unwrap();
    let weights = st.tensor("mixture.0.weights").unwrap();
    let offset = weights.data().as_ptr() as usize - good.as_ptr() as usize;
    assert!(offset >= data_start);
    let w = f64::from_le_bytes(good[offset..offset + 8].try_into().unwrap());
    forged[offset..offset + 8].copy_from_slice(&(2.0 * w + 0.5).to_le_bytes());
    let err = load_with(&forged);
    assert!(err.contains("sum to 1"), "{err}");
    // A record of another kind (the same length, so the header still parses).
    let needle = b"kind\\\":\\\"gmm";
    let at = good
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("the record is in the header");
    let mut other = good.clone();
    other[at + needle.len() - 3..at + needle.len()].copy_from_slice(b"abc");
    let err = load_with(&other);
    assert!(err.contains("not a gmm sampler"), "{err}");
}

#[test]
fn a_second_stage_is_trained_on_the_codes_saved_and_drawn_where_they_lie() {
    let (_dir, run, mut model, data) = trained(ModelKind::Vae);
    let options = TwoStageOptions {
        hidden: vec![64],
        epochs: Some(30),
        ..TwoStageOptions::default()
    };
    let fitted = TwoStage::fit(&run, &model, &data.train, &options, &mut |_, _| {}).unwrap();
    assert_eq!((fitted.record.train_codes, fitted.record.held_out_codes), (540, 60));
    assert!(fitted.record.held_out_neg_elbo.is_finite());
    let Sampler::TwoStage(loaded) = Sampler::load(&run, SamplerKind::TwoStage, &model).unwrap() else {
        panic!("a two-stage sampler")
    };
    assert_eq!(loaded.record, fitted.record);
    // Its draws are codes of the first stage, nearer to where the training codes lie than
    // the prior's are (codes of 2 epochs of training do not fill N(0, I)).
    let train = split_codes(&model, &data.train).unwrap();
    let test = split_codes(&model, &data.test).unwrap();
    let draws = loaded.draw(2_000, None, 1.0, &mut seeded(3)).unwrap();
    assert_eq!(draws.shape(), (2_000, 4));
    let prior = Sampler::prior_of(&model)
        .draw(2_000, None, 1.0, &mut seeded(3))
        .unwrap();
    let (two_stage, of_prior) = (coverage(&train, &test, &draws), coverage(&train, &test, &prior));
    eprintln!(
        "draws in holes: two-stage {:.3}, prior {:.3}",
        two_stage.hole_share, of_prior.hole_share
    );
    assert!(
        two_stage.hole_share < of_prior.hole_share,
        "{two_stage:?} vs {of_prior:?}"
    );
    // Tied to the weights whose codes it learnt.
    model.params_mut()[0].value.data[0] += 0.5;
    save_model(&run.model(), &model).unwrap();
    let err = Sampler::load(&run, SamplerKind::TwoStage, &model)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("sampler-two-stage.json") && err.contains("other weights"),
        "{err}"
    );
}

#[test]
fn a_cvae_second_stage_draws_the_codes_of_the_class_asked_for() {
    let (_dir, run, model, data) = trained(ModelKind::Cvae);
    let options = TwoStageOptions {
        hidden: vec![32],
        epochs: Some(5),
        ..TwoStageOptions::default()
    };
    let fitted = TwoStage::fit(&run, &model, &data.train, &options, &mut |_, _| {}).unwrap();
    assert_eq!(fitted.model.config.classes, 10);
    let labels = vec![3u8; 16];
    assert_eq!(
        fitted.draw(16, Some(&labels), 1.0, &mut seeded(1)).unwrap().shape(),
        (16, 4)
    );
    let err = fitted.draw(16, None, 1.0, &mut seeded(1)).unwrap_err().to_string();
    assert!(err.contains("class of every draw"), "{err}");
    // Gone, it is named.
    std::fs::remove_file(run.root.join("sampler-two-stage.json")).unwrap();
    let err = Sampler::load(&run, SamplerKind::TwoStage, &model)
        .unwrap_err()
        .to_string();
    assert!(err.contains("vae fit-sampler RUN --kind two-stage"), "{err}");
}
