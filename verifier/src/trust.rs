//! Trust roots: the only thing that differs between real and simulated evidence.
//!
//! Vendor roots are built in (files in `verifier/roots/`, provenance in its
//! README) and pinned per product: an SNP chain must end in the ARK of the
//! product the VCEK names, never in "some AMD root". The simulator's roots are
//! derived from its seed and only ever loaded on request; every claim says
//! which kind of roots verified it, so a policy can refuse simulation.

use std::collections::BTreeMap;
use std::path::Path;

use attestor::sim::SimSeed;
use attestor::snp::certs::{Product, pem_or_der_certs};

/// Where a set of roots came from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RootsOrigin {
    /// The vendors' public roots built into this binary.
    Vendor,
    /// Roots loaded from a directory by the operator (`--roots DIR`).
    Directory(String),
    /// The simulator's roots. Evidence verified by them proves nothing about hardware.
    Simulated,
}

/// The AMD certificates pinned for one product (DER).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AmdRoots {
    /// AMD Root Key (self-signed).
    pub ark: Vec<u8>,
    /// AMD SEV Key: issues VCEKs.
    pub ask: Vec<u8>,
    /// AMD SEV-VLEK Key: issues VLEKs, when known.
    pub asvk: Option<Vec<u8>>,
}

/// Every root the verifier trusts, by vendor and purpose (DER).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustRoots {
    pub origin: RootsOrigin,
    pub amd: BTreeMap<ProductKey, AmdRoots>,
    /// Intel SGX Root CA: PCK chains and TCB signing.
    pub intel_root: Vec<u8>,
    /// NVIDIA Device Identity CA: GPU device chains.
    pub nvidia_device_root: Vec<u8>,
    /// NVIDIA CoRIM signing Root CA: RIM signing chains.
    pub nvidia_rim_root: Vec<u8>,
}

/// `Product` as a map key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProductKey {
    Milan,
    Genoa,
    Turin,
}

impl From<Product> for ProductKey {
    fn from(p: Product) -> Self {
        match p {
            Product::Milan => Self::Milan,
            Product::Genoa => Self::Genoa,
            Product::Turin => Self::Turin,
        }
    }
}

impl From<ProductKey> for Product {
    fn from(p: ProductKey) -> Self {
        match p {
            ProductKey::Milan => Self::Milan,
            ProductKey::Genoa => Self::Genoa,
            ProductKey::Turin => Self::Turin,
        }
    }
}

/// Why roots could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    #[error("trust root {name}: {reason}")]
    Invalid { name: String, reason: String },
    #[error("trust root {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("simulated roots: {0}")]
    Simulator(#[from] attestor::sim::SimError),
}

/// The files a roots directory holds, by name (the same names as `verifier/roots/`).
const FILES: [&str; 12] = [
    "amd_milan_ark.pem",
    "amd_milan_ask.pem",
    "amd_milan_asvk_ark.pem",
    "amd_genoa_ark.pem",
    "amd_genoa_ask.pem",
    "amd_genoa_asvk_ark.pem",
    "amd_turin_ark.pem",
    "amd_turin_ask.pem",
    "amd_turin_asvk_ark.pem",
    "intel_sgx_root_ca.der",
    "nvidia_device_identity_ca.pem",
    "nvidia_corim_signing_root_ca.pem",
];

const BUILTIN: [&[u8]; 12] = [
    include_bytes!("../roots/amd_milan_ark.pem"),
    include_bytes!("../roots/amd_milan_ask.pem"),
    include_bytes!("../roots/amd_milan_asvk_ark.pem"),
    include_bytes!("../roots/amd_genoa_ark.pem"),
    include_bytes!("../roots/amd_genoa_ask.pem"),
    include_bytes!("../roots/amd_genoa_asvk_ark.pem"),
    include_bytes!("../roots/amd_turin_ark.pem"),
    include_bytes!("../roots/amd_turin_ask.pem"),
    include_bytes!("../roots/amd_turin_asvk_ark.pem"),
    include_bytes!("../roots/intel_sgx_root_ca.der"),
    include_bytes!("../roots/nvidia_device_identity_ca.pem"),
    include_bytes!("../roots/nvidia_corim_signing_root_ca.pem"),
];

impl TrustRoots {
    /// The vendors' roots built into this binary.
    pub fn vendor() -> Result<Self, TrustError> {
        let files: Vec<(&str, Vec<u8>)> = FILES
            .iter()
            .copied()
            .zip(BUILTIN.iter().map(|b| b.to_vec()))
            .collect();
        Self::from_files(RootsOrigin::Vendor, &files)
    }

    /// Roots from a directory holding files named as in `verifier/roots/`.
    pub fn from_dir(dir: &Path) -> Result<Self, TrustError> {
        let mut files = Vec::new();
        for name in FILES {
            let path = dir.join(name);
            let bytes = std::fs::read(&path).map_err(|source| TrustError::Io {
                path: path.display().to_string(),
                source,
            })?;
            files.push((name, bytes));
        }
        Self::from_files(RootsOrigin::Directory(dir.display().to_string()), &files)
    }

    /// The simulator's roots for `seed`. Only a development configuration asks for these.
    pub fn danger_simulated(seed: &SimSeed) -> Result<Self, TrustError> {
        let mut amd = BTreeMap::new();
        for product in [Product::Milan, Product::Genoa, Product::Turin] {
            let r = attestor::snp::simulate::roots(seed, product)?;
            amd.insert(
                product.into(),
                AmdRoots {
                    ark: r.ark_der,
                    ask: r.ask_der,
                    asvk: None,
                },
            );
        }
        Ok(Self {
            origin: RootsOrigin::Simulated,
            amd,
            intel_root: attestor::tdx::simulate::root_ca(seed)?,
            nvidia_device_root: attestor::nvidia::simulate::root_ca(seed)?,
            nvidia_rim_root: attestor::nvidia::rim::simulate::rim_root_ca(seed)?,
        })
    }

