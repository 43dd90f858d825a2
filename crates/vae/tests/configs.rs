//! Run configurations: a new run as the command line asks for it (defaults, refused flags),
//! what `validate` refuses at each limit and one step past it, and what an older
//! `config.json` reads as.

mod common;

use vae::model::{ModelConfig, ModelKind};
use vae::run::{MAX_FREE_BITS, MAX_LR, Objective, RunConfig, TrainConfig};

fn run(model: ModelKind, train: TrainConfig) -> RunConfig {
    RunConfig {
        model: ModelConfig {
            kind: model,
            classes: if model.is_conditional() { 10 } else { 0 },
            ..ModelConfig::mlp_vae()
        },
        train,
    }
}

/// The field a refusal names, or `None` when the config is accepted.
fn refusal(config: &RunConfig) -> Option<String> {
    config.validate().err().map(|e| e.to_string())
}

fn assert_refused(config: &RunConfig, field: &str) {
    let error = refusal(config).unwrap_or_else(|| panic!("accepted: {config:?}"));
    assert!(error.contains(field), "{field}: {error}");
}

fn assert_accepted(config: &RunConfig) {
    assert_eq!(refusal(config), None, "{config:?}");
}

fn vae(train: TrainConfig) -> RunConfig {
    run(ModelKind::Vae, train)
}

#[test]
fn the_learning_rate_must_be_finite_positive_and_at_most_the_limit() {
    for lr in [1e-6, 1e-3, MAX_LR] {
        assert_accepted(&vae(TrainConfig {
            lr,
            ..TrainConfig::default()
        }));
    }
    for lr in [0.0, -1e-3, MAX_LR * 1.01, f32::INFINITY, f32::NEG_INFINITY, f32::NAN] {
        assert_refused(
            &vae(TrainConfig {
                lr,
                ..TrainConfig::default()
            }),
            "lr",
        );
    }
}

#[test]
fn free_bits_must_lie_between_zero_and_the_limit_and_apply_to_the_elbo_only() {
    for free_bits in [0.0, 0.5, MAX_FREE_BITS] {
        assert_accepted(&vae(TrainConfig {
            free_bits,
            ..TrainConfig::default()
        }));
    }
    for free_bits in [-0.1, MAX_FREE_BITS * 1.01, f32::INFINITY, f32::NAN] {
        assert_refused(
            &vae(TrainConfig {
                free_bits,
                ..TrainConfig::default()
            }),
            "free-bits",
        );
    }
    let iwae = TrainConfig {
        objective: Objective::Iwae,
        k: 5,
        ..TrainConfig::default()
    };
    assert_accepted(&vae(iwae.clone()));
    assert_refused(&vae(TrainConfig { free_bits: 0.5, ..iwae }), "free-bits");
}

#[test]
fn k_applies_to_the_importance_weighted_bound_only() {
    let elbo = TrainConfig::default();
    assert_accepted(&vae(elbo.clone()));
    assert_refused(&vae(TrainConfig { k: 2, ..elbo }), "k");
    for k in [1, 2, 50] {
        assert_accepted(&vae(TrainConfig {
            objective: Objective::Iwae,
            k,
            ..TrainConfig::default()
        }));
    }
    assert_refused(
        &vae(TrainConfig {
            objective: Objective::Iwae,
            k: 0,
            ..TrainConfig::default()
        }),
        "k",
    );
    // The autoencoder has no posterior to weigh samples of.
    assert_refused(
        &run(
            ModelKind::Ae,
            TrainConfig {
                objective: Objective::Iwae,
                k: 2,
                ..TrainConfig::default()
            },
        ),
        "objective",
    );
}

#[test]
fn an_autoencoder_refuses_the_settings_of_a_kl_term_it_does_not_have() {
    let ae = |train: TrainConfig| run(ModelKind::Ae, train);
    assert_accepted(&ae(TrainConfig::default()));
    assert_refused(
        &ae(TrainConfig {
            kl_warmup: 1,
            ..TrainConfig::default()
        }),
        "kl-warmup",
    );
    assert_refused(
        &ae(TrainConfig {
            free_bits: 0.25,
            ..TrainConfig::default()
        }),
        "free-bits",
    );
    let mut beta = ae(TrainConfig::default());
    beta.model.beta = 2.0;
    assert_refused(&beta, "beta");
    // The same settings are what a VAE is for.
    for train in [
        TrainConfig {
            kl_warmup: 1,
            ..TrainConfig::default()
        },
        TrainConfig {
            free_bits: 0.25,
            ..TrainConfig::default()
        },
    ] {
        assert_accepted(&vae(train.clone()));
        assert_accepted(&run(ModelKind::Cvae, train));
    }
}

#[test]
fn a_config_from_before_the_importance_weighted_objective_reads_as_the_elbo() {
    // What a run folder held before `objective` and `k` were written: both absent.
    let mut json = serde_json::to_value(vae(TrainConfig::default())).unwrap();
    let train = json["train"].as_object_mut().unwrap();
    assert!(train.remove("objective").is_some() && train.remove("k").is_some());
    let old: RunConfig = serde_json::from_value(json).unwrap();
    assert_eq!(old.train.objective, Objective::Elbo);
    assert_eq!(old.train.k, 1);
    assert_accepted(&old);
}

