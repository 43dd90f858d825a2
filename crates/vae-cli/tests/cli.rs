//! The `vae` binary, run for real in temporary folders: each test reads like a transcript of
//! what a user types and sees.

mod support;

use std::path::Path;
use std::process::Command;

use support::{SMALL, assert_refused, stderr, stdout, train_small, vae, vae_command};

#[test]
fn train_then_eval_sample_and_reconstruct() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = vae(d, &[&["train", "--epochs", "1", "--out", "run"], SMALL].concat());
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("epoch 1/1  train"), "{}", stderr(&out));
    for file in [
        "config.json",
        "model.safetensors",
        "checkpoint.safetensors",
        "metrics.jsonl",
        "samples.png",
        "reconstructions.png",
    ] {
        assert!(d.join("run").join(file).is_file(), "{file} missing");
    }

    let out = vae(d, &["eval", "run", "--json", "--k", "20", "--limit", "200"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(report["images"], 200);
    assert_eq!(report["iw_k"], 20);
    assert_eq!(report["dataset"], "mnist-sample");
    let (loss, nll) = (
        report["test_loss"].as_f64().unwrap(),
        report["iw_nll"].as_f64().unwrap(),
    );
    assert!(nll < loss && loss < 400.0, "{report}");

    let out = vae(d, &["sample", "run", "-n", "16", "--seed", "3", "--out", "s.png"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let png = std::fs::read(d.join("s.png")).unwrap();
    assert_eq!(&png[1..4], b"PNG");
    // 4x4 tiles of 56 px with 2 px gaps: 4·58 + 2 = 234 px wide (big-endian at byte 16).
    assert_eq!(u32::from_be_bytes(png[16..20].try_into().unwrap()), 234);

    let out = vae(d, &["reconstruct", "run", "-n", "8"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(d.join("run/reconstructions-8.png").is_file());
}

#[test]
fn resume_continues_a_finished_run_for_more_epochs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert!(
        vae(
            d,
            &[&["train", "--kind", "ae", "--epochs", "1", "--out", "run"], SMALL].concat()
        )
        .status
        .success()
    );
    let again = vae(
        d,
        &[&["train", "--kind", "ae", "--epochs", "1", "--out", "run"], SMALL].concat(),
    );
    assert_refused(&again, "pass --resume");
    let out = vae(d, &["train", "--resume", "run", "--epochs", "2"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("resuming ae"), "{}", stderr(&out));
    let metrics = std::fs::read_to_string(d.join("run/metrics.jsonl")).unwrap();
    assert_eq!(metrics.lines().count(), 2);
}

#[test]
fn ctrl_c_stops_at_a_batch_and_leaves_a_resumable_run() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let args = [
        &["train", "--epochs", "50", "--out", "run", "--batch-size", "32"],
        &SMALL[..4],
    ]
    .concat();
    let child = vae_command(d, &args)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the first epoch is written, then interrupt mid-training.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !d.join("run/metrics.jsonl").is_file() {
        assert!(std::time::Instant::now() < deadline, "no epoch finished in time");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("checkpoint saved. Continue with: vae train --resume run"),
        "{}",
        stderr(&out)
    );
    let out = vae(d, &["train", "--resume", "run", "--epochs", "2"]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn bad_arguments_are_refused_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for (args, needle) in [
        (&["train", "--latent", "0"][..], "latent: must be at least 1"),
        (
            &["train", "--batch-size", "0"],
            "batch-size: must be between 1 and 1048576",
        ),
        (&["train", "--lr", "-1"], "lr: must be a number > 0 and at most 1"),
        (&["train", "--epochs", "0"], "epochs: must be between 1 and 100000"),
        (
            &["train", "--hidden", "400,0"],
            "hidden: every layer needs at least 1 unit",
        ),
        (&["train", "--beta", "-2"], "beta: must be a finite number >= 0"),
        (&["train", "--threads", "0"], "--threads: must be between 1 and 256"),
        (&["train", "--free-bits", "-1"], "free-bits: must be between 0 and 1000"),
        // Sizes past their documented caps, refused before memory or threads run out.
        (
            &["train", "--threads", "100000"],
            "--threads: must be between 1 and 256",
        ),
        (
            &["train", "--epochs", "1000000000"],
            "epochs: must be between 1 and 100000",
        ),
        (
            &["train", "--objective", "iwae", "--k", "10000"],
            "batch-size x k: 1280000 images a step need",
        ),
        (
            &["train", "--batch-size", "1000000"],
            "batch-size: 1000000 images a step need",
        ),
        (
            &["bench", "--seconds", "1e30"],
            "seconds: must be a number > 0 and at most 3600",
        ),
        (
            &["bench", "--batch-sizes", "100000000"],
            "batch-sizes: must be between 1 and 1048576",
        ),
        (
            &["bench", "--batch-sizes", "500000"],
            "batch-sizes: 500000 images a step need",
        ),
        (
            &["bench", "--threads", "100000"],
            "--threads: must be between 1 and 256",
        ),
        // Flags that would change nothing are refused, not ignored.
        (
            &["train", "--k", "7"],
            "--k: the number of importance samples applies to --objective iwae only",
        ),
        (
            &["train", "--kind", "ae", "--beta", "4"],
            "--beta: an autoencoder has no KL term",
        ),
        (
            &["train", "--kind", "ae", "--kl-warmup", "2"],
            "kl-warmup: an autoencoder has no KL term",
        ),
        (
            &["train", "--kind", "ae", "--free-bits", "1"],
            "free-bits: an autoencoder has no KL term",
        ),
        // A learned prior where it cannot train.
        (
            &["train", "--prior-components", "5"],
            "prior-components: only a learned prior (--prior mog or vamp) has components",
        ),
        (
            &["train", "--kind", "ae", "--prior", "mog"],
            "prior: an autoencoder has no KL term to train a prior with",
        ),
        (
            &["train", "--kind", "cvae", "--prior", "vamp"],
            "prior: the VampPrior's pseudo-inputs have no labels",
        ),
        (
            &["train", "--prior", "vamp", "--prior-components", "0"],
            "prior-components: must be between 1 and 5000, got 0",
        ),
        (
            &["train", "--prior", "mog", "--free-bits", "0.5"],
            "free-bits: a learned prior's KL term does not split by dimension",
        ),
        (&["train", "--dataset", "cifar"], "unknown dataset 'cifar'"),
        (&["eval", "no-such-run"], "no-such-run: not a run folder"),
        (&["sample", "no-such-run"], "no-such-run: not a run folder"),
    ] {
        let out = vae(d, args);
        assert_refused(&out, needle);
        assert!(!d.join("runs").exists(), "{args:?} left a run folder");
    }
}

#[test]
fn a_run_with_a_learned_prior_says_so_and_is_sampled_and_scored_through_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = vae(
        d,
        &[
            &[
                "train",
                "--epochs",
                "1",
                "--out",
                "run",
                "--prior",
                "mog",
                "--prior-components",
                "3",
            ],
            SMALL,
        ]
        .concat(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("prior mog of 3"), "{}", stderr(&out));
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("run/config.json")).unwrap()).unwrap();
    assert_eq!(config["model"]["prior"], "mog");
    assert_eq!(config["model"]["prior_components"], 3);
    let weights = std::fs::read(d.join("run/model.safetensors")).unwrap();
    for name in ["prior.means", "prior.logvars", "prior.logits"] {
        assert!(weights.windows(name.len()).any(|w| w == name.as_bytes()), "{name}");
    }
    let sample = vae(d, &["sample", "run", "--out", "s.png"]);
    assert!(sample.status.success(), "{}", stderr(&sample));
    assert!(d.join("s.png").is_file());
    let eval = vae(d, &["eval", "run", "--k", "20", "--limit", "50", "--json"]);
    assert!(eval.status.success(), "{}", stderr(&eval));
    // A standard run's config stays as it was written before learned priors.
    train_small(d, "plain");
    let plain = std::fs::read_to_string(d.join("plain/config.json")).unwrap();
    assert!(!plain.contains("prior"), "{plain}");
}

#[test]
fn broken_run_folders_give_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    train_small(d, "run");
    let config = std::fs::read_to_string(d.join("run/config.json")).unwrap();

    std::fs::write(
        d.join("run/config.json"),
        config.replace("\"latent\": 4", "\"latent\": 5"),
    )
    .unwrap();
    assert_refused(
        &vae(d, &["sample", "run"]),
        "tensor encoder.fc_mu.weight has shape [4, 64], the config implies [5, 64]",
    );

    std::fs::write(d.join("run/config.json"), config.replace("\"vae\"", "\"gan\"")).unwrap();
    assert_refused(
        &vae(d, &["sample", "run"]),
        "config.json: invalid config: unknown variant `gan`",
    );

    // A learned prior the weights do not hold, and one no model can have.
    let with_prior = |prior: &str| config.replace("\"latent\": 4", &format!("\"latent\": 4, {prior}"));
    std::fs::write(
        d.join("run/config.json"),
        with_prior("\"prior\": \"mog\", \"prior_components\": 3"),
    )
    .unwrap();
    assert_refused(&vae(d, &["sample", "run"]), "prior.means");
    std::fs::write(
        d.join("run/config.json"),
        with_prior("\"prior\": \"vamp\", \"prior_components\": 100000"),
    )
    .unwrap();
    assert_refused(
        &vae(d, &["sample", "run"]),
        "prior-components: must be between 1 and 5000",
    );

    std::fs::write(d.join("run/config.json"), &config).unwrap();
    std::fs::write(d.join("run/model.safetensors"), b"").unwrap();
    assert_refused(
        &vae(d, &["sample", "run"]),
        "model.safetensors: not a valid safetensors file",
    );
}

#[test]
fn a_directory_dataset_with_a_broken_file_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let data = d.join("digits");
    std::fs::create_dir(&data).unwrap();
    for name in [
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ] {
        std::fs::write(data.join(name), [0u8, 0, 8, 3, 0, 0]).unwrap();
    }
    let out = vae(d, &["train", "--dataset", "digits", "--out", "run"]);
    assert_refused(&out, "train-images-idx3-ubyte: truncated header: 6 of 16 bytes");
}

#[test]
fn data_list_and_an_offline_fetch() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = vae(d, &["data", "list"]);
    assert!(out.status.success());
    let list = stdout(&out);
    assert!(
        list.contains("mnist-sample: first 10,000 MNIST training digits"),
        "{list}"
    );
    assert!(list.contains("built in: 9000 train / 1000 test images"), "{list}");
    assert!(list.contains("get it with `vae data fetch mnist`"), "{list}");

    // Nothing listens on the mirror: the error says what was tried and what to do.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mirror = format!("http://{}/", listener.local_addr().unwrap());
    drop(listener);
    let out = vae_command(d, &["data", "fetch", "mnist"])
        .env("VAE_MIRROR", &mirror)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains(&format!("tried {mirror}train-images-idx3-ubyte.gz")),
        "{err}"
    );
    assert!(err.contains("set VAE_MIRROR"), "{err}");
    assert!(!d.join("data/mnist/train-images-idx3-ubyte.gz").exists());
}

