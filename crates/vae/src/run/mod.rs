//! A run folder: the files one training run leaves, atomic writes, and the lock that keeps two
//! trainers out of one folder.
//!
//! ```text
//! RUN/config.json             everything needed to rebuild the model and repeat the run
//! RUN/model.safetensors       the weights, with PyTorch-style names
//! RUN/checkpoint.safetensors  weights, Adam moments and training state: what --resume reads
//! RUN/metrics.jsonl           one JSON object per finished epoch
//! RUN/samples.png             64 decoded prior samples
//! RUN/reconstructions.png     test inputs above their reconstructions
//! ```

mod new;

pub use new::{DEFAULT_EPOCHS, DEFAULT_K, NewRun};

use std::fs::{self, File};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::checkpoint::load_weights;
use crate::data::{Binarize, DataOptions};
use crate::engine::MAX_THREADS;
use crate::error::{Error, Result, ensure_in_range};
use crate::files::{MAX_CONFIG_BYTES, open_own_file, read_text_limited, write_atomic};
use crate::model::{Model, ModelConfig, ModelKind, Scaler};
use crate::rng::{Stream, stream_rng};

/// Most epochs a run may plan: its history rides in every checkpoint.
pub const MAX_EPOCHS: usize = 100_000;
/// Largest training batch (before the activation cap of [`RunConfig::validate`]).
pub const MAX_BATCH_SIZE: usize = 1 << 20;
/// Most importance samples per image under `objective: iwae`.
pub const MAX_K: usize = 100_000;
/// Largest learning rate: Adam's steps are about this size, and more than 1 only diverges.
pub const MAX_LR: f32 = 1.0;
/// Largest free-bits floor per latent dimension, in nats.
pub const MAX_FREE_BITS: f32 = 1000.0;

/// How a run trains: every setting that is not the model itself.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// A dataset name (`mnist-sample`, `mnist`, `fashion-mnist`) or a directory.
    pub dataset: String,
    /// How the dataset is read: image size, colour, test share.
    #[serde(flatten)]
    pub data: DataOptions,
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: f32,
    pub seed: u64,
    /// Threads used; results depend only on the seed, but the count is kept for the record.
    pub threads: usize,
    /// Also checkpoint every this many batches (0: only at the end of each epoch).
    pub checkpoint_every: usize,
    /// β grows linearly from 0 to its target over this many epochs (0: from the start).
    #[serde(default)]
    pub kl_warmup: usize,
    /// Floor, in nats, of each latent dimension's batch-mean KL in the training objective.
    #[serde(default)]
    pub free_bits: f32,
    /// Whether pixels are binarized, and when.
    #[serde(default)]
    pub binarize: Binarize,
    /// What training minimises.
    #[serde(default)]
    pub objective: Objective,
    /// Importance samples per image under `objective: iwae`.
    #[serde(default = "one")]
    pub k: usize,
}

fn one() -> usize {
    1
}

/// The bound a VAE is trained on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Objective {
    /// The evidence lower bound (with β, warm-up and free bits).
    #[default]
    Elbo,
    /// The importance-weighted bound with `k` samples (Burda et al. 2016), tighter for k > 1.
    Iwae,
}

impl Default for TrainConfig {
    /// The command line's defaults: 10 epochs of the built-in sample, batch 128, Adam at 1e-3,
    /// the plain ELBO on grey pixels.
    fn default() -> Self {
        TrainConfig {
            dataset: "mnist-sample".into(),
            data: DataOptions::default(),
            epochs: 10,
            batch_size: 128,
            lr: 1e-3,
            seed: 0,
            threads: 1,
            checkpoint_every: 0,
            kl_warmup: 0,
            free_bits: 0.0,
            binarize: Binarize::None,
            objective: Objective::Elbo,
            k: 1,
        }
    }
}

