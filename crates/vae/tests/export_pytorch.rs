//! `vae export --pytorch`: the exported module, loaded by PyTorch itself, computes our
//! encoder's and decoder's outputs on real test images; `train.py` continues training it.
//!
//! Runs where a Python with torch, safetensors and numpy is found (`VAE_TORCH_PYTHON`, else
//! `python3`); elsewhere it says it skipped, or fails where `VAE_REQUIRE_TORCH=1`.

mod common;

use std::path::Path;
use std::process::Command;

use vae::checkpoint::save_tensors;
use vae::engine::{Matrix, Recon};
use vae::model::{Arch, Model, ModelConfig, ModelKind, Scaler};
use vae::rng::{Stream, stream_rng};

/// Writes `reference.safetensors` beside the export: our inputs and outputs.
fn write_reference(dir: &Path, model: &Model, x: &Matrix, labels: &[u8]) {
    let arrays = common::reference_arrays(model, x, labels);
    save_tensors(&dir.join("reference.safetensors"), &arrays).unwrap();
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
    let Some(python) = common::python_with("torch, safetensors, numpy", "VAE_TORCH_PYTHON", "VAE_REQUIRE_TORCH") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let export = |model: &Model, dir: &Path| {
        assert_eq!(vae::export::pytorch::export(model, dir).unwrap().len(), 3);
    };
    let dirs = common::export_with_references(tmp.path(), false, export, write_reference);
    common::assert_python_agrees(&python, COMPARE, &dirs, 1e-5);
}

#[test]
fn train_py_continues_training_the_exported_model() {
    let Some(python) = common::python_with("torch, safetensors, numpy", "VAE_TORCH_PYTHON", "VAE_REQUIRE_TORCH") else {
        return;
    };
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
    let losses = train_py(
        &python,
        &dir,
        tmp.path(),
        &[
            "--data",
            "images.npy",
            "--labels",
            "labels.npy",
            "--epochs",
            "3",
            "--batch-size",
            "64",
            "--out",
            "trained.safetensors",
        ],
    );
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
    let losses = train_py(
        &python,
        &dir,
        tmp.path(),
        &[
            "--data",
            "vectors.npy",
            "--epochs",
            "5",
            "--batch-size",
            "16",
            "--lr",
            "0.01",
            "--out",
            "gaussian.safetensors",
        ],
    );
    assert!(
        losses[4] < losses[0] - 0.5,
        "training did not lower the Gaussian loss: {losses:?}"
    );
}

/// Runs `export`'s train.py on the CPU in `cwd` with `args`; returns its losses, an epoch each.
fn train_py(python: &Path, export: &Path, cwd: &Path, args: &[&str]) -> Vec<f64> {
    let out = Command::new(python)
        .arg(export.join("train.py"))
        .args(args)
        .args(["--device", "cpu"])
        .current_dir(cwd)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    let losses: Vec<f64> = stdout
        .lines()
        .filter_map(|l| l.split("train loss ").nth(1)?.split_whitespace().next()?.parse().ok())
        .collect();
    let epochs: usize = args[args.iter().position(|&a| a == "--epochs").unwrap() + 1]
        .parse()
        .unwrap();
    assert_eq!(losses.len(), epochs, "{stdout}");
    eprintln!("train.py {}: losses {losses:?}", args.join(" "));
    losses
}
