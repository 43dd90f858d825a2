//! Walking the latent space: codes of images, straight and spherical paths between codes,
//! one-dimension traversals, regular grids of codes, and a 2-D projection of many codes.
//! These return codes or decoded images; drawing them is [`crate::image`]'s and
//! [`crate::plot`]'s job.

use nalgebra::{DMatrix, SymmetricEigen};
use rand::RngExt;

use crate::data::{Dataset, Split};
use crate::engine::Matrix;
pub use crate::engine::gaussian::normal_quantile;
use crate::error::Result;
use crate::model::{Model, PriorDensity, Workspace, rows_of};
use crate::rng::RunRng;

/// The code of each image: the posterior mean `μ(x)` for a VAE (its most likely code), `e(x)`
/// for an autoencoder. `labels` are the images' classes, which only a CVAE reads.
///
/// # Shapes
/// `x`: n x pixels; returns n x latent.
///
/// # Errors
/// A CVAE given a label beyond its classes.
pub fn encode_codes(model: &Model, x: &Matrix, labels: &[u8]) -> Result<Matrix> {
    Ok(codes_of(model, x, model.condition(labels)?.as_ref()))
}

/// Images encoded per pass of [`split_codes`].
const IMAGES_PER_PASS: usize = 4096;

/// The code of every image of `split` ([`encode_codes`], with the split's labels), a pass of
/// images at a time, so that a whole training split is never held as floats at once.
///
/// # Errors
/// A CVAE given a label beyond its classes.
pub fn split_codes(model: &Model, split: &Split) -> Result<Matrix> {
    let latent = model.config.latent;
    let mut codes = Matrix::zeros(split.len(), latent);
    for start in (0..split.len()).step_by(IMAGES_PER_PASS) {
        let end = (start + IMAGES_PER_PASS).min(split.len());
        let part = encode_codes(model, &split.range_batch(start, end), &split.labels[start..end])?;
        codes.data[start * latent..end * latent].copy_from_slice(&part.data);
    }
    Ok(codes)
}

/// The codes of a dataset's two splits under one model ([`split_codes`]): encoded once, read
/// by every measure of where codes lie (the fit of a sampler, its coverage, the density
/// picture).
#[derive(Clone, Debug)]
pub struct DatasetCodes {
    pub train: Matrix,
    pub test: Matrix,
}

impl DatasetCodes {
    /// Encodes both splits of `data`.
    ///
    /// # Errors
    /// A CVAE given a label beyond its classes.
    pub fn new(model: &Model, data: &Dataset) -> Result<Self> {
        Ok(DatasetCodes {
            train: split_codes(model, &data.train)?,
            test: split_codes(model, &data.test)?,
        })
    }
}

/// [`encode_codes`] given the condition itself (one-hot rows, or blends of them).
pub fn codes_of(model: &Model, x: &Matrix, condition: Option<&Matrix>) -> Matrix {
    let mut ws = Workspace::default();
    let mut codes = Matrix::zeros(x.rows, model.config.latent);
    // A pass at a time, so that a whole test split does not hold every activation at once.
    let step = model.rows_per_pass();
    for start in (0..x.rows).step_by(step) {
        let end = (start + step).min(x.rows);
        let c = condition.map(|c| rows_of(c, start, end));
        model.encode(&rows_of(x, start, end), c.as_deref(), &mut ws);
        let part = model.encoder.head.code(&ws);
        codes.data[start * part.cols..end * part.cols].copy_from_slice(&part.data);
    }
    codes
}

/// The condition along a path of `frames` frames from class `a` to class `b` (CVAE): the
/// one-hot labels blended as the codes are, `(1-t)·y_a + t·y_b`, so the class changes
/// smoothly too. `None` for unconditional models.
pub fn blended_condition(model: &Model, a: u8, b: u8, frames: usize) -> Result<Option<Matrix>> {
    let Some(ends) = model.condition(&[a, b])? else {
        return Ok(None);
    };
    Ok(Some(interpolate(ends.row(0), ends.row(1), frames, false)))
}