    /// True for the simulator's roots.
    pub fn is_simulated(&self) -> bool {
        self.origin == RootsOrigin::Simulated
    }

    /// The AMD roots pinned for a product.
    pub fn amd(&self, product: Product) -> Option<&AmdRoots> {
        self.amd.get(&product.into())
    }

    fn from_files(origin: RootsOrigin, files: &[(&str, Vec<u8>)]) -> Result<Self, TrustError> {
        let get = |name: &str| -> Result<Vec<Vec<u8>>, TrustError> {
            let bytes = files
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, b)| b.as_slice())
                .ok_or_else(|| TrustError::Invalid {
                    name: name.into(),
                    reason: "missing".into(),
                })?;
            let certs = pem_or_der_certs(bytes).map_err(|e| TrustError::Invalid {
                name: name.into(),
                reason: e.to_string(),
            })?;
            if certs.is_empty() {
                return Err(TrustError::Invalid {
                    name: name.into(),
                    reason: "no certificate".into(),
                });
            }
            Ok(certs)
        };
        let first = |name: &str| get(name).map(|mut v| v.swap_remove(0));
        let mut amd = BTreeMap::new();
        for (key, stem) in [
            (ProductKey::Milan, "milan"),
            (ProductKey::Genoa, "genoa"),
            (ProductKey::Turin, "turin"),
        ] {
            let ark = first(&format!("amd_{stem}_ark.pem"))?;
            let ask = first(&format!("amd_{stem}_ask.pem"))?;
            // The VLEK bundle is ASVK followed by the same ARK.
            let bundle = get(&format!("amd_{stem}_asvk_ark.pem"))?;
            if bundle.get(1).is_some_and(|b| *b != ark) {
                return Err(TrustError::Invalid {
                    name: format!("amd_{stem}_asvk_ark.pem"),
                    reason: "its ARK differs from the pinned ARK".into(),
                });
            }
            amd.insert(
                key,
                AmdRoots {
                    ark,
                    ask,
                    asvk: bundle.into_iter().next(),
                },
            );
        }
        Ok(Self {
            origin,
            amd,
            intel_root: first("intel_sgx_root_ca.der")?,
            nvidia_device_root: first("nvidia_device_identity_ca.pem")?,
            nvidia_rim_root: first("nvidia_corim_signing_root_ca.pem")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use attestor::digest::Sha256Digest;

    #[test]
    fn vendor_roots_are_the_pinned_certificates() {
        let r = TrustRoots::vendor().unwrap();
        assert_eq!(r.origin, RootsOrigin::Vendor);
        assert!(!r.is_simulated());
        assert_eq!(
            Sha256Digest::of(&r.intel_root).to_hex(),
            "44a0196b2b99f889b8e149e95b807a350e7424964399e885a7cbb8ccfab674d3"
        );
        assert_eq!(
            Sha256Digest::of(&r.nvidia_device_root).to_hex(),
            "102bf659d5419614c9d8e6aecebc80454eb26b1df6a769ac720b9a690b167b48"
        );
        assert_eq!(
            Sha256Digest::of(&r.nvidia_rim_root).to_hex(),
            "12977b5115acb0381179279fffeb5a8c4d264971ebb32298023a465fa41df5d1"
        );
        // MANIFEST fingerprints of the AMD roots.
        let milan = r.amd(Product::Milan).unwrap();
        assert_eq!(
            Sha256Digest::of(&milan.ark).to_hex(),
            "69d063b45344d26a2e94e1f4210de49ef555308287d4c174445c95639a540bcd"
        );
        assert_eq!(
            Sha256Digest::of(&milan.ask).to_hex(),
            "67d303bd3905fd38db8b20e0793699870e7fa612eaad5dec358293fd8c0bac1b"
        );
        assert!(milan.asvk.is_some());
        assert_eq!(
            Sha256Digest::of(&r.amd(Product::Genoa).unwrap().ark).to_hex(),
            "4c6598d19c18719c5dfd4a7d335f674e5bfe1d8f800cea2cf270c10d103db2f1"
        );
        assert_eq!(
            Sha256Digest::of(&r.amd(Product::Turin).unwrap().ark).to_hex(),
            "1f084161a44bb6d93778a904877d4819cafa5d05ef4193b2ded9dd9c73dd3f6a"
        );
    }

    #[test]
    fn simulated_roots_differ_from_vendor_roots_and_say_so() {
        let v = TrustRoots::vendor().unwrap();
        let s = TrustRoots::danger_simulated(&SimSeed::DEFAULT).unwrap();
        assert!(s.is_simulated());
        assert_ne!(s.intel_root, v.intel_root);
        assert_ne!(s.nvidia_device_root, v.nvidia_device_root);
        assert_ne!(
            s.amd(Product::Milan).unwrap().ark,
            v.amd(Product::Milan).unwrap().ark
        );
    }

    #[test]
    fn directory_roots_load_and_missing_files_are_named() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("roots");
        let r = TrustRoots::from_dir(&dir).unwrap();
        assert_eq!(r.amd, TrustRoots::vendor().unwrap().amd);
        let err = TrustRoots::from_dir(Path::new("/nonexistent")).unwrap_err();
        assert!(err.to_string().contains("amd_milan_ark.pem"), "{err}");
    }
}
