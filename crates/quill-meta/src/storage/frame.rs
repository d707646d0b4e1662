//! Length- and checksum-framed records on disk: `[len u32 LE][crc32c(payload) u32 LE][payload]`.
//!
//! A crash can leave a torn frame at the end of an append-only file; the checksum tells a torn or
//! damaged frame from a whole one, so the reader can stop at the last whole frame.

use std::io::{self, Read};

pub const FRAME_HEADER_BYTES: usize = 8;

pub fn encode_frame(payload: &[u8]) -> Result<Vec<u8>, crate::MetaError> {
    let len = u32::try_from(payload.len()).map_err(|_| crate::MetaError::EntryTooLarge {
        size_bytes: payload.len(),
        limit_bytes: u32::MAX as usize,
    })?;
    let mut frame = Vec::with_capacity(FRAME_HEADER_BYTES + payload.len());
    frame.extend_from_slice(&len.to_le_bytes());
    frame.extend_from_slice(&crc32c::crc32c(payload).to_le_bytes());
    frame.extend_from_slice(payload);
    Ok(frame)
}

/// Result of reading one frame.
#[derive(Debug, PartialEq, Eq)]
pub enum FrameRead {
    /// A whole frame with a matching checksum.
    Frame(Vec<u8>),
    /// Clean end of file exactly at a frame boundary.
    End,
    /// The bytes from here on are not a whole, valid frame (torn write or damage).
    Invalid(String),
}

/// Reads the next frame. `max_payload_bytes` bounds the allocation: a length above it is treated
/// as damage, never allocated.
pub fn read_frame(reader: &mut impl Read, max_payload_bytes: usize) -> io::Result<FrameRead> {
    let mut header = [0u8; FRAME_HEADER_BYTES];
    let header_read = read_up_to(reader, &mut header)?;
    if header_read == 0 {
        return Ok(FrameRead::End);
    }
    if header_read < FRAME_HEADER_BYTES {
        return Ok(FrameRead::Invalid(format!(
            "frame header cut after {header_read} bytes"
        )));
    }
    let [l0, l1, l2, l3, c0, c1, c2, c3] = header;
    let len = u32::from_le_bytes([l0, l1, l2, l3]);
    let expected_crc = u32::from_le_bytes([c0, c1, c2, c3]);
    let len = match usize::try_from(len) {
        Ok(len) if len > 0 && len <= max_payload_bytes => len,
        _ => {
            return Ok(FrameRead::Invalid(format!(
                "frame length {len} outside 1..={max_payload_bytes}"
            )))
        }
    };
    let mut payload = vec![0u8; len];
    let payload_read = read_up_to(reader, &mut payload)?;
    if payload_read < len {
        return Ok(FrameRead::Invalid(format!(
            "frame payload cut after {payload_read} of {len} bytes"
        )));
    }
    let actual_crc = crc32c::crc32c(&payload);
    if actual_crc != expected_crc {
        return Ok(FrameRead::Invalid(format!(
            "frame checksum {actual_crc:#010x} does not match stored {expected_crc:#010x}"
        )));
    }
    Ok(FrameRead::Frame(payload))
}

/// Like `read_exact`, but reports how much was read instead of failing at end of file.
fn read_up_to(reader: &mut impl Read, buffer: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        let Some(rest) = buffer.get_mut(filled..) else {
            break;
        };
        match reader.read(rest) {
            Ok(0) => break,
            Ok(count) => filled += count,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(bytes: &[u8], max: usize) -> Vec<FrameRead> {
        let mut reader = bytes;
        let mut out = Vec::new();
        loop {
            let frame = read_frame(&mut reader, max).unwrap();
            let stop = !matches!(frame, FrameRead::Frame(_));
            out.push(frame);
            if stop {
                return out;
            }
        }
    }

    #[test]
    fn round_trip() {
        let mut bytes = encode_frame(b"hello").unwrap();
        bytes.extend(encode_frame(b"world!").unwrap());
        assert_eq!(
            read_all(&bytes, 100),
            vec![
                FrameRead::Frame(b"hello".to_vec()),
                FrameRead::Frame(b"world!".to_vec()),
                FrameRead::End
            ]
        );
    }

    #[test]
    fn every_cut_is_detected() {
        let bytes = encode_frame(b"payload").unwrap();
        for cut in 1..bytes.len() {
            let frames = read_all(&bytes[..cut], 100);
            assert!(
                matches!(frames.as_slice(), [FrameRead::Invalid(_)]),
                "cut {cut}"
            );
        }
    }

    #[test]
    fn every_bit_flip_is_detected() {
        let bytes = encode_frame(b"payload").unwrap();
        for position in 0..bytes.len() {
            for bit in 0..8 {
                let mut damaged = bytes.clone();
                damaged[position] ^= 1 << bit;
                let frames = read_all(&damaged, 100);
                assert!(
                    matches!(frames.first(), Some(FrameRead::Invalid(_))),
                    "flip {position}:{bit} gave {frames:?}"
                );
            }
        }
    }

    #[test]
    fn oversized_and_empty_lengths_are_invalid_without_allocating() {
        let mut huge = u32::MAX.to_le_bytes().to_vec();
        huge.extend([0u8; 4]);
        assert!(matches!(read_all(&huge, 1024)[0], FrameRead::Invalid(_)));
        let empty = [0u8; 8];
        assert!(matches!(read_all(&empty, 1024)[0], FrameRead::Invalid(_)));
        let at_limit = encode_frame(&[7u8; 16]).unwrap();
        assert!(matches!(read_all(&at_limit, 16)[0], FrameRead::Frame(_)));
        assert!(matches!(read_all(&at_limit, 15)[0], FrameRead::Invalid(_)));
    }
}
