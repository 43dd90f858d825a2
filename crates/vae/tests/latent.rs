//! The latent-space tools and metrics on cases with known answers, and the classifier on real
//! digits.

mod common;

use vae::classifier::{ClassifierTraining, train};
use vae::engine::Matrix;
use vae::latent::{interpolate, manifold_codes, normal_quantile, project_2d, traverse};
use vae::metrics::{completeness, frechet_distance, uniform_noise};
use vae::model::PriorDensity;
use vae::rng::seeded;

fn norm(v: &[f32]) -> f32 {
    v.iter().map(|x| x * x).sum::<f32>().sqrt()
}

#[test]
fn interpolation_starts_and_ends_at_the_codes() {
    let (a, b) = ([1.0f32, 0.0, 2.0], [0.0f32, 3.0, -1.0]);
    let line = interpolate(&a, &b, 5, false);
    assert_eq!(line.shape(), (5, 3));
    assert_eq!(line.row(0), a);
    assert_eq!(line.row(4), b);
    assert_eq!(line.row(2), [0.5, 1.5, 0.5]);
    // Between two codes of equal norm the great circle keeps that norm; the line does not.
    let (a, b) = ([3.0f32, 0.0], [0.0f32, 3.0]);
    let arc = interpolate(&a, &b, 3, true);
    assert!((norm(arc.row(1)) - 3.0).abs() < 1e-5, "{:?}", arc.row(1));
    assert!(norm(interpolate(&a, &b, 3, false).row(1)) < 2.2);
}

#[test]
fn traversal_moves_one_dimension_only() {
    let base = [0.5f32, -1.0, 2.0];
    let t = traverse(&base, 1, 3.0, 7);
    assert_eq!(t.shape(), (7, 3));
    assert_eq!(t.row(0), [0.5, -4.0, 2.0]);
    assert_eq!(t.row(6), [0.5, 2.0, 2.0]);
    assert_eq!(t.row(3), base);
}

#[test]
fn normal_quantiles_match_tables() {
    // Standard normal table values.
    assert!(normal_quantile(0.5).abs() < 1e-9);
    assert!((normal_quantile(0.975) - 1.959_963_985).abs() < 1e-7);
    assert!((normal_quantile(0.001) + 3.090_232_306).abs() < 1e-7);
    let grid = manifold_codes(Some(&PriorDensity::StandardNormal), 4, [(0.0, 0.0); 2]);
    assert_eq!(grid.shape(), (16, 2));
    // Φ⁻¹(1/8) = -1.1503: the top-left cell is (-1.15, +1.15), the bottom-right (+1.15, -1.15).
    assert!((grid.row(0)[0] + 1.150_349).abs() < 1e-4 && (grid.row(0)[1] - 1.150_349).abs() < 1e-4);
    assert!((grid.row(15)[0] - 1.150_349).abs() < 1e-4 && (grid.row(15)[1] + 1.150_349).abs() < 1e-4);
    let ae = manifold_codes(None, 3, [(-2.0, 4.0), (0.0, 1.0)]);
    assert_eq!(ae.row(0), [-2.0, 1.0]);
    assert_eq!(ae.row(8), [4.0, 0.0]);
}

#[test]
fn pca_keeps_the_variance_of_planar_codes() {
    // Codes in 5-D that vary only within a plane: two components keep all the variance.
    let mut rng = seeded(4);
    let basis = Matrix::standard_normal(2, 5, &mut rng);
    let weights = Matrix::standard_normal(300, 2, &mut rng);
    let mut codes = Matrix::zeros(300, 5);
    for r in 0..300 {
        for c in 0..5 {
            codes.row_mut(r)[c] = weights.row(r)[0] * basis.row(0)[c] + weights.row(r)[1] * basis.row(1)[c];
        }
    }
    let p = project_2d(&codes);
    assert_eq!(p.points.shape(), (300, 2));
    assert!(p.pca_explained.unwrap() > 0.9999, "{:?}", p.pca_explained);
    // 2-D codes are plotted as they are.
    let flat = Matrix::from_vec(2, 2, vec![1.0, 2.0, 3.0, 4.0]);
    let same = project_2d(&flat);
    assert_eq!((same.points, same.pca_explained), (flat, None));
}