impl TrainConfig {
    /// Refuses settings no run can have.
    pub fn validate(&self) -> Result<()> {
        self.data.validate()?;
        ensure_in_range("epochs", self.epochs, 1..=MAX_EPOCHS)?;
        ensure_in_range("batch-size", self.batch_size, 1..=MAX_BATCH_SIZE)?;
        ensure_in_range("threads", self.threads, 1..=MAX_THREADS)?;
        ensure_in_range("kl-warmup", self.kl_warmup, 0..=MAX_EPOCHS)?;
        match self.objective {
            Objective::Iwae => ensure_in_range("k", self.k, 1..=MAX_K)?,
            Objective::Elbo if self.k != 1 => {
                return Err(Error::config("k", "applies to --objective iwae only"));
            }
            Objective::Elbo => {}
        }
        if self.objective == Objective::Iwae && self.free_bits > 0.0 {
            return Err(Error::config(
                "free-bits",
                "applies to the ELBO only, not to --objective iwae",
            ));
        }
        if !(self.free_bits.is_finite() && (0.0..=MAX_FREE_BITS).contains(&self.free_bits)) {
            return Err(Error::config(
                "free-bits",
                format!("must be between 0 and {MAX_FREE_BITS}, got {}", self.free_bits),
            ));
        }
        if !(self.lr.is_finite() && self.lr > 0.0 && self.lr <= MAX_LR) {
            return Err(Error::config(
                "lr",
                format!("must be a number > 0 and at most {MAX_LR}, got {}", self.lr),
            ));
        }
        Ok(())
    }
}

/// `config.json`: the model and how it was trained.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunConfig {
    pub model: ModelConfig,
    pub train: TrainConfig,
}

impl RunConfig {
    /// How to read data for this run's model: at its image size and colour, with the test
    /// share it trained with.
    pub fn data_options(&self) -> DataOptions {
        self.train.data.for_shape(self.model.image_shape())
    }

    /// How to read `dataset` for this run's model: [`RunConfig::data_options`] for the data
    /// it trained on; for other data the same size, colour and test share, but not the
    /// training data's own `--labels` and `--label-column`.
    pub fn data_options_for(&self, dataset: &str) -> DataOptions {
        let own = dataset == self.train.dataset
            || std::fs::canonicalize(dataset).is_ok_and(|p| p.display().to_string() == self.train.dataset);
        let mut options = self.data_options();
        if !own {
            (options.labels, options.label_column) = (None, None);
        }
        options
    }

    /// Refuses a model and training that cannot go together: settings that would be silently
    /// ignored, and steps too large for memory.
    pub fn validate(&self) -> Result<()> {
        self.model.validate()?;
        self.train.validate()?;
        let (model, train) = (&self.model, &self.train);
        if model.kind == ModelKind::Ae {
            // The autoencoder has no KL term: these would change nothing.
            if model.beta != 1.0 {
                return Err(Error::config(
                    "beta",
                    "an autoencoder has no KL term to weigh (vae and cvae do)",
                ));
            }
            if train.kl_warmup > 0 {
                return Err(Error::config("kl-warmup", "an autoencoder has no KL term to warm up"));
            }
            if train.free_bits > 0.0 {
                return Err(Error::config("free-bits", "an autoencoder has no KL term to floor"));
            }
        }
        if !model.recon.is_for_intensities() && train.binarize != Binarize::None {
            return Err(Error::config(
                "binarize",
                "binarizing is for intensities in [0, 1], not the Gaussian's real values",
            ));
        }
        if !model.prior.is_standard() && train.free_bits > 0.0 {
            // Free bits floor each dimension's KL, which a mixture prior does not split into.
            return Err(Error::config(
                "free-bits",
                "a learned prior's KL term does not split by dimension: free bits need --prior standard",
            ));
        }
        if train.objective == Objective::Iwae && !model.kind.is_variational() {
            return Err(Error::config(
                "objective",
                "the importance-weighted bound needs a VAE or CVAE (--kind vae|cvae)",
            ));
        }
        let field = match train.objective {
            Objective::Iwae => "batch-size x k",
            Objective::Elbo => "batch-size",
        };
        model.ensure_step_fits(field, train.batch_size.saturating_mul(train.k.max(1)))
    }
}

/// The lock a trainer holds on its run folder.
const LOCK_FILE: &str = ".lock";

/// The paths of a run folder.
#[derive(Clone, Debug)]
pub struct RunDir {
    pub root: PathBuf,
}

