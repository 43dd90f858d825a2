//! Resuming from a `checkpoint.safetensors` of arbitrary bytes beside a valid config: an
//! error or a state, never a panic.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use vae::model::{Model, ModelConfig};

static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let dir = DIR.get_or_init(|| tempfile::tempdir().unwrap());
    let path = dir.path().join("checkpoint.safetensors");
    std::fs::write(&path, data).unwrap();
    let config = ModelConfig { hidden: vec![8], latent: 2, ..ModelConfig::mlp_vae() };
    let mut model = Model::new(config, &mut vae::rng::seeded(0)).unwrap();
    let loaded = vae::checkpoint::load_checkpoint(&path, &mut model, vae::engine::AdamConfig::default());
    if let Ok((_, state)) = loaded {
        let state: vae::train::TrainState = state;
        // A state that loads is checked as a resume checks it: an error or fine, never a panic.
        let _ = state.check(&path);
        let _ = state.check_against(&path, 300, 100);
    }
});
