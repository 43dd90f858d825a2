//! Helpers shared by the integration tests: the real data beside the checkout, a small slice
//! of the built-in sample, and a file server on 127.0.0.1.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread;

use std::sync::atomic::AtomicBool;

use vae::data::{DataDirs, Dataset, DatasetName, DatasetSpec, catalog};
use vae::run::{RunConfig, RunDir};
use vae::train::{Outcome, Trainer};

/// Says a test skipped because `why`, or fails it where `VAE_REQUIRE_DATA=1` (CI, which
/// has every data set) forbids skipping.
pub fn skip_without_data(why: &str) {
    if std::env::var("VAE_REQUIRE_DATA").is_ok_and(|v| v == "1") {
        panic!("{why}, and VAE_REQUIRE_DATA=1 forbids skipping");
    }
    eprintln!("skipped: {why}");
}

/// `../shared/data/mnist` beside the checkout: canonical MNIST files, for the tests that
/// compare against them. `None` (and the test says it skipped) where it is absent.
pub fn shared_mnist() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/mnist");
    if dir.is_dir() {
        Some(dir)
    } else {
        skip_without_data(&format!("{} is absent", dir.display()));
        None
    }
}

/// The built-in sample.
pub fn sample() -> Dataset {
    catalog::load(&DatasetSpec::Named(DatasetName::MnistSample), &DataDirs::from_env()).unwrap()
}

/// The first `train` and `test` images of the built-in sample: real digits, small enough
/// for a test to train on in a second.
pub fn small_sample(train: usize, test: usize) -> Dataset {
    let data = sample();
    Dataset::labelled("mnist-sample".into(), data.train.take(train), data.test.take(test))
}

/// A new run trained to the end of its epochs on `data`.
pub fn train(run: &RunDir, config: RunConfig, data: &Dataset) -> Trainer {
    let mut trainer = Trainer::new(run.clone(), config).unwrap();
    let outcome = trainer.train(data, &AtomicBool::new(false), &mut |_| {}).unwrap();
    assert_eq!(outcome, Outcome::Finished);
    trainer
}

/// Serves `files` (name → bytes) over HTTP/1.1 on 127.0.0.1 until the test process ends;
/// unknown names get a 404. Returns the base URL.
pub fn serve(files: HashMap<String, Vec<u8>>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let files = Arc::new(files);
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let files = files.clone();
            thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut request = String::new();
                if reader.read_line(&mut request).is_err() {
                    return;
                }
                // Skip the headers.
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    line.clear();
                }
                let path = request.split_whitespace().nth(1).unwrap_or("/").trim_start_matches('/');
                let _ = match files.get(path) {
                    Some(body) => stream
                        .write_all(
                            format!(
                                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                                body.len()
                            )
                            .as_bytes(),
                        )
                        .and_then(|_| stream.write_all(body)),
                    None => {
                        stream.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    }
                };
            });
        }
    });
    url
}

/// A URL on 127.0.0.1 where nothing listens.
pub fn dead_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    drop(listener);
    url
}