impl RunDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        RunDir { root: root.into() }
    }

    pub fn config(&self) -> PathBuf {
        self.root.join("config.json")
    }
    pub fn model(&self) -> PathBuf {
        self.root.join("model.safetensors")
    }
    pub fn checkpoint(&self) -> PathBuf {
        self.root.join("checkpoint.safetensors")
    }
    pub fn metrics(&self) -> PathBuf {
        self.root.join("metrics.jsonl")
    }
    pub fn samples(&self) -> PathBuf {
        self.root.join("samples.png")
    }
    pub fn reconstructions(&self) -> PathBuf {
        self.root.join("reconstructions.png")
    }
    /// A vector run's histogram of its test items' reconstruction losses.
    pub fn reconstruction_errors(&self) -> PathBuf {
        self.root.join("reconstruction-errors.png")
    }
    /// A Gaussian-likelihood run's standardisation of its inputs.
    pub fn scaler(&self) -> PathBuf {
        self.root.join("scaler.json")
    }
    fn lock_file(&self) -> PathBuf {
        self.root.join(LOCK_FILE)
    }

    /// Reads `config.json`.
    pub fn read_config(&self) -> Result<RunConfig> {
        let path = self.config();
        self.ensure_folder()?;
        let text = read_text_limited(&path, MAX_CONFIG_BYTES)?;
        let config: RunConfig = serde_json::from_str(&text).map_err(|e| Error::Run {
            path: path.clone(),
            problem: format!("invalid config: {e}"),
        })?;
        config.validate().map_err(|e| Error::Run {
            path: path.clone(),
            problem: e.to_string(),
        })?;
        Ok(config)
    }

    /// Rebuilds the trained model: `config.json` says what it is, `model.safetensors` holds
    /// its weights.
    pub fn load_model(&self) -> Result<Model> {
        let config = self.read_config()?;
        let mut model = Model::new(config.model, &mut stream_rng(0, Stream::Init))?;
        load_weights(&self.model(), model.params_mut())?;
        self.load_scaler(&mut model)?;
        Ok(model)
    }

    /// Gives a Gaussian-likelihood `model` the scaler its run was trained with.
    pub fn load_scaler(&self, model: &mut Model) -> Result<()> {
        if model.scaler.is_some() {
            model.scaler = Some(Scaler::read(&self.scaler(), model.config.pixels())?);
        }
        Ok(())
    }

    /// Writes `config.json` atomically.
    pub fn write_config(&self, config: &RunConfig) -> Result<()> {
        let json = serde_json::to_string_pretty(config).expect("a config always serialises");
        write_atomic(&self.config(), format!("{json}\n").as_bytes())
    }

    /// Refuses a run folder that is not a directory at all.
    fn ensure_folder(&self) -> Result<()> {
        if self.root.is_dir() {
            return Ok(());
        }
        Err(Error::Run {
            path: self.root.clone(),
            problem: "not a run folder (no such directory)".into(),
        })
    }

    /// Whether the folder already holds a run (its `config.json`).
    pub fn holds_run(&self) -> bool {
        fs::symlink_metadata(self.config()).is_ok()
    }

    /// Refuses to start a new run here unless the folder is absent or empty (a lock file
    /// left by a run killed at its very start does not count): a new run never mixes its
    /// files into a user's, nor replaces a trained one.
    pub fn ensure_fresh(&self) -> Result<()> {
        if self.holds_run() {
            return Err(Error::Run {
                path: self.root.clone(),
                problem: "already holds a run; pass --resume to continue it, or choose another --out".into(),
            });
        }
        let entries = match fs::read_dir(&self.root) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(Error::io(&self.root, e)),
        };
        let mut others = 0;
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(&self.root, e))?;
            others += usize::from(entry.file_name() != LOCK_FILE);
        }
        if others > 0 {
            return Err(Error::Run {
                path: self.root.clone(),
                problem: format!(
                    "is not empty ({others} entries) and holds no run: a new run needs a new or empty folder (choose another --out)"
                ),
            });
        }
        Ok(())
    }

    /// Creates the folder of a new run and takes its lock.
    pub fn create_and_lock(&self) -> Result<RunLock> {
        fs::create_dir_all(&self.root).map_err(|e| Error::io(&self.root, e))?;
        self.take_lock()
    }

    /// Takes the lock of an existing run folder: one that holds a `config.json`. Nothing is
    /// created in a folder that is not a run (`--resume typo` leaves no `typo/`).
    pub fn lock(&self) -> Result<RunLock> {
        self.ensure_folder()?;
        if !self.holds_run() {
            return Err(Error::Run {
                path: self.root.clone(),
                problem: "not a run folder (no config.json)".into(),
            });
        }
        self.take_lock()
    }

    /// Held until the guard drops; the operating system releases it if the process dies, so
    /// a killed run leaves no stale lock behind.
    fn take_lock(&self) -> Result<RunLock> {
        let path = self.lock_file();
        let file = open_own_file(&path)?;
        match file.try_lock() {
            Ok(()) => Ok(RunLock { _file: file }),
            Err(fs::TryLockError::WouldBlock) => Err(Error::Run {
                path: self.root.clone(),
                problem: "another `vae train` is using this run folder".into(),
            }),
            Err(fs::TryLockError::Error(e)) => Err(Error::io(&path, e)),
        }
    }
}

/// Holds a run folder's lock while alive.
#[derive(Debug)]
pub struct RunLock {
    _file: File,
}
