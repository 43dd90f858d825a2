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
    /// The whole story: train an AE and a VAE side by side and write an HTML report.
    Demo(commands::demo::Args),
    /// Train an autoencoder or a VAE; writes a run folder.
    Train(commands::train::Args),
    /// Evaluate a trained run on a test split.
    Eval(commands::eval::Args),
    /// Decode samples from the prior N(0, I), or from a fitted sampler, into a picture.
    Sample(commands::sample::Args),
    /// Fit a sampler (a Gaussian mixture) to a run's training codes, for `sample --sampler`.
    FitSampler(commands::fit_sampler::Args),
    /// Each item's code (the posterior's mean and standard deviation), as CSV or NPY.
    Encode(commands::encode::Args),
    /// Images (or vectors) from codes in an NPY or CSV file.
    Decode(commands::decode::Args),
    /// Write a trained model for another framework (PyTorch).
    Export(commands::export::Args),
    /// Each item's anomaly scores (negative ELBO, its parts, typicality, -log p(x)), or how
    /// well they tell other data apart (AUROC).
    Score(commands::score::Args),
    /// Show test images above their reconstructions.
    Reconstruct(commands::reconstruct::Args),
    /// Decode the path between the codes of two test images.
    Interpolate(commands::latent_tools::InterpolateArgs),
    /// Vary one latent dimension (or each in turn) around a code.
    Traverse(commands::latent_tools::TraverseArgs),
    /// Scatter the test set's codes, coloured by label.
    LatentMap(commands::latent_tools::LatentMapArgs),
    /// Decode a regular grid of 2-D codes into one picture.
    Manifold(commands::latent_tools::ManifoldArgs),
    /// Train the digit classifier behind `vae eval --latent`.
    #[command(subcommand)]
    Classifier(commands::classifier::Command),
    /// List or download datasets.
    #[command(subcommand)]
    Data(commands::data::Command),
    /// Measure training and evaluation throughput.
    Bench(commands::bench::Args),
    /// Explore trained models in the browser: decode points, draw digits, interpolate.
    Serve(commands::serve::Args),
}

impl Command {
    /// `--threads`, for the commands that take it.
    fn threads(&self) -> Option<usize> {
        match self {
            Command::Demo(args) => args.threads,
            Command::Train(args) => args.threads,
            Command::Bench(args) => args.threads,
            Command::Classifier(commands::classifier::Command::Train { threads, .. }) => *threads,
            _ => None,
        }
    }

    fn run(self) -> anyhow::Result<ExitCode> {
        match self {
            Self::Demo(args) => commands::demo::run(args),
            Self::Train(args) => commands::train::run(args),
            Self::Eval(args) => commands::eval::run(args),
            Self::Sample(args) => commands::sample::run(args),
            Self::FitSampler(args) => commands::fit_sampler::run(args),
            Self::Reconstruct(args) => commands::reconstruct::run(args),
            Self::Encode(args) => commands::encode::run(args),
            Self::Decode(args) => commands::decode::run(args),
            Self::Export(args) => commands::export::run(args),
            Self::Score(args) => commands::score::run(args),
            Self::Interpolate(args) => commands::latent_tools::interpolate_run(args),
            Self::Traverse(args) => commands::latent_tools::traverse_run(args),
            Self::LatentMap(args) => commands::latent_tools::latent_map_run(args),
            Self::Manifold(args) => commands::latent_tools::manifold_run(args),
            Self::Classifier(command) => commands::classifier::run(command),
            Self::Data(command) => commands::data::run(command),
            Self::Bench(args) => commands::bench::run(args),
            Self::Serve(args) => commands::serve::run(args),
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Serve(_)) {
        // Output into a closed pipe (`vae eval RUN | head -2`) ends the program quietly, as
        // it does every Unix tool, rather than as a failed print. The server keeps Rust's
        // default: a client that goes away is an error on its connection, not an exit.
        // SAFETY: restoring a signal's default disposition at start-up, before any thread.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    let result = match cli.command {
        // The server answers each connection on a thread of its own, and sizes the pool itself.
        Command::Serve(args) => commands::serve::run(args),
        // Everything else runs on a thread of the engine's pool, sized first: started from
        // this thread, the work would be one thread more than there are cores (see `on_pool`).
        command => commands::set_threads(command.threads()).and_then(|_| vae::engine::on_pool(|| command.run())),
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
