//! Every redb table of the ledger, with versioned names. `redb::` appears only under `ledger/`.

use redb::TableDefinition;

/// Relay side: every accepted receipt, in the order it was accepted. Kept for audit after settlement. Keyed by
/// arrival so that a group commit appends to the tree's last pages instead of rewriting a page per session.
pub const RECEIPTS: TableDefinition<u64, &[u8]> = TableDefinition::new("receipts-1");
/// The same, as ledgers before `receipts-1` kept them, keyed by (session, seq): never written any more, read before
/// `receipts-1`.
pub const RECEIPTS_BY_SESSION: TableDefinition<([u8; 16], u64), &[u8]> = TableDefinition::new("receipts-0");
/// Relay side: per claim, the latest accepted receipt and its settlement state (`ClaimRecord`). Ledgers from before
/// claims kept `sessions-0`, whose receipts no chain of this runtime pays; it is left unread.
pub const CLAIMS: TableDefinition<[u8; 16], &[u8]> = TableDefinition::new("claims-0");
/// Viewer side: every receipt this node signed, keyed by (claim, seq), with whether the relay acknowledged it.
pub const OWN_RECEIPTS: TableDefinition<([u8; 16], u64), &[u8]> = TableDefinition::new("own-receipts-1");
