//! Sealed files: model weights encrypted at rest under a key that only the key
//! broker holds, so the weights stay opaque until the environment is attested
//! and the broker releases the key (issue #5, DESIGN.md §3).
//!
//! Construction: chunked AES-256-GCM in the STREAM construction of Hoang,
//! Reyhanitabar, Rogaway and Vizár ("Online Authenticated-Encryption and its
//! Nonce-Reuse Misuse-Resistance", CRYPTO 2015, §7), with the 96-bit nonce laid
//! out as the RustCrypto `aead::stream::StreamBE32` does: a random 7-byte
//! prefix per file, a big-endian 32-bit chunk counter, and a last-chunk flag
//! byte (0 for every chunk but the last, 1 for the last). The whole header
//! (name, plaintext length, chunk size, nonce prefix) is the associated data of
//! every chunk. Together these make truncation, dropping the last chunk,
//! reordering or duplicating chunks, splicing chunks from another file, any bit
//! flip, a wrong key and a renamed file fail authentication.
//!
//! Layout of a sealed file (integers little-endian, as elsewhere in this crate):
//!
//! | offset | size | field           | meaning                                            |
//! |--------|------|-----------------|----------------------------------------------------|
//! | 0x00   | 8    | `magic`         | `CCA-SEAL`                                         |
//! | 0x08   | 2    | `version`       | 1                                                  |
//! | 0x0A   | 2    | reserved        | zero                                               |
//! | 0x0C   | 4    | `chunk_size`    | plaintext bytes per chunk, at least 1 (1 MiB here) |
//! | 0x10   | 8    | `plaintext_len` | total plaintext bytes                              |
//! | 0x18   | 7    | `nonce_prefix`  | random, per file                                   |
//! | 0x1F   | 1    | reserved        | zero                                               |
//! | 0x20   | 8    | `name_len`      | bytes of `name`                                    |
//! | 0x28   | n    | `name`          | UTF-8, e.g. the model file's path in its folder    |
//! | 0x28+n | …    | chunks          | `ceil(plaintext_len / chunk_size)` chunks, at least one; each is its ciphertext followed by a 16-byte tag |
//!
//! An empty file is one empty final chunk (16 bytes of tag). The total length
//! is fixed by the header, so a file of any other length is refused before any
//! decryption.
//!
//! The cipher is ring's AES-256-GCM (assembly, fast in unoptimised builds,
//! where RustCrypto's generic `aes-gcm` ran at 5 MB/s); the tests check the
//! format against `aes-gcm` as an independent implementation.
//!
//! What this module must never do: hand out plaintext from a file that did not
//! authenticate completely ([`open`] returns nothing on any failure; the
//! `emit` callback of [`open_with`] and [`open_in_place`] sees authenticated
//! chunks only, and its caller must discard what it saw when the call fails),
//! panic on any input,
//! reuse a nonce prefix (every [`seal`] draws a fresh one from the OS), or
//! print a key ([`SealKey`]'s `Debug` is redacted and the key is zeroed on
//! drop).

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand_core::{OsRng, RngCore as _};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, Tag, UnboundKey};
use zeroize::{Zeroize as _, Zeroizing};

use crate::bytes::{Reader, Writer};
use crate::error::ParseError;

/// The first eight bytes of every sealed file.
pub const MAGIC: [u8; 8] = *b"CCA-SEAL";
/// The only format version.
pub const VERSION: u16 = 1;
/// Plaintext bytes per chunk when sealing.
pub const CHUNK_SIZE: u32 = 1 << 20;
/// Bytes of the fixed part of the header, before the name.
pub const FIXED_HEADER_LEN: usize = 0x28;
/// Bytes of the GCM tag after each chunk's ciphertext.
pub const TAG_LEN: usize = 16;
/// Bytes of the random nonce prefix.
pub const NONCE_PREFIX_LEN: usize = 7;
/// The JOSE algorithm name of the key as a JWK (RFC 7518 §4.7 / §5.3).
pub const JWK_ALG: &str = "A256GCM";

const FORMAT: &str = "sealed file";
/// STREAM's counter is 32 bits: at most 2^32 chunks per file.
const MAX_CHUNKS: u64 = 1 << 32;

/// The 256-bit key that seals a model's files. As a broker resource it is the
/// JSON JWK `{"kty":"oct","alg":"A256GCM","k":"<base64url>"}`
/// ([`Self::to_jwk_bytes`], [`Self::from_jwk_bytes`]).
///
/// Deliberately neither `PartialEq` (a non-constant-time comparison of a
/// secret) nor a readable `Debug`. Zeroed on drop.
#[derive(Clone)]
pub struct SealKey([u8; 32]);

