//! Signed inference receipts: one per inference, a JWS compact ES384 token
//! over the claims of DESIGN.md §5 and specs/receipts-and-logs.md §8.2 (an
//! EAT-profiled JWT, RFC 9711 claim names where they exist).
//!
//! ```text
//! header  {"alg":"ES384","typ":"inference-receipt+jwt","kid":<RFC 7638 thumbprint of the receipt key>}
//! claims  {"eat_profile":"tag:cc-inference-attestor,2026:inference-receipt#1", "iss", "iat", "jti",
//!          ["eat_nonce"], "seq", "prev", "session", "model_commitment", "input_commitment",
//!          "output_digest", "generation", "runtime", "verifier_policy_id", "policy_decision",
//!          "allowed_claim", "blocked_claims"}
//! input_commitment = "sha256:" hex(SHA-256("cc-inference-attestor/receipt/v1/input\0"  ‖ salt ‖ request bytes))
//! output_digest    = "sha256:" hex(SHA-256("cc-inference-attestor/receipt/v1/output\0" ‖ salt ‖ response bytes))
//! prev             = "sha256:" hex(SHA-256(previous receipt's compact JWS bytes)), null for seq 0
//! ```
//!
//! This module builds, signs, parses and checks the signature of receipts
//! ([`ReceiptChain::sign`], [`verify`], [`verify_chain`]). It never decides
//! whether the environment behind a receipt is acceptable: that is the
//! verifier's appraisal of the evidence and EAR the receipt points to.
//!
//! Choices written down:
//! - **Strict claims.** Parsing refuses unknown members (`deny_unknown_fields`)
//!   and any `eat_profile` but [`PROFILE`]. A receipt is read by auditors who
//!   must not silently skip a qualifying claim they do not understand; the
//!   profile URI names the exact claim set, so a new claim means a new profile
//!   (`#2`), never a silently ignored member. The one open-ended member is
//!   `runtime.compute_path`, whose shape belongs to the agent.
//! - **`model_commitment` is the string form** `sha256:<OMS v1.0 root hex>`,
//!   byte-for-byte the `model` member of `runtime_data` (DESIGN.md §3), so a
//!   reviewer compares two strings. The §8.2 object form's constant members
//!   (`predicateType` `https://model_signing/signature/v1.0`, serialization
//!   `files`/`sha256`) are fixed by the profile instead.
//! - **Commitments hash the exact bytes** sent and received, salted (the salt
//!   goes back to the client only) and domain-separated (specs §8.2, ERC-7992
//!   advice), so no canonicalisation is needed.
//! - **`seq` starts at 0**; `prev` is null exactly when `seq` is 0.
//! - A receipt of a simulated session must say `SIMULATED` in its
//!   `allowed_claim`; signing and verification both refuse one that does not.

mod jws;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest as _, Sha256};

use crate::digest::Sha256Digest;
use crate::evidence::Tee;

pub use jws::{
    ALG, CompactJws, JwsHeader, MAX_COMPACT_LEN, ReceiptKey, ReceiptPublicKey, SIGNATURE_LEN,
    jwk_thumbprint,
};

/// The `eat_profile` of every receipt of this format.
pub const PROFILE: &str = "tag:cc-inference-attestor,2026:inference-receipt#1";
/// The JWS `typ` header (explicit typing, RFC 8725 §3.11): a receipt can never
/// be mistaken for an EAR or an access token.
pub const TYP: &str = "inference-receipt+jwt";
/// Domain separator of the input commitment.
pub const INPUT_DOMAIN: &[u8] = b"cc-inference-attestor/receipt/v1/input\0";
/// Domain separator of the output digest.
pub const OUTPUT_DOMAIN: &[u8] = b"cc-inference-attestor/receipt/v1/output\0";
/// The word a simulated session's `allowed_claim` must contain.
pub const SIMULATED_WORD: &str = "SIMULATED";

