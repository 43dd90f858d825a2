//! What a fitted sampler costs: fitting a 50-component Gaussian mixture to 60,000 codes of
//! latent 16 (the size of MNIST's training set), and drawing and decoding samples from it,
//! and from a two-stage VAE's second stage (16-64-64-16, the default), against from the
//! prior N(0, I), alternated in one run.
//!
//! `cargo bench -p vae --bench samplers`. The codes come from a known 10-cluster mixture, the
//! decoder is a 16-400-784 MLP; neither network is trained (their weights do not change the
//! cost).

use std::time::Instant;

use rand::RngExt;
use vae::engine::Matrix;
use vae::engine::Recon;
use vae::model::{Model, ModelConfig, Scaler};
use vae::rng::seeded;
use vae::sampler::{GaussianMixture, GmmOptions, Sampler, TwoStage, TwoStageOptions};

const CODES: usize = 60_000;
const LATENT: usize = 16;
const DRAWS: usize = 10_000;
const ROUNDS: usize = 15;

/// `n` codes around ten random centres, each cluster stretched along its own axes.
fn clustered_codes(n: usize) -> Matrix {
    let mut rng = seeded(1);
    let centres: Vec<f32> = (0..10 * LATENT).map(|_| rng.random_range(-2.0..2.0)).collect();
    let scales: Vec<f32> = (0..10 * LATENT).map(|_| rng.random_range(0.1..0.8)).collect();
    let mut z = Matrix::standard_normal(n, LATENT, &mut rng);
    for r in 0..n {
        let c = r % 10;
        for (j, v) in z.row_mut(r).iter_mut().enumerate() {
            *v = centres[c * LATENT + j] + scales[c * LATENT + j] * *v;
        }
    }
    z
}

fn main() {
    vae::engine::set_threads(std::thread::available_parallelism().map_or(1, |n| n.get()));
    let codes = clustered_codes(CODES);
    let options = GmmOptions::default();
    let started = Instant::now();
    let (mixture, fit) = GaussianMixture::fit(&codes, &options, &mut seeded(0)).unwrap();
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "fit: {} components to {CODES} codes of latent {LATENT}: {seconds:.2} s, {} EM iterations ({:.0} ms each), log-likelihood {:.3}, {} threads",
        options.components,
        fit.iterations,
        1000.0 * seconds / fit.iterations.max(1) as f64,
        fit.log_likelihood,
        vae::engine::threads()
    );

    let model = Model::new(
        ModelConfig {
            hidden: vec![400],
            latent: LATENT,
            ..ModelConfig::mlp_vae()
        },
        &mut seeded(0),
    )
    .unwrap();
    let fitted = vae::sampler::FittedGmm {
        mixtures: vec![mixture],
        report: synthetic_report(),
    };
    let samplers = [
        ("prior", Sampler::prior_of(&model)),
        ("gmm", Sampler::Gmm(fitted)),
        ("two-stage", Sampler::TwoStage(Box::new(second_stage()))),
    ];
    let mut rates = [Vec::new(), Vec::new(), Vec::new()];
    for round in 0..ROUNDS {
        for (i, (_, sampler)) in samplers.iter().enumerate() {
            let started = Instant::now();
            let z = sampler.draw(DRAWS, None, 1.0, &mut seeded(round as u64)).unwrap();
            let images = model.decode(&z, None);
            assert_eq!(images.rows, DRAWS);
            rates[i].push(DRAWS as f64 / started.elapsed().as_secs_f64());
        }
    }
    for ((name, _), r) in samplers.iter().zip(&rates) {
        let mut sorted = r.clone();
        sorted.sort_by(f64::total_cmp);
        println!(
            "draw + decode from {name:>9}: median {:.0} images/s over {ROUNDS} alternated rounds of {DRAWS}",
            sorted[ROUNDS / 2]
        );
    }
    let median = |r: &Vec<f64>| {
        let mut s = r.clone();
        s.sort_by(f64::total_cmp);
        s[ROUNDS / 2]
    };
    println!("gmm / prior: {:.3}", median(&rates[1]) / median(&rates[0]));
    println!("two-stage / prior: {:.3}", median(&rates[2]) / median(&rates[0]));
}

/// A second stage of the default shape on codes of latent 16, as `vae fit-sampler --kind
/// two-stage` makes it (a Gaussian-likelihood VAE reading the codes through a scaler).
fn second_stage() -> TwoStage {
    let options = TwoStageOptions::default();
    let mut model = Model::new(
        ModelConfig {
            hidden: options.hidden.clone(),
            latent: LATENT,
            recon: Recon::Gaussian,
            image_height: 1,
            image_width: LATENT,
            ..ModelConfig::mlp_vae()
        },
        &mut seeded(2),
    )
    .unwrap();
    model.scaler = Some(Scaler::identity(LATENT));
    TwoStage {
        model,
        record: vae::sampler::two_stage::TwoStageRecord {
            format: "vae-sampler".into(),
            kind: "two-stage".into(),
            model_sha256: String::new(),
            latent: LATENT,
            options,
            codes: "codes".into(),
            train_codes: 0,
            held_out_codes: 0,
            held_out_neg_elbo: 0.0,
            seconds: 0.0,
        },
    }
}

/// The record a mixture fitted outside a run carries: nothing to report.
fn synthetic_report() -> vae::sampler::GmmReport {
    vae::sampler::GmmReport {
        options: GmmOptions::default(),
        seed: 0,
        dataset: "synthetic".into(),
        codes: "codes".into(),
        held_out_fraction: 0.0,
        groups: Vec::new(),
        seconds: 0.0,
    }
}
