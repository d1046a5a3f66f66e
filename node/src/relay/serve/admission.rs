//! Whether a session opens: the checks the relay makes of an `OpenSession` before it reserves anything, in the
//! order `docs/protocol.md` gives, asked of one place.

use ferry_primitives::{Domain, SignedManifest};
use libp2p::PeerId;

use super::Relay;
use crate::p2p::protocol::{Code, OpenSession};

impl Relay {
    /// The chain it is for, the proof of the viewer's key, the rate of new accounts, the content and (with a chain)
    /// its registration. Returns the content's manifest, or the refusal to send.
    pub(super) async fn admit_session(
        &self,
        peer: PeerId,
        open: &OpenSession,
    ) -> Result<SignedManifest, (Code, String)> {
        if let Err((code, reason)) = check_open(open, &self.domain, &self.peer_id, &peer) {
            if code == Code::BadSignature {
                self.metrics.reject(&self.metrics.streams_refused, code.as_str());
                tracing::warn!(%peer, viewer = %crate::identity::account_hex(&open.viewer), %reason, "refusing a session: the peer did not prove the viewer's key");
            }
            return Err((code, reason));
        }
        if let Some(money) = &self.money {
            // Before anything is looked up for the viewer, here or on chain.
            if !money.book.knows(&open.viewer) {
                let host = self.hosts.get(&peer);
                if let Err(reason) = self.newcomers.admit(peer, host) {
                    self.metrics.reject(&self.metrics.streams_refused, "new_accounts");
                    tracing::warn!(%peer, ?host, reason, "refusing a session");
                    return Err((Code::RateLimited, reason.into()));
                }
                money.book.learn(&open.viewer).await;
            }
        }
        let manifest = match self.manifest_bytes(&open.content).await.map(|b| SignedManifest::decode_verified(&b)) {
            Some(Ok((_, m))) => m,
            _ => return Err((Code::NotFound, format!("no content {}", hex::encode(open.content)))),
        };
        if let Some(money) = &self.money {
            if let Err(reason) = money.registered(&open.content, &manifest).await {
                tracing::warn!(%peer, content = %hex::encode(open.content), %reason, "refusing a session");
                return Err((Code::Unregistered, reason));
            }
        }
        Ok(manifest)
    }
}

/// What needs nothing but the message and the connection: the chain the session is for, and that the peer holds
/// the viewer's key. The proof binds this relay and this connection, so a proof seen elsewhere opens nothing here.
pub(super) fn check_open(
    open: &OpenSession,
    domain: &Domain,
    relay_peer: &PeerId,
    peer: &PeerId,
) -> Result<(), (Code, String)> {
    if open.domain != *domain {
        return Err((Code::WrongDomain, "session is for another chain (genesis hash differs)".into()));
    }
    open.verify(relay_peer, peer)
        .map_err(|e| (Code::BadSignature, format!("the session's proof of the viewer's key does not verify: {e}")))
}

#[cfg(test)]
mod property {
    //! The relay's money rules at the level of sessions: who may open one, and what the lane book then lets out.

    use std::collections::HashMap;
    use std::sync::Arc;

    use ferry_primitives::{amount_for, signing::public_key, AccountId, Balance};
    use proptest::prelude::*;

    use super::*;
    use crate::chain::Lane;
    use crate::money::lanes::{LaneBook, ModelLanes, SessionCredit};

    const MIB: u64 = 1 << 20;
    const PRICE: Balance = 1_000_000;
    const WINDOW: u64 = 2 * MIB;
    const DOMAIN: Domain = Domain([5; 32]);
    /// The viewers' keys; the last is the borrower's, which holds no lane.
    const SECRETS: [[u8; 32]; 3] = [[7; 32], [8; 32], [9; 32]];
    const CONTENT: [u8; 32] = [4; 32];

    #[derive(Clone, Debug)]
    enum Op {
        /// A viewer opens a session from its own connection (a new one per window is the rotating viewer).
        Open {
            viewer: usize,
        },
        /// The borrower names a funded viewer: with a proof of its own key, or with the viewer's own proof
        /// replayed from the borrower's connection.
        Borrow {
            victim: usize,
            replay: bool,
        },
        /// A session asks to let out `bytes` more; the relay sends them if covered.
        Serve {
            session: usize,
            bytes: u64,
        },
        /// A session's viewer signs for what it received (the viewer that never signs never does this).
        Pay {
            session: usize,
            tip: Balance,
        },
        /// A session ends (idle, closed, or replaced by a newer session of its claim).
        End {
            session: usize,
        },
        /// The chain pays what a viewer owes, out of its lane.
        Settle {
            viewer: usize,
        },
        TopUp {
            viewer: usize,
            amount: Balance,
        },
        Close {
            viewer: usize,
        },
        /// The chain stops or starts answering lane reads: the book serves on the figures it read last.
        ChainDown {
            down: bool,
        },
    }

    fn op() -> impl Strategy<Value = Op> {
        let viewer = || 0..2usize;
        let session = || 0..8usize;
        prop_oneof![
            viewer().prop_map(|viewer| Op::Open { viewer }),
            (viewer(), any::<bool>()).prop_map(|(victim, replay)| Op::Borrow { victim, replay }),
            (session(), 1..(3 * MIB)).prop_map(|(session, bytes)| Op::Serve { session, bytes }),
            (session(), prop_oneof![Just(0), 1..(PRICE / 10)]).prop_map(|(session, tip)| Op::Pay { session, tip }),
            session().prop_map(|session| Op::End { session }),
            viewer().prop_map(|viewer| Op::Settle { viewer }),
            (viewer(), 1..(4 * PRICE)).prop_map(|(viewer, amount)| Op::TopUp { viewer, amount }),
            viewer().prop_map(|viewer| Op::Close { viewer }),
            any::<bool>().prop_map(|down| Op::ChainDown { down }),
        ]
    }

