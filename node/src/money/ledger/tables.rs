//! Every redb table of the ledger, with versioned names. `redb::` appears only under `ledger/`.

use redb::TableDefinition;

/// Relay side: every accepted receipt, in the order it was accepted. Kept for audit after settlement. Keyed by
/// arrival so that a group commit appends to the tree's last pages instead of rewriting a page per session.
pub const RECEIPTS: TableDefinition<u64, &[u8]> = TableDefinition::new("receipts-1");
/// The same, as ledgers before `receipts-1` kept them, keyed by (session, seq): never written any more, read before
/// `receipts-1`.
pub const RECEIPTS_BY_SESSION: TableDefinition<([u8; 16], u64), &[u8]> = TableDefinition::new("receipts-0");
/// Relay side: per session, the latest accepted receipt and its settlement state (`SessionRecord`).
pub const SESSIONS: TableDefinition<[u8; 16], &[u8]> = TableDefinition::new("sessions-0");
/// Viewer side: every receipt this node signed, keyed by (session, seq), with whether the relay acknowledged it.
pub const OWN_RECEIPTS: TableDefinition<([u8; 16], u64), &[u8]> = TableDefinition::new("own-receipts-0");
