//! The one tensor type the engine needs: a dense row-major `f32` matrix, one row per image.

use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

/// A dense row-major matrix of `f32`. A batch is a matrix with one row per item.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Matrix {
    pub rows: usize,
    pub cols: usize,
    pub data: Vec<f32>,
}

impl Matrix {
    /// A `rows x cols` matrix of zeros.
    pub fn zeros(rows: usize, cols: usize) -> Self {
        Matrix {
            rows,
            cols,
            data: vec![0.0; rows * cols],
        }
    }

    /// Wraps `data` (row-major, `rows * cols` values).
    ///
    /// # Panics
    /// If `data.len() != rows * cols`: that is a bug in the caller, not bad input.
    pub fn from_vec(rows: usize, cols: usize, data: Vec<f32>) -> Self {
        assert_eq!(
            data.len(),
            rows * cols,
            "Matrix::from_vec: {rows}x{cols} needs {} values",
            rows * cols
        );
        Matrix { rows, cols, data }
    }

    /// A matrix of independent standard normal draws.
    pub fn standard_normal(rows: usize, cols: usize, rng: &mut impl Rng) -> Self {
        let data = (0..rows * cols).map(|_| StandardNormal.sample(rng)).collect();
        Matrix { rows, cols, data }
    }

    /// Fills the matrix with standard normal draws, in row-major order.
    pub fn fill_standard_normal(&mut self, rng: &mut impl Rng) {
        for v in &mut self.data {
            *v = StandardNormal.sample(rng);
        }
    }

    /// Gives the matrix a new shape, reusing its allocation. The values are unspecified: every
    /// caller overwrites them.
    pub fn reshape_for_overwrite(&mut self, rows: usize, cols: usize) {
        self.rows = rows;
        self.cols = cols;
        self.data.resize(rows * cols, 0.0);
    }

    /// Row `i` as a slice.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.cols..(i + 1) * self.cols]
    }

    /// Row `i` as a mutable slice.
    pub fn row_mut(&mut self, i: usize) -> &mut [f32] {
        &mut self.data[i * self.cols..(i + 1) * self.cols]
    }

    /// The rows of `self` followed by the rows of `other`.
    pub fn stacked(&self, other: &Matrix) -> Matrix {
        assert_eq!(self.cols, other.cols, "Matrix::stacked: widths differ");
        let mut data = self.data.clone();
        data.extend_from_slice(&other.data);
        Matrix::from_vec(self.rows + other.rows, self.cols, data)
    }

    /// Each row `k` times in a row, into `dst`: row `r` of `dst` is row `r / k` of `self`
    /// (the batch of an importance-weighted pass, `k` draws per image).
    pub fn repeat_rows_into(&self, k: usize, dst: &mut Matrix) {
        dst.reshape_for_overwrite(self.rows * k, self.cols);
        for (r, row) in dst.data.chunks_exact_mut(self.cols.max(1)).enumerate() {
            row.copy_from_slice(self.row(r / k));
        }
    }

    /// `(rows, cols)`.
    pub fn shape(&self) -> (usize, usize) {
        (self.rows, self.cols)
    }
}
