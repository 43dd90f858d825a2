//! The NPY reader on arbitrary bytes: it must return an error or an array whose values fill
//! its shape, never panic, hang or allocate without bound.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(array) = vae::data::npy::parse(data, Path::new("fuzz-input.npy")) {
        assert_eq!(array.shape.iter().product::<usize>(), array.values.len());
    }
});
