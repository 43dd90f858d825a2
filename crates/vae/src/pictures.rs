//! The pictures of a trained model, one function each: reconstructions, prior samples,
//! interpolations, traversals, the latent map and the manifold. They return images; the
//! callers (`vae` subcommands, the trainer, the demo) encode and write them.

use rand::Rng;

use crate::data::Split;
use crate::engine::Matrix;
use crate::error::{Error, Result};
use crate::image::{GridLayout, Picture, RgbImage, comparison_grid, tile_grid};
use crate::latent::{
    blended_condition, encode_codes, interpolate, manifold_codes, project_2d, quantile_bounds, traverse,
};
use crate::model::{Conditioning, Model};
use crate::plot::{Density, Scatter, density_plot, scatter_plot};
use crate::sampler::Sampler;

/// `inputs` above their reconstructions, 8 a row (`labels`: the inputs' classes, read by a
/// CVAE only).
pub fn reconstructions(model: &Model, inputs: &Matrix, labels: &[u8]) -> Result<Picture> {
    let shape = model.config.image_shape();
    GridLayout::of(shape, 8).ensure_fits(2 * inputs.rows)?;
    let condition = model.condition(labels)?;
    Ok(comparison_grid(
        inputs,
        &model.reconstruct(inputs, condition.as_ref()),
        shape,
        8,
    ))
}

/// Test images in a run's `reconstructions.png` and the demo's report.
pub const RECONSTRUCTION_COUNT: usize = 16;

/// The reconstructions picture a run shows: the first [`RECONSTRUCTION_COUNT`] images of
/// `test` above their reconstructions.
pub fn run_reconstructions(model: &Model, test: &Split) -> Result<Picture> {
    let inputs = test.range_batch(0, RECONSTRUCTION_COUNT);
    reconstructions(model, &inputs, &test.labels[..inputs.rows])
}

/// Prior draws in a run's `samples.png` and the demo's report (an 8x8 grid).
pub const SAMPLE_COUNT: usize = 64;
/// Draws per class row of a CVAE's samples picture.
pub const SAMPLES_PER_CLASS: usize = 8;

/// The samples picture a run shows for `model`, drawn from `sampler`: [`SAMPLE_COUNT`]
/// draws, or for a CVAE a row of [`SAMPLES_PER_CLASS`] per class ([`samples_per_class`]), at
/// temperature 1.
pub fn run_samples(model: &Model, sampler: &Sampler, rng: &mut impl Rng) -> Result<Picture> {
    match model.conditioning() {
        Conditioning::Label { .. } => samples_per_class(model, sampler, SAMPLES_PER_CLASS, 1.0, rng),
        Conditioning::Unconditional => samples(model, sampler, SAMPLE_COUNT, 1.0, None, rng),
    }
}

/// `n` decoded draws from `sampler` at temperature `T` (the prior: `N(0, T²·I)`), in a
/// square-ish grid. A CVAE draws class `label`, or cycles through its classes when none is
/// chosen.
pub fn samples(
    model: &Model,
    sampler: &Sampler,
    n: usize,
    temperature: f32,
    label: Option<u8>,
    rng: &mut impl Rng,
) -> Result<Picture> {
    let layout = GridLayout::of(model.config.image_shape(), (n as f64).sqrt().ceil() as usize);
    layout.ensure_fits(n)?;
    let condition = model.label_condition(n, label)?;
    let labels = model.conditioning().draw_labels(n, label);
    let codes = sampler.draw(n, labels.as_deref(), temperature, rng)?;
    Ok(tile_grid(&model.decode(&codes, condition.as_ref()), layout))
}

/// CVAE: one row of `per_class` draws for each class. From the prior, the same latent draws
/// in every row, so a column keeps its style while the rows change the class; from a sampler
/// fitted per class, each row's codes come from its class's mixture.
pub fn samples_per_class(
    model: &Model,
    sampler: &Sampler,
    per_class: usize,
    temperature: f32,
    rng: &mut impl Rng,
) -> Result<Picture> {
    let Some(classes) = model.conditioning().classes() else {
        return Err(Error::config(
            "grid-labels",
            "only a cvae draws a chosen class (this model is not conditional)",
        ));
    };
    let layout = GridLayout::of(model.config.image_shape(), per_class);
    layout.ensure_fits(classes.saturating_mul(per_class))?;
    let labels: Vec<u8> = (0..classes)
        .flat_map(|c| std::iter::repeat_n(c as u8, per_class))
        .collect();
    let codes = if sampler.per_class() {
        sampler.draw(labels.len(), Some(&labels), temperature, rng)?
    } else {
        let z = sampler.draw(per_class, None, temperature, rng)?;
        Matrix::from_vec(classes * per_class, z.cols, z.data.repeat(classes))
    };
    let images = model.decode(&codes, model.condition(&labels)?.as_ref());
    Ok(tile_grid(&images, layout))
}

/// One row per pair of test images: the first image, the decoded path between their codes
/// (`steps + 1` frames, straight or spherical), the second image.
///
/// A CVAE's label is blended along the path as the code is.
pub fn interpolations(
    model: &Model,
    test: &Split,
    pairs: &[(usize, usize)],
    steps: usize,
    slerp: bool,
) -> Result<Picture> {
    // A row: the first image, steps + 1 frames, the second image.
    let frames = steps.saturating_add(3);
    let layout = GridLayout::of(model.config.image_shape(), frames);
    layout.ensure_fits(pairs.len().saturating_mul(frames))?;
    let mut rows = Matrix::zeros(0, model.config.pixels());
    for &(i, j) in pairs {
        let (xi, xj) = (test.range_batch(i, i + 1), test.range_batch(j, j + 1));
        let (yi, yj) = (test.labels[i], test.labels[j]);
        let codes = encode_codes(model, &xi.stacked(&xj), &[yi, yj])?;
        let path = interpolate(codes.row(0), codes.row(1), steps + 1, slerp);
        let condition = blended_condition(model, yi, yj, steps + 1)?;
        rows = rows
            .stacked(&xi)
            .stacked(&model.decode(&path, condition.as_ref()))
            .stacked(&xj);
    }
    Ok(tile_grid(&rows, layout))
}

