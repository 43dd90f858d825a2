//! The standardisation in front of a Gaussian-likelihood model: each input dimension is
//! seen as `(x - mean) / std`, with the mean and standard deviation of the training split,
//! fitted once when a run starts and kept in its folder (`scaler.json`). The model applies
//! it itself, on every use (training, evaluation, encoding, decoding back to the data's
//! units), so no caller can forget it.

use serde::{Deserialize, Serialize};

use crate::data::Split;
use crate::engine::Matrix;
use crate::error::{Error, Result};

/// A dimension whose standard deviation is below this is constant: it is centred, not
/// scaled (its values would otherwise be divided by nearly 0).
const MIN_STD: f64 = 1e-6;

/// Per-dimension mean and standard deviation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Scaler {
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
}

impl Scaler {
    /// The scaler that changes nothing, for `values` dimensions.
    pub fn identity(values: usize) -> Scaler {
        Scaler {
            mean: vec![0.0; values],
            std: vec![1.0; values],
        }
    }

    /// The mean and (population) standard deviation of each dimension over `split`, as the
    /// model reads its values; 1 for a constant dimension.
    pub fn fit(split: &Split) -> Scaler {
        let d = split.images.pixels_per_image();
        let (mut sum, mut squares) = (vec![0f64; d], vec![0f64; d]);
        let mut row = vec![0f32; d];
        for i in 0..split.len() {
            split.images.read_into(i, &mut row);
            for ((s, q), &v) in sum.iter_mut().zip(&mut squares).zip(&row) {
                *s += v as f64;
                *q += v as f64 * v as f64;
            }
        }
        let n = split.len().max(1) as f64;
        let mean: Vec<f64> = sum.iter().map(|s| s / n).collect();
        let std = squares
            .iter()
            .zip(&mean)
            .map(|(q, m)| {
                let sd = (q / n - m * m).max(0.0).sqrt();
                if sd < MIN_STD * m.abs().max(1.0) {
                    1.0
                } else {
                    sd as f32
                }
            })
            .collect();
        Scaler {
            mean: mean.iter().map(|&m| m as f32).collect(),
            std,
        }
    }

    /// `Σ_d ln std_d`: what turns a negative log-density of standardised values into one
    /// of the values as given (the change of variables' Jacobian).
    pub fn log_std_sum(&self) -> f32 {
        self.std.iter().map(|&s| (s as f64).ln()).sum::<f64>() as f32
    }

    /// `(x - mean) / std` into `out`.
    ///
    /// # Shapes
    /// `x`: batch x values; `out`: the same (reshaped).
    pub fn standardize_into(&self, x: &Matrix, out: &mut Matrix) {
        out.reshape_for_overwrite(x.rows, x.cols);
        for (o, v) in out
            .data
            .chunks_exact_mut(x.cols.max(1))
            .zip(x.data.chunks_exact(x.cols.max(1)))
        {
            for (((o, &v), &m), &s) in o.iter_mut().zip(v).zip(&self.mean).zip(&self.std) {
                *o = (v - m) / s;
            }
        }
    }

    /// `mean + std · s` in place: standardised values back in the data's units.
    pub fn unstandardize(&self, s: &mut Matrix) {
        for row in s.data.chunks_exact_mut(s.cols.max(1)) {
            for ((v, &m), &sd) in row.iter_mut().zip(&self.mean).zip(&self.std) {
                *v = m + sd * *v;
            }
        }
    }

    /// Refuses a scaler that does not fit `values` dimensions or holds numbers that are not
    /// finite, or standard deviations that are not positive.
    pub fn validate(&self, values: usize) -> std::result::Result<(), String> {
        if self.mean.len() != values || self.std.len() != values {
            return Err(format!(
                "has {} means and {} standard deviations for a model of {values} values",
                self.mean.len(),
                self.std.len()
            ));
        }
        if !self.mean.iter().all(|m| m.is_finite()) || !self.std.iter().all(|s| s.is_finite() && *s > 0.0) {
            return Err("holds a mean that is not finite or a standard deviation that is not positive".into());
        }
        Ok(())
    }

    /// Reads and checks the scaler at `path` (JSON) for a model of `values` values.
    pub fn read(path: &std::path::Path, values: usize) -> Result<Scaler> {
        let text = crate::files::read_limited(path, 64 << 20)?;
        let scaler: Scaler =
            serde_json::from_slice(&text).map_err(|e| Error::data_file(path, format!("not a scaler ({e})")))?;
        scaler.validate(values).map_err(|p| Error::data_file(path, p))?;
        Ok(scaler)
    }

    /// The scaler as JSON, for its file.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a scaler always serialises") + "\n"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{Images, Values};

    #[test]
    fn fitted_values_are_standard_and_come_back() {
        let split = Split {
            images: Images {
                count: 4,
                height: 1,
                width: 2,
                channels: 1,
                values: Values::Floats(vec![1.0, 5.0, 3.0, 5.0, 5.0, 5.0, 7.0, 5.0]),
            },
            labels: vec![0; 4],
        };
        let scaler = Scaler::fit(&split);
        assert_eq!(scaler.mean, [4.0, 5.0]);
        assert!((scaler.std[0] - 5f32.sqrt()).abs() < 1e-6);
        assert_eq!(scaler.std[1], 1.0, "a constant column is centred, not scaled");
        let x = Matrix::from_vec(1, 2, vec![6.0, 5.0]);
        let mut z = Matrix::default();
        scaler.standardize_into(&x, &mut z);
        assert!((z.data[0] - 2.0 / 5f32.sqrt()).abs() < 1e-6 && z.data[1] == 0.0);
        scaler.unstandardize(&mut z);
        assert!((z.data[0] - 6.0).abs() < 1e-6 && z.data[1] == 5.0);
        assert!(scaler.validate(3).is_err());
        assert!(
            Scaler {
                mean: vec![0.0],
                std: vec![0.0]
            }
            .validate(1)
            .is_err()
        );
    }
}
