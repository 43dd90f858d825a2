//! The IDX reader on arbitrary bytes, raw and through gzip: it must return an error or data,
//! never panic, hang or allocate without bound.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let source = Path::new("fuzz-input");
    let _ = vae::data::idx::parse_images(data, source);
    let _ = vae::data::idx::parse_labels(data, source);
    let _ = vae::data::idx::parse_images(flate2::read::GzDecoder::new(data), source);
});
