//! `vae train`: a new run, or `--resume RUN` to continue one.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::ValueEnum;
use vae::data::{Binarize, DatasetSpec};
use vae::engine::Recon;
use vae::model::{Arch, MNIST_SIDE, ModelConfig, ModelKind};
use vae::run::{RunConfig, RunDir, TrainConfig, TrainObjective};
use vae::train::{Outcome, TrainEvent, Trainer};

use crate::progress;

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ModelArg {
    Ae,
    Vae,
    Cvae,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ArchArg {
    Mlp,
    Conv,
}

impl ArchArg {
    /// The classic model of this body, with `--channels` and `--hidden` where given.
    pub fn config(self, channels: &[usize], hidden: &[usize]) -> ModelConfig {
        let base = match self {
            ArchArg::Mlp => ModelConfig::mlp_vae(),
            ArchArg::Conv => ModelConfig::conv_vae(),
        };
        let or_default = |given: &[usize], default: Vec<usize>| if given.is_empty() { default } else { given.to_vec() };
        ModelConfig {
            channels: or_default(channels, base.channels.clone()),
            hidden: or_default(hidden, base.hidden.clone()),
            ..base
        }
    }
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ObjectiveArg {
    Elbo,
    Iwae,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum BinarizeArg {
    None,
    Static,
    Dynamic,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ReconArg {
    Bce,
    Mse,
}

#[derive(clap::Args)]
pub struct Args {
    /// Autoencoder, variational autoencoder, or conditional VAE (given the label).
    #[arg(long, value_enum, default_value = "vae", conflicts_with = "resume")]
    model: ModelArg,
    /// Body of encoder and decoder: dense layers only (mlp), or strided convolutions before
    /// them, mirrored by transposed convolutions in the decoder (conv).
    #[arg(long, value_enum, default_value = "mlp", conflicts_with = "resume")]
    arch: ArchArg,
    /// Conv: output channels of the encoder's 3x3 stride-2 convolutions, input side first
    /// (default 32,64).
    #[arg(long, value_delimiter = ',', conflicts_with = "resume")]
    channels: Vec<usize>,
    /// mnist-sample (built in), mnist, fashion-mnist, or a directory holding the four IDX files.
    #[arg(long, default_value = "mnist-sample", conflicts_with = "resume")]
    dataset: String,
    /// Passes over the training split (with --resume: the new total).
    #[arg(long)]
    epochs: Option<usize>,
    #[arg(long, default_value_t = 128, conflicts_with = "resume")]
    batch_size: usize,
    /// Adam's learning rate.
    #[arg(
        long,
        default_value_t = 1e-3,
        conflicts_with = "resume",
        allow_negative_numbers = true
    )]
    lr: f32,
    /// Size of the latent code.
    #[arg(long, default_value_t = 20, conflicts_with = "resume")]
    latent: usize,
    /// Dense hidden layer widths of the encoder, input side first, e.g. 512,256; the decoder
    /// mirrors them (default: 400 for mlp, 256 for conv).
    #[arg(long, value_delimiter = ',', conflicts_with = "resume")]
    hidden: Vec<usize>,
    /// Reconstruction loss: Bernoulli likelihood from logits (bce) or squared error (mse).
    #[arg(long, value_enum, default_value = "bce", conflicts_with = "resume")]
    recon: ReconArg,
    /// Weight of the KL term of a vae or cvae (default 1: the plain VAE).
    #[arg(long, conflicts_with = "resume", allow_negative_numbers = true)]
    beta: Option<f32>,
    /// Seed of every random choice: same seed, same numbers.
    #[arg(long, default_value_t = 0, conflicts_with = "resume")]
    seed: u64,
    /// Threads (default: every core).
    #[arg(long)]
    threads: Option<usize>,
    /// Also checkpoint every N batches (default: at the end of each epoch only).
    #[arg(long, default_value_t = 0, conflicts_with = "resume")]
    checkpoint_every: usize,
    /// Grow β linearly from 0 to --beta over this many epochs (0: no warm-up).
    #[arg(long, default_value_t = 0, conflicts_with = "resume")]
    kl_warmup: usize,
    /// Floor of each latent dimension's KL term in nats (0: none).
    #[arg(
        long,
        default_value_t = 0.0,
        conflicts_with = "resume",
        allow_negative_numbers = true
    )]
    free_bits: f32,
    /// What a VAE is trained on: the ELBO, or the importance-weighted bound with --k samples.
    #[arg(long, value_enum, default_value = "elbo", conflicts_with = "resume")]
    objective: ObjectiveArg,
    /// Importance samples per image for --objective iwae (default 5).
    #[arg(long, conflicts_with = "resume")]
    k: Option<usize>,
    /// Binarize pixels: drawn afresh each batch (dynamic, the protocol of published MNIST
    /// likelihoods), drawn once (static), or kept grey (none).
    #[arg(long, value_enum, default_value = "none", conflicts_with = "resume")]
    binarize: BinarizeArg,
    /// Run folder to write (default: runs/MODEL-DATASET).
    #[arg(long, conflicts_with = "resume")]
    out: Option<PathBuf>,
    /// Continue the run in this folder from its last checkpoint.
    #[arg(long, value_name = "RUN")]
    resume: Option<PathBuf>,
}

const DEFAULT_EPOCHS: usize = 10;
const DEFAULT_K: usize = 5;

