//! The reviewer CLI's view of a running verifier (`--server URL`): the
//! `attestor.v1.Verifier` gRPC audit calls, blocking.
//!
//! Nothing the server says is trusted here: entries are parsed as canonical
//! entries, and the callers check checkpoints, inclusion and consistency
//! proofs against a log key the reviewer supplies. This module only fetches.

use anyhow::{Context as _, bail};
use proto::v1::verifier_client::VerifierClient;
use proto::v1::{
    AuditCheckpointRequest, AuditConsistencyProofRequest, AuditEntriesRequest,
    AuditInclusionProofRequest,
};
use tonic::transport::Channel;

use super::{Decision, TreeHash};
use crate::grpc::MAX_PAGE;

/// A connection to a verifier's gRPC service.
pub(crate) struct Remote {
    runtime: tokio::runtime::Runtime,
    client: VerifierClient<Channel>,
}

/// What the server announces with its checkpoint.
pub(crate) struct RemoteCheckpoint {
    /// The signed note.
    pub(crate) note: String,
    /// The key the server says signs it (informative only).
    pub(crate) log_key: String,
}

impl Remote {
    /// Connects to `url` (`http://host:port`).
    pub(crate) fn connect(url: &str) -> anyhow::Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting the async runtime")?;
        let client = runtime
            .block_on(VerifierClient::connect(url.to_owned()))
            .with_context(|| format!("connecting to the verifier at {url}"))?;
        Ok(Self { runtime, client })
    }

    /// Entries `[start, end)` (every entry from `start` when `end` is
    /// `None`) matching the filter, in index order, as the bytes served.
    pub(crate) fn entries(
        &mut self,
        decision: Option<Decision>,
        since: Option<&str>,
        start: u64,
        end: Option<u64>,
    ) -> anyhow::Result<Vec<(u64, Vec<u8>)>> {
        let mut out = Vec::new();
        let mut start = start;
        loop {
            let request = AuditEntriesRequest {
                start,
                limit: MAX_PAGE,
                decision: decision.map(|d| d.as_str().to_owned()).unwrap_or_default(),
                since: since.unwrap_or_default().to_owned(),
            };
            let page = self
                .runtime
                .block_on(self.client.audit_entries(request))
                .context("AuditEntries")?
                .into_inner();
            let empty = page.entries.is_empty();
            for e in page.entries {
                if e.index < start || out.last().is_some_and(|(i, _)| *i >= e.index) {
                    bail!("the server returned entry {} out of order", e.index);
                }
                if end.is_some_and(|end| e.index >= end) {
                    return Ok(out);
                }
                out.push((e.index, e.entry_json));
            }
            let done = empty
                || page.next_start <= start
                || page.next_start >= page.tree_size
                || end.is_some_and(|end| page.next_start >= end);
            if done {
                return Ok(out);
            }
            start = page.next_start;
        }
    }

    /// The server's latest signed checkpoint (it signs one when the log grew).
    pub(crate) fn checkpoint(&mut self) -> anyhow::Result<RemoteCheckpoint> {
        let r = self
            .runtime
            .block_on(self.client.audit_checkpoint(AuditCheckpointRequest {}))
            .context("AuditCheckpoint")?
            .into_inner();
        Ok(RemoteCheckpoint {
            note: r.checkpoint,
            log_key: r.log_key,
        })
    }

    /// The tlog-proof text for entry `n`, or `None` when there is no such entry.
    pub(crate) fn inclusion_proof(&mut self, n: u64) -> anyhow::Result<Option<String>> {
        let request = AuditInclusionProofRequest {
            index: n,
            tree_size: 0,
        };
        match self
            .runtime
            .block_on(self.client.audit_inclusion_proof(request))
        {
            Ok(r) => Ok(Some(r.into_inner().proof)),
            Err(s) if s.code() == tonic::Code::NotFound => Ok(None),
            Err(s) => Err(s).context("AuditInclusionProof"),
        }
    }

    /// The consistency proof between two tree sizes.
    pub(crate) fn consistency_proof(
        &mut self,
        old_size: u64,
        new_size: u64,
    ) -> anyhow::Result<Vec<TreeHash>> {
        let r = self
            .runtime
            .block_on(
                self.client
                    .audit_consistency_proof(AuditConsistencyProofRequest { old_size, new_size }),
            )
            .context("AuditConsistencyProof")?
            .into_inner();
        r.hashes
            .into_iter()
            .map(|h| {
                <[u8; 32]>::try_from(h.as_slice())
                    .map(TreeHash)
                    .map_err(|_| anyhow::anyhow!("the server sent a hash of {} bytes", h.len()))
            })
            .collect()
    }
}
