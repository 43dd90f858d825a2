//! `vae eval RUN`: the test loss of a trained run, and optionally the importance-weighted
//! estimate of -log p(x).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use vae::eval::{EvalReport, LOSS_REDUCTION, evaluate, importance_weighted_nll};
use vae::latent::DatasetCodes;
use vae::metrics::{LatentOptions, LatentReport, Reference, latent_report};
use vae::model::Conditioning;
use vae::rng::seeded;
use vae::run::RunDir;
use vae::sampler::Sampler;

use super::{LoadedRun, SamplerArg};

use crate::progress;

#[derive(clap::Args)]
pub struct Args {
    /// The run folder.
    run: PathBuf,
    /// Dataset whose test split to use (default: the one the run trained on).
    #[arg(long)]
    dataset: Option<String>,
    /// Also estimate -log p(x) by importance weighting with K draws of q(z|x) per image (VAE
    /// only): the same K as training's --k.
    #[arg(long, alias = "iw-samples", value_name = "K", default_value_t = 0)]
    k: usize,
    /// Seed of the sampled latent codes.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Evaluate only the first N test images.
    #[arg(long)]
    limit: Option<usize>,
    /// Also measure the latent space: completeness, continuity and sample quality (FID),
    /// with the digit classifier (trained once and kept, if there is none yet).
    #[arg(long)]
    latent: bool,
    /// Classifier folder for --latent (default: $VAE_DATA_DIR/classifiers/DATASET).
    #[arg(long)]
    classifier: Option<PathBuf>,
    /// Where --latent's samples are drawn from: the prior N(0, I), or the mixture that
    /// `vae fit-sampler RUN` fitted to the training codes.
    #[arg(long, value_enum, default_value = "prior")]
    sampler: SamplerArg,
    /// Samples for --latent's completeness, FID and coverage.
    #[arg(long, default_value_t = 10_000)]
    samples: usize,
    /// Interpolation paths for --latent's continuity.
    #[arg(long, default_value_t = 500)]
    pairs: usize,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let run = RunDir::new(&args.run);
    let LoadedRun {
        config,
        model,
        data: loaded,
    } = super::load_run(&args.run, args.dataset.as_deref())?;
    // The test split as the run saw it: binarized once under its seed, if it trained so.
    let data = loaded.prepared(config.train.binarize, config.train.seed);
    anyhow::ensure!(args.limit != Some(0), "--limit: must be at least 1");
    let test = match args.limit {
        Some(n) => data.test.take(n),
        None => data.test.clone(),
    };
    let mut rng = seeded(args.seed);
    let loss = evaluate(&model, &test, &mut rng)?;
    let iw = if args.k > 0 {
        let bar = progress::bar(
            test.len() as u64,
            "importance sampling [{bar:30}] {pos}/{len} images {eta}",
        );
        let estimate = importance_weighted_nll(&model, &test, args.k, &mut rng, &mut |done| {
            bar.set_position(done as u64)
        });
        bar.finish_and_clear();
        Some(estimate?)
    } else {
        None
    };
    let latent = if args.latent {
        let options = LatentOptions {
            samples: args.samples,
            pairs: args.pairs,
            frames: 11,
            seed: args.seed,
        };
        // Before a classifier is trained for it.
        options.validate().map_err(|e| anyhow::anyhow!("--{e}"))?;
        let classifier = super::classifier_for(&data, args.classifier.clone())?;
        let sampler = Sampler::load(&run, args.sampler.into(), &model)?;
        let reference = Reference::new(&classifier, &data, options.samples);
        let codes = DatasetCodes::new(&model, &data)?;
        Some(latent_report(
            &model,
            &sampler,
            &classifier,
            &data,
            &codes,
            &options,
            &reference,
        )?)
    } else {
        None
    };
    if args.json {
        let report = EvalReport::new(
            args.run.clone(),
            data.name.clone(),
            test.len(),
            args.seed,
            loss,
            iw,
            latent,
        );
        println!("{}", serde_json::to_string(&report).expect("a report serialises"));
    } else {
        println!(
            "{} on {} ({} test images, seed {})",
            args.run.display(),
            data.name,
            test.len(),
            args.seed
        );
        println!("  test loss       {:10.3}  (reconstruction + beta * KL)", loss.total);
        println!("  reconstruction  {:10.3}", loss.reconstruction);
        println!("  KL              {:10.3}", loss.kl);
        if let Some(e) = iw {
            // A CVAE's likelihood is of the image given its label.
            let what = match model.conditioning() {
                Conditioning::Label { .. } => "-log p(x|y)",
                Conditioning::Unconditional => "-log p(x)  ",
            };
            println!("  {what}     {:10.3}  (importance-weighted, K = {})", e.nll, e.k);
        }
        println!("  ({LOSS_REDUCTION})");
        if let Some(r) = &latent {
            print_latent(r);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_coverage(v: &vae::holes::Coverage) {
    println!(
        "  coverage: do the drawn codes land where training codes are? (against {} training codes)",
        v.reference_codes
    );
    println!(
        "    active units                      {} of {}   (dimensions whose code varies over the training images, variance > 0.01)",
        v.active_units, v.latent
    );
    println!(
        "    draws in holes                    {:6.1}%   (farther from every training code than 99% of training codes are from their nearest; test codes: {:.1}%)",
        100.0 * v.hole_share,
        100.0 * v.hole_share_of_test_codes
    );
    println!(
        "    MMD² to the training codes        {:.4}   (test codes: {:.4}; 0 when draws are distributed as the codes)",
        v.mmd, v.mmd_of_test_codes
    );
}

fn print_latent(r: &LatentReport) {
    let p = &r.protocol;
    let (c, real, k) = (&r.completeness, &r.completeness_of_test_images, &r.continuity);
    println!();
    println!(
        "latent space ({}; {} samples, {} interpolation paths of {} frames, seed {}; classifier test accuracy {:.2}%)",
        p.dataset,
        p.samples,
        p.interpolation_pairs,
        p.interpolation_frames,
        p.seed,
        100.0 * p.classifier_accuracy
    );
    println!("  samples drawn from {}", p.sampler);
    println!("  completeness: do the drawn codes decode to recognisable images?");
    println!(
        "    confidently classified (p >= 0.9)  {:6.1}%   (real test images: {:.1}%)",
        100.0 * c.confident_share,
        100.0 * real.confident_share
    );
    println!(
        "    entropy of predicted labels       {:6.2} bits (real test images: {:.2}; all 10 classes even: 3.32)",
        c.label_entropy_bits, real.label_entropy_bits
    );
    if let Some(share) = r.label_agreement {
        println!(
            "    classified as the label asked for {:6.1}%   (labels 0 to 9 in turn)",
            100.0 * share
        );
    }
    println!("  continuity: do close codes decode to close images? (along straight paths between test codes)");
    println!(
        "    step / endpoint distance          mean {:.3}, 95th percentile {:.3}   (an even path: {:.3})",
        k.mean_step, k.p95_step, k.even_step
    );
    println!(
        "    predicted label changes per path  {:.2}; paths that flip back and forth: {:.1}%",
        k.mean_label_changes,
        100.0 * k.back_and_forth_share
    );
    println!("  sample quality: Frechet distance of classifier features, samples vs test images");
    println!(
        "    FID {:.2}   (train vs test images, the floor: {:.2})",
        r.fid, r.fid_floor
    );
    print_coverage(&r.coverage);
}