/// A Python that imports `modules` (`env` names one, else `python3`); `None`, saying the test
/// skipped, where there is none, or a failure where `require=1` forbids skipping.
pub fn python_with(modules: &str, env: &str, require: &str) -> Option<PathBuf> {
    let python = std::env::var_os(env).map_or_else(|| PathBuf::from("python3"), PathBuf::from);
    let found = std::process::Command::new(&python)
        .args(["-c", &format!("import {modules}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if found {
        return Some(python);
    }
    let why = format!("{}: cannot import {modules}", python.display());
    if std::env::var(require).is_ok_and(|v| v == "1") {
        panic!("{why}, and {require}=1 forbids skipping");
    }
    eprintln!("skipped: {why} (set {env} to a Python that has them)");
    None
}

/// The models the exporters are checked on: every kind and body, grey, colour, a Gaussian
/// model of vectors, and (where the format takes it) one with a learned prior.
pub fn export_models(learned_prior: bool) -> Vec<(&'static str, vae::model::ModelConfig)> {
    use vae::engine::Recon;
    use vae::model::{Arch, ModelConfig, ModelKind, PriorKind};
    let classes = |kind| if kind == ModelKind::Cvae { 10 } else { 0 };
    let mlp = |kind| ModelConfig {
        kind,
        hidden: vec![48],
        latent: 3,
        classes: classes(kind),
        ..ModelConfig::for_body(Arch::Mlp, None, None)
    };
    let conv = |kind| ModelConfig {
        kind,
        latent: 3,
        classes: classes(kind),
        ..ModelConfig::for_body(Arch::Conv, Some(vec![4, 8]), Some(vec![24]))
    };
    let colour = |config: ModelConfig| ModelConfig {
        image_height: 12,
        image_width: 12,
        image_channels: 3,
        ..config
    };
    let mut models = vec![
        ("mlp-vae", mlp(ModelKind::Vae)),
        ("mlp-ae", mlp(ModelKind::Ae)),
        ("mlp-cvae", mlp(ModelKind::Cvae)),
        ("conv-vae", conv(ModelKind::Vae)),
        ("conv-cvae", conv(ModelKind::Cvae)),
        ("conv-ae-rgb", colour(conv(ModelKind::Ae))),
        ("mlp-vae-rgb", colour(mlp(ModelKind::Vae))),
        (
            "gaussian-vectors",
            ModelConfig {
                recon: Recon::Gaussian,
                image_height: 1,
                image_width: 7,
                ..mlp(ModelKind::Vae)
            },
        ),
    ];
    if learned_prior {
        let vamp = ModelConfig {
            prior: PriorKind::Vamp,
            prior_components: 5,
            ..mlp(ModelKind::Vae)
        };
        models.push(("mlp-vae-vamp", vamp));
    }
    models
}

/// 16 inputs for `model`: the sample's first test digits for grey 28x28 models, else random
/// values in [0, 1], or for a Gaussian model values in their own units, which it then reads
/// through a scaler that is not the identity (set here).
pub fn export_inputs(model: &mut vae::model::Model, data: &Dataset) -> vae::engine::Matrix {
    use vae::engine::{Matrix, Recon};
    use vae::rng::{Stream, stream_rng};
    let values = model.config.pixels();
    if model.config.image_channels == 1 && !model.config.image_shape().is_vector() {
        let mut x = Matrix::default();
        data.test.batch_into(&(0..16).collect::<Vec<_>>(), &mut x);
        return x;
    }
    let mut x = Matrix::standard_normal(16, values, &mut stream_rng(3, Stream::Init));
    if model.config.recon == Recon::Gaussian {
        x.data.iter_mut().for_each(|v| *v = 3.0 * *v + 10.0);
        model.scaler = Some(vae::model::Scaler {
            mean: (0..values).map(|i| 10.0 + i as f32 * 0.1).collect(),
            std: (0..values).map(|i| 3.0 + i as f32 * 0.5).collect(),
        });
    } else {
        x.data.iter_mut().for_each(|v| *v = 0.5 + 0.4 * v.tanh());
    }
    x
}

/// Runs `script` in `python` over the export folders `dirs`; it prints, as JSON, each
/// folder's largest differences from our outputs, all of which must be at most `tolerance`.
pub fn assert_python_agrees(python: &std::path::Path, script: &str, dirs: &[String], tolerance: f64) {
    let out = std::process::Command::new(python)
        .arg("-c")
        .arg(script)
        .args(dirs)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let worst: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    eprintln!("largest differences: {worst}");
    let compared = worst.as_object().unwrap();
    assert_eq!(compared.len(), dirs.len(), "{worst}");
    for (model, diffs) in compared {
        for (what, diff) in diffs.as_object().unwrap() {
            let diff = diff.as_f64().unwrap();
            assert!(diff <= tolerance, "{model}: {what} differs by {diff}");
        }
    }
}

/// Exports every model of [`export_models`] into its own folder of `root` with `export`, and
/// beside it, with `reference`, our outputs on [`export_inputs`] (labels: the sample's first
/// 16 test labels); returns the folders.
pub fn export_with_references(
    root: &std::path::Path,
    learned_prior: bool,
    export: impl Fn(&vae::model::Model, &std::path::Path),
    reference: impl Fn(&std::path::Path, &vae::model::Model, &vae::engine::Matrix, &[u8]),
) -> Vec<String> {
    use vae::rng::{Stream, stream_rng};
    let data = sample();
    let labels = data.test.labels_of(&(0..16).collect::<Vec<_>>());
    let mut dirs = Vec::new();
    for (name, config) in export_models(learned_prior) {
        let mut model = vae::model::Model::new(config, &mut stream_rng(7, Stream::Init)).unwrap();
        let x = export_inputs(&mut model, &data);
        let dir = root.join(name);
        export(&model, &dir);
        reference(&dir, &model, &x, &labels);
        dirs.push(dir.to_string_lossy().into_owned());
    }
    dirs
}

/// Our inputs and outputs for `x`, named as the comparisons read them, channels-last as we
/// hold them: `x`, `code` (the posterior mean, or an autoencoder's code), `values` (decoded
/// from the code: pixels in [0, 1] or a Gaussian's means), and where the model has them
/// `logvar` and `label` (one-hot).
pub fn reference_arrays(
    model: &vae::model::Model,
    x: &vae::engine::Matrix,
    labels: &[u8],
) -> Vec<(String, Vec<usize>, Vec<f32>)> {
    let condition = model.condition(labels).unwrap();
    let mut ws = vae::model::Workspace::default();
    model.encode(x, condition.as_ref(), &mut ws);
    let code = model.encoder.head.code(&ws).clone();
    let (mut acts, mut logits, mut values) = Default::default();
    model.decode_logits(&code, condition.as_ref(), &mut acts, &mut logits);
    model.outputs_into(&logits, &mut values);
    let shape = model.config.image_shape();
    let n = x.rows;
    let item = if shape.is_vector() {
        vec![n, shape.width]
    } else {
        vec![n, shape.height, shape.width, shape.channels]
    };
    let mut arrays = vec![
        ("x".to_string(), item.clone(), x.data.clone()),
        ("code".to_string(), vec![n, code.cols], code.data.clone()),
        ("values".to_string(), item, values.data),
    ];
    if model.encoder.head.has_posterior() {
        arrays.push(("logvar".to_string(), vec![n, ws.logvar.cols], ws.logvar.data.clone()));
    }
    if let Some(c) = condition {
        arrays.push(("label".to_string(), vec![n, c.cols], c.data));
    }
    arrays
}