/// Verifies a compact receipt with a public JWK and returns its claims.
///
/// In order: the JWK is a P-384 public key; the token has three canonical
/// base64url parts; `alg` is exactly ES384, no `crit`, `typ` is [`TYP`], `kid`
/// is the key's thumbprint; the signature verifies over the received bytes;
/// then the claims parse strictly and are consistent ([`ReceiptClaims::validate`]).
pub fn verify(compact: &str, jwk: &Value) -> Result<ReceiptClaims, ReceiptError> {
    verify_with(compact, &ReceiptPublicKey::from_jwk(jwk)?)
}

/// [`verify`] with a key parsed once (for many receipts of one session).
pub fn verify_with(compact: &str, key: &ReceiptPublicKey) -> Result<ReceiptClaims, ReceiptError> {
    let jws = CompactJws::parse(compact)?;
    jws.check_header(TYP, key)?;
    jws.check_signature(key)?;
    let claims = ReceiptClaims::from_json(&jws.payload)?;
    claims.validate()?;
    Ok(claims)
}

/// Verifies a run of receipts of one session, in order: each signature, then
/// that `seq` goes up by one and each `prev` is the digest of the receipt
/// before it. The run may start anywhere in the session (a reviewer may hold
/// only some receipts); the first receipt's `prev` is then not checkable here,
/// except that seq 0 must have a null `prev`.
pub fn verify_chain(receipts: &[&str], jwk: &Value) -> Result<Vec<ReceiptClaims>, ReceiptError> {
    let key = ReceiptPublicKey::from_jwk(jwk)?;
    let mut out: Vec<ReceiptClaims> = Vec::with_capacity(receipts.len());
    let mut previous: Option<(u64, ReceiptDigest)> = None;
    for (index, compact) in receipts.iter().enumerate() {
        let claims = verify_with(compact, &key).map_err(|error| ReceiptError::InChain {
            index,
            error: Box::new(error),
        })?;
        if let Some((prev_seq, prev_digest)) = previous {
            let expected_seq = prev_seq.checked_add(1).ok_or(ReceiptError::SeqOverflow)?;
            if claims.seq != expected_seq {
                return Err(ReceiptError::ChainGap {
                    index,
                    expected_seq,
                    found_seq: claims.seq,
                });
            }
            if claims.prev != Some(prev_digest) {
                return Err(ReceiptError::ChainPrevMismatch {
                    index,
                    expected: prev_digest,
                    found: claims.prev,
                });
            }
        }
        previous = Some((claims.seq, ReceiptDigest::of_compact(compact)));
        out.push(claims);
    }
    Ok(out)
}

/// Parses a receipt WITHOUT checking its signature, for display and triage
/// only: nothing it returns may be relied on. The claims are still parsed
/// strictly.
pub fn inspect_unverified(compact: &str) -> Result<(JwsHeader, ReceiptClaims), ReceiptError> {
    let jws = CompactJws::parse(compact)?;
    let claims = ReceiptClaims::from_json(&jws.payload)?;
    Ok((jws.header, claims))
}

/// `input_commitment`: SHA-256 over [`INPUT_DOMAIN`] ‖ salt ‖ the exact request bytes.
pub fn commit_input(salt: &Salt, request: &[u8]) -> Commitment {
    commit(INPUT_DOMAIN, salt, request)
}

/// `output_digest`: SHA-256 over [`OUTPUT_DOMAIN`] ‖ salt ‖ the exact response bytes.
pub fn commit_output(salt: &Salt, response: &[u8]) -> Commitment {
    commit(OUTPUT_DOMAIN, salt, response)
}

fn commit(domain: &[u8], salt: &Salt, bytes: &[u8]) -> Commitment {
    let mut h = Sha256::new();
    h.update(domain);
    h.update(salt.as_bytes());
    h.update(bytes);
    Commitment(Sha256Digest(h.finalize().into()))
}

