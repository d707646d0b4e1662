/// How a record's timestamp is chosen (`message.timestamp.type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum TimestampType {
    #[default]
    CreateTime,
    LogAppendTime,
}

/// When appended data is forced to disk: Kafka's `flush.messages` and `flush.ms`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum FlushPolicy {
    /// `flush.messages=1`, Quill's default: every append is fdatasynced before `on_durable`
    /// reports it (concurrent appends share one sync: group commit).
    #[default]
    EveryAppend,
    /// fdatasync (on the group-commit thread) once `messages` records were appended since the
    /// last one, or once `interval_ms` passed since the last one (`flush_if_due`), whichever
    /// comes first; `None` turns a trigger off, both `None` leaves write-back to the kernel
    /// (Kafka's default). `on_durable` does not wait for either.
    Periodic {
        messages: Option<u64>,
        interval_ms: Option<u64>,
    },
}

impl FlushPolicy {
    /// Kafka's default: no forced fsync, the kernel writes dirty pages back when it likes.
    pub const OS_MANAGED: FlushPolicy = FlushPolicy::Periodic {
        messages: None,
        interval_ms: None,
    };

    /// The policy Kafka's `flush.messages` and `flush.ms` select (`i64::MAX` means never).
    pub fn from_kafka(flush_messages: i64, flush_ms: i64) -> FlushPolicy {
        if flush_messages <= 1 {
            return FlushPolicy::EveryAppend;
        }
        let trigger = |value: i64| (value != i64::MAX).then(|| value.max(0).unsigned_abs());
        FlushPolicy::Periodic {
            messages: trigger(flush_messages),
            interval_ms: trigger(flush_ms),
        }
    }
}

pub const DEFAULT_SEGMENT_BYTES: u64 = 1 << 30;
pub const DEFAULT_SEGMENT_MS: i64 = 7 * 24 * 60 * 60 * 1000;
pub const DEFAULT_INDEX_INTERVAL_BYTES: u32 = 4096;
pub const DEFAULT_SEGMENT_INDEX_BYTES: u32 = 10 * 1024 * 1024;
/// Kafka's default: 1 MiB plus the 12-byte log overhead.
pub const DEFAULT_MAX_MESSAGE_BYTES: u32 = 1_048_588;
pub const DEFAULT_RETENTION_MS: i64 = 7 * 24 * 60 * 60 * 1000;

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
            flush: FlushPolicy::EveryAppend,
        }
    }
}
