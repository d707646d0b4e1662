use crate::records::{Compression, CompressionLevels};

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

/// `cleanup.policy`: what happens to old data. Kafka allows `delete`, `compact` or both.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CleanupPolicy {
    /// `delete`: segments past `retention.ms` / `retention.bytes` are deleted.
    pub delete: bool,
    /// `compact`: only the latest record per key is kept; every record needs a key.
    pub compact: bool,
}

impl CleanupPolicy {
    pub const DELETE: CleanupPolicy = CleanupPolicy {
        delete: true,
        compact: false,
    };
    pub const COMPACT: CleanupPolicy = CleanupPolicy {
        delete: false,
        compact: true,
    };
    pub const COMPACT_DELETE: CleanupPolicy = CleanupPolicy {
        delete: true,
        compact: true,
    };

    /// Parses Kafka's list value (`"compact,delete"`, whitespace allowed); `None` for an
    /// unknown entry (quill-meta refuses those before they are stored).
    pub fn parse(value: &str) -> Option<CleanupPolicy> {
        let mut policy = CleanupPolicy {
            delete: false,
            compact: false,
        };
        for entry in value
            .split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
        {
            match entry {
                "delete" => policy.delete = true,
                "compact" => policy.compact = true,
                _ => return None,
            }
        }
        Some(policy)
    }
}

impl Default for CleanupPolicy {
    fn default() -> Self {
        CleanupPolicy::DELETE
    }
}

pub const DEFAULT_SEGMENT_BYTES: u64 = 1 << 30;
pub const DEFAULT_SEGMENT_MS: i64 = 7 * 24 * 60 * 60 * 1000;
pub const DEFAULT_INDEX_INTERVAL_BYTES: u32 = 4096;
pub const DEFAULT_SEGMENT_INDEX_BYTES: u32 = 10 * 1024 * 1024;
/// Kafka's default: 1 MiB plus the 12-byte log overhead.
pub const DEFAULT_MAX_MESSAGE_BYTES: u32 = 1_048_588;
pub const DEFAULT_RETENTION_MS: i64 = 7 * 24 * 60 * 60 * 1000;
/// Kafka 4.0's default `message.timestamp.before.max.ms`: unlimited.
pub const DEFAULT_TIMESTAMP_BEFORE_MAX_MS: i64 = i64::MAX;
/// Kafka 4.0's default `message.timestamp.after.max.ms`: one hour.
pub const DEFAULT_TIMESTAMP_AFTER_MAX_MS: i64 = 3_600_000;

/// Kafka's default `min.cleanable.dirty.ratio`.
pub const DEFAULT_MIN_CLEANABLE_DIRTY_RATIO: f64 = 0.5;
/// Kafka's default `delete.retention.ms`: one day.
pub const DEFAULT_DELETE_RETENTION_MS: i64 = 24 * 60 * 60 * 1000;

/// The log cleaner's per-topic settings (only used under `cleanup.policy` `compact`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CompactionConfig {
    /// `min.cleanable.dirty.ratio`: dirty bytes / all bytes above which the log is cleaned.
    pub min_cleanable_dirty_ratio: f64,
    /// `min.compaction.lag.ms`: records younger than this are never cleaned.
    pub min_compaction_lag_ms: i64,
    /// `max.compaction.lag.ms`: dirty records older than this force a cleaning whatever the
    /// ratio.
    pub max_compaction_lag_ms: i64,
    /// `delete.retention.ms`: how long tombstones (and unneeded transaction markers) stay after
    /// the cleaner first saw them.
    pub delete_retention_ms: i64,
}

impl Default for CompactionConfig {
    fn default() -> Self {
        CompactionConfig {
            min_cleanable_dirty_ratio: DEFAULT_MIN_CLEANABLE_DIRTY_RATIO,
            min_compaction_lag_ms: 0,
            max_compaction_lag_ms: i64::MAX,
            delete_retention_ms: DEFAULT_DELETE_RETENTION_MS,
        }
    }
}