crate::byte_newtype!(
    /// The 32-byte commitment salt of one inference. It goes back to the client
    /// only, never into a log: without it the commitments of a low-entropy
    /// prompt cannot be brute-forced.
    pub struct Salt(32);
);

impl Salt {
    /// A fresh salt from the operating system's CSPRNG.
    pub fn random() -> Self {
        let mut bytes = [0u8; 32];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut bytes);
        Self(bytes)
    }
}

/// Declares a `sha256:<64 lowercase hex>` newtype over [`Sha256Digest`].
macro_rules! prefixed_sha256 {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash)]
        pub struct $name(pub Sha256Digest);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "sha256:{}", self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({self})", stringify!($name))
            }
        }

        impl FromStr for $name {
            type Err = ReceiptError;

            /// Only the canonical spelling: `sha256:` and 64 lowercase hex digits.
            fn from_str(text: &str) -> Result<Self, ReceiptError> {
                parse_prefixed_sha256(text).map(Self)
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

prefixed_sha256!(
    /// A salted, domain-separated commitment to request or response bytes.
    Commitment
);
prefixed_sha256!(
    /// The digest of a receipt's compact JWS bytes: the next receipt's `prev`.
    ReceiptDigest
);
prefixed_sha256!(
    /// A `sha256:` reference to a document: the model (OMS v1.0 root), the
    /// evidence bundle, the EAR token.
    Sha256Ref
);

impl ReceiptDigest {
    /// SHA-256 of the compact JWS text, exactly as sent.
    pub fn of_compact(compact: &str) -> Self {
        Self(Sha256Digest::of(compact.as_bytes()))
    }
}

fn parse_prefixed_sha256(text: &str) -> Result<Sha256Digest, ReceiptError> {
    let err = || ReceiptError::DigestText {
        text: text.chars().take(80).collect(),
    };
    let hex = text.strip_prefix("sha256:").ok_or_else(err)?;
    if hex.len() != 64 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(err());
    }
    Sha256Digest::from_hex(hex).map_err(|_| err())
}

/// The claims of one receipt, in wire order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiptClaims {
    /// Always [`PROFILE`].
    pub eat_profile: String,
    /// The attestor instance (agent) that issued the receipt.
    pub iss: String,
    /// Issue time, Unix seconds.
    pub iat: u64,
    /// Receipt identifier, unique per receipt.
    pub jti: String,
    /// The client's nonce, echoed when it supplied one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eat_nonce: Option<String>,
    /// Position in the session, from 0.
    pub seq: u64,
    /// Digest of the previous receipt of the session; null for seq 0.
    pub prev: Option<ReceiptDigest>,
    /// The attested session the receipt belongs to.
    pub session: SessionRef,
    /// `sha256:<OMS v1.0 root>` of the weights loaded.
    pub model_commitment: Sha256Ref,
    /// Commitment to the exact request bytes.
    pub input_commitment: Commitment,
    /// Commitment to the exact response bytes.
    pub output_digest: Commitment,
    /// Generation parameters.
    pub generation: Generation,
    /// Agent build, candle version and compute path.
    pub runtime: Runtime,
    /// Policy ids (`<id>@sha256:<policy text digest>`) that appraised the session.
    pub verifier_policy_id: Vec<String>,
    /// What the agent decided for this request.
    pub policy_decision: PolicyDecision,
    /// The one sentence a reviewer may repeat.
    pub allowed_claim: String,
    /// What this receipt does not show.
    pub blocked_claims: Vec<String>,
}

impl ReceiptClaims {
    /// Parses claims JSON strictly: an object, no unknown or duplicated members.
    /// Does not check consistency; see [`Self::validate`].
    pub fn from_json(bytes: &[u8]) -> Result<Self, ReceiptError> {
        if bytes.trim_ascii_start().first() != Some(&b'{') {
            return Err(ReceiptError::ClaimsJson {
                reason: "not a JSON object".into(),
            });
        }
        serde_json::from_slice(bytes).map_err(|e| ReceiptError::ClaimsJson {
            reason: e.to_string(),
        })
    }

