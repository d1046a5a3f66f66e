//! The Ferry wire protocols. This module is the spec.
//!
//! Roles: a **viewer** (or a relay filling its cache, which acts as a viewer) fetches verified video from a
//! **relay** and pays it with signed cumulative receipts.
//!
//! Four stream protocols, all over libp2p streams (TCP+Noise+Yamux or QUIC). Control messages are frames: a
//! little-endian `u32` length, then the SCALE encoding of the message ([`super::frame`]).
//!
//! - [`MANIFEST_PROTOCOL`]: one request per stream. `ManifestRequest` → `ManifestReply`.
//! - [`SESSION_PROTOCOL`]: one long-lived stream per session (viewer, relay, content id, price). A session continues
//!   its **claim**: the receipts of one viewer at one relay for one content id run on across sessions, from the
//!   latest one the relay holds (`Opened::last`), so the chain settles one claim however many sessions there were.
//!   `OpenSession` → `SessionReply`; then any number of `SignedReceipt` → `ReceiptReply`, in order. The relay
//!   commits each accepted receipt durably before it acknowledges it. Receipts share the session's stream rather
//!   than going through request-response, so they stay ordered and cost no stream set-up each.
//! - [`LOG_PROTOCOL`]: one request per stream. `LogRequest` → `LogReply`: one page of the relay's receipt log (the
//!   latest receipt of each claim it holds, with its settlement status), for auditors.
//! - [`CHUNK_PROTOCOL`]: one stream per transfer. `ChunkRequest` → `ChunkReply`; after `Sending`, the relay writes
//!   the bao encoding (16 KiB groups, pre-order hash pairs) of the blob from `start_group` to its end and closes.
//!   The viewer verifies every group against the blob hash from the signed manifest as it arrives.
//!
//! Payment: the transfer is cut into **chunks** of [`CHUNK_BYTES`] of payload (the last one of a transfer may be
//! shorter). After each verified chunk the viewer signs a receipt whose `bytes` grow by the chunk's length and
//! whose `chunk_chain` is extended with the chunk's BLAKE3. The relay computes the same chain from what it sent and
//! refuses a receipt that does not match it. The relay serves at most `credit_window` bytes past the last
//! acknowledged receipt, then waits for payment, and gives up after [`PAYMENT_TIMEOUT`].
//!
//! Limits: control frames are at most [`MAX_CONTROL_FRAME`] bytes, manifests [`MAX_MANIFEST_FRAME`]. A frame over
//! its limit, or one that does not decode, gets a [`Code::Malformed`] or [`Code::TooLarge`] refusal and the stream
//! is closed. Refusals carry a [`Code`] and a human-readable reason.

use std::time::Duration;

use ferry_primitives::{
    AccountId, Balance, BlobHash, ClaimId, ContentId, Domain, Signature, SignatureError, SignedReceipt,
};
use libp2p::{PeerId, StreamProtocol};
use parity_scale_codec::{Decode, Encode};

pub const MANIFEST_PROTOCOL: StreamProtocol = StreamProtocol::new("/ferry/manifest/1");
pub const SESSION_PROTOCOL: StreamProtocol = StreamProtocol::new("/ferry/session/3");
pub const CHUNK_PROTOCOL: StreamProtocol = StreamProtocol::new("/ferry/chunk/1");
pub const LOG_PROTOCOL: StreamProtocol = StreamProtocol::new("/ferry/receipts/1");
/// Kademlia protocol of the Ferry DHT, kept apart from the IPFS DHT.
pub const KAD_PROTOCOL: StreamProtocol = StreamProtocol::new("/ferry/kad/1");
/// Gossipsub topic for content announcements.
pub const ANNOUNCE_TOPIC: &str = "ferry/announce/1";

/// Largest control frame: receipts are 288 bytes, requests smaller.
pub const MAX_CONTROL_FRAME: usize = 4 << 10;
/// Largest manifest reply.
pub const MAX_MANIFEST_FRAME: usize = ferry_primitives::manifest::MAX_MANIFEST_BYTES + 64;
/// bao group size: 16 KiB (chunk log 4), as iroh uses.
pub const GROUP_BYTES: u64 = 16 << 10;
/// Payload bytes per paid chunk: 16 groups.
pub const CHUNK_BYTES: u64 = 256 << 10;
/// How long a relay waits for a receipt when the credit window is used up.
pub const PAYMENT_TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct ManifestRequest {
    pub content: ContentId,
}