impl SealKey {
    /// A fresh key from the operating system's random source.
    pub fn generate() -> Self {
        let mut key = [0u8; 32];
        OsRng.fill_bytes(&mut key);
        Self(key)
    }

    /// Wraps raw key bytes (tests and key-management tools).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The raw key bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The key as the JWK resource the broker stores:
    /// `{"kty":"oct","alg":"A256GCM","k":"<base64url of the 32 bytes>"}`.
    pub fn to_jwk_bytes(&self) -> Vec<u8> {
        let k = Zeroizing::new(URL_SAFE_NO_PAD.encode(self.0));
        format!(r#"{{"kty":"oct","alg":"{JWK_ALG}","k":"{}"}}"#, k.as_str()).into_bytes()
    }

    /// Reads the key from its JWK resource. Requires `kty` `oct`, `alg`
    /// `A256GCM` and a `k` of exactly 32 bytes (unpadded base64url); other
    /// members are ignored, as RFC 7517 §4 asks.
    pub fn from_jwk_bytes(bytes: &[u8]) -> Result<Self, SealError> {
        #[derive(serde::Deserialize)]
        struct Jwk {
            kty: Option<String>,
            alg: Option<String>,
            k: Option<String>,
        }
        let refuse = |reason| SealError::Key { reason };
        let jwk: Jwk = serde_json::from_slice(bytes)
            .map_err(|_| refuse("not a JSON object with string members kty, alg, k"))?;
        if jwk.kty.as_deref() != Some("oct") {
            return Err(refuse("kty is not \"oct\""));
        }
        if jwk.alg.as_deref() != Some(JWK_ALG) {
            return Err(refuse("alg is not \"A256GCM\""));
        }
        let k = Zeroizing::new(jwk.k.ok_or(refuse("k is missing"))?);
        let raw = Zeroizing::new(
            URL_SAFE_NO_PAD
                .decode(k.as_bytes())
                .map_err(|_| refuse("k is not unpadded base64url"))?,
        );
        let key: [u8; 32] = raw
            .as_slice()
            .try_into()
            .map_err(|_| refuse("k is not 32 bytes"))?;
        Ok(Self(key))
    }

    /// The AES-256-GCM key. ring's (not RustCrypto's generic `aes-gcm`):
    /// generic code is compiled with its caller's optimisation level, and the
    /// unoptimised dev build ran `aes-gcm` at 5 MB/s, 20 s for the reference
    /// model; ring's assembly runs at full speed in every profile. Tests check
    /// the format against `aes-gcm` as an independent implementation.
    fn cipher(&self) -> Result<LessSafeKey, ring::error::Unspecified> {
        UnboundKey::new(&AES_256_GCM, &self.0).map(LessSafeKey::new)
    }
}

impl fmt::Debug for SealKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SealKey(<redacted>)")
    }
}

impl Drop for SealKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

/// Why a sealed file could not be opened, or a key could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// The header is malformed: wrong magic, unknown version, non-zero
    /// reserved bytes, a zero chunk size, truncation, or a name that is not UTF-8.
    #[error(transparent)]
    Header(#[from] ParseError),
    /// The file is not as long as its header says: truncated (a chunk or its
    /// tag missing) or extended.
    #[error("sealed file {name:?}: {found} bytes, but its header describes {expected}")]
    Length {
        /// The name in the header.
        name: String,
        /// The length the header implies.
        expected: u128,
        /// The length found.
        found: usize,
    },
    /// The header implies more chunks than the 32-bit STREAM counter allows.
    #[error("sealed file {name:?}: {chunks} chunks exceed the limit of 2^32")]
    TooManyChunks {
        /// The name in the header.
        name: String,
        /// The number of chunks the header implies.
        chunks: u64,
    },
    /// A chunk failed authentication: the wrong key, or a file altered,
    /// reordered, spliced or truncated.
    #[error(
        "sealed file {name:?}: chunk {index} of {chunks} fails authentication (wrong key, or the file was altered)"
    )]
    Decrypt {
        /// The name in the header.
        name: String,
        /// The first chunk that failed (0-based).
        index: u64,
        /// The number of chunks.
        chunks: u64,
    },
    /// The file authenticated but was sealed under another name (for example
    /// another file of the same model, moved into this one's place).
    #[error("sealed file holds {found:?}, expected {expected:?}")]
    NameMismatch {
        /// The name the caller expected.
        expected: String,
        /// The authenticated name in the header.
        found: String,
    },
    /// A key resource that is not a 256-bit `oct` JWK for A256GCM.
    #[error("seal key: {reason}")]
    Key {
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// The header of a sealed file: everything before the chunks, all of it
/// authenticated as each chunk's associated data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedHeader {
    /// Plaintext bytes per chunk (the last chunk may be shorter).
    pub chunk_size: u32,
    /// Total plaintext bytes.
    pub plaintext_len: u64,
    /// The random per-file nonce prefix.
    pub nonce_prefix: [u8; NONCE_PREFIX_LEN],
    /// The name the file was sealed under.
    pub name: String,
}