    /// The claims JSON, members in declaration order.
    pub fn to_json(&self) -> Result<Vec<u8>, ReceiptError> {
        serde_json::to_vec(self).map_err(|e| ReceiptError::Encode {
            reason: e.to_string(),
        })
    }

    /// Consistency a signer can get wrong: the profile is [`PROFILE`], `prev`
    /// is null exactly for seq 0, and a simulated session says SIMULATED.
    pub fn validate(&self) -> Result<(), ReceiptError> {
        if self.eat_profile != PROFILE {
            return Err(ReceiptError::ProfileMismatch {
                expected: PROFILE,
                found: self.eat_profile.clone(),
            });
        }
        if (self.seq == 0) != self.prev.is_none() {
            return Err(ReceiptError::SeqPrevInconsistent {
                seq: self.seq,
                prev: self.prev,
            });
        }
        if self.session.simulated && !self.allowed_claim.contains(SIMULATED_WORD) {
            return Err(ReceiptError::SimulatedNotLabelled {
                allowed_claim: self.allowed_claim.clone(),
            });
        }
        Ok(())
    }

    /// Checks `input_commitment` and `output_digest` against the exact request
    /// and response bytes and the salt the client received.
    pub fn check_commitments(
        &self,
        salt: &Salt,
        request: &[u8],
        response: &[u8],
    ) -> Result<(), ReceiptError> {
        let input = commit_input(salt, request);
        if input != self.input_commitment {
            return Err(ReceiptError::InputCommitmentMismatch {
                expected: input,
                found: self.input_commitment,
            });
        }
        let output = commit_output(salt, response);
        if output != self.output_digest {
            return Err(ReceiptError::OutputDigestMismatch {
                expected: output,
                found: self.output_digest,
            });
        }
        Ok(())
    }
}

/// The receipt's claims before the chain assigns `seq` and `prev`; the
/// profile is added by the library.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptDraft {
    /// See [`ReceiptClaims::iss`].
    pub iss: String,
    /// See [`ReceiptClaims::iat`].
    pub iat: u64,
    /// See [`ReceiptClaims::jti`].
    pub jti: String,
    /// See [`ReceiptClaims::eat_nonce`].
    pub eat_nonce: Option<String>,
    /// See [`ReceiptClaims::session`].
    pub session: SessionRef,
    /// See [`ReceiptClaims::model_commitment`].
    pub model_commitment: Sha256Ref,
    /// See [`ReceiptClaims::input_commitment`].
    pub input_commitment: Commitment,
    /// See [`ReceiptClaims::output_digest`].
    pub output_digest: Commitment,
    /// See [`ReceiptClaims::generation`].
    pub generation: Generation,
    /// See [`ReceiptClaims::runtime`].
    pub runtime: Runtime,
    /// See [`ReceiptClaims::verifier_policy_id`].
    pub verifier_policy_id: Vec<String>,
    /// See [`ReceiptClaims::policy_decision`].
    pub policy_decision: PolicyDecision,
    /// See [`ReceiptClaims::allowed_claim`]; build it with [`allowed_claim`].
    pub allowed_claim: String,
    /// See [`ReceiptClaims::blocked_claims`]; build it with [`blocked_claims`].
    pub blocked_claims: Vec<String>,
}

impl ReceiptDraft {
    /// The full claims at position `seq` after `prev`.
    pub fn into_claims(self, seq: u64, prev: Option<ReceiptDigest>) -> ReceiptClaims {
        ReceiptClaims {
            eat_profile: PROFILE.to_owned(),
            iss: self.iss,
            iat: self.iat,
            jti: self.jti,
            eat_nonce: self.eat_nonce,
            seq,
            prev,
            session: self.session,
            model_commitment: self.model_commitment,
            input_commitment: self.input_commitment,
            output_digest: self.output_digest,
            generation: self.generation,
            runtime: self.runtime,
            verifier_policy_id: self.verifier_policy_id,
            policy_decision: self.policy_decision,
            allowed_claim: self.allowed_claim,
            blocked_claims: self.blocked_claims,
        }
    }
}

