//! The records inside a v2 batch: decompression (bounded), a bounds-checked record reader, and
//! an encoder that builds whole batches. This is the one place the record layout lives.
//!
//! Layout of one record (all varints zigzag):
//! `length varint | attributes i8 | timestampDelta varlong | offsetDelta varint |
//!  keyLength varint | key | valueLength varint | value | headerCount varint |
//!  (headerKeyLength varint | headerKey | headerValueLength varint | headerValue)*`
//!
//! Memory is bounded for hostile input: decompression is streamed and stops as soon as the
//! records the header announced (plus one byte to detect trailing data) have been read, and the
//! bytes read may never exceed the caller's `max_decompressed_bytes`
//! ([`MAX_DECOMPRESSED_BATCH_BYTES`] on the append path). [`for_each_record`] holds one record
//! at a time; producer validation ([`validate_producer_records`]) holds none: it reads each
//! record's fields from the stream and skips its key, value and headers. What a decode may hold
//! besides that is the codec's window (zstd: at most the bytes decompressed; raw snappy, which
//! has no streaming form, the whole section, its declared size checked against the limit before
//! anything is allocated; an xerial snappy block) plus [`DECODER_STATE_BYTES`]:
//! [`decode_memory_bytes`] states the bound callers budget for.

use std::io::{self, BufRead, BufReader, Read, Write};

use crate::batch::{
    self, BatchHeader, ATTRIBUTES_OFFSET, BASE_OFFSET_OFFSET, BASE_SEQUENCE_OFFSET,
    BASE_TIMESTAMP_OFFSET, COMPRESSION_MASK, CRC_OFFSET, HEADER_BYTES, LAST_OFFSET_DELTA_OFFSET,
    LENGTH_OFFSET, LOG_OVERHEAD_BYTES, MAGIC_OFFSET, MAGIC_V2, MAX_TIMESTAMP_OFFSET,
    PARTITION_LEADER_EPOCH_OFFSET, PRODUCER_EPOCH_OFFSET, PRODUCER_ID_OFFSET, RECORDS_COUNT_OFFSET,
};
use crate::config::TimestampType;
use crate::error::{LogError, RecordError};

/// The most bytes the records section of one batch may decompress to. Kafka has no such limit;
/// Quill ties it to the largest batch a log can hold (`MAX_BATCH_BYTES`, 64 MiB), so every
/// batch it accepts could also be stored uncompressed. Beyond it: RECORD_TOO_LARGE.
pub const MAX_DECOMPRESSED_BATCH_BYTES: usize = 64 * 1024 * 1024;

/// zstd frames may ask for a window up to 2^31 bytes; a window larger than the output limit is
/// never needed, so frames asking for more than 2^26 (64 MiB) are refused as corrupt.
const ZSTD_WINDOW_LOG_MAX: u32 = 26;

/// Read-ahead of the decompressed stream: the most decompressed bytes held besides one record.
const STREAM_BUFFER_BYTES: usize = 64 * 1024;

/// What a decode holds whatever the decompressed size: an lz4 frame's two block buffers (4 MiB
/// each at most), the read-ahead buffer, gzip's and zstd's state (a zstd window is counted in
/// the decompressed bytes: it never holds more than was decompressed, plus one 128 KiB block).
pub const DECODER_STATE_BYTES: usize = 9 * 1024 * 1024;

/// The `setting` of the RECORD_TOO_LARGE error raised when a batch decompresses (or a
/// re-encoded request grows) past the caller's limit, so a caller that chose a smaller limit
/// than [`MAX_DECOMPRESSED_BATCH_BYTES`] can tell it apart and retry with a larger one.
pub const DECOMPRESSED_LIMIT_SETTING: &str =
    "decompressed batch size (MAX_DECOMPRESSED_BATCH_BYTES)";

/// The most memory one decode of a batch holds (besides the batch itself) when it may
/// decompress to at most `max_decompressed_bytes`: [`for_each_record`] holds one record (at
/// most that) and the codec's window (at most that), producer validation only the window.
pub fn decode_memory_bytes(max_decompressed_bytes: usize, holds_records: bool) -> usize {
    let records = if holds_records {
        max_decompressed_bytes
    } else {
        0
    };
    max_decompressed_bytes
        .saturating_add(records)
        .saturating_add(DECODER_STATE_BYTES)
}

/// xerial snappy-java's stream header ("\x82SNAPPY\0", version 1, compatible version 1), which
/// Java producers write; librdkafka writes raw snappy. Kafka (snappy-java's `SnappyInputStream`)
/// reads both: input without this header is one raw snappy block.
const XERIAL_SNAPPY_HEADER: &[u8; 16] = b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01";
const XERIAL_SNAPPY_MAGIC_BYTES: usize = 8;
/// snappy-java's block size when writing.
const XERIAL_SNAPPY_BLOCK_BYTES: usize = 32 * 1024;

/// A batch's compression codec (attributes bits 0–2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Compression {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl Compression {
    /// The codec of a batch header's attributes; ids 5–7 are INVALID_RECORD, as in Kafka.
    pub fn from_attributes(attributes: i16) -> Result<Compression, LogError> {
        match attributes & COMPRESSION_MASK {
            0 => Ok(Compression::None),
            1 => Ok(Compression::Gzip),
            2 => Ok(Compression::Snappy),
            3 => Ok(Compression::Lz4),
            4 => Ok(Compression::Zstd),
            id => Err(LogError::InvalidRecord(format!(
                "unknown compression codec id {id}"
            ))),
        }
    }

    pub fn id(self) -> i16 {
        match self {
            Compression::None => 0,
            Compression::Gzip => 1,
            Compression::Snappy => 2,
            Compression::Lz4 => 3,
            Compression::Zstd => 4,
        }
    }

    /// Kafka's name (`compression.type` values; `none` is `uncompressed` there).
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }
}

/// One record header (key is a UTF-8 string in Kafka, kept as bytes here).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordHeader<'a> {
    pub key: &'a [u8],
    pub value: Option<&'a [u8]>,
}

/// One decoded record, borrowing from the batch or from the decompression buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordView<'a> {
    pub attributes: i8,
    pub timestamp_delta: i64,
    pub offset_delta: i32,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    header_count: usize,
    /// The encoded headers (already checked to hold exactly `header_count` well-formed ones).
    headers_bytes: &'a [u8],
}

impl<'a> RecordView<'a> {
    pub fn header_count(&self) -> usize {
        self.header_count
    }

    pub fn headers(&self) -> RecordHeaders<'a> {
        RecordHeaders {
            bytes: self.headers_bytes,
            remaining: self.header_count,
        }
    }

    /// The record's timestamp: base + delta, or the header's max timestamp under
    /// `LogAppendTime` (what consumers see, as in Kafka's `DefaultRecord.readFrom`).
    pub fn timestamp_ms(&self, header: &BatchHeader) -> i64 {
        if header.is_log_append_time() {
            header.max_timestamp_ms
        } else {
            header.base_timestamp_ms.wrapping_add(self.timestamp_delta)
        }
    }
}

/// The headers of a record, decoded lazily (they were validated when the record was parsed).
#[derive(Clone, Debug)]
pub struct RecordHeaders<'a> {
    bytes: &'a [u8],
    remaining: usize,
}

impl<'a> Iterator for RecordHeaders<'a> {
    type Item = RecordHeader<'a>;

    fn next(&mut self) -> Option<RecordHeader<'a>> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        let mut cursor = Cursor::new(self.bytes);
        let header = cursor.header().ok()?;
        self.bytes = cursor.rest();
        Some(header)
    }
}

/// Parses one record's body (the bytes after its length prefix, exactly that long). Every length
/// is checked against what is left; the record must end exactly at its last header.
/// Errors are INVALID_RECORD, as Kafka's `DefaultRecord.readFrom` raises `InvalidRecordException`.
pub fn parse_record(body: &[u8]) -> Result<RecordView<'_>, LogError> {
    let mut cursor = Cursor::new(body);
    let attributes = cursor.byte()? as i8;
    let timestamp_delta = cursor.varlong()?;
    let offset_delta = cursor.varint()?;
    let key = cursor.nullable_bytes("key")?;
    let value = cursor.nullable_bytes("value")?;
    let header_count = cursor.varint()?;
    let header_count = usize::try_from(header_count).map_err(|_| {
        LogError::InvalidRecord(format!(
            "Found invalid number of record headers {header_count}"
        ))
    })?;
    let headers_bytes = cursor.rest();
    for _ in 0..header_count {
        cursor.header()?;
    }
    if !cursor.rest().is_empty() {
        return Err(LogError::InvalidRecord(format!(
            "Invalid record size: expected to read {} bytes in record payload, but there are {} \
             bytes left",
            body.len() - cursor.rest().len(),
            cursor.rest().len()
        )));
    }
    Ok(RecordView {
        attributes,
        timestamp_delta,
        offset_delta,
        key,
        value,
        header_count,
        headers_bytes,
    })
}

