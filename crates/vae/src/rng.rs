//! Seeded randomness. Every random choice in a run comes from a generator derived from the
//! run's seed and a named stream, so the same seed gives the same run, and drawing more in one
//! stream (say, evaluation) never shifts another (say, training noise).

use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;

/// The generator used everywhere: small, fast, and its state serialises into a checkpoint.
pub type RunRng = Xoshiro256PlusPlus;

/// The independent random streams of a run.
#[derive(Clone, Copy, Debug)]
pub enum Stream {
    /// Weight initialisation.
    Init,
    /// The order of the training images in an epoch.
    Shuffle { epoch: usize },
    /// The reparameterization noise of training steps (one stream for the whole run, its state
    /// saved in checkpoints).
    TrainNoise,
    /// Noise of the test-set evaluation after an epoch.
    Eval { epoch: usize },
    /// The codes behind `samples.png`, the same every epoch so progress is visible.
    Samples,
    /// The one binarization of a split (`static`, and the test split under `dynamic`).
    Binarize,
    /// The fresh binarization of one training batch under `dynamic`.
    BinarizeBatch { epoch: usize, batch: usize },
}

impl Stream {
    fn id(self) -> u64 {
        match self {
            Stream::Init => 1,
            Stream::TrainNoise => 2,
            Stream::Samples => 3,
            Stream::Shuffle { epoch } => (4 << 32) | epoch as u64,
            Stream::Eval { epoch } => (5 << 32) | epoch as u64,
            Stream::Binarize => 6,
            Stream::BinarizeBatch { epoch, batch } => (7 << 56) | ((epoch as u64) << 28) | batch as u64,
        }
    }
}

/// The generator of `stream` in a run seeded with `seed`.
pub fn stream_rng(seed: u64, stream: Stream) -> RunRng {
    // seed_from_u64 runs its input through SplitMix64, so nearby inputs give unrelated states.
    RunRng::seed_from_u64(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ stream.id())
}

/// A generator seeded directly, for one-off commands (`vae sample --seed S`).
pub fn seeded(seed: u64) -> RunRng {
    RunRng::seed_from_u64(seed)
}

/// Fisher-Yates permutation of `0..n`.
pub fn permutation(n: usize, rng: &mut RunRng) -> Vec<usize> {
    use rand::RngExt;
    let mut order: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = rng.random_range(0..=i);
        order.swap(i, j);
    }
    order
}
