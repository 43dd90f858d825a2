//! Run folders written by an earlier build (commit e16519d: before the model's parts were
//! types, the layers a stack, and `kind` had its name; `tests/fixtures/e16519d/`: an MLP VAE
//! and a conv CVAE, one epoch each on the built-in sample): they still load and resume to
//! what that build's own resume gave (`epoch-2/`).
//!
//! To what precision: on the machine that recorded the fixtures, to the bit. On another
//! processor the matrix products may add in another order (the `gemm` crate sizes its blocks
//! by the caches it finds), which moves the last bits of a loss (seen: up to 6e-8 relative,
//! an Intel Xeon against the AMD EPYC that recorded them); so the losses must agree within
//! 1e-6 relative and every weight within 1e-5, far below what any change to the training
//! would move.

mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use vae::model::ModelKind;
use vae::run::RunDir;
use vae::train::Trainer;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/e16519d")
        .join(name)
}

fn metrics(path: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// Copies the fixture `name` into a fresh folder, checks it loads as `kind`, resumes it to
/// epoch 2 and compares with the earlier build's epoch 2.
fn resumes_as_before(name: &str, kind: ModelKind) {
    let fixture = fixture(name);
    let dir = tempfile::tempdir().unwrap();
    let run = RunDir::new(dir.path().join("run"));
    std::fs::create_dir(&run.root).unwrap();
    for file in [
        "config.json",
        "checkpoint.safetensors",
        "model.safetensors",
        "metrics.jsonl",
    ] {
        std::fs::copy(fixture.join(file), run.root.join(file)).unwrap();
    }
    assert_eq!(run.read_config().unwrap().model.kind, kind);
    run.load_model().unwrap();

    let mut trainer = Trainer::resume(run.clone(), Some(2)).unwrap();
    trainer
        .train(&common::sample(), &AtomicBool::new(false), &mut |_| {})
        .unwrap();

    let (ours, theirs) = (metrics(&run.metrics()), metrics(&fixture.join("epoch-2/metrics.jsonl")));
    assert_eq!(ours.len(), 2);
    for field in ["train_loss", "test_loss", "test_recon", "test_kl"] {
        let (a, b) = (ours[1][field].as_f64().unwrap(), theirs[1][field].as_f64().unwrap());
        assert!(
            (a - b).abs() <= 1e-6 * b.abs().max(1.0),
            "{name}: {field} of epoch 2: {a} vs {b}"
        );
    }
    let weights = std::fs::read(run.model()).unwrap();
    let before = std::fs::read(fixture.join("epoch-2/model.safetensors")).unwrap();
    let (ours, theirs) = (
        safetensors::SafeTensors::deserialize(&weights).unwrap(),
        safetensors::SafeTensors::deserialize(&before).unwrap(),
    );
    let mut names = ours.names();
    names.sort();
    let mut their_names = theirs.names();
    their_names.sort();
    assert_eq!(names, their_names, "{name}: the same tensors");
    for tensor in names {
        let values = |st: &safetensors::SafeTensors| -> Vec<f32> {
            st.tensor(tensor)
                .unwrap()
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
                .collect()
        };
        let (a, b) = (values(&ours), values(&theirs));
        assert_eq!(
            ours.tensor(tensor).unwrap().shape(),
            theirs.tensor(tensor).unwrap().shape()
        );
        let worst = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
        assert!(worst <= 1e-5, "{name}: {tensor} of epoch 2 differs by up to {worst}");
    }
}

#[test]
fn an_mlp_vae_from_an_earlier_build_resumes_to_what_that_build_gave() {
    resumes_as_before("mlp-vae", ModelKind::Vae);
}

#[test]
fn a_conv_cvae_from_an_earlier_build_resumes_to_what_that_build_gave() {
    resumes_as_before("conv-cvae", ModelKind::Cvae);
}