/// One row per dimension in `dims`: that dimension of `base` run over `± range` in `steps`
/// frames (a CVAE draws class `label`, or cycles through its classes along each row).
pub fn traversals(
    model: &Model,
    base: &[f32],
    dims: &[usize],
    range: f32,
    steps: usize,
    label: Option<u8>,
) -> Result<Picture> {
    let layout = GridLayout::of(model.config.image_shape(), steps);
    layout.ensure_fits(dims.len().saturating_mul(steps))?;
    let mut codes = Matrix::zeros(0, model.config.latent);
    for &k in dims {
        codes = codes.stacked(&traverse(base, k, range, steps));
    }
    let condition = model.label_condition(codes.rows, label)?;
    Ok(tile_grid(&model.decode(&codes, condition.as_ref()), layout))
}

/// The scatter of the test split's codes (posterior means for a VAE) coloured by label,
/// projected by PCA beyond two dimensions (the note under the title says so).
pub fn latent_map(model: &Model, test: &Split, class_names: &[String], title: String) -> Result<RgbImage> {
    let codes = encode_codes(model, &test.range_batch(0, test.len()), &test.labels)?;
    let projection = project_2d(&codes);
    let what = model.encoder.head.code_name();
    let (x_label, y_label, note) = match projection.pca_explained {
        None => (
            "z1".into(),
            "z2".into(),
            format!("{} {what} of the test images, coloured by label", test.len()),
        ),
        Some(share) => (
            "principal component 1".into(),
            "principal component 2".into(),
            format!(
                "PCA of {} {}-D {what}: the two components keep {:.0}% of the variance",
                test.len(),
                model.config.latent,
                100.0 * share
            ),
        ),
    };
    Ok(scatter_plot(&Scatter {
        points: &projection.points,
        labels: &test.labels,
        class_names,
        title,
        x_label,
        y_label,
        note: Some(note),
    }))
}

/// Where the training codes are, against the prior they are sampled from: the density of the
/// codes of `train` (posterior means for a VAE) as a histogram, with the rings that hold 39%,
/// 86% and 99% of the prior `N(0, I)` in two dimensions (radius 1, 2, 3). White inside the
/// rings is prior mass no training image maps to: the holes. Beyond two dimensions, the codes
/// and the prior are projected on the codes' two principal components (the prior stays a unit
/// normal there: the axes are orthonormal; its centre is where the origin projects).
///
/// `codes`: the training codes ([`crate::latent::split_codes`]), n x latent.
pub fn code_density(model: &Model, codes: &Matrix, title: String) -> RgbImage {
    let projection = project_2d(codes);
    let origin = projection.project(&vec![0.0; model.config.latent]);
    let centre = [origin[0] as f64, origin[1] as f64];
    let rings = [(centre, 1.0), (centre, 2.0), (centre, 3.0)];
    let what = model.encoder.head.code_name();
    let (x_label, y_label, note) = match projection.pca_explained {
        None => (
            "z1".to_string(),
            "z2".to_string(),
            format!("{} training {what}", codes.rows),
        ),
        Some(share) => (
            "principal component 1".to_string(),
            "principal component 2".to_string(),
            format!(
                "{} training {what} ({}-D) on their 2 principal components ({:.0}% of the variance)",
                codes.rows,
                model.config.latent,
                100.0 * share
            ),
        ),
    };
    density_plot(&Density {
        points: &projection.points,
        rings: &rings,
        title,
        x_label,
        y_label,
        note: Some(note),
        // At most 22 characters a line: the legend's width.
        legend: vec![
            "red: N(0, I)".into(),
            "rings at 1, 2, 3 sd:".into(),
            "39%, 86%, 99% of".into(),
            "its mass in 2-D".into(),
            String::new(),
            "blue: training codes,".into(),
            "darker = more (log)".into(),
            "white: none there".into(),
        ],
    })
}

/// For latent size 2: a `grid x grid` lattice of codes decoded into one picture, through the
/// prior's quantiles for a VAE, over the range of the test codes for an autoencoder. A CVAE
/// draws class `label` throughout (class 0 when none is chosen).
pub fn manifold(model: &Model, test: &Split, grid: usize, label: Option<u8>) -> Result<Picture> {
    if model.config.latent != 2 {
        return Err(Error::config(
            "latent",
            format!(
                "the manifold needs a latent size of 2, this model has {}",
                model.config.latent
            ),
        ));
    }
    // Codes not trained toward N(0, I) (an autoencoder's, or those of a learned prior, whose
    // coordinates have no common quantiles): span where the test codes lie.
    let density = model.prior_density();
    let prior = (model.encoder.head.has_posterior() && density.quantile(0.5).is_some()).then_some(&density);
    let bounds = match prior {
        Some(_) => [(0.0, 0.0); 2],
        None => quantile_bounds(
            &encode_codes(model, &test.range_batch(0, test.len()), &test.labels)?,
            0.01,
        ),
    };
    let condition = model.label_condition(grid * grid, Some(label.unwrap_or(0)))?;
    let images = model.decode(&manifold_codes(prior, grid, bounds), condition.as_ref());
    Ok(tile_grid(
        &images,
        GridLayout {
            scale: 1,
            ..GridLayout::of(model.config.image_shape(), grid)
        },
    ))
}
