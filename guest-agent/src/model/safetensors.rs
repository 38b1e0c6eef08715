//! safetensors header parser and per-tensor SHA-256 digests, computed in the
//! same streaming pass as the file digest.
//!
//! Format (huggingface/safetensors, as summarised in
//! `shared/specs/receipts-and-logs.md` §4.3): `u64` little-endian header length
//! `N`, then `N` bytes of UTF-8 JSON beginning with `{` (right-padded with
//! spaces allowed): `name -> {dtype, shape, data_offsets: [begin, end]}` with
//! offsets relative to the byte buffer that follows the header, plus an
//! optional `__metadata__` string map. The buffer must be covered by the
//! tensors with no hole and no overlap; headers over 100 MB are refused, as by
//! the reference crate.
//!
//! Never panics on input and never indexes it; every failure is a
//! [`ParseError`] naming the field and the byte offset. Never interprets tensor
//! data: loading is candle's job, with the bytes [`super::load`] hands over.

#![warn(clippy::indexing_slicing)]

use std::collections::BTreeMap;

use attestor::ParseError;
use attestor::bytes::Reader;
use attestor::digest::Sha256Digest;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// The format name errors carry.
pub const FORMAT: &str = "safetensors";
/// Largest header accepted, as the reference implementation (`MAX_HEADER_SIZE`).
pub const MAX_HEADER_LEN: u64 = 100_000_000;
/// Offset of the JSON header in the file.
pub const HEADER_OFFSET: usize = 8;

/// One tensor's entry in the header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TensorInfo {
    /// Tensor name.
    pub name: String,
    /// Element type as written (`F32`, `BF16`, `U8`, …).
    pub dtype: String,
    /// Dimensions.
    pub shape: Vec<u64>,
    /// `[begin, end)` relative to the start of the data buffer.
    pub data_offsets: [u64; 2],
}

/// A parsed safetensors header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Header {
    /// `N`, the header length in bytes.
    pub header_len: u64,
    /// The `__metadata__` map, if present.
    pub metadata: BTreeMap<String, String>,
    /// Tensors in data order (by `data_offsets`), contiguous from 0.
    pub tensors: Vec<TensorInfo>,
}

/// A tensor's digest: the extension carried in the OMS manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TensorDigest {
    /// Tensor name, dtype, shape and offsets from the header.
    #[serde(flatten)]
    pub info: TensorInfo,
    /// SHA-256 of the tensor's bytes `buffer[begin..end]`.
    pub sha256: Sha256Digest,
}

/// The JSON shape of one tensor entry.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTensor {
    dtype: String,
    shape: Vec<u64>,
    data_offsets: [u64; 2],
}

impl Header {
    /// How many leading bytes of the file hold the length prefix and header,
    /// read from the first 8 bytes.
    pub fn prefix_len(first: &[u8]) -> Result<usize, ParseError> {
        let mut r = Reader::new(FORMAT, first);
        let n = r.at(0).u64_le("header_len")?;
        if n > MAX_HEADER_LEN {
            return Err(r.invalid(
                "header_len",
                0,
                format!("{n} bytes exceeds the {MAX_HEADER_LEN}-byte limit"),
            ));
        }
        usize::try_from(n)
            .ok()
            .and_then(|n| n.checked_add(HEADER_OFFSET))
            .ok_or_else(|| r.invalid("header_len", 0, "does not fit in memory"))
    }