/// A bounds-checked reader over one record body.
struct Cursor<'a> {
    bytes: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn new(bytes: &'a [u8]) -> Cursor<'a> {
        Cursor { bytes }
    }

    fn rest(&self) -> &'a [u8] {
        self.bytes
    }

    fn truncated() -> LogError {
        LogError::InvalidRecord("Found invalid record structure: record is truncated".to_string())
    }

    fn byte(&mut self) -> Result<u8, LogError> {
        let (&first, rest) = self.bytes.split_first().ok_or_else(Self::truncated)?;
        self.bytes = rest;
        Ok(first)
    }

    fn varint(&mut self) -> Result<i32, LogError> {
        let (value, used) = batch::read_varint(self.bytes).ok_or_else(|| {
            LogError::InvalidRecord("Found invalid record structure: bad varint".to_string())
        })?;
        self.bytes = &self.bytes[used..];
        Ok(value)
    }

    fn varlong(&mut self) -> Result<i64, LogError> {
        let (value, used) = batch::read_varlong(self.bytes).ok_or_else(|| {
            LogError::InvalidRecord("Found invalid record structure: bad varlong".to_string())
        })?;
        self.bytes = &self.bytes[used..];
        Ok(value)
    }

    fn take(&mut self, length: usize) -> Result<&'a [u8], LogError> {
        if length > self.bytes.len() {
            return Err(Self::truncated());
        }
        let (taken, rest) = self.bytes.split_at(length);
        self.bytes = rest;
        Ok(taken)
    }

    /// A varint length (-1 = null) followed by that many bytes.
    fn nullable_bytes(&mut self, what: &str) -> Result<Option<&'a [u8]>, LogError> {
        let length = self.varint()?;
        if length == -1 {
            return Ok(None);
        }
        let length = usize::try_from(length).map_err(|_| {
            LogError::InvalidRecord(format!("Invalid negative {what} size {length}"))
        })?;
        self.take(length).map(Some)
    }

    fn header(&mut self) -> Result<RecordHeader<'a>, LogError> {
        let Some(key) = self.nullable_bytes("header key")? else {
            return Err(LogError::InvalidRecord(
                "Invalid negative header key size".to_string(),
            ));
        };
        let value = self.nullable_bytes("header value")?;
        Ok(RecordHeader { key, value })
    }
}

/// What walking a batch's records found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordsSummary {
    /// Number of records visited (always the header's count on success).
    pub records: usize,
    /// Bytes of the (decompressed) records section.
    pub records_bytes: usize,
}

/// Calls `visit(index, record)` for every record of one whole batch (`batch` is exactly
/// `header.size_bytes` long), decompressing as needed. Checks that exactly `records_count`
/// records fill the records section (nothing missing, nothing trailing) and that each record's
/// lengths stay inside it. Does not check offset deltas or timestamps (compacted batches have
/// gaps): that is [`validate_producer_records`]'s job.
///
/// Errors: CORRUPT_MESSAGE when the compressed data cannot be decompressed, RECORD_TOO_LARGE
/// past `max_decompressed_bytes`, INVALID_RECORD for a malformed records section.
pub fn for_each_record<F>(
    batch: &[u8],
    header: &BatchHeader,
    max_decompressed_bytes: usize,
    visit: F,
) -> Result<RecordsSummary, LogError>
where
    F: FnMut(usize, &RecordView<'_>) -> Result<(), LogError>,
{
    decode_records(
        batch,
        header,
        max_decompressed_bytes,
        &mut WholeRecords {
            visit,
            record: Vec::new(),
        },
    )
}

/// The fields of one record that producer validation needs: read from a decompressing stream
/// without holding the key, value or headers (which may be many megabytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct RecordFields {
    offset_delta: i32,
    timestamp_delta: i64,
    has_key: bool,
}

impl RecordFields {
    fn of(record: &RecordView<'_>) -> RecordFields {
        RecordFields {
            offset_delta: record.offset_delta,
            timestamp_delta: record.timestamp_delta,
            has_key: record.key.is_some(),
        }
    }

    /// As [`RecordView::timestamp_ms`].
    fn timestamp_ms(&self, header: &BatchHeader) -> i64 {
        if header.is_log_append_time() {
            header.max_timestamp_ms
        } else {
            header.base_timestamp_ms.wrapping_add(self.timestamp_delta)
        }
    }
}

/// As [`for_each_record`], with the same checks and errors, but reading only each record's
/// [`RecordFields`] from compressed streams, so no record is ever held whole.
fn for_each_record_fields<F>(
    batch: &[u8],
    header: &BatchHeader,
    max_decompressed_bytes: usize,
    visit: F,
) -> Result<RecordsSummary, LogError>
where
    F: FnMut(usize, &RecordFields) -> Result<(), LogError>,
{
    decode_records(
        batch,
        header,
        max_decompressed_bytes,
        &mut FieldsOnly { visit },
    )
}

/// How a walk hands records to its caller: from a slice (uncompressed, raw snappy) or from a
/// decompressing stream, `length` bytes that the visitor must consume exactly.
trait RecordVisitor {
    fn visit_slice(&mut self, index: usize, body: &[u8]) -> Result<(), LogError>;
    fn visit_stream<R: BufRead>(
        &mut self,
        index: usize,
        reader: &mut R,
        length: usize,
    ) -> Result<(), LogError>;
}

/// Reads each streamed record whole into one reused buffer.
struct WholeRecords<F> {
    visit: F,
    record: Vec<u8>,
}

impl<F> RecordVisitor for WholeRecords<F>
where
    F: FnMut(usize, &RecordView<'_>) -> Result<(), LogError>,
{
    fn visit_slice(&mut self, index: usize, body: &[u8]) -> Result<(), LogError> {
        (self.visit)(index, &parse_record(body)?)
    }

    fn visit_stream<R: BufRead>(
        &mut self,
        index: usize,
        reader: &mut R,
        length: usize,
    ) -> Result<(), LogError> {
        self.record.clear();
        // `take` + `read_to_end` grows the buffer with the data actually decompressed, so a
        // record that claims more than the stream holds allocates only what exists.
        let read = reader
            .take(length as u64)
            .read_to_end(&mut self.record)
            .map_err(stream_error)?;
        if read != length {
            return Err(premature_end());
        }
        (self.visit)(index, &parse_record(&self.record)?)
    }
}

/// Reads only each record's [`RecordFields`], skipping its payloads.
struct FieldsOnly<F> {
    visit: F,
}

impl<F> RecordVisitor for FieldsOnly<F>
where
    F: FnMut(usize, &RecordFields) -> Result<(), LogError>,
{
    fn visit_slice(&mut self, index: usize, body: &[u8]) -> Result<(), LogError> {
        (self.visit)(index, &RecordFields::of(&parse_record(body)?))
    }

    fn visit_stream<R: BufRead>(
        &mut self,
        index: usize,
        reader: &mut R,
        length: usize,
    ) -> Result<(), LogError> {
        let fields = skim_record(reader, length)?;
        (self.visit)(index, &fields)
    }
}

fn decode_records<V: RecordVisitor>(
    batch: &[u8],
    header: &BatchHeader,
    max_decompressed_bytes: usize,
    visitor: &mut V,
) -> Result<RecordsSummary, LogError> {
    let count = usize::try_from(header.records_count).map_err(|_| {
        LogError::InvalidRecord(format!(
            "Invalid reported count for record batch: {}",
            header.records_count
        ))
    })?;
    let section = batch.get(HEADER_BYTES..).unwrap_or_default();
    match Compression::from_attributes(header.attributes)? {
        Compression::None => {
            if section.len() > max_decompressed_bytes {
                return Err(too_large(section.len(), max_decompressed_bytes));
            }
            walk_slice(section, count, visitor)
        }
        Compression::Gzip => {
            let decoder = flate2::bufread::MultiGzDecoder::new(section);
            walk_stream(decoder, count, max_decompressed_bytes, visitor)
        }
        Compression::Snappy => {
            if is_xerial_snappy(section) {
                let reader = XerialSnappyReader::new(section, max_decompressed_bytes);
                walk_stream(reader, count, max_decompressed_bytes, visitor)
            } else {
                let raw = decompress_raw_snappy(section, max_decompressed_bytes)?;
                walk_slice(&raw, count, visitor)
            }
        }
        Compression::Lz4 => {
            let decoder = lz4::Decoder::new(section).map_err(decompression_failed)?;
            walk_stream(decoder, count, max_decompressed_bytes, visitor)
        }
        Compression::Zstd => with_zstd_context(|context| {
            let decoder = zstd::stream::read::Decoder::with_context(section, context);
            walk_stream(decoder, count, max_decompressed_bytes, visitor)
        }),
    }
}

/// Reads one record's fields from a stream positioned at its body (`length` bytes), skipping
/// key, value and headers, with [`parse_record`]'s checks. As when a record is read whole
/// first, a stream that ends before `length` bytes is a premature end, whatever else is wrong.
fn skim_record<R: BufRead>(reader: &mut R, length: usize) -> Result<RecordFields, LogError> {
    let mut body = StreamedBody {
        reader: &mut *reader,
        left: length,
    };
    let parsed = body.fields();
    let left = body.left;
    let parsed = match parsed {
        Ok(_) if left > 0 => Err(LogError::InvalidRecord(format!(
            "Invalid record size: expected to read {} bytes in record payload, but there are \
             {left} bytes left",
            length - left
        ))),
        other => other,
    };
    if parsed.is_err() && left > 0 {
        let mut rest = StreamedBody { reader, left };
        rest.skip(left)?;
    }
    parsed
}

/// One streamed record body: `left` bytes of it not read yet. Reading past them is Kafka's
/// "record is truncated"; a stream that ends early is a premature end of the batch.
struct StreamedBody<'r, R> {
    reader: &'r mut R,
    left: usize,
}