#[test]
fn frechet_distance_of_shifted_gaussians_is_the_squared_shift() {
    let mut rng = seeded(5);
    let a = Matrix::standard_normal(4000, 3, &mut rng);
    let b = Matrix::standard_normal(4000, 3, &mut rng);
    // Same law: close to 0 (sampling noise only).
    assert!(frechet_distance(&a, &b) < 0.02, "{}", frechet_distance(&a, &b));
    // The same points shifted by (2, 0, 0): the covariances agree exactly, the distance is
    // the squared shift, 4. Identical sets: 0 up to rounding.
    let mut shifted = a.clone();
    for r in 0..shifted.rows {
        shifted.row_mut(r)[0] += 2.0;
    }
    let d = frechet_distance(&a, &shifted);
    assert!((d - 4.0).abs() < 1e-3, "{d}");
    assert!(frechet_distance(&a, &a) < 1e-6);
}

#[test]
fn the_classifier_finds_real_digits_complete_and_noise_not() {
    let data = common::small_sample(4_000, 500);
    let options = ClassifierTraining {
        channels: vec![16, 32],
        hidden: vec![128],
        epochs: Some(6),
        max_shift: 0,
        ..ClassifierTraining::default()
    };
    let classifier = train(&data, &options, &mut |_| {}).unwrap();
    assert!(
        classifier.config.test_accuracy > 0.9,
        "accuracy {}",
        classifier.config.test_accuracy
    );

    let real = completeness(&classifier, &data.test.range_batch(0, data.test.len()));
    assert!(real.confident_share > 0.6, "{real:?}");
    // Ten balanced classes: close to log2(10) = 3.32 bits.
    assert!(real.label_entropy_bits > 3.2, "{real:?}");
    assert_eq!(real.label_histogram.iter().sum::<usize>(), 500);

    let noise = completeness(&classifier, &uniform_noise(500, 784, &mut seeded(1)));
    assert!(noise.label_entropy_bits < 1.5, "{noise:?}");

    // Features for the Fréchet distance: real test digits are far closer to real training
    // digits than noise is.
    let test = classifier.features(&data.test.range_batch(0, 500));
    let train_features = classifier.features(&data.train.range_batch(0, 1000));
    let noise_features = classifier.features(&uniform_noise(500, 784, &mut seeded(2)));
    let floor = frechet_distance(&train_features, &test);
    assert!(floor * 10.0 < frechet_distance(&noise_features, &test), "{floor}");

    // Saved and loaded, it predicts the same.
    let dir = tempfile::tempdir().unwrap();
    classifier.save(dir.path()).unwrap();
    let loaded = vae::classifier::Classifier::load(dir.path()).unwrap();
    let x = data.test.range_batch(0, 20);
    assert_eq!(loaded.probabilities(&x), classifier.probabilities(&x));
}

/// Four points `mean ± u`, `mean ± w`: their covariance (normalised by n - 1 = 3) is exactly
/// `(2uuᵀ + 2wwᵀ) / 3`.
fn cross(mean: [f64; 2], u: [f64; 2], w: [f64; 2]) -> Matrix {
    let mut data = Vec::new();
    for (d, s) in [(u, 1.0), (u, -1.0), (w, 1.0), (w, -1.0)] {
        data.extend([(mean[0] + s * d[0]) as f32, (mean[1] + s * d[1]) as f32]);
    }
    Matrix::from_vec(4, 2, data)
}

#[test]
fn frechet_distance_of_covariances_that_do_not_commute_is_known() {
    // A = diag(4, 1) around 0; B = [[5, 4], [4, 5]] (eigenvalues 9 and 1 along the
    // diagonals) around (1, 2). For 2x2 matrices Tr((AB)^½) = sqrt(Tr(AB) + 2·sqrt(det A·det B))
    // = sqrt(25 + 2·6), so the distance is |(1, 2)|² + Tr A + Tr B - 2·sqrt(37)
    // = 5 + 5 + 10 - 2·sqrt(37) = 7.8345…; the matrix square root must be right to get it.
    let k = (1.5f64).sqrt();
    let a = cross([0.0, 0.0], [2.0 * k, 0.0], [0.0, k]);
    let h = 1.0 / 2f64.sqrt();
    let b = cross([1.0, 2.0], [3.0 * k * h, 3.0 * k * h], [k * h, -k * h]);
    let expected = 20.0 - 2.0 * 37f64.sqrt();
    let d = frechet_distance(&a, &b);
    assert!((d - expected).abs() < 1e-4, "{d} vs {expected}");
    assert!((frechet_distance(&b, &a) - expected).abs() < 1e-4);
}

