//! The `vae` command: parse, run, report. Each subcommand lives in its own module with one
//! `run(args) -> anyhow::Result<()>`; all the work happens in the `vae` library.

mod commands;
mod progress;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Train, evaluate and sample autoencoders and variational autoencoders on MNIST-like images.
#[derive(Parser)]
#[command(name = "vae", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train an autoencoder or a VAE; writes a run folder.
    Train(commands::train::Args),
    /// Evaluate a trained run on a test split.
    Eval(commands::eval::Args),
    /// Decode samples from the prior N(0, I) into a picture.
    Sample(commands::sample::Args),
    /// Show test images above their reconstructions.
    Reconstruct(commands::reconstruct::Args),
    /// List or download datasets.
    #[command(subcommand)]
    Data(commands::data::Command),
    /// Measure training and evaluation throughput.
    Bench(commands::bench::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Train(args) => commands::train::run(args),
        Command::Eval(args) => commands::eval::run(args),
        Command::Sample(args) => commands::sample::run(args),
        Command::Reconstruct(args) => commands::reconstruct::run(args),
        Command::Data(command) => commands::data::run(command),
        Command::Bench(args) => commands::bench::run(args),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            // A reader that went away (`vae data list | head`) is not an error worth a word.
            if error.chain().any(|e| {
                e.downcast_ref::<std::io::Error>()
                    .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
            }) {
                return ExitCode::SUCCESS;
            }
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
