//! Fixed-size byte newtypes and hex (de)serialization.
//!
//! Every digest, measurement and nonce gets its own type through
//! [`byte_newtype!`](crate::byte_newtype), so a 48-byte measurement can never be
//! passed where a 48-byte host field or a 64-byte report_data is meant. They
//! print and serialize as lowercase hex.

/// Declares a `[u8; N]` newtype with hex `Debug`/`Display`/serde.
///
/// ```
/// attestor::byte_newtype!(
///     /// A demo digest.
///     pub struct Demo(4);
/// );
/// let d = Demo::new([0xde, 0xad, 0xbe, 0xef]);
/// assert_eq!(d.to_string(), "deadbeef");
/// ```
#[macro_export]
macro_rules! byte_newtype {
    ($(#[$meta:meta])* pub struct $name:ident($len:expr);) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub [u8; $len]);

        impl $name {
            /// Length in bytes.
            pub const LEN: usize = $len;

            pub const fn new(bytes: [u8; $len]) -> Self {
                Self(bytes)
            }

            pub const fn as_bytes(&self) -> &[u8; $len] {
                &self.0
            }

            pub const fn into_bytes(self) -> [u8; $len] {
                self.0
            }

            /// True when every byte is zero (an unset field).
            pub fn is_zero(&self) -> bool {
                self.0.iter().all(|&b| b == 0)
            }

            /// Parses exactly `2 * LEN` hex digits.
            pub fn from_hex(text: &str) -> Result<Self, $crate::hex::HexError> {
                $crate::hex::decode_array::<$len>(text).map(Self)
            }

            /// Lowercase hex.
            #[allow(clippy::wrong_self_convention)]
            pub fn to_hex(&self) -> String {
                ::hex::encode(self.0)
            }
        }

        impl ::core::fmt::Debug for $name {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                write!(f, "{}({})", stringify!($name), ::hex::encode(self.0))
            }
        }

        impl ::core::fmt::Display for $name {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                f.write_str(&::hex::encode(self.0))
            }
        }

        impl ::core::convert::AsRef<[u8]> for $name {
            fn as_ref(&self) -> &[u8] {
                &self.0
            }
        }

        impl ::core::convert::From<[u8; $len]> for $name {
            fn from(bytes: [u8; $len]) -> Self {
                Self(bytes)
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&::hex::encode(self.0))
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = <String as ::serde::Deserialize>::deserialize(d)?;
                Self::from_hex(&text).map_err(<D::Error as ::serde::de::Error>::custom)
            }
        }
    };
}

/// A hex string of the wrong length or with a non-hex digit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected {expected} hex digits, {reason}")]
pub struct HexError {
    pub expected: usize,
    pub reason: String,
}

/// Decodes exactly `N` bytes of hex (either case).
pub fn decode_array<const N: usize>(text: &str) -> Result<[u8; N], HexError> {
    let mut out = [0u8; N];
    ::hex::decode_to_slice(text.trim(), &mut out).map_err(|e| HexError {
        expected: 2 * N,
        reason: format!("got {} characters: {e}", text.trim().len()),
    })?;
    Ok(out)
}

/// `#[serde(with = "attestor::hex::bytes")]` for `Vec<u8>` and `[u8; N]` fields.
pub mod bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer, T: AsRef<[u8]>>(v: &T, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&::hex::encode(v.as_ref()))
    }

    pub fn deserialize<'de, D: Deserializer<'de>, T: TryFrom<Vec<u8>>>(
        d: D,
    ) -> Result<T, D::Error> {
        let text = String::deserialize(d)?;
        let v = ::hex::decode(text.trim()).map_err(serde::de::Error::custom)?;
        let len = v.len();
        T::try_from(v).map_err(|_| serde::de::Error::custom(format!("unexpected length {len}")))
    }
}

/// `#[serde(with = "attestor::hex::base64")]`: standard base64 for raw evidence bytes.
pub mod base64 {
    use ::base64::Engine as _;
    use ::base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer, T: AsRef<[u8]>>(v: &T, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(v.as_ref()))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        STANDARD
            .decode(text.trim())
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
#[allow(unreachable_pub, dead_code)]
mod tests {
    crate::byte_newtype!(
        /// Test type.
        pub struct Four(4);
    );

    #[test]
    fn hex_roundtrip_and_length_checked() {
        let v = Four::from_hex("00ff10AB").unwrap();
        assert_eq!(v.0, [0, 0xff, 0x10, 0xab]);
        assert_eq!(serde_json::to_string(&v).unwrap(), "\"00ff10ab\"");
        assert!(Four::from_hex("00ff10").is_err());
        assert!(Four::from_hex("00ff10zz").is_err());
        let back: Four = serde_json::from_str("\"00ff10ab\"").unwrap();
        assert_eq!(back, v);
    }
}
