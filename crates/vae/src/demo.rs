//! `vae demo`: the whole story in one run. Trains an autoencoder and a VAE with the same body
//! at each chosen latent size, then (with `extras`) a convolutional VAE and a conditional VAE,
//! and, measuring with the digit classifier, gathers for each model the pictures
//! (reconstructions, prior samples, interpolations, latent map, manifold) and the numbers
//! (losses per epoch, completeness, continuity, FID) that [`crate::report`] lays out side by
//! side.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use serde::Serialize;

use crate::classifier::Classifier;
use crate::data::Dataset;
use crate::engine::Recon;
use crate::error::{Error, Result};
use crate::image::{encode_png, encode_png_rgb};
use crate::latent::{DatasetCodes, random_pairs};
use crate::metrics::{
    Completeness, LatentOptions, LatentReport, Reference, SampleQuality, latent_report, sample_quality,
};
use crate::model::{Arch, DEFAULT_VAMP_COMPONENTS, ModelConfig, ModelKind, PriorKind};
use crate::pictures;
use crate::rng::{Stream, seeded, stream_rng};
use crate::run::{RunConfig, RunDir, TrainConfig};
use crate::sampler::two_stage;
use crate::sampler::{FittedGmm, GmmOptions, Sampler, TwoStage, TwoStageOptions, default_components};
use crate::train::{EpochMetrics, Outcome, TrainEvent, Trainer};

/// What the demo trains.
#[derive(Clone, Debug)]
pub struct DemoOptions {
    /// Latent sizes; an AE and a VAE are trained at each.
    pub latents: Vec<usize>,
    /// Hidden widths of the MLP models (the conv VAE keeps [`ModelConfig::conv_vae`]'s).
    pub hidden: Vec<usize>,
    pub epochs: usize,
    pub batch_size: usize,
    pub seed: u64,
    /// Where the run folders go (`<runs>/ae-2`, `<runs>/vae-2`, …), replacing an earlier
    /// demo's.
    pub runs: PathBuf,
    /// Settings of the latent-space numbers.
    pub latent: LatentOptions,
    /// Also train a conv VAE and a VAE with the VampPrior (at the largest latent size) and a
    /// CVAE (latent 2).
    pub extras: bool,
}

/// Epochs of the demo's conv VAE: a conv epoch costs about eight MLP epochs here, so it gets a
/// quarter of theirs (at least 2, at most theirs) to keep the demo short.
pub fn conv_epochs(epochs: usize) -> usize {
    (epochs / 4).max(2).min(epochs)
}

/// Epochs that give about 180,000 image passes: 20 on the built-in sample, 5 on full MNIST.
pub fn default_epochs(train_images: usize) -> usize {
    (180_000usize.div_ceil(train_images.max(1))).clamp(5, 30)
}

/// What the demo reports as it goes.
#[derive(Clone, Debug)]
pub enum DemoEvent<'a> {
    /// A new stage begins.
    Stage(String),
    /// Training progress of the named model.
    Train {
        model: &'a str,
        /// The epochs this model trains for (the conv VAE gets fewer).
        epochs: usize,
        event: TrainEvent<'a>,
    },
}

/// One model's pictures (PNG bytes) and numbers.
#[derive(Clone, Debug)]
pub struct DemoModel {
    /// `ae-2`, `vae-16`, …
    pub name: String,
    pub kind: ModelKind,
    pub arch: Arch,
    /// The prior it was trained toward: N(0, I), or one learned with it.
    pub prior: PriorKind,
    pub latent: usize,
    pub epochs: usize,
    pub run: PathBuf,
    pub history: Vec<EpochMetrics>,
    pub reconstructions: Vec<u8>,
    /// Prior samples; for a CVAE, a row per class with the same codes in every row.
    pub samples: Vec<u8>,
    pub interpolations: Vec<u8>,
    pub latent_map: Vec<u8>,
    /// Latent size 2 only.
    pub manifold: Option<Vec<u8>>,
    /// The training codes' density over the prior's rings ([`pictures::code_density`]).
    pub code_density: Vec<u8>,
    pub report: LatentReport,
    /// Samples from a Gaussian mixture fitted to the training codes, and their numbers.
    pub fitted: FittedSamples,
    /// The extras' AE and VAE of the largest latent size only: samples from a second VAE
    /// trained on their codes (the two-stage VAE), and their numbers.
    pub second_stage: Option<SecondStage>,
}

/// What a second VAE trained on a model's codes makes of it ([`TwoStage`]).
#[derive(Clone, Debug, Serialize)]
pub struct SecondStage {
    pub epochs: usize,
    /// Its negative ELBO per held-out code, in nats.
    pub held_out_neg_elbo: f64,
    pub seconds: f64,
    #[serde(skip)]
    pub samples: Vec<u8>,
    pub quality: SampleQuality,
}

