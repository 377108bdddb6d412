//! CIFAR-10 batch files and archives: any bytes give a split or an error naming the file.
#![no_main]

use hidden_neurons::data::{cifar_from_archive, parse_cifar_batch};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = parse_cifar_batch("data_batch_1.bin", data) {
        assert!(e.to_string().contains("data_batch_1.bin"));
    }
    if let Err(e) = cifar_from_archive("c.tar.gz", data) {
        assert!(e.to_string().contains("c.tar.gz"));
    }
});
