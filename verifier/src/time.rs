//! Time as an explicit argument.
//!
//! Every appraisal takes `now`; nothing in the verifier reads the clock except
//! the binary's entry points, so genuine evidence can be appraised "as of" the
//! time its certificates were valid, and re-appraised later "as of now".

use std::fmt;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Seconds since the Unix epoch, UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UnixTime(pub i64);

/// An unparseable time argument.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an RFC 3339 time: {text:?} ({reason})")]
pub struct TimeError {
    pub text: String,
    pub reason: String,
}

impl UnixTime {
    /// The system clock. Only binaries call this.
    pub fn now() -> Self {
        Self(OffsetDateTime::now_utc().unix_timestamp())
    }

    /// Parses RFC 3339, e.g. `2025-09-01T00:00:00Z`.
    pub fn parse_rfc3339(text: &str) -> Result<Self, TimeError> {
        OffsetDateTime::parse(text.trim(), &Rfc3339)
            .map(|t| Self(t.unix_timestamp()))
            .map_err(|e| TimeError {
                text: text.to_owned(),
                reason: e.to_string(),
            })
    }

    /// From an X.509 time.
    pub fn from_x509(t: &x509_cert::time::Time) -> Self {
        let secs = t.to_unix_duration().as_secs();
        Self(i64::try_from(secs).unwrap_or(i64::MAX))
    }

    /// RFC 3339 text (UTC).
    pub fn to_rfc3339(self) -> String {
        OffsetDateTime::from_unix_timestamp(self.0)
            .ok()
            .and_then(|t| t.format(&Rfc3339).ok())
            .unwrap_or_else(|| format!("@{}", self.0))
    }
}

impl fmt::Display for UnixTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl serde::Serialize for UnixTime {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_rfc3339())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_roundtrip() {
        let t = UnixTime::parse_rfc3339("2025-09-01T00:00:00Z").unwrap();
        assert_eq!(t.0, 1_756_684_800);
        assert_eq!(t.to_string(), "2025-09-01T00:00:00Z");
        assert!(UnixTime::parse_rfc3339("yesterday").is_err());
        assert_eq!(
            UnixTime::parse_rfc3339("2025-09-01T02:00:00+02:00").unwrap(),
            t
        );
    }
}
