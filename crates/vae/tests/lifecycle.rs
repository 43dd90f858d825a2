//! One life, the same for every model kind and body and both objectives: build, output
//! shapes, a few epochs lower the loss, save and load bit-exactly, stop and resume to the
//! same weights, and sample, interpolate and encode with the right shapes. A new kind of
//! model joins the list in `CASES` and gets every check.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};

use vae::checkpoint::param_values;
use vae::engine::Matrix;
use vae::eval::evaluate;
use vae::latent::{blended_condition, encode_codes, interpolate};
use vae::model::{Arch, Latent, Model, ModelConfig, ModelKind, Workspace};
use vae::rng::{RunRng, seeded};
use vae::run::{Objective, RunConfig, RunDir, TrainConfig};
use vae::train::{Outcome, TrainEvent, Trainer};

/// Model kind, body, and importance samples (1: the ELBO).
const CASES: [(ModelKind, Arch, usize); 8] = [
    (ModelKind::Ae, Arch::Mlp, 1),
    (ModelKind::Vae, Arch::Mlp, 1),
    (ModelKind::Cvae, Arch::Mlp, 1),
    (ModelKind::Vae, Arch::Mlp, 3),
    (ModelKind::Ae, Arch::Conv, 1),
    (ModelKind::Vae, Arch::Conv, 1),
    (ModelKind::Cvae, Arch::Conv, 1),
    (ModelKind::Cvae, Arch::Conv, 2),
];

const LATENT: usize = 4;
const PIXELS: usize = 28 * 28;

fn config(kind: ModelKind, arch: Arch, k: usize) -> RunConfig {
    let base = match arch {
        Arch::Mlp => ModelConfig::mlp_vae(),
        Arch::Conv => ModelConfig {
            channels: vec![4, 8],
            ..ModelConfig::conv_vae()
        },
    };
    RunConfig {
        model: ModelConfig {
            kind,
            hidden: vec![32],
            latent: LATENT,
            classes: if kind == ModelKind::Cvae { 10 } else { 0 },
            ..base
        },
        train: TrainConfig {
            epochs: 2,
            batch_size: 50,
            // The conv body's products sum over more terms: a gentler rate.
            lr: if arch == Arch::Conv { 1e-3 } else { 3e-3 },
            seed: 11,
            threads: 2,
            objective: if k > 1 { Objective::Iwae } else { Objective::Elbo },
            k,
            ..TrainConfig::default()
        },
    }
}

fn name(config: &RunConfig) -> String {
    format!(
        "{}/{}/k={}",
        config.model.kind.name(),
        config.model.arch.name(),
        config.train.k
    )
}

#[test]
fn every_kind_of_model_lives_the_same_life() {
    let data = common::small_sample(2_000, 60);
    let x = data.test.range_batch(0, 6);
    let labels = &data.test.labels[..6];
    for (kind, arch, k) in CASES {
        let config = config(kind, arch, k);
        let what = name(&config);

        // Build, and the shapes of one pass.
        let untrained = Model::new(config.model.clone(), &mut seeded(1)).unwrap();
        let condition = untrained.condition(labels).unwrap();
        assert_eq!(condition.is_some(), kind == ModelKind::Cvae, "{what}");
        let mut ws = Workspace::default();
        untrained.forward::<RunRng>(&x, condition.as_ref(), &mut ws, Latent::Mean);
        assert_eq!(ws.z.shape(), (6, LATENT), "{what}");
        assert_eq!(ws.logits.shape(), (6, PIXELS), "{what}");
        let before = evaluate(&untrained, &data.test, &mut seeded(2)).unwrap();

        // A few epochs lower the test loss.
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::new(dir.path());
        let trainer = common::train(&run, config.clone(), &data);
        let after = evaluate(&trainer.model, &data.test, &mut seeded(2)).unwrap();
        assert!(after.total < 0.95 * before.total, "{what}: {before:?} -> {after:?}");
        eprintln!("{what}: test loss {:.1} -> {:.1}", before.total, after.total);

        // Saved and loaded bit-exactly.
        let loaded = run.load_model().unwrap();
        assert_eq!(param_values(&loaded), param_values(&trainer.model), "{what}");
        let c = condition.as_ref();
        assert_eq!(loaded.reconstruct(&x, c), trainer.model.reconstruct(&x, c), "{what}");

        // Stopped in the second epoch and resumed: the weights of the run that never stopped.
        let dir = tempfile::tempdir().unwrap();
        let stopped = RunDir::new(dir.path());
        let mut first = Trainer::new(stopped.clone(), config.clone()).unwrap();
        let stop = AtomicBool::new(false);
        let outcome = first
            .train(&data, &stop, &mut |e| {
                if let TrainEvent::Batch { epoch: 1, batch: 1, .. } = e {
                    stop.store(true, Ordering::Relaxed)
                }
            })
            .unwrap();
        assert_eq!(outcome, Outcome::Interrupted { epoch: 1, batch: 2 }, "{what}");
        drop(first);
        let mut resumed = Trainer::resume(stopped, None).unwrap();
        assert_eq!((resumed.state.epochs_done, resumed.state.next_batch), (1, 2), "{what}");
        resumed.train(&data, &AtomicBool::new(false), &mut |_| {}).unwrap();
        assert_eq!(param_values(&resumed.model), param_values(&trainer.model), "{what}");

        // Sample, interpolate, encode.
        let model = &trainer.model;
        let drawn_condition = model.label_condition(5, None).unwrap();
        let samples = model.sample_prior(5, 1.0, drawn_condition.as_ref(), &mut seeded(3));
        assert_eq!(samples.shape(), (5, PIXELS), "{what}");
        assert!(samples.data.iter().all(|p| (0.0..=1.0).contains(p)), "{what}");
        let codes = encode_codes(model, &x, labels).unwrap();
        assert_eq!(codes.shape(), (6, LATENT), "{what}");
        let path = interpolate(codes.row(0), codes.row(1), 7, false);
        assert_eq!(path.shape(), (7, LATENT), "{what}");
        assert_eq!(path.row(0), codes.row(0), "{what}");
        let path_condition = blended_condition(model, labels[0], labels[1], 7).unwrap();
        let frames = model.decode(&path, path_condition.as_ref());
        assert_eq!(frames.shape(), (7, PIXELS), "{what}");
        // The path's first frame is the first image's code decoded (alone, so the products
        // round differently: equal to float precision, not bit for bit).
        let first = model.decode(
            &Matrix::from_vec(1, LATENT, codes.row(0).to_vec()),
            path_condition
                .as_ref()
                .map(|c| Matrix::from_vec(1, c.cols, c.row(0).to_vec()))
                .as_ref(),
        );
        let gap = frames
            .row(0)
            .iter()
            .zip(first.row(0))
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(gap < 1e-5, "{what}: first frame off by {gap}");
    }
}
