//! What a trained model says about each item: its code (`vae encode`), and how well the
//! model explains it (`vae score`), the anomaly scores, with the AUROC of telling two
//! sets apart by each.
//!
//! Scores, per item, all "higher is more unusual" ([`MEASURES`]):
//! - `neg_elbo`: the negative ELBO at β = 1, reconstruction + KL, one draw of `z`;
//! - `reconstruction` and `kl`: its two parts;
//! - `neg_log_px`: the importance-weighted `-log p̂(x)` with K draws, when asked for;
//! - `typicality`: `|neg_elbo - H|`, with `H` the mean `neg_elbo` of the run's own training
//!   items: how far an item's score is from the typical one, in either direction.
//!
//! Models of likelihood can give *other* data a higher likelihood than their own
//! (Nalisnick et al. 2019: a model of Fashion-MNIST scores MNIST digits as more likely):
//! simple images are likely under any model. Serrà et al. (2020) correct for it with the
//! length `L(x)` a general-purpose compressor gives the item (here DEFLATE at its best
//! level, in nats: `8·ln 2` per byte), for items of bytes:
//! - `complexity`: `L(x)`;
//! - `corrected`: `neg_elbo - L(x)`, what the model saves over the compressor;
//! - `corrected_typicality`: `|corrected - H_c|`, `H_c` its training items' mean;
//! - `per_complexity`: `neg_elbo / L(x)`, the model's nats per nat of the compressor.

use rand::Rng;

use crate::data::Split;
use crate::engine::Matrix;
use crate::error::Result;
use crate::eval::importance_weighted_nll_per_image;
use crate::model::{Latent, Model, Workspace};

/// Items scored at once.
const ITEMS_PER_PASS: usize = 1024;

/// The codes of items: the posterior's mean and standard deviation, or an autoencoder's
/// code alone.
#[derive(Clone, Debug)]
pub struct Codes {
    /// items x latent.
    pub mean: Matrix,
    /// items x latent; `None` for an autoencoder.
    pub std: Option<Matrix>,
}

/// Encodes every item of `split` (with its labels, for a CVAE).
///
/// # Errors
/// A CVAE given a label beyond its classes.
pub fn encode(model: &Model, split: &Split) -> Result<Codes> {
    let latent = model.config.latent;
    let variational = model.encoder.head.has_posterior();
    let mut mean = Matrix::zeros(split.len(), latent);
    let mut std = variational.then(|| Matrix::zeros(split.len(), latent));
    let (mut ws, mut x) = (Workspace::default(), Matrix::default());
    let indices: Vec<usize> = (0..split.len()).collect();
    let per_pass = model.rows_per_pass();
    for (n, chunk) in indices.chunks(per_pass).enumerate() {
        split.batch_into(chunk, &mut x);
        let condition = model.condition(&split.labels_of(chunk))?;
        model.encode(&x, condition.as_ref(), &mut ws);
        let at = n * per_pass * latent..(n * per_pass + chunk.len()) * latent;
        mean.data[at.clone()].copy_from_slice(&model.encoder.head.code(&ws).data);
        if let Some(std) = &mut std {
            for (s, &v) in std.data[at].iter_mut().zip(&ws.logvar.data) {
                *s = (0.5 * v).exp();
            }
        }
    }
    Ok(Codes { mean, std })
}