#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub enum ManifestReply {
    /// The encoded `SignedManifest`.
    Found(Vec<u8>),
    Refused {
        code: Code,
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct OpenSession {
    pub content: ContentId,
    pub viewer: AccountId,
    pub domain: Domain,
    /// The viewer's signature over [`OpenSession::proof_payload`]: only the holder of the lane's key opens a
    /// session that its lane pays for.
    pub proof: Signature,
}

/// Tag that starts the payload an [`OpenSession`] proof signs.
pub const SESSION_PROOF_TAG: [u8; 16] = *b"ferry/session/v2";

impl OpenSession {
    /// A session opened and signed by `viewer` for the relay `relay_peer`, from the connection of `viewer_peer`.
    pub fn signed(
        secret: &[u8; 32],
        content: ContentId,
        domain: Domain,
        relay_peer: &PeerId,
        viewer_peer: &PeerId,
    ) -> OpenSession {
        let viewer = ferry_primitives::signing::public_key(secret);
        let mut open = OpenSession { content, viewer, domain, proof: [0; 64] };
        open.proof = ferry_primitives::signing::sign(secret, &open.proof_payload(relay_peer, viewer_peer));
        open
    }

    /// What the proof signs: the tag, the three fields, then the relay's and the viewer's peer ids (their
    /// multihash bytes, each SCALE `Vec<u8>`). Binding both peer ids means a proof cannot be used from another
    /// connection or at another relay.
    pub fn proof_payload(&self, relay_peer: &PeerId, viewer_peer: &PeerId) -> Vec<u8> {
        let mut out = SESSION_PROOF_TAG.to_vec();
        (self.content, self.viewer, self.domain, relay_peer.to_bytes(), viewer_peer.to_bytes()).encode_to(&mut out);
        out
    }

    /// Whether `viewer` signed this session for this relay and this connection.
    pub fn verify(&self, relay_peer: &PeerId, viewer_peer: &PeerId) -> Result<(), SignatureError> {
        ferry_primitives::signing::verify(&self.viewer, &self.proof_payload(relay_peer, viewer_peer), &self.proof)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub enum SessionReply {
    Opened {
        /// `claim_id(relay, viewer, content)`: chunk requests name it.
        claim: ClaimId,
        relay: AccountId,
        price_per_mib: Balance,
        credit_window: u64,
        /// The latest receipt of the claim the relay holds (from its ledger, or rebuilt from the chain's), which
        /// this session's receipts continue; `None` starts the claim. Boxed only to keep the enum small: it
        /// encodes as the receipt itself.
        last: Option<Box<SignedReceipt>>,
    },
    Refused {
        code: Code,
        reason: String,
    },
}

/// The relay's answer to one receipt, in the order receipts were sent.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub enum ReceiptReply {
    /// Durably committed to the relay's ledger.
    Ack {
        seq: u64,
    },
    Rejected {
        seq: u64,
        code: Code,
        reason: String,
    },
}

/// A session stream carries receipts after the handshake; wrapping them keeps room for later messages.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub enum SessionMessage {
    Receipt(SignedReceipt),
}

#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct ChunkRequest {
    /// The claim of the session open on this connection.
    pub claim: ClaimId,
    pub blob: BlobHash,
    pub size: u64,
    /// First 16 KiB group to send; a viewer that failed over resumes where the last relay stopped.
    pub start_group: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub enum ChunkReply {
    Sending,
    Refused { code: Code, reason: String },
}

/// Most entries in one page of a receipt log.
pub const MAX_LOG_PAGE: u16 = 256;
/// A page of [`MAX_LOG_PAGE`] entries with room to spare (an entry is at most about 520 bytes).
pub const MAX_LOG_FRAME: usize = 192 << 10;
/// Longest refusal reason in a log entry, in bytes.
pub const MAX_LOG_REASON: usize = 200;

/// Which claims of a relay's receipt log to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode, Decode)]
pub enum LogFilter {
    All,
    Content(ContentId),
    /// One viewer's claims: its lane to this relay.
    Viewer(AccountId),
}

#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct LogRequest {
    pub filter: LogFilter,
    /// List claims after this id (in id order); `None` from the first.
    pub after: Option<ClaimId>,
    /// At most this many entries (the relay caps it at [`MAX_LOG_PAGE`]).
    pub limit: u16,
}

/// One claim in a relay's receipt log.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct LogEntry {
    /// The latest receipt of the claim the relay acknowledged.
    pub latest: SignedReceipt,
    /// The latest receipt the relay saw settled on chain, and what the chain had paid the claim then (bytes and
    /// tips); `None` if none was.
    pub settled: Option<(u64, Balance)>,
    /// Why the chain refused the latest receipt, if it did (at most [`MAX_LOG_REASON`] bytes).
    pub refused: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub enum LogReply {
    Page {
        entries: Vec<LogEntry>,
        /// More claims follow the last entry.
        more: bool,
    },
    Refused {
        code: Code,
        reason: String,
    },
}

