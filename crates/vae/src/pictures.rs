//! The pictures of a trained model, one function each: reconstructions, prior samples,
//! interpolations, traversals, the latent map and the manifold. They return images; the
//! callers (`vae` subcommands, the trainer, the demo) encode and write them.

use rand::Rng;

use crate::data::Split;
use crate::data::catalog::class_names;
use crate::engine::Matrix;
use crate::error::{Error, Result};
use crate::image::{GrayImage, GridLayout, comparison_grid, tile_grid};
use crate::latent::{encode_codes, interpolate, manifold_codes, project_2d, quantile_bounds, traverse};
use crate::model::{Model, ModelKind};
use crate::plot::{RgbImage, Scatter, scatter_plot};

/// `inputs` above their reconstructions, 8 a row.
pub fn reconstructions(model: &Model, inputs: &Matrix) -> GrayImage {
    comparison_grid(inputs, &model.reconstruct(inputs), 8)
}

/// `n` decoded draws from `N(0, T²·I)`, in a square-ish grid.
pub fn prior_samples(model: &Model, n: usize, temperature: f32, rng: &mut impl Rng) -> GrayImage {
    let columns = (n as f64).sqrt().ceil() as usize;
    tile_grid(&model.sample_prior(n, temperature, rng), GridLayout::mnist(columns))
}

/// One row per pair of test images: the first image, the decoded path between their codes
/// (`steps + 1` frames, straight or spherical), the second image.
pub fn interpolations(model: &Model, test: &Split, pairs: &[(usize, usize)], steps: usize, slerp: bool) -> GrayImage {
    let mut rows = Matrix::zeros(0, model.config.pixels());
    for &(i, j) in pairs {
        let (xi, xj) = (test.range_batch(i, i + 1), test.range_batch(j, j + 1));
        let codes = encode_codes(model, &xi.stacked(&xj));
        let path = interpolate(codes.row(0), codes.row(1), steps + 1, slerp);
        rows = rows.stacked(&xi).stacked(&model.decode(&path)).stacked(&xj);
    }
    tile_grid(&rows, GridLayout::mnist(steps + 3))
}

/// One row per dimension in `dims`: that dimension of `base` run over `± range` in `steps`
/// frames.
pub fn traversals(model: &Model, base: &[f32], dims: &[usize], range: f32, steps: usize) -> GrayImage {
    let mut codes = Matrix::zeros(0, model.config.latent);
    for &k in dims {
        codes = codes.stacked(&traverse(base, k, range, steps));
    }
    tile_grid(&model.decode(&codes), GridLayout::mnist(steps))
}

/// The scatter of the test split's codes (posterior means for a VAE) coloured by label,
/// projected by PCA beyond two dimensions (the note under the title says so).
pub fn latent_map(model: &Model, test: &Split, dataset: &str, title: String) -> RgbImage {
    let codes = encode_codes(model, &test.range_batch(0, test.len()));
    let projection = project_2d(&codes);
    let what = match model.config.model {
        ModelKind::Vae => "posterior means",
        ModelKind::Ae => "codes",
    };
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
    scatter_plot(&Scatter {
        points: &projection.points,
        labels: &test.labels,
        class_names: &class_names(dataset),
        title,
        x_label,
        y_label,
        note: Some(note),
    })
}

/// For latent size 2: a `grid x grid` lattice of codes decoded into one picture, through the
/// prior's quantiles for a VAE, over the range of the test codes for an autoencoder.
pub fn manifold(model: &Model, test: &Split, grid: usize) -> Result<GrayImage> {
    if model.config.latent != 2 {
        return Err(Error::config(
            "latent",
            format!(
                "the manifold needs a latent size of 2, this model has {}",
                model.config.latent
            ),
        ));
    }
    let bounds = match model.config.model {
        ModelKind::Vae => [(0.0, 0.0); 2],
        // The autoencoder has no prior: span where its test codes lie instead.
        ModelKind::Ae => quantile_bounds(&encode_codes(model, &test.range_batch(0, test.len())), 0.01),
    };
    let images = model.decode(&manifold_codes(model.config.model, grid, bounds));
    Ok(tile_grid(
        &images,
        GridLayout {
            tile: (28, 28),
            columns: grid,
            scale: 1,
        },
    ))
}
