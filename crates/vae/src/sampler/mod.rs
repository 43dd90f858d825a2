//! Where new codes come from. A VAE is sampled by drawing codes from its prior `N(0, I)`, but
//! the codes its training images map to (the aggregate posterior `q(z) = E_x q(z|x)`) do not
//! fill that prior: there are regions of high prior density that no image reaches ("holes"),
//! and codes drawn there decode to blends. A *fitted sampler* is a density fitted, after
//! training, to the codes the training images actually have, and drawn from instead of the
//! prior (Ghosh et al. 2020; Dai & Wipf 2019). It also makes a plain autoencoder samplable,
//! which has no prior at all.
//!
//! ```text
//! RUN/sampler-gmm.safetensors   the fitted mixture(s), tied to RUN/model.safetensors
//! RUN/sampler-gmm.json          how it was fitted, and its held-out log-likelihood
//! RUN/sampler-two-stage/        a second VAE trained on the codes (see [`two_stage`])
//! ```

mod file;
pub mod gmm;
pub mod two_stage;

pub use gmm::{GaussianMixture, GmmFit, GmmOptions};
pub use two_stage::{TwoStage, TwoStageOptions};

use std::time::Instant;

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::data::Split;
use crate::engine::Matrix;
use crate::error::{Error, Result};
use crate::latent::split_codes;
use crate::model::{Conditioning, Model, PriorDensity};
use crate::rng::{permutation, seeded};
use crate::run::RunDir;

/// Components in all of a fitted mixture unless asked otherwise: 50 Gaussians for one
/// mixture, shared out over a CVAE's classes (5 each for 10 classes). On the built-in sample
/// at latent 16 these gave the best held-out log-likelihood of the counts tried (10, 50 for
/// one mixture; 5, 20 per class), and more components fit the training codes more closely
/// than held-out ones.
pub const DEFAULT_COMPONENTS: usize = 50;

/// The components of each mixture a model's sampler gets by default ([`DEFAULT_COMPONENTS`]
/// shared out over its classes).
pub fn default_components(conditioning: Conditioning) -> usize {
    (DEFAULT_COMPONENTS / conditioning.classes().unwrap_or(1)).max(1)
}

/// Share of each group's codes held out of the fit, to measure it on codes it has not seen.
pub const HELD_OUT_FRACTION: f64 = 0.1;

/// Which sampler to draw codes from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SamplerKind {
    /// The model's own prior, `N(0, I)`.
    #[default]
    Prior,
    /// A Gaussian mixture with full covariances fitted to the training codes
    /// (`vae fit-sampler RUN --kind gmm`).
    Gmm,
    /// A second VAE trained on the training codes (`vae fit-sampler RUN --kind two-stage`).
    #[serde(rename = "two-stage")]
    TwoStage,
}

impl SamplerKind {
    /// The word on the command line.
    pub fn name(self) -> &'static str {
        match self {
            SamplerKind::Prior => "prior",
            SamplerKind::Gmm => "gmm",
            SamplerKind::TwoStage => "two-stage",
        }
    }
}

/// A source of codes to decode.
#[derive(Clone, Debug)]
pub enum Sampler {
    /// The model's prior: its density and its name.
    Prior {
        prior: PriorDensity,
        name: String,
        latent: usize,
    },
    /// A fitted Gaussian mixture.
    Gmm(FittedGmm),
    /// A second VAE on the codes.
    TwoStage(Box<TwoStage>),
}

impl Sampler {
    /// The prior of `model`.
    pub fn prior_of(model: &Model) -> Sampler {
        Sampler::Prior {
            prior: model.prior_density(),
            name: model.prior.name(),
            latent: model.config.latent,
        }
    }

    /// The sampler of `kind` for `model`, the run in `run`: its prior, or the fitted sampler
    /// saved in the run folder.
    ///
    /// # Errors
    /// No fitted sampler of that kind in the folder, or one that does not belong to this
    /// run's weights.
    pub fn load(run: &RunDir, kind: SamplerKind, model: &Model) -> Result<Sampler> {
        match kind {
            SamplerKind::Prior => Ok(Sampler::prior_of(model)),
            SamplerKind::Gmm => Ok(Sampler::Gmm(file::load(run, model)?)),
            SamplerKind::TwoStage => Ok(Sampler::TwoStage(Box::new(TwoStage::load(run, model)?))),
        }
    }