impl<R: BufRead> StreamedBody<'_, R> {
    fn fields(&mut self) -> Result<RecordFields, LogError> {
        let _attributes = self.byte()?;
        let timestamp_delta = self.varlong()?;
        let offset_delta = self.varint()?;
        let has_key = self.skip_nullable("key")?;
        self.skip_nullable("value")?;
        let header_count = self.varint()?;
        let header_count = usize::try_from(header_count).map_err(|_| {
            LogError::InvalidRecord(format!(
                "Found invalid number of record headers {header_count}"
            ))
        })?;
        for _ in 0..header_count {
            if !self.skip_nullable("header key")? {
                return Err(LogError::InvalidRecord(
                    "Invalid negative header key size".to_string(),
                ));
            }
            self.skip_nullable("header value")?;
        }
        Ok(RecordFields {
            offset_delta,
            timestamp_delta,
            has_key,
        })
    }

    fn byte(&mut self) -> Result<u8, LogError> {
        if self.left == 0 {
            return Err(Cursor::truncated());
        }
        let byte = *self
            .reader
            .fill_buf()
            .map_err(stream_error)?
            .first()
            .ok_or_else(premature_end)?;
        self.reader.consume(1);
        self.left -= 1;
        Ok(byte)
    }

    /// The bytes of one varint (at most `N`, the last without the continuation bit), as
    /// [`Cursor`] reads them from a slice: running out of the record makes it a bad one.
    /// Returns the buffer and how many bytes it holds.
    fn varint_bytes<const N: usize>(&mut self, what: &str) -> Result<([u8; N], usize), LogError> {
        let mut bytes = [0u8; N];
        for used in 0..N {
            if self.left == 0 {
                break;
            }
            let byte = self.byte()?;
            bytes[used] = byte;
            if byte & 0x80 == 0 {
                return Ok((bytes, used + 1));
            }
        }
        Err(LogError::InvalidRecord(format!(
            "Found invalid record structure: bad {what}"
        )))
    }

    fn varint(&mut self) -> Result<i32, LogError> {
        let (bytes, used) = self.varint_bytes::<5>("varint")?;
        batch::read_varint(&bytes[..used])
            .map(|(value, _)| value)
            .ok_or_else(|| {
                LogError::InvalidRecord("Found invalid record structure: bad varint".to_string())
            })
    }

    fn varlong(&mut self) -> Result<i64, LogError> {
        let (bytes, used) = self.varint_bytes::<10>("varlong")?;
        batch::read_varlong(&bytes[..used])
            .map(|(value, _)| value)
            .ok_or_else(|| {
                LogError::InvalidRecord("Found invalid record structure: bad varlong".to_string())
            })
    }

    /// Skips `length` bytes of the stream (the caller checked they lie within the record)
    /// without copying them.
    fn skip(&mut self, length: usize) -> Result<(), LogError> {
        let mut remaining = length;
        while remaining > 0 {
            let available = self.reader.fill_buf().map_err(stream_error)?.len();
            if available == 0 {
                return Err(premature_end());
            }
            let skipped = available.min(remaining);
            self.reader.consume(skipped);
            remaining -= skipped;
        }
        self.left -= length;
        Ok(())
    }

    /// A varint length (-1 = null) and that many bytes, skipped; whether it was non-null.
    fn skip_nullable(&mut self, what: &str) -> Result<bool, LogError> {
        let length = self.varint()?;
        if length == -1 {
            return Ok(false);
        }
        let length = usize::try_from(length).map_err(|_| {
            LogError::InvalidRecord(format!("Invalid negative {what} size {length}"))
        })?;
        if length > self.left {
            return Err(Cursor::truncated());
        }
        self.skip(length)?;
        Ok(true)
    }
}

/// Decompression contexts kept for reuse: creating one per batch (a few hundred KiB of tables)
/// cost more than decompressing a 16 KiB batch. A context keeps the largest window it has used,
/// so only small ones are kept, and only a few: what they hold stays bounded however many
/// threads decode.
static ZSTD_CONTEXTS: std::sync::Mutex<Vec<zstd::zstd_safe::DCtx<'static>>> =
    std::sync::Mutex::new(Vec::new());
const MAX_KEPT_ZSTD_CONTEXTS: usize = 4;
const MAX_KEPT_ZSTD_CONTEXT_BYTES: usize = 4 * 1024 * 1024;

fn new_zstd_context() -> Result<zstd::zstd_safe::DCtx<'static>, LogError> {
    let mut context = zstd::zstd_safe::DCtx::try_create().ok_or_else(|| {
        LogError::Io(io::Error::other(
            "zstd: cannot allocate a decompression context",
        ))
    })?;
    context
        .set_parameter(zstd::zstd_safe::DParameter::WindowLogMax(
            ZSTD_WINDOW_LOG_MAX,
        ))
        .map_err(|code| {
            decompression_failed(io::Error::other(zstd::zstd_safe::get_error_name(code)))
        })?;
    Ok(context)
}

