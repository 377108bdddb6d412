//! The seed schedule of a run: every random choice of an epoch derives from (seed, epoch) alone,
//! so that a run resumed at an epoch's end repeats an uninterrupted one exactly.

/// The device's seed for epoch `epoch` (dropout masks, a retrained suffix's initialisation).
pub fn epoch_seed(seed: u64, epoch: usize) -> u64 {
    seed.wrapping_mul(1_000_003).wrapping_add(epoch as u64)
}

/// The seed of epoch `epoch`'s augmentation (crops and flips) and of a streamed folder's order.
pub fn augment_seed(seed: u64, epoch: usize) -> u64 {
    seed.wrapping_mul(7_000_003).wrapping_add(epoch as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epochs_and_seeds_never_share_a_seed_nearby() {
        let mut seen = std::collections::HashSet::new();
        for seed in 1..20 {
            for epoch in 0..100 {
                assert!(seen.insert(epoch_seed(seed, epoch)));
                assert_ne!(epoch_seed(seed, epoch), augment_seed(seed, epoch));
            }
        }
    }
}