/// `count` pairs of indices below `len`, drawn uniformly (a pair may repeat an index).
pub fn random_pairs(count: usize, len: usize, rng: &mut RunRng) -> Vec<(usize, usize)> {
    (0..count)
        .map(|_| (rng.random_range(0..len), rng.random_range(0..len)))
        .collect()
}

/// `frames` codes from `a` to `b` (both included), evenly spaced in `t`.
///
/// Linear: `(1-t)·a + t·b`. Spherical (`slerp`, White 2016):
/// `sin((1-t)ω)/sin ω · a + sin(tω)/sin ω · b` with `ω` the angle between `a` and `b`, which
/// keeps the path at the norm typical of prior samples instead of cutting through the
/// low-norm middle of the Gaussian; it falls back to linear when `a` and `b` are (anti)parallel.
pub fn interpolate(a: &[f32], b: &[f32], frames: usize, slerp: bool) -> Matrix {
    assert_eq!(a.len(), b.len(), "interpolate: codes differ in length");
    let frames = frames.max(2);
    let norm = |v: &[f32]| v.iter().map(|&x| (x as f64).powi(2)).sum::<f64>().sqrt();
    let dot: f64 = a.iter().zip(b).map(|(&x, &y)| x as f64 * y as f64).sum();
    let cos = (dot / (norm(a) * norm(b)).max(1e-12)).clamp(-1.0, 1.0);
    let omega = cos.acos();
    let spherical = slerp && omega.sin().abs() > 1e-6;
    let mut out = Matrix::zeros(frames, a.len());
    for f in 0..frames {
        let t = f as f64 / (frames - 1) as f64;
        let (wa, wb) = if spherical {
            (((1.0 - t) * omega).sin() / omega.sin(), (t * omega).sin() / omega.sin())
        } else {
            (1.0 - t, t)
        };
        for (o, (&x, &y)) in out.row_mut(f).iter_mut().zip(a.iter().zip(b)) {
            *o = (wa * x as f64 + wb * y as f64) as f32;
        }
    }
    out
}

/// `frames` copies of `base` whose dimension `dim` runs evenly over `base[dim] ± range`.
pub fn traverse(base: &[f32], dim: usize, range: f32, frames: usize) -> Matrix {
    let frames = frames.max(2);
    let mut out = Matrix::zeros(frames, base.len());
    for f in 0..frames {
        let t = -range + 2.0 * range * f as f32 / (frames - 1) as f32;
        let row = out.row_mut(f);
        row.copy_from_slice(base);
        row[dim] += t;
    }
    out
}

/// A `grid x grid` lattice of 2-D codes, row-major with the first coordinate along rows of
/// the picture (left to right) and the second top to bottom.
///
/// Given the prior the codes were trained toward (a VAE's), the lattice runs through its
/// quantiles (`Φ⁻¹((i + ½)/grid)` for the standard normal), so equal areas of the prior get
/// equal cells (Kingma & Welling 2014, figure 4). Without one (an autoencoder), or with a
/// prior whose coordinates have no common quantiles (a learned mixture), it spans the given
/// bounds (the range the test codes occupy).
pub fn manifold_codes(prior: Option<&PriorDensity>, grid: usize, bounds: [(f32, f32); 2]) -> Matrix {
    let grid = grid.max(2);
    let axis = |i: usize, (lo, hi): (f32, f32)| match prior.and_then(|p| p.quantile((i as f64 + 0.5) / grid as f64)) {
        Some(q) => q as f32,
        None => lo + (hi - lo) * i as f32 / (grid - 1) as f32,
    };
    let mut out = Matrix::zeros(grid * grid, 2);
    for row in 0..grid {
        for col in 0..grid {
            // The second coordinate grows upwards, as on a plot.
            let code = [axis(col, bounds[0]), axis(grid - 1 - row, bounds[1])];
            out.row_mut(row * grid + col).copy_from_slice(&code);
        }
    }
    out
}