/// Width and height of a PNG, from its header.
fn png_size(path: &Path) -> (u32, u32) {
    let png = std::fs::read(path).unwrap();
    assert_eq!(&png[1..4], b"PNG", "{} is not a PNG", path.display());
    let at = |i: usize| u32::from_be_bytes(png[i..i + 4].try_into().unwrap());
    (at(16), at(20))
}

#[test]
fn latent_tools_draw_pictures_of_the_right_shape() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    train_small(d, "run");
    let ok = |args: &[&str]| {
        let out = vae(d, args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    };
    // Tiles are 56 px (28 doubled) with 2 px gaps.
    ok(&[
        "interpolate",
        "run",
        "--pairs",
        "3",
        "--steps",
        "4",
        "--slerp",
        "--out",
        "i.png",
    ]);
    assert_eq!(png_size(&d.join("i.png")), (7 * 58 + 2, 3 * 58 + 2));
    ok(&["interpolate", "run", "--from", "5", "--to", "9"]);
    assert_eq!(png_size(&d.join("run/interpolation.png")), (13 * 58 + 2, 58 + 2));
    ok(&["traverse", "run", "--steps", "5", "--out", "t.png"]);
    assert_eq!(png_size(&d.join("t.png")), (5 * 58 + 2, 4 * 58 + 2));
    ok(&["traverse", "run", "--dim", "2", "--image", "3", "--out", "t1.png"]);
    assert_eq!(png_size(&d.join("t1.png")), (9 * 58 + 2, 58 + 2));
    ok(&["latent-map", "run", "--limit", "300"]);
    assert_eq!(png_size(&d.join("run/latent-map.png")), (850, 700));
    ok(&["sample", "run", "-n", "4", "--temperature", "0.5", "--out", "cold.png"]);

    assert_refused(
        &vae(d, &["manifold", "run"]),
        "the manifold needs a latent size of 2, this run has 4",
    );
    assert_refused(&vae(d, &["traverse", "run", "--dim", "4"]), "--dim: 4 is out of range");
    assert_refused(
        &vae(d, &["interpolate", "run", "--to", "1000"]),
        "--to: image 1000 is out of range",
    );

    let two = [
        &["train", "--epochs", "1", "--out", "flat", "--latent", "2"],
        &SMALL[..2],
    ]
    .concat();
    assert!(vae(d, &two).status.success());
    ok(&["manifold", "flat", "--grid", "5"]);
    assert_eq!(png_size(&d.join("flat/manifold.png")), (5 * 30 + 2, 5 * 30 + 2));
}

#[test]
fn conv_and_conditional_models_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ok = |args: &[&str]| {
        let out = vae(d, args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    };
    let cvae = [
        "train",
        // The flag's name before `--kind`, kept as an alias for old scripts.
        "--model",
        "cvae",
        "--arch",
        "conv",
        "--channels",
        "4,8",
        "--hidden",
        "32",
        "--latent",
        "2",
        "--epochs",
        "1",
        "--batch-size",
        "256",
        "--threads",
        "2",
        "--out",
        "cvae",
    ];
    ok(&cvae);
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("cvae/config.json")).unwrap()).unwrap();
    assert_eq!(config["model"]["kind"], "cvae");
    assert_eq!(config["model"]["arch"], "conv");
    assert_eq!(config["model"]["channels"], serde_json::json!([4, 8]));
    assert_eq!(config["model"]["classes"], 10);
    // Ten rows of 8 draws each in the per-epoch samples.
    assert_eq!(png_size(&d.join("cvae/samples.png")), (8 * 58 + 2, 10 * 58 + 2));

    ok(&["sample", "cvae", "--label", "7", "-n", "9", "--out", "sevens.png"]);
    assert_eq!(png_size(&d.join("sevens.png")), (3 * 58 + 2, 3 * 58 + 2));
    ok(&["sample", "cvae", "--grid-labels", "-n", "5", "--out", "grid.png"]);
    assert_eq!(png_size(&d.join("grid.png")), (5 * 58 + 2, 10 * 58 + 2));
    ok(&["sample", "cvae", "--grid-labels", "--out", "grid10.png"]);
    assert_eq!(png_size(&d.join("grid10.png")), (10 * 58 + 2, 10 * 58 + 2));
    ok(&["interpolate", "cvae", "--pairs", "2", "--steps", "4", "--out", "i.png"]);
    ok(&["traverse", "cvae", "--image", "3", "--steps", "5", "--out", "t.png"]);
    ok(&["manifold", "cvae", "--grid", "4", "--label", "3"]);
    ok(&["latent-map", "cvae", "--limit", "200"]);
    ok(&["reconstruct", "cvae", "-n", "8"]);
    // `--iw-samples`: `--k`'s name before it matched training's, kept as an alias.
    ok(&["eval", "cvae", "--limit", "100", "--iw-samples", "10"]);
    assert_refused(
        &vae(d, &["sample", "cvae", "--label", "12"]),
        "label: 12 is not a class of this model",
    );

    ok(&[&["train", "--epochs", "1", "--out", "plain"], SMALL].concat());
    assert_refused(
        &vae(d, &["sample", "plain", "--grid-labels"]),
        "--label and --grid-labels need a cvae, this run is a vae",
    );
    assert_refused(
        &vae(d, &["traverse", "plain", "--label", "3"]),
        "--label needs a cvae, this run is a vae",
    );
    assert_refused(
        &vae(d, &["train", "--channels", "8", "--out", "x"]),
        "--channels: only a conv body has channels",
    );
}

