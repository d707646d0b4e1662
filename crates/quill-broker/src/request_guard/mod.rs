//! Request guard: checks a request body's structure before kafka-protocol decodes it.
//!
//! Why: kafka-protocol 0.18 calls `Vec::with_capacity(count)` with array counts read off the
//! wire before decoding any element, so a 20-byte request declaring 2^31 elements makes the
//! allocator abort the whole process. Every array element takes at least a known number of
//! bytes on the wire (generated per struct and version), so a count whose elements cannot fit
//! in the bytes left is impossible; the guard walks the body with the same field layout as the
//! decoder (generated into [`schema`] by `tools/gen_request_guard.py`) and rejects such counts,
//! so the decoder only reserves memory for elements that are really there.
//!
//! Architecture invariant: no request body reaches `Decodable::decode` without passing its guard.

mod schema;

use kafka_protocol::messages::ApiKey;

/// Why a request body was rejected before decoding.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GuardError {
    #[error("request body ends in the middle of a field")]
    Truncated,
    #[error(
        "array declares {count} elements of at least {min_element_bytes} bytes but only {remaining_bytes} bytes remain"
    )]
    ImpossibleCount {
        count: u64,
        min_element_bytes: usize,
        remaining_bytes: usize,
    },
    #[error("negative length {length}")]
    NegativeLength { length: i64 },
    #[error("tagged field not valid for this version")]
    TagNotValidForVersion,
    #[error("no request guard for API {0:?}")]
    NoGuard(ApiKey),
}

/// A cursor over a request body that only checks structure.
pub struct Walker<'a> {
    bytes: &'a [u8],
    position: usize,
}

