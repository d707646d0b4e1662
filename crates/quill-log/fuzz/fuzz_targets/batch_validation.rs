//! Batch validation must never panic, and whatever it accepts must be internally consistent.
#![no_main]

use libfuzzer_sys::fuzz_target;
use quill_log::validate_producer_batch;

fuzz_target!(|data: &[u8]| {
    if let Ok(header) = validate_producer_batch(data, 1 << 20) {
        assert!(header.size_bytes <= data.len());
        assert_eq!(i64::from(header.last_offset_delta), i64::from(header.records_count) - 1);
    }
});