impl SealedHeader {
    /// Parses the header at the start of `bytes`; returns it and its length in
    /// bytes (where the chunks start).
    pub fn parse(bytes: &[u8]) -> Result<(Self, usize), SealError> {
        let mut r = Reader::new(FORMAT, bytes);
        let magic: [u8; 8] = r.at(0x00).array("magic")?;
        if magic != MAGIC {
            return Err(r.invalid("magic", 0x00, "not a sealed file").into());
        }
        let version = r.at(0x08).u16_le("version")?;
        if version != VERSION {
            return Err(ParseError::Unsupported {
                format: FORMAT,
                what: format!("version {version}"),
            }
            .into());
        }
        r.at(0x0A).zeros::<2>("reserved_0x0a")?;
        let chunk_size = r.at(0x0C).u32_le("chunk_size")?;
        if chunk_size == 0 {
            return Err(r.invalid("chunk_size", 0x0C, "zero").into());
        }
        let plaintext_len = r.at(0x10).u64_le("plaintext_len")?;
        let nonce_prefix = r.at(0x18).array("nonce_prefix")?;
        r.at(0x1F).zeros::<1>("reserved_0x1f")?;
        let name_len = r.at(0x20).u64_le("name_len")?;
        let name_len = usize::try_from(name_len)
            .map_err(|_| r.invalid("name_len", 0x20, format!("{name_len} bytes")))?;
        let name = r.at(FIXED_HEADER_LEN).bytes("name", name_len)?;
        let name = std::str::from_utf8(name)
            .map_err(|e| r.invalid("name", FIXED_HEADER_LEN, e))?
            .to_owned();
        let header = Self {
            chunk_size,
            plaintext_len,
            nonce_prefix,
            name,
        };
        Ok((header, r.position()))
    }

    /// The header's bytes; [`Self::parse`] mirrored line for line.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(FIXED_HEADER_LEN + self.name.len());
        w.at(0x00).bytes(&MAGIC);
        w.at(0x08).u16_le(VERSION);
        w.at(0x0A).zeros(2);
        w.at(0x0C).u32_le(self.chunk_size);
        w.at(0x10).u64_le(self.plaintext_len);
        w.at(0x18).bytes(&self.nonce_prefix);
        w.at(0x1F).zeros(1);
        w.at(0x20).u64_le(self.name.len() as u64);
        w.at(FIXED_HEADER_LEN).bytes(self.name.as_bytes());
        w.into_vec()
    }

    /// The number of chunks: `ceil(plaintext_len / chunk_size)`, and one for
    /// an empty file.
    pub fn chunks(&self) -> u64 {
        self.plaintext_len
            .div_ceil(u64::from(self.chunk_size.max(1)))
            .max(1)
    }

    /// The total length of the sealed file this header describes.
    pub fn sealed_len(&self, header_len: usize) -> u128 {
        header_len as u128
            + u128::from(self.plaintext_len)
            + TAG_LEN as u128 * u128::from(self.chunks())
    }

    /// STREAM nonce of chunk `index`: prefix ‖ BE32 counter ‖ last-chunk flag.
    fn nonce(&self, index: u32, last: bool) -> [u8; 12] {
        let mut n = [0u8; 12];
        let (prefix, rest) = n.split_at_mut(NONCE_PREFIX_LEN);
        prefix.copy_from_slice(&self.nonce_prefix);
        let (counter, flag) = rest.split_at_mut(4);
        counter.copy_from_slice(&index.to_be_bytes());
        if let Some(f) = flag.first_mut() {
            *f = u8::from(last);
        }
        n
    }
}

/// Seals `plaintext` under `key` as `name` (the file's path within its model
/// folder, so one file cannot stand in for another). Every call draws a fresh
/// nonce prefix, so sealing the same bytes twice gives different files.
pub fn seal(plaintext: &[u8], key: &SealKey, name: &str) -> Vec<u8> {
    let mut nonce_prefix = [0u8; NONCE_PREFIX_LEN];
    OsRng.fill_bytes(&mut nonce_prefix);
    seal_with_prefix(plaintext, key, name, nonce_prefix)
}

