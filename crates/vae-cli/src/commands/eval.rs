//! `vae eval RUN`: the test loss of a trained run, and optionally the importance-weighted
//! estimate of -log p(x).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use serde_json::json;
use vae::checkpoint::load_model;
use vae::eval::{evaluate, importance_weighted_nll};
use vae::rng::seeded;
use vae::run::RunDir;
use vae::train::LOSS_REDUCTION;

use crate::progress;

#[derive(clap::Args)]
pub struct Args {
    /// The run folder.
    run: PathBuf,
    /// Dataset whose test split to use (default: the one the run trained on).
    #[arg(long)]
    dataset: Option<String>,
    /// Also estimate -log p(x) by importance weighting with K samples per image (VAE only).
    #[arg(long, value_name = "K", default_value_t = 0)]
    iw_samples: usize,
    /// Seed of the sampled latent codes.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Evaluate only the first N test images.
    #[arg(long)]
    limit: Option<usize>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let run = RunDir::new(&args.run);
    let model = load_model(&run)?;
    let config = run.read_config()?;
    let dataset_name = args.dataset.unwrap_or(config.train.dataset);
    let data = super::load_dataset(&dataset_name)?;
    let test = match args.limit {
        Some(n) => data.test.take(n),
        None => data.test,
    };
    let mut rng = seeded(args.seed);
    let loss = evaluate(&model, &test, &mut rng);
    let iw = if args.iw_samples > 0 {
        let bar = progress::bar(
            test.len() as u64,
            "importance sampling [{bar:30}] {pos}/{len} images {eta}",
        );
        let estimate =
            importance_weighted_nll(&model, &test, args.iw_samples, &mut rng, &mut |done| {
                bar.set_position(done as u64)
            });
        bar.finish_and_clear();
        Some(estimate?)
    } else {
        None
    };
    if args.json {
        let value = json!({
            "run": args.run,
            "dataset": data.name,
            "images": test.len(),
            "seed": args.seed,
            "test_loss": loss.total,
            "test_recon": loss.reconstruction,
            "test_kl": loss.kl,
            "iw_samples": iw.map(|e| e.samples),
            "iw_nll": iw.map(|e| e.nll),
            "reduction": LOSS_REDUCTION,
        });
        println!("{value}");
    } else {
        println!(
            "{} on {} ({} test images, seed {})",
            args.run.display(),
            data.name,
            test.len(),
            args.seed
        );
        println!(
            "  test loss       {:10.3}  (reconstruction + beta * KL)",
            loss.total
        );
        println!("  reconstruction  {:10.3}", loss.reconstruction);
        println!("  KL              {:10.3}", loss.kl);
        if let Some(e) = iw {
            println!(
                "  -log p(x)       {:10.3}  (importance-weighted, K = {})",
                e.nll, e.samples
            );
        }
        println!("  ({LOSS_REDUCTION})");
    }
    Ok(ExitCode::SUCCESS)
}
