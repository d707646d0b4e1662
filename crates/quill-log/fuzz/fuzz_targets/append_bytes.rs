//! Appending arbitrary bytes either fails cleanly (log untouched) or succeeds and reads back.
#![no_main]

use libfuzzer_sys::fuzz_target;
use quill_log::{AppendContext, GroupCommitter, Log, LogConfig};

fuzz_target!(|data: &[u8]| {
    let Ok(dir) = tempfile::tempdir() else { return };
    let Ok(committer) = GroupCommitter::start() else { return };
    let Ok(mut log) = Log::open(dir.path(), LogConfig::default(), committer) else { return };
    let context = AppendContext { now_ms: 0, leader_epoch: 0 };
    match log.append(data, context) {
        Ok(info) => {
            let Ok(read) = log.read(0, usize::MAX, i64::MAX) else {
                panic!("an accepted append must read back");
            };
            assert_eq!(read.bytes.len(), data.len());
            assert_eq!(read.next_offset, info.last_offset + 1);
        }
        Err(_) => {
            assert_eq!(log.log_end_offset(), 0);
            assert_eq!(log.size_bytes(), 0);
        }
    }
});
