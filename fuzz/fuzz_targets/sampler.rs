//! Loading `sampler-gmm.safetensors` beside a real run: arbitrary bytes (first byte 0), or a
//! valid file for that run with bytes overwritten at chosen offsets (the rest: pairs of a
//! little-endian u16 offset and a byte), so that mutations reach the checks past the header
//! and the fingerprint. An error or a sampler, never a panic; a sampler that loads draws
//! finite codes.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use vae::checkpoint::save_model;
use vae::data::{DataDirs, DatasetName, DatasetSpec, catalog};
use vae::model::{Model, ModelConfig, ModelKind};
use vae::run::{RunConfig, RunDir, TrainConfig};
use vae::sampler::{FittedGmm, GmmOptions, Sampler, SamplerKind};

struct Fixture {
    _dir: tempfile::TempDir,
    run: RunDir,
    model: Model,
    valid: Vec<u8>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::new(dir.path());
        // A CVAE: one mixture per class, the most the reader checks.
        let config = ModelConfig {
            kind: ModelKind::Cvae,
            hidden: vec![8],
            latent: 3,
            classes: 10,
            ..ModelConfig::mlp_vae()
        };
        let model = Model::new(config.clone(), &mut vae::rng::seeded(0)).unwrap();
        run.write_config(&RunConfig {
            model: config,
            train: TrainConfig::default(),
        })
        .unwrap();
        save_model(&run.model(), &model).unwrap();
        let data = catalog::load(&DatasetSpec::Named(DatasetName::MnistSample), &DataDirs::from_env()).unwrap();
        let options = GmmOptions {
            components: 2,
            ..GmmOptions::default()
        };
        let fitted = FittedGmm::fit(&model, &data.train.take(300), "mnist-sample", &options, 0).unwrap();
        fitted.save(&run, &model).unwrap();
        let valid = std::fs::read(run.root.join("sampler-gmm.safetensors")).unwrap();
        Fixture {
            _dir: dir,
            run,
            model,
            valid,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let bytes = match data.split_first() {
        Some((0, raw)) => raw.to_vec(),
        Some((_, edits)) => {
            let mut bytes = f.valid.clone();
            for edit in edits.chunks_exact(3) {
                let at = u16::from_le_bytes([edit[0], edit[1]]) as usize % bytes.len();
                bytes[at] = edit[2];
            }
            bytes
        }
        None => return,
    };
    std::fs::write(f.run.root.join("sampler-gmm.safetensors"), &bytes).unwrap();
    if let Ok(sampler) = Sampler::load(&f.run, SamplerKind::Gmm, &f.model) {
        let labels: Vec<u8> = (0..10).collect();
        let codes = sampler
            .draw(10, Some(&labels), 1.0, &mut vae::rng::seeded(1))
            .unwrap();
        assert!(codes.data.iter().all(|v| v.is_finite()), "a loaded sampler drew {codes:?}");
    }
});