/// Runs `work` with a kept zstd context (or a new one), and keeps it afterwards if it is small.
/// `Decoder::with_context` resets the session, keeping the window limit.
fn with_zstd_context<T>(
    work: impl FnOnce(&mut zstd::zstd_safe::DCtx<'static>) -> Result<T, LogError>,
) -> Result<T, LogError> {
    let kept = ZSTD_CONTEXTS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .pop();
    let mut context = match kept {
        Some(context) => context,
        None => new_zstd_context()?,
    };
    let result = work(&mut context);
    if context.sizeof() <= MAX_KEPT_ZSTD_CONTEXT_BYTES {
        let mut kept = ZSTD_CONTEXTS
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if kept.len() < MAX_KEPT_ZSTD_CONTEXTS {
            kept.push(context);
        }
    }
    result
}

fn too_large(size_bytes: usize, limit_bytes: usize) -> LogError {
    LogError::RecordTooLarge {
        size_bytes: size_bytes as u64,
        limit_bytes: limit_bytes as u64,
        setting: DECOMPRESSED_LIMIT_SETTING,
    }
}

fn decompression_failed(error: io::Error) -> LogError {
    LogError::CorruptRecord(format!("Failed to decompress record stream: {error}"))
}

fn premature_end() -> LogError {
    LogError::InvalidRecord("Incorrect declared batch size, premature EOF reached".to_string())
}

fn records_remaining() -> LogError {
    LogError::InvalidRecord(
        "Incorrect declared batch size, records still remaining in file".to_string(),
    )
}

/// Records framed in memory (uncompressed batches and raw snappy): nothing is copied.
fn walk_slice<V: RecordVisitor>(
    section: &[u8],
    count: usize,
    visitor: &mut V,
) -> Result<RecordsSummary, LogError> {
    let mut position = 0usize;
    for index in 0..count {
        let rest = &section[position..];
        if rest.is_empty() {
            return Err(premature_end());
        }
        let (length, used) = batch::read_varint(rest).ok_or_else(premature_end)?;
        let length = record_length(length)?;
        let body = rest
            .get(used..used.saturating_add(length))
            .ok_or_else(premature_end)?;
        visitor.visit_slice(index, body)?;
        position += used + length;
    }
    if position != section.len() {
        return Err(records_remaining());
    }
    Ok(RecordsSummary {
        records: count,
        records_bytes: section.len(),
    })
}

fn record_length(length: i32) -> Result<usize, LogError> {
    usize::try_from(length)
        .map_err(|_| LogError::InvalidRecord(format!("Invalid record size {length}")))
}

/// Records read from a decompressing stream, one at a time, by the visitor.
fn walk_stream<R, V>(
    decoder: R,
    count: usize,
    max_decompressed_bytes: usize,
    visitor: &mut V,
) -> Result<RecordsSummary, LogError>
where
    R: Read,
    V: RecordVisitor,
{
    let mut reader = BufReader::with_capacity(STREAM_BUFFER_BYTES, decoder);
    let mut consumed = 0usize;
    for index in 0..count {
        let (length, used) = read_stream_varint(&mut reader)?;
        let length = record_length(length)?;
        consumed = consumed.saturating_add(used).saturating_add(length);
        if consumed > max_decompressed_bytes {
            return Err(too_large(consumed, max_decompressed_bytes));
        }
        visitor.visit_stream(index, &mut reader, length)?;
    }
    let mut probe = [0u8; 1];
    match reader.read(&mut probe) {
        Ok(0) => {}
        Ok(_) => return Err(records_remaining()),
        Err(error) => return Err(stream_error(error)),
    }
    Ok(RecordsSummary {
        records: count,
        records_bytes: consumed,
    })
}

/// A truncated compressed stream is Kafka's "premature EOF" (INVALID_RECORD); a decoder that
/// would pass the output limit is RECORD_TOO_LARGE; any other failure is undecodable data
/// (CORRUPT_MESSAGE).
fn stream_error(error: io::Error) -> LogError {
    if let Some(LimitExceeded {
        size_bytes,
        limit_bytes,
    }) = error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<LimitExceeded>())
    {
        return too_large(*size_bytes, *limit_bytes);
    }
    if error.kind() == io::ErrorKind::UnexpectedEof {
        premature_end()
    } else {
        decompression_failed(error)
    }
}

/// Raised inside a decoder that would produce more than the decompression limit.
#[derive(Debug, thiserror::Error)]
#[error("decompressed size {size_bytes} exceeds the limit of {limit_bytes} bytes")]
struct LimitExceeded {
    size_bytes: usize,
    limit_bytes: usize,
}

fn read_stream_varint<R: BufRead>(reader: &mut R) -> Result<(i32, usize), LogError> {
    let mut bytes = [0u8; 5];
    for used in 0..bytes.len() {
        let mut byte = [0u8; 1];
        if reader.read(&mut byte).map_err(stream_error)? == 0 {
            return Err(premature_end());
        }
        bytes[used] = byte[0];
        if byte[0] & 0x80 == 0 {
            return batch::read_varint(&bytes[..=used]).ok_or_else(|| {
                LogError::InvalidRecord("Invalid record length varint".to_string())
            });
        }
    }
    Err(LogError::InvalidRecord(
        "Invalid record length varint".to_string(),
    ))
}

fn is_xerial_snappy(section: &[u8]) -> bool {
    section.get(..XERIAL_SNAPPY_MAGIC_BYTES)
        == Some(&XERIAL_SNAPPY_HEADER[..XERIAL_SNAPPY_MAGIC_BYTES])
}

fn snappy_failed(error: snap::Error) -> LogError {
    LogError::CorruptRecord(format!(
        "Failed to decompress record stream: snappy: {error}"
    ))
}

fn decompress_raw_snappy(section: &[u8], limit: usize) -> Result<Vec<u8>, LogError> {
    let length = snap::raw::decompress_len(section).map_err(snappy_failed)?;
    if length > limit {
        return Err(too_large(length, limit));
    }
    snap::raw::Decoder::new()
        .decompress_vec(section)
        .map_err(snappy_failed)
}

/// snappy-java's stream format: the 16-byte header, then blocks of
/// `[compressed length u32 BE][raw snappy block]` (a repeated header, as concatenated streams
/// produce, is skipped like snappy-java does).
struct XerialSnappyReader<'a> {
    input: &'a [u8],
    block: Vec<u8>,
    block_position: usize,
    /// Decompressed bytes produced so far, and the most allowed.
    produced: usize,
    limit: usize,
}

impl<'a> XerialSnappyReader<'a> {
    fn new(section: &'a [u8], limit: usize) -> XerialSnappyReader<'a> {
        XerialSnappyReader {
            input: section
                .get(XERIAL_SNAPPY_HEADER.len()..)
                .unwrap_or_default(),
            block: Vec::new(),
            block_position: 0,
            produced: 0,
            limit,
        }
    }

    fn next_block(&mut self) -> io::Result<bool> {
        while self.input.get(..XERIAL_SNAPPY_MAGIC_BYTES)
            == Some(&XERIAL_SNAPPY_HEADER[..XERIAL_SNAPPY_MAGIC_BYTES])
        {
            self.input = self
                .input
                .get(XERIAL_SNAPPY_HEADER.len()..)
                .unwrap_or_default();
        }
        if self.input.is_empty() {
            return Ok(false);
        }
        let Some((length, rest)) = self.input.split_first_chunk::<4>() else {
            return Err(io::Error::other("snappy: truncated block length"));
        };
        let length = u32::from_be_bytes(*length) as usize;
        let Some(compressed) = rest.get(..length) else {
            return Err(io::Error::other("snappy: block runs past the batch"));
        };
        let decompressed_length =
            snap::raw::decompress_len(compressed).map_err(io::Error::other)?;
        let produced = self.produced.saturating_add(decompressed_length);
        if produced > self.limit {
            return Err(io::Error::other(LimitExceeded {
                size_bytes: produced,
                limit_bytes: self.limit,
            }));
        }
        self.produced = produced;
        self.block.resize(decompressed_length, 0);
        snap::raw::Decoder::new()
            .decompress(compressed, &mut self.block)
            .map_err(io::Error::other)?;
        self.block_position = 0;
        self.input = &rest[length..];
        Ok(true)
    }
}

impl Read for XerialSnappyReader<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.block_position == self.block.len() {
            if !self.next_block()? {
                return Ok(0);
            }
        }
        let available = &self.block[self.block_position..];
        let n = available.len().min(out.len());
        out[..n].copy_from_slice(&available[..n]);
        self.block_position += n;
        Ok(n)
    }
}

/// Compression levels for encoding (Kafka's `compression.*.level` topic configs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CompressionLevels {
    /// `compression.gzip.level`: 1–9, or -1 for the codec default (6).
    pub gzip: i32,
    /// `compression.lz4.level`: 1–17.
    pub lz4: i32,
    /// `compression.zstd.level`: zstd's range (negative = fast modes).
    pub zstd: i32,
}

impl Default for CompressionLevels {
    /// Kafka's defaults.
    fn default() -> Self {
        CompressionLevels {
            gzip: -1,
            lz4: 9,
            zstd: 3,
        }
    }
}

/// The header fields of a batch to encode. The encoder computes length, CRC, count and the
/// codec bits of `attributes`; everything else is written as given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchFields {
    pub base_offset: i64,
    pub partition_leader_epoch: i32,
    /// Timestamp type, transactional, control and delete-horizon bits (codec bits ignored).
    pub attributes: i16,
    /// `None`: the largest offset delta of the records pushed (a compacted batch passes its
    /// original value so its offset range is kept).
    pub last_offset_delta: Option<i32>,
    pub base_timestamp_ms: i64,
    pub max_timestamp_ms: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
}

impl BatchFields {
    /// The fields of an existing batch's header.
    pub fn from_header(header: &BatchHeader) -> BatchFields {
        BatchFields {
            base_offset: header.base_offset,
            partition_leader_epoch: header.partition_leader_epoch,
            attributes: header.attributes,
            last_offset_delta: Some(header.last_offset_delta),
            base_timestamp_ms: header.base_timestamp_ms,
            max_timestamp_ms: header.max_timestamp_ms,
            producer_id: header.producer_id,
            producer_epoch: header.producer_epoch,
            base_sequence: header.base_sequence,
        }
    }
}

