//! `vae demo`: trains an AE and a VAE side by side, the classifier, and writes the report.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, ensure};
use vae::demo::{DemoEvent, DemoOptions, default_epochs};
use vae::files::write_atomic;
use vae::metrics::LatentOptions;
use vae::report::render_html;

use crate::progress;

#[derive(clap::Args)]
pub struct Args {
    /// mnist-sample (built in), mnist, fashion-mnist, or any labelled images of up to ten
    /// classes (a folder of IDX files or of images, an NPY array with --labels), grey or
    /// colour.
    #[arg(long, default_value = "mnist-sample")]
    dataset: String,
    /// Folder for report.html, report.json and the run folders.
    #[arg(long, default_value = "demo")]
    out: PathBuf,
    /// Epochs per model (default: about 180,000 images' worth, 20 on the built-in sample).
    #[arg(long)]
    epochs: Option<usize>,
    /// Latent sizes; an AE and a VAE are trained at each.
    #[arg(long, default_value = "2,16", value_delimiter = ',')]
    latent: Vec<usize>,
    /// Hidden layer widths of the MLP models (the conv VAE keeps its 256-unit layer).
    #[arg(long, default_value = "400", value_delimiter = ',')]
    hidden: Vec<usize>,
    /// Prior samples per model for completeness and FID.
    #[arg(long, default_value_t = 10_000)]
    samples: usize,
    /// Interpolation paths per model for continuity.
    #[arg(long, default_value_t = 500)]
    pairs: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Classifier folder to measure with (default: the dataset's, trained once and kept).
    #[arg(long)]
    classifier: Option<PathBuf>,
    /// Threads (default: every core).
    #[arg(long)]
    pub(crate) threads: Option<usize>,
    /// Skip the conv VAE, the VAE with the VampPrior and the conditional VAE (AE and VAE only).
    #[arg(long)]
    no_extras: bool,
    #[command(flatten)]
    data: super::DataArgs,
}

pub fn run(args: Args) -> Result<ExitCode> {
    ensure!(
        !args.latent.is_empty() && !args.latent.contains(&0),
        "--latent: sizes must be at least 1"
    );
    ensure!(
        args.samples >= 2 && args.pairs >= 1,
        "--samples and --pairs: must be at least 2 and 1"
    );
    ensure!(args.epochs != Some(0), "--epochs: must be at least 1");
    let data = super::load_dataset_with(&args.dataset, &args.data.options())?;
    let runs = args.out.join("runs");
    let options = DemoOptions {
        latents: args.latent.clone(),
        hidden: args.hidden.clone(),
        epochs: args.epochs.unwrap_or_else(|| default_epochs(data.train.len())),
        batch_size: 128,
        seed: args.seed,
        runs,
        latent: LatentOptions {
            samples: args.samples,
            pairs: args.pairs,
            frames: 11,
            seed: args.seed,
        },
        extras: !args.no_extras,
    };
    eprintln!(
        "vae demo on {}: AE and VAE at latent sizes {:?}, {} epochs each{}, then the report in {}",
        data.name,
        options.latents,
        options.epochs,
        if options.extras {
            format!(
                "; a conv VAE ({} epochs) and a CVAE",
                vae::demo::conv_epochs(options.epochs)
            )
        } else {
            String::new()
        },
        args.out.display()
    );
    let stop = super::stop_on_ctrl_c()?;
    let bar = progress::train_bar();
    let mut on_event = |event: DemoEvent| match event {
        DemoEvent::Stage(stage) => progress::println(&bar, &format!("== {stage}")),
        DemoEvent::Train { model, epochs, event } => {
            progress::show_train_event(&bar, epochs, &format!("{model} "), &event)
        }
    };
    let classifier = super::classifier_for(&data, args.classifier.clone())?;
    let result = vae::demo::run(&data, &options, &classifier, &stop, &mut on_event);
    bar.finish_and_clear();
    let result = result?;

    std::fs::create_dir_all(&args.out).with_context(|| format!("{}", args.out.display()))?;
    let report = args.out.join("report.html");
    write_atomic(&report, render_html(&result).as_bytes())?;
    let numbers = serde_json::to_string_pretty(&result.numbers()).expect("the numbers serialise");
    write_atomic(&args.out.join("report.json"), format!("{numbers}\n").as_bytes())?;
    eprintln!(
        "{:<12} {:>10} {:>9} {:>8} {:>10} {:>11} {:>9}",
        "model", "confident", "entropy", "FID", "mean step", "gmm: conf.", "gmm FID"
    );
    for m in &result.models {
        let (r, g) = (&m.report, &m.fitted.quality);
        eprintln!(
            "{:<12} {:>9.1}% {:>9.2} {:>8.1} {:>10.3} {:>10.1}% {:>9.1}",
            m.name,
            100.0 * r.completeness.confident_share,
            r.completeness.label_entropy_bits,
            r.fid,
            r.continuity.mean_step,
            100.0 * g.completeness.confident_share,
            g.fid
        );
    }
    eprintln!("done in {:.0} s: open {}", result.seconds, report.display());
    Ok(ExitCode::SUCCESS)
}
