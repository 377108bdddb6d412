//! IDX files and image/label pairs: any bytes give a dataset or an error naming the file.
#![no_main]

use hidden_neurons::data::{Dataset, parse_idx_u8};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = parse_idx_u8("f.idx", data) {
        assert!(e.to_string().contains("f.idx"));
    }
    let (a, b) = data.split_at(data.len() / 2);
    if let Ok(d) = Dataset::from_idx("img", a, "lab", b) {
        assert_eq!(d.images.len(), d.len() * d.features);
    }
});