/// What a sampler fitted after training makes of a model: [`crate::sampler::DEFAULT_COMPONENTS`]
/// Gaussians fitted to its training codes (saved in its run folder, for `vae sample
/// --sampler gmm`), drawn from instead of the prior.
#[derive(Clone, Debug, Serialize)]
pub struct FittedSamples {
    /// Components of each mixture (one mixture, or one per class).
    pub components: usize,
    /// Mean log-likelihood per held-out code under the mixture minus under the model's prior,
    /// in nats:
    /// how much better it knows where codes lie.
    pub held_out_gain: f64,
    /// The samples picture, drawn like the prior's.
    #[serde(skip)]
    pub samples: Vec<u8>,
    pub quality: SampleQuality,
}

/// Everything the report shows.
#[derive(Clone, Debug)]
pub struct DemoResult {
    pub dataset: String,
    pub train_images: usize,
    pub test_images: usize,
    pub options: DemoOptions,
    pub classifier_accuracy: f64,
    /// The metrics on real test images: what a perfect generator would score.
    pub real: Completeness,
    pub models: Vec<DemoModel>,
    pub seconds: f64,
}

/// `report.json`: the demo's numbers, for scripts (the pictures stay in the HTML report).
#[derive(Debug, Serialize)]
pub struct DemoNumbers<'a> {
    pub dataset: &'a str,
    pub epochs: usize,
    pub classifier_accuracy: f64,
    /// The metrics on real test images.
    pub real_test_images: &'a Completeness,
    pub models: Vec<ModelNumbers<'a>>,
    pub seconds: f64,
}

/// One model's line of [`DemoNumbers`].
#[derive(Debug, Serialize)]
pub struct ModelNumbers<'a> {
    pub name: &'a str,
    pub kind: &'static str,
    pub arch: &'static str,
    pub prior: &'static str,
    pub latent: usize,
    pub epochs: usize,
    /// The last epoch's metrics.
    #[serde(rename = "final")]
    pub last_epoch: Option<&'a EpochMetrics>,
    pub latent_space: &'a LatentReport,
    pub fitted_sampler: &'a FittedSamples,
    pub second_stage: Option<&'a SecondStage>,
}

impl DemoResult {
    /// The numbers of the demo, as `report.json` holds them.
    pub fn numbers(&self) -> DemoNumbers<'_> {
        DemoNumbers {
            dataset: &self.dataset,
            epochs: self.options.epochs,
            classifier_accuracy: self.classifier_accuracy,
            real_test_images: &self.real,
            models: self
                .models
                .iter()
                .map(|m| ModelNumbers {
                    name: &m.name,
                    kind: m.kind.name(),
                    arch: m.arch.name(),
                    prior: m.prior.name(),
                    latent: m.latent,
                    epochs: m.epochs,
                    last_epoch: m.history.last(),
                    latent_space: &m.report,
                    fitted_sampler: &m.fitted,
                    second_stage: m.second_stage.as_ref(),
                })
                .collect(),
            seconds: self.seconds,
        }
    }
}

/// Interpolation pairs shown per model (the same pairs for every model).
const SHOWN_PAIRS: usize = 6;
/// Steps of a shown interpolation.
const SHOWN_STEPS: usize = 10;