#[test]
fn serve_refuses_what_it_cannot_serve_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert_refused(&vae(d, &["serve", "missing"]), "missing");
    assert!(
        vae(d, &[&["train", "--epochs", "1", "--out", "a/run"], SMALL].concat())
            .status
            .success()
    );
    // The same folder name twice: requests could not tell the runs apart.
    std::fs::create_dir_all(d.join("b/run")).unwrap();
    for f in ["config.json", "model.safetensors"] {
        std::fs::copy(d.join("a/run").join(f), d.join("b/run").join(f)).unwrap();
    }
    assert_refused(&vae(d, &["serve", "a/run", "b/run"]), "two runs are named run");
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port().to_string();
    assert_refused(
        &vae(d, &["serve", "a/run", "--port", &port]),
        "cannot listen on 127.0.0.1",
    );
}

#[test]
fn eval_measures_the_latent_space_with_a_classifier() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    train_small(d, "run");
    let out = vae(d, &["classifier", "train", "--epochs", "2", "--out", "clf"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("test accuracy, saved to clf"), "{}", stdout(&out));
    let out = vae(d, &["classifier", "eval", "clf"]);
    assert!(
        stdout(&out).contains("of the 1000 test images of mnist-sample classified correctly"),
        "{}",
        stdout(&out)
    );
    let eval_latent = |more: &[&str]| {
        let base = [
            "eval",
            "run",
            "--latent",
            "--classifier",
            "clf",
            "--samples",
            "400",
            "--pairs",
            "20",
            "--json",
        ];
        vae(d, &[&base[..], more].concat())
    };
    let out = eval_latent(&[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    let latent = &report["latent"];
    assert_eq!(latent["protocol"]["samples"], 400);
    assert_eq!(latent["protocol"]["interpolation_pairs"], 20);
    // The numbers themselves are checked on a model with known answers (tests/latent.rs in
    // the library); here, that the run, the classifier and the counts reach them.
    let histogram: Vec<u64> = serde_json::from_value(latent["completeness"]["label_histogram"].clone()).unwrap();
    assert_eq!(histogram.iter().sum::<u64>(), 400, "every prior sample is labelled");
    let test_images = &latent["completeness_of_test_images"];
    assert_eq!(test_images["images"], 1000);
    assert!(test_images["confident_share"].as_f64().unwrap() > 0.5, "{test_images}");
    assert!(latent["fid"].as_f64().unwrap() > latent["fid_floor"].as_f64().unwrap());
    // A trained VAE decodes two different test digits to different images: every path counts.
    assert_eq!(latent["continuity"]["pairs"], 20);
    assert_eq!(latent["continuity"]["even_step"], 0.1);
    assert_eq!(latent["protocol"]["sampler"], "the prior N(0, I)");
    assert_eq!(latent["coverage"]["draws"], 400);
    assert_eq!(latent["coverage"]["latent"], 4);
    assert!(latent["label_agreement"].is_null(), "a vae is asked for no label");

    // The same numbers for draws from a mixture fitted to the training codes: they land
    // closer to where the codes are.
    let out = vae(d, &["fit-sampler", "run", "--components", "8"]);
    assert!(out.status.success(), "{}", stderr(&out));

    let out = eval_latent(&["--sampler", "gmm"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    let fitted = &report["latent"];
    assert!(
        fitted["protocol"]["sampler"]
            .as_str()
            .unwrap()
            .contains("Gaussian mixture of 8 components"),
        "{fitted}"
    );
    let mmd = |r: &serde_json::Value| r["coverage"]["mmd"].as_f64().unwrap();
    assert!(mmd(fitted) < mmd(latent), "{} vs {}", mmd(fitted), mmd(latent));
}

#[test]
fn a_sampler_fitted_to_a_run_draws_its_samples_until_the_run_trains_on() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    train_small(d, "run");
    assert_refused(
        &vae(d, &["sample", "run", "--sampler", "gmm"]),
        "run `vae fit-sampler run --kind gmm` first",
    );
    assert_refused(
        &vae(d, &["fit-sampler", "run", "--components", "0"]),
        "--components: must be between 1 and 1000",
    );
    assert_refused(&vae(d, &["fit-sampler", "run", "--kind", "prior"]), "needs no fitting");

    let out = vae(d, &["fit-sampler", "run", "--components", "5"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("8100 codes") && text.contains("900 held-out codes"),
        "{text}"
    );
    assert!(
        text.contains("under the mixture") && text.contains("under the prior N(0, I)"),
        "{text}"
    );
    for file in ["sampler-gmm.safetensors", "sampler-gmm.json"] {
        assert!(d.join("run").join(file).is_file(), "{file} missing");
    }
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("run/sampler-gmm.json")).unwrap()).unwrap();
    assert_eq!(record["report"]["options"]["components"], 5);
    assert_eq!(record["model_sha256"].as_str().unwrap().len(), 64);

    let out = vae(d, &["sample", "run", "--sampler", "gmm", "-n", "16"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(png_size(&d.join("run/samples-gmm-seed0.png")), (234, 234));
    let out = vae(d, &["sample", "run", "-n", "16"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let (gmm, prior) = (
        std::fs::read(d.join("run/samples-gmm-seed0.png")).unwrap(),
        std::fs::read(d.join("run/samples-seed0.png")).unwrap(),
    );
    assert_ne!(gmm, prior, "the mixture draws other codes than the prior");

    // The two-stage VAE: a second VAE on the codes, in its own folder inside the run.
    assert_refused(
        &vae(d, &["sample", "run", "--sampler", "two-stage"]),
        "--kind two-stage",
    );
    let out = vae(
        d,
        &[
            "fit-sampler",
            "run",
            "--kind",
            "two-stage",
            "--epochs",
            "3",
            "--hidden",
            "32",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("8100 codes, 900 held out"), "{}", stdout(&out));
    assert!(d.join("run/sampler-two-stage/model.safetensors").is_file());
    let out = vae(d, &["sample", "run", "--sampler", "two-stage", "-n", "16"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_ne!(std::fs::read(d.join("run/samples-two-stage-seed0.png")).unwrap(), prior);
    let out = vae(d, &["eval", "run", "--json"]);
    assert!(
        out.status.success(),
        "a second stage in the folder leaves the run as it was: {}",
        stderr(&out)
    );

    // Training on rewrites the weights; the old samplers are refused, not silently used.
    let out = vae(d, &["train", "--resume", "run", "--epochs", "2"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_refused(
        &vae(d, &["sample", "run", "--sampler", "gmm"]),
        "was fitted to other weights",
    );
    assert_refused(&vae(d, &["sample", "run", "--sampler", "two-stage"]), "other weights");
}

#[test]
fn demo_writes_a_report_and_the_runs_behind_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let args = [
        "demo",
        "--epochs",
        "1",
        "--latent",
        "2",
        "--hidden",
        "32",
        "--samples",
        "200",
        "--pairs",
        "5",
        "--out",
        "demo",
    ];
    let out = vae(d, &args);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("== training vae-2"), "{}", stderr(&out));
    let html = std::fs::read_to_string(d.join("demo/report.html")).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>") && html.trim_end().ends_with("</html>"));
    let (numbers, names) = support::demo_report(d);
    assert_eq!(names, ["ae-2", "vae-2", "conv-vae-2", "vamp-vae-2", "cvae-2"]);
    assert_eq!(numbers["models"][2]["arch"], "conv");
    assert_eq!(numbers["models"][3]["prior"], "vamp");
    assert_eq!(numbers["models"][4]["kind"], "cvae");
    assert!(html.contains(r#"id="cvae-samples""#));
    // The AE and VAE of the largest latent size also get a second VAE on their codes.
    assert!(html.contains(r#"id="two-stage""#));
    let stage = &numbers["models"][1]["second_stage"];
    assert_eq!(stage["quality"]["completeness"]["images"], 200, "{stage}");
    assert!(
        !numbers["models"][0]["second_stage"].is_null(),
        "the autoencoder gets one too"
    );
    assert!(numbers["models"][2]["second_stage"].is_null(), "the conv VAE gets none");
    assert!(d.join("demo/runs/vae-2/sampler-two-stage.json").is_file());
    assert!(d.join("demo/runs/ae-2/model.safetensors").is_file());
    // The numbers are those of the runs and of the protocol asked for.
    for m in numbers["models"].as_array().unwrap() {
        let name = m["name"].as_str().unwrap();
        let metrics = std::fs::read_to_string(d.join("demo/runs").join(name).join("metrics.jsonl")).unwrap();
        let last: serde_json::Value = serde_json::from_str(metrics.lines().last().unwrap()).unwrap();
        assert_eq!(m["final"], last, "{name}: report.json's final epoch is not the run's");
        let space = &m["latent_space"];
        assert_eq!(space["protocol"]["samples"], 200, "{name}");
        assert_eq!(space["protocol"]["interpolation_pairs"], 5, "{name}");
        let completeness = &space["completeness"];
        assert_eq!(completeness["images"], 200, "{name}");
        let histogram: Vec<f64> = completeness["label_histogram"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert_eq!(histogram.iter().sum::<f64>(), 200.0, "{name}");
        // The entropy printed is the histogram's, in bits.
        let entropy: f64 = histogram
            .iter()
            .filter(|&&c| c > 0.0)
            .map(|&c| -(c / 200.0) * (c / 200.0).log2())
            .sum();
        let printed = completeness["label_entropy_bits"].as_f64().unwrap();
        assert!((entropy - printed).abs() < 1e-4, "{name}: {entropy} vs {printed}");
        let share = completeness["confident_share"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&share), "{name}: {share}");
        assert!(space["continuity"]["pairs"].as_u64().unwrap() <= 5, "{name}");
    }
    // A second demo into the same folder replaces its own runs instead of refusing.
    let out = vae(d, &[&args[..], &["--no-extras"]].concat());
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(support::demo_report(d).1.len(), 2);
}

/// Kill test: `vae train` killed with SIGKILL at varied moments, resumed each time, must
/// always resume and end bit-identical to a run that was never interrupted. The number of
/// kills is `VAE_KILL_TEST_KILLS` (default 5; `scripts/kill-test.sh` runs 20).
#[test]
fn training_killed_at_random_moments_always_resumes_to_the_same_result() {
    let kills: usize = std::env::var("VAE_KILL_TEST_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Delays cycle through a spread of moments: early, mid-epoch, around epoch ends.
    let delays_ms = [350u64, 120, 900, 60, 500, 240, 700, 30, 420, 180];
    let model = [
        "--hidden",
        "64",
        "--latent",
        "4",
        "--batch-size",
        "32",
        "--checkpoint-every",
        "40",
    ];
    // Enough epochs that the run outlasts the kills on any machine: three epochs are timed
    // first (start-up included, so an epoch is if anything overestimated), and the run is
    // made to last four times the kill schedule; each kill also loses the work since the
    // last checkpoint and a restart. A fixed count finished before the kills on a fast
    // machine.
    let schedule_ms: u64 = (0..kills).map(|i| delays_ms[i % delays_ms.len()]).sum();
    let timed = std::time::Instant::now();
    let out = vae(
        d,
        &[&["train", "--out", "timing", "--epochs", "3"], &model[..]].concat(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let epoch_ms = (timed.elapsed().as_millis() as u64 / 3).max(1);
    let epochs = (4 * schedule_ms / epoch_ms).clamp(4 + kills as u64, 2000) as usize;
    let epochs_arg = epochs.to_string();
    let settings = [&["--epochs", epochs_arg.as_str()], &model[..]].concat();
    let out = vae(d, &[&["train", "--out", "straight"], &settings[..]].concat());
    assert!(out.status.success(), "{}", stderr(&out));

    let spawn = |args: &[&str]| {
        vae_command(d, args)
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut child = spawn(&[&["train", "--out", "killed"], &settings[..]].concat());
    while !d.join("killed/config.json").exists() {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let (mut done_kills, mut resumed_mid_run) = (0, 0);
    let mut attempt = 0;
    loop {
        let delay = delays_ms[attempt % delays_ms.len()];
        attempt += 1;
        std::thread::sleep(std::time::Duration::from_millis(delay));
        match child.try_wait().unwrap() {
            Some(status) => {
                assert!(status.success(), "a resumed run failed: {status}");
                if done_kills >= kills {
                    break;
                }
                // Finished before the kill: ask for more epochs so there is work to interrupt.
                panic!("the run finished after {done_kills} of {kills} kills; lengthen it");
            }
            None if done_kills < kills => {
                // The resume after this kill continues from a checkpoint, not from scratch.
                resumed_mid_run += usize::from(d.join("killed/checkpoint.safetensors").exists());
                child.kill().unwrap();
                child.wait().unwrap();
                done_kills += 1;
                child = spawn(&["train", "--resume", "killed"]);
            }
            None => {
                let status = child.wait().unwrap();
                assert!(status.success(), "the last resumed run failed: {status}");
                break;
            }
        }
    }
    let read = |run: &str, file: &str| std::fs::read(d.join(run).join(file)).unwrap();
    assert_eq!(
        read("killed", "model.safetensors"),
        read("straight", "model.safetensors")
    );
    let losses = |run: &str| {
        String::from_utf8(read(run, "metrics.jsonl"))
            .unwrap()
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                (
                    v["epoch"].as_u64().unwrap(),
                    v["train_loss"].as_f64().unwrap(),
                    v["test_loss"].as_f64().unwrap(),
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(losses("killed"), losses("straight"));
    assert_eq!(losses("killed").len(), epochs);
    // Kills that all landed before the first checkpoint would prove nothing about resuming.
    assert!(
        resumed_mid_run >= kills.div_ceil(2),
        "only {resumed_mid_run} of {kills} kills came after a checkpoint"
    );
}

/// A tmpfs of a given size mounted for the test's life (root only: the test skips elsewhere).
struct SmallDisk {
    path: std::path::PathBuf,
}

impl SmallDisk {
    fn mount(path: &Path, bytes: u64) -> Option<SmallDisk> {
        std::fs::create_dir_all(path).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(path)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| SmallDisk {
            path: path.to_path_buf(),
        })
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.path).status();
    }
}

#[test]
fn a_full_disk_stops_training_with_a_clear_error_and_the_last_checkpoint_intact() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let settings = SMALL;
    // A reference run on the ordinary disk: what the folder holds after one epoch.
    assert!(
        vae(
            d,
            &[&["train", "--epochs", "1", "--out", "reference"], settings].concat()
        )
        .status
        .success()
    );
    let size = |name: &str| std::fs::metadata(d.join("reference").join(name)).unwrap().len();
    let after_one_epoch: u64 = [
        "checkpoint.safetensors",
        "model.safetensors",
        "samples.png",
        "reconstructions.png",
        "metrics.jsonl",
        "config.json",
    ]
    .iter()
    .map(|f| size(f))
    .sum();
    // Room for one epoch's files and half a checkpoint more: the second checkpoint cannot fit.
    let room = after_one_epoch + size("checkpoint.safetensors") / 2 + 64 * 1024;
    let Some(disk) = SmallDisk::mount(&d.join("small"), room) else {
        support::skip_without_root("mounting a tmpfs");
        return;
    };
    let out = vae(
        d,
        &[&["train", "--epochs", "3", "--out", "small/run"], settings].concat(),
    );
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("No space left on device"), "{err}");
    assert!(err.contains("small/run/"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    // The first epoch's files are whole: the weights are the reference's, and the run resumes
    // from its checkpoint once there is room again.
    let same = std::fs::read(d.join("small/run/model.safetensors")).unwrap()
        == std::fs::read(d.join("reference/model.safetensors")).unwrap();
    assert!(same, "model.safetensors differs from the reference run's first epoch");
    std::fs::create_dir(d.join("rescued")).unwrap();
    for file in ["config.json", "checkpoint.safetensors"] {
        std::fs::copy(d.join("small/run").join(file), d.join("rescued").join(file)).unwrap();
    }
    let out = vae(d, &["train", "--resume", "rescued"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(d.join("rescued/metrics.jsonl"))
            .unwrap()
            .lines()
            .count(),
        3
    );
    drop(disk);
}

#[test]
fn a_read_only_run_folder_gives_a_clear_error_and_keeps_the_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let Some(disk) = SmallDisk::mount(&d.join("disk"), 64 << 20) else {
        support::skip_without_root("mounting a tmpfs");
        return;
    };
    assert!(
        vae(d, &[&["train", "--epochs", "1", "--out", "disk/run"], SMALL].concat())
            .status
            .success()
    );
    let before = std::fs::read(d.join("disk/run/checkpoint.safetensors")).unwrap();
    let remounted = Command::new("mount")
        .args(["-o", "remount,ro"])
        .arg(d.join("disk"))
        .status()
        .unwrap();
    assert!(remounted.success());
    let out = vae(d, &["train", "--resume", "disk/run", "--epochs", "2"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("Read-only file system"), "{err}");
    assert!(err.contains("disk/run/"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(std::fs::read(d.join("disk/run/checkpoint.safetensors")).unwrap() == before);
    drop(disk);
}

#[test]
fn an_output_folder_that_cannot_exist_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("plain-file"), "").unwrap();
    let out = vae(
        d,
        &[&["train", "--epochs", "1", "--out", "plain-file/run"], SMALL].concat(),
    );
    assert_refused(&out, "plain-file/run");
}

#[test]
fn bench_reports_training_and_evaluation_throughput() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let args = [
        "bench",
        "--seconds",
        "0.2",
        "--batch-sizes",
        "64",
        "--threads",
        "1",
        "--json",
    ];
    let out = vae(d, &args);
    assert!(out.status.success(), "{}", stderr(&out));
    let lines: Vec<serde_json::Value> = stdout(&out).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let what: Vec<&str> = lines.iter().map(|l| l["what"].as_str().unwrap()).collect();
    assert!(what.contains(&"train") && what.contains(&"eval"), "{what:?}");
    for l in &lines {
        assert_eq!(l["framework"], "vae");
        assert_eq!(l["threads"], 1);
        assert!(l["images_per_sec"].as_f64().unwrap() > 100.0, "{l}");
        assert!(l["gflops"].as_f64().unwrap() > 0.0, "{l}");
    }
    let train = lines.iter().find(|l| l["what"] == "train").unwrap();
    assert_eq!(train["batch_size"], 64);
}

#[test]
fn training_flags_reach_the_run_and_eval_scores_it_as_it_trained() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let flags = [
        "--epochs",
        "1",
        "--objective",
        "iwae",
        "--k",
        "3",
        "--kl-warmup",
        "2",
        "--binarize",
        "dynamic",
        "--out",
        "run",
    ];
    let out = vae(d, &[&["train"], &flags[..], SMALL].concat());
    assert!(out.status.success(), "{}", stderr(&out));
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("run/config.json")).unwrap()).unwrap();
    let train = &config["train"];
    assert_eq!(
        (
            &train["objective"],
            &train["k"],
            &train["kl_warmup"],
            &train["binarize"]
        ),
        (&"iwae".into(), &3.into(), &2.into(), &"dynamic".into())
    );
    let metrics: serde_json::Value =
        serde_json::from_str(std::fs::read_to_string(d.join("run/metrics.jsonl")).unwrap().trim()).unwrap();
    // Halfway through a two-epoch warm-up, β is half its target.
    assert!((metrics["beta"].as_f64().unwrap() - 0.5).abs() < 1e-6, "{metrics}");
    // vae eval scores the binarized test split the run was evaluated on: its loss is the
    // epoch's test loss up to the sampling noise of another seed.
    let out = vae(d, &["eval", "run", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    let (eval, trained) = (
        report["test_loss"].as_f64().unwrap(),
        metrics["test_loss"].as_f64().unwrap(),
    );
    assert!(
        (eval - trained).abs() < 0.01 * trained,
        "eval {eval} vs the epoch's {trained}"
    );
    // Told the run kept grey pixels, the same evaluation (same seed) scores other pixels. The
    // two losses are close on MNIST, so only this comparison shows the binarization applied.
    let text = std::fs::read_to_string(d.join("run/config.json")).unwrap();
    std::fs::write(d.join("run/config.json"), text.replace("\"dynamic\"", "\"none\"")).unwrap();
    let out = vae(d, &["eval", "run", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let grey: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_ne!(
        grey["test_loss"], report["test_loss"],
        "the binarized run was scored on grey pixels"
    );
}

/// The emoji folder that `scripts/emoji-folder.py` makes, at `VAE_EMOJI_DIR`; `None` (the
/// test says it skipped) where it is absent, unless `VAE_REQUIRE_DATA=1` forbids skipping.
fn emoji_folder() -> Option<String> {
    match std::env::var("VAE_EMOJI_DIR") {
        Ok(dir) if Path::new(&dir).is_dir() => Some(dir),
        _ if std::env::var("VAE_REQUIRE_DATA").is_ok_and(|v| v == "1") => {
            panic!("VAE_EMOJI_DIR names no folder, and VAE_REQUIRE_DATA=1 forbids skipping")
        }
        _ => {
            eprintln!("skipped: VAE_EMOJI_DIR names no folder (see scripts/emoji-folder.py)");
            None
        }
    }
}

#[test]
fn a_folder_of_colour_images_trains_resumes_and_draws_in_colour() {
    let Some(emoji) = emoji_folder() else { return };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let train = [
        "train",
        "--dataset",
        &emoji,
        "--image-size",
        "16",
        "--arch",
        "conv",
        "--channels",
        "8,16",
        "--hidden",
        "32",
        "--latent",
        "4",
        "--epochs",
        "1",
        "--threads",
        "2",
        "--out",
        "run",
    ];
    let out = vae(d, &train);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("(3407 train / 379 test images)"),
        "{}",
        stderr(&out)
    );
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("run/config.json")).unwrap()).unwrap();
    assert_eq!(config["model"]["image_channels"], 3);
    assert_eq!(config["model"]["image_height"], 16);
    assert_eq!(config["train"]["image_size"], "16x16");

    // Resumed and evaluated at the size it trained at, without being told again.
    let out = vae(d, &["train", "--resume", "run", "--epochs", "2"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = vae(d, &["eval", "run", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(report["images"], 379);
    // 16x16x3 values in [0, 1] under the Bernoulli loss: at most 768 · ln 2 for a flat guess.
    assert!(report["test_loss"].as_f64().unwrap() < 768.0 * 2f64.ln(), "{report}");

    // Every picture is an RGB PNG (colour type 2 at byte 25).
    for (args, file) in [
        (vec!["sample", "run", "-n", "4", "--out", "s.png"], "s.png"),
        (vec!["reconstruct", "run", "-n", "4", "--out", "r.png"], "r.png"),
        (vec!["interpolate", "run", "--out", "i.png"], "i.png"),
    ] {
        let out = vae(d, &args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        assert_eq!(std::fs::read(d.join(file)).unwrap()[25], 2, "{file}");
    }
    let out = vae(d, &["latent-map", "run", "--out", "map.png"]);
    assert!(out.status.success(), "{}", stderr(&out));

    // What needs MNIST-like digits says so in a line.
    assert_refused(
        &vae(d, &["eval", "run", "--dataset", "mnist-sample"]),
        "images are 28x28 grey, not the 16x16 rgb asked for",
    );
    // A conditional model needs labels: a folder without class sub-folders has none.
    let flat = d.join("flat");
    std::fs::create_dir(&flat).unwrap();
    for entry in std::fs::read_dir(Path::new(&emoji).join("Flags")).unwrap().take(20) {
        let path = entry.unwrap().path();
        std::fs::copy(&path, flat.join(path.file_name().unwrap())).unwrap();
    }
    assert_refused(
        &vae(
            d,
            &[
                "train",
                "--kind",
                "cvae",
                "--dataset",
                "flat",
                "--epochs",
                "1",
                "--out",
                "c",
            ],
        ),
        "a cvae needs labels",
    );
    assert!(!d.join("c").exists(), "a refused run leaves no folder");
}

/// scikit-learn's bundled tables at `VAE_SKLEARN_DIR` (CI extracts Debian's python3-sklearn
/// there); `None` (the test says it skipped) where they are absent, unless
/// `VAE_REQUIRE_DATA=1` forbids skipping.
fn sklearn_folder() -> Option<std::path::PathBuf> {
    let dir = std::env::var_os("VAE_SKLEARN_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| "/usr/lib/python3/dist-packages/sklearn/datasets/data".into());
    match dir.join("digits.csv.gz").is_file() {
        true => Some(dir),
        false if std::env::var("VAE_REQUIRE_DATA").is_ok_and(|v| v == "1") => {
            panic!("VAE_SKLEARN_DIR holds no digits.csv.gz, and VAE_REQUIRE_DATA=1 forbids skipping")
        }
        false => {
            eprintln!("skipped: VAE_SKLEARN_DIR holds no digits.csv.gz");
            None
        }
    }
}

#[test]
fn vectors_from_csv_and_npy_train_resume_and_evaluate() {
    let Some(sklearn) = sklearn_folder() else { return };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // scikit-learn's 8x8 digits (values 0 to 16) as a headed CSV scaled to [0, 1], the label
    // in a named column.
    let digits = vae::data::table::read(&sklearn.join("digits.csv.gz"), Some("last")).unwrap();
    let (_, labels) = digits.labels.clone().unwrap();
    let mut csv = (1..=64).map(|c| format!("pixel{c}")).collect::<Vec<_>>().join(",") + ",digit\n";
    for (row, label) in digits.values.chunks(64).zip(&labels) {
        let cells: Vec<String> = row.iter().map(|v| (v / 16.0).to_string()).collect();
        csv += &format!("{},{label}\n", cells.join(","));
    }
    std::fs::write(d.join("digits.csv"), csv).unwrap();

    let out = vae(d, &["data", "inspect", "digits.csv", "--label-column", "digit"]);
    assert!(out.status.success(), "{}", stderr(&out));
    for line in [
        "a CSV table",
        "1,797 items: 1,618 train / 179 test",
        "items: 64-value vectors",
        "classes (10):",
    ] {
        assert!(stdout(&out).contains(line), "'{line}' not in:\n{}", stdout(&out));
    }
    let train = [
        "train",
        "--dataset",
        "digits.csv",
        "--label-column",
        "digit",
        "--hidden",
        "64",
        "--latent",
        "4",
    ];
    let out = vae(
        d,
        &[&train[..], &["--epochs", "2", "--threads", "2", "--out", "run"]].concat(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!d.join("run/samples.png").exists(), "vectors are not pictures");
    assert_eq!(png_size(&d.join("run/reconstruction-errors.png")), (850, 700));
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("run/config.json")).unwrap()).unwrap();
    assert_eq!(config["model"]["image_width"], 64);
    assert_eq!(config["train"]["label_column"], "digit");
    // Resumed and evaluated from elsewhere, the table read as it trained.
    let out = vae(d, &["train", "--resume", "run", "--epochs", "3"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = vae(d, &["eval", "run", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(report["images"], 179);
    // 64 values in [0, 1] under the Bernoulli loss: below 64 · ln 2 for a flat guess.
    assert!(report["test_loss"].as_f64().unwrap() < 64.0 * 2f64.ln(), "{report}");
    let out = vae(
        d,
        &[&train[..], &["--kind", "cvae", "--epochs", "1", "--out", "cvae"]].concat(),
    );
    assert!(out.status.success(), "{}", stderr(&out));

    // The same vectors as an NPY array with its labels beside it, one label per line.
    let floats: Vec<f32> = digits.values.iter().map(|v| v / 16.0).collect();
    let mut npy = Vec::new();
    vae::data::npy::write_f32(&mut npy, &[digits.rows, 64], &floats).unwrap();
    std::fs::write(d.join("digits.npy"), npy).unwrap();
    std::fs::write(d.join("labels.txt"), labels.join("\n")).unwrap();
    let out = vae(
        d,
        &[
            "train",
            "--dataset",
            "digits.npy",
            "--labels",
            "labels.txt",
            "--kind",
            "cvae",
            "--epochs",
            "1",
            "--out",
            "npy",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    std::fs::rename(d.join("labels.txt"), d.join("moved.txt")).unwrap();
    assert_refused(&vae(d, &["eval", "npy"]), "labels.txt");

    // Values outside [0, 1], and labels where a table cannot have them, are refused in a line.
    assert_refused(
        &vae(
            d,
            &[
                "train",
                "--dataset",
                &sklearn.join("digits.csv.gz").display().to_string(),
                "--label-column",
                "last",
                "--out",
                "raw",
            ],
        ),
        "values run from 0 to 16",
    );
    assert_refused(
        &vae(d, &["train", "--labels", "moved.txt", "--out", "x"]),
        "only for NPY and CSV files",
    );
    assert!(!d.join("raw").exists() && !d.join("x").exists());

    // Real values as they are: breast_cancer.csv (values up to 4,254) under the Gaussian
    // likelihood, its inputs standardised by a scaler kept in the run folder.
    let cancer = sklearn.join("breast_cancer.csv").display().to_string();
    let gaussian = [
        "train",
        "--dataset",
        &cancer,
        "--recon",
        "gaussian",
        "--hidden",
        "32",
        "--latent",
        "4",
    ];
    let out = vae(d, &[&gaussian[..], &["--epochs", "20", "--out", "bc"]].concat());
    assert!(out.status.success(), "{}", stderr(&out));
    let scaler: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("bc/scaler.json")).unwrap()).unwrap();
    assert_eq!(scaler["mean"].as_array().unwrap().len(), 30);
    let mean_radius = scaler["mean"][0].as_f64().unwrap();
    assert!(
        (13.5..14.5).contains(&mean_radius),
        "the training rows' mean radius: {mean_radius}"
    );
    let metrics = std::fs::read_to_string(d.join("bc/metrics.jsonl")).unwrap();
    let test_loss = |line: &str| {
        serde_json::from_str::<serde_json::Value>(line).unwrap()["test_loss"]
            .as_f64()
            .unwrap()
    };
    let lines: Vec<&str> = metrics.lines().collect();
    assert!(
        test_loss(lines[19]) < test_loss(lines[0]) - 2.0,
        "the Gaussian's loss falls: {metrics}"
    );
    let out = vae(d, &["train", "--resume", "bc", "--epochs", "21"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = vae(d, &["eval", "bc", "--json", "--k", "20"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(report["images"], 57);
    std::fs::write(d.join("bc/scaler.json"), "{\"mean\": [1], \"std\": [1]}").unwrap();
    assert_refused(
        &vae(d, &["eval", "bc"]),
        "scaler.json: has 1 means and 1 standard deviations for a model of 30 values",
    );
    std::fs::remove_file(d.join("bc/scaler.json")).unwrap();
    assert_refused(&vae(d, &["eval", "bc"]), "scaler.json");
    assert_refused(
        &vae(d, &[&gaussian[..], &["--binarize", "static", "--out", "bin"]].concat()),
        "binarizing is for intensities",
    );
}

#[test]
fn the_demo_tells_its_story_on_colour_images_of_another_size() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // 2,000 of the built-in digits at 12x12, orange on blue, as an NPY array with its labels.
    let (rgb, digits) = support::tinted_digits(2_000, 12, 1);
    let mut npy = Vec::new();
    vae::data::npy::write_u8(&mut npy, &[digits.len(), 12, 12, 3], &rgb).unwrap();
    std::fs::write(d.join("tinted.npy"), npy).unwrap();
    // Class 9 keeps only its first three images (the rest become eights): a small category,
    // fewer than the per-class mixture's default components.
    let mut nines = 0;
    let labels: Vec<String> = digits
        .labels
        .iter()
        .map(|&l| match l {
            9 if nines < 3 => {
                nines += 1;
                "9".to_string()
            }
            9 => "8".to_string(),
            l => l.to_string(),
        })
        .collect();
    std::fs::write(d.join("labels.txt"), labels.join("\n")).unwrap();
    let out = vae_command(
        d,
        &[
            "demo",
            "--dataset",
            "tinted.npy",
            "--labels",
            "labels.txt",
            "--epochs",
            "2",
            "--latent",
            "2",
            "--hidden",
            "64",
            "--samples",
            "300",
            "--pairs",
            "20",
            "--threads",
            "2",
            "--out",
            "demo",
        ],
    )
    .env("VAE_DATA_DIR", d.join("data"))
    .output()
    .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let report = std::fs::read_to_string(d.join("demo/report.html")).unwrap();
    assert!(report.contains("data:image/png;base64,"), "pictures embedded");
    let (numbers, names) = support::demo_report(d);
    assert_eq!(names, ["ae-2", "vae-2", "conv-vae-2", "vamp-vae-2", "cvae-2"]);
    assert!(
        numbers["classifier_accuracy"].as_f64().unwrap() > 0.5,
        "a classifier of the colour digits: {numbers}"
    );
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("demo/runs/vae-2/config.json")).unwrap()).unwrap();
    assert_eq!(
        (
            config["model"]["image_height"].as_u64(),
            config["model"]["image_channels"].as_u64()
        ),
        (Some(12), Some(3))
    );
    // Each picture is RGB (colour type 2 at byte 25).
    assert_eq!(std::fs::read(d.join("demo/runs/vae-2/samples.png")).unwrap()[25], 2);
}

#[test]
fn output_into_a_closed_pipe_ends_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    train_small(d, "run");
    // `true` has exited long before eval prints: its writes meet a closed pipe.
    let vae = env!("CARGO_BIN_EXE_vae");
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("'{vae}' eval run --k 5 | true"))
        .current_dir(d)
        .env("VAE_DATA_DIR", d.join("data"))
        .output()
        .unwrap();
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
    assert_eq!(stderr(&out), "");
}

#[test]
fn data_inspect_says_what_a_folder_holds_and_every_file_that_would_stop_a_run() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Six small grey PNG files in two class folders.
    let sample = d.join("digits");
    let png = |pixels: &[u8], w: u32, h: u32| {
        let mut bytes = Vec::new();
        let mut encoder = png_encoder(&mut bytes, w, h);
        encoder.write_image_data(pixels).unwrap();
        drop(encoder);
        bytes
    };
    for (i, class) in ["a", "a", "a", "b", "b", "b"].iter().enumerate() {
        std::fs::create_dir_all(sample.join(class)).unwrap();
        let pixels: Vec<u8> = (0..16).map(|p| (p * 16 + i) as u8).collect();
        std::fs::write(sample.join(class).join(format!("{i}.png")), png(&pixels, 4, 4)).unwrap();
    }
    let out = vae(d, &["data", "inspect", "digits", "--test-fraction", "0.34"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    for line in [
        "digits: a folder of images",
        "6 items: 4 train / 2 test",
        "images: 4x4 grey (16 values each)",
        "files: 4x4 (6)",
        "values: 0 to 245",
        "classes (2):",
        "a (2 train / 1 test)",
        "problems: none",
    ] {
        assert!(text.contains(line), "'{line}' not in:\n{text}");
    }

    // Broken files are all named, and the status says so.
    std::fs::write(sample.join("a/notes.png"), "not a picture").unwrap();
    let mut cut = png(&[7; 64], 8, 8);
    cut.truncate(cut.len() - 20);
    std::fs::write(sample.join("b/cut.png"), cut).unwrap();
    std::fs::write(sample.join("b/big.png"), png(&[1; 64], 8, 8)).unwrap();
    let out = vae(d, &["data", "inspect", "digits"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(text.contains("problems (2):"), "{text}");
    assert!(text.contains("notes.png: not an image"), "{text}");
    assert!(text.contains("cut.png: not a readable image"), "{text}");
    assert!(text.contains("files: 4x4 (6), 8x8 (1)"), "{text}");
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
    std::fs::remove_file(sample.join("a/notes.png")).unwrap();
    std::fs::remove_file(sample.join("b/cut.png")).unwrap();
    let out = vae(d, &["data", "inspect", "digits"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("images of different sizes"), "{}", stdout(&out));
    let out = vae(d, &["data", "inspect", "digits", "--image-size", "4"]);
    assert!(out.status.success(), "{}", stdout(&out));
}

fn png_encoder(bytes: &mut Vec<u8>, w: u32, h: u32) -> png::Writer<&mut Vec<u8>> {
    let mut encoder = png::Encoder::new(bytes, w, h);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.write_header().unwrap()
}

#[test]
fn encode_decode_and_score_use_a_trained_model() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    train_small(d, "run");
    // Codes of the 1,000 test digits as CSV: a header, then item, label, 4 means, 4 spreads.
    let out = vae(d, &["encode", "run", "mnist-sample", "--split", "test"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1 + 1_000);
    assert_eq!(
        lines[0],
        "item,label,mu_1,mu_2,mu_3,mu_4,sigma_1,sigma_2,sigma_3,sigma_4"
    );
    assert!(lines[1].starts_with("test:0,"), "{}", lines[1]);
    let sigmas: Vec<f64> = lines[1].split(',').skip(6).map(|v| v.parse().unwrap()).collect();
    assert!(sigmas.iter().all(|&s| s > 0.0 && s < 1.5), "{sigmas:?}");
    // As NPY: items x 2 x latent, every item of both splits.
    let out = vae(d, &["encode", "run", "mnist-sample", "--out", "codes.npy"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let npy = std::fs::read(d.join("codes.npy")).unwrap();
    assert!(String::from_utf8_lossy(&npy[..128]).contains("'shape': (10000, 2, 4)"));

    // Decoded back: a grid, or one picture per code at the images' own size.
    let out = vae(
        d,
        &["encode", "run", "mnist-sample", "--split", "test", "--out", "codes.csv"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let out = vae(d, &["decode", "run", "codes.csv", "--out", "each"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::read_dir(d.join("each")).unwrap().count(), 1_000);
    assert_eq!(png_size(&d.join("each/00007.png")), (28, 28));
    let out = vae(d, &["decode", "run", "codes.npy"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        png_size(&d.join("run/decoded.png")),
        (100 * (56 + 2) + 2, 100 * (56 + 2) + 2),
        "a 100 x 100 grid of doubled digits, 2 pixels apart"
    );
    // The means as NPY (items x 2 x latent) decode to the same pictures as from the CSV.
    let out = vae(
        d,
        &["encode", "run", "mnist-sample", "--split", "test", "--out", "test.npy"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let out = vae(d, &["decode", "run", "test.npy", "--out", "each-npy"]);
    assert!(out.status.success(), "{}", stderr(&out));
    for i in [0, 1, 999] {
        let name = format!("{i:05}.png");
        assert_eq!(
            std::fs::read(d.join("each").join(&name)).unwrap(),
            std::fs::read(d.join("each-npy").join(&name)).unwrap()
        );
    }
    assert_ne!(
        std::fs::read(d.join("each/00000.png")).unwrap(),
        std::fs::read(d.join("each/00001.png")).unwrap()
    );
    // A decoded picture is an image file like any other: it encodes.
    let out = vae(d, &["encode", "run", "each/00000.png", "each/00001.png"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).lines().nth(2).unwrap().starts_with("each/00001.png,,"),
        "{}",
        stdout(&out)
    );

    // Scores: one row per item; the digits' own scores are typical, Fashion-MNIST's are not.
    let out = vae(
        d,
        &[
            "score",
            "run",
            "mnist-sample",
            "--split",
            "test",
            "--iw-samples",
            "5",
            "--out",
            "scores.csv",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let scores = std::fs::read_to_string(d.join("scores.csv")).unwrap();
    assert_eq!(
        scores.lines().next().unwrap(),
        "item,label,neg_elbo,reconstruction,kl,neg_log_px,typicality,complexity,corrected,corrected_typicality,per_complexity"
    );
    assert_eq!(scores.lines().count(), 1_001);
    let row: Vec<f64> = scores
        .lines()
        .nth(1)
        .unwrap()
        .split(',')
        .skip(2)
        .map(|v| v.parse().unwrap())
        .collect();
    assert!(
        (row[0] - row[1] - row[2]).abs() < 1e-3,
        "neg_elbo = reconstruction + kl: {row:?}"
    );
    assert!(
        row[3] <= row[0] + 1.0,
        "the IW estimate is at most the bound, give or take its noise: {row:?}"
    );
    assert!(
        (row[6] - (row[0] - row[5])).abs() < 1e-2,
        "corrected = neg_elbo - complexity: {row:?}"
    );
    // Image files score against their own kind: the same digits, saved as PNGs, look usual.
    let out = vae(
        d,
        &[
            "score",
            "run",
            "mnist-sample",
            "--split",
            "test",
            "--against",
            "each/00001.png",
            "each/00002.png",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("  neg_elbo "), "{}", stdout(&out));

    // What cannot be done is refused in a line.
    assert_refused(
        &vae(d, &["encode", "run", "mnist-sample", "--out", "codes.txt"]),
        "neither .csv nor .npy",
    );
    std::fs::write(d.join("wrong.csv"), "1,2,3\n4,5,6\n").unwrap();
    assert_refused(
        &vae(d, &["decode", "run", "wrong.csv"]),
        "3 code columns; this run's codes have 4",
    );
    assert_refused(
        &vae(d, &["decode", "run", "codes.npy", "--label", "3"]),
        "--label needs a cvae",
    );
    assert_refused(
        &vae(d, &["score", "run", "mnist-sample", "--iw-samples", "0"]),
        "at least 1",
    );
    assert_refused(&vae(d, &["encode", "run", "nowhere.png"]), "nowhere.png");
}

#[test]
fn export_writes_a_pytorch_folder_and_refuses_what_it_cannot_express() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    train_small(dir, "run");
    let o = vae(dir, &["export", "run", "--pytorch", "torch"]);
    assert!(o.status.success(), "{}", stderr(&o));
    for file in ["model.py", "model.safetensors", "train.py"] {
        assert!(stdout(&o).contains(file), "{}", stdout(&o));
        assert!(dir.join("torch").join(file).is_file(), "{file}");
    }
    let model_py = std::fs::read_to_string(dir.join("torch/model.py")).unwrap();
    assert!(model_py.contains("\"hidden\": [64]"), "{model_py}");
    let o = vae(dir, &["export", "run", "--onnx", "onnx"]);
    assert!(o.status.success(), "{}", stderr(&o));
    for file in ["encoder.onnx", "decoder.onnx"] {
        assert!(dir.join("onnx").join(file).is_file(), "{file}");
    }
    // Nothing to export to: refused.
    assert!(!vae(dir, &["export", "run"]).status.success());

    // A learned prior: refused in a line, and nothing written under the names.
    let o = vae(
        dir,
        &[&["train", "--epochs", "1", "--out", "vamp", "--prior", "vamp"], SMALL].concat(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let o = vae(dir, &["export", "vamp", "--pytorch", "vamp-torch"]);
    assert_refused(&o, "learned prior (vamp)");
    assert!(!dir.join("vamp-torch/model.py").exists());
    // Its encoder and decoder are plain networks: ONNX takes them.
    let o = vae(dir, &["export", "vamp", "--onnx", "vamp-onnx"]);
    assert!(o.status.success(), "{}", stderr(&o));

    // The page runs dense models only: a conv run is refused, naming it, and no page left.
    let o = vae(
        dir,
        &[
            "train",
            "--epochs",
            "1",
            "--arch",
            "conv",
            "--channels",
            "2,4",
            "--hidden",
            "8",
            "--latent",
            "2",
            "--out",
            "conv",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let o = vae(dir, &["export", "run", "conv", "--html", "page.html"]);
    assert_refused(&o, "conv: the page without a server runs dense (mlp) models");
    assert!(!dir.join("page.html").exists());
    let o = vae(dir, &["export", "run", "conv", "--onnx", "two"]);
    assert_refused(&o, "one run at a time");

    // A broken run folder: named, in a line.
    std::fs::write(dir.join("run/model.safetensors"), b"not weights").unwrap();
    let o = vae(dir, &["export", "run", "--pytorch", "again"]);
    assert_refused(&o, "model.safetensors");
    assert!(!dir.join("again").exists());
}