    /// One session as the relay runs it: what it let out and what the viewer's receipts paid.
    struct Open {
        /// Whose lane pays.
        viewer: usize,
        /// Whose key the peer on the connection holds.
        holder: usize,
        credit: SessionCredit,
        served: u64,
        acked: u64,
        tip: Balance,
    }

    async fn run(ops: Vec<Op>) {
        let accounts: Vec<AccountId> = SECRETS.iter().map(public_key).collect();
        let (relay_peer, peers) = (PeerId::random(), [PeerId::random(), PeerId::random(), PeerId::random()]);
        let lanes = Arc::new(ModelLanes::default());
        for v in &accounts[..2] {
            lanes.0.lock().unwrap().insert(*v, Lane { funds: 3 * PRICE, closing_at: None });
        }
        let book = Arc::new(LaneBook::new(Box::new(lanes.clone()), WINDOW, HashMap::new()));
        let mut sessions: Vec<Option<Open>> = Vec::new();
        // Bytes let out and never paid by ended sessions, per viewer (none is forgiven within a test).
        let mut left_unpaid = [0u64; 2];
        let open = |viewer: usize, holder: usize, request: OpenSession, sessions: &mut Vec<Option<Open>>| {
            if check_open(&request, &DOMAIN, &relay_peer, &peers[holder]).is_ok() {
                let credit = SessionCredit::new(book.clone(), accounts[viewer], PRICE);
                sessions.push(Some(Open { viewer, holder, credit, served: 0, acked: 0, tip: 0 }));
            }
        };
        for op in ops {
            match op {
                Op::Open { viewer } => {
                    let request = OpenSession::signed(&SECRETS[viewer], CONTENT, DOMAIN, &relay_peer, &peers[viewer]);
                    open(viewer, viewer, request, &mut sessions);
                }
                Op::Borrow { victim, replay } => {
                    let request = if replay {
                        OpenSession::signed(&SECRETS[victim], CONTENT, DOMAIN, &relay_peer, &peers[victim])
                    } else {
                        let own = OpenSession::signed(&SECRETS[2], CONTENT, DOMAIN, &relay_peer, &peers[2]);
                        OpenSession { viewer: accounts[victim], ..own }
                    };
                    open(victim, 2, request, &mut sessions);
                }
                Op::Serve { session, bytes } => {
                    if let Some(Some(s)) = sessions.get_mut(session) {
                        let upto = s.served + bytes;
                        if s.credit.cover(upto).await.is_ok() {
                            s.credit.served(upto);
                            s.served = upto;
                        }
                    }
                }
                Op::Pay { session, tip } => {
                    // Only the holder of the lane's key can sign its receipts.
                    if let Some(Some(s)) = sessions.get_mut(session) {
                        let tip = s.tip + tip;
                        let signed = s.holder == s.viewer;
                        if signed && s.credit.receipt(s.served, amount_for(s.served, PRICE), tip).await.is_ok() {
                            (s.acked, s.tip) = (s.served, tip);
                        }
                    }
                }
                Op::End { session } => {
                    if let Some(s) = sessions.get_mut(session).and_then(Option::take) {
                        left_unpaid[s.viewer] += s.served - s.acked;
                    }
                }
                Op::Settle { viewer } => {
                    let (owed, _, _) = book.figures(&accounts[viewer]);
                    let mut l = lanes.0.lock().unwrap();
                    let lane = l.get_mut(&accounts[viewer]).unwrap();
                    assert!(owed <= lane.funds, "the chain pays every acknowledged receipt in full");
                    lane.funds -= owed;
                    drop(l);
                    book.settled(&accounts[viewer], owed);
                }
                Op::TopUp { viewer, amount } => {
                    let mut l = lanes.0.lock().unwrap();
                    let lane = l.get_mut(&accounts[viewer]).unwrap();
                    lane.funds += amount;
                    lane.closing_at = None;
                }
                Op::Close { viewer } => {
                    lanes.0.lock().unwrap().get_mut(&accounts[viewer]).unwrap().closing_at = Some(1)
                }
                Op::ChainDown { down } => lanes.set_down(down),
            }
            let borrowed: u64 = sessions.iter().flatten().filter(|s| s.holder != s.viewer).map(|s| s.served).sum();
            assert_eq!(borrowed, 0, "a peer without the viewer's key was let out bytes on its lane");
            for (v, who) in accounts[..2].iter().enumerate() {
                let open: u64 = sessions.iter().flatten().filter(|s| s.viewer == v).map(|s| s.served - s.acked).sum();
                assert!(
                    open + left_unpaid[v] <= WINDOW,
                    "viewer {v} holds {} unpaid bytes, more than one credit window",
                    open + left_unpaid[v]
                );
                let (owed, held, _) = book.figures(who);
                let funds = lanes.0.lock().unwrap()[who].funds;
                assert!(owed + held <= funds, "viewer {v}: {owed} owed and {held} held, past the lane's {funds}");
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]
        /// Honest, rotating, never-paying and lane-borrowing viewers, settlements, top-ups, closes and a chain that
        /// stops answering: a peer without a viewer's key is let out nothing on its lane; a viewer never has more
        /// than one credit window let out unpaid, over all its sessions; and what it owes and what is held for it
        /// never pass what its lane holds, so every acknowledged receipt is paid.
        #[test]
        fn sessions_never_let_out_past_the_lane_its_window_or_to_a_peer_without_its_key(ops in proptest::collection::vec(op(), 1..80)) {
            tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(run(ops));
        }
    }
}
