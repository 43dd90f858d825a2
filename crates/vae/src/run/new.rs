//! A new run as a user asks for it, in the command line's terms: what they leave out gets the
//! library's defaults, a flag that would change nothing is refused rather than ignored, and
//! the result is one checked [`RunConfig`] and the folder it goes to by default.

use std::path::PathBuf;

use super::{Objective, RunConfig, TrainConfig};
use crate::data::{Binarize, DataOptions, Dataset, DatasetSpec, Values};
use crate::engine::Recon;
use crate::error::{Error, Result};
use crate::model::{Arch, ModelConfig, ModelKind, PriorKind};

/// Epochs of a new run unless asked otherwise.
pub const DEFAULT_EPOCHS: usize = 10;
/// Importance samples per image under the importance-weighted objective unless asked otherwise.
pub const DEFAULT_K: usize = 5;

/// What a user asks of a new run; `None` leaves a setting to its default.
#[derive(Clone, Debug)]
pub struct NewRun {
    pub kind: ModelKind,
    pub arch: Arch,
    /// Conv: output channels of the encoder's convolutions (default: the conv body's 32, 64).
    pub channels: Option<Vec<usize>>,
    /// Dense hidden widths (default: the body's, 400 for mlp and 256 for conv).
    pub hidden: Option<Vec<usize>>,
    pub latent: usize,
    pub recon: Recon,
    pub prior: PriorKind,
    /// A learned prior's components (default: [`PriorKind::default_components`]).
    pub prior_components: Option<usize>,
    /// The KL weight of a VAE or CVAE (default 1).
    pub beta: Option<f32>,
    /// A dataset's name, or a folder of IDX files or of images.
    pub dataset: String,
    /// How the dataset is read.
    pub data: DataOptions,
    pub epochs: Option<usize>,
    pub batch_size: usize,
    pub lr: f32,
    pub seed: u64,
    pub threads: usize,
    pub checkpoint_every: usize,
    pub kl_warmup: usize,
    pub free_bits: f32,
    pub objective: Objective,
    /// Importance samples under `objective: iwae` (default [`DEFAULT_K`]).
    pub k: Option<usize>,
    pub binarize: Binarize,
}

impl Default for NewRun {
    /// The classic MLP VAE of Kingma & Welling on the built-in sample (the command line's
    /// defaults).
    fn default() -> Self {
        let train = TrainConfig::default();
        NewRun {
            kind: ModelKind::Vae,
            arch: Arch::Mlp,
            channels: None,
            hidden: None,
            latent: ModelConfig::mlp_vae().latent,
            recon: Recon::Bce,
            prior: PriorKind::Standard,
            prior_components: None,
            beta: None,
            dataset: train.dataset,
            data: train.data,
            epochs: None,
            batch_size: train.batch_size,
            lr: train.lr,
            seed: train.seed,
            threads: train.threads,
            checkpoint_every: train.checkpoint_every,
            kl_warmup: train.kl_warmup,
            free_bits: train.free_bits,
            objective: train.objective,
            k: None,
            binarize: train.binarize,
        }
    }
}

impl NewRun {
    /// The run's configuration, checked as a whole before any work (or download) starts. A
    /// dataset folder is kept as an absolute path, so the run can be resumed and evaluated
    /// from anywhere. A CVAE counts the ten classes of every dataset this tool names until
    /// [`RunConfig::fit_to`] sees the data.
    pub fn config(&self) -> Result<RunConfig> {
        if self.arch != Arch::Conv && self.channels.is_some() {
            return Err(Error::config(
                "--channels",
                "only a conv body has channels (add --arch conv)",
            ));
        }
        if self.beta.is_some() && !self.kind.is_variational() {
            return Err(Error::config(
                "--beta",
                "an autoencoder has no KL term to weigh (use --kind vae or cvae)",
            ));
        }
        if self.k.is_some() && self.objective != Objective::Iwae {
            return Err(Error::config(
                "--k",
                "the number of importance samples applies to --objective iwae only",
            ));
        }
        let model = ModelConfig {
            kind: self.kind,
            latent: self.latent,
            recon: self.recon,
            beta: self.beta.unwrap_or(1.0),
            classes: if self.kind.is_conditional() { 10 } else { 0 },
            prior: self.prior,
            prior_components: self.prior_components.unwrap_or(self.prior.default_components()),
            ..ModelConfig::for_body(self.arch, self.channels.clone(), self.hidden.clone())
        };
        // Paths are kept absolute: the run is resumed and evaluated from anywhere.
        let absolute = |path: &std::path::Path| std::fs::canonicalize(path).map_err(|e| Error::io(path, e));
        let dataset = match self.dataset.parse::<DatasetSpec>()? {
            DatasetSpec::Dir(path) | DatasetSpec::File(path) => absolute(&path)?.display().to_string(),
            DatasetSpec::Named(name) => name.to_string(),
        };
        let mut data = self.data.clone();
        if let Some(labels) = &data.labels {
            data.labels = Some(absolute(labels)?);
        }
        let train = TrainConfig {
            dataset,
            data,
            epochs: self.epochs.unwrap_or(DEFAULT_EPOCHS),
            batch_size: self.batch_size,
            lr: self.lr,
            seed: self.seed,
            threads: self.threads,
            checkpoint_every: self.checkpoint_every,
            kl_warmup: self.kl_warmup,
            free_bits: self.free_bits,
            objective: self.objective,
            k: match self.objective {
                Objective::Iwae => self.k.unwrap_or(DEFAULT_K),
                Objective::Elbo => 1,
            },
            binarize: self.binarize,
        };
        let config = RunConfig { model, train };
        config.validate()?;
        Ok(config)
    }

    /// Where the run goes unless told: `runs/MODEL-DATASET`, the dataset's last path
    /// component as the user wrote it.
    pub fn default_folder(&self) -> PathBuf {
        let word = self.dataset.trim_end_matches('/').rsplit('/').next().unwrap_or("data");
        PathBuf::from(format!("runs/{}-{word}", self.kind.name()))
    }
}

impl RunConfig {
    /// Fits the model to the loaded data: its images' size and colour, and for a CVAE as
    /// many classes as its labels name. Refuses a CVAE on unlabelled data, and a model the
    /// data's images make impossible (a conv body on images that are not square).
    pub fn fit_to(&mut self, data: &Dataset) -> Result<()> {
        if self.model.kind.is_conditional() {
            if !data.labelled {
                return Err(Error::config(
                    "kind",
                    format!("a cvae needs labels, and {} has none (no class sub-folders)", data.name),
                ));
            }
            self.model.classes = data.classes();
        }
        // BCE and MSE model values in [0, 1] (pixel intensities); bytes always are.
        if self.model.recon.is_for_intensities()
            && let Some(v) = Values::summary([&data.train.images.values, &data.test.images.values])
            && !v.in_unit_interval()
        {
            return Err(Error::config(
                "recon",
                format!(
                    "{}'s values run from {} to {}, and --recon {} models values in [0, 1]: use --recon gaussian, or scale them to [0, 1]",
                    data.name,
                    v.min as f32,
                    v.max as f32,
                    self.model.recon.name()
                ),
            ));
        }
        self.model.fit_image_shape(data.shape());
        self.validate()
    }
}
