//! `vae classifier train`: the digit classifier behind the latent-space metrics.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use vae::classifier::{Classifier, ClassifierTraining, default_dir};
use vae::data::DataDirs;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Train the classifier on a dataset's training split and report its test accuracy.
    Train {
        /// mnist-sample (built in), mnist, fashion-mnist, or a directory of IDX files.
        #[arg(long, default_value = "mnist-sample")]
        dataset: String,
        /// Epochs (default: about 120,000 images' worth, 14 on the built-in sample).
        #[arg(long)]
        epochs: Option<usize>,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Threads (default: every core).
        #[arg(long)]
        threads: Option<usize>,
        /// Folder to write (default: $VAE_DATA_DIR/classifiers/DATASET, where `vae eval --latent` looks).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Report a trained classifier's accuracy on a dataset's test split.
    Eval {
        /// The classifier folder.
        dir: PathBuf,
        /// Dataset whose test split to score (default: the one it was trained on).
        #[arg(long)]
        dataset: Option<String>,
    },
}

pub fn run(command: Command) -> Result<ExitCode> {
    match command {
        Command::Train {
            dataset,
            epochs,
            seed,
            threads: _,
            out,
        } => {
            if let Some(e) = epochs {
                vae::error::ensure_in_range("--epochs", e, 1..=vae::run::MAX_EPOCHS)?;
            }
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
        Command::Eval { dir, dataset } => {
            let classifier = Classifier::load(&dir)?;
            let data = super::load_dataset(dataset.as_deref().unwrap_or(&classifier.config.dataset))?;
            println!(
                "{}: {:.2}% of the {} test images of {} classified correctly",
                dir.display(),
                100.0 * classifier.accuracy(&data.test),
                data.test.len(),
                data.name
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
