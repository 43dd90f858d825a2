//! `vae bench`: training and evaluation throughput of a model on the built-in sample.

use std::process::ExitCode;

use anyhow::Result;
use vae::bench::{BenchOptions, Throughput};
use vae::data::{DataDirs, DatasetName, DatasetSpec, catalog};
use vae::model::{Arch, ModelConfig};

use crate::progress::thousands;

#[derive(clap::Args)]
pub struct Args {
    /// Training batch sizes to measure.
    #[arg(long, default_value = "128,1024", value_delimiter = ',')]
    batch_sizes: Vec<usize>,
    /// Seconds per measurement.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Threads (default: every core).
    #[arg(long)]
    pub(crate) threads: Option<usize>,
    /// Body of encoder and decoder, as in `vae train --arch`.
    #[arg(long, value_enum, default_value = "mlp")]
    arch: super::train::ArchArg,
    /// Conv: output channels of the encoder's convolutions (default 32,64).
    #[arg(long, value_delimiter = ',')]
    channels: Vec<usize>,
    /// Dense hidden layer widths (default: 400 for mlp, 256 for conv).
    #[arg(long, value_delimiter = ',')]
    hidden: Vec<usize>,
    /// Latent size.
    #[arg(long, default_value_t = 20)]
    latent: usize,
    /// Print one JSON object per measurement.
    #[arg(long)]
    json: bool,
    /// Instead: where a training step's time goes, layer by layer, at each batch size.
    #[arg(long)]
    profile: bool,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let threads = vae::engine::threads();
    let data = catalog::load(&DatasetSpec::Named(DatasetName::MnistSample), &DataDirs::from_env())?;
    let given = |v: Vec<usize>| (!v.is_empty()).then_some(v);
    let model = ModelConfig {
        latent: args.latent,
        ..ModelConfig::for_body(args.arch.arch(), given(args.channels), given(args.hidden))
    };
    let options = BenchOptions {
        model,
        batch_sizes: args.batch_sizes,
        seconds: args.seconds,
    };
    // Before the banner: a refused size prints nothing else.
    options.validate()?;
    if !args.json {
        let sizes: Vec<String> = options
            .model
            .layer_shapes()
            .iter()
            .map(|(i, o)| format!("{i}x{o}"))
            .collect();
        let body = match options.model.arch {
            Arch::Mlp => "MLP VAE".to_string(),
            Arch::Conv => format!("conv VAE (channels {:?})", options.model.channels),
        };
        println!(
            "{body} (dense layers {}), bce, Adam, {threads} threads, mnist-sample, {} s per measurement",
            sizes.join(" "),
            args.seconds
        );
    }
    if args.profile {
        return profile(&data.train, &options, args.json);
    }
    let json = args.json;
    let mut show = |r: &Throughput| {
        if json {
            let mut value = serde_json::to_value(r).expect("serialises");
            value["framework"] = "vae".into();
            value["threads"] = threads.into();
            println!("{value}");
        } else {
            println!(
                "{:5} batch {:5}: {:>8} images/s  {:6.1} GFLOP/s = {:3.0}% of the {:.0} GFLOP/s FMA peak ({:3.0}% of the {:.0} GFLOP/s matrix-product ceiling)",
                r.what,
                r.batch_size,
                thousands(r.images_per_sec),
                r.gflops,
                100.0 * r.share_of_peak(),
                r.peak_gflops,
                100.0 * r.gflops / r.gemm_ceiling_gflops,
                r.gemm_ceiling_gflops
            );
        }
    };
    vae::bench::run(&data.train, &options, &mut show)?;
    Ok(ExitCode::SUCCESS)
}

/// `vae bench --profile`: a table per batch size, each part's milliseconds per step, its
/// share of the step and, for products, its FLOP rate.
fn profile(train: &vae::data::Split, options: &BenchOptions, json: bool) -> Result<ExitCode> {
    // A part is timed for a fraction of the budget: a step has about twenty of them.
    let seconds = (options.seconds / 10.0).max(0.05);
    for &batch in &options.batch_sizes {
        let parts = vae::bench::profile::profile(&options.model, train, batch, seconds)?;
        let step = parts.last().map_or(1.0, |p| p.ms);
        if json {
            for part in &parts {
                let mut value = serde_json::to_value(part).expect("serialises");
                value["batch_size"] = batch.into();
                println!("{value}");
            }
            continue;
        }
        println!("\ntraining step at batch {batch}:");
        println!("{:36} {:>9} {:>7} {:>9}", "part", "ms/step", "share", "GFLOP/s");
        for part in &parts {
            let rate = part.gflops.map_or(String::new(), |g| format!("{g:.1}"));
            println!(
                "{:36} {:>9.3} {:>6.1}% {:>9}",
                part.name,
                part.ms,
                100.0 * part.ms / step,
                rate
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
