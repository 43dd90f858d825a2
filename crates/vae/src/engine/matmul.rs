//! Matrix products through the `gemm` crate. Transposes cost nothing: they are expressed as
//! strides, so `x · Wᵀ` reads the PyTorch-layout weight `W` (out x in) in place.

use rayon::prelude::*;

use super::matrix::Matrix;
use super::parallel::gemm_parallelism;

/// Whether an operand is used as stored or transposed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    N,
    T,
}

/// A borrowed row-major matrix: any slice seen with a shape, e.g. a batch of feature maps
/// seen as one row per pixel.
#[derive(Clone, Copy, Debug)]
pub struct MatView<'a> {
    pub rows: usize,
    pub cols: usize,
    pub data: &'a [f32],
}

impl<'a> MatView<'a> {
    /// `data` seen as `rows x cols`.
    ///
    /// # Panics
    /// If the sizes disagree (a bug in the caller).
    pub fn new(rows: usize, cols: usize, data: &'a [f32]) -> Self {
        assert_eq!(
            data.len(),
            rows * cols,
            "MatView::new: {rows}x{cols} needs {} values",
            rows * cols
        );
        MatView { rows, cols, data }
    }
}

impl<'a> From<&'a Matrix> for MatView<'a> {
    fn from(m: &'a Matrix) -> Self {
        MatView {
            rows: m.rows,
            cols: m.cols,
            data: &m.data,
        }
    }
}

/// Row-major strides `(row_stride, col_stride)` of `m` seen through `op`, and its shape then.
fn view(m: &MatView, op: Op) -> (usize, usize, isize, isize) {
    match op {
        Op::N => (m.rows, m.cols, m.cols as isize, 1),
        Op::T => (m.cols, m.rows, 1, m.cols as isize),
    }
}

/// `out = op(a) · op(b)`, or `out += op(a) · op(b)` when `accumulate`.
///
/// # Shapes
/// `op(a)`: m x k, `op(b)`: k x n, `out`: m x n (reshaped when not accumulating).
///
/// # Panics
/// On mismatched inner dimensions, which is a bug in the calling layer.
pub fn matmul(out: &mut Matrix, a: &Matrix, op_a: Op, b: &Matrix, op_b: Op, accumulate: bool) {
    matmul_views(out, a.into(), op_a, b.into(), op_b, accumulate)
}

/// [`matmul`] over borrowed views.
pub fn matmul_views(out: &mut Matrix, a: MatView, op_a: Op, b: MatView, op_b: Op, accumulate: bool) {
    gemm_views(out, a, op_a, b, op_b, accumulate, gemm_parallelism());
}

/// [`matmul_views`] on the calling thread alone: for callers that split the work between
/// threads themselves (by rows, in fixed chunks), where a product that spread out too would
/// only add synchronisation.
pub fn matmul_views_here(out: &mut Matrix, a: MatView, op_a: Op, b: MatView, op_b: Op) {
    gemm_views(out, a, op_a, b, op_b, false, gemm::Parallelism::None);
}

/// Rows per partial product of [`matmul_tn_tall`]: fixed, so that the partials, their sum and
/// with it the result are the same whatever the thread count.
const TALL_CHUNK: usize = 1024;

/// `out = aᵀ · b` for `a` and `b` with many rows and few columns: a convolution's weight
/// gradient, summed over every position of every image. The product's own parallel split runs
/// over the small output and leaves threads idle; here the rows are cut into fixed chunks
/// whose partial products run in parallel and are then added in order.
///
/// # Shapes
/// `a`: k x m, `b`: k x n; `out`: m x n (reshaped).
pub fn matmul_tn_tall(out: &mut Matrix, a: MatView, b: MatView) {
    assert_eq!(
        a.rows, b.rows,
        "matmul_tn_tall: row counts {} and {} differ",
        a.rows, b.rows
    );
    let k = a.rows;
    if k <= TALL_CHUNK {
        return matmul_views(out, a, Op::T, b, Op::N, false);
    }
    let starts: Vec<usize> = (0..k).step_by(TALL_CHUNK).collect();
    let partials: Vec<Matrix> = starts
        .par_iter()
        .map(|&start| {
            let end = (start + TALL_CHUNK).min(k);
            let a = MatView::new(end - start, a.cols, &a.data[start * a.cols..end * a.cols]);
            let b = MatView::new(end - start, b.cols, &b.data[start * b.cols..end * b.cols]);
            let mut partial = Matrix::default();
            gemm_views(&mut partial, a, Op::T, b, Op::N, false, gemm::Parallelism::None);
            partial
        })
        .collect();
    out.reshape_for_overwrite(a.cols, b.cols);
    out.data.copy_from_slice(&partials[0].data);
    for partial in &partials[1..] {
        for (o, v) in out.data.iter_mut().zip(&partial.data) {
            *o += v;
        }
    }
}

