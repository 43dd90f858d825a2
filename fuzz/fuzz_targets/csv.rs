//! The CSV table reader on arbitrary bytes, with and without a label column: it must return
//! an error or a table whose values fill its rows, never panic, hang or allocate without
//! bound.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for label in [None, Some("last"), Some("1"), Some("label")] {
        if let Ok(table) = vae::data::table::parse(data, Path::new("fuzz-input.csv"), label) {
            assert_eq!(table.values.len(), table.rows * table.columns.len());
            assert!(table.values.iter().all(|v| v.is_finite()));
            if let Some((_, cells)) = &table.labels {
                assert_eq!(cells.len(), table.rows);
            }
        }
    }
});