pub fn run(args: Args) -> Result<ExitCode> {
    let threads = super::set_threads(args.threads)?;
    let (run, new_config) = match &args.resume {
        Some(path) => (RunDir::new(path), None),
        None => {
            let kind = match args.model {
                ModelArg::Ae => ModelKind::Ae,
                ModelArg::Vae => ModelKind::Vae,
                ModelArg::Cvae => ModelKind::Cvae,
            };
            let base = args.arch.config(&args.channels, &args.hidden);
            let model = ModelConfig {
                model: kind,
                image_height: MNIST_SIDE,
                image_width: MNIST_SIDE,
                latent: args.latent,
                recon: match args.recon {
                    ReconArg::Bce => Recon::Bce,
                    ReconArg::Mse => Recon::Mse,
                },
                beta: args.beta.unwrap_or(1.0),
                // The classes of a CVAE are those of its dataset, known once it is loaded;
                // validation before that counts the ten of every dataset this tool names.
                classes: if kind.is_conditional() { 10 } else { 0 },
                ..base
            };
            anyhow::ensure!(
                matches!(args.arch, ArchArg::Conv) || args.channels.is_empty(),
                "--channels: only a conv body has channels (add --arch conv)"
            );
            // A flag that would change nothing is refused, not ignored.
            anyhow::ensure!(
                args.beta.is_none() || kind.is_variational(),
                "--beta: an autoencoder has no KL term to weigh (use --model vae or cvae)"
            );
            anyhow::ensure!(
                args.k.is_none() || matches!(args.objective, ObjectiveArg::Iwae),
                "--k: the number of importance samples applies to --objective iwae only"
            );
            // A directory is kept as an absolute path, so the run can be resumed and
            // evaluated from anywhere.
            let dataset = match args.dataset.parse::<DatasetSpec>()? {
                DatasetSpec::Dir(dir) => std::fs::canonicalize(&dir)
                    .with_context(|| format!("{}", dir.display()))?
                    .display()
                    .to_string(),
                DatasetSpec::Named(name) => name.to_string(),
            };
            let train = TrainConfig {
                dataset,
                epochs: args.epochs.unwrap_or(DEFAULT_EPOCHS),
                batch_size: args.batch_size,
                lr: args.lr,
                seed: args.seed,
                threads,
                checkpoint_every: args.checkpoint_every,
                kl_warmup: args.kl_warmup,
                free_bits: args.free_bits,
                objective: match args.objective {
                    ObjectiveArg::Elbo => TrainObjective::Elbo,
                    ObjectiveArg::Iwae => TrainObjective::Iwae,
                },
                k: match args.objective {
                    ObjectiveArg::Iwae => args.k.unwrap_or(DEFAULT_K),
                    ObjectiveArg::Elbo => 1,
                },
                binarize: match args.binarize {
                    BinarizeArg::None => Binarize::None,
                    BinarizeArg::Static => Binarize::Static,
                    BinarizeArg::Dynamic => Binarize::Dynamic,
                },
            };
            // Refuse bad settings before any work (or download) starts.
            let config = RunConfig { model, train };
            config.validate()?;
            let dataset_word = args
                .dataset
                .trim_end_matches('/')
                .rsplit('/')
                .next()
                .unwrap_or("data")
                .to_string();
            let out = args
                .out
                .clone()
                .unwrap_or_else(|| PathBuf::from(format!("runs/{}-{dataset_word}", config.model.model.name())));
            let run = RunDir::new(out);
            // A folder that holds a run, or the user's own files, is refused before any work.
            run.ensure_fresh()?;
            (run, Some(config))
        }
    };
    // Held for the whole run: a second trainer on the same folder is refused. A new run's
    // dataset is loaded first, so a bad --dataset leaves no empty run folder behind.
    let (_lock, trainer, data) = match new_config {
        None => {
            let lock = run.lock()?;
            let trainer = Trainer::resume(run.clone(), args.epochs).context("cannot resume")?;
            let data = super::load_dataset(&trainer.config.train.dataset)?;
            (lock, trainer, data)
        }
        Some(mut config) => {
            let data = super::load_dataset(&config.train.dataset)?;
            if config.model.model.is_conditional() {
                config.model.classes = data.classes();
            }
            let lock = run.create_and_lock()?;
            (lock, Trainer::new(run.clone(), config)?, data)
        }
    };
    let mut trainer = trainer;
    let c = &trainer.config;
    eprintln!(
        "{} {} ({}) on {} ({} train / {} test images), latent {}, hidden {:?}, {} threads -> {}",
        if args.resume.is_some() { "resuming" } else { "training" },
        c.model.model.name(),
        match c.model.arch {
            Arch::Mlp => "mlp".to_string(),
            Arch::Conv => format!("conv {:?}", c.model.channels),
        },
        data.name,
        data.train.len(),
        data.test.len(),
        c.model.latent,
        c.model.hidden,
        threads,
        run.root.display()
    );

    let stop = super::stop_on_ctrl_c()?;

    let bar = progress::train_bar();
    let epochs = trainer.config.train.epochs;
    let mut on_event = |event: TrainEvent| progress::show_train_event(&bar, epochs, "", &event);
    let outcome = trainer.train(&data, &stop, &mut on_event);
    bar.finish_and_clear();
    match outcome? {
        Outcome::Finished => {
            eprintln!(
                "done: {}/metrics.jsonl, samples.png, reconstructions.png, model.safetensors",
                run.root.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Outcome::Interrupted { epoch, batch } => {
            eprintln!(
                "stopped at epoch {}, batch {batch}; checkpoint saved. Continue with: vae train --resume {}",
                epoch + 1,
                run.root.display()
            );
            Ok(ExitCode::from(130))
        }
    }
}