/// The attested session a receipt belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionRef {
    /// Digest of the evidence bundle (`EvidenceBundle::digest`).
    pub evidence_digest: Sha256Ref,
    /// Digest of the EAR JWS bytes, when a verifier appraised the session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ear_digest: Option<Sha256Ref>,
    /// The EAR's top-level status, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ear_status: Option<EarStatus>,
    /// True when the evidence came from the simulator.
    pub simulated: bool,
}

/// EAR `ear_status` values (draft-ietf-rats-ear, AR4SI tiers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EarStatus {
    /// "affirming".
    Affirming,
    /// "warning".
    Warning,
    /// "contraindicated".
    Contraindicated,
    /// "none": no claim could be made.
    None,
}

/// Generation parameters of the inference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Generation {
    /// The request's token limit.
    pub max_tokens: u32,
    /// Decoding strategy.
    pub decoding: Decoding,
    /// Prompt length in tokens, when tokenized.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_tokens: Option<u32>,
    /// Tokens generated; absent for a refused request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_tokens: Option<u32>,
}

/// Decoding strategy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decoding {
    /// Argmax at every step: deterministic for fixed weights and compute path.
    Greedy,
}

/// What ran the inference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Runtime {
    /// The agent build.
    pub agent: AgentBuild,
    /// The candle version the agent was built with.
    pub candle_version: String,
    /// The compute path (device, dtype, kernels…), as the agent describes it.
    pub compute_path: Value,
}

/// The guest agent's build identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentBuild {
    /// Package name.
    pub name: String,
    /// Package version.
    pub version: String,
    /// Build identifier (git revision, binary digest), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build: Option<String>,
}

/// The agent's decision for this request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyDecision {
    /// allow, deny or unattested.
    pub status: DecisionStatus,
    /// Why, in words.
    pub reason: String,
}

/// `policy_decision.status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DecisionStatus {
    /// The request was served in an environment a verifier accepted.
    Allow,
    /// The request was refused; the response is the refusal.
    Deny,
    /// The request was served without an accepting appraisal.
    Unattested,
}

/// The facts an `allowed_claim` sentence is built from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClaimFacts<'a> {
    /// The model commitment.
    pub model: &'a Sha256Ref,
    /// The CPU TEE, when there is CPU evidence.
    pub tee: Option<Tee>,
    /// Number of GPUs in the evidence.
    pub gpus: usize,
    /// Whether the evidence came from the simulator.
    pub simulated: bool,
    /// The decision for this request.
    pub decision: DecisionStatus,
}

/// The one sentence a reviewer may repeat, built only from the facts. A
/// simulated environment's sentence starts with and contains `SIMULATED`.
pub fn allowed_claim(facts: &ClaimFacts<'_>) -> String {
    let sim = if facts.simulated { "SIMULATED " } else { "" };
    let tee = match facts.tee {
        Some(Tee::Snp) => format!("a {sim}AMD SEV-SNP confidential VM"),
        Some(Tee::Tdx) => format!("a {sim}Intel TDX confidential VM"),
        None => format!("a {sim}environment with no CPU TEE evidence"),
    };
    let gpus = match facts.gpus {
        0 => "no attested GPU".to_owned(),
        1 => format!("1 {sim}NVIDIA GPU in confidential-computing mode"),
        n => format!("{n} {sim}NVIDIA GPUs in confidential-computing mode"),
    };
    let env = format!("{tee} with {gpus}");
    let model = facts.model;
    let sentence = match facts.decision {
        DecisionStatus::Allow => format!(
            "Model {model} ran in {env}, attested for this session, on the input committed to in \
             input_commitment and produced the output committed to in output_digest."
        ),
        DecisionStatus::Deny => format!(
            "The request committed to in input_commitment was refused by the agent serving model \
             {model} in {env}; no model output was produced."
        ),
        DecisionStatus::Unattested => format!(
            "Model {model} ran on the input committed to in input_commitment and produced the \
             output committed to in output_digest in {env} that NO verifier accepted."
        ),
    };
    if facts.simulated {
        format!("SIMULATED, no genuine hardware attestation: {sentence}")
    } else {
        sentence
    }
}