fn seal_with_prefix(
    plaintext: &[u8],
    key: &SealKey,
    name: &str,
    nonce_prefix: [u8; NONCE_PREFIX_LEN],
) -> Vec<u8> {
    let len = plaintext.len() as u64;
    // 1 MiB chunks, larger only where 2^32 of them would not cover the input
    // (beyond 4 PiB, which no slice reaches in practice); keeps `seal` total.
    let chunk_size = u32::try_from(len.div_ceil(MAX_CHUNKS))
        .unwrap_or(u32::MAX)
        .max(CHUNK_SIZE);
    let header = SealedHeader {
        chunk_size,
        plaintext_len: len,
        nonce_prefix,
        name: name.to_owned(),
    };
    let aad = header.to_bytes();
    let chunks = header.chunks();
    // ring refuses only keys of the wrong length, and a SealKey is 32 bytes;
    // were it ever to fail, an empty output fails to open (fail closed).
    let Ok(cipher) = key.cipher() else {
        return Vec::new();
    };
    let capacity = usize::try_from(header.sealed_len(aad.len())).unwrap_or(0);
    let mut out = Vec::with_capacity(capacity);
    out.extend_from_slice(&aad);
    let mut pieces = plaintext.chunks(chunk_size as usize);
    for index in 0..chunks {
        let piece = pieces.next().unwrap_or_default();
        let start = out.len();
        out.extend_from_slice(piece);
        let last = index + 1 == chunks;
        // `index` < MAX_CHUNKS by the choice of chunk_size.
        let counter = u32::try_from(index).unwrap_or(u32::MAX);
        let nonce = Nonce::assume_unique_for_key(header.nonce(counter, last));
        let tag = match out.get_mut(start..) {
            Some(buf) => cipher.seal_in_place_separate_tag(nonce, Aad::from(&aad), buf),
            None => continue,
        };
        // Sealing fails only for inputs over GCM's 64 GiB per message; chunks
        // are at most 4 GiB. A missing tag fails to open (fail closed).
        if let Ok(tag) = tag {
            out.extend_from_slice(tag.as_ref());
        }
    }
    out
}

/// Opens a sealed file: authenticates every chunk and returns the plaintext,
/// or an error and nothing. The name in the header is authenticated but not
/// compared; use [`open_named`] where the caller knows which file it expects.
pub fn open(sealed: &[u8], key: &SealKey) -> Result<Vec<u8>, SealError> {
    open_with(sealed, key, None, |_| {})
}

/// [`open`], and the file must have been sealed as `name`.
pub fn open_named(sealed: &[u8], key: &SealKey, name: &str) -> Result<Vec<u8>, SealError> {
    open_with(sealed, key, Some(name), |_| {})
}

/// [`open`], handing each chunk's plaintext to `emit` as soon as that chunk
/// has authenticated (to hash while decrypting). When this returns an error,
/// whatever `emit` saw must be discarded: a later chunk, or the file's end,
/// failed.
pub fn open_with(
    sealed: &[u8],
    key: &SealKey,
    expected_name: Option<&str>,
    emit: impl FnMut(&[u8]),
) -> Result<Vec<u8>, SealError> {
    // Checked before copying, so a malformed input costs no allocation.
    check(sealed, expected_name)?;
    open_in_place(sealed.to_vec(), key, expected_name, emit)
}

/// [`open_with`] on an owned buffer, decrypted in place: the plaintext takes
/// no memory beyond the sealed bytes (a model's weights are held once, not
/// twice). On an error the buffer is dropped.
pub fn open_in_place(
    mut sealed: Vec<u8>,
    key: &SealKey,
    expected_name: Option<&str>,
    mut emit: impl FnMut(&[u8]),
) -> Result<Vec<u8>, SealError> {
    let (header, header_len) = check(&sealed, expected_name)?;
    let chunks = header.chunks();
    let decrypt_err = |index| SealError::Decrypt {
        name: header.name.clone(),
        index,
        chunks,
    };
    let aad = sealed.get(..header_len).unwrap_or_default().to_vec();
    let cipher = key.cipher().map_err(|_| decrypt_err(0))?;
    // `check` matched the length to the header, so these fit in memory.
    let plaintext_len = usize::try_from(header.plaintext_len).unwrap_or(0);
    let chunk_size = header.chunk_size as usize;
    // Each chunk is decrypted where it lies (`src`), then moved down to its
    // place in the plaintext (`dst`); `dst` < `src` always (the header and
    // the tags before it), so nothing not yet decrypted is overwritten.
    let mut src = header_len;
    let mut dst = 0;
    for index in 0..chunks {
        let last = index + 1 == chunks;
        let ct_len = if last {
            plaintext_len.saturating_sub(dst)
        } else {
            chunk_size
        };
        let ct_end = src.checked_add(ct_len).ok_or_else(|| decrypt_err(index))?;
        let tag: [u8; TAG_LEN] = sealed
            .get(ct_end..)
            .and_then(|rest| rest.first_chunk::<TAG_LEN>())
            .copied()
            .ok_or_else(|| decrypt_err(index))?;
        let counter = u32::try_from(index).map_err(|_| decrypt_err(index))?;
        let nonce = Nonce::assume_unique_for_key(header.nonce(counter, last));
        let buf = sealed
            .get_mut(src..ct_end)
            .ok_or_else(|| decrypt_err(index))?;
        cipher
            .open_in_place_separate_tag(nonce, Aad::from(&aad), Tag::from(tag), buf, 0..)
            .map_err(|_| decrypt_err(index))?;
        // In bounds: src..ct_end was just borrowed, and dst + ct_len <= src.
        sealed.copy_within(src..ct_end, dst);
        emit(sealed.get(dst..dst + ct_len).unwrap_or_default());
        src = ct_end + TAG_LEN;
        dst += ct_len;
    }
    sealed.truncate(dst);
    Ok(sealed)
}

