//! Loading a run folder whose `config.json` and `model.safetensors` are arbitrary bytes (the
//! first two bytes say where the config ends): an error or a model, never a panic.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use vae::run::RunDir;

static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let split = (u16::from_le_bytes([data[0], data[1]]) as usize).min(data.len() - 2);
    let (config, weights) = data[2..].split_at(split);
    let dir = DIR.get_or_init(|| tempfile::tempdir().unwrap());
    let run = RunDir::new(dir.path());
    std::fs::write(run.config(), config).unwrap();
    std::fs::write(run.model(), weights).unwrap();
    if let Ok(model) = run.load_model() {
        // A model that loads must also decode.
        let z = vae::engine::Matrix::zeros(1, model.config.latent);
        let condition = model.label_condition(1, None).unwrap();
        let _ = model.decode(&z, condition.as_ref());
    }
});
