//! Checkpointed recorder states: any bytes give a consistent state or an error.
#![no_main]

use hidden_neurons::recording::RecorderState;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(state) = RecorderState::from_bytes(data) {
        for (counts, layer) in state.pos.iter().zip(&state.layers) {
            assert_eq!(counts.len(), state.items.saturating_mul(layer.neurons));
        }
    }
});