/// Parses the header and checks the name, chunk count and total length.
fn check(sealed: &[u8], expected_name: Option<&str>) -> Result<(SealedHeader, usize), SealError> {
    let (header, header_len) = SealedHeader::parse(sealed)?;
    if let Some(expected) = expected_name
        && expected != header.name
    {
        return Err(SealError::NameMismatch {
            expected: expected.to_owned(),
            found: header.name,
        });
    }
    let chunks = header.chunks();
    if chunks > MAX_CHUNKS {
        return Err(SealError::TooManyChunks {
            name: header.name,
            chunks,
        });
    }
    let expected = header.sealed_len(header_len);
    if expected != sealed.len() as u128 {
        return Err(SealError::Length {
            name: header.name,
            expected,
            found: sealed.len(),
        });
    }
    Ok((header, header_len))
}

/// Fuzz body: a header that parses re-encodes to the same bytes; opening never
/// panics; and sealing the input then opening it gives the input back.
pub(crate) fn fuzz_roundtrip(data: &[u8]) {
    if let Ok((header, len)) = SealedHeader::parse(data) {
        assert_eq!(
            Some(&header.to_bytes()[..]),
            data.get(..len),
            "header did not round-trip"
        );
    }
    let key = SealKey::from_bytes([7; 32]);
    let _ = open(data, &key);
    let sealed = seal_with_prefix(data, &key, "fuzz", [1; NONCE_PREFIX_LEN]);
    assert_eq!(
        open_named(&sealed, &key, "fuzz").as_deref(),
        Ok(data),
        "seal/open did not round-trip"
    );
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::cast_possible_truncation)]
mod tests {
    use aes_gcm::aead::AeadInPlace as _;
    use aes_gcm::{Aes256Gcm, KeyInit as _};

    use super::*;

    /// Seals one chunk with RustCrypto's AES-256-GCM: an implementation
    /// independent of the module's, so the tests check the format, not one library.
    fn seal_chunk(
        header: &SealedHeader,
        aad: &[u8],
        index: u32,
        last: bool,
        plaintext: &[u8],
    ) -> Vec<u8> {
        let mut buf = plaintext.to_vec();
        let tag = Aes256Gcm::new(&(*key().as_bytes()).into())
            .encrypt_in_place_detached(&header.nonce(index, last).into(), aad, &mut buf)
            .unwrap();
        buf.extend_from_slice(&tag);
        buf
    }

    fn key() -> SealKey {
        SealKey::from_bytes([0x42; 32])
    }