/// What no receipt shows (DESIGN.md §1), plus, for a simulated session, the
/// environment itself.
pub fn blocked_claims(simulated: bool) -> Vec<String> {
    let mut out: Vec<String> = BLOCKED_CLAIMS.iter().map(|s| (*s).to_owned()).collect();
    if simulated {
        out.push(
            "hardware attestation: the environment was SIMULATED; nothing was confidential".into(),
        );
    }
    out
}

/// The claims every receipt blocks.
pub const BLOCKED_CLAIMS: &[&str] = &[
    "output correctness: the output is not shown to be true, safe or fit for any purpose",
    "model quality or fairness",
    "input provenance: who sent the input, or that it came from the right source",
    "data deletion: that the input or output were erased after use",
    "side channels: resistance to timing, power or microarchitectural side channels",
    "GPU locality: GPU evidence may be relayed from another GPU (no TDISP device binding)",
    "benchmark performance or capacity",
];

/// A signed receipt: the compact JWS as sent, and its claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedReceipt {
    /// `B64U(header).B64U(claims).B64U(R ‖ S)`.
    pub compact: String,
    /// The claims it carries.
    pub claims: ReceiptClaims,
}

impl SignedReceipt {
    /// The digest the next receipt's `prev` carries.
    pub fn digest(&self) -> ReceiptDigest {
        ReceiptDigest::of_compact(&self.compact)
    }
}

/// One session's receipt state: the key, the next `seq` and the digest of the
/// last receipt signed. Sign receipts of a session through one chain, in order.
#[derive(Debug)]
pub struct ReceiptChain {
    key: ReceiptKey,
    next_seq: u64,
    prev: Option<ReceiptDigest>,
}

impl ReceiptChain {
    /// A new session chain: the first receipt gets seq 0 and a null `prev`.
    pub fn new(key: ReceiptKey) -> Self {
        Self {
            key,
            next_seq: 0,
            prev: None,
        }
    }

    /// The receipt key.
    pub fn key(&self) -> &ReceiptKey {
        &self.key
    }

    /// The `seq` the next receipt will get.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The digest of the last receipt signed, if any.
    pub fn prev(&self) -> Option<ReceiptDigest> {
        self.prev
    }

    /// Assigns `seq` and `prev`, checks the claims ([`ReceiptClaims::validate`]),
    /// signs, and advances the chain. On error the chain is unchanged.
    pub fn sign(&mut self, draft: ReceiptDraft) -> Result<SignedReceipt, ReceiptError> {
        let following = self
            .next_seq
            .checked_add(1)
            .ok_or(ReceiptError::SeqOverflow)?;
        let claims = draft.into_claims(self.next_seq, self.prev);
        claims.validate()?;
        let compact = self.key.sign_compact(TYP, &claims.to_json()?);
        let signed = SignedReceipt { compact, claims };
        self.prev = Some(signed.digest());
        self.next_seq = following;
        Ok(signed)
    }
}

/// A segment of a compact JWS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JwsPart {
    /// The protected header.
    Header,
    /// The payload (claims).
    Payload,
    /// The signature.
    Signature,
}

impl fmt::Display for JwsPart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Header => "header",
            Self::Payload => "payload",
            Self::Signature => "signature",
        })
    }
}