/// The `q`-th and `1 - q`-th quantiles of each of the first two columns.
pub fn quantile_bounds(codes: &Matrix, q: f64) -> [(f32, f32); 2] {
    let bound = |c: usize| {
        let mut v: Vec<f32> = (0..codes.rows).map(|r| codes.row(r)[c]).collect();
        v.sort_by(f32::total_cmp);
        let at = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize];
        (at(q), at(1.0 - q))
    };
    [bound(0), bound(1)]
}

/// Codes projected to 2-D, and how they were projected.
#[derive(Clone, Debug)]
pub struct Projection {
    /// n x 2.
    pub points: Matrix,
    /// `None` when the codes already were 2-D; else the share of variance the two principal
    /// components keep.
    pub pca_explained: Option<f64>,
    /// PCA: the codes' mean and the two principal axes (unit length), so that new codes land
    /// on the same map ([`Projection::project`]).
    pub pca: Option<(Vec<f64>, [Vec<f64>; 2])>,
}

impl Projection {
    /// Where `code` falls on the map of this projection.
    pub fn project(&self, code: &[f32]) -> [f32; 2] {
        match &self.pca {
            None => [
                code.first().copied().unwrap_or(0.0),
                code.get(1).copied().unwrap_or(0.0),
            ],
            Some((mean, axes)) => axes.each_ref().map(|axis| {
                code.iter()
                    .zip(mean)
                    .zip(axis)
                    .map(|((&x, &m), &w)| (x as f64 - m) * w)
                    .sum::<f64>() as f32
            }),
        }
    }
}

/// The codes themselves when 2-D, else their projection on the two principal components.
pub fn project_2d(codes: &Matrix) -> Projection {
    if codes.cols <= 2 {
        let mut points = Matrix::zeros(codes.rows, 2);
        for r in 0..codes.rows {
            points.row_mut(r)[..codes.cols].copy_from_slice(codes.row(r));
        }
        return Projection {
            points,
            pca_explained: None,
            pca: None,
        };
    }
    let (mean, cov) = mean_and_covariance(codes);
    let eigen = SymmetricEigen::new(cov);
    let mut order: Vec<usize> = (0..eigen.eigenvalues.len()).collect();
    order.sort_by(|&i, &j| eigen.eigenvalues[j].total_cmp(&eigen.eigenvalues[i]));
    let total: f64 = eigen.eigenvalues.iter().map(|v| v.max(0.0)).sum();
    let explained = (eigen.eigenvalues[order[0]] + eigen.eigenvalues[order[1]]) / total.max(1e-300);
    let axes = [order[0], order[1]].map(|component| {
        let v = eigen.eigenvectors.column(component);
        // Fix the sign (largest entry positive) so that the map does not flip between runs of
        // the solver.
        let largest = v
            .iter()
            .copied()
            .max_by(|a, b| a.abs().total_cmp(&b.abs()))
            .unwrap_or(1.0);
        let sign = if largest < 0.0 { -1.0 } else { 1.0 };
        v.iter().map(|&w| sign * w).collect::<Vec<f64>>()
    });
    let mut projection = Projection {
        points: Matrix::zeros(codes.rows, 2),
        pca_explained: Some(explained),
        pca: Some((mean, axes)),
    };
    for r in 0..codes.rows {
        let point = projection.project(codes.row(r));
        projection.points.row_mut(r).copy_from_slice(&point);
    }
    projection
}

/// Column means and the (n - 1)-normalised covariance of the rows of `x`, in f64.
pub fn mean_and_covariance(x: &Matrix) -> (Vec<f64>, DMatrix<f64>) {
    let (n, d) = (x.rows, x.cols);
    let mut mean = vec![0.0f64; d];
    for r in 0..n {
        for (m, &v) in mean.iter_mut().zip(x.row(r)) {
            *m += v as f64;
        }
    }
    for m in &mut mean {
        *m /= n.max(1) as f64;
    }
    let centred = DMatrix::from_fn(n, d, |r, c| x.row(r)[c] as f64 - mean[c]);
    let cov = centred.transpose() * &centred / (n.saturating_sub(1).max(1) as f64);
    (mean, cov)
}