#[test]
fn a_config_that_named_the_model_kind_model_still_loads() {
    // config.json of a conv VAE as written before `kind` had its name, verbatim.
    let old = r#"{"model": {"model": "vae", "arch": "conv", "image_height": 28, "image_width": 28, "channels": [32, 64], "hidden": [256], "latent": 16, "recon": "bce", "beta": 1.0, "classes": 0}, "train": {"dataset": "mnist-sample", "epochs": 5, "batch_size": 128, "lr": 0.001, "seed": 0, "threads": 2, "checkpoint_every": 0, "kl_warmup": 0, "free_bits": 0.0, "binarize": "none", "objective": "elbo", "k": 1}}"#;
    let config: RunConfig = serde_json::from_str(old).unwrap();
    assert_eq!(config.model.kind, ModelKind::Vae);
    assert_eq!(config.model.channels, [32, 64]);
    assert_accepted(&config);
    // Written again, it says `kind`.
    let again = serde_json::to_value(&config).unwrap();
    assert_eq!(again["model"]["kind"], "vae");
    assert!(again["model"].get("model").is_none());
}

#[test]
fn a_new_run_fills_in_the_defaults_and_refuses_flags_that_change_nothing() {
    use vae::model::Arch;
    use vae::run::{DEFAULT_EPOCHS, DEFAULT_K, NewRun};

    let classic = NewRun::default().config().unwrap();
    assert_eq!(classic.model, ModelConfig::mlp_vae());
    assert_eq!(classic.train.epochs, DEFAULT_EPOCHS);
    assert_eq!(classic.train.k, 1);
    assert_eq!(
        NewRun::default().default_folder(),
        std::path::Path::new("runs/vae-mnist-sample")
    );

    let conv = NewRun {
        arch: Arch::Conv,
        channels: Some(vec![8, 16]),
        ..NewRun::default()
    }
    .config()
    .unwrap();
    assert_eq!(conv.model.channels, vec![8, 16]);
    assert_eq!(conv.model.hidden, ModelConfig::conv_vae().hidden);

    let iwae = NewRun {
        objective: Objective::Iwae,
        ..NewRun::default()
    };
    assert_eq!(iwae.config().unwrap().train.k, DEFAULT_K);
    let cvae = NewRun {
        kind: ModelKind::Cvae,
        ..NewRun::default()
    };
    assert_eq!(cvae.config().unwrap().model.classes, 10);
    let ae = NewRun {
        kind: ModelKind::Ae,
        ..NewRun::default()
    };
    assert_eq!(ae.config().unwrap().model.beta, 1.0);
    let weighted = NewRun {
        beta: Some(4.0),
        ..NewRun::default()
    };
    assert_eq!(weighted.config().unwrap().model.beta, 4.0);
    let asked = NewRun {
        latent: 8,
        recon: vae::engine::Recon::Mse,
        ..NewRun::default()
    }
    .config()
    .unwrap();
    assert_eq!((asked.model.latent, asked.model.recon), (8, vae::engine::Recon::Mse));
    assert_eq!((asked.model.image_height, asked.model.image_width), (28, 28));

    for (request, message) in [
        (
            NewRun {
                channels: Some(vec![8]),
                ..NewRun::default()
            },
            "--channels: only a conv body has channels",
        ),
        (
            NewRun {
                kind: ModelKind::Ae,
                beta: Some(2.0),
                ..NewRun::default()
            },
            "--beta: an autoencoder has no KL term",
        ),
        (
            NewRun {
                k: Some(3),
                ..NewRun::default()
            },
            "--k: the number of importance samples applies to --objective iwae only",
        ),
        (
            NewRun {
                dataset: "no-such-dataset".into(),
                ..NewRun::default()
            },
            "unknown dataset 'no-such-dataset'",
        ),
    ] {
        let error = request.config().unwrap_err().to_string();
        assert!(error.contains(message), "{error}");
    }

    // A folder of IDX files is kept as its canonical path; the default run folder is named
    // after its last component as written.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("digits");
    std::fs::create_dir(&data).unwrap();
    let request = NewRun {
        dataset: format!("{}/../digits/", data.display()),
        ..NewRun::default()
    };
    let config = request.config().unwrap();
    assert_eq!(
        std::path::Path::new(&config.train.dataset),
        data.canonicalize().unwrap()
    );
    assert_eq!(request.default_folder(), std::path::Path::new("runs/vae-digits"));
}

#[test]
fn a_cvae_takes_as_many_classes_as_its_data_names() {
    use vae::run::NewRun;

    let mut data = common::small_sample(200, 50);
    for labels in [&mut data.train.labels, &mut data.test.labels] {
        for l in labels.iter_mut() {
            *l %= 5;
        }
    }
    let mut cvae = NewRun {
        kind: ModelKind::Cvae,
        ..NewRun::default()
    }
    .config()
    .unwrap();
    assert_eq!(
        cvae.model.classes, 10,
        "before the data is seen: every named dataset's ten"
    );
    cvae.fit_to(&data).unwrap();
    assert_eq!(cvae.model.classes, 5);
    let mut vae = NewRun::default().config().unwrap();
    vae.fit_to(&data).unwrap();
    assert_eq!(vae.model.classes, 0, "an unconditional model takes no label");
}
