//! Seeded shuffling and batching: the order of epoch `e` depends only on (seed, e), so a resumed
//! run sees exactly the batches an uninterrupted one would.

use rand::SeedableRng;
use rand::rngs::Xoshiro256PlusPlus;
use rand::seq::SliceRandom;

/// A permutation of `0..n` for one epoch.
pub fn epoch_order(n: usize, seed: u64, epoch: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    order.shuffle(&mut rng);
    order
}

/// One batch: its index within the epoch and the sample indices it holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Batch {
    pub index: usize,
    pub samples: Vec<usize>,
}

/// Batches of an epoch order; the last one may be smaller.
pub struct Batches {
    order: Vec<usize>,
    size: usize,
    next: usize,
}

impl Batches {
    pub fn new(order: Vec<usize>, size: usize) -> Self {
        Self { order, size: size.max(1), next: 0 }
    }

    pub fn count(n: usize, size: usize) -> usize {
        n.div_ceil(size.max(1))
    }
}

impl Iterator for Batches {
    type Item = Batch;
    fn next(&mut self) -> Option<Batch> {
        let start = self.next * self.size;
        if start >= self.order.len() {
            return None;
        }
        let end = (start + self.size).min(self.order.len());
        let batch = Batch { index: self.next, samples: self.order[start..end].to_vec() };
        self.next += 1;
        Some(batch)
    }
}