/// Codes from the file at `path`, for a model of `latent` dimensions: an NPY array of
/// items x latent, or items x 2 x latent as [`encode`]'s NPY holds them (whose means are
/// taken), or a CSV table (its `mu_` columns as `vae encode` writes them, else every column).
///
/// # Errors
/// A file that does not read, or codes of another width.
pub fn read_codes(path: &std::path::Path, latent: usize) -> Result<Matrix> {
    let bad = |problem: String| crate::error::Error::data_file(path, problem);
    let is_npy = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("npy"));
    let (rows, values) = if is_npy {
        let array = crate::data::npy::read(path)?;
        let floats: Vec<f32> = match array.values {
            crate::data::Values::Floats(f) => f,
            crate::data::Values::Bytes(b) => b.into_iter().map(f32::from).collect(),
        };
        match array.shape[..] {
            [n, l] if l == latent => (n, floats),
            [n, 2, l] if l == latent => (n, floats.chunks_exact(2 * l).flat_map(|c| c[..l].to_vec()).collect()),
            _ => {
                return Err(bad(format!(
                    "shape {}: codes of this run are N x {latent} (or N x 2 x {latent})",
                    crate::data::npy::shape_text(&array.shape)
                )));
            }
        }
    } else {
        // `vae encode`'s own tables have text columns first (item, label): read the labels
        // as such, then pick the codes.
        let t = crate::data::table::read(path, None).or_else(|_| crate::data::table::read(path, Some("item")))?;
        let mu: Vec<usize> = t
            .columns
            .iter()
            .enumerate()
            .filter(|(_, c)| c.starts_with("mu_"))
            .map(|(i, _)| i)
            .collect();
        let picked: Vec<usize> = if mu.is_empty() {
            (0..t.columns.len()).collect()
        } else {
            mu
        };
        if picked.len() != latent {
            return Err(bad(format!(
                "{} code columns; this run's codes have {latent}",
                picked.len()
            )));
        }
        let width = t.columns.len();
        let all = &t.values;
        let values = (0..t.rows)
            .flat_map(|r| picked.iter().map(move |&c| all[r * width + c]))
            .collect();
        (t.rows, values)
    };
    if rows == 0 {
        return Err(bad("holds no codes".into()));
    }
    Ok(Matrix::from_vec(rows, latent, values))
}

/// One item's scores (see [the module](self)).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ItemScore {
    pub neg_elbo: f64,
    pub reconstruction: f64,
    pub kl: f64,
    pub neg_log_px: Option<f64>,
    /// `L(x)` in nats, for items of bytes.
    pub complexity: Option<f64>,
}

/// What the typicality scores measure distance from: the mean scores of the run's own
/// training items.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Typical {
    pub neg_elbo: f64,
    /// Of `neg_elbo - L(x)`, for items of bytes.
    pub corrected: Option<f64>,
}

impl Typical {
    /// The mean scores of `scores`.
    pub fn of(scores: &[ItemScore]) -> Typical {
        let n = scores.len().max(1) as f64;
        let corrected: Option<Vec<f64>> = scores.iter().map(|s| s.complexity.map(|c| s.neg_elbo - c)).collect();
        Typical {
            neg_elbo: scores.iter().map(|s| s.neg_elbo).sum::<f64>() / n,
            corrected: corrected.map(|c| c.iter().sum::<f64>() / n),
        }
    }
}

/// A score of an item, given the typical scores: `None` where it does not apply.
pub type Measure = fn(&ItemScore, &Typical) -> Option<f64>;

/// Every score by name, in the order tables list them (see [the module](self)).
pub const MEASURES: [(&str, Measure); 9] = [
    ("neg_elbo", |s, _| Some(s.neg_elbo)),
    ("reconstruction", |s, _| Some(s.reconstruction)),
    ("kl", |s, _| Some(s.kl)),
    ("neg_log_px", |s, _| s.neg_log_px),
    ("typicality", |s, t| Some((s.neg_elbo - t.neg_elbo).abs())),
    ("complexity", |s, _| s.complexity),
    ("corrected", |s, _| s.complexity.map(|c| s.neg_elbo - c)),
    ("corrected_typicality", |s, t| {
        Some((s.neg_elbo - s.complexity? - t.corrected?).abs())
    }),
    ("per_complexity", |s, _| s.complexity.map(|c| s.neg_elbo / c.max(1.0))),
];

/// `L(x)`: the length DEFLATE at its best level gives `bytes`, in nats.
pub fn complexity(bytes: &[u8]) -> f64 {
    use std::io::Write;
    let mut deflate = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
    deflate.write_all(bytes).expect("writing to memory");
    let length = deflate.finish().expect("writing to memory").len();
    length as f64 * 8.0 * std::f64::consts::LN_2
}

