//! A corpus of broken run folders, generated here from a real one: every breakage gives a
//! one-line error that names the file, never a panic.

mod common;

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;

use safetensors::{Dtype, tensor::TensorView};
use vae::checkpoint::load_model;
use vae::model::ModelConfig;
use vae::run::{RunConfig, RunDir, TrainConfig};
use vae::train::Trainer;

/// A real, small, trained run folder.
fn trained_run() -> (tempfile::TempDir, RunDir) {
    let data = common::small_sample(300, 50);
    let dir = tempfile::tempdir().unwrap();
    let run = RunDir::new(dir.path());
    let config = RunConfig {
        model: ModelConfig {
            hidden: vec![16],
            latent: 3,
            ..ModelConfig::mlp_vae()
        },
        train: TrainConfig {
            dataset: "mnist-sample".into(),
            epochs: 1,
            batch_size: 100,
            seed: 0,
            threads: 1,
            ..TrainConfig::default()
        },
    };
    let mut trainer = Trainer::new(run.clone(), config).unwrap();
    trainer.train(&data, &AtomicBool::new(false), &mut |_| {}).unwrap();
    (dir, run)
}

/// The weights of `path` with `name`'s tensor replaced by `dtype`, `shape` and `bytes`.
fn rewrite_tensor(path: &std::path::Path, name: &str, dtype: Dtype, shape: Vec<usize>, bytes: Vec<u8>) {
    let original = std::fs::read(path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&original).unwrap();
    let mut owned: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = st
        .tensors()
        .into_iter()
        .map(|(n, v)| (n, v.dtype(), v.shape().to_vec(), v.data().to_vec()))
        .collect();
    for t in &mut owned {
        if t.0 == name {
            (t.1, t.2, t.3) = (dtype, shape.clone(), bytes.clone());
        }
    }
    let views: Vec<(String, TensorView)> = owned
        .iter()
        .map(|(n, d, s, b)| (n.clone(), TensorView::new(*d, s.clone(), b).unwrap()))
        .collect();
    std::fs::write(
        path,
        safetensors::serialize(views, None::<HashMap<String, String>>).unwrap(),
    )
    .unwrap();
}

fn assert_one_line_naming(error: vae::Error, file: &str, needle: &str) {
    let message = error.to_string();
    assert!(message.contains(file), "{message}");
    assert!(message.contains(needle), "expected '{needle}' in: {message}");
    assert!(!message.contains('\n'), "{message}");
}

#[test]
fn weights_of_the_wrong_dtype_shape_or_value_are_refused() {
    let (_dir, run) = trained_run();
    let weights = run.model();
    let pristine = std::fs::read(&weights).unwrap();

    // f64 where f32 belongs: 16 x 784 values of 8 bytes.
    rewrite_tensor(
        &weights,
        "encoder.fc1.weight",
        Dtype::F64,
        vec![16, 784],
        vec![0; 16 * 784 * 8],
    );
    assert_one_line_naming(
        load_model(&run).unwrap_err(),
        "model.safetensors",
        "encoder.fc1.weight is F64, expected F32",
    );

    std::fs::write(&weights, &pristine).unwrap();
    rewrite_tensor(&weights, "decoder.fc_out.bias", Dtype::F32, vec![783], vec![0; 783 * 4]);
    assert_one_line_naming(
        load_model(&run).unwrap_err(),
        "model.safetensors",
        "has shape [783], the config implies [784]",
    );

    std::fs::write(&weights, &pristine).unwrap();
    let mut nan = vec![0u8; 3 * 4];
    nan[4..8].copy_from_slice(&f32::NAN.to_le_bytes());
    rewrite_tensor(&weights, "encoder.fc_mu.bias", Dtype::F32, vec![3], nan);
    assert_one_line_naming(
        load_model(&run).unwrap_err(),
        "model.safetensors",
        "encoder.fc_mu.bias holds a non-finite value",
    );

    // Truncated in the middle of the data.
    std::fs::write(&weights, &pristine[..pristine.len() / 2]).unwrap();
    assert_one_line_naming(
        load_model(&run).unwrap_err(),
        "model.safetensors",
        "not a valid safetensors file",
    );
    // A header that claims to be huge.
    let mut huge = u64::MAX.to_le_bytes().to_vec();
    huge.extend_from_slice(b"{}");
    std::fs::write(&weights, huge).unwrap();
    assert_one_line_naming(
        load_model(&run).unwrap_err(),
        "model.safetensors",
        "not a valid safetensors file",
    );
}

#[test]
fn directories_and_missing_files_where_files_belong_are_refused() {
    let (_dir, run) = trained_run();
    std::fs::remove_file(run.model()).unwrap();
    std::fs::create_dir(run.model()).unwrap();
    assert_one_line_naming(load_model(&run).unwrap_err(), "model.safetensors", "is a directory");

    std::fs::remove_dir(run.model()).unwrap();
    assert_one_line_naming(load_model(&run).unwrap_err(), "model.safetensors", "No such file");

    std::fs::remove_file(run.config()).unwrap();
    std::fs::create_dir(run.config()).unwrap();
    assert_one_line_naming(load_model(&run).unwrap_err(), "config.json", "directory");

    std::fs::remove_dir(run.config()).unwrap();
    std::fs::write(run.config(), "").unwrap();
    assert_one_line_naming(load_model(&run).unwrap_err(), "config.json", "invalid config");
}

#[test]
fn a_checkpoint_that_is_not_one_is_refused_on_resume() {
    let (_dir, run) = trained_run();
    std::fs::copy(run.model(), run.checkpoint()).unwrap();
    let error = Trainer::resume(run.clone(), Some(2)).err().unwrap();
    assert_one_line_naming(
        error,
        "checkpoint.safetensors",
        "optimizer.m.encoder.fc1.weight is missing",
    );
    std::fs::write(run.checkpoint(), b"\x08\x00\x00\x00\x00\x00\x00\x00{\"a\":1}").unwrap();
    let error = Trainer::resume(run.clone(), Some(2)).err().unwrap();
    assert_one_line_naming(error, "checkpoint.safetensors", "not a valid safetensors file");
}
