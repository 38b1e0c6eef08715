//! Parse errors for untrusted evidence bytes and documents.
//!
//! Every variant names the format and the field, and binary variants the byte
//! offset, so a reviewer can find the exact byte that was refused.

/// Why a piece of evidence could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// A fixed-size structure had the wrong total length.
    #[error("{format}: expected {expected} bytes, found {found}")]
    Length {
        format: &'static str,
        expected: usize,
        found: usize,
    },
    /// The input ended inside a field.
    #[error(
        "{format}: truncated at field `{field}` (offset {offset}): need {need} bytes, {have} left"
    )]
    Truncated {
        format: &'static str,
        field: &'static str,
        offset: usize,
        need: usize,
        have: usize,
    },
    /// A reserved range that the specification says is zero was not.
    #[error("{format}: reserved field `{field}` at offset {offset} is not zero")]
    ReservedNonZero {
        format: &'static str,
        field: &'static str,
        offset: usize,
    },
    /// Bytes were left after the end of the structure.
    #[error("{format}: {extra} trailing bytes at offset {offset}")]
    TrailingBytes {
        format: &'static str,
        offset: usize,
        extra: usize,
    },
    /// A field held a value the format does not allow.
    #[error("{format}: field `{field}` at offset {offset}: {reason}")]
    Invalid {
        format: &'static str,
        field: &'static str,
        offset: usize,
        reason: String,
    },
    /// A recognised but unsupported variant of the format (for example NVIDIA's
    /// versioned opaque data). Refused rather than guessed at.
    #[error("{format}: unsupported {what}")]
    Unsupported { format: &'static str, what: String },
    /// A text document (JSON, XML, PEM, base64) was malformed.
    #[error("{format}: field `{field}`: {reason}")]
    Document {
        format: &'static str,
        field: &'static str,
        reason: String,
    },
}

impl ParseError {
    /// The format whose parse failed.
    pub fn format(&self) -> &'static str {
        match self {
            Self::Length { format, .. }
            | Self::Truncated { format, .. }
            | Self::ReservedNonZero { format, .. }
            | Self::TrailingBytes { format, .. }
            | Self::Invalid { format, .. }
            | Self::Unsupported { format, .. }
            | Self::Document { format, .. } => format,
        }
    }

    /// The field that failed, when one is known.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            Self::Truncated { field, .. }
            | Self::ReservedNonZero { field, .. }
            | Self::Invalid { field, .. }
            | Self::Document { field, .. } => Some(field),
            Self::Length { .. } | Self::TrailingBytes { .. } | Self::Unsupported { .. } => None,
        }
    }

    /// The byte offset of the failure, for binary formats.
    pub fn offset(&self) -> Option<usize> {
        match self {
            Self::Truncated { offset, .. }
            | Self::ReservedNonZero { offset, .. }
            | Self::TrailingBytes { offset, .. }
            | Self::Invalid { offset, .. } => Some(*offset),
            Self::Length { .. } | Self::Unsupported { .. } | Self::Document { .. } => None,
        }
    }

    /// Shorthand for a malformed text document.
    pub fn document(format: &'static str, field: &'static str, reason: impl ToString) -> Self {
        Self::Document {
            format,
            field,
            reason: reason.to_string(),
        }
    }
}