/// The scores of every item of `split`; with `iw_samples`, the importance-weighted
/// estimate too ([`importance_weighted_nll_per_image`]).
///
/// # Errors
/// A CVAE given a label beyond its classes; `iw_samples` for an autoencoder.
pub fn score(model: &Model, split: &Split, iw_samples: Option<usize>, rng: &mut impl Rng) -> Result<Vec<ItemScore>> {
    let (mut ws, mut x) = (Workspace::default(), Matrix::default());
    let mut scores = Vec::with_capacity(split.len());
    let indices: Vec<usize> = (0..split.len()).collect();
    for chunk in indices.chunks(ITEMS_PER_PASS) {
        split.batch_into(chunk, &mut x);
        let condition = model.condition(&split.labels_of(chunk))?;
        model.forward(&x, condition.as_ref(), &mut ws, Latent::Sample(&mut *rng));
        model.loss(&x, &mut ws, false);
        for (&r, &k) in ws.recon_rows.iter().zip(&ws.kl_rows) {
            let (reconstruction, kl) = (r as f64, k as f64);
            scores.push(ItemScore {
                neg_elbo: reconstruction + kl,
                reconstruction,
                kl,
                neg_log_px: None,
                complexity: None,
            });
        }
    }
    if split.images.values.as_bytes().is_some() {
        for (i, s) in scores.iter_mut().enumerate() {
            s.complexity = split.images.image(i).map(complexity);
        }
    }
    if let Some(k) = iw_samples {
        let iw = importance_weighted_nll_per_image(model, split, k, rng, &mut |_| {})?;
        for (s, nll) in scores.iter_mut().zip(iw.nll) {
            s.neg_log_px = Some(nll);
        }
    }
    Ok(scores)
}

/// The area under the ROC curve of telling `unusual` from `usual` by a score (higher:
/// more unusual): the chance that an unusual item scores above a usual one, ties counted
/// half (the Mann-Whitney statistic). 0.5 is chance; below 0.5, the score ranks the other
/// way round. `None` when either set is empty.
pub fn auroc(usual: &[f64], unusual: &[f64]) -> Option<f64> {
    if usual.is_empty() || unusual.is_empty() {
        return None;
    }
    // Every score with its set, ranked; tied scores share their mean rank.
    let mut all: Vec<(f64, bool)> = usual
        .iter()
        .map(|&s| (s, false))
        .chain(unusual.iter().map(|&s| (s, true)))
        .collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < all.len() {
        let mut j = i;
        while j + 1 < all.len() && all[j + 1].0 == all[i].0 {
            j += 1;
        }
        let mean_rank = (i + j) as f64 / 2.0 + 1.0;
        rank_sum += mean_rank * all[i..=j].iter().filter(|(_, u)| *u).count() as f64;
        i = j + 1;
    }
    let (n, m) = (unusual.len() as f64, usual.len() as f64);
    Some((rank_sum - n * (n + 1.0) / 2.0) / (n * m))
}

#[cfg(test)]
mod tests {
    use super::{auroc, complexity};

    #[test]
    fn complexity_is_the_compressed_length_in_nats() {
        let flat = complexity(&[0u8; 784]);
        use rand::RngExt;
        let mut rng = crate::rng::seeded(3);
        let noisy: Vec<u8> = (0..784).map(|_| rng.random::<u8>()).collect();
        assert!(flat < 200.0, "a blank image compresses to a few bytes: {flat}");
        assert!(complexity(&noisy) > 784.0 * 8.0 * 0.69 * 0.9, "noise does not compress");
    }

    #[test]
    fn auroc_is_the_chance_an_unusual_item_scores_higher() {
        assert_eq!(auroc(&[1.0, 2.0], &[3.0, 4.0]), Some(1.0));
        assert_eq!(auroc(&[3.0, 4.0], &[1.0, 2.0]), Some(0.0));
        assert_eq!(auroc(&[1.0, 3.0], &[2.0, 4.0]), Some(0.75));
        assert_eq!(auroc(&[1.0, 1.0], &[1.0]), Some(0.5), "ties count half");
        assert_eq!(auroc(&[], &[1.0]), None);
    }
}