    /// Parses the header from the start of a file. `prefix` may hold more than
    /// the header (for example the whole file); the data is not looked at.
    pub fn parse(prefix: &[u8]) -> Result<Self, ParseError> {
        let len = Self::prefix_len(prefix)?;
        let mut r = Reader::new(FORMAT, prefix);
        let header_len = r.at(0).u64_le("header_len")?;
        let json = r
            .at(HEADER_OFFSET)
            .bytes("header", len.saturating_sub(HEADER_OFFSET))?;
        if json.first() != Some(&b'{') {
            return Err(r.invalid("header", HEADER_OFFSET, "does not begin with `{`"));
        }
        let entries: BTreeMap<String, serde_json::Value> = serde_json::from_slice(json)
            .map_err(|e| r.invalid("header", HEADER_OFFSET, format!("not a JSON object: {e}")))?;

        let mut metadata = BTreeMap::new();
        let mut tensors = Vec::with_capacity(entries.len());
        for (name, value) in entries {
            if name == "__metadata__" {
                metadata = serde_json::from_value(value).map_err(|e| {
                    r.invalid(
                        "__metadata__",
                        HEADER_OFFSET,
                        format!("not a string map: {e}"),
                    )
                })?;
                continue;
            }
            let raw: RawTensor = serde_json::from_value(value)
                .map_err(|e| r.invalid("tensor", HEADER_OFFSET, format!("tensor {name:?}: {e}")))?;
            tensors.push(TensorInfo {
                name,
                dtype: raw.dtype,
                shape: raw.shape,
                data_offsets: raw.data_offsets,
            });
        }
        tensors.sort_by(|a, b| {
            a.data_offsets
                .cmp(&b.data_offsets)
                .then_with(|| a.name.cmp(&b.name))
        });

        let mut expected = 0u64;
        for t in &tensors {
            let [begin, end] = t.data_offsets;
            if begin != expected {
                return Err(r.invalid(
                    "data_offsets",
                    HEADER_OFFSET,
                    format!(
                        "tensor {:?} begins at {begin}, expected {expected} (hole or overlap)",
                        t.name
                    ),
                ));
            }
            if end < begin {
                return Err(r.invalid(
                    "data_offsets",
                    HEADER_OFFSET,
                    format!(
                        "tensor {:?} ends at {end} before it begins at {begin}",
                        t.name
                    ),
                ));
            }
            if let Some(size) = dtype_size(&t.dtype) {
                let elements = t
                    .shape
                    .iter()
                    .try_fold(1u64, |acc, d| acc.checked_mul(*d))
                    .and_then(|n| n.checked_mul(size));
                if elements != Some(end - begin) {
                    return Err(r.invalid(
                        "shape",
                        HEADER_OFFSET,
                        format!(
                            "tensor {:?}: {} {:?} does not fill {} bytes",
                            t.name,
                            t.dtype,
                            t.shape,
                            end - begin
                        ),
                    ));
                }
            }
            expected = end;
        }
        Ok(Self {
            header_len,
            metadata,
            tensors,
        })
    }

    /// Offset of the data buffer in the file.
    pub fn data_start(&self) -> u64 {
        self.header_len + HEADER_OFFSET as u64
    }

    /// Length of the data buffer the tensors cover.
    pub fn data_len(&self) -> u64 {
        self.tensors.last().map_or(0, |t| t.data_offsets[1])
    }
}

/// Bytes per element of the dtypes the reference crate knows; `None` for
/// others (their size is then not checked; their digest still is computed).
fn dtype_size(dtype: &str) -> Option<u64> {
    Some(match dtype {
        "BOOL" | "U8" | "I8" | "F8_E5M2" | "F8_E4M3" | "F8_E8M0" => 1,
        "I16" | "U16" | "F16" | "BF16" => 2,
        "I32" | "U32" | "F32" => 4,
        "I64" | "U64" | "F64" | "C64" => 8,
        _ => return None,
    })
}

/// Computes per-tensor digests from a file's bytes fed in order, in chunks of
/// any size: the streaming counterpart of [`tensor_digests`].
#[derive(Debug)]
pub struct TensorHasher {
    state: State,
}

#[derive(Debug)]
enum State {
    /// Collecting the length prefix and the header.
    Header { buf: Vec<u8>, need: Option<usize> },
    /// Hashing tensor data.
    Data(Box<DataState>),
    /// A header error; the rest of the input is skipped.
    Failed(ParseError),
}

#[derive(Debug)]
struct DataState {
    header: Header,
    /// Position in the data buffer.
    pos: u64,
    /// Index of the tensor being hashed.
    next: usize,
    hasher: Sha256,
    digests: Vec<TensorDigest>,
    /// Bytes after the last tensor.
    extra: u64,
}

impl Default for TensorHasher {
    fn default() -> Self {
        Self::new()
    }
}

impl TensorHasher {
    /// A hasher at the start of a file.
    pub fn new() -> Self {
        Self {
            state: State::Header {
                buf: Vec::new(),
                need: None,
            },
        }
    }

    /// Feeds the next bytes of the file.
    pub fn update(&mut self, mut chunk: &[u8]) {
        if let State::Header { buf, need } = &mut self.state {
            if need.is_none() {
                let take = HEADER_OFFSET.saturating_sub(buf.len()).min(chunk.len());
                let (head, rest) = chunk.split_at_checked(take).unwrap_or((chunk, &[]));
                buf.extend_from_slice(head);
                chunk = rest;
                if buf.len() < HEADER_OFFSET {
                    return;
                }
                match Header::prefix_len(buf) {
                    Ok(n) => *need = Some(n),
                    Err(e) => {
                        self.state = State::Failed(e);
                        return;
                    }
                }
            }
            let total = need.unwrap_or(HEADER_OFFSET);
            let take = total.saturating_sub(buf.len()).min(chunk.len());
            let (head, rest) = chunk.split_at_checked(take).unwrap_or((chunk, &[]));
            buf.extend_from_slice(head);
            chunk = rest;
            if buf.len() < total {
                return;
            }
            self.state = match Header::parse(buf) {
                Ok(header) => State::Data(Box::new(DataState {
                    header,
                    pos: 0,
                    next: 0,
                    hasher: Sha256::new(),
                    digests: Vec::new(),
                    extra: 0,
                })),
                Err(e) => State::Failed(e),
            };
        }
        if let State::Data(d) = &mut self.state {
            d.feed(chunk);
        }
    }

