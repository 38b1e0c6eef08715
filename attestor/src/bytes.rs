//! A length-checked cursor over untrusted bytes, and the writer that mirrors it.
//!
//! The reader never indexes or unwraps: every read goes through
//! `split_first_chunk`/`get`, and a short input becomes a [`ParseError`] naming
//! the format, the field and the absolute offset. Nested structures get a
//! sub-reader whose offsets stay absolute, so errors point into the original
//! input.

use crate::error::ParseError;

/// Reads fields from a byte slice in order, checking every length.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    format: &'static str,
    buf: &'a [u8],
    pos: usize,
    /// Absolute offset of `buf[0]` in the outermost input.
    base: usize,
}

impl<'a> Reader<'a> {
    /// A reader over the whole of `buf`.
    pub fn new(format: &'static str, buf: &'a [u8]) -> Self {
        Self {
            format,
            buf,
            pos: 0,
            base: 0,
        }
    }

    /// A reader over `buf`, which must be exactly `len` bytes.
    pub fn exact(format: &'static str, buf: &'a [u8], len: usize) -> Result<Self, ParseError> {
        if buf.len() != len {
            return Err(ParseError::Length {
                format,
                expected: len,
                found: buf.len(),
            });
        }
        Ok(Self::new(format, buf))
    }

    /// States the offset the next field starts at: the layout table in code.
    /// A debug assertion, because the offset is ours, not the input's.
    pub fn at(&mut self, offset: usize) -> &mut Self {
        debug_assert_eq!(self.pos, offset, "{}: layout offset drift", self.format);
        self
    }

    /// The format name errors carry.
    pub fn format(&self) -> &'static str {
        self.format
    }

    /// Position relative to the start of this reader.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Absolute position in the outermost input.
    pub fn offset(&self) -> usize {
        self.base + self.pos
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    /// True when every byte has been read.
    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// Everything not yet read, without consuming it.
    pub fn rest(&self) -> &'a [u8] {
        self.buf.get(self.pos..).unwrap_or_default()
    }

    /// Reads a fixed-size array.
    pub fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], ParseError> {
        let rest = self.rest();
        let (head, _) = rest.split_first_chunk::<N>().ok_or(ParseError::Truncated {
            format: self.format,
            field,
            offset: self.offset(),
            need: N,
            have: rest.len(),
        })?;
        self.pos += N;
        Ok(*head)
    }

    /// Reads `len` bytes.
    pub fn bytes(&mut self, field: &'static str, len: usize) -> Result<&'a [u8], ParseError> {
        let rest = self.rest();
        let head = rest.get(..len).ok_or(ParseError::Truncated {
            format: self.format,
            field,
            offset: self.offset(),
            need: len,
            have: rest.len(),
        })?;
        self.pos += len;
        Ok(head)
    }

    /// Reads everything that is left.
    pub fn take_rest(&mut self) -> &'a [u8] {
        let rest = self.rest();
        self.pos += rest.len();
        rest
    }

    /// A reader over the next `len` bytes (a nested, length-prefixed structure),
    /// reporting offsets in the outer input.
    pub fn sub(&mut self, field: &'static str, len: usize) -> Result<Reader<'a>, ParseError> {
        let base = self.offset();
        let buf = self.bytes(field, len)?;
        Ok(Reader {
            format: self.format,
            buf,
            pos: 0,
            base,
        })
    }

    /// The same, under another format name (a nested structure of its own kind).
    pub fn sub_as(
        &mut self,
        format: &'static str,
        field: &'static str,
        len: usize,
    ) -> Result<Reader<'a>, ParseError> {
        let mut sub = self.sub(field, len)?;
        sub.format = format;
        Ok(sub)
    }

    pub fn u8(&mut self, field: &'static str) -> Result<u8, ParseError> {
        self.array::<1>(field).map(|[b]| b)
    }

    pub fn u16_le(&mut self, field: &'static str) -> Result<u16, ParseError> {
        self.array(field).map(u16::from_le_bytes)
    }

    pub fn u16_be(&mut self, field: &'static str) -> Result<u16, ParseError> {
        self.array(field).map(u16::from_be_bytes)
    }

    /// A 24-bit little-endian integer (SPDM lengths).
    pub fn u24_le(&mut self, field: &'static str) -> Result<u32, ParseError> {
        self.array::<3>(field)
            .map(|[a, b, c]| u32::from_le_bytes([a, b, c, 0]))
    }

    pub fn u32_le(&mut self, field: &'static str) -> Result<u32, ParseError> {
        self.array(field).map(u32::from_le_bytes)
    }

    pub fn u32_be(&mut self, field: &'static str) -> Result<u32, ParseError> {
        self.array(field).map(u32::from_be_bytes)
    }

    pub fn u64_le(&mut self, field: &'static str) -> Result<u64, ParseError> {
        self.array(field).map(u64::from_le_bytes)
    }

    /// Reads `N` reserved bytes that must be zero.
    pub fn zeros<const N: usize>(&mut self, field: &'static str) -> Result<(), ParseError> {
        let offset = self.offset();
        let bytes: [u8; N] = self.array(field)?;
        if bytes.iter().any(|&b| b != 0) {
            return Err(ParseError::ReservedNonZero {
                format: self.format,
                field,
                offset,
            });
        }
        Ok(())
    }

    /// An error for the field just read (or about to be read) at `offset`.
    pub fn invalid(&self, field: &'static str, offset: usize, reason: impl ToString) -> ParseError {
        ParseError::Invalid {
            format: self.format,
            field,
            offset,
            reason: reason.to_string(),
        }
    }

    /// Ends the parse: no bytes may be left.
    pub fn finish(self) -> Result<(), ParseError> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(ParseError::TrailingBytes {
                format: self.format,
                offset: self.offset(),
                extra: self.remaining(),
            })
        }
    }
}

