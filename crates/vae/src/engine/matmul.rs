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

/// Rows of `op(a)` per piece of a sharded product (see [`gemm_views`]): the height of the
/// product library's AVX-512 micro-kernel, so a piece wastes none of it.
const SHARD_ROWS: usize = 64;
/// The tallest product split into pieces of [`SHARD_ROWS`]. Up to here (a batch of 128 or
/// 256) the library's own split of one product between threads keeps them waiting on each
/// other (137 GFLOP/s for 128 x 784 x 400 on 2 cores, 212 as two pieces of 64); above it,
/// its split is as good as any.
const SHARDED_UP_TO: usize = 256;

/// Multiply-adds (`m·n·k`) below which a product runs on the calling thread alone: handing
/// work to another thread costs some microseconds, as long as a small product takes, and the
/// second stage of a two-stage sampler (16-64-64-16 at batch 128) spent more time waking and
/// yielding threads than multiplying. How a product is cut into pieces does not change, only
/// who computes them, so the bits are the same either way.
const RUN_HERE_BELOW: usize = 1 << 19;

/// A sharded product at least twice this wide is cut into pieces of its columns (two for a
/// batch of 128) instead of pieces of rows: each thread then packs and reads only its half of the right operand
/// (the layer's weights, 1.25 MB for 784 x 400) rather than all of it, and the left one (a
/// batch of 128 rows) is small enough to read twice. Every output value is still the same sum
/// in the same order, so the bits do not change (trained weights checked identical); 25
/// epochs on the built-in sample took 3.31 s against 3.40 (mean of four alternated runs).
const SPLIT_COLUMNS_FROM: usize = 128;
/// Column pieces start at multiples of this: the values in one AVX-512 register, so no piece
/// but the last ends in a part-filled one.
const COLUMN_ALIGN: usize = 16;

/// Raw pointers of a product handed to the threads computing its pieces: each piece writes
/// its own rows or columns of `out` and only reads `a` and `b`.
#[derive(Clone, Copy)]
struct Operands {
    out: *mut f32,
    a: *const f32,
    b: *const f32,
}
// SAFETY: see `Operands`: the pieces' writes are to disjoint values, everything else is read.
unsafe impl Send for Operands {}
unsafe impl Sync for Operands {}

impl Operands {
    /// The operands whole: a closure calling this captures the `Send` struct, not its
    /// pointer fields one by one.
    fn get(&self) -> (*mut f32, *const f32, *const f32) {
        (self.out, self.a, self.b)
    }
}