// The ratio is a plain finite number (quill-meta validates it to [0, 1]).
impl Eq for CompactionConfig {}
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
    /// `cleanup.policy`
    pub cleanup_policy: CleanupPolicy,
    /// `message.timestamp.before.max.ms`: how far a CreateTime timestamp may lag the clock.
    pub timestamp_before_max_ms: i64,
    /// `message.timestamp.after.max.ms`: how far a CreateTime timestamp may lead the clock.
    pub timestamp_after_max_ms: i64,
    /// `compression.type`: `None` is `producer` (the producer's bytes are stored as sent);
    /// a codec makes the log re-encode batches of any other codec into it, as Kafka does.
    pub compression_type: Option<Compression>,
    /// `compression.gzip.level`, `compression.lz4.level`, `compression.zstd.level`.
    pub compression_levels: CompressionLevels,
    /// `min.cleanable.dirty.ratio`, `min/max.compaction.lag.ms`, `delete.retention.ms`.
    pub compaction: CompactionConfig,
}

impl LogConfig {
    /// How old the active segment may grow before the next append rolls it: `segment.ms`, or
    /// on a compacted log `max.compaction.lag.ms` when smaller, so records can be cleaned within
    /// that lag although the active segment never is (Kafka's `LogConfig.maxSegmentMs`).
    pub fn max_segment_ms(&self) -> i64 {
        let max_lag_ms = self.compaction.max_compaction_lag_ms;
        if self.cleanup_policy.compact && max_lag_ms > 0 {
            self.segment_ms.min(max_lag_ms)
        } else {
            self.segment_ms
        }
    }
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
            cleanup_policy: CleanupPolicy::DELETE,
            timestamp_before_max_ms: DEFAULT_TIMESTAMP_BEFORE_MAX_MS,
            timestamp_after_max_ms: DEFAULT_TIMESTAMP_AFTER_MAX_MS,
            compression_type: None,
            compression_levels: CompressionLevels::default(),
            compaction: CompactionConfig::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleanup_policy_parses_kafka_lists() {
        assert_eq!(CleanupPolicy::parse("delete"), Some(CleanupPolicy::DELETE));
        assert_eq!(
            CleanupPolicy::parse("compact"),
            Some(CleanupPolicy::COMPACT)
        );
        assert_eq!(
            CleanupPolicy::parse(" compact , delete "),
            Some(CleanupPolicy::COMPACT_DELETE)
        );
        assert_eq!(
            CleanupPolicy::parse("delete,compact"),
            Some(CleanupPolicy::COMPACT_DELETE)
        );
        assert_eq!(CleanupPolicy::parse("compact,remove"), None);
        assert_eq!(LogConfig::default().cleanup_policy, CleanupPolicy::DELETE);
    }

    #[test]
    fn max_compaction_lag_bounds_the_active_segment_of_compacted_logs_only() {
        let lagged = |cleanup_policy, max_compaction_lag_ms| LogConfig {
            segment_ms: 10_000,
            cleanup_policy,
            compaction: CompactionConfig {
                max_compaction_lag_ms,
                ..CompactionConfig::default()
            },
            ..LogConfig::default()
        };
        assert_eq!(lagged(CleanupPolicy::COMPACT, 100).max_segment_ms(), 100);
        assert_eq!(
            lagged(CleanupPolicy::COMPACT_DELETE, 100).max_segment_ms(),
            100
        );
        assert_eq!(
            lagged(CleanupPolicy::COMPACT, 60_000).max_segment_ms(),
            10_000
        );
        assert_eq!(
            lagged(CleanupPolicy::COMPACT, i64::MAX).max_segment_ms(),
            10_000
        );
        assert_eq!(lagged(CleanupPolicy::DELETE, 100).max_segment_ms(), 10_000);
    }
}