/// Builds wire bytes field by field; serializers mirror their parser line for line.
#[derive(Debug, Default, Clone)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            buf: Vec::with_capacity(capacity),
        }
    }

    /// The layout table again, checked in debug builds.
    pub fn at(&mut self, offset: usize) -> &mut Self {
        debug_assert_eq!(self.buf.len(), offset, "writer layout offset drift");
        self
    }

    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub fn bytes(&mut self, bytes: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(bytes);
        self
    }

    pub fn zeros(&mut self, n: usize) -> &mut Self {
        self.buf.resize(self.buf.len() + n, 0);
        self
    }

    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.buf.push(v);
        self
    }

    pub fn u16_le(&mut self, v: u16) -> &mut Self {
        self.bytes(&v.to_le_bytes())
    }

    pub fn u16_be(&mut self, v: u16) -> &mut Self {
        self.bytes(&v.to_be_bytes())
    }

    /// Writes the low 24 bits; callers check the range when they build the value.
    pub fn u24_le(&mut self, v: u32) -> &mut Self {
        let [a, b, c, _] = v.to_le_bytes();
        self.bytes(&[a, b, c])
    }

    pub fn u32_le(&mut self, v: u32) -> &mut Self {
        self.bytes(&v.to_le_bytes())
    }

    pub fn u32_be(&mut self, v: u32) -> &mut Self {
        self.bytes(&v.to_be_bytes())
    }

    pub fn u64_le(&mut self, v: u64) -> &mut Self {
        self.bytes(&v.to_le_bytes())
    }

    pub fn into_vec(self) -> Vec<u8> {
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_names_field_and_absolute_offset() {
        let data = [1u8, 2, 3, 4, 5, 6];
        let mut r = Reader::new("demo", &data);
        r.u16_le("a").unwrap();
        let mut sub = r.sub("inner", 3).unwrap();
        sub.u8("b").unwrap();
        let err = sub.u32_le("c").unwrap_err();
        assert_eq!(
            err,
            ParseError::Truncated {
                format: "demo",
                field: "c",
                offset: 3,
                need: 4,
                have: 2
            }
        );
    }

    #[test]
    fn reserved_and_trailing_are_reported() {
        let data = [0u8, 1, 9];
        let mut r = Reader::new("demo", &data);
        let err = r.zeros::<2>("rsvd").unwrap_err();
        assert_eq!(
            err,
            ParseError::ReservedNonZero {
                format: "demo",
                field: "rsvd",
                offset: 0
            }
        );
        let err = r.finish().unwrap_err();
        assert_eq!(
            err,
            ParseError::TrailingBytes {
                format: "demo",
                offset: 2,
                extra: 1
            }
        );
    }

    #[test]
    fn writer_mirrors_reader() {
        let mut w = Writer::new();
        w.u8(7).u16_le(0x0102).u24_le(0x030405).u32_be(9).u64_le(10);
        let v = w.into_vec();
        let mut r = Reader::new("demo", &v);
        assert_eq!(r.u8("a").unwrap(), 7);
        assert_eq!(r.u16_le("b").unwrap(), 0x0102);
        assert_eq!(r.u24_le("c").unwrap(), 0x030405);
        assert_eq!(r.u32_be("d").unwrap(), 9);
        assert_eq!(r.u64_le("e").unwrap(), 10);
        r.finish().unwrap();
    }

    #[test]
    fn exact_length_is_enforced() {
        assert!(matches!(
            Reader::exact("demo", &[0u8; 3], 4),
            Err(ParseError::Length {
                expected: 4,
                found: 3,
                ..
            })
        ));
    }
}
