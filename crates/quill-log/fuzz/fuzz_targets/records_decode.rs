//! The records section of a batch, in any codec, from arbitrary bytes: decoding never panics,
//! never reads past the decompression limit, and what it accepts is exactly `count` records.
#![no_main]

use libfuzzer_sys::fuzz_target;
use quill_log::records::{encode_batch, for_each_record};
use quill_log::{BatchFields, BatchHeader, Compression, CompressionLevels};

const LIMIT_BYTES: usize = 1 << 20;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, section)) = data.split_first() else { return };
    let count = i32::from(selector >> 3);
    let fields = BatchFields::producer(0, 0);
    let Ok(mut batch) =
        encode_batch(&fields, count, section, Compression::None, CompressionLevels::default())
    else {
        return;
    };
    // The section is taken as the payload of codec `selector & 7` (ids 5-7 are refused).
    batch[22] = selector & 7;
    let Ok(header) = BatchHeader::parse(&batch) else { return };
    let mut seen = 0usize;
    let result = for_each_record(&batch, &header, LIMIT_BYTES, |index, _record| {
        assert_eq!(index, seen);
        seen += 1;
        Ok(())
    });
    if let Ok(summary) = result {
        assert_eq!(summary.records, count as usize);
        assert_eq!(seen, count as usize);
        assert!(summary.records_bytes <= LIMIT_BYTES);
    }
});
