//! `vae train`: a new run, or `--resume RUN` to continue one.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::ValueEnum;
use vae::data::Binarize;
use vae::engine::Recon;
use vae::model::{Arch, ModelKind, PriorKind};
use vae::run::{NewRun, Objective, RunDir};
use vae::train::{Outcome, TrainEvent, Trainer};

use crate::progress;

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ModelArg {
    Ae,
    Vae,
    Cvae,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum PriorArg {
    Standard,
    Mog,
    Vamp,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ArchArg {
    Mlp,
    Conv,
}

impl ArchArg {
    pub fn arch(self) -> Arch {
        match self {
            ArchArg::Mlp => Arch::Mlp,
            ArchArg::Conv => Arch::Conv,
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
    Gaussian,
}

#[derive(clap::Args)]
pub struct Args {
    /// Autoencoder, variational autoencoder, or conditional VAE (given the label).
    #[arg(
        long,
        visible_alias = "model",
        value_enum,
        default_value = "vae",
        conflicts_with = "resume"
    )]
    kind: ModelArg,
    /// Body of encoder and decoder: dense layers only (mlp), or strided convolutions before
    /// them, mirrored by transposed convolutions in the decoder (conv).
    #[arg(long, value_enum, default_value = "mlp", conflicts_with = "resume")]
    arch: ArchArg,
    /// Conv: output channels of the encoder's 3x3 stride-2 convolutions, input side first
    /// (default 32,64).
    #[arg(long, value_delimiter = ',', conflicts_with = "resume")]
    channels: Vec<usize>,
    /// mnist-sample (built in), mnist, fashion-mnist, a directory holding the four IDX files,
    /// or a folder of images (class sub-folders for labels; train/ and test/ for the split).
    #[arg(long, default_value = "mnist-sample", conflicts_with = "resume")]
    dataset: String,
    #[command(flatten)]
    data: super::DataArgs,
    /// Passes over the training split (with --resume: the new total).
    #[arg(long)]
    epochs: Option<usize>,
    #[arg(long, default_value_t = NewRun::default().batch_size, conflicts_with = "resume")]
    batch_size: usize,
    /// Adam's learning rate.
    #[arg(
        long,
        default_value_t = NewRun::default().lr,
        conflicts_with = "resume",
        allow_negative_numbers = true
    )]
    lr: f32,
    /// Size of the latent code.
    #[arg(long, default_value_t = NewRun::default().latent, conflicts_with = "resume")]
    latent: usize,
    /// Dense hidden layer widths of the encoder, input side first, e.g. 512,256; the decoder
    /// mirrors them (default: 400 for mlp, 256 for conv).
    #[arg(long, value_delimiter = ',', conflicts_with = "resume")]
    hidden: Vec<usize>,
    /// Reconstruction loss: Bernoulli likelihood from logits (bce) or squared error (mse) of
    /// values in [0, 1]; a Gaussian with a learned variance per value (gaussian) for real
    /// values, the inputs standardised by the training split's mean and deviation.
    #[arg(long, value_enum, default_value = "bce", conflicts_with = "resume")]
    recon: ReconArg,
    /// The prior p(z) of a vae or cvae: N(0, I) (standard), a mixture of Gaussians learned
    /// with the model (mog), or the VampPrior, a mixture of the encoder's posteriors at
    /// learned pseudo-inputs (vamp; not for a cvae).
    #[arg(long, value_enum, default_value = "standard", conflicts_with = "resume")]
    prior: PriorArg,
    /// Components of a learned prior (default: 10 for mog, 500 pseudo-inputs for vamp).
    #[arg(long, conflicts_with = "resume")]
    prior_components: Option<usize>,
    /// Weight of the KL term of a vae or cvae (default 1: the plain VAE).
    #[arg(long, conflicts_with = "resume", allow_negative_numbers = true)]
    beta: Option<f32>,
    /// Seed of every random choice: same seed, same numbers.
    #[arg(long, default_value_t = 0, conflicts_with = "resume")]
    seed: u64,
    /// Threads (default: every core).
    #[arg(long)]
    pub(crate) threads: Option<usize>,
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

impl Args {
    /// The flags in the library's terms: one field each, no rules (those are the library's).
    fn new_run(&self, threads: usize) -> NewRun {
        let given = |v: &Vec<usize>| (!v.is_empty()).then(|| v.clone());
        NewRun {
            kind: match self.kind {
                ModelArg::Ae => ModelKind::Ae,
                ModelArg::Vae => ModelKind::Vae,
                ModelArg::Cvae => ModelKind::Cvae,
            },
            arch: self.arch.arch(),
            channels: given(&self.channels),
            hidden: given(&self.hidden),
            latent: self.latent,
            recon: match self.recon {
                ReconArg::Bce => Recon::Bce,
                ReconArg::Mse => Recon::Mse,
                ReconArg::Gaussian => Recon::Gaussian,
            },
            prior: match self.prior {
                PriorArg::Standard => PriorKind::Standard,
                PriorArg::Mog => PriorKind::Mog,
                PriorArg::Vamp => PriorKind::Vamp,
            },
            prior_components: self.prior_components,
            beta: self.beta,
            dataset: self.dataset.clone(),
            data: self.data.options(),
            epochs: self.epochs,
            batch_size: self.batch_size,
            lr: self.lr,
            seed: self.seed,
            threads,
            checkpoint_every: self.checkpoint_every,
            kl_warmup: self.kl_warmup,
            free_bits: self.free_bits,
            objective: match self.objective {
                ObjectiveArg::Elbo => Objective::Elbo,
                ObjectiveArg::Iwae => Objective::Iwae,
            },
            k: self.k,
            binarize: match self.binarize {
                BinarizeArg::None => Binarize::None,
                BinarizeArg::Static => Binarize::Static,
                BinarizeArg::Dynamic => Binarize::Dynamic,
            },
        }
    }
}

pub fn run(args: Args) -> Result<ExitCode> {
    let threads = vae::engine::threads();
    let (run, new_config) = match &args.resume {
        Some(path) => (RunDir::new(path), None),
        None => {
            // Refuse bad settings before any work (or download) starts.
            let request = args.new_run(threads);
            let config = request.config()?;
            let run = RunDir::new(args.out.clone().unwrap_or_else(|| request.default_folder()));
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
            let options = trainer.config.data_options();
            let data = super::load_dataset_with(&trainer.config.train.dataset, &options)?;
            (lock, trainer, data)
        }
        Some(mut config) => {
            let data = super::load_dataset_with(&config.train.dataset, &config.train.data)?;
            config.fit_to(&data)?;
            let lock = run.create_and_lock()?;
            (lock, Trainer::new(run.clone(), config)?, data)
        }
    };
    let mut trainer = trainer;
    let c = &trainer.config;
    eprintln!(
        "{} {} ({}) on {} ({} train / {} test images), latent {}{}, hidden {:?}, {} threads -> {}",
        if args.resume.is_some() { "resuming" } else { "training" },
        c.model.kind.name(),
        match c.model.arch {
            Arch::Mlp => "mlp".to_string(),
            Arch::Conv => format!("conv {:?}", c.model.channels),
        },
        data.name,
        data.train.len(),
        data.test.len(),
        c.model.latent,
        match c.model.prior {
            PriorKind::Standard => String::new(),
            p => format!(", prior {} of {}", p.name(), c.model.prior_components),
        },
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
            let pictures = if trainer.config.model.image_shape().is_vector() {
                " reconstruction-errors.png,"
            } else {
                " samples.png, reconstructions.png,"
            };
            eprintln!(
                "done: {}/metrics.jsonl,{pictures} model.safetensors",
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
