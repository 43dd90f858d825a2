//! Numbers for what a regular latent space means, measured with the digit classifier:
//!
//! - **completeness**: do codes drawn from the prior decode to things that look like digits?
//!   The share of decoded prior samples the classifier labels with confidence >= 0.9, and
//!   the entropy of the predicted labels (a complete, balanced space covers every class).
//! - **continuity**: do close codes decode to close images? Along straight paths between the
//!   codes of test images, the size of each step between decoded frames relative to the
//!   distance between the decoded endpoints (a smooth path has no jumps), and how often the
//!   predicted label flips back and forth.
//! - **sample quality**: the Fréchet distance between classifier features of decoded prior
//!   samples and of the test set (a digit-specific FID), with the train-vs-test distance as
//!   the floor any model can hope for.
//! - **coverage**: where the drawn codes land relative to the training codes, before
//!   decoding ([`crate::holes`]).
//!
//! The samples are drawn from a [`Sampler`]: the model's prior, or one fitted to its codes.

use nalgebra::SymmetricEigen;
use rand::{Rng, RngExt};
use serde::Serialize;

use crate::classifier::{CLASSES, Classifier, argmax};
use crate::data::Dataset;
use crate::engine::Matrix;
use crate::error::{Result, ensure_in_range};
use crate::holes::{Coverage, coverage};
use crate::latent::{DatasetCodes, blended_condition, encode_codes, interpolate, mean_and_covariance, random_pairs};
use crate::model::Model;
use crate::rng::{RunRng, seeded};
use crate::sampler::Sampler;

/// A decoded image counts as a recognisable digit when the classifier is at least this sure.
pub const CONFIDENCE: f32 = 0.9;

/// How recognisable and how varied a set of images is, to the classifier.
#[derive(Clone, Debug, Serialize)]
pub struct Completeness {
    pub images: usize,
    /// Share of images classified with probability >= [`CONFIDENCE`].
    pub confident_share: f64,
    /// Entropy of the histogram of predicted labels, in bits (at most log2 10 = 3.32).
    pub label_entropy_bits: f64,
    /// How many images got each label.
    pub label_histogram: Vec<usize>,
}

/// Completeness of `images` (n x pixels, values in [0, 1]).
pub fn completeness(classifier: &Classifier, images: &Matrix) -> Completeness {
    let probs = classifier.probabilities(images);
    let mut histogram = vec![0usize; CLASSES];
    let mut confident = 0;
    for r in 0..probs.rows {
        let row = probs.row(r);
        let label = argmax(row);
        histogram[label] += 1;
        if row[label] >= CONFIDENCE {
            confident += 1;
        }
    }
    let n = probs.rows.max(1) as f64;
    let entropy = histogram
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / n;
            -p * p.log2()
        })
        .sum();
    Completeness {
        images: probs.rows,
        confident_share: confident as f64 / n,
        label_entropy_bits: entropy,
        label_histogram: histogram,
    }
}

/// Smoothness of decoded interpolations.
#[derive(Clone, Debug, Serialize)]
pub struct Continuity {
    pub pairs: usize,
    /// Decoded frames per path, endpoints included.
    pub frames: usize,
    /// Mean over all steps of `||frame_{k+1} - frame_k|| / ||frame_last - frame_first||`.
    pub mean_step: f64,
    /// 95th percentile of the same: large values are jumps.
    pub p95_step: f64,
    /// The step of a perfectly even straight path, `1 / (frames - 1)`: the lower bound of
    /// `mean_step`.
    pub even_step: f64,
    /// Mean number of changes of the predicted label along a path.
    pub mean_label_changes: f64,
    /// Share of paths along which the predicted label leaves a class and comes back to it.
    pub back_and_forth_share: f64,
}

/// The distance between each pair of consecutive frames of a path (one image per row) over
/// the distance between its end frames; `None` when the ends coincide (nothing to compare).
pub fn step_ratios(frames: &Matrix) -> Option<Vec<f64>> {
    let span = distance(frames.row(0), frames.row(frames.rows - 1));
    if span < 1e-6 {
        return None;
    }
    Some(
        (0..frames.rows - 1)
            .map(|k| distance(frames.row(k), frames.row(k + 1)) / span)
            .collect(),
    )
}

