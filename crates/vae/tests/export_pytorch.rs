//! `vae export --pytorch`: the exported module, loaded by PyTorch itself, computes our
//! encoder's and decoder's outputs on real test images; `train.py` continues training it.
//!
//! Runs where a Python with torch, safetensors and numpy is found (`VAE_TORCH_PYTHON`, else
//! `python3`); elsewhere it says it skipped, or fails where `VAE_REQUIRE_TORCH=1`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use vae::checkpoint::save_tensors;
use vae::engine::{Matrix, Recon};
use vae::model::{Arch, Model, ModelConfig, ModelKind, Scaler, Workspace};
use vae::rng::{Stream, stream_rng};

fn torch_python() -> Option<PathBuf> {
    let python = std::env::var_os("VAE_TORCH_PYTHON").map_or_else(|| PathBuf::from("python3"), PathBuf::from);
    let found = Command::new(&python)
        .args(["-c", "import torch, safetensors, numpy"])
        .output()
        .is_ok_and(|o| o.status.success());
    if found {
        return Some(python);
    }
    let why = format!("{}: no torch, safetensors and numpy to import", python.display());
    if std::env::var("VAE_REQUIRE_TORCH").is_ok_and(|v| v == "1") {
        panic!("{why}, and VAE_REQUIRE_TORCH=1 forbids skipping");
    }
    eprintln!("skipped: {why} (set VAE_TORCH_PYTHON to a Python that has them)");
    None
}

/// The models compared: every kind and body, grey on the sample's digits and colour on
/// random images (a colour image is where the layouts of the two worlds differ most).
fn models() -> Vec<(&'static str, ModelConfig)> {
    let mlp = |kind| ModelConfig {
        kind,
        hidden: vec![48],
        latent: 3,
        classes: if kind == ModelKind::Cvae { 10 } else { 0 },
        ..ModelConfig::for_body(Arch::Mlp, None, None)
    };
    let conv = |kind| ModelConfig {
        kind,
        latent: 3,
        classes: if kind == ModelKind::Cvae { 10 } else { 0 },
        ..ModelConfig::for_body(Arch::Conv, Some(vec![4, 8]), Some(vec![24]))
    };
    let colour = |config: ModelConfig| ModelConfig {
        image_height: 12,
        image_width: 12,
        image_channels: 3,
        ..config
    };
    vec![
        ("mlp-vae", mlp(ModelKind::Vae)),
        ("mlp-ae", mlp(ModelKind::Ae)),
        ("mlp-cvae", mlp(ModelKind::Cvae)),
        ("conv-vae", conv(ModelKind::Vae)),
        ("conv-cvae", conv(ModelKind::Cvae)),
        ("mlp-vae-rgb", colour(mlp(ModelKind::Vae))),
        ("conv-ae-rgb", colour(conv(ModelKind::Ae))),
        (
            "gaussian-vectors",
            ModelConfig {
                recon: Recon::Gaussian,
                image_height: 1,
                image_width: 7,
                ..mlp(ModelKind::Vae)
            },
        ),
    ]
}

/// Writes `reference.safetensors` beside the export: the inputs, channels-last as we hold
/// them, and our outputs.
fn write_reference(dir: &Path, model: &Model, x: &Matrix, labels: &[u8]) {
    let condition = model.condition(labels).unwrap();
    let mut ws = Workspace::default();
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
    let mut tensors: Vec<(String, Vec<usize>, &[f32])> = vec![
        ("x".into(), item.clone(), &x.data),
        ("code".into(), vec![n, code.cols], &code.data),
        ("values".into(), item, &values.data),
    ];
    if model.encoder.head.has_posterior() {
        tensors.push(("logvar".into(), vec![n, ws.logvar.cols], &ws.logvar.data));
    }
    if let Some(c) = &condition {
        tensors.push(("label".into(), vec![n, c.cols], &c.data));
    }
    // Owned copies: the tensors above borrow from matrices local to this function.
    let owned: Vec<(String, Vec<usize>, Vec<f32>)> = tensors.into_iter().map(|(a, b, c)| (a, b, c.to_vec())).collect();
    let views: Vec<(String, Vec<usize>, &[f32])> = owned
        .iter()
        .map(|(a, b, c)| (a.clone(), b.clone(), c.as_slice()))
        .collect();
    save_tensors(&dir.join("reference.safetensors"), &views).unwrap();
}