    /// Plaintext of `len` bytes that differs from chunk to chunk.
    fn data(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 % 251) as u8).collect()
    }

    fn small_chunks(plaintext: &[u8], chunk_size: u32, name: &str) -> Vec<u8> {
        // The same construction as `seal`, with a small chunk size so tests
        // cover many chunks cheaply.
        let header = SealedHeader {
            chunk_size,
            plaintext_len: plaintext.len() as u64,
            nonce_prefix: [9; NONCE_PREFIX_LEN],
            name: name.to_owned(),
        };
        let aad = header.to_bytes();
        let chunks = header.chunks();
        let mut out = aad.clone();
        let mut pieces = plaintext.chunks(chunk_size as usize);
        for index in 0..chunks {
            let piece = pieces.next().unwrap_or_default();
            out.extend(seal_chunk(
                &header,
                &aad,
                index as u32,
                index + 1 == chunks,
                piece,
            ));
        }
        out
    }

    #[test]
    fn round_trips_at_chunk_boundaries() {
        let k = key();
        for len in [
            0,
            1,
            CHUNK_SIZE as usize - 1,
            CHUNK_SIZE as usize,
            CHUNK_SIZE as usize + 1,
            3 * CHUNK_SIZE as usize,
        ] {
            let p = data(len);
            let s = seal(&p, &k, "model.gguf");
            let chunks = (len as u64).div_ceil(u64::from(CHUNK_SIZE)).max(1);
            assert_eq!(
                s.len(),
                FIXED_HEADER_LEN + 10 + len + TAG_LEN * chunks as usize,
                "len {len}"
            );
            assert_eq!(open(&s, &k).unwrap(), p, "len {len}");
            assert_eq!(open_named(&s, &k, "model.gguf").unwrap(), p);
            let mut seen = Vec::new();
            open_with(&s, &k, None, |c| seen.extend_from_slice(c)).unwrap();
            assert_eq!(seen, p);
            let mut seen = Vec::new();
            let opened = open_in_place(s.clone(), &k, Some("model.gguf"), |c| {
                seen.extend_from_slice(c)
            });
            assert_eq!(opened.unwrap(), p);
            assert_eq!(seen, p);
        }
    }

    #[test]
    fn header_layout_is_pinned_and_round_trips() {
        let s = seal_with_prefix(b"abc", &key(), "x/y", [0xA0, 1, 2, 3, 4, 5, 6]);
        let (h, len) = SealedHeader::parse(&s).unwrap();
        assert_eq!(len, FIXED_HEADER_LEN + 3);
        assert_eq!(
            h,
            SealedHeader {
                chunk_size: CHUNK_SIZE,
                plaintext_len: 3,
                nonce_prefix: [0xA0, 1, 2, 3, 4, 5, 6],
                name: "x/y".into()
            }
        );
        assert_eq!(h.to_bytes(), s[..len]);
        assert_eq!(
            hex::encode(&s[..len]),
            concat!(
                "4343412d5345414c",
                "0100",
                "0000",
                "00001000",
                "0300000000000000",
                "a0010203040506",
                "00",
                "0300000000000000",
                "782f79"
            )
        );
        assert_eq!(s.len(), len + 3 + TAG_LEN);
        // A fresh nonce prefix every time.
        let a = seal(b"abc", &key(), "x");
        let b = seal(b"abc", &key(), "x");
        assert_ne!(a, b);
    }

    #[test]
    fn seal_output_matches_the_independent_implementation() {
        let p = data(CHUNK_SIZE as usize + 5);
        let s = seal_with_prefix(&p, &key(), "m", [3; NONCE_PREFIX_LEN]);
        let (h, hl) = SealedHeader::parse(&s).unwrap();
        let mut expected = s[..hl].to_vec();
        expected.extend(seal_chunk(
            &h,
            &s[..hl],
            0,
            false,
            &p[..CHUNK_SIZE as usize],
        ));
        expected.extend(seal_chunk(&h, &s[..hl], 1, true, &p[CHUNK_SIZE as usize..]));
        assert!(s == expected, "ring and aes-gcm disagree");
    }

    #[test]
    fn empty_plaintext_is_one_empty_final_chunk() {
        let s = seal(b"", &key(), "e");
        assert_eq!(s.len(), FIXED_HEADER_LEN + 1 + TAG_LEN);
        assert_eq!(open(&s, &key()).unwrap(), b"");
        // A header alone (the final chunk's tag dropped) is refused.
        let cut = &s[..FIXED_HEADER_LEN + 1];
        assert!(
            matches!(open(cut, &key()), Err(SealError::Length { expected, found, .. }) if expected == s.len() as u128 && found == cut.len())
        );
    }

    #[test]
    fn wrong_key_fails_at_the_first_chunk() {
        let s = seal(&data(5000), &key(), "m");
        let err = open(&s, &SealKey::from_bytes([0x43; 32])).unwrap_err();
        assert_eq!(
            err,
            SealError::Decrypt {
                name: "m".into(),
                index: 0,
                chunks: 1
            }
        );
        assert!(
            err.to_string()
                .contains("chunk 0 of 1 fails authentication"),
            "{err}"
        );
    }

    #[test]
    fn wrong_name_is_refused_whether_renamed_or_expected_otherwise() {
        let s = seal(b"weights", &key(), "model.gguf");
        assert_eq!(
            open_named(&s, &key(), "tokenizer.json").unwrap_err(),
            SealError::NameMismatch {
                expected: "tokenizer.json".into(),
                found: "model.gguf".into()
            }
        );
        // Rewriting the name in the header (same length) breaks authentication.
        let mut renamed = s.clone();
        renamed[FIXED_HEADER_LEN..FIXED_HEADER_LEN + 5].copy_from_slice(b"MODEL");
        assert_eq!(
            open(&renamed, &key()).unwrap_err(),
            SealError::Decrypt {
                name: "MODEL.gguf".into(),
                index: 0,
                chunks: 1
            }
        );
    }

    #[test]
    fn any_bit_flip_is_refused() {
        let p = data(100);
        let s = small_chunks(&p, 16, "n");
        assert_eq!(open(&s, &key()).unwrap(), p);
        for pos in 0..s.len() {
            for bit in [0, 3, 7] {
                let mut t = s.clone();
                t[pos] ^= 1 << bit;
                assert!(
                    open(&t, &key()).is_err(),
                    "flip at {pos} bit {bit} accepted"
                );
            }
        }
    }

    #[test]
    fn truncation_extension_and_dropped_last_chunk_are_refused() {
        let p = data(100); // 7 chunks of 16 (6 full, one of 4)
        let s = small_chunks(&p, 16, "n");
        for len in 0..s.len() {
            assert!(
                open(&s[..len], &key()).is_err(),
                "truncated to {len} accepted"
            );
        }
        let mut longer = s.clone();
        longer.push(0);
        assert!(matches!(
            open(&longer, &key()),
            Err(SealError::Length { .. })
        ));

        // Drop the last chunk and shorten the header's length to match: the
        // header is authenticated, and chunk 5 was not sealed as the last.
        let six = s.clone();
        let (h, hl) = SealedHeader::parse(&six).unwrap();
        let mut forged = SealedHeader {
            plaintext_len: 96,
            ..h
        }
        .to_bytes();
        forged.extend_from_slice(&six[hl..hl + 6 * (16 + TAG_LEN)]);
        assert_eq!(
            open(&forged, &key()).unwrap_err(),
            SealError::Decrypt {
                name: "n".into(),
                index: 0,
                chunks: 6
            }
        );
        // The plain cut (header unchanged) is a length mismatch.
        let cut = &s[..s.len() - (4 + TAG_LEN)];
        assert!(matches!(open(cut, &key()), Err(SealError::Length { .. })));
    }

    #[test]
    fn reordered_and_spliced_chunks_are_refused() {
        let p = data(64); // 4 chunks of 16
        let s = small_chunks(&p, 16, "n");
        let (header, hl) = SealedHeader::parse(&s).unwrap();
        let c = 16 + TAG_LEN;
        let mut swapped = s.clone();
        swapped[hl..hl + c].copy_from_slice(&s[hl + c..hl + 2 * c]);
        swapped[hl + c..hl + 2 * c].copy_from_slice(&s[hl..hl + c]);
        assert_eq!(
            open(&swapped, &key()).unwrap_err(),
            SealError::Decrypt {
                name: "n".into(),
                index: 0,
                chunks: 4
            }
        );
        // Chunk 1 of another file (same key, name and size, another nonce prefix).
        let mut other = header.clone();
        other.nonce_prefix = [8; NONCE_PREFIX_LEN];
        let foreign = seal_chunk(&other, &other.to_bytes(), 1, false, &p[16..32]);
        let mut spliced = s.clone();
        spliced[hl + c..hl + 2 * c].copy_from_slice(&foreign);
        assert_eq!(
            open(&spliced, &key()).unwrap_err(),
            SealError::Decrypt {
                name: "n".into(),
                index: 1,
                chunks: 4
            }
        );
        // Chunk 1 sealed as if it were the last: the flag is part of the nonce.
        let flagged = seal_chunk(&header, &s[..hl], 1, true, &p[16..32]);
        let mut early_last = s.clone();
        early_last[hl + c..hl + 2 * c].copy_from_slice(&flagged);
        assert!(matches!(
            open(&early_last, &key()),
            Err(SealError::Decrypt { index: 1, .. })
        ));
    }

    #[test]
    fn malformed_headers_name_the_field() {
        let s = seal(b"abc", &key(), "n");
        let mut bad_magic = s.clone();
        bad_magic[0] = b'X';
        assert!(matches!(
            open(&bad_magic, &key()),
            Err(SealError::Header(ParseError::Invalid {
                field: "magic",
                offset: 0,
                ..
            }))
        ));
        let mut v2 = s.clone();
        v2[8] = 2;
        assert!(matches!(
            open(&v2, &key()),
            Err(SealError::Header(ParseError::Unsupported { .. }))
        ));
        let mut rsvd = s.clone();
        rsvd[0x1F] = 1;
        assert!(matches!(
            open(&rsvd, &key()),
            Err(SealError::Header(ParseError::ReservedNonZero {
                field: "reserved_0x1f",
                ..
            }))
        ));
        let mut zero_chunk = s.clone();
        zero_chunk[0x0C..0x10].fill(0);
        assert!(matches!(
            open(&zero_chunk, &key()),
            Err(SealError::Header(ParseError::Invalid {
                field: "chunk_size",
                ..
            }))
        ));
        let mut huge_name = s.clone();
        huge_name[0x20..0x28].fill(0xFF);
        assert!(matches!(
            open(&huge_name, &key()),
            Err(SealError::Header(_))
        ));
        let mut not_utf8 = s.clone();
        not_utf8[FIXED_HEADER_LEN] = 0xFF;
        assert!(matches!(
            open(&not_utf8, &key()),
            Err(SealError::Header(ParseError::Invalid { field: "name", .. }))
        ));
        assert!(matches!(
            open(&s[..5], &key()),
            Err(SealError::Header(ParseError::Truncated {
                field: "magic",
                ..
            }))
        ));
        // A header claiming 2^40 one-byte chunks: refused without allocating.
        let mut many = s.clone();
        many[0x0C..0x10].copy_from_slice(&1u32.to_le_bytes());
        many[0x10..0x18].copy_from_slice(&(1u64 << 40).to_le_bytes());
        assert!(
            matches!(open(&many, &key()), Err(SealError::TooManyChunks { chunks, .. }) if chunks == 1 << 40)
        );
        let mut long = s.clone();
        long[0x10..0x18].copy_from_slice(&(1u64 << 40).to_le_bytes());
        assert!(matches!(open(&long, &key()), Err(SealError::Length { .. })));
    }

    #[test]
    fn key_jwk_round_trips_and_rejects_other_keys() {
        let k = SealKey::generate();
        let jwk = k.to_jwk_bytes();
        let text = std::str::from_utf8(&jwk).unwrap();
        assert!(
            text.starts_with(r#"{"kty":"oct","alg":"A256GCM","k":""#),
            "{text}"
        );
        assert_eq!(
            text.len(),
            r#"{"kty":"oct","alg":"A256GCM","k":""}"#.len() + 43
        );
        assert_eq!(
            SealKey::from_jwk_bytes(&jwk).unwrap().as_bytes(),
            k.as_bytes()
        );
        let fixed = SealKey::from_bytes([0; 32]).to_jwk_bytes();
        assert_eq!(
            fixed,
            br#"{"kty":"oct","alg":"A256GCM","k":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}"#
        );
        let k43 = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
        for (bad, reason) in [
            (
                r#"[]"#.to_owned(),
                "not a JSON object with string members kty, alg, k",
            ),
            (
                format!(r#"{{"kty":"EC","alg":"A256GCM","k":"{k43}"}}"#),
                "kty is not \"oct\"",
            ),
            (
                format!(r#"{{"kty":"oct","k":"{k43}"}}"#),
                "alg is not \"A256GCM\"",
            ),
            (
                format!(r#"{{"kty":"oct","alg":"A128GCM","k":"{k43}"}}"#),
                "alg is not \"A256GCM\"",
            ),
            (
                r#"{"kty":"oct","alg":"A256GCM"}"#.to_owned(),
                "k is missing",
            ),
            (
                format!(r#"{{"kty":"oct","alg":"A256GCM","k":"{k43}="}}"#),
                "k is not unpadded base64url",
            ),
            (
                r#"{"kty":"oct","alg":"A256GCM","k":"AAAA"}"#.to_owned(),
                "k is not 32 bytes",
            ),
        ] {
            assert_eq!(
                SealKey::from_jwk_bytes(bad.as_bytes()).unwrap_err(),
                SealError::Key { reason },
                "{bad}"
            );
        }
        // Extra members (kid, use) are ignored.
        let with_kid = format!(r#"{{"kty":"oct","alg":"A256GCM","kid":"m","k":"{k43}"}}"#);
        assert_eq!(
            SealKey::from_jwk_bytes(with_kid.as_bytes())
                .unwrap()
                .as_bytes(),
            &[0; 32]
        );
        assert_eq!(format!("{k:?}"), "SealKey(<redacted>)");
    }

    #[test]
    fn fuzz_body_holds_on_samples() {
        let s = seal(&data(3000), &key(), "n");
        for input in [&s[..], &s[..40], b"", b"CCA-SEAL"] {
            fuzz_roundtrip(input);
        }
    }
}
