//! Training end to end on real digits: the loss falls, checkpoints round-trip bit-exactly,
//! a stopped run resumes to the same numbers as one that never stopped, a diverging run keeps
//! its last good checkpoint, and two trainers cannot share a folder.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};

use vae::checkpoint::param_values;
use vae::data::Binarize;
use vae::engine::Recon;
use vae::eval::{evaluate, importance_weighted_nll};
use vae::model::{MNIST_SIDE, ModelConfig, ModelKind};
use vae::rng::seeded;
use vae::run::{Objective, RunConfig, RunDir, TrainConfig};
use vae::train::{Outcome, TrainEvent, Trainer};

fn config(model: ModelKind, epochs: usize) -> RunConfig {
    RunConfig {
        model: ModelConfig {
            kind: model,
            image_height: MNIST_SIDE,
            image_width: MNIST_SIDE,
            hidden: vec![64],
            latent: 8,
            recon: Recon::Bce,
            beta: 1.0,
            ..ModelConfig::mlp_vae()
        },
        train: TrainConfig {
            dataset: "mnist-sample".into(),
            epochs,
            batch_size: 64,
            seed: 3,
            threads: 2,
            ..TrainConfig::default()
        },
    }
}

use common::train;

#[test]
fn the_loss_falls_and_the_run_folder_is_complete() {
    let data = common::small_sample(2_000, 300);
    for model in [ModelKind::Vae, ModelKind::Ae] {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::new(dir.path());
        let trainer = train(&run, config(model, 3), &data);
        let h = &trainer.state.history;
        assert_eq!(h.len(), 3);
        // From an untrained decoder's ~543 nats (784·ln 2) down to well under 250.
        assert!(h[2].test_loss < 0.9 * h[0].test_loss, "{model:?}: {h:?}");
        assert!(h[2].train_loss < h[0].train_loss, "{model:?}: {h:?}");
        assert!(h[2].test_loss < 250.0, "{model:?}: {h:?}");
        match model {
            ModelKind::Vae | ModelKind::Cvae => assert!(h[2].test_kl > 1.0, "the KL term is live: {h:?}"),
            ModelKind::Ae => assert_eq!(h[2].test_kl, 0.0),
        }
        for file in [
            run.config(),
            run.model(),
            run.checkpoint(),
            run.samples(),
            run.reconstructions(),
        ] {
            assert!(file.is_file(), "{} missing", file.display());
        }
        let png = std::fs::read(run.samples()).unwrap();
        assert_eq!(&png[1..4], b"PNG");
        let metrics = std::fs::read_to_string(run.metrics()).unwrap();
        assert_eq!(metrics.lines().count(), 3);
        let first: serde_json::Value = serde_json::from_str(metrics.lines().next().unwrap()).unwrap();
        for key in [
            "epoch",
            "train_loss",
            "test_loss",
            "test_recon",
            "test_kl",
            "seconds",
            "images_per_sec",
        ] {
            assert!(first[key].is_number(), "{key} missing in {first}");
        }
    }
}

#[test]
fn kl_warm_up_ramps_beta_and_free_bits_are_recorded() {
    let data = common::small_sample(640, 100);
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(ModelKind::Vae, 3);
    cfg.train.kl_warmup = 2;
    cfg.train.free_bits = 0.25;
    let trainer = train(&RunDir::new(dir.path()), cfg, &data);
    let betas: Vec<f32> = trainer.state.history.iter().map(|m| m.beta).collect();
    assert_eq!(betas, vec![0.5, 1.0, 1.0]);
    assert!(trainer.state.history.iter().all(|m| m.free_bits == 0.25));
    // Mid-epoch, β follows the batches: a quarter of the way through the warm-up, a quarter of β.
    let quarter = trainer.bound_at(0, 4, 10);
    assert_eq!((quarter.beta, quarter.free_bits), (0.25, 0.25));
    let metrics = std::fs::read_to_string(dir.path().join("metrics.jsonl")).unwrap();
    assert!(metrics.lines().next().unwrap().contains("\"beta\":0.5"), "{metrics}");
}

#[test]
fn dynamic_binarization_trains_reproducibly_on_binary_pixels() {
    let data = common::small_sample(500, 100);
    let run_once = || {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = config(ModelKind::Vae, 2);
        cfg.train.binarize = Binarize::Dynamic;
        let t = train(&RunDir::new(dir.path()), cfg, &data);
        (
            param_values(&t.model),
            t.state.history.iter().map(|m| m.test_loss).collect::<Vec<_>>(),
        )
    };
    let (first, second) = (run_once(), run_once());
    assert_eq!(first, second);
    // The run really saw other pixels: its losses differ from the grey run's.
    let dir = tempfile::tempdir().unwrap();
    let grey = train(&RunDir::new(dir.path()), config(ModelKind::Vae, 2), &data);
    assert_ne!(grey.state.history[1].test_loss, first.1[1]);
}

