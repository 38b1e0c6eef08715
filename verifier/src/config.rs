//! `verifier serve --config FILE`: the server's TOML configuration.
//!
//! ```toml
//! listen = "127.0.0.1:8080"          # address to serve on (default 127.0.0.1:8080; --dev: 127.0.0.1:0)
//! data = "/var/lib/verifier"         # data directory: resources, audit log, keys, admin uploads
//! policies = "/etc/verifier/policies" # shipped policy directory (default ./policies)
//! policy_set = "production"          # "production" (default) or "development"
//! danger_simulated_roots = false     # accept the SIMULATOR's roots; only with policy_set = "development"
//! admin_public_key = "admin.pub.pem" # Ed25519 SPKI PEM that signs admin tokens; absent: admin API refuses every call
//! collateral = "/var/lib/verifier/collateral" # offline collateral cache (default DATA/collateral)
//! ear_ttl_secs = 300                 # lifetime of issued EARs
//! ```
//!
//! Unknown keys are refused. Relative paths are relative to the folder that
//! holds the configuration file. Command-line flags override the file. The
//! defaults are safe: the production policy set, vendor roots only, and no
//! admin access. This module only reads and checks the file; `serve`
//! resolves it with the flags.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::policy::PolicySetName;

/// The configuration file's contents; every key optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeConfig {
    /// Listen address.
    pub listen: Option<SocketAddr>,
    /// Data directory.
    pub data: Option<PathBuf>,
    /// Shipped policy directory.
    pub policies: Option<PathBuf>,
    /// `production` or `development`.
    pub policy_set: Option<String>,
    /// Accept the simulator's roots (development only).
    #[serde(default)]
    pub danger_simulated_roots: bool,
    /// The admin public key (Ed25519 SPKI PEM).
    pub admin_public_key: Option<PathBuf>,
    /// Offline collateral cache directory.
    pub collateral: Option<PathBuf>,
    /// EAR lifetime in seconds.
    pub ear_ttl_secs: Option<u64>,
}

/// The configuration could not be read or is invalid.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Not valid TOML, or an unknown key or wrong type.
    #[error("{path}: {reason}")]
    Parse { path: PathBuf, reason: String },
    /// A value that parses but is not allowed.
    #[error("{path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
}

impl ServeConfig {
    /// Parses TOML text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &Path) -> Result<Self, ConfigError> {
        let config: Self = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: origin.to_owned(),
            reason: e.to_string(),
        })?;
        let invalid = |reason: String| ConfigError::Invalid {
            path: origin.to_owned(),
            reason,
        };
        let set = match &config.policy_set {
            Some(name) => PolicySetName::parse(name).map_err(|e| invalid(e.to_string()))?,
            None => PolicySetName::Production,
        };
        if config.danger_simulated_roots && set != PolicySetName::Development {
            return Err(invalid(
                "danger_simulated_roots = true needs policy_set = \"development\"".to_owned(),
            ));
        }
        if config.ear_ttl_secs == Some(0) {
            return Err(invalid("ear_ttl_secs must be at least 1".to_owned()));
        }
        Ok(config)
    }

    /// Reads and parses a file; relative paths in it become relative to its folder.
    pub fn read(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut config = Self::parse(&text, path)?;
        let base = path.parent().unwrap_or(Path::new("."));
        for p in [
            &mut config.data,
            &mut config.policies,
            &mut config.admin_public_key,
            &mut config.collateral,
        ]
        .into_iter()
        .flatten()
        {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        Ok(config)
    }

    /// The policy set named (production when absent).
    pub fn policy_set(&self) -> PolicySetName {
        self.policy_set
            .as_deref()
            .and_then(|n| PolicySetName::parse(n).ok())
            .unwrap_or(PolicySetName::Production)
    }
}
