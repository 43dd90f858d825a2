//! The thread count changes nothing but speed: a run on one thread and on two agree to the
//! bit. (Alone in its own test binary, since the thread count is process-wide.)

mod common;

use std::sync::atomic::AtomicBool;

use vae::checkpoint::param_values;
use vae::model::ModelConfig;
use vae::run::{RunConfig, RunDir, TrainConfig};
use vae::train::Trainer;

#[test]
fn one_thread_and_two_threads_give_identical_runs() {
    let data = common::small_sample(600, 100);
    let mlp = ModelConfig {
        hidden: vec![96],
        latent: 4,
        ..ModelConfig::mlp_vae()
    };
    // The conv body's weight gradients sum partial products over chunks of rows.
    let conv = ModelConfig {
        channels: vec![4, 8],
        hidden: vec![32],
        latent: 4,
        ..ModelConfig::conv_vae()
    };
    for model in [mlp, conv] {
        check(&data, model);
    }
}

fn check(data: &vae::data::Dataset, model: ModelConfig) {
    let config = RunConfig {
        model,
        train: TrainConfig {
            dataset: "mnist-sample".into(),
            epochs: 1,
            batch_size: 100,
            seed: 9,
            threads: 2,
            ..TrainConfig::default()
        },
    };
    let mut results = Vec::new();
    for threads in [2, 1] {
        vae::engine::set_threads(threads);
        let dir = tempfile::tempdir().unwrap();
        let mut trainer = Trainer::new(RunDir::new(dir.path()), config.clone()).unwrap();
        trainer.train(data, &AtomicBool::new(false), &mut |_| {}).unwrap();
        results.push((param_values(&trainer.model), trainer.state.history[0].test_loss));
    }
    assert_eq!(results[0], results[1]);
}
