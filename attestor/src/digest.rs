//! Digest newtypes shared across evidence kinds.

use sha2::{Digest as _, Sha256, Sha384};

crate::byte_newtype!(
    /// A SHA-256 digest.
    pub struct Sha256Digest(32);
);

crate::byte_newtype!(
    /// A SHA-384 digest.
    pub struct Sha384Digest(48);
);

impl Sha256Digest {
    /// SHA-256 of `data`.
    pub fn of(data: &[u8]) -> Self {
        Self(Sha256::digest(data).into())
    }

    /// `sha256:<hex>`, the form used for commitments and evidence digests.
    pub fn prefixed(&self) -> String {
        format!("sha256:{self}")
    }
}

impl Sha384Digest {
    /// SHA-384 of `data`.
    pub fn of(data: &[u8]) -> Self {
        Self(Sha384::digest(data).into())
    }

    /// `sha384:<hex>`.
    pub fn prefixed(&self) -> String {
        format!("sha384:{self}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vectors() {
        assert_eq!(
            Sha256Digest::of(b"abc").to_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            Sha384Digest::of(b"abc").to_hex(),
            "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7"
        );
    }
}