/// How the predicted labels along a path change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LabelFlips {
    /// Consecutive frames whose labels differ.
    pub changes: usize,
    /// Whether some label is left and later comes back.
    pub comes_back: bool,
}

/// The label changes along a path of predicted `labels`.
pub fn label_flips(labels: &[usize]) -> LabelFlips {
    let changes = labels.windows(2).filter(|w| w[0] != w[1]).count();
    let mut distinct = labels.to_vec();
    distinct.sort_unstable();
    distinct.dedup();
    LabelFlips {
        changes,
        // Runs of equal labels outnumber distinct labels exactly when some label comes back.
        comes_back: changes + 1 > distinct.len(),
    }
}

/// Continuity along `pairs` straight paths of `frames` frames between random pairs of test
/// images' codes.
pub fn continuity(
    model: &Model,
    classifier: &Classifier,
    data: &Dataset,
    pairs: usize,
    frames: usize,
    rng: &mut RunRng,
) -> Result<Continuity> {
    let test = &data.test;
    let frames = frames.max(3);
    let mut steps = Vec::new();
    let (mut changes, mut back_and_forth, mut used) = (0usize, 0usize, 0usize);
    for (i, j) in random_pairs(pairs, test.len(), rng) {
        let (yi, yj) = (test.labels[i], test.labels[j]);
        let x = test.range_batch(i, i + 1).stacked(&test.range_batch(j, j + 1));
        let codes = encode_codes(model, &x, &[yi, yj])?;
        let path = interpolate(codes.row(0), codes.row(1), frames, false);
        let images = model.decode(&path, blended_condition(model, yi, yj, frames)?.as_ref());
        let Some(ratios) = step_ratios(&images) else {
            continue;
        };
        used += 1;
        steps.extend(ratios);
        let probs = classifier.probabilities(&images);
        let labels: Vec<usize> = (0..frames).map(|r| argmax(probs.row(r))).collect();
        let flips = label_flips(&labels);
        changes += flips.changes;
        back_and_forth += usize::from(flips.comes_back);
    }
    steps.sort_by(f64::total_cmp);
    let p95 = steps
        .get(((steps.len() as f64 - 1.0) * 0.95).round().max(0.0) as usize)
        .copied()
        .unwrap_or(0.0);
    Ok(Continuity {
        pairs: used,
        frames,
        mean_step: steps.iter().sum::<f64>() / steps.len().max(1) as f64,
        p95_step: p95,
        even_step: 1.0 / (frames - 1) as f64,
        mean_label_changes: changes as f64 / used.max(1) as f64,
        back_and_forth_share: back_and_forth as f64 / used.max(1) as f64,
    })
}

fn distance(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| ((x - y) as f64).powi(2))
        .sum::<f64>()
        .sqrt()
}

/// Fréchet distance between Gaussians fitted to two sets of feature rows (Heusel et al. 2017):
///
///   `||μ₁ - μ₂||² + Tr(Σ₁ + Σ₂ - 2·(Σ₁Σ₂)^½)`,
///
/// with `Tr((Σ₁Σ₂)^½) = Σ_i sqrt(λ_i)` over the eigenvalues of the symmetric
/// `Σ₁^½ Σ₂ Σ₁^½`, which has the same spectrum and is stable to compute.
pub fn frechet_distance(a: &Matrix, b: &Matrix) -> f64 {
    assert_eq!(a.cols, b.cols, "frechet_distance: feature widths differ");
    let (mean_a, cov_a) = mean_and_covariance(a);
    let (mean_b, cov_b) = mean_and_covariance(b);
    let mean_term: f64 = mean_a.iter().zip(&mean_b).map(|(x, y)| (x - y).powi(2)).sum();
    let eigen = SymmetricEigen::new(cov_a.clone());
    let roots = eigen.eigenvalues.map(|v| v.max(0.0).sqrt());
    let sqrt_a = &eigen.eigenvectors * nalgebra::DMatrix::from_diagonal(&roots) * eigen.eigenvectors.transpose();
    let middle = &sqrt_a * &cov_b * &sqrt_a;
    let middle = (&middle + middle.transpose()) * 0.5;
    let cross: f64 = SymmetricEigen::new(middle)
        .eigenvalues
        .iter()
        .map(|v| v.max(0.0).sqrt())
        .sum();
    (mean_term + cov_a.trace() + cov_b.trace() - 2.0 * cross).max(0.0)
}