    pub fn kind(&self) -> SamplerKind {
        match self {
            Sampler::Prior { .. } => SamplerKind::Prior,
            Sampler::Gmm(_) => SamplerKind::Gmm,
            Sampler::TwoStage(_) => SamplerKind::TwoStage,
        }
    }

    /// What the codes are drawn from, in words, for reports and titles.
    pub fn describe(&self) -> String {
        match self {
            Sampler::Prior { name, .. } => format!("the prior {name}"),
            Sampler::Gmm(g) => g.describe(),
            Sampler::TwoStage(t) => format!(
                "a second VAE (latent {}) trained on the training {}",
                t.model.config.latent, t.record.codes
            ),
        }
    }

    /// Whether the draws depend on the label asked for (a mixture fitted per class of a CVAE).
    pub fn per_class(&self) -> bool {
        match self {
            Sampler::Gmm(g) => g.mixtures.len() > 1,
            Sampler::TwoStage(t) => t.model.conditioning().classes().is_some(),
            Sampler::Prior { .. } => false,
        }
    }

    /// `n` codes at temperature `T` (which scales the spread of the prior or of each mixture
    /// component). `labels` (n of them) are the classes asked for: a sampler fitted per class
    /// draws each code from its class's mixture, the others ignore them.
    ///
    /// # Shapes
    /// Returns n x latent.
    ///
    /// # Errors
    /// A per-class sampler given no labels, or a label it has no mixture for.
    pub fn draw(&self, n: usize, labels: Option<&[u8]>, temperature: f32, rng: &mut impl Rng) -> Result<Matrix> {
        match self {
            Sampler::Prior { prior, latent, .. } => Ok(prior.sample(n, *latent, temperature, rng)),
            Sampler::Gmm(g) => g.draw(n, labels, temperature, rng),
            Sampler::TwoStage(t) => t.draw(n, labels, temperature, rng),
        }
    }
}

/// Gaussian mixtures fitted to a run's training codes: one, or for a CVAE one per class (the
/// codes of class `y` approximate `q(z|y)`, so a label asked for gets codes that go with it).
#[derive(Clone, Debug)]
pub struct FittedGmm {
    pub mixtures: Vec<GaussianMixture>,
    pub report: GmmReport,
}

/// How a [`FittedGmm`] was fitted and how well it describes held-out codes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GmmReport {
    pub options: GmmOptions,
    pub seed: u64,
    /// The dataset whose training split gave the codes.
    pub dataset: String,
    /// What a code is here ("posterior means", "codes").
    pub codes: String,
    pub held_out_fraction: f64,
    /// One per mixture, in class order.
    pub groups: Vec<GroupFit>,
    pub seconds: f64,
}

/// One mixture's fit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GroupFit {
    /// The class it was fitted to (CVAE), or none.
    pub label: Option<u8>,
    pub fit: GmmFit,
    pub held_out_codes: usize,
    /// Mean log-likelihood per held-out code under the mixture, in nats.
    pub held_out_log_likelihood: Option<f64>,
    /// The same under the model's prior: how much better the mixture knows where codes lie.
    pub held_out_prior_log_likelihood: Option<f64>,
}

impl FittedGmm {
    /// Fits the mixtures to the codes of `train` (the posterior means for a VAE, the codes
    /// for an autoencoder; a CVAE's per class, encoded with their labels), holding out
    /// [`HELD_OUT_FRACTION`] of each group, all draws from `seed`.
    ///
    /// # Errors
    /// A group with fewer codes than components (named by class), options out of range, or
    /// a code too wide for full covariances.
    pub fn fit(model: &Model, train: &Split, dataset: &str, options: &GmmOptions, seed: u64) -> Result<Self> {
        options.validate()?;
        Self::fit_codes(
            model,
            &split_codes(model, train)?,
            &train.labels,
            dataset,
            options,
            seed,
        )
    }