/// Builds one v2 batch: push records, then `finish` with a codec.
#[derive(Debug)]
pub struct BatchEncoder {
    fields: BatchFields,
    records: Vec<u8>,
    count: i32,
    max_offset_delta: i32,
    scratch: Vec<u8>,
}

impl BatchEncoder {
    pub fn new(fields: BatchFields) -> BatchEncoder {
        BatchEncoder {
            fields,
            records: Vec::new(),
            count: 0,
            max_offset_delta: 0,
            scratch: Vec::new(),
        }
    }

    pub fn record_count(&self) -> i32 {
        self.count
    }

    /// Uncompressed size of the records pushed so far.
    pub fn records_bytes(&self) -> usize {
        self.records.len()
    }

    /// Appends a record (a decoded one, or one built with [`RecordView`]-like fields through
    /// [`BatchEncoder::push_fields`]).
    pub fn push(&mut self, record: &RecordView<'_>) {
        let headers: Vec<RecordHeader<'_>> = record.headers().collect();
        self.push_fields(
            record.attributes,
            record.timestamp_delta,
            record.offset_delta,
            record.key,
            record.value,
            &headers,
        );
    }

    pub fn push_fields(
        &mut self,
        attributes: i8,
        timestamp_delta: i64,
        offset_delta: i32,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[RecordHeader<'_>],
    ) {
        let body = &mut self.scratch;
        body.clear();
        body.push(attributes as u8);
        batch::write_varlong(body, timestamp_delta);
        batch::write_varlong(body, i64::from(offset_delta));
        write_nullable(body, key);
        write_nullable(body, value);
        batch::write_varlong(body, headers.len() as i64);
        for header in headers {
            write_nullable(body, Some(header.key));
            write_nullable(body, header.value);
        }
        batch::write_varlong(&mut self.records, body.len() as i64);
        self.records.extend_from_slice(body);
        self.count += 1;
        self.max_offset_delta = self.max_offset_delta.max(offset_delta);
    }

    /// The whole batch, compressed with `compression`, CRC set.
    pub fn finish(
        self,
        compression: Compression,
        levels: CompressionLevels,
    ) -> Result<Vec<u8>, LogError> {
        let fields = BatchFields {
            last_offset_delta: Some(
                self.fields
                    .last_offset_delta
                    .unwrap_or(self.max_offset_delta),
            ),
            ..self.fields
        };
        encode_batch(&fields, self.count, &self.records, compression, levels)
    }
}

/// Builds a whole batch around an already encoded (uncompressed) records section: compresses
/// it, fills the header (`last_offset_delta` `None` = `records_count - 1`) and the CRC. The
/// section is not checked, so tests can build malformed batches with valid CRCs.
pub fn encode_batch(
    fields: &BatchFields,
    records_count: i32,
    records_section: &[u8],
    compression: Compression,
    levels: CompressionLevels,
) -> Result<Vec<u8>, LogError> {
    let mut batch = vec![0u8; HEADER_BYTES];
    compress_into(&mut batch, records_section, compression, levels)?;
    let length =
        i32::try_from(batch.len() - LOG_OVERHEAD_BYTES).map_err(|_| LogError::RecordTooLarge {
            size_bytes: batch.len() as u64,
            limit_bytes: i32::MAX as u64,
            setting: "batch length field",
        })?;
    let attributes = (fields.attributes & !COMPRESSION_MASK) | compression.id();
    let last_offset_delta = fields
        .last_offset_delta
        .unwrap_or(records_count.saturating_sub(1));
    put(
        &mut batch,
        BASE_OFFSET_OFFSET,
        &fields.base_offset.to_be_bytes(),
    );
    put(&mut batch, LENGTH_OFFSET, &length.to_be_bytes());
    put(
        &mut batch,
        PARTITION_LEADER_EPOCH_OFFSET,
        &fields.partition_leader_epoch.to_be_bytes(),
    );
    batch[MAGIC_OFFSET] = MAGIC_V2 as u8;
    put(&mut batch, ATTRIBUTES_OFFSET, &attributes.to_be_bytes());
    put(
        &mut batch,
        LAST_OFFSET_DELTA_OFFSET,
        &last_offset_delta.to_be_bytes(),
    );
    put(
        &mut batch,
        BASE_TIMESTAMP_OFFSET,
        &fields.base_timestamp_ms.to_be_bytes(),
    );
    put(
        &mut batch,
        MAX_TIMESTAMP_OFFSET,
        &fields.max_timestamp_ms.to_be_bytes(),
    );
    put(
        &mut batch,
        PRODUCER_ID_OFFSET,
        &fields.producer_id.to_be_bytes(),
    );
    put(
        &mut batch,
        PRODUCER_EPOCH_OFFSET,
        &fields.producer_epoch.to_be_bytes(),
    );
    put(
        &mut batch,
        BASE_SEQUENCE_OFFSET,
        &fields.base_sequence.to_be_bytes(),
    );
    put(
        &mut batch,
        RECORDS_COUNT_OFFSET,
        &records_count.to_be_bytes(),
    );
    let crc = batch::compute_crc(&batch);
    put(&mut batch, CRC_OFFSET, &crc.to_be_bytes());
    Ok(batch)
}

/// The encoded form of one record, length prefix included (for building sections by hand).
pub fn encode_record(
    out: &mut Vec<u8>,
    timestamp_delta: i64,
    offset_delta: i32,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    headers: &[RecordHeader<'_>],
) {
    let mut body = Vec::new();
    body.push(0u8);
    batch::write_varlong(&mut body, timestamp_delta);
    batch::write_varlong(&mut body, i64::from(offset_delta));
    write_nullable(&mut body, key);
    write_nullable(&mut body, value);
    batch::write_varlong(&mut body, headers.len() as i64);
    for header in headers {
        write_nullable(&mut body, Some(header.key));
        write_nullable(&mut body, header.value);
    }
    batch::write_varlong(out, body.len() as i64);
    out.extend_from_slice(&body);
}

impl BatchFields {
    /// A producer batch's fields: base offset 0, no producer id, CreateTime.
    pub fn producer(base_timestamp_ms: i64, max_timestamp_ms: i64) -> BatchFields {
        BatchFields {
            base_offset: 0,
            partition_leader_epoch: -1,
            attributes: 0,
            last_offset_delta: None,
            base_timestamp_ms,
            max_timestamp_ms,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
        }
    }
}

fn put(batch: &mut [u8], at: usize, bytes: &[u8]) {
    batch[at..at + bytes.len()].copy_from_slice(bytes);
}

fn write_nullable(out: &mut Vec<u8>, bytes: Option<&[u8]>) {
    match bytes {
        None => batch::write_varlong(out, -1),
        Some(bytes) => {
            batch::write_varlong(out, bytes.len() as i64);
            out.extend_from_slice(bytes);
        }
    }
}

fn compression_failed(error: io::Error) -> LogError {
    LogError::Io(io::Error::other(format!("compression failed: {error}")))
}

/// Appends `records` to `out`, compressed as Kafka's producers write each codec.
fn compress_into(
    out: &mut Vec<u8>,
    records: &[u8],
    compression: Compression,
    levels: CompressionLevels,
) -> Result<(), LogError> {
    match compression {
        Compression::None => out.extend_from_slice(records),
        Compression::Gzip => {
            let level = match u32::try_from(levels.gzip) {
                Ok(level @ 1..=9) => flate2::Compression::new(level),
                _ => flate2::Compression::default(),
            };
            let mut encoder = flate2::write::GzEncoder::new(out, level);
            encoder.write_all(records).map_err(compression_failed)?;
            encoder.finish().map_err(compression_failed)?;
        }
        Compression::Snappy => {
            // Java's format (xerial framing), which every Kafka client reads.
            out.extend_from_slice(XERIAL_SNAPPY_HEADER);
            let mut encoder = snap::raw::Encoder::new();
            for block in records.chunks(XERIAL_SNAPPY_BLOCK_BYTES) {
                let compressed = encoder
                    .compress_vec(block)
                    .map_err(|error| compression_failed(io::Error::other(error)))?;
                out.extend_from_slice(&(compressed.len() as u32).to_be_bytes());
                out.extend_from_slice(&compressed);
            }
        }
        Compression::Lz4 => {
            // Kafka's lz4 frame: independent 64 KiB blocks, no content checksum.
            let level = u32::try_from(levels.lz4.clamp(1, 17)).unwrap_or(9);
            let mut encoder = lz4::EncoderBuilder::new()
                .level(level)
                .block_mode(lz4::BlockMode::Independent)
                .block_size(lz4::BlockSize::Max64KB)
                .checksum(lz4::ContentChecksum::NoChecksum)
                .build(out)
                .map_err(compression_failed)?;
            encoder.write_all(records).map_err(compression_failed)?;
            let (_, result) = encoder.finish();
            result.map_err(compression_failed)?;
        }
        Compression::Zstd => {
            let mut encoder =
                zstd::stream::write::Encoder::new(out, levels.zstd).map_err(compression_failed)?;
            // With the size known, zstd sizes its window and tables to the input instead of
            // the level's maximum (tens of MiB at high levels).
            encoder
                .set_pledged_src_size(Some(records.len() as u64))
                .map_err(compression_failed)?;
            encoder.write_all(records).map_err(compression_failed)?;
            encoder.finish().map_err(compression_failed)?;
        }
    }
    Ok(())
}

/// Re-encodes one whole batch with another codec (`compression.type` other than `producer`),
/// as Kafka's `LogValidator` rebuilds it: same producer fields, offset deltas and records; the
/// base timestamp becomes the first record's timestamp and deltas are relative to it (a
/// producer's LogAppendTime batch gets its per-record timestamps written out). The header's max
/// timestamp and timestamp type are left for `patch_header`.
pub fn recompress_batch(
    batch: &[u8],
    header: &BatchHeader,
    target: Compression,
    levels: CompressionLevels,
    max_decompressed_bytes: usize,
) -> Result<Vec<u8>, LogError> {
    let mut base_timestamp_ms = None;
    let mut encoder = BatchEncoder::new(BatchFields {
        last_offset_delta: Some(header.last_offset_delta),
        ..BatchFields::from_header(header)
    });
    for_each_record(batch, header, max_decompressed_bytes, |_, record| {
        let timestamp_ms = record.timestamp_ms(header);
        let base = *base_timestamp_ms.get_or_insert(timestamp_ms);
        let headers: Vec<RecordHeader<'_>> = record.headers().collect();
        encoder.push_fields(
            record.attributes,
            timestamp_ms.wrapping_sub(base),
            record.offset_delta,
            record.key,
            record.value,
            &headers,
        );
        Ok(())
    })?;
    encoder.fields.base_timestamp_ms = base_timestamp_ms.unwrap_or(header.base_timestamp_ms);
    encoder.finish(target, levels)
}

/// Kafka's per-record rules for producer input (`LogValidator.validateRecord`), from the topic's
/// configs.
#[derive(Clone, Copy, Debug)]
pub struct RecordRules<'a> {
    /// `topic-partition`, as Kafka names it in its messages.
    pub topic_partition: &'a str,
    /// `message.timestamp.type`
    pub timestamp_type: TimestampType,
    /// `cleanup.policy` includes `compact`: every record needs a key.
    pub requires_keys: bool,
    /// The broker's clock.
    pub now_ms: i64,
    /// `message.timestamp.before.max.ms`
    pub timestamp_before_max_ms: i64,
    /// `message.timestamp.after.max.ms`
    pub timestamp_after_max_ms: i64,
    /// See [`MAX_DECOMPRESSED_BATCH_BYTES`].
    pub max_decompressed_bytes: usize,
}

/// What validation derived from a producer batch's records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ValidatedRecords {
    /// The largest record timestamp (-1 when no record has one). Under CreateTime Kafka writes
    /// this into the header (`setMaxTimestamp`), whatever the producer put there.
    pub max_timestamp_ms: i64,
    pub summary: RecordsSummary,
}