/// How the latent-space numbers were obtained: printed with every number.
#[derive(Clone, Debug, Serialize)]
pub struct LatentProtocol {
    pub dataset: String,
    /// What the samples' codes are drawn from ([`Sampler::describe`]).
    pub sampler: String,
    /// Codes drawn for completeness, the FID and the coverage.
    pub samples: usize,
    pub interpolation_pairs: usize,
    pub interpolation_frames: usize,
    pub seed: u64,
    /// The classifier's accuracy on the dataset's test split.
    pub classifier_accuracy: f64,
}

/// Completeness, continuity and sample quality of a model's latent space.
#[derive(Clone, Debug, Serialize)]
pub struct LatentReport {
    pub protocol: LatentProtocol,
    /// Decoded samples.
    pub completeness: Completeness,
    /// The same measure on real test images: what a perfect generator would score.
    pub completeness_of_test_images: Completeness,
    pub continuity: Continuity,
    /// Fréchet distance of classifier features, decoded samples vs test images.
    pub fid: f64,
    /// The same between training and test images: the floor.
    pub fid_floor: f64,
    /// Where the samples' codes land, against the training codes.
    pub coverage: Coverage,
    /// CVAE: the share of samples the classifier labels as the class they were drawn for
    /// (labels 0, 1, … in turn).
    pub label_agreement: Option<f64>,
}

/// Settings of [`latent_report`].
#[derive(Clone, Debug)]
pub struct LatentOptions {
    pub samples: usize,
    pub pairs: usize,
    pub frames: usize,
    pub seed: u64,
}

/// Most prior samples a latent report decodes: they, and their classifier features, are held
/// at once (100,000 decoded digits are ~300 MB).
pub const MAX_PRIOR_SAMPLES: usize = 100_000;
/// Most interpolation paths a latent report walks.
pub const MAX_PAIRS: usize = 100_000;
/// Most frames along one path.
pub const MAX_FRAMES: usize = 1_000;

impl LatentOptions {
    /// Refuses counts outside their ranges (the FID needs two samples at least).
    pub fn validate(&self) -> Result<()> {
        ensure_in_range("samples", self.samples, 2..=MAX_PRIOR_SAMPLES)?;
        ensure_in_range("pairs", self.pairs, 1..=MAX_PAIRS)?;
        ensure_in_range("frames", self.frames, 2..=MAX_FRAMES)
    }
}

impl Default for LatentOptions {
    fn default() -> Self {
        LatentOptions {
            samples: 10_000,
            pairs: 500,
            frames: 11,
            seed: 0,
        }
    }
}

/// What every model's report is compared with on a dataset, the same for all of them: worked
/// out once, not once per model.
#[derive(Clone, Debug)]
pub struct Reference {
    pub classifier_accuracy: f64,
    pub completeness_of_test_images: Completeness,
    /// Classifier features of the test images.
    pub test_features: Matrix,
    pub fid_floor: f64,
}

impl Reference {
    /// The test images' numbers, and the FID floor from the first `samples` training
    /// images (as many as the prior samples each model is measured with).
    pub fn new(classifier: &Classifier, data: &Dataset, samples: usize) -> Self {
        let test = data.test.range_batch(0, data.test.len());
        let floor_train = data.train.range_batch(0, samples.min(data.train.len()));
        let test_features = classifier.features(&test);
        Reference {
            classifier_accuracy: classifier.accuracy(&data.test),
            completeness_of_test_images: completeness(classifier, &test),
            fid_floor: frechet_distance(&classifier.features(&floor_train), &test_features),
            test_features,
        }
    }
}

