//! Every redb table of the ledger, with versioned names. `redb::` appears only under `ledger/`.

use redb::TableDefinition;

/// Relay side: every accepted receipt, keyed by (session, seq). Kept for audit after settlement.
pub const RECEIPTS: TableDefinition<([u8; 16], u64), &[u8]> = TableDefinition::new("receipts-0");
/// Relay side: per session, the latest accepted receipt and its settlement state (`SessionRecord`).
pub const SESSIONS: TableDefinition<[u8; 16], &[u8]> = TableDefinition::new("sessions-0");
/// Viewer side: every receipt this node signed, keyed by (session, seq), with whether the relay acknowledged it.
pub const OWN_RECEIPTS: TableDefinition<([u8; 16], u64), &[u8]> = TableDefinition::new("own-receipts-0");