#[test]
fn the_pca_projection_of_planar_codes_keeps_their_distances() {
    // Codes on a plane of R^3 (spanned by two orthonormal vectors, off the origin): the two
    // principal components span that plane, so projecting onto them is an isometry there and
    // keeps all the variance.
    let (a, b) = (
        [1.0, 2.0, 2.0].map(|v: f64| v / 3.0),
        [2.0, 1.0, -2.0].map(|v: f64| v / 3.0),
    );
    let mut rng = seeded(4);
    let coords = Matrix::standard_normal(200, 2, &mut rng);
    let mut codes = Matrix::zeros(200, 3);
    for r in 0..200 {
        let (s, t) = (3.0 * coords.row(r)[0] as f64, coords.row(r)[1] as f64);
        for c in 0..3 {
            codes.row_mut(r)[c] = (0.5 + s * a[c] + t * b[c]) as f32;
        }
    }
    let projection = project_2d(&codes);
    let explained = projection.pca_explained.expect("3-D codes are projected");
    assert!((explained - 1.0).abs() < 1e-6, "{explained}");
    let distance = |m: &Matrix, i: usize, j: usize| {
        m.row(i)
            .iter()
            .zip(m.row(j))
            .map(|(x, y)| ((x - y) as f64).powi(2))
            .sum::<f64>()
            .sqrt()
    };
    for (i, j) in [(0, 1), (2, 3), (5, 150), (17, 199), (42, 43)] {
        let (before, after) = (distance(&codes, i, j), distance(&projection.points, i, j));
        assert!((before - after).abs() < 1e-4, "pair {i}, {j}: {before} vs {after}");
    }
}

#[test]
fn continuity_steps_and_label_flips_on_paths_with_known_answers() {
    use vae::metrics::{LabelFlips, label_flips, step_ratios};
    // Frames evenly spaced along a line: every step is a tenth of the span.
    let even = Matrix::from_vec(11, 2, (0..11).flat_map(|k| [k as f32, 2.0 * k as f32]).collect());
    for r in step_ratios(&even).unwrap() {
        assert!((r - 0.1).abs() < 1e-6, "{r}");
    }
    // Three frames that go out to 3 and come back to 1: steps of 3 and 2 over a span of 1.
    let detour = Matrix::from_vec(3, 1, vec![0.0, 3.0, 1.0]);
    assert_eq!(step_ratios(&detour).unwrap(), vec![3.0, 2.0]);
    // Ends that coincide give nothing to compare.
    assert_eq!(step_ratios(&Matrix::from_vec(3, 1, vec![1.0, 5.0, 1.0])), None);

    let flips = |labels: &[usize], changes, comes_back| {
        assert_eq!(label_flips(labels), LabelFlips { changes, comes_back }, "{labels:?}");
    };
    flips(&[3, 3, 3], 0, false);
    flips(&[1, 1, 7, 7, 7], 1, false);
    flips(&[1, 2, 3], 2, false);
    flips(&[1, 2, 1], 2, true);
    flips(&[4, 4, 9, 4, 4, 9], 3, true);
}

#[test]
fn sampling_temperature_scales_the_prior_codes() {
    let model = vae::model::Model::new(
        vae::model::ModelConfig {
            hidden: vec![8],
            latent: 4,
            ..vae::model::ModelConfig::mlp_vae()
        },
        &mut seeded(0),
    )
    .unwrap();
    let one = model.prior_codes(50, 1.0, &mut seeded(6));
    let cool = model.prior_codes(50, 0.25, &mut seeded(6));
    for (a, b) in one.data.iter().zip(&cool.data) {
        assert!((0.25 * a - b).abs() < 1e-6, "{a} at T = 1, {b} at T = 0.25");
    }
    assert!(model.prior_codes(5, 0.0, &mut seeded(6)).data.iter().all(|&v| v == 0.0));
}

