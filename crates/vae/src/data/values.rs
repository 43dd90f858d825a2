//! The values of a dataset's items, kept the way they came: bytes for pixels (a full image
//! dataset is tens of megabytes as bytes, four times that as floats), floats for data read
//! as real numbers (NPY floats, CSV).

use crate::engine::fastmath::simd_kernel;

/// Every value of a set of items, item after item.
#[derive(Clone, Debug, PartialEq)]
pub enum Values {
    /// Bytes 0..=255, standing for `byte / 255` in [0, 1].
    Bytes(Vec<u8>),
    /// Real numbers, used as they are.
    Floats(Vec<f32>),
}

impl Default for Values {
    fn default() -> Self {
        Values::Bytes(Vec::new())
    }
}

impl Values {
    /// How many values there are.
    pub fn len(&self) -> usize {
        match self {
            Values::Bytes(b) => b.len(),
            Values::Floats(f) => f.len(),
        }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes, when the values are bytes.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Values::Bytes(b) => Some(b),
            Values::Floats(_) => None,
        }
    }

    /// Values `range` as a new set.
    pub fn slice(&self, range: std::ops::Range<usize>) -> Values {
        match self {
            Values::Bytes(b) => Values::Bytes(b[range].to_vec()),
            Values::Floats(f) => Values::Floats(f[range].to_vec()),
        }
    }

    /// Splits off the values from `at` on, as [`Vec::split_off`] does.
    pub fn split_off(&mut self, at: usize) -> Values {
        match self {
            Values::Bytes(b) => Values::Bytes(b.split_off(at)),
            Values::Floats(f) => Values::Floats(f.split_off(at)),
        }
    }

    /// Values `start..start + out.len()` as the model reads them: bytes scaled to [0, 1],
    /// floats as they are.
    pub fn read_into(&self, start: usize, out: &mut [f32]) {
        let end = start + out.len();
        match self {
            Values::Bytes(b) => bytes_to_unit(&b[start..end], out),
            Values::Floats(f) => out.copy_from_slice(&f[start..end]),
        }
    }

    /// Smallest, largest and mean value as the model reads them, over all `sets` together;
    /// `None` when there are no values.
    pub fn summary<'a>(sets: impl IntoIterator<Item = &'a Values>) -> Option<ValueSummary> {
        let (mut low, mut high, mut sum, mut n) = (f64::INFINITY, f64::NEG_INFINITY, 0f64, 0usize);
        let mut bytes = true;
        for set in sets {
            bytes &= set.as_bytes().is_some();
            match set {
                Values::Bytes(b) => {
                    // Bytes are counted, not converted one by one: 60,000 images are 47 M values.
                    let mut counts = [0u64; 256];
                    for &v in b {
                        counts[v as usize] += 1;
                    }
                    for (v, &c) in counts.iter().enumerate().filter(|(_, c)| **c > 0) {
                        let x = v as f64 / 255.0;
                        (low, high, sum) = (low.min(x), high.max(x), sum + x * c as f64);
                    }
                }
                Values::Floats(f) => {
                    for &v in f {
                        let x = v as f64;
                        (low, high, sum) = (low.min(x), high.max(x), sum + x);
                    }
                }
            }
            n += set.len();
        }
        (n > 0).then(|| ValueSummary {
            min: low,
            max: high,
            mean: sum / n as f64,
            bytes,
        })
    }
}

/// Smallest, largest and mean of a set of values, as the model reads them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ValueSummary {
    pub min: f64,
    pub max: f64,
    pub mean: f64,
    /// Whether the values are kept as bytes (and so lie in [0, 1]).
    pub bytes: bool,
}

impl ValueSummary {
    /// Whether every value lies in [0, 1], as the Bernoulli and squared-error likelihoods
    /// of pixel intensities need.
    pub fn in_unit_interval(&self) -> bool {
        self.min >= 0.0 && self.max <= 1.0
    }
}

/// `out[i] = bytes[i] / 255`, in vectors of 8 where the processor has AVX2. A division, not
/// a multiplication by 1/255, which would round some values differently.
#[inline(always)]
fn bytes_to_unit_kernel(bytes: &[u8], out: &mut [f32]) {
    for (o, &p) in out.iter_mut().zip(bytes) {
        *o = p as f32 / 255.0;
    }
}

simd_kernel! { fn bytes_to_unit(bytes: &[u8], out: &mut [f32]) = bytes_to_unit_kernel; }
