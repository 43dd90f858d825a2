//! A run folder written by an earlier build (commit e16519d: before the model's parts were
//! types, the layers a stack, and `kind` had its name; `tests/fixtures/run-e16519d`, an MLP
//! VAE of one epoch on the built-in sample): it still loads and resumes, to the very bits
//! that build's own resume gave (`epoch-2/`).

mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use vae::model::ModelKind;
use vae::run::RunDir;
use vae::train::Trainer;

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/run-e16519d")
}

fn metrics(path: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn a_run_from_an_earlier_build_resumes_to_the_bits_that_build_gave() {
    let dir = tempfile::tempdir().unwrap();
    let run = RunDir::new(dir.path().join("run"));
    std::fs::create_dir(&run.root).unwrap();
    for file in [
        "config.json",
        "checkpoint.safetensors",
        "model.safetensors",
        "metrics.jsonl",
    ] {
        std::fs::copy(fixture().join(file), run.root.join(file)).unwrap();
    }
    let config = run.read_config().unwrap();
    assert_eq!(
        (config.model.kind, config.model.hidden.as_slice()),
        (ModelKind::Vae, &[8][..])
    );
    run.load_model().unwrap();

    let mut trainer = Trainer::resume(run.clone(), Some(2)).unwrap();
    trainer
        .train(&common::sample(), &AtomicBool::new(false), &mut |_| {})
        .unwrap();

    let (ours, theirs) = (
        metrics(&run.metrics()),
        metrics(&fixture().join("epoch-2/metrics.jsonl")),
    );
    assert_eq!(ours.len(), 2);
    for field in ["train_loss", "test_loss", "test_recon", "test_kl"] {
        assert_eq!(ours[1][field], theirs[1][field], "{field} of epoch 2");
    }
    let weights = std::fs::read(run.model()).unwrap();
    assert!(
        weights == std::fs::read(fixture().join("epoch-2/model.safetensors")).unwrap(),
        "epoch 2's weights differ"
    );
}