    /// The digests of every tensor, in data order; an error if the header is
    /// malformed or the data does not end where the last tensor ends.
    pub fn finish(self) -> Result<Vec<TensorDigest>, ParseError> {
        match self.state {
            State::Failed(e) => Err(e),
            State::Header { buf, need } => {
                // Re-parse what arrived, to report the truncated field.
                let have = buf.len();
                Err(match Header::parse(&buf) {
                    Err(e) => e,
                    Ok(_) => ParseError::Truncated {
                        format: FORMAT,
                        field: "header",
                        offset: have,
                        need: need.unwrap_or(HEADER_OFFSET).saturating_sub(have),
                        have: 0,
                    },
                })
            }
            State::Data(mut d) => {
                d.close_finished();
                let data_start = d.header.data_start();
                let data_len = d.header.data_len();
                if d.next < d.header.tensors.len() {
                    return Err(ParseError::Truncated {
                        format: FORMAT,
                        field: "tensor data",
                        offset: offset_usize(data_start + d.pos),
                        need: offset_usize(data_len - d.pos),
                        have: 0,
                    });
                }
                if d.extra > 0 {
                    return Err(ParseError::TrailingBytes {
                        format: FORMAT,
                        offset: offset_usize(data_start + data_len),
                        extra: offset_usize(d.extra),
                    });
                }
                Ok(d.digests)
            }
        }
    }
}

fn offset_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

impl DataState {
    /// Finishes every tensor that ends at the current position (including
    /// empty ones).
    fn close_finished(&mut self) {
        while let Some(t) = self.header.tensors.get(self.next) {
            if t.data_offsets[1] != self.pos {
                break;
            }
            let hasher = std::mem::replace(&mut self.hasher, Sha256::new());
            self.digests.push(TensorDigest {
                info: t.clone(),
                sha256: Sha256Digest::from(<[u8; 32]>::from(hasher.finalize())),
            });
            self.next += 1;
        }
    }

    fn feed(&mut self, mut chunk: &[u8]) {
        loop {
            self.close_finished();
            if chunk.is_empty() {
                return;
            }
            let Some(t) = self.header.tensors.get(self.next) else {
                self.extra += chunk.len() as u64;
                return;
            };
            let left = t.data_offsets[1] - self.pos;
            let take = usize::try_from(left).unwrap_or(usize::MAX).min(chunk.len());
            let (head, rest) = chunk.split_at_checked(take).unwrap_or((chunk, &[]));
            self.hasher.update(head);
            self.pos += head.len() as u64;
            chunk = rest;
        }
    }
}

/// Per-tensor digests of a whole safetensors file held in memory.
pub fn tensor_digests(file: &[u8]) -> Result<Vec<TensorDigest>, ParseError> {
    let mut h = TensorHasher::new();
    h.update(file);
    h.finish()
}

/// Fuzz body: the header parser and the streaming hasher never panic, and the
/// digests do not depend on how the input is split into chunks (a property
/// that can fail).
pub fn fuzz_chunking(data: &[u8]) {
    let _ = Header::parse(data);
    let whole = tensor_digests(data);
    for size in [1usize, 3, 8, 64] {
        let mut h = TensorHasher::new();
        for chunk in data.chunks(size) {
            h.update(chunk);
        }
        assert_eq!(h.finish(), whole, "chunk size {size}");
    }
}

#[cfg(test)]
#[allow(clippy::cast_possible_truncation)] // test data built from small counters
mod tests {
    use super::*;

    /// A header padded to 8 bytes, then the data buffer.
    fn file(header: &str, data: &[u8]) -> Vec<u8> {
        let mut h = header.as_bytes().to_vec();
        while !h.len().is_multiple_of(8) {
            h.push(b' ');
        }
        let mut out = (h.len() as u64).to_le_bytes().to_vec();
        out.extend_from_slice(&h);
        out.extend_from_slice(data);
        out
    }

    fn sample() -> Vec<u8> {
        file(
            r#"{"__metadata__":{"format":"pt"},"b":{"dtype":"U8","shape":[3],"data_offsets":[8,11]},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"e":{"dtype":"F16","shape":[0],"data_offsets":[11,11]}}"#,
            &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
        )
    }