/// [`matmul_views`] with the parallelism given.
fn gemm_views(
    out: &mut Matrix,
    a: MatView,
    op_a: Op,
    b: MatView,
    op_b: Op,
    accumulate: bool,
    parallelism: gemm::Parallelism,
) {
    let (m, k, a_rs, a_cs) = view(&a, op_a);
    let (k2, n, b_rs, b_cs) = view(&b, op_b);
    assert_eq!(k, k2, "matmul: inner dimensions {k} and {k2} differ");
    if accumulate {
        assert_eq!(out.shape(), (m, n), "matmul: accumulator has the wrong shape");
    } else {
        out.reshape_for_overwrite(m, n);
    }
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            out.data.fill(0.0);
        }
        return;
    }
    // SAFETY: the three buffers hold m x k, k x n and m x n values at the strides computed
    // above (checked by the shape assertions), and `out` does not alias `a` or `b` (it is
    // borrowed mutably while they are borrowed shared).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            out.data.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            a.data.as_ptr(),
            a_cs,
            a_rs,
            b.data.as_ptr(),
            b_cs,
            b_rs,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: &Matrix, op_a: Op, b: &Matrix, op_b: Op) -> Matrix {
        let at = |i, j| match op_a {
            Op::N => a.data[i * a.cols + j],
            Op::T => a.data[j * a.cols + i],
        };
        let bt = |i, j| match op_b {
            Op::N => b.data[i * b.cols + j],
            Op::T => b.data[j * b.cols + i],
        };
        let (m, k) = if op_a == Op::N {
            (a.rows, a.cols)
        } else {
            (a.cols, a.rows)
        };
        let n = if op_b == Op::N { b.cols } else { b.rows };
        let mut out = Matrix::zeros(m, n);
        for i in 0..m {
            for j in 0..n {
                out.data[i * n + j] = (0..k).map(|p| at(i, p) * bt(p, j)).sum();
            }
        }
        out
    }

    fn counting(rows: usize, cols: usize, offset: f32) -> Matrix {
        let data = (0..rows * cols).map(|i| (i as f32 * 0.37 + offset).sin()).collect();
        Matrix::from_vec(rows, cols, data)
    }

    #[test]
    fn a_tall_product_in_chunks_matches_the_definition() {
        let (a, b) = (counting(2500, 6, 0.3), counting(2500, 4, 0.7));
        let mut out = Matrix::default();
        matmul_tn_tall(&mut out, (&a).into(), (&b).into());
        let expected = naive(&a, Op::T, &b, Op::N);
        assert_eq!(out.shape(), (6, 4));
        for (x, y) in out.data.iter().zip(&expected.data) {
            assert!((x - y).abs() < 1e-3, "{x} vs {y}");
        }
    }

    #[test]
    fn every_transpose_combination_matches_the_definition() {
        for (op_a, op_b) in [(Op::N, Op::N), (Op::N, Op::T), (Op::T, Op::N), (Op::T, Op::T)] {
            let a = if op_a == Op::N {
                counting(5, 7, 0.1)
            } else {
                counting(7, 5, 0.1)
            };
            let b = if op_b == Op::N {
                counting(7, 3, 0.2)
            } else {
                counting(3, 7, 0.2)
            };
            let mut out = Matrix::default();
            matmul(&mut out, &a, op_a, &b, op_b, false);
            let expected = naive(&a, op_a, &b, op_b);
            for (x, y) in out.data.iter().zip(&expected.data) {
                assert!((x - y).abs() < 1e-5, "{op_a:?}{op_b:?}: {x} vs {y}");
            }
            // Accumulating adds the same product again.
            matmul(&mut out, &a, op_a, &b, op_b, true);
            for (x, y) in out.data.iter().zip(&expected.data) {
                assert!((x - 2.0 * y).abs() < 1e-5);
            }
        }
    }
}