/// Runs the demo on `data`, measuring with `classifier` (trained on `data`).
pub fn run(
    data: &Dataset,
    options: &DemoOptions,
    classifier: &Classifier,
    stop: &AtomicBool,
    on_event: &mut dyn FnMut(DemoEvent),
) -> Result<DemoResult> {
    let started = Instant::now();
    if options.latents.is_empty() {
        return Err(Error::config("latent", "the demo needs at least one latent size"));
    }
    // What every model is compared with: measured once.
    let reference = Reference::new(classifier, data, options.latent.samples);

    let mlp = |model: ModelKind, latent: usize| ModelConfig {
        kind: model,
        hidden: options.hidden.clone(),
        latent,
        recon: Recon::Bce,
        ..ModelConfig::mlp_vae()
    };
    let mut plan = Vec::new();
    for &latent in &options.latents {
        for kind in [ModelKind::Ae, ModelKind::Vae] {
            plan.push((format!("{}-{latent}", kind.name()), mlp(kind, latent), options.epochs));
        }
    }
    if options.extras {
        let latent = options.latents.iter().copied().max().unwrap_or(2);
        let conv = ModelConfig {
            latent,
            ..ModelConfig::conv_vae()
        };
        // The conv body mirrors square images only.
        let shape = data.shape();
        if shape.height == shape.width {
            plan.push((format!("conv-vae-{latent}"), conv, conv_epochs(options.epochs)));
        }
        let vamp = ModelConfig {
            prior: PriorKind::Vamp,
            prior_components: DEFAULT_VAMP_COMPONENTS,
            ..mlp(ModelKind::Vae, latent)
        };
        plan.push((format!("vamp-vae-{latent}"), vamp, options.epochs));
        let cvae = ModelConfig {
            classes: data.classes(),
            ..mlp(ModelKind::Cvae, 2)
        };
        plan.push(("cvae-2".to_string(), cvae, options.epochs));
    }
    let mut models = Vec::new();
    for (name, model, epochs) in plan {
        on_event(DemoEvent::Stage(format!(
            "training {name}: {} with latent size {}",
            describe(&model),
            model.latent
        )));
        let run = RunDir::new(options.runs.join(&name));
        let mut config = RunConfig {
            model,
            train: TrainConfig {
                dataset: data.name.clone(),
                epochs,
                batch_size: options.batch_size,
                seed: options.seed,
                threads: crate::engine::threads(),
                ..TrainConfig::default()
            },
        };
        // Each model is sized to the data's images (and a CVAE to its classes).
        config.fit_to(data)?;
        // The demo owns the folders it names: an earlier demo's run there is replaced.
        if run.checkpoint().exists() || run.config().exists() {
            std::fs::remove_dir_all(&run.root).map_err(|e| Error::io(&run.root, e))?;
        }
        let _lock = run.create_and_lock()?;
        let mut trainer = Trainer::new(run.clone(), config)?;
        let outcome = trainer.train(data, stop, &mut |event| {
            on_event(DemoEvent::Train {
                model: &name,
                epochs,
                event,
            })
        })?;
        if let Outcome::Interrupted { .. } = outcome {
            return Err(Error::Run {
                path: run.root.clone(),
                problem: "the demo was interrupted".into(),
            });
        }
        on_event(DemoEvent::Stage(format!("measuring {name}")));
        models.push(look_at(&name, &trainer, &run, data, classifier, &reference, options)?);
    }
    Ok(DemoResult {
        dataset: data.name.clone(),
        train_images: data.train.len(),
        test_images: data.test.len(),
        options: options.clone(),
        classifier_accuracy: classifier.config.test_accuracy,
        real: reference.completeness_of_test_images.clone(),
        models,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// "AE", "VAE", "conv VAE", "CVAE", …: short enough for a picture's title.
pub fn short_name(config: &ModelConfig) -> String {
    let body = match config.arch {
        Arch::Mlp => "",
        Arch::Conv => "conv ",
    };
    format!("{body}{}", config.kind.name().to_uppercase())
}

/// "convolutional variational autoencoder", "plain autoencoder", …
pub fn describe(config: &ModelConfig) -> String {
    let body = match config.arch {
        Arch::Mlp => "",
        Arch::Conv => "convolutional ",
    };
    let kind = match config.kind {
        ModelKind::Ae => "plain autoencoder",
        ModelKind::Vae => "variational autoencoder",
        ModelKind::Cvae => "conditional variational autoencoder",
    };
    let prior = match config.prior {
        PriorKind::Standard => String::new(),
        PriorKind::Mog => format!(" with a learned mixture prior of {} Gaussians", config.prior_components),
        PriorKind::Vamp => format!(" with the VampPrior ({} pseudo-inputs)", config.prior_components),
    };
    format!("{body}{kind}{prior}")
}

/// The pictures and numbers of one trained model.
fn look_at(
    name: &str,
    trainer: &Trainer,
    run: &RunDir,
    data: &Dataset,
    classifier: &Classifier,
    reference: &Reference,
    options: &DemoOptions,
) -> Result<DemoModel> {
    let model = &trainer.model;
    let kind = model.config.kind;
    let latent = model.config.latent;
    let test = &data.test;
    // The same inputs, prior draws and pairs for every model, so they compare picture by picture.
    let reconstructions = encode_png(&pictures::run_reconstructions(model, test)?)?;
    let mut rng = stream_rng(options.seed, Stream::Samples);
    // The prior's density, worked out once (the VampPrior's by encoding its pseudo-inputs).
    let prior = Sampler::prior_of(model);
    let samples = encode_png(&pictures::run_samples(model, &prior, &mut rng)?)?;
    let pairs = random_pairs(SHOWN_PAIRS, test.len(), &mut seeded(options.seed));
    let interpolations = encode_png(&pictures::interpolations(model, test, &pairs, SHOWN_STEPS, false)?)?;
    let title = format!("{} ({}, latent {latent})", name, short_name(&model.config));
    let latent_map = encode_png_rgb(&pictures::latent_map(model, test, &data.class_names, title.clone())?)?;
    let manifold = if latent == 2 {
        Some(encode_png(&pictures::manifold(model, test, 20, None)?)?)
    } else {
        None
    };
    // The training and test codes, encoded once for the density, the fit and both coverages.
    let codes = DatasetCodes::new(model, data)?;
    let code_density = encode_png_rgb(&pictures::code_density(model, &codes.train, title))?;
    let look = Look {
        model,
        run,
        data,
        codes: &codes,
        classifier,
        reference,
        options,
    };
    let fitted = look.fit_sampler()?;
    let largest = options.latents.iter().copied().max().unwrap_or(latent);
    let two_stage = options.extras
        && kind != ModelKind::Cvae
        && model.config.arch == Arch::Mlp
        && model.config.prior == PriorKind::Standard
        && latent == largest;
    let second_stage = match two_stage {
        true => Some(look.second_stage()?),
        false => None,
    };
    Ok(DemoModel {
        name: name.to_string(),
        kind,
        arch: model.config.arch,
        prior: model.config.prior,
        latent,
        epochs: trainer.config.train.epochs,
        run: run.root.clone(),
        history: trainer.state.history.clone(),
        reconstructions,
        samples,
        interpolations,
        latent_map,
        manifold,
        code_density,
        fitted,
        second_stage,
        report: latent_report(model, &prior, classifier, data, &codes, &options.latent, reference)?,
    })
}

/// What a fitted sampler of one trained model is measured with: the model, its run folder
/// and data, its codes, the classifier and the reference statistics, the demo's options.
#[derive(Clone, Copy)]
struct Look<'a> {
    model: &'a crate::model::Model,
    run: &'a RunDir,
    data: &'a Dataset,
    codes: &'a DatasetCodes,
    classifier: &'a Classifier,
    reference: &'a Reference,
    options: &'a DemoOptions,
}

impl Look<'_> {
    /// Trains a second VAE on `model`'s training codes (its default epochs, or 15 per epoch of
    /// the demo's models when that is fewer, so a short demo stays short), saves it in the run
    /// folder, and draws the same pictures and numbers from it as from the prior.
    fn second_stage(&self) -> Result<SecondStage> {
        let Look {
            model,
            run,
            data,
            options,
            ..
        } = *self;
        let held = data.train.len() / 10;
        let stage = TwoStageOptions {
            epochs: Some(two_stage::default_epochs(data.train.len() - held).min(15 * options.epochs)),
            seed: options.seed,
            ..TwoStageOptions::default()
        };
        let fitted = TwoStage::fit(run, model, &data.train, &stage, &mut |_, _| {})?;
        let (epochs, held_out_neg_elbo, seconds) = (
            fitted.record.options.epochs.unwrap_or(0),
            fitted.record.held_out_neg_elbo,
            fitted.record.seconds,
        );
        let (samples, quality) = self.picture_and_quality(&Sampler::TwoStage(Box::new(fitted)))?;
        Ok(SecondStage {
            epochs,
            held_out_neg_elbo,
            seconds,
            samples,
            quality,
        })
    }

    /// The samples picture of `sampler` (drawn like the prior's) and the numbers of its draws.
    fn picture_and_quality(&self, sampler: &Sampler) -> Result<(Vec<u8>, SampleQuality)> {
        let Look {
            model,
            codes,
            classifier,
            reference,
            options,
            ..
        } = *self;
        let mut rng = stream_rng(options.seed, Stream::Samples);
        let samples = encode_png(&pictures::run_samples(model, sampler, &mut rng)?)?;
        let quality = sample_quality(
            model,
            sampler,
            classifier,
            codes,
            options.latent.samples,
            options.latent.seed,
            reference,
        )?;
        Ok((samples, quality))
    }

    /// Fits the default mixture to `model`'s training codes, saves it in the run folder, and
    /// draws the same pictures and numbers from it as from the prior.
    fn fit_sampler(&self) -> Result<FittedSamples> {
        let Look {
            model,
            run,
            data,
            codes,
            options,
            ..
        } = *self;
        // A class with fewer training codes than the default components (a folder's small
        // category) gets as many components as it has codes: the fit stays possible.
        let smallest = match model.conditioning().classes() {
            Some(classes) => (0..classes as u8)
                .map(|c| data.train.labels.iter().filter(|&&l| l == c).count())
                .min()
                .unwrap_or(0),
            None => data.train.len(),
        };
        let gmm = GmmOptions {
            components: default_components(model.conditioning()).min(smallest).max(1),
            ..GmmOptions::default()
        };
        let fitted = FittedGmm::fit_codes(model, &codes.train, &data.train.labels, &data.name, &gmm, options.seed)?;
        fitted.save(run, model)?;
        let gains: Vec<f64> = fitted
            .report
            .groups
            .iter()
            .filter_map(|g| Some(g.held_out_log_likelihood? - g.held_out_prior_log_likelihood?))
            .collect();
        let (samples, quality) = self.picture_and_quality(&Sampler::Gmm(fitted))?;
        Ok(FittedSamples {
            components: gmm.components,
            held_out_gain: gains.iter().sum::<f64>() / gains.len().max(1) as f64,
            samples,
            quality,
        })
    }
}