const COMPARE: &str = r#"
import importlib.util, json, sys
import torch
from safetensors.torch import load_file
worst = {}
for d in sys.argv[1:]:
    spec = importlib.util.spec_from_file_location("model_" + d.replace("/", "_").replace("-", "_"), d + "/model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = module.Model()
    model.load_state_dict(load_file(d + "/model.safetensors"))
    ref = load_file(d + "/reference.safetensors")
    nchw = lambda t: t.permute(0, 3, 1, 2) if t.dim() == 4 else t
    x = nchw(ref["x"])
    label = ref.get("label")
    with torch.no_grad():
        encoded = model.encode(x, label)
        code = encoded[0] if isinstance(encoded, tuple) else encoded
        values = model.values(ref["code"], label)
    ours = nchw(ref["values"])
    diff = {
        "code": (code - ref["code"]).abs().max().item(),
        "values": ((values - ours).abs() / ours.abs().clamp(min=1)).max().item(),
    }
    if isinstance(encoded, tuple):
        diff["logvar"] = (encoded[1] - ref["logvar"]).abs().max().item()
    worst[d] = diff
print(json.dumps(worst))
"#;

#[test]
fn the_exported_module_computes_our_outputs_in_pytorch() {
    let Some(python) = torch_python() else { return };
    let data = common::sample();
    let picked: Vec<usize> = (0..16).collect();
    let labels = data.test.labels_of(&picked);
    let tmp = tempfile::tempdir().unwrap();
    let mut dirs = Vec::new();
    for (name, config) in models() {
        let mut model = Model::new(config, &mut stream_rng(7, Stream::Init)).unwrap();
        let values = model.config.pixels();
        let mut x = Matrix::default();
        if model.config.image_channels == 1 && !model.config.image_shape().is_vector() {
            data.test.batch_into(&picked, &mut x);
        } else {
            x = Matrix::standard_normal(16, values, &mut stream_rng(3, Stream::Init));
            if model.config.recon == Recon::Gaussian {
                // Values in their own units, read through a scaler that is not the identity.
                x.data.iter_mut().for_each(|v| *v = 3.0 * *v + 10.0);
                model.scaler = Some(Scaler {
                    mean: (0..values).map(|i| 10.0 + i as f32 * 0.1).collect(),
                    std: (0..values).map(|i| 3.0 + i as f32 * 0.5).collect(),
                });
            } else {
                x.data.iter_mut().for_each(|v| *v = 0.5 + 0.4 * v.tanh());
            }
        }
        let dir = tmp.path().join(name);
        let files = vae::export::pytorch::export(&model, &dir).unwrap();
        assert_eq!(files.len(), 3);
        write_reference(&dir, &model, &x, &labels);
        dirs.push(dir.to_string_lossy().into_owned());
    }
    let out = Command::new(&python)
        .arg("-c")
        .arg(COMPARE)
        .args(&dirs)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let worst: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    eprintln!("largest differences: {worst}");
    for dir in &dirs {
        for (what, diff) in worst[dir].as_object().unwrap() {
            let diff = diff.as_f64().unwrap();
            assert!(diff <= 1e-5, "{dir}: {what} differs by {diff}");
        }
    }
}

#[test]
fn train_py_continues_training_the_exported_model() {
    let Some(python) = torch_python() else { return };
    let data = common::sample();
    let config = ModelConfig {
        kind: ModelKind::Cvae,
        latent: 2,
        classes: 10,
        ..ModelConfig::for_body(Arch::Conv, Some(vec![4, 8]), Some(vec![16]))
    };
    let model = Model::new(config, &mut stream_rng(1, Stream::Init)).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("export");
    vae::export::pytorch::export(&model, &dir).unwrap();
    let picked: Vec<usize> = (0..256).collect();
    let mut x = Matrix::default();
    data.train.batch_into(&picked, &mut x);
    let bytes: Vec<u8> = x.data.iter().map(|v| (v * 255.0).round() as u8).collect();
    let mut images = Vec::new();
    vae::data::npy::write_u8(&mut images, &[256, 28, 28], &bytes).unwrap();
    std::fs::write(tmp.path().join("images.npy"), images).unwrap();
    let labels: Vec<u8> = data.train.labels_of(&picked);
    let mut npy = Vec::new();
    vae::data::npy::write_u8(&mut npy, &[256], &labels).unwrap();
    std::fs::write(tmp.path().join("labels.npy"), npy).unwrap();
    let trained = tmp.path().join("trained.safetensors");
    let out = Command::new(&python)
        .arg(dir.join("train.py"))
        .args([
            "--data",
            "images.npy",
            "--labels",
            "labels.npy",
            "--epochs",
            "3",
            "--batch-size",
            "64",
        ])
        .args(["--device", "cpu", "--out"])
        .arg(&trained)
        .current_dir(tmp.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}{}",
        stdout,
        String::from_utf8_lossy(&out.stderr)
    );
    let losses: Vec<f64> = stdout
        .lines()
        .filter_map(|l| l.split("train loss ").nth(1)?.split_whitespace().next()?.parse().ok())
        .collect();
    assert_eq!(losses.len(), 3, "{stdout}");
    assert!(losses[2] < losses[0], "training did not lower the loss: {losses:?}");
    assert!(trained.is_file());

    // A Gaussian model of vectors, read through its scaler.
    let config = ModelConfig {
        recon: Recon::Gaussian,
        image_height: 1,
        image_width: 5,
        hidden: vec![16],
        latent: 2,
        ..ModelConfig::for_body(Arch::Mlp, None, None)
    };
    let mut model = Model::new(config, &mut stream_rng(1, Stream::Init)).unwrap();
    // Vectors on a plane through 5-D space, with a little noise: a latent of 2 can learn them.
    let u = Matrix::standard_normal(512, 2, &mut stream_rng(2, Stream::Init));
    let noise = Matrix::standard_normal(512, 5, &mut stream_rng(3, Stream::Init));
    let mut x = Matrix::zeros(512, 5);
    for r in 0..512 {
        for j in 0..5 {
            let (a, b) = (u.row(r)[0], u.row(r)[1]);
            x.row_mut(r)[j] = j as f32 + 4.0 * (a * (j as f32 - 2.0) + b) / 3.0 + 0.1 * noise.row(r)[j];
        }
    }
    model.scaler = Some(Scaler {
        mean: (0..5).map(|i| i as f32).collect(),
        std: vec![4.0; 5],
    });
    let dir = tmp.path().join("gaussian");
    vae::export::pytorch::export(&model, &dir).unwrap();
    let mut npy = Vec::new();
    vae::data::npy::write_f32(&mut npy, &[512, 5], &x.data).unwrap();
    std::fs::write(tmp.path().join("vectors.npy"), npy).unwrap();
    let out = Command::new(&python)
        .arg(dir.join("train.py"))
        .args([
            "--data",
            "vectors.npy",
            "--epochs",
            "3",
            "--device",
            "cpu",
            "--out",
            "gaussian.safetensors",
        ])
        .current_dir(tmp.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}{}",
        stdout,
        String::from_utf8_lossy(&out.stderr)
    );
    let losses: Vec<f64> = stdout
        .lines()
        .filter_map(|l| l.split("train loss ").nth(1)?.split_whitespace().next()?.parse().ok())
        .collect();
    assert_eq!(losses.len(), 3, "{stdout}");
    assert!(
        losses[2] < losses[0],
        "training did not lower the Gaussian loss: {losses:?}"
    );
}
