//! Row-wise work on row-major buffers that the layers share: a bias broadcast onto every row
//! of an output or added onto it, and the short copies that patches are made of.

use rayon::prelude::*;

use super::parallel::VALUES_PER_TASK;

/// Every row of `out` (a whole number of rows as long as `row`) set to `row`: a layer's bias,
/// broadcast before its product accumulates onto it. In parallel tasks of whole rows: at
/// batch 1024 the output of a 784-wide layer is 3 MB, which one thread copying alone took
/// while the others waited.
pub fn broadcast_rows(out: &mut [f32], row: &[f32]) {
    for_each_row(out, row.len(), |r| copy_run(r, row));
}

/// `row` added onto every row of `out`, in parallel tasks of whole rows as in
/// [`broadcast_rows`].
pub fn add_to_rows(out: &mut [f32], row: &[f32]) {
    for_each_row(out, row.len(), |r| r.iter_mut().zip(row).for_each(|(v, b)| *v += b));
}

/// `f` on each `width`-value row of `out`, the rows handed to threads in tasks of about
/// [`VALUES_PER_TASK`] values. Each row is worked on alone, so the split changes no bit.
fn for_each_row(out: &mut [f32], width: usize, f: impl Fn(&mut [f32]) + Sync) {
    let width = width.max(1);
    let rows_per_task = (VALUES_PER_TASK / width).max(1);
    out.par_chunks_mut(rows_per_task * width)
        .for_each(|rows| rows.chunks_exact_mut(width).for_each(&f));
}

/// `dst.copy_from_slice(src)` for short runs (a patch's channels, a layer's bias): in
/// blocks of 16 values where the run is made of them, each block a copy of known size that
/// compiles to a few vector moves, where a copy of unknown size is a call to `memcpy` (for
/// a patch's 32 channels, that call cost as much as the copy).
#[inline(always)]
pub fn copy_run(dst: &mut [f32], src: &[f32]) {
    const BLOCK: usize = 16;
    if !dst.len().is_multiple_of(BLOCK) {
        dst.copy_from_slice(src);
        return;
    }
    for (d, s) in dst.chunks_exact_mut(BLOCK).zip(src.chunks_exact(BLOCK)) {
        let (d, s): (&mut [f32; BLOCK], &[f32; BLOCK]) = (d.try_into().unwrap(), s.try_into().unwrap());
        *d = *s;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bias_reaches_every_row_across_parallel_tasks() {
        // 300 rows of 784: several tasks of 83 rows and a shorter last one; and rows of 20,
        // which are not whole blocks of a run copy.
        for width in [784, 20] {
            let bias: Vec<f32> = (0..width).map(|i| i as f32 * 0.5 - 7.0).collect();
            let mut out = vec![f32::NAN; 300 * width];
            broadcast_rows(&mut out, &bias);
            for row in out.chunks_exact(width) {
                assert_eq!(row, &bias[..]);
            }
            let mut sums: Vec<f32> = (0..300 * width).map(|i| (i / width) as f32).collect();
            add_to_rows(&mut sums, &bias);
            for (r, row) in sums.chunks_exact(width).enumerate() {
                for (v, b) in row.iter().zip(&bias) {
                    assert_eq!(*v, r as f32 + b);
                }
            }
        }
    }
}