    /// [`FittedGmm::fit`] to codes already encoded: `codes` (one row per training image) and
    /// the images' `labels`.
    ///
    /// # Errors
    /// As [`FittedGmm::fit`].
    pub fn fit_codes(
        model: &Model,
        codes: &Matrix,
        labels: &[u8],
        dataset: &str,
        options: &GmmOptions,
        seed: u64,
    ) -> Result<Self> {
        options.validate()?;
        let started = Instant::now();
        let groups: Vec<(Option<u8>, Vec<usize>)> = match model.conditioning() {
            Conditioning::Unconditional => vec![(None, (0..codes.rows).collect())],
            Conditioning::Label { classes } => (0..classes as u8)
                .map(|c| (Some(c), (0..codes.rows).filter(|&i| labels[i] == c).collect()))
                .collect(),
        };
        let mut rng = seeded(seed);
        let (mut mixtures, mut fits) = (Vec::new(), Vec::new());
        let prior = model.prior_density();
        for (label, indices) in groups {
            let order = permutation(indices.len(), &mut rng);
            let held = held_out_count(indices.len(), options.components);
            let pick = |range: &[usize]| {
                let data = range.iter().flat_map(|&o| codes.row(indices[o]).to_vec()).collect();
                Matrix::from_vec(range.len(), codes.cols, data)
            };
            let (fit_codes, held_codes) = (pick(&order[held..]), pick(&order[..held]));
            let (mixture, fit) = GaussianMixture::fit(&fit_codes, options, &mut rng).map_err(|e| match label {
                Some(c) => Error::config("components", format!("class {c}: {e}")),
                None => e,
            })?;
            let prior_ll = (held > 0).then(|| prior.log_densities(&held_codes).iter().sum::<f64>() / held as f64);
            fits.push(GroupFit {
                label,
                fit,
                held_out_codes: held,
                held_out_log_likelihood: (held > 0).then(|| mixture.mean_log_likelihood(&held_codes)),
                held_out_prior_log_likelihood: prior_ll,
            });
            mixtures.push(mixture);
        }
        Ok(FittedGmm {
            mixtures,
            report: GmmReport {
                options: options.clone(),
                seed,
                dataset: dataset.to_string(),
                codes: model.encoder.head.code_name().to_string(),
                held_out_fraction: HELD_OUT_FRACTION,
                groups: fits,
                seconds: started.elapsed().as_secs_f64(),
            },
        })
    }

    /// Writes the mixtures and their report into the run folder, tied to its weights.
    pub fn save(&self, run: &RunDir, model: &Model) -> Result<()> {
        file::save(run, model, self)
    }

    fn describe(&self) -> String {
        let k = self.report.options.components;
        match self.mixtures.len() {
            1 => format!(
                "a Gaussian mixture of {k} components fitted to the training {}",
                self.report.codes
            ),
            n => format!(
                "a Gaussian mixture per class ({n} classes, {k} components each) fitted to the training {}",
                self.report.codes
            ),
        }
    }

    fn draw(&self, n: usize, labels: Option<&[u8]>, temperature: f32, rng: &mut impl Rng) -> Result<Matrix> {
        if let [mixture] = self.mixtures.as_slice() {
            return Ok(mixture.sample(n, temperature, rng));
        }
        let Some(labels) = labels.filter(|l| l.len() == n) else {
            return Err(Error::config(
                "label",
                "a sampler fitted per class needs the class of every draw",
            ));
        };
        if let Some(&label) = labels.iter().find(|&&l| l as usize >= self.mixtures.len()) {
            return Err(Error::config(
                "label",
                format!("{label} has no fitted mixture (there are {})", self.mixtures.len()),
            ));
        }
        let mut z = Matrix::standard_normal(n, self.mixtures[0].dim(), rng);
        for (class, mixture) in self.mixtures.iter().enumerate() {
            let rows = (0..n).filter(|&r| labels[r] as usize == class);
            mixture.place_rows(&mut z, rows, temperature, rng);
        }
        Ok(z)
    }
}

/// Codes held out of a group of `n`: [`HELD_OUT_FRACTION`] of them, fewer when the fit would
/// otherwise have fewer codes than `components`.
fn held_out_count(n: usize, components: usize) -> usize {
    ((n as f64 * HELD_OUT_FRACTION) as usize).min(n.saturating_sub(components))
}
