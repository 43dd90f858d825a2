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

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::data::Binarize;
use crate::error::{Error, Result};
use crate::model::{MNIST_SIDE, ModelConfig};

/// Writes `bytes` to `path` so that `path` holds either its old content or the new, never a
/// mix: write `path.tmp`, flush it to disk, rename over `path`, then sync the directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(".tmp");
    let tmp = path.with_file_name(tmp_name);
    let result = (|| {
        let mut file = File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, path)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            // Makes the rename itself durable; not all file systems allow opening a directory.
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    })();
    result.map_err(|e| {
        let _ = fs::remove_file(&tmp);
        Error::io(path, e)
    })
}

/// How a run trains: every setting that is not the model itself.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// A dataset name (`mnist-sample`, `mnist`, `fashion-mnist`) or a directory.
    pub dataset: String,
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
    pub objective: TrainObjective,
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
pub enum TrainObjective {
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
            epochs: 10,
            batch_size: 128,
            lr: 1e-3,
            seed: 0,
            threads: 1,
            checkpoint_every: 0,
            kl_warmup: 0,
            free_bits: 0.0,
            binarize: Binarize::None,
            objective: TrainObjective::Elbo,
            k: 1,
        }
    }
}

impl TrainConfig {
    /// Refuses settings no run can have.
    pub fn validate(&self) -> Result<()> {
        if self.epochs == 0 {
            return Err(Error::config("epochs", "must be at least 1"));
        }
        if self.batch_size == 0 {
            return Err(Error::config("batch-size", "must be at least 1"));
        }
        if self.objective == TrainObjective::Iwae && self.k == 0 {
            return Err(Error::config("k", "must be at least 1"));
        }
        if self.objective == TrainObjective::Iwae && self.free_bits > 0.0 {
            return Err(Error::config(
                "free-bits",
                "applies to the ELBO only, not to --objective iwae",
            ));
        }
        if !(self.free_bits.is_finite() && self.free_bits >= 0.0) {
            return Err(Error::config(
                "free-bits",
                format!("must be a finite number >= 0, got {}", self.free_bits),
            ));
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(Error::config(
                "lr",
                format!("must be a finite number > 0, got {}", self.lr),
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
    fn lock_file(&self) -> PathBuf {
        self.root.join(".lock")
    }

    /// Reads `config.json`.
    pub fn read_config(&self) -> Result<RunConfig> {
        let path = self.config();
        if !self.root.is_dir() {
            return Err(Error::Run {
                path: self.root.clone(),
                problem: "not a run folder (no such directory)".into(),
            });
        }
        let text = fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        let config: RunConfig = serde_json::from_str(&text).map_err(|e| Error::Run {
            path: path.clone(),
            problem: format!("invalid config: {e}"),
        })?;
        let side = (config.model.image_height, config.model.image_width);
        if side != (MNIST_SIDE, MNIST_SIDE) {
            return Err(Error::Run {
                path,
                problem: format!(
                    "images of {}x{}: this tool works on {MNIST_SIDE}x{MNIST_SIDE}",
                    side.0, side.1
                ),
            });
        }
        config.model.validate().map_err(|e| Error::Run {
            path: path.clone(),
            problem: e.to_string(),
        })?;
        Ok(config)
    }

    /// Writes `config.json` atomically.
    pub fn write_config(&self, config: &RunConfig) -> Result<()> {
        let json = serde_json::to_string_pretty(config).expect("a config always serialises");
        write_atomic(&self.config(), format!("{json}\n").as_bytes())
    }

    /// Takes the folder's lock, creating the folder if needed. Held until the guard drops;
    /// the operating system releases it if the process dies, so a killed run leaves no stale
    /// lock behind.
    pub fn lock(&self) -> Result<RunLock> {
        fs::create_dir_all(&self.root).map_err(|e| Error::io(&self.root, e))?;
        let path = self.lock_file();
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
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