/// A VAE whose decoder ignores the code (every decoder weight zero) and whose output bias is
/// the logit of one test digit: every prior sample decodes to that digit. The report's numbers
/// are then known from the classifier's answer on that one image: one class takes every
/// sample (entropy 0), the confident share is that image's, the FID is the squared distance
/// of its features from the test mean plus the trace of the test features' covariance (the
/// samples' covariance is zero), and no interpolation path has two distinct ends.
#[test]
fn the_latent_report_of_a_model_that_always_draws_one_digit_is_known() {
    use vae::classifier::{Classifier, ClassifierConfig, argmax};
    use vae::metrics::{CONFIDENCE, LatentOptions, Reference, latent_report};
    use vae::model::{Model, ModelConfig};
    use vae::sampler::Sampler;

    let data = common::small_sample(300, 200);
    let classifier_config = ClassifierConfig {
        image_height: 28,
        image_width: 28,
        image_channels: 1,
        channels: vec![4],
        hidden: vec![12],
        classes: 10,
        dataset: "mnist-sample".into(),
        epochs: 0,
        seed: 5,
        test_accuracy: 0.0,
    };
    // Untrained but fixed: the numbers below follow from what it answers, whatever that is.
    let classifier = Classifier::new(classifier_config, &mut seeded(5)).unwrap();
    let digit = data.test.range_batch(3, 4);
    let mut model = Model::new(
        ModelConfig {
            hidden: vec![8],
            latent: 2,
            ..ModelConfig::mlp_vae()
        },
        &mut seeded(6),
    )
    .unwrap();
    for param in model.params_mut() {
        let name = param.name.clone();
        if name.starts_with("decoder.") && name.ends_with(".weight") {
            param.value.data.fill(0.0);
        }
        if name == "decoder.fc_out.bias" {
            for (b, &p) in param.value.data.iter_mut().zip(&digit.data) {
                let p = p.clamp(1e-3, 1.0 - 1e-3);
                *b = (p / (1.0 - p)).ln();
            }
        }
    }
    let drawn = model.decode(&Matrix::zeros(1, 2), None);
    let close = drawn.data.iter().zip(&digit.data).all(|(a, b)| (a - b).abs() < 2e-3);
    assert!(close, "the model draws test digit 3");

    let options = LatentOptions {
        samples: 50,
        pairs: 7,
        frames: 5,
        seed: 9,
    };
    let reference = Reference::new(&classifier, &data, options.samples);
    let codes = vae::latent::DatasetCodes::new(&model, &data).unwrap();
    let report = latent_report(
        &model,
        &Sampler::prior_of(&model),
        &classifier,
        &data,
        &codes,
        &options,
        &reference,
    )
    .unwrap();

    let probabilities = classifier.probabilities(&drawn);
    let class = argmax(probabilities.row(0));
    let mut histogram = vec![0; 10];
    histogram[class] = 50;
    assert_eq!(report.completeness.images, 50);
    assert_eq!(report.completeness.label_histogram, histogram);
    assert_eq!(report.completeness.label_entropy_bits, 0.0);
    let confident = f64::from(u8::from(probabilities.row(0)[class] >= CONFIDENCE));
    assert_eq!(report.completeness.confident_share, confident);

    // The FID by its definition, in f64 from the features.
    let features = classifier.features(&data.test.range_batch(0, data.test.len()));
    let (n, d) = (features.rows, features.cols);
    let mean: Vec<f64> = (0..d)
        .map(|j| (0..n).map(|r| f64::from(features.row(r)[j])).sum::<f64>() / n as f64)
        .collect();
    let trace: f64 = (0..d)
        .map(|j| {
            let squares: f64 = (0..n).map(|r| (f64::from(features.row(r)[j]) - mean[j]).powi(2)).sum();
            squares / (n - 1) as f64
        })
        .sum();
    let sample_features = classifier.features(&drawn);
    let shift: f64 = (0..d)
        .map(|j| (f64::from(sample_features.row(0)[j]) - mean[j]).powi(2))
        .sum();
    let expected = shift + trace;
    assert!(
        (report.fid - expected).abs() < 1e-3 * expected,
        "FID {} vs {expected} (shift {shift}, trace {trace})",
        report.fid
    );
    assert!(trace > 0.0 && shift > 0.0, "both terms count");
    assert_eq!(report.fid_floor, reference.fid_floor);
    assert_eq!(report.completeness_of_test_images.images, 200);

    // Every path is one image repeated: no path has ends to compare.
    assert_eq!(report.continuity.pairs, 0);
    assert_eq!(report.continuity.frames, 5);
    assert_eq!(report.continuity.even_step, 0.25);
    assert_eq!(report.protocol.interpolation_pairs, 7);
    assert_eq!(report.protocol.seed, 9);
}
