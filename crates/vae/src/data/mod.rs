//! Image datasets: the IDX file format, the named datasets and where they are found, their
//! download, and the batches the trainer reads.

pub mod catalog;
pub mod download;
mod embedded;
pub mod idx;

pub use catalog::{DataDirs, DatasetName, DatasetSpec, Location};
pub use idx::Images;

use crate::engine::Matrix;

/// Images with their labels.
#[derive(Clone, Debug)]
pub struct Split {
    pub images: Images,
    pub labels: Vec<u8>,
}

impl Split {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.images.count
    }

    /// Whether the split holds no image.
    pub fn is_empty(&self) -> bool {
        self.images.count == 0
    }

    /// The first `n` images (or all, if fewer).
    pub fn take(&self, n: usize) -> Split {
        let n = n.min(self.len());
        let pixels = self.images.pixels_per_image();
        Split {
            images: Images {
                count: n,
                height: self.images.height,
                width: self.images.width,
                pixels: self.images.pixels[..n * pixels].to_vec(),
            },
            labels: self.labels[..n].to_vec(),
        }
    }

    /// Images `indices` as a batch with pixels scaled to [0, 1].
    ///
    /// # Shapes
    /// `out`: indices.len() x pixels (reshaped).
    pub fn batch_into(&self, indices: &[usize], out: &mut Matrix) {
        let pixels = self.images.pixels_per_image();
        out.reshape_for_overwrite(indices.len(), pixels);
        for (row, &i) in out.data.chunks_exact_mut(pixels).zip(indices) {
            for (o, &p) in row.iter_mut().zip(self.images.image(i)) {
                *o = p as f32 / 255.0;
            }
        }
    }

    /// Images `start..end` as a batch.
    pub fn range_batch(&self, start: usize, end: usize) -> Matrix {
        let indices: Vec<usize> = (start..end.min(self.len())).collect();
        let mut out = Matrix::default();
        self.batch_into(&indices, &mut out);
        out
    }
}

/// A dataset's training and test splits.
#[derive(Clone, Debug)]
pub struct Dataset {
    /// The name it was asked for by: a known name or a directory.
    pub name: String,
    pub train: Split,
    pub test: Split,
}
