//! The thread count changes nothing but speed: a run on one thread and on three agree to the
//! bit. Each runs in a rayon pool of its own size, so the element-wise work, im2col and the
//! conv weight gradients really run on one thread in one case and three in the other (the
//! global pool, once built, cannot shrink). Alone in its own test binary, since the engine's
//! thread count is process-wide.

mod common;

use std::sync::atomic::AtomicBool;

use vae::checkpoint::param_values;
use vae::model::{ModelConfig, PriorKind};
use vae::run::{RunConfig, RunDir, TrainConfig};
use vae::train::Trainer;

#[test]
fn one_thread_and_three_threads_give_identical_runs() {
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
    // The VampPrior adds a second encoder pass and the mixture's products over the batch.
    let vamp = ModelConfig {
        prior: PriorKind::Vamp,
        prior_components: 16,
        ..mlp.clone()
    };
    for model in [mlp, conv, vamp] {
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
    for threads in [3, 1] {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        let result = pool.install(|| {
            vae::engine::set_threads(threads);
            assert_eq!(vae::engine::threads(), threads);
            assert_eq!(rayon::current_num_threads(), threads);
            let dir = tempfile::tempdir().unwrap();
            let mut trainer = Trainer::new(RunDir::new(dir.path()), config.clone()).unwrap();
            trainer.train(data, &AtomicBool::new(false), &mut |_| {}).unwrap();
            (param_values(&trainer.model), trainer.state.history[0].test_loss)
        });
        results.push(result);
    }
    assert_eq!(results[0], results[1]);
}
