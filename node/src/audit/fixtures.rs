//! The parties and receipts the audit's unit tests share.

use ferry_primitives::{claim_id, AccountId, Balance, ContentId, Domain, Receipt, SignedReceipt, MIB};

use super::check::{Rules, State};

pub const GENESIS: [u8; 32] = [0xaa; 32];
pub const RELAY: AccountId = [1; 32];
pub const CONTENT: ContentId = [3; 32];
pub const CREATOR: AccountId = [9; 32];
pub const VIEWER_KEY: [u8; 32] = [5; 32];
pub const RULES: Rules = Rules { genesis: GENESIS, fee_bps: 500 };

pub fn viewer() -> AccountId {
    ferry_primitives::signing::public_key(&VIEWER_KEY)
}

/// Seq 1 of the viewer's claim at the relay for 1 MiB of `CONTENT`, signed with `key`.
pub fn receipt(amount: Balance, tip: Balance, key: &[u8; 32]) -> SignedReceipt {
    Receipt {
        domain: Domain(GENESIS),
        claim: claim_id(&RELAY, &viewer(), &CONTENT),
        relay: RELAY,
        viewer: viewer(),
        content: CONTENT,
        seq: 1,
        bytes: MIB,
        amount,
        chunk_chain: [0; 32],
        tip,
    }
    .sign(key)
}

/// The viewer's lane to the relay holds `funds`; the content is registered to `CREATOR` at a 20% share.
pub fn before(funds: Balance) -> State {
    let mut s = State::default();
    s.lanes.insert((viewer(), RELAY), funds);
    s.contents.insert(CONTENT, (CREATOR, 2_000));
    s
}