/// Why a receipt could not be signed, parsed or verified. Each variant carries
/// the values involved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReceiptError {
    /// Longer than [`MAX_COMPACT_LEN`].
    #[error("receipt: {len} bytes, more than the {max} allowed")]
    TooLarge { len: usize, max: usize },
    /// Not `header.payload.signature`.
    #[error("receipt: not a compact JWS: {parts} dot-separated parts, expected 3")]
    NotCompactJws { parts: usize },
    /// A segment is not canonical base64url without padding.
    #[error("receipt: {part} is not canonical base64url without padding: {reason}")]
    Base64 { part: JwsPart, reason: String },
    /// The protected header is not a JSON object with a string `alg`.
    #[error("receipt: protected header: {reason}")]
    HeaderJson { reason: String },
    /// `alg` is not exactly ES384 (`none`, `ES256`, `HS384`…).
    #[error("receipt: algorithm {found:?} refused, only ES384 is accepted")]
    AlgorithmRefused { found: String },
    /// The header lists critical extensions; receipts understand none.
    #[error("receipt: critical header extensions {names:?} are not understood")]
    CriticalHeader { names: Vec<String> },
    /// `typ` is not [`TYP`].
    #[error("receipt: typ expected {expected:?}, found {found:?}")]
    TypeMismatch {
        expected: String,
        found: Option<String>,
    },
    /// `kid` is not the thumbprint of the key verification uses.
    #[error("receipt: kid expected {expected:?} (thumbprint of the receipt key), found {found:?}")]
    KidMismatch {
        expected: String,
        found: Option<String>,
    },
    /// The signature is not 96 bytes.
    #[error("receipt: signature is {found} bytes, expected {expected} (R ‖ S)")]
    SignatureLength { expected: usize, found: usize },
    /// The signature does not verify with the receipt key.
    #[error("receipt: signature does not verify with the receipt key")]
    SignatureInvalid,
    /// The claims are not valid receipt claims JSON.
    #[error("receipt: claims: {reason}")]
    ClaimsJson { reason: String },
    /// A `sha256:` value is not `sha256:` and 64 lowercase hex digits.
    #[error("receipt: {text:?} is not sha256:<64 lowercase hex digits>")]
    DigestText { text: String },
    /// `eat_profile` is not [`PROFILE`].
    #[error("receipt: eat_profile expected {expected:?}, found {found:?}")]
    ProfileMismatch {
        expected: &'static str,
        found: String,
    },
    /// `prev` must be null exactly when `seq` is 0.
    #[error("receipt: seq {seq} with prev {prev:?}: prev must be null exactly for seq 0")]
    SeqPrevInconsistent {
        seq: u64,
        prev: Option<ReceiptDigest>,
    },
    /// A simulated session's `allowed_claim` does not say SIMULATED.
    #[error(
        "receipt: simulated session but allowed_claim does not say SIMULATED: {allowed_claim:?}"
    )]
    SimulatedNotLabelled { allowed_claim: String },
    /// The session's receipt counter is exhausted.
    #[error("receipt: seq overflow")]
    SeqOverflow,
    /// A receipt in a chain failed verification.
    #[error("receipt #{index} in chain: {error}")]
    InChain {
        index: usize,
        error: Box<ReceiptError>,
    },
    /// A chain skips, repeats or reorders a `seq`.
    #[error("receipt #{index} in chain: seq expected {expected_seq}, found {found_seq}")]
    ChainGap {
        index: usize,
        expected_seq: u64,
        found_seq: u64,
    },
    /// A receipt's `prev` is not the digest of the receipt before it.
    #[error("receipt #{index} in chain: prev expected {expected}, found {found:?}")]
    ChainPrevMismatch {
        index: usize,
        expected: ReceiptDigest,
        found: Option<ReceiptDigest>,
    },
    /// `input_commitment` does not match the request bytes and salt.
    #[error("receipt: input_commitment expected {expected} for these bytes, found {found}")]
    InputCommitmentMismatch {
        expected: Commitment,
        found: Commitment,
    },
    /// `output_digest` does not match the response bytes and salt.
    #[error("receipt: output_digest expected {expected} for these bytes, found {found}")]
    OutputDigestMismatch {
        expected: Commitment,
        found: Commitment,
    },
    /// The JWK is not an EC P-384 public key.
    #[error("receipt key JWK: member {member}: {reason}")]
    Jwk {
        member: &'static str,
        reason: String,
    },
    /// The JWK carries a private key (`d`).
    #[error("receipt key JWK carries a private key (d); refusing it")]
    JwkPrivate,
    /// A fixed scalar is not a valid P-384 private key.
    #[error("receipt key: scalar is zero or not below the group order")]
    KeyScalarInvalid,
    /// The claims could not be serialized.
    #[error("receipt: encoding claims: {reason}")]
    Encode { reason: String },
}