/// Every reason a relay refuses a request or a receipt: one namespace for error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Encode, Decode)]
pub enum Code {
    /// A frame did not decode.
    Malformed,
    /// A frame exceeded its size limit.
    TooLarge,
    /// The peer opens streams faster than the relay allows.
    RateLimited,
    /// Too many sessions or streams at once.
    Busy,
    /// The relay does not have, and could not fetch, what was asked for.
    NotFound,
    /// A chunk request names a claim with no session open on this connection.
    UnknownSession,
    /// The credit window ran out and no receipt came.
    PaymentTimeout,
    /// The receipt's signature, or the session's proof of the viewer's key, does not verify.
    BadSignature,
    /// The receipt is for another chain.
    WrongDomain,
    /// The receipt names another relay.
    WrongRelay,
    /// The receipt's claim, viewer or content does not match the open session.
    WrongSession,
    /// The receipt's sequence number was already used.
    Replayed,
    /// A total (bytes, amount, tip) went down.
    NotMonotonic,
    /// amount ≠ price × bytes.
    WrongAmount,
    /// The receipt claims bytes or a chunk chain the relay did not serve.
    Unserved,
    /// The relay failed internally (e.g. its ledger); try another relay.
    Internal,
    /// No open lane from the viewer to this relay covers it: open or top up a lane, then ask again.
    NoEscrow,
    /// The content is not registered on chain (or not to its manifest's creator), so it cannot be paid for.
    Unregistered,
}

impl Code {
    /// Stable label for metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::Malformed => "malformed",
            Code::TooLarge => "too_large",
            Code::RateLimited => "rate_limited",
            Code::Busy => "busy",
            Code::NotFound => "not_found",
            Code::UnknownSession => "unknown_session",
            Code::PaymentTimeout => "payment_timeout",
            Code::BadSignature => "bad_signature",
            Code::WrongDomain => "wrong_domain",
            Code::WrongRelay => "wrong_relay",
            Code::WrongSession => "wrong_session",
            Code::Replayed => "replayed",
            Code::NotMonotonic => "not_monotonic",
            Code::WrongAmount => "wrong_amount",
            Code::Unserved => "unserved",
            Code::Internal => "internal",
            Code::NoEscrow => "no_escrow",
            Code::Unregistered => "unregistered",
        }
    }

    /// Whether the peer misbehaved badly enough that the relay closes the stream after refusing.
    pub fn closes_stream(self) -> bool {
        matches!(
            self,
            Code::Malformed
                | Code::TooLarge
                | Code::BadSignature
                | Code::WrongDomain
                | Code::WrongRelay
                | Code::WrongSession
        )
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pins the wire bytes of a chunk request: changing them breaks every deployed peer.
    #[test]
    fn chunk_request_wire_format() {
        let req = ChunkRequest { claim: [1; 16], blob: [2; 32], size: 0x0102, start_group: 3 };
        let hex = hex::encode(req.encode());
        assert_eq!(
            hex,
            concat!(
                "01010101010101010101010101010101",                                 // claim
                "0202020202020202020202020202020202020202020202020202020202020202", // blob
                "0201000000000000",                                                 // size u64 LE
                "0300000000000000",                                                 // start_group
            )
        );
        assert_eq!(Code::Unserved.encode(), vec![14]);
    }

    #[test]
    fn a_session_proof_holds_for_its_relay_and_connection_only() {
        let peer = |n: u8| crate::identity::Identity::from_secret([n; 32]).peer_id;
        let (relay, viewer) = (peer(1), peer(2));
        let open = OpenSession::signed(&[2; 32], [4; 32], Domain([5; 32]), &relay, &viewer);
        assert_eq!(open.encode().len(), 160);
        assert!(open.verify(&relay, &viewer).is_ok());
        assert!(open.verify(&peer(9), &viewer).is_err(), "another relay");
        assert!(open.verify(&relay, &peer(9)).is_err(), "another connection");
        let mut other = open.clone();
        other.viewer = [9; 32];
        assert!(other.verify(&relay, &viewer).is_err(), "another viewer's lane");
        let payload = open.proof_payload(&relay, &viewer);
        assert_eq!(&payload[..16], b"ferry/session/v2");
        assert_eq!(payload.len(), 16 + 32 + 32 + 32 + 39 + 39, "peer ids are 38 bytes, each after a length byte");
    }
}