/// What a sampler's draws are worth: the numbers of a [`LatentReport`] that depend on where
/// the codes come from (continuity does not: it walks between test codes).
#[derive(Clone, Debug, Serialize)]
pub struct SampleQuality {
    /// What the codes are drawn from ([`Sampler::describe`]).
    pub sampler: String,
    pub completeness: Completeness,
    /// Fréchet distance of classifier features, decoded samples vs test images.
    pub fid: f64,
    pub coverage: Coverage,
    /// CVAE: the share of samples classified as the label they were drawn for.
    pub label_agreement: Option<f64>,
}

/// Draws `samples` codes from `sampler` (seeded with `seed`; a CVAE's labels 0, 1, … in
/// turn), decodes them and measures them against `reference` and the model's `codes` of the
/// dataset.
pub fn sample_quality(
    model: &Model,
    sampler: &Sampler,
    classifier: &Classifier,
    codes: &DatasetCodes,
    samples: usize,
    seed: u64,
    reference: &Reference,
) -> Result<SampleQuality> {
    let labels = model.conditioning().draw_labels(samples, None);
    let draws = sampler.draw(samples, labels.as_deref(), 1.0, &mut seeded(seed))?;
    let images = model.decode(&draws, model.label_condition(samples, None)?.as_ref());
    let coverage = coverage(&codes.train, &codes.test, &draws);
    let label_agreement = labels.map(|asked| {
        let probs = classifier.probabilities(&images);
        let agree = (0..probs.rows)
            .filter(|&r| argmax(probs.row(r)) == asked[r] as usize)
            .count();
        agree as f64 / probs.rows.max(1) as f64
    });
    Ok(SampleQuality {
        sampler: sampler.describe(),
        completeness: completeness(classifier, &images),
        fid: frechet_distance(&classifier.features(&images), &reference.test_features),
        coverage,
        label_agreement,
    })
}

/// The generator of a latent report's interpolation pairs: apart from the draws', so that
/// every sampler's report walks the same paths.
fn paths_rng(seed: u64) -> RunRng {
    seeded(seed ^ 0x7061_7468_7321)
}

/// Measures a model's latent space on `data` (whose codes under the model are `codes`) with
/// `classifier`, drawing from `sampler`, against `reference` (made with the same classifier,
/// data and sample count).
pub fn latent_report(
    model: &Model,
    sampler: &Sampler,
    classifier: &Classifier,
    data: &Dataset,
    codes: &DatasetCodes,
    options: &LatentOptions,
    reference: &Reference,
) -> Result<LatentReport> {
    options.validate()?;
    let quality = sample_quality(
        model,
        sampler,
        classifier,
        codes,
        options.samples,
        options.seed,
        reference,
    )?;
    let continuity = continuity(
        model,
        classifier,
        data,
        options.pairs,
        options.frames,
        &mut paths_rng(options.seed),
    )?;
    Ok(LatentReport {
        protocol: LatentProtocol {
            dataset: data.name.clone(),
            sampler: quality.sampler,
            samples: options.samples,
            interpolation_pairs: options.pairs,
            interpolation_frames: options.frames,
            seed: options.seed,
            classifier_accuracy: reference.classifier_accuracy,
        },
        completeness: quality.completeness,
        completeness_of_test_images: reference.completeness_of_test_images.clone(),
        continuity,
        fid: quality.fid,
        fid_floor: reference.fid_floor,
        coverage: quality.coverage,
        label_agreement: quality.label_agreement,
    })
}

/// `n` images of uniform noise: a reference that no classifier should find complete.
pub fn uniform_noise(n: usize, pixels: usize, rng: &mut impl Rng) -> Matrix {
    let data = (0..n * pixels).map(|_| rng.random_range(0.0..1.0)).collect();
    Matrix::from_vec(n, pixels, data)
}
