//! `vae classifier train`: the digit classifier behind the latent-space metrics.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use vae::classifier::{ClassifierTraining, default_dir};
use vae::data::DataDirs;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Train the classifier on a dataset's training split and report its test accuracy.
    Train {
        /// mnist-sample (built in), mnist, fashion-mnist, or a directory of IDX files.
        #[arg(long, default_value = "mnist-sample")]
        dataset: String,
        #[arg(long, default_value_t = 10)]
        epochs: usize,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Threads (default: every core).
        #[arg(long)]
        threads: Option<usize>,
        /// Folder to write (default: $VAE_DATA_DIR/classifiers/DATASET, where `vae eval --latent` looks).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

pub fn run(command: Command) -> Result<ExitCode> {
    match command {
        Command::Train {
            dataset,
            epochs,
            seed,
            threads,
            out,
        } => {
            super::set_threads(threads)?;
            let data = super::load_dataset(&dataset)?;
            let out = out.unwrap_or_else(|| default_dir(&DataDirs::from_env().user, &dataset));
            let options = ClassifierTraining {
                epochs,
                seed,
                ..ClassifierTraining::default()
            };
            let classifier = super::train_classifier(&data, &options)?;
            classifier.save(&out)?;
            println!(
                "classifier for {}: {:.2}% test accuracy, saved to {}",
                data.name,
                100.0 * classifier.config.test_accuracy,
                out.display()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
