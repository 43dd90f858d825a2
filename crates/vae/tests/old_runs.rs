//! Run folders written by an earlier build (commit e16519d: before the model's parts were
//! types, the layers a stack, and `kind` had its name; `tests/fixtures/e16519d/`: an MLP VAE
//! and a conv CVAE, one epoch each on the built-in sample): they still load and resume, to
//! the very bits that build's own resume gave (`epoch-2/`).

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
        assert_eq!(ours[1][field], theirs[1][field], "{name}: {field} of epoch 2");
    }
    let weights = std::fs::read(run.model()).unwrap();
    let before = std::fs::read(fixture.join("epoch-2/model.safetensors")).unwrap();
    assert!(weights == before, "{name}: epoch 2's weights differ");
}

#[test]
fn an_mlp_vae_from_an_earlier_build_resumes_to_the_bits_that_build_gave() {
    resumes_as_before("mlp-vae", ModelKind::Vae);
}

#[test]
fn a_conv_cvae_from_an_earlier_build_resumes_to_the_bits_that_build_gave() {
    resumes_as_before("conv-cvae", ModelKind::Cvae);
}