impl<'a> Walker<'a> {
    pub fn new(bytes: &'a [u8]) -> Walker<'a> {
        Walker { bytes, position: 0 }
    }

    fn remaining(&self) -> usize {
        self.bytes.len().saturating_sub(self.position)
    }

    pub fn skip(&mut self, length: usize) -> Result<(), GuardError> {
        if length > self.remaining() {
            return Err(GuardError::Truncated);
        }
        self.position += length;
        Ok(())
    }

    fn take<const N: usize>(&mut self) -> Result<[u8; N], GuardError> {
        let end = self.position.checked_add(N).ok_or(GuardError::Truncated)?;
        let slice = self
            .bytes
            .get(self.position..end)
            .ok_or(GuardError::Truncated)?;
        let mut array = [0u8; N];
        array.copy_from_slice(slice);
        self.position = end;
        Ok(array)
    }

    fn read_i16(&mut self) -> Result<i16, GuardError> {
        Ok(i16::from_be_bytes(self.take::<2>()?))
    }

    fn read_i32(&mut self) -> Result<i32, GuardError> {
        Ok(i32::from_be_bytes(self.take::<4>()?))
    }

    /// Same rules as kafka-protocol's decoder: at most 5 bytes, the last one ends it.
    pub fn unsigned_varint(&mut self) -> Result<u32, GuardError> {
        let mut value: u32 = 0;
        for index in 0..5 {
            let [byte] = self.take::<1>()?;
            value |= u32::from(byte & 0x7f) << (index * 7);
            if byte < 0x80 {
                break;
            }
        }
        Ok(value)
    }

    fn skip_length_prefixed(&mut self, length: i64, null_marker: i64) -> Result<(), GuardError> {
        if length == null_marker {
            return Ok(());
        }
        let length = usize::try_from(length).map_err(|_| GuardError::NegativeLength { length })?;
        self.skip(length)
    }

    pub fn string(&mut self) -> Result<(), GuardError> {
        let length = self.read_i16()?;
        self.skip_length_prefixed(i64::from(length), -1)
    }

    pub fn compact_string(&mut self) -> Result<(), GuardError> {
        let length_plus_one = self.unsigned_varint()?;
        self.skip_length_prefixed(i64::from(length_plus_one) - 1, -1)
    }

    pub fn bytes(&mut self) -> Result<(), GuardError> {
        let length = self.read_i32()?;
        self.skip_length_prefixed(i64::from(length), -1)
    }

    pub fn compact_bytes(&mut self) -> Result<(), GuardError> {
        self.compact_string()
    }

    /// Walks `count` elements of at least `min_element_bytes` each. The decoder reserves
    /// memory for `count` elements before decoding any, so a count is accepted only if that
    /// many elements could really follow: `count × min_element_bytes ≤ bytes left`.
    fn elements(
        &mut self,
        count: u64,
        min_element_bytes: usize,
        mut element: impl FnMut(&mut Walker<'a>) -> Result<(), GuardError>,
    ) -> Result<(), GuardError> {
        let remaining_bytes = self.remaining();
        let needed_bytes = count.saturating_mul(min_element_bytes.max(1) as u64);
        if needed_bytes > remaining_bytes as u64 {
            return Err(GuardError::ImpossibleCount {
                count,
                min_element_bytes,
                remaining_bytes,
            });
        }
        for _ in 0..count {
            element(self)?;
        }
        Ok(())
    }

    pub fn array(
        &mut self,
        min_element_bytes: usize,
        element: impl FnMut(&mut Walker<'a>) -> Result<(), GuardError>,
    ) -> Result<(), GuardError> {
        let count = self.read_i32()?;
        if count == -1 {
            return Ok(());
        }
        let count = u64::try_from(count).map_err(|_| GuardError::NegativeLength {
            length: i64::from(count),
        })?;
        self.elements(count, min_element_bytes, element)
    }

    pub fn compact_array(
        &mut self,
        min_element_bytes: usize,
        element: impl FnMut(&mut Walker<'a>) -> Result<(), GuardError>,
    ) -> Result<(), GuardError> {
        let count_plus_one = self.unsigned_varint()?;
        if count_plus_one == 0 {
            return Ok(());
        }
        self.elements(u64::from(count_plus_one - 1), min_element_bytes, element)
    }

    /// A nullable struct: a presence byte (1 = a struct follows, as the decoder reads it),
    /// then the struct.
    pub fn option_struct(
        &mut self,
        element: impl FnOnce(&mut Walker<'a>) -> Result<(), GuardError>,
    ) -> Result<(), GuardError> {
        let [present] = self.take::<1>()?;
        if present as i8 == 1 {
            element(self)?;
        }
        Ok(())
    }

    /// `known(walker, tag)` walks a tag the decoder understands and returns true; unknown tags
    /// are skipped by their size, as the decoder does.
    pub fn tagged_fields(
        &mut self,
        mut known: impl FnMut(&mut Walker<'a>, u32) -> Result<bool, GuardError>,
    ) -> Result<(), GuardError> {
        let count = self.unsigned_varint()?;
        for _ in 0..count {
            let tag = self.unsigned_varint()?;
            let size = self.unsigned_varint()?;
            if !known(self, tag)? {
                self.skip(usize::try_from(size).map_err(|_| GuardError::Truncated)?)?;
            }
        }
        Ok(())
    }
}

/// Checks `body` (a request body at `api_version`) before it is decoded.
pub fn check(api_key: ApiKey, api_version: i16, body: &[u8]) -> Result<(), GuardError> {
    let walk = schema::walker_for(api_key).ok_or(GuardError::NoGuard(api_key))?;
    walk(&mut Walker::new(body), api_version)
}

/// Bytes of `body` the guard consumed (tests compare it with the decoder).
#[cfg(test)]
fn consumed(api_key: ApiKey, api_version: i16, body: &[u8]) -> Result<usize, GuardError> {
    let walk = schema::walker_for(api_key).ok_or(GuardError::NoGuard(api_key))?;
    let mut walker = Walker::new(body);
    walk(&mut walker, api_version)?;
    Ok(walker.position)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