#[test]
fn the_importance_weighted_objective_trains_and_is_recorded() {
    let data = common::small_sample(1_000, 200);
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(ModelKind::Vae, 3);
    cfg.train.objective = Objective::Iwae;
    cfg.train.k = 5;
    let t = train(&RunDir::new(dir.path()), cfg.clone(), &data);
    let h = &t.state.history;
    assert!(h[2].test_loss < 0.9 * h[0].test_loss, "{h:?}");
    // The model it learns is a proper VAE: its importance-weighted estimate of -log p(x) on
    // the test split is below its negative ELBO.
    let elbo = vae::eval::evaluate(&t.model, &data.test, &mut vae::rng::seeded(1))
        .unwrap()
        .total;
    let iw = vae::eval::importance_weighted_nll(&t.model, &data.test, 50, &mut vae::rng::seeded(2), &mut |_| {});
    assert!(iw.unwrap().nll < elbo, "{elbo}");
    assert_eq!(t.bound_at(2, 0, 10).k, 5);
    let saved: vae::run::RunConfig =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("config.json")).unwrap()).unwrap();
    assert_eq!((saved.train.objective, saved.train.k), (Objective::Iwae, 5));
    // Not for the autoencoder, and not with free bits.
    let mut ae = config(ModelKind::Ae, 1);
    ae.train.objective = Objective::Iwae;
    let other = tempfile::tempdir().unwrap();
    assert!(Trainer::new(RunDir::new(other.path()), ae).is_err());
    cfg.train.free_bits = 0.5;
    assert!(
        cfg.train
            .validate()
            .unwrap_err()
            .to_string()
            .contains("applies to the ELBO only")
    );
}

#[test]
fn a_saved_model_loads_back_bit_exactly() {
    let data = common::small_sample(500, 100);
    let dir = tempfile::tempdir().unwrap();
    let run = RunDir::new(dir.path());
    let trainer = train(&run, config(ModelKind::Vae, 1), &data);
    let loaded = run.load_model().unwrap();
    assert_eq!(param_values(&loaded), param_values(&trainer.model));
    let x = data.test.range_batch(0, 10);
    assert_eq!(loaded.reconstruct(&x, None), trainer.model.reconstruct(&x, None));
}

#[test]
fn a_run_stopped_mid_epoch_resumes_to_the_same_numbers() {
    let data = common::small_sample(1_000, 200);
    let straight_dir = tempfile::tempdir().unwrap();
    let straight = train(&RunDir::new(straight_dir.path()), config(ModelKind::Vae, 2), &data);

    let dir = tempfile::tempdir().unwrap();
    let run = RunDir::new(dir.path());
    let mut first = Trainer::new(run.clone(), config(ModelKind::Vae, 2)).unwrap();
    let stop = AtomicBool::new(false);
    // Ask to stop during the 5th batch of the second epoch.
    let outcome = first
        .train(&data, &stop, &mut |e| {
            if let TrainEvent::Batch { epoch: 1, batch: 4, .. } = e {
                stop.store(true, Ordering::Relaxed)
            }
        })
        .unwrap();
    assert_eq!(outcome, Outcome::Interrupted { epoch: 1, batch: 5 });
    drop(first);

    let mut resumed = Trainer::resume(run.clone(), None).unwrap();
    assert_eq!((resumed.state.epochs_done, resumed.state.next_batch), (1, 5));
    let outcome = resumed.train(&data, &AtomicBool::new(false), &mut |_| {}).unwrap();
    assert_eq!(outcome, Outcome::Finished);
    assert_eq!(param_values(&resumed.model), param_values(&straight.model));
    let losses = |t: &Trainer| {
        t.state
            .history
            .iter()
            .map(|m| (m.train_loss, m.test_loss))
            .collect::<Vec<_>>()
    };
    assert_eq!(losses(&resumed), losses(&straight));

    // A finished run trains further when asked for more epochs.
    let mut more = Trainer::resume(run.clone(), Some(3)).unwrap();
    more.train(&data, &AtomicBool::new(false), &mut |_| {}).unwrap();
    assert_eq!(std::fs::read_to_string(run.metrics()).unwrap().lines().count(), 3);
}

