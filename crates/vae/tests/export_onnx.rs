//! `vae export --onnx`: an independent runtime (onnxruntime) runs the exported encoder and
//! decoder on real test images and gives our outputs.
//!
//! Runs where a Python with onnxruntime and numpy is found (`VAE_ONNX_PYTHON`, else
//! `python3`); elsewhere it says it skipped, or fails where `VAE_REQUIRE_ONNX=1` (CI).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use vae::engine::{Matrix, Recon};
use vae::model::{Arch, Model, ModelConfig, ModelKind, PriorKind, Scaler, Workspace};
use vae::rng::{Stream, stream_rng};

fn onnx_python() -> Option<PathBuf> {
    let python = std::env::var_os("VAE_ONNX_PYTHON").map_or_else(|| PathBuf::from("python3"), PathBuf::from);
    let found = Command::new(&python)
        .args(["-c", "import onnxruntime, numpy"])
        .output()
        .is_ok_and(|o| o.status.success());
    if found {
        return Some(python);
    }
    let why = format!("{}: no onnxruntime and numpy to import", python.display());
    if std::env::var("VAE_REQUIRE_ONNX").is_ok_and(|v| v == "1") {
        panic!("{why}, and VAE_REQUIRE_ONNX=1 forbids skipping");
    }
    eprintln!("skipped: {why} (set VAE_ONNX_PYTHON to a Python that has them)");
    None
}

/// Every kind, body and likelihood the exporter writes: grey models on the sample's digits,
/// colour ones and a Gaussian model of vectors on random values.
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
        ("conv-ae-rgb", colour(conv(ModelKind::Ae))),
        ("mlp-vae-rgb", colour(mlp(ModelKind::Vae))),
        (
            "mlp-vae-vamp",
            ModelConfig {
                prior: PriorKind::Vamp,
                prior_components: 5,
                ..mlp(ModelKind::Vae)
            },
        ),
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

fn write_npy(path: &Path, shape: &[usize], values: &[f32]) {
    let mut bytes = Vec::new();
    vae::data::npy::write_f32(&mut bytes, shape, values).unwrap();
    std::fs::write(path, bytes).unwrap();
}

/// Our inputs and outputs beside the export, as NPY, channels-last as we hold them.
fn write_reference(dir: &Path, model: &Model, x: &Matrix, labels: &[u8]) {
    let condition = model.condition(labels).unwrap();
    let mut ws = Workspace::default();
    model.encode(x, condition.as_ref(), &mut ws);
    let code = model.encoder.head.code(&ws).clone();
    let (mut acts, mut logits, mut pixels) = Default::default();
    model.decode_logits(&code, condition.as_ref(), &mut acts, &mut logits);
    model.outputs_into(&logits, &mut pixels);
    let shape = model.config.image_shape();
    let n = x.rows;
    let item = if shape.is_vector() {
        vec![n, shape.width]
    } else {
        vec![n, shape.height, shape.width, shape.channels]
    };
    write_npy(&dir.join("x.npy"), &item, &x.data);
    write_npy(&dir.join("code.npy"), &[n, code.cols], &code.data);
    write_npy(&dir.join("pixels.npy"), &item, &pixels.data);
    if model.encoder.head.has_posterior() {
        write_npy(&dir.join("logvar.npy"), &[n, ws.logvar.cols], &ws.logvar.data);
    }
    if let Some(c) = &condition {
        write_npy(&dir.join("label.npy"), &[n, c.cols], &c.data);
    }
}

const COMPARE: &str = r#"
import json, os, sys
import numpy as np
import onnxruntime as ort
worst = {}
for d in sys.argv[1:]:
    load = lambda name: np.load(os.path.join(d, name))
    x = load("x.npy")
    if x.ndim == 4:
        x = x.transpose(0, 3, 1, 2)
    label = load("label.npy") if os.path.exists(os.path.join(d, "label.npy")) else None
    encoder = ort.InferenceSession(os.path.join(d, "encoder.onnx"))
    decoder = ort.InferenceSession(os.path.join(d, "decoder.onnx"))
    feed = {encoder.get_inputs()[0].name: x}
    if label is not None:
        feed["label"] = label
    names = [o.name for o in encoder.get_outputs()]
    encoded = dict(zip(names, encoder.run(None, feed)))
    code = encoded.get("mu", encoded.get("code"))
    feed = {"code": load("code.npy")}
    if label is not None:
        feed["label"] = label
    pixels = decoder.run(None, feed)[0]
    ours = load("pixels.npy")
    if ours.ndim == 4:
        ours = ours.transpose(0, 3, 1, 2)
    diff = {
        "code": float(np.abs(code - load("code.npy")).max()),
        "pixels": float((np.abs(pixels - ours) / np.maximum(np.abs(ours), 1)).max()),
        "batch_of_one": float(np.abs(decoder.run(None, {k: v[:1] for k, v in feed.items()})[0] - pixels[:1]).max()),
    }
    if "logvar" in encoded:
        diff["logvar"] = float(np.abs(encoded["logvar"] - load("logvar.npy")).max())
    worst[os.path.basename(d)] = diff
print(json.dumps(worst))
"#;

#[test]
fn onnxruntime_computes_our_outputs_from_the_exported_graphs() {
    let Some(python) = onnx_python() else { return };
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
        let files = vae::export::onnx::export(&model, &dir).unwrap();
        assert_eq!(files.len(), 2);
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
    let compared = worst.as_object().unwrap();
    assert_eq!(compared.len(), dirs.len());
    for (model, diffs) in compared {
        for (what, diff) in diffs.as_object().unwrap() {
            let diff = diff.as_f64().unwrap();
            assert!(diff <= 1e-5, "{model}: {what} differs by {diff}");
        }
    }
}
