//! Property tests of every parser of outside bytes (the stable-toolchain counterpart of the
//! cargo-fuzz targets in `fuzz/`): on arbitrary bytes, and on valid files with random damage,
//! each returns a value or an error naming the file, and never panics or allocates beyond the
//! input's declared size.


use hidden_neurons::data::{CIFAR_PIXELS, Dataset, cifar_from_archive, parse_cifar_batch, parse_idx_u8};
use hidden_neurons::recording::RecorderState;
use proptest::prelude::*;

#[path = "common/mod.rs"]
mod common;
use common::{gz, idx};

/// Damage to a valid file: overwrite bytes, cut it, or append to it.
#[derive(Clone, Debug)]
enum Damage {
    Set(usize, u8),
    Cut(usize),
    Append(Vec<u8>),
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Damage::Set(i, b)),
        any::<usize>().prop_map(Damage::Cut),
        proptest::collection::vec(any::<u8>(), 1..16).prop_map(Damage::Append),
    ]
}

fn apply(mut bytes: Vec<u8>, damages: &[Damage]) -> Vec<u8> {
    for d in damages {
        match d {
            Damage::Set(i, b) if !bytes.is_empty() => {
                let n = bytes.len();
                bytes[i % n] = *b;
            }
            Damage::Cut(i) => bytes.truncate(i % (bytes.len() + 1)),
            Damage::Append(tail) => bytes.extend_from_slice(tail),
            _ => {}
        }
    }
    bytes
}

/// A small recorder state: two layers, 3 items, 2 recordings.
fn valid_state() -> RecorderState {
    use hidden_neurons::model::LayerInfo;
    use hidden_neurons::recording::RecordingMode;
    let layer = |name: &str, neurons, positions| LayerInfo { name: name.into(), neurons, positions };
    RecorderState {
        mode: RecordingMode::Tracked,
        // The second has 4 positions, counted per position too (2 per channel).
        layers: vec![layer("dense1-relu", 2, 1), layer("conv-relu", 3, 4)],
        items: 3,
        tracked: 3,
        certainty_epsilon: 1e-7,
        recordings: 2,
        snapshot_neurons: vec![vec![1], vec![0, 2]],
        steps: vec![0, 10],
        pos: vec![vec![1.0; 6], vec![2.0; 9]],
        neg: vec![vec![0.0; 6], vec![1.0; 9]],
        snapshots: vec![vec![vec![0.5; 3]; 2], vec![vec![-0.5; 6]; 2]],
        position_choice: vec![vec![], vec![0, 1, 2, 3, 0, 1]],
        position_pos: vec![vec![], vec![1.0; 18]],
        position_neg: vec![vec![], vec![2.0; 18]],
    }
}

/// Cases per property: 2000, or `PROPTEST_CASES` (a long run: `PROPTEST_CASES=1000000`).
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(2000)
}

fn names_the_file(e: &impl std::fmt::Display, name: &str) {
    let msg = e.to_string();
    assert!(msg.contains(name), "the error should name {name}: {msg}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn idx_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        if let Err(e) = parse_idx_u8("any.idx", &bytes) {
            names_the_file(&e, "any.idx");
        }
    }

    #[test]
    fn idx_on_damaged_files(dims in proptest::collection::vec(0u32..6, 1..4), gzip in any::<bool>(), damages in proptest::collection::vec(damage(), 1..4)) {
        let n: u32 = dims.iter().product();
        let valid = idx(&dims, &vec![3; n as usize]);
        let valid = if gzip { gz(&valid) } else { valid };
        let bytes = apply(valid, &damages);
        match parse_idx_u8("d.idx", &bytes) {
            Ok(parsed) => prop_assert_eq!(parsed.data.len(), parsed.dims.iter().product::<usize>()),
            Err(e) => names_the_file(&e, "d.idx"),
        }
    }

    #[test]
    fn idx_pairs(images in proptest::collection::vec(any::<u8>(), 0..128), labels in proptest::collection::vec(any::<u8>(), 0..64), n in 0u32..4, side in 0u32..4) {
        let img = [idx(&[n, side, side], &vec![9; (n * side * side) as usize]), images].concat();
        let lab = [idx(&[n], &vec![1; n as usize]), labels].concat();
        match Dataset::from_idx("img", &img, "lab", &lab) {
            Ok(d) => {
                prop_assert!(d.features > 0 && !d.is_empty());
                prop_assert_eq!(d.images.len(), d.len() * d.features);
            }
            Err(e) => {
                let msg = e.to_string();
                prop_assert!(msg.contains("img") || msg.contains("lab"), "{}", msg);
            }
        }
    }

    #[test]
    fn cifar_batches(records in 0usize..3, damages in proptest::collection::vec(damage(), 0..3)) {
        let mut bytes = Vec::new();
        for r in 0..records {
            bytes.push((r % 10) as u8);
            bytes.extend(std::iter::repeat_n(r as u8, CIFAR_PIXELS));
        }
        let bytes = apply(bytes, &damages);
        match parse_cifar_batch("data_batch_1.bin", &bytes) {
            Ok(d) => prop_assert_eq!(d.images.len(), d.len() * CIFAR_PIXELS),
            Err(e) => names_the_file(&e, "data_batch_1.bin"),
        }
    }

    #[test]
    fn cifar_archives(bytes in proptest::collection::vec(any::<u8>(), 0..2048), gzip in any::<bool>()) {
        let bytes = if gzip { gz(&bytes) } else { bytes };
        if let Err(e) = cifar_from_archive("c.tar.gz", &bytes) {
            names_the_file(&e, "c.tar.gz");
        }
    }

    #[test]
    fn recorder_states(bytes in proptest::collection::vec(any::<u8>(), 0..256), damages in proptest::collection::vec(damage(), 1..4)) {
        let _ = RecorderState::from_bytes(&bytes);
        let valid = valid_state().to_bytes();
        prop_assert_eq!(RecorderState::from_bytes(&valid).unwrap(), valid_state());
        if let Ok(state) = RecorderState::from_bytes(&apply(valid, &damages)) {
            let sizes: Vec<usize> = state.layers.iter().map(|l| state.items * l.neurons).collect();
            prop_assert_eq!(state.pos.iter().map(Vec::len).collect::<Vec<_>>(), sizes);
        }
    }
}