/// [`matmul_views`] with the parallelism given.
///
/// A product of [`SHARDED_UP_TO`] rows or fewer (more than [`SHARD_ROWS`]) runs as pieces,
/// each on one thread: pieces of its columns when it is wide (see [`SPLIT_COLUMNS_FROM`]),
/// else pieces of [`SHARD_ROWS`] rows. How it is cut depends on its
/// shape alone, never on the thread count, so one thread computing every piece gets the
/// same bits as many.
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
    let parallelism = if m * n * k < RUN_HERE_BELOW {
        gemm::Parallelism::None
    } else {
        parallelism
    };
    let operands = Operands {
        out: out.data.as_mut_ptr(),
        a: a.data.as_ptr(),
        b: b.data.as_ptr(),
    };
    // Rows `start..start + rows`, columns `col..col + cols` of the product.
    let piece = |start: usize, rows: usize, col: usize, cols: usize, parallelism: gemm::Parallelism| {
        let (out, a, b) = operands.get();
        // SAFETY: the three buffers hold m x k, k x n and m x n values at the strides
        // computed above (checked by the shape assertions); rows `start..start + rows` of
        // `op(a)` begin `start` row strides into `a`, columns `col..col + cols` of `op(b)`
        // begin `col` column strides into `b`, and the piece of `out` begins `start * n + col`
        // values into it, all within the buffers since `start + rows <= m` and
        // `col + cols <= n`. `out` does not alias `a` or `b` (it is borrowed mutably while
        // they are borrowed shared), and no two pieces write the same values.
        unsafe {
            gemm::gemm(
                rows,
                cols,
                k,
                out.add(start * n + col),
                1,
                n as isize,
                accumulate,
                a.offset(start as isize * a_rs),
                a_cs,
                a_rs,
                b.offset(col as isize * b_cs),
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
    };
    if m <= SHARD_ROWS || m > SHARDED_UP_TO {
        return piece(0, m, 0, n, parallelism);
    }
    let run = |pieces: usize, piece_of: &(dyn Fn(usize) + Sync)| match parallelism {
        gemm::Parallelism::None => (0..pieces).for_each(piece_of),
        _ => (0..pieces).into_par_iter().for_each(piece_of),
    };
    // As many column pieces as there would be pieces of rows, rounded down to a power of two
    // (so that two or four threads share them evenly), each at least SPLIT_COLUMNS_FROM wide.
    let column_pieces = m.div_ceil(SHARD_ROWS).min(n / SPLIT_COLUMNS_FROM);
    if column_pieces >= 2 {
        let width = n.div_ceil(1 << column_pieces.ilog2()).next_multiple_of(COLUMN_ALIGN);
        return run(n.div_ceil(width), &|p| {
            let col = p * width;
            piece(0, m, col, width.min(n - col), gemm::Parallelism::None)
        });
    }
    let rows_of = |p: usize| SHARD_ROWS.min(m - p * SHARD_ROWS);
    run(m.div_ceil(SHARD_ROWS), &|p| {
        piece(p * SHARD_ROWS, rows_of(p), 0, n, gemm::Parallelism::None)
    })
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
    fn a_product_cut_into_pieces_matches_the_definition_and_the_thread_count_changes_no_bit() {
        // 130 rows: two full pieces of 64 and one of 2, for every way of reading `a`.
        for op_a in [Op::N, Op::T] {
            let a = if op_a == Op::N {
                counting(130, 9, 0.1)
            } else {
                counting(9, 130, 0.1)
            };
            let b = counting(9, 5, 0.4);
            let expected = naive(&a, op_a, &b, Op::N);
            let (mut alone, mut shared) = (Matrix::zeros(130, 5), Matrix::zeros(130, 5));
            gemm_views(
                &mut alone,
                (&a).into(),
                op_a,
                (&b).into(),
                Op::N,
                true,
                gemm::Parallelism::None,
            );
            gemm_views(
                &mut shared,
                (&a).into(),
                op_a,
                (&b).into(),
                Op::N,
                true,
                gemm::Parallelism::Rayon(2),
            );
            assert_eq!(alone, shared, "{op_a:?}");
            for (x, y) in alone.data.iter().zip(&expected.data) {
                assert!((x - y).abs() < 1e-4, "{op_a:?}: {x} vs {y}");
            }
        }
    }

    #[test]
    fn a_wide_product_cut_into_column_pieces_matches_the_definition_for_any_thread_count() {
        // 130 rows and 300 columns: two pieces of 160 and 140 columns; 256 rows and 784
        // columns: four of 208, the last 160. `b` read as stored and transposed (its column
        // stride then a whole row); large enough to run in parallel.
        for ((m, n), op_b) in [(130, 300), (256, 784)]
            .into_iter()
            .flat_map(|s| [(s, Op::N), (s, Op::T)])
        {
            let a = counting(m, 16, 0.1);
            let b = if op_b == Op::N {
                counting(16, n, 0.4)
            } else {
                counting(n, 16, 0.4)
            };
            let expected = naive(&a, Op::N, &b, op_b);
            let product = |parallelism| {
                let mut out = Matrix::default();
                gemm_views(&mut out, (&a).into(), Op::N, (&b).into(), op_b, false, parallelism);
                out
            };
            let (alone, shared) = (product(gemm::Parallelism::None), product(gemm::Parallelism::Rayon(2)));
            assert_eq!(alone, shared, "{op_b:?}");
            for (x, y) in alone.data.iter().zip(&expected.data) {
                assert!((x - y).abs() < 1e-3 * y.abs().max(1.0), "{op_b:?}: {x} vs {y}");
            }
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