/// At most this many per-record errors are kept for one batch (each is a message string); the
/// batch is refused either way.
pub const MAX_RECORD_ERRORS: usize = 10_000;

/// Decodes every record of a producer batch (after its header and CRC were checked) and
/// applies Kafka's rules: the records exactly fill the section and match the header's count,
/// offset deltas are exactly 0..count-1 in order (Kafka silently rewrites such batches; Quill
/// stores the producer's bytes, so it refuses them), keys on compacted topics, timestamp bounds.
/// Rule violations of single records come back as [`LogError::RecordErrors`] with each record's
/// index, as Kafka's `RecordValidationException`.
pub fn validate_producer_records(
    batch: &[u8],
    header: &BatchHeader,
    rules: &RecordRules<'_>,
) -> Result<ValidatedRecords, LogError> {
    let log_append_time_topic = rules.timestamp_type == TimestampType::LogAppendTime;
    let mut max_timestamp_ms = NO_TIMESTAMP;
    let mut record_errors: Vec<RecordError> = Vec::new();
    let mut invalid_timestamp = false;
    let mut total_errors = 0usize;
    let summary = for_each_record_fields(
        batch,
        header,
        rules.max_decompressed_bytes,
        |index, record| {
            if i64::from(record.offset_delta) != index as i64 {
                return Err(LogError::InvalidRecord(format!(
                    "Record {index} has offset delta {} but must have {index}: offset deltas in \
                     a batch are 0..count-1 in order, in topic partition {}",
                    record.offset_delta, rules.topic_partition
                )));
            }
            let timestamp_ms = record.timestamp_ms(header);
            let error = if rules.requires_keys && !record.has_key {
                Some(format!(
                    "Compacted topic cannot accept message without key in topic partition {}",
                    rules.topic_partition
                ))
            } else if !log_append_time_topic && timestamp_ms != NO_TIMESTAMP {
                timestamp_out_of_range(timestamp_ms, header, record, rules).inspect(|_| {
                    invalid_timestamp = true;
                })
            } else if header.is_log_append_time() {
                invalid_timestamp = true;
                Some(
                    "Invalid timestamp type in message. Producer should not set timestamp type \
                     to LogAppendTime."
                        .to_string(),
                )
            } else {
                None
            };
            match error {
                Some(message) => {
                    total_errors += 1;
                    if record_errors.len() < MAX_RECORD_ERRORS {
                        record_errors.push(RecordError {
                            batch_index: index as i32,
                            message,
                        });
                    }
                }
                None => max_timestamp_ms = max_timestamp_ms.max(timestamp_ms),
            }
            Ok(())
        },
    )?;
    if total_errors > 0 {
        return Err(record_errors_exception(
            invalid_timestamp,
            total_errors,
            record_errors,
        ));
    }
    debug_assert_eq!(summary.records as i64, i64::from(header.records_count));
    Ok(ValidatedRecords {
        max_timestamp_ms,
        summary,
    })
}

/// Kafka's `RecordBatch.NO_TIMESTAMP`.
const NO_TIMESTAMP: i64 = -1;

fn timestamp_out_of_range(
    timestamp_ms: i64,
    header: &BatchHeader,
    record: &RecordFields,
    rules: &RecordRules<'_>,
) -> Option<String> {
    let behind_ms = i128::from(rules.now_ms) - i128::from(timestamp_ms);
    let out_of_range = behind_ms > i128::from(rules.timestamp_before_max_ms)
        || -behind_ms > i128::from(rules.timestamp_after_max_ms);
    out_of_range.then(|| {
        format!(
            "Timestamp {timestamp_ms} of message with offset {} is out of range. The timestamp \
             should be within [{}, {}]",
            header
                .base_offset
                .wrapping_add(i64::from(record.offset_delta)),
            rules.now_ms.wrapping_sub(rules.timestamp_before_max_ms),
            rules.now_ms.wrapping_add(rules.timestamp_after_max_ms)
        )
    })
}