#[test]
fn a_diverging_run_stops_with_an_error_and_keeps_the_last_good_checkpoint() {
    let data = common::small_sample(300, 50);
    let dir = tempfile::tempdir().unwrap();
    let run = RunDir::new(dir.path());
    train(&run, config(ModelKind::Vae, 1), &data);
    let good = std::fs::read(run.checkpoint()).unwrap();

    let mut trainer = Trainer::resume(run.clone(), Some(2)).unwrap();
    // Poison one weight: every loss from here on is NaN.
    trainer.model.param_mut("decoder.fc_out.bias").unwrap().value.data[0] = f32::NAN;
    let error = trainer.train(&data, &AtomicBool::new(false), &mut |_| {}).unwrap_err();
    assert!(
        error.to_string().contains("training diverged at epoch 2, batch 1"),
        "{error}"
    );
    assert_eq!(std::fs::read(run.checkpoint()).unwrap(), good);
}

#[test]
fn a_nan_weight_behind_a_finite_loss_never_reaches_a_checkpoint() {
    // Autoencoder with squared error: a NaN in the first layer dies in ReLU-free paths of
    // other frameworks; here it must surface.
    let data = common::small_sample(300, 50);
    let dir = tempfile::tempdir().unwrap();
    let run = RunDir::new(dir.path());
    let mut cfg = config(ModelKind::Ae, 1);
    cfg.model.recon = Recon::Mse;
    train(&run, cfg, &data);
    let good = std::fs::read(run.checkpoint()).unwrap();
    let mut trainer = Trainer::resume(run.clone(), Some(2)).unwrap();
    trainer.model.param_mut("encoder.fc1.weight").unwrap().value.data[5] = f32::NAN;
    let error = trainer
        .train(&data, &AtomicBool::new(false), &mut |_| {})
        .unwrap_err()
        .to_string();
    assert!(error.contains("diverged"), "{error}");
    assert_eq!(std::fs::read(run.checkpoint()).unwrap(), good);
}

#[test]
fn resume_refuses_an_edited_config_and_fewer_epochs_than_done() {
    let data = common::small_sample(300, 50);
    let dir = tempfile::tempdir().unwrap();
    let run = RunDir::new(dir.path());
    train(&run, config(ModelKind::Vae, 2), &data);
    let error = Trainer::resume(run.clone(), Some(1)).err().unwrap().to_string();
    assert!(
        error.contains("epochs: the run has already started epoch 2; ask for at least 2"),
        "{error}"
    );
    let text = std::fs::read_to_string(run.config()).unwrap();
    std::fs::write(run.config(), text.replace("\"batch_size\": 64", "\"batch_size\": 32")).unwrap();
    let error = Trainer::resume(run.clone(), None).err().unwrap().to_string();
    assert!(
        error.contains("differs from the configuration the checkpoint was trained with"),
        "{error}"
    );
}

#[test]
fn a_new_run_refuses_a_folder_that_holds_one_and_a_second_trainer_is_locked_out() {
    let data = common::small_sample(200, 50);
    let dir = tempfile::tempdir().unwrap();
    let run = RunDir::new(dir.path());
    train(&run, config(ModelKind::Ae, 1), &data);
    let error = Trainer::new(run.clone(), config(ModelKind::Ae, 1)).err().unwrap();
    assert!(error.to_string().contains("pass --resume"), "{error}");

    let _held = run.lock().unwrap();
    let error = run.lock().unwrap_err();
    assert!(
        error
            .to_string()
            .contains("another `vae train` is using this run folder"),
        "{error}"
    );
}

#[test]
fn the_importance_weighted_bound_is_tighter_than_the_elbo() {
    let data = common::small_sample(2_000, 100);
    let dir = tempfile::tempdir().unwrap();
    let trainer = train(&RunDir::new(dir.path()), config(ModelKind::Vae, 2), &data);
    let elbo = evaluate(&trainer.model, &data.test, &mut seeded(1)).unwrap().total;
    let k1 = importance_weighted_nll(&trainer.model, &data.test, 1, &mut seeded(2), &mut |_| {}).unwrap();
    let k200 = importance_weighted_nll(&trainer.model, &data.test, 200, &mut seeded(3), &mut |_| {}).unwrap();
    // K = 1 is the ELBO itself (another draw of it); a larger K can only tighten the bound.
    assert!((k1.nll - elbo).abs() < 0.02 * elbo, "K=1 {} vs ELBO {elbo}", k1.nll);
    assert!(k200.nll < elbo - 0.5, "K=200 {} vs ELBO {elbo}", k200.nll);
    assert!(k200.nll > 0.5 * elbo, "K=200 {} vs ELBO {elbo}", k200.nll);
    let ae_dir = tempfile::tempdir().unwrap();
    let ae = train(&RunDir::new(ae_dir.path()), config(ModelKind::Ae, 1), &data.clone());
    assert!(importance_weighted_nll(&ae.model, &data.test, 5, &mut seeded(0), &mut |_| {}).is_err());
}

