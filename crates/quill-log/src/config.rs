/// How a record's timestamp is chosen (`message.timestamp.type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum TimestampType {
    #[default]
    CreateTime,
    LogAppendTime,
}

/// When appended data is forced to disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum FlushPolicy {
    /// Acknowledge only after `fdatasync` (shared by concurrent appends: group commit).
    #[default]
    EveryAppend,
    /// `fdatasync` at most this often; acknowledgements do not wait for it.
    IntervalMs(u64),
    /// Leave flushing to the OS page cache (Kafka's default; a crash may lose acknowledged data).
    Os,
}

pub const DEFAULT_SEGMENT_BYTES: u64 = 1 << 30;
pub const DEFAULT_SEGMENT_MS: i64 = 7 * 24 * 60 * 60 * 1000;
pub const DEFAULT_INDEX_INTERVAL_BYTES: u32 = 4096;
pub const DEFAULT_SEGMENT_INDEX_BYTES: u32 = 10 * 1024 * 1024;
/// Kafka's default: 1 MiB plus the 12-byte log overhead.
pub const DEFAULT_MAX_MESSAGE_BYTES: u32 = 1_048_588;
pub const DEFAULT_RETENTION_MS: i64 = 7 * 24 * 60 * 60 * 1000;
pub const DEFAULT_FILE_DELETE_DELAY_MS: i64 = 60_000;

/// Per-partition settings, named after Kafka's topic configs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogConfig {
    /// `segment.bytes`
    pub segment_bytes: u64,
    /// `segment.ms`
    pub segment_ms: i64,
    /// `index.interval.bytes`
    pub index_interval_bytes: u32,
    /// `segment.index.bytes`: the most bytes either index of one segment may hold.
    pub segment_index_bytes: u32,
    /// `max.message.bytes`: the largest batch, including its 12-byte log overhead.
    pub max_message_bytes: u32,
    /// `message.timestamp.type`
    pub timestamp_type: TimestampType,
    /// `retention.ms`; negative means unlimited.
    pub retention_ms: i64,
    /// `retention.bytes`; negative means unlimited.
    pub retention_bytes: i64,
    /// `segment.jitter.ms`: each segment rolls up to this much (random, below `segment.ms`)
    /// before `segment.ms`, so partitions created together do not all roll at once.
    pub segment_jitter_ms: i64,
    /// `file.delete.delay.ms`: segments removed by retention, DeleteRecords or truncation are
    /// renamed `*.deleted` and their files deleted this much later (0: at once).
    pub file_delete_delay_ms: i64,
    pub flush: FlushPolicy,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: DEFAULT_SEGMENT_BYTES,
            segment_ms: DEFAULT_SEGMENT_MS,
            index_interval_bytes: DEFAULT_INDEX_INTERVAL_BYTES,
            segment_index_bytes: DEFAULT_SEGMENT_INDEX_BYTES,
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            timestamp_type: TimestampType::CreateTime,
            retention_ms: DEFAULT_RETENTION_MS,
            retention_bytes: -1,
            segment_jitter_ms: 0,
            file_delete_delay_ms: DEFAULT_FILE_DELETE_DELAY_MS,
            flush: FlushPolicy::EveryAppend,
        }
    }
}