/// Kafka's `LogValidator.processRecordErrors`: one partition-level message, plus every record's.
fn record_errors_exception(
    invalid_timestamp: bool,
    total_errors: usize,
    record_errors: Vec<RecordError>,
) -> LogError {
    let message = if invalid_timestamp {
        "One or more records have been rejected due to invalid timestamp".to_string()
    } else {
        let shown: Vec<String> = record_errors
            .iter()
            .take(3)
            .map(|error| {
                format!(
                    "RecordError(batchIndex={}, message='{}')",
                    error.batch_index, error.message
                )
            })
            .collect();
        format!(
            "One or more records have been rejected due to {total_errors} record errors in \
             total, and only showing the first three errors at most: [{}]",
            shown.join(", ")
        )
    };
    LogError::RecordErrors {
        invalid_timestamp,
        message,
        record_errors,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const CODECS: [Compression; 5] = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];
    const NOW_MS: i64 = 1_700_000_000_000;

    fn rules(requires_keys: bool) -> RecordRules<'static> {
        RecordRules {
            topic_partition: "t-0",
            timestamp_type: TimestampType::CreateTime,
            requires_keys,
            now_ms: NOW_MS,
            timestamp_before_max_ms: i64::MAX,
            timestamp_after_max_ms: 3_600_000,
            max_decompressed_bytes: MAX_DECOMPRESSED_BATCH_BYTES,
        }
    }

    fn validate(batch: &[u8], rules: &RecordRules<'_>) -> Result<ValidatedRecords, LogError> {
        let header = BatchHeader::parse(batch).unwrap();
        batch::validate_batch(batch, &header, true)?;
        validate_producer_records(batch, &header, rules)
    }

    /// `n` keyed records, 1 KiB values, offset deltas 0..n.
    fn good_batch(codec: Compression, n: i32) -> Vec<u8> {
        let mut encoder = BatchEncoder::new(BatchFields::producer(NOW_MS, NOW_MS + 7));
        let value = vec![b'v'; 1024];
        for i in 0..n {
            let key = format!("key-{i}");
            let headers = [RecordHeader {
                key: b"h",
                value: Some(b"x"),
            }];
            encoder.push_fields(
                0,
                i64::from(i),
                i,
                Some(key.as_bytes()),
                Some(&value),
                &headers,
            );
        }
        encoder.finish(codec, CompressionLevels::default()).unwrap()
    }

    fn section(deltas: &[i32]) -> Vec<u8> {
        let mut out = Vec::new();
        for &delta in deltas {
            encode_record(&mut out, 0, delta, Some(b"k"), Some(b"value"), &[]);
        }
        out
    }

    fn poison(codec: Compression, count: i32, section: &[u8]) -> Vec<u8> {
        encode_batch(
            &BatchFields::producer(NOW_MS, NOW_MS),
            count,
            section,
            codec,
            CompressionLevels::default(),
        )
        .unwrap()
    }

    #[test]
    fn every_codec_round_trips_records_and_headers() {
        for codec in CODECS {
            let batch = good_batch(codec, 5);
            let header = BatchHeader::parse(&batch).unwrap();
            assert_eq!(header.compression_codec(), codec.id());
            let mut seen = Vec::new();
            for_each_record(
                &batch,
                &header,
                MAX_DECOMPRESSED_BATCH_BYTES,
                |index, record| {
                    let headers: Vec<_> = record.headers().collect();
                    assert_eq!(
                        headers,
                        vec![RecordHeader {
                            key: b"h",
                            value: Some(b"x")
                        }]
                    );
                    seen.push((index, record.offset_delta, record.key.map(<[u8]>::to_vec)));
                    assert_eq!(record.value.map(<[u8]>::len), Some(1024));
                    Ok(())
                },
            )
            .unwrap();
            let expected: Vec<_> = (0..5)
                .map(|i| (i as usize, i, Some(format!("key-{i}").into_bytes())))
                .collect();
            assert_eq!(seen, expected, "{codec:?}");
            let validated = validate(&batch, &rules(true)).unwrap();
            assert_eq!(validated.max_timestamp_ms, NOW_MS + 4);
        }
    }

    #[test]
    fn garbage_compressed_payload_with_valid_crc_is_corrupt() {
        let garbage: Vec<u8> = (0..200u32).map(|i| (i * 37 % 251) as u8).collect();
        for codec in CODECS.into_iter().skip(1) {
            // Build the header around an uncompressed section, then mark it compressed.
            let mut batch = poison(Compression::None, 3, &garbage);
            let attributes = codec.id();
            batch[ATTRIBUTES_OFFSET..ATTRIBUTES_OFFSET + 2]
                .copy_from_slice(&attributes.to_be_bytes());
            crate::testing::fix_crc(&mut batch);
            let error = validate(&batch, &rules(false)).unwrap_err();
            assert_eq!(error.kafka_error_code(), 2, "{codec:?}: {error}");
        }
    }

    #[test]
    fn poison_sections_are_invalid_record_for_every_codec() {
        let mut truncated = section(&[0, 1]);
        encode_record(&mut truncated, 0, 2, Some(b"k"), Some(b"value"), &[]);
        truncated.truncate(truncated.len() - 3);
        let mut inner_overrun = Vec::new();
        // A record whose key length claims more bytes than the record holds.
        let body = [0u8, 0, 0, 40, b'k', 2, b'v', 0];
        batch::write_varlong(&mut inner_overrun, body.len() as i64);
        inner_overrun.extend_from_slice(&body);
        let mut trailing = section(&[0, 1]);
        trailing.extend_from_slice(&[1, 2, 3]);
        let cases: [(&str, i32, Vec<u8>); 5] = [
            ("count says 3, holds 1", 3, section(&[0])),
            ("deltas 0,0,7", 3, section(&[0, 0, 7])),
            ("truncated inner record", 3, truncated),
            ("key runs past its record", 1, inner_overrun),
            ("trailing bytes", 2, trailing),
        ];
        for codec in CODECS {
            for (name, count, records) in &cases {
                let batch = poison(codec, *count, records);
                let error = validate(&batch, &rules(false)).unwrap_err();
                assert!(
                    matches!(error, LogError::InvalidRecord(_)),
                    "{codec:?} {name}: {error:?}"
                );
            }
        }
    }

    #[test]
    fn decompression_bomb_is_refused_without_inflating_it() {
        // One record whose 8 MiB value compresses to a few KiB; the limit is 1 MiB.
        let mut records = Vec::new();
        let value = vec![0u8; 8 << 20];
        encode_record(&mut records, 0, 0, Some(b"k"), Some(&value), &[]);
        let tight = RecordRules {
            max_decompressed_bytes: 1 << 20,
            ..rules(false)
        };
        for codec in CODECS.into_iter().skip(1) {
            let batch = poison(codec, 1, &records);
            assert!(batch.len() < 1 << 20, "{codec:?} {}", batch.len());
            let error = validate(&batch, &tight).unwrap_err();
            assert_eq!(error.kafka_error_code(), 10, "{codec:?}: {error}");
        }
    }

    #[test]
    fn raw_snappy_as_librdkafka_writes_it_is_accepted() {
        let records = section(&[0, 1, 2]);
        let compressed = snap::raw::Encoder::new().compress_vec(&records).unwrap();
        let mut batch = poison(Compression::None, 3, &compressed);
        batch[ATTRIBUTES_OFFSET + 1] = Compression::Snappy.id() as u8;
        let length = (batch.len() - LOG_OVERHEAD_BYTES) as i32;
        batch[LENGTH_OFFSET..LENGTH_OFFSET + 4].copy_from_slice(&length.to_be_bytes());
        crate::testing::fix_crc(&mut batch);
        validate(&batch, &rules(true)).unwrap();
    }

    #[test]
    fn keyless_records_on_a_compacted_topic_get_per_record_errors() {
        let mut records = Vec::new();
        encode_record(&mut records, 0, 0, Some(b"k"), Some(b"v"), &[]);
        encode_record(&mut records, 0, 1, None, Some(b"v"), &[]);
        encode_record(&mut records, 0, 2, None, Some(b"v"), &[]);
        let batch = poison(Compression::Lz4, 3, &records);
        validate(&batch, &rules(false)).unwrap();
        let error = validate(&batch, &rules(true)).unwrap_err();
        assert_eq!(error.kafka_error_code(), 87);
        let LogError::RecordErrors {
            message,
            record_errors,
            ..
        } = &error
        else {
            panic!("{error:?}");
        };
        let indexes: Vec<i32> = record_errors.iter().map(|e| e.batch_index).collect();
        assert_eq!(indexes, vec![1, 2]);
        assert_eq!(
            record_errors[0].message,
            "Compacted topic cannot accept message without key in topic partition t-0"
        );
        assert!(message
            .starts_with("One or more records have been rejected due to 2 record errors in total"));
    }

    #[test]
    fn timestamps_outside_the_topic_bounds_are_invalid_timestamp() {
        let mut records = Vec::new();
        encode_record(&mut records, 0, 0, Some(b"k"), None, &[]);
        encode_record(&mut records, 7_200_000, 1, Some(b"k"), None, &[]);
        let batch = poison(Compression::Gzip, 2, &records);
        let error = validate(&batch, &rules(false)).unwrap_err();
        assert_eq!(error.kafka_error_code(), 32, "{error}");
        let LogError::RecordErrors {
            record_errors,
            message,
            ..
        } = &error
        else {
            panic!("{error:?}");
        };
        assert_eq!(
            message,
            "One or more records have been rejected due to invalid timestamp"
        );
        assert_eq!(record_errors.len(), 1);
        assert_eq!(record_errors[0].batch_index, 1);
        let behind = RecordRules {
            timestamp_before_max_ms: 1000,
            now_ms: NOW_MS + 5000,
            ..rules(false)
        };
        let error = validate(&poison(Compression::None, 1, &section(&[0])), &behind).unwrap_err();
        assert_eq!(error.kafka_error_code(), 32);
    }

    #[test]
    fn max_timestamp_is_derived_from_the_records() {
        // The header claims NOW_MS; the records go up to NOW_MS + 9.
        let mut records = Vec::new();
        encode_record(&mut records, 9, 0, Some(b"k"), None, &[]);
        encode_record(&mut records, 3, 1, Some(b"k"), None, &[]);
        let batch = poison(Compression::Zstd, 2, &records);
        assert_eq!(
            validate(&batch, &rules(false)).unwrap().max_timestamp_ms,
            NOW_MS + 9
        );
    }

    /// (key, value, timestamp delta)
    type TestRecord = (Option<Vec<u8>>, Option<Vec<u8>>, i64);

    #[test]
    fn recompression_keeps_every_record_for_every_codec_pair() {
        for source in CODECS {
            let batch = good_batch(source, 4);
            let header = BatchHeader::parse(&batch).unwrap();
            let original = collect(&batch);
            for target in CODECS {
                for levels in [
                    CompressionLevels::default(),
                    CompressionLevels {
                        gzip: 1,
                        lz4: 1,
                        zstd: 19,
                    },
                ] {
                    let rebuilt =
                        recompress_batch(&batch, &header, target, levels, 1 << 20).unwrap();
                    let rebuilt_header = BatchHeader::parse(&rebuilt).unwrap();
                    assert_eq!(rebuilt_header.compression_codec(), target.id());
                    assert_eq!(rebuilt_header.records_count, 4);
                    assert_eq!(rebuilt_header.last_offset_delta, 3);
                    assert_eq!(rebuilt_header.base_timestamp_ms, NOW_MS);
                    assert_eq!(collect(&rebuilt), original, "{source:?} -> {target:?}");
                    validate(&rebuilt, &rules(true)).unwrap();
                }
            }
        }
    }

    #[test]
    fn compression_levels_take_effect() {
        // Compressible but not trivial: the stronger level must produce fewer bytes.
        let mut encoder = BatchEncoder::new(BatchFields::producer(NOW_MS, NOW_MS));
        for i in 0..200 {
            let value = format!(
                "{{\"user\": {}, \"event\": \"click-{}\", \"x\": {}}}",
                i % 17,
                i % 5,
                i * 7919 % 1000
            );
            encoder.push_fields(0, 0, i, Some(b"k"), Some(value.as_bytes()), &[]);
        }
        let records = encoder.records.clone();
        let size = |codec, levels| {
            encode_batch(
                &BatchFields::producer(NOW_MS, NOW_MS),
                200,
                &records,
                codec,
                levels,
            )
            .unwrap()
            .len()
        };
        let fast = CompressionLevels {
            gzip: 1,
            lz4: 1,
            zstd: 1,
        };
        let strong = CompressionLevels {
            gzip: 9,
            lz4: 17,
            zstd: 19,
        };
        for codec in [Compression::Gzip, Compression::Lz4, Compression::Zstd] {
            assert!(size(codec, strong) < size(codec, fast), "{codec:?}");
        }
    }

    /// (offset delta, timestamp, key, value, header count) of one record.
    type Decoded = (i32, i64, Option<Vec<u8>>, Option<Vec<u8>>, usize);

    fn collect(batch: &[u8]) -> Vec<Decoded> {
        let header = BatchHeader::parse(batch).unwrap();
        let mut out = Vec::new();
        for_each_record(batch, &header, 1 << 20, |_, record| {
            out.push((
                record.offset_delta,
                record.timestamp_ms(&header),
                record.key.map(<[u8]>::to_vec),
                record.value.map(<[u8]>::to_vec),
                record.header_count(),
            ));
            Ok(())
        })
        .unwrap();
        out
    }

    fn arbitrary_records() -> impl Strategy<Value = Vec<TestRecord>> {
        proptest::collection::vec(
            (
                proptest::option::of(proptest::collection::vec(any::<u8>(), 0..20)),
                proptest::option::of(proptest::collection::vec(any::<u8>(), 0..200)),
                0i64..1000,
            ),
            1..20,
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Any batch validation accepts decodes into exactly `count` records with dense offset
        /// deltas, and any corruption of its records section is refused or still decodes so.
        #[test]
        fn accepted_batches_hold_count_dense_records(
            records in arbitrary_records(),
            codec_index in 0usize..5,
            flip in any::<(usize, u8)>(),
        ) {
            let codec = CODECS[codec_index];
            let mut encoder = BatchEncoder::new(BatchFields::producer(NOW_MS, NOW_MS));
            for (delta, (key, value, ts)) in records.iter().enumerate() {
                encoder.push_fields(0, *ts, delta as i32, key.as_deref(), value.as_deref(), &[]);
            }
            let batch = encoder.finish(codec, CompressionLevels::default()).unwrap();
            check_accepted_is_dense(&batch);
            // Flip one byte of the records section, fix the CRC: refused, or still dense.
            let mut mutated = batch.clone();
            if mutated.len() > HEADER_BYTES {
                let at = HEADER_BYTES + flip.0 % (mutated.len() - HEADER_BYTES);
                mutated[at] ^= flip.1 | 1;
                crate::testing::fix_crc(&mut mutated);
                check_accepted_is_dense(&mutated);
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        /// Validation reads streamed records without holding them (`for_each_record_fields`);
        /// it must accept and refuse exactly what reading each record whole does, with the
        /// same error, whatever is wrong inside the (uncompressed) records section.
        #[test]
        fn reading_fields_only_agrees_with_reading_records_whole(
            records in arbitrary_records(),
            codec_index in 1usize..5,
            flip in any::<(usize, u8)>(),
            cut in any::<usize>(),
            count_change in -1i32..2,
        ) {
            let codec = CODECS[codec_index];
            let mut section = Vec::new();
            for (delta, (key, value, ts)) in records.iter().enumerate() {
                let headers = [RecordHeader { key: b"h", value: value.as_deref() }];
                encode_record(&mut section, *ts, delta as i32, key.as_deref(), value.as_deref(), &headers);
            }
            let at = flip.0 % section.len();
            section[at] ^= flip.1;
            if cut % 4 == 0 {
                section.truncate(cut % (section.len() + 1));
            }
            let count = records.len() as i32 + count_change;
            let fields = BatchFields::producer(NOW_MS, NOW_MS);
            let batch = encode_batch(&fields, count, &section, codec, CompressionLevels::default()).unwrap();
            let header = BatchHeader::parse(&batch).unwrap();
            let mut whole = Vec::new();
            let whole_result = for_each_record(&batch, &header, 1 << 20, |_, record| {
                whole.push(RecordFields::of(record));
                Ok(())
            });
            let mut skimmed = Vec::new();
            let skimmed_result = for_each_record_fields(&batch, &header, 1 << 20, |_, record| {
                skimmed.push(*record);
                Ok(())
            });
            match (whole_result, skimmed_result) {
                (Ok(a), Ok(b)) => {
                    prop_assert_eq!(a, b);
                    prop_assert_eq!(whole, skimmed);
                }
                (Err(a), Err(b)) => prop_assert_eq!(a.to_string(), b.to_string()),
                (a, b) => prop_assert!(false, "{:?}: whole {:?}, fields only {:?}", codec, a, b),
            }
        }
    }

    fn check_accepted_is_dense(batch: &[u8]) {
        if validate(batch, &rules(false)).is_err() {
            return;
        }
        let header = BatchHeader::parse(batch).unwrap();
        let mut deltas = Vec::new();
        for_each_record(batch, &header, MAX_DECOMPRESSED_BATCH_BYTES, |_, record| {
            deltas.push(record.offset_delta);
            Ok(())
        })
        .unwrap();
        let expected: Vec<i32> = (0..header.records_count).collect();
        assert_eq!(deltas, expected);
        assert_eq!(header.last_offset_delta, header.records_count - 1);
    }
}