/// Parameters and first-epoch training loss of a one-epoch run of `config` on `data`.
fn one_epoch(config: RunConfig, data: &vae::data::Dataset) -> (Vec<(String, Vec<f32>)>, f64) {
    let dir = tempfile::tempdir().unwrap();
    let trainer = train(&RunDir::new(dir.path()), config, data);
    (param_values(&trainer.model), trainer.state.history[0].train_loss)
}

#[test]
fn the_training_objective_and_the_binarization_reach_the_updates() {
    let data = common::small_sample(640, 50);
    let elbo = one_epoch(config(ModelKind::Vae, 1), &data);
    let mut iwae = config(ModelKind::Vae, 1);
    iwae.train.objective = Objective::Iwae;
    iwae.train.k = 5;
    let iwae = one_epoch(iwae, &data);
    // A trainer that ignored the objective would reproduce the ELBO run to the bit.
    assert_ne!(elbo.0, iwae.0, "IWAE trained the same parameters as the ELBO");
    assert_ne!(elbo.1, iwae.1);
    // The IW bound of a batch is at most its ELBO: the first epoch's objective is lower.
    assert!(iwae.1 < elbo.1, "IWAE train loss {} vs ELBO {}", iwae.1, elbo.1);

    let mut runs = Vec::new();
    for binarize in [Binarize::None, Binarize::Static, Binarize::Dynamic] {
        let mut c = config(ModelKind::Vae, 1);
        c.train.binarize = binarize;
        runs.push(one_epoch(c, &data).0);
    }
    assert_ne!(runs[0], runs[1], "static binarization trained on grey pixels");
    assert_ne!(runs[1], runs[2], "dynamic binarization trained on the static draws");
    assert_ne!(runs[0], runs[2], "dynamic binarization trained on grey pixels");
}

#[test]
fn a_binarized_batch_is_binary_with_the_grey_level_as_its_mean() {
    let data = common::small_sample(1, 1);
    let image = data.train.range_batch(0, 1);
    let draws = 4_000;
    let mut x = vae::engine::Matrix::from_vec(draws, image.cols, image.data.repeat(draws));
    vae::data::Split::binarize_batch(&mut x, &mut vae::rng::stream_rng(0, vae::rng::Stream::Binarize));
    assert!(x.data.iter().all(|&v| v == 0.0 || v == 1.0), "a pixel is not 0 or 1");
    for (p, &grey) in image.data.iter().enumerate() {
        let mean = (0..draws).map(|r| x.data[r * image.cols + p] as f64).sum::<f64>() / draws as f64;
        // Binomial standard deviation at most 0.5 / sqrt(4000) = 0.008: 5 of them.
        assert!((mean - grey as f64).abs() < 0.04, "pixel {p}: mean {mean}, grey {grey}");
    }
}

#[test]
fn a_finished_run_trained_further_ends_where_a_longer_run_does() {
    // A resume that re-initialised the weights, or lost Adam's moments, would train on from
    // elsewhere; for every kind of body and model the parameters must match to the bit.
    let data = common::small_sample(300, 50);
    let conv = ModelConfig {
        channels: vec![4, 8],
        hidden: vec![16],
        latent: 3,
        ..ModelConfig::conv_vae()
    };
    let cvae = ModelConfig {
        classes: 10,
        ..config(ModelKind::Cvae, 1).model
    };
    for model in [config(ModelKind::Vae, 1).model, conv, cvae] {
        let mut c = config(ModelKind::Vae, 2);
        c.model = model;
        let straight_dir = tempfile::tempdir().unwrap();
        let straight = train(&RunDir::new(straight_dir.path()), c.clone(), &data);
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::new(dir.path());
        c.train.epochs = 1;
        train(&run, c, &data);
        let mut further = Trainer::resume(run, Some(2)).unwrap();
        assert_eq!((further.state.epochs_done, further.state.next_batch), (1, 0));
        further.train(&data, &AtomicBool::new(false), &mut |_| {}).unwrap();
        assert_eq!(
            param_values(&further.model),
            param_values(&straight.model),
            "{:?} {:?}",
            further.config.model.kind,
            further.config.model.arch
        );
        let losses =
            |t: &Trainer| -> Vec<(f64, f64)> { t.state.history.iter().map(|m| (m.train_loss, m.test_loss)).collect() };
        assert_eq!(losses(&further), losses(&straight));
    }
}