    #[test]
    fn digests_per_tensor_in_data_order() {
        let d = tensor_digests(&sample()).unwrap();
        let names: Vec<_> = d.iter().map(|t| t.info.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "e"]);
        assert_eq!(d[0].sha256, Sha256Digest::of(&[0, 1, 2, 3, 4, 5, 6, 7]));
        assert_eq!(d[1].sha256, Sha256Digest::of(&[8, 9, 10]));
        assert_eq!(d[2].sha256, Sha256Digest::of(&[]));
        let h = Header::parse(&sample()).unwrap();
        assert_eq!(h.metadata["format"], "pt");
        assert_eq!(h.data_len(), 11);
        assert_eq!(h.data_start() + 11, sample().len() as u64);
    }

    #[test]
    fn empty_header_object_is_a_valid_empty_file() {
        assert_eq!(tensor_digests(&file("{}", &[])).unwrap(), vec![]);
    }

    fn err(bytes: &[u8]) -> ParseError {
        tensor_digests(bytes).unwrap_err()
    }

    #[test]
    fn truncated_length_prefix() {
        assert!(matches!(
            err(&[1, 0, 0]),
            ParseError::Truncated {
                field: "header_len",
                offset: 0,
                ..
            }
        ));
    }

    #[test]
    fn header_too_large() {
        let mut b = (MAX_HEADER_LEN + 1).to_le_bytes().to_vec();
        b.extend_from_slice(b"{}");
        assert!(matches!(
            err(&b),
            ParseError::Invalid {
                field: "header_len",
                offset: 0,
                ..
            }
        ));
        // The largest u64 must not overflow anything either.
        assert!(matches!(
            err(&u64::MAX.to_le_bytes()),
            ParseError::Invalid {
                field: "header_len",
                ..
            }
        ));
    }

    #[test]
    fn truncated_header() {
        let s = sample();
        let e = err(&s[..20]);
        assert!(
            matches!(
                e,
                ParseError::Truncated {
                    field: "header",
                    offset: 8,
                    ..
                }
            ),
            "{e:?}"
        );
    }

    #[test]
    fn header_not_json_or_not_object() {
        for bad in ["[1,2]   ", "{\"a\":", "{\"a\": 1}", "not json"] {
            let e = err(&file(bad, &[]));
            assert!(
                matches!(
                    e,
                    ParseError::Invalid {
                        field: "header" | "tensor",
                        offset: 8,
                        ..
                    }
                ),
                "{bad}: {e:?}"
            );
        }
        let mut b = file("{\"\u{e9}\":{}}", &[]);
        b[10] = 0xff; // invalid UTF-8 inside the JSON string
        assert!(matches!(
            err(&b),
            ParseError::Invalid {
                field: "header",
                ..
            }
        ));
    }

    #[test]
    fn bad_metadata_and_unknown_fields() {
        let e = err(&file(r#"{"__metadata__":{"k":1}}"#, &[]));
        assert!(matches!(
            e,
            ParseError::Invalid {
                field: "__metadata__",
                ..
            }
        ));
        let e = err(&file(
            r#"{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"x":1}}"#,
            &[0],
        ));
        assert!(matches!(
            e,
            ParseError::Invalid {
                field: "tensor",
                ..
            }
        ));
    }

    #[test]
    fn holes_overlaps_and_reversed_offsets() {
        let hole = r#"{"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}"#;
        let overlap = r#"{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"b":{"dtype":"U8","shape":[2],"data_offsets":[1,3]}}"#;
        let reversed = r#"{"a":{"dtype":"U8","shape":[0],"data_offsets":[2,0]}}"#;
        for h in [hole, overlap, reversed] {
            assert!(
                matches!(
                    err(&file(h, &[0, 0, 0])),
                    ParseError::Invalid {
                        field: "data_offsets",
                        ..
                    }
                ),
                "{h}"
            );
        }
    }

    #[test]
    fn shape_must_fill_the_range() {
        let h = r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}"#;
        assert!(matches!(
            err(&file(h, &[0; 4])),
            ParseError::Invalid { field: "shape", .. }
        ));
        let h = r#"{"a":{"dtype":"F64","shape":[4294967296,4294967296],"data_offsets":[0,8]}}"#;
        assert!(matches!(
            err(&file(h, &[0; 8])),
            ParseError::Invalid { field: "shape", .. }
        ));
    }

    #[test]
    fn data_shorter_or_longer_than_the_tensors() {
        let s = sample();
        assert!(matches!(
            err(&s[..s.len() - 1]),
            ParseError::Truncated {
                field: "tensor data",
                ..
            }
        ));
        let mut long = s.clone();
        long.push(0);
        assert!(matches!(
            err(&long),
            ParseError::TrailingBytes { extra: 1, .. }
        ));
    }

    #[test]
    fn fuzz_body_over_truncations_and_bit_flips() {
        let s = sample();
        for len in 0..=s.len() {
            fuzz_chunking(&s[..len]);
        }
        for i in 0..s.len() * 8 {
            let mut b = s.clone();
            b[i / 8] ^= 1 << (i % 8);
            fuzz_chunking(&b);
        }
    }
}