/// Fuzz body: parse arbitrary bytes as a compact receipt and as claims JSON.
/// Claims that parse must survive re-serialization unchanged; verification
/// with a fixed key must return (not panic). Never panics otherwise.
pub fn fuzz_parse(data: &[u8]) {
    let roundtrip = |claims: &ReceiptClaims| {
        if let Ok(bytes) = claims.to_json() {
            assert_eq!(
                ReceiptClaims::from_json(&bytes).as_ref(),
                Ok(claims),
                "claims did not survive re-serialization"
            );
        }
    };
    if let Ok(claims) = ReceiptClaims::from_json(data) {
        roundtrip(&claims);
        let _ = claims.validate();
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok((_, claims)) = inspect_unverified(text) {
        roundtrip(&claims);
    }
    if let Ok(key) = ReceiptKey::from_scalar_bytes(&[0x11; 48]) {
        let _ = verify_with(text, key.public_key());
        let _ = verify_chain(&[text, text], &key.public_jwk());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixed_digest_text_is_strict() {
        let d = Sha256Digest::of(b"x");
        let text = format!("sha256:{d}");
        assert_eq!(text.parse::<Sha256Ref>().unwrap().0, d);
        assert!(text.to_uppercase().parse::<Sha256Ref>().is_err());
        assert!(format!("sha384:{d}").parse::<Sha256Ref>().is_err());
        assert!(format!("sha256: {d}").parse::<Sha256Ref>().is_err());
        assert!(format!("{text}00").parse::<Sha256Ref>().is_err());
        assert_eq!(
            serde_json::to_string(&Commitment(d)).unwrap(),
            format!("\"{text}\"")
        );
    }

    #[test]
    fn commitment_is_domain_separated() {
        let salt = Salt([1; 32]);
        assert_ne!(
            commit_input(&salt, b"abc").0,
            commit_output(&salt, b"abc").0
        );
        let mut manual = Vec::new();
        manual.extend_from_slice(b"cc-inference-attestor/receipt/v1/input\0");
        manual.extend_from_slice(&[1; 32]);
        manual.extend_from_slice(b"abc");
        assert_eq!(commit_input(&salt, b"abc").0, Sha256Digest::of(&manual));
    }

    #[test]
    fn allowed_claim_sentences() {
        let model = Sha256Ref(Sha256Digest([0xab; 32]));
        let mut facts = ClaimFacts {
            model: &model,
            tee: Some(Tee::Snp),
            gpus: 1,
            simulated: false,
            decision: DecisionStatus::Allow,
        };
        let genuine = allowed_claim(&facts);
        assert!(genuine.contains("AMD SEV-SNP"), "{genuine}");
        assert!(genuine.contains(&model.to_string()), "{genuine}");
        assert!(!genuine.contains(SIMULATED_WORD), "{genuine}");
        facts.simulated = true;
        let sim = allowed_claim(&facts);
        assert!(sim.starts_with(SIMULATED_WORD), "{sim}");
        facts.decision = DecisionStatus::Deny;
        assert!(allowed_claim(&facts).contains("refused"));
        assert!(blocked_claims(true).len() > BLOCKED_CLAIMS.len());
    }
}
