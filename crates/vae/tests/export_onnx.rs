//! `vae export --onnx`: an independent runtime (onnxruntime) runs the exported encoder and
//! decoder on real test images and gives our outputs.
//!
//! Runs where a Python with onnxruntime and numpy is found (`VAE_ONNX_PYTHON`, else
//! `python3`); elsewhere it says it skipped, or fails where `VAE_REQUIRE_ONNX=1` (CI).

mod common;

use std::path::Path;

use vae::engine::Matrix;
use vae::model::Model;

fn write_npy(path: &Path, shape: &[usize], values: &[f32]) {
    let mut bytes = Vec::new();
    vae::data::npy::write_f32(&mut bytes, shape, values).unwrap();
    std::fs::write(path, bytes).unwrap();
}

/// Our inputs and outputs beside the export, an NPY file each.
fn write_reference(dir: &Path, model: &Model, x: &Matrix, labels: &[u8]) {
    for (name, shape, values) in common::reference_arrays(model, x, labels) {
        write_npy(&dir.join(format!("{name}.npy")), &shape, &values);
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
    ours = load("values.npy")
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
    let Some(python) = common::python_with("onnxruntime, numpy", "VAE_ONNX_PYTHON", "VAE_REQUIRE_ONNX") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let export = |model: &Model, dir: &Path| {
        assert_eq!(vae::export::onnx::export(model, dir).unwrap().len(), 2);
    };
    let dirs = common::export_with_references(tmp.path(), true, export, write_reference);
    common::assert_python_agrees(&python, COMPARE, &dirs, 1e-5);
}
