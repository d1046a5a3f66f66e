//! The receipt ledger (redb): the relay's durable record of what it is owed, and the viewer's copy of what it signed.
//!
//! One writer thread owns the database. Callers send operations over a channel; the writer takes everything queued
//! (group commit), and what arrives within [`GATHER`] when something must reach the disk, applies it in one write
//! transaction, commits with fsync, and only then answers. So an
//! acknowledged receipt survives `kill -9` and power loss, and the fsync cost is shared by every receipt, of every
//! claim, that arrived meanwhile.
//!
//! The viewer's copy of what it signed is written lazily: a group holding only that copy (and reads) commits
//! without fsync, and the next durable commit, at most [`FLUSH_EVERY`] later, takes it to disk. A crash of the
//! viewer can cost it the last second of its copy, never the relay's record or any money.
//! The writer is also where a receipt is checked against the claim's previous one, so that check and the write
//! can never interleave with another receipt of the same claim.

mod tables;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use ferry_primitives::{AccountId, Balance, ClaimId, SignedReceipt};
use parity_scale_codec::{Decode, Encode};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use tokio::sync::{mpsc, oneshot};

use crate::p2p::protocol::Code;
use tables::{CLAIMS, OWN_RECEIPTS, RECEIPTS, RECEIPTS_BY_SESSION};

/// File name of the ledger inside the node's home.
pub const LEDGER_FILE: &str = "ledger.redb";
/// Most operations applied in one transaction.
const MAX_GROUP: usize = 8192;
/// How long after taking the first operation of a durable commit the writer waits for more to share its fsync.
const GATHER: std::time::Duration = std::time::Duration::from_millis(1);
/// Longest a lazily written record stays off disk.
pub const FLUSH_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("the ledger {0} is in use by a running ferry process; stop that process or use its metrics endpoint")]
    InUse(PathBuf),
    #[error("ledger {0}: {1}")]
    Db(PathBuf, String),
    #[error("ledger record is corrupt: {0}")]
    Corrupt(String),
    #[error("the ledger writer has stopped")]
    Stopped,
}

/// Why the ledger refused a receipt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub code: Code,
    pub reason: String,
}

/// Settlement of a claim on chain: up to which receipt, in which finalized block, and what it paid so far.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode, serde::Serialize)]
pub struct Settlement {
    pub seq: u64,
    /// What the viewer's lane paid for this claim in total (bytes and tips), from the chain.
    #[serde(with = "crate::money::earnings::decimal")]
    pub amount: Balance,
    /// The operator's part of it, summed from the chain's `Settled` events.
    #[serde(with = "crate::money::earnings::decimal")]
    pub operator_paid: Balance,
    pub block_number: u32,
    #[serde(with = "hex_bytes")]
    pub block_hash: [u8; 32],
}

/// The chain refused a claim's latest receipt; it is not retried until the claim has a newer one.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode, serde::Serialize)]
pub struct Refusal {
    pub seq: u64,
    pub error: String,
}

/// What the relay knows of one claim.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct ClaimRecord {
    pub latest: SignedReceipt,
    pub settled: Option<Settlement>,
    pub refused: Option<Refusal>,
}

impl ClaimRecord {
    /// Acknowledged and not yet paid by the chain: the latest receipt's amount and tip, less what was paid.
    pub fn owed(&self) -> Balance {
        let r = &self.latest.receipt;
        (r.amount + r.tip).saturating_sub(self.settled.as_ref().map_or(0, |s| s.amount))
    }

    /// Whether the latest receipt still waits for settlement.
    pub fn is_pending(&self) -> bool {
        let seq = self.latest.receipt.seq;
        self.settled.as_ref().is_none_or(|s| s.seq < seq) && self.refused.as_ref().is_none_or(|r| r.seq < seq)
    }

    /// Whether the chain settled the latest receipt but paid less than it claims (the lane ran dry): sent again
    /// once the lane holds funds, it pays the rest.
    pub fn is_short(&self) -> bool {
        let r = &self.latest.receipt;
        self.settled.as_ref().is_some_and(|s| s.seq == r.seq && s.amount < r.amount.saturating_add(r.tip))
    }
}

/// One receipt's settlement, to record in the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settled {
    pub claim: ClaimId,
    pub seq: u64,
    /// What the chain has paid the claim in total (bytes and tips).
    pub amount: Balance,
    /// What this settlement paid the operator (0 when the chain had already settled it).
    pub operator_paid: Balance,
    /// The operator's part of everything the chain paid the claim, where the chain's record says it (a receipt
    /// it had already settled): the claim's figure is then at least this, whatever settlement the ledger missed.
    pub operator_total: Option<Balance>,
}

/// A receipt this node signed as a viewer.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct OwnReceipt {
    pub receipt: SignedReceipt,
    pub acked: bool,
}

enum Op {
    Commit(Box<SignedReceipt>, oneshot::Sender<Result<(), Rejection>>),
    /// Lazy: no answer, on disk within [`FLUSH_EVERY`].
    RecordOwn(Box<SignedReceipt>),
    MarkAcked(ClaimId, u64),
    /// Answers once everything sent before it is committed.
    Barrier(oneshot::Sender<()>),
    /// Commits what is queued, closes the database cleanly and stops the writer.
    Close(oneshot::Sender<()>),
    /// Every claim whose latest receipt is not settled, or was short-paid.
    Pending(oneshot::Sender<Vec<ClaimRecord>>),
    /// Records that these receipts were settled in a finalized block.
    MarkSettled(Vec<Settled>, u32, [u8; 32], oneshot::Sender<()>),
    /// Records that the chain refused a claim's receipt.
    MarkRefused(ClaimId, Refusal, oneshot::Sender<()>),
    /// Every claim record.
    Claims(oneshot::Sender<Vec<ClaimRecord>>),
    /// The latest accepted receipt of one claim.
    Latest(ClaimId, oneshot::Sender<Option<SignedReceipt>>),
    /// Takes lazily written records to disk.
    Flush,
}

impl Op {
    /// Whether the group holding this operation must reach the disk before anyone is answered.
    fn durable(&self) -> bool {
        matches!(self, Op::Commit(..) | Op::Barrier(_) | Op::Close(_) | Op::MarkSettled(..) | Op::MarkRefused(..))
    }

    /// Whether this operation writes something that may wait for a later durable commit.
    fn lazy_write(&self) -> bool {
        matches!(self, Op::RecordOwn(_) | Op::MarkAcked(..))
    }
}

/// Cheap-clone handle to the ledger writer.
#[derive(Clone)]
pub struct Ledger {
    tx: mpsc::Sender<Op>,
    /// The latest receipt of each claim this process signed as a viewer, for the web app's playback figures.
    signed: std::sync::Arc<std::sync::Mutex<HashMap<ClaimId, ferry_primitives::Receipt>>>,
}

impl Ledger {
    /// Opens (creating if needed) `home/ledger.redb` and starts the writer thread.
    pub fn open(home: &Path) -> Result<Ledger, LedgerError> {
        let path = home.join(LEDGER_FILE);
        let db = Database::create(&path).map_err(|e| db_error(&path, e))?;
        let next_receipt = prepare_tables(&db).map_err(|e| db_error(&path, e))?;
        let (tx, rx) = mpsc::channel(MAX_GROUP);
        let spawn_error = |e: std::io::Error| LedgerError::Db(home.join(LEDGER_FILE), e.to_string());
        std::thread::Builder::new()
            .name("ledger-writer".into())
            .spawn(move || Writer { db, path, cache: HashMap::new(), dirty: false, next_receipt }.run(rx))
            .map_err(spawn_error)?;
        // Holds only a weak handle, so the writer still stops when the last `Ledger` is dropped.
        let weak = tx.downgrade();
        std::thread::Builder::new()
            .name("ledger-flush".into())
            .spawn(move || loop {
                std::thread::sleep(FLUSH_EVERY);
                match weak.upgrade() {
                    Some(tx) if tx.blocking_send(Op::Flush).is_ok() => {}
                    _ => return,
                }
            })
            .map_err(spawn_error)?;
        Ok(Ledger { tx, signed: Default::default() })
    }

    /// Checks `receipt` against its claim's last one and commits it durably. `Ok` means it is on disk.
    pub async fn commit(&self, receipt: SignedReceipt) -> Result<Result<(), Rejection>, LedgerError> {
        self.submit(receipt).await?.await
    }

    /// Queues `receipt` for [`Ledger::commit`] and returns the wait for its verdict, so a caller can queue the
    /// next receipts of the same claim (checked in order) before this one is on disk.
    pub async fn submit(
        &self,
        receipt: SignedReceipt,
    ) -> Result<impl std::future::Future<Output = Result<Result<(), Rejection>, LedgerError>>, LedgerError> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(Op::Commit(Box::new(receipt), tx)).await.map_err(|_| LedgerError::Stopped)?;
        Ok(async move { rx.await.map_err(|_| LedgerError::Stopped) })
    }

    /// Keeps a copy of a receipt this node signed, written lazily (see the module's note).
    pub async fn record_own(&self, receipt: SignedReceipt) -> Result<(), LedgerError> {
        let r = &receipt.receipt;
        self.signed.lock().unwrap_or_else(|p| p.into_inner()).insert(r.claim, r.clone());
        self.tx.send(Op::RecordOwn(Box::new(receipt))).await.map_err(|_| LedgerError::Stopped)
    }

    /// The latest receipt of each claim for `content` that this process signed as a viewer.
    pub fn signed_for(&self, content: &ferry_primitives::ContentId) -> Vec<ferry_primitives::Receipt> {
        let signed = self.signed.lock().unwrap_or_else(|p| p.into_inner());
        signed.values().filter(|r| r.content == *content).cloned().collect()
    }

    /// The relays this process paid as a viewer.
    pub fn signed_relays(&self) -> std::collections::BTreeSet<AccountId> {
        self.signed.lock().unwrap_or_else(|p| p.into_inner()).values().map(|r| r.relay).collect()
    }

    /// Waits until every operation sent so far is on disk.
    pub async fn sync(&self) -> Result<(), LedgerError> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(Op::Barrier(tx)).await.map_err(|_| LedgerError::Stopped)?;
        rx.await.map_err(|_| LedgerError::Stopped)
    }

    /// Commits everything sent so far and closes the database, so the next open needs no repair.
    pub async fn close(&self) -> Result<(), LedgerError> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(Op::Close(tx)).await.map_err(|_| LedgerError::Stopped)?;
        rx.await.map_err(|_| LedgerError::Stopped)
    }

    /// Latest receipts of claims with something left to settle: not settled yet, or short-paid.
    pub async fn pending(&self) -> Result<Vec<ClaimRecord>, LedgerError> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(Op::Pending(tx)).await.map_err(|_| LedgerError::Stopped)?;
        rx.await.map_err(|_| LedgerError::Stopped)
    }

    /// Marks receipts settled in a finalized block; durable when this returns.
    pub async fn mark_settled(
        &self,
        settled: Vec<Settled>,
        block_number: u32,
        block_hash: [u8; 32],
    ) -> Result<(), LedgerError> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(Op::MarkSettled(settled, block_number, block_hash, tx)).await.map_err(|_| LedgerError::Stopped)?;
        rx.await.map_err(|_| LedgerError::Stopped)
    }

    /// Records that the chain refused a claim's receipt; durable when this returns.
    pub async fn mark_refused(&self, claim: ClaimId, refusal: Refusal) -> Result<(), LedgerError> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(Op::MarkRefused(claim, refusal, tx)).await.map_err(|_| LedgerError::Stopped)?;
        rx.await.map_err(|_| LedgerError::Stopped)
    }

    /// Every claim the relay has receipts for.
    pub async fn claims(&self) -> Result<Vec<ClaimRecord>, LedgerError> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(Op::Claims(tx)).await.map_err(|_| LedgerError::Stopped)?;
        rx.await.map_err(|_| LedgerError::Stopped)
    }

    /// The latest receipt of `claim` this relay accepted: the one a new session of the claim continues.
    pub async fn latest(&self, claim: ClaimId) -> Result<Option<SignedReceipt>, LedgerError> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(Op::Latest(claim, tx)).await.map_err(|_| LedgerError::Stopped)?;
        rx.await.map_err(|_| LedgerError::Stopped)
    }

    /// What each viewer owes in acknowledged receipts the chain has not paid yet (bytes and tips).
    pub async fn owed_by_viewer(&self) -> Result<HashMap<AccountId, Balance>, LedgerError> {
        let mut owed = HashMap::new();
        for rec in self.claims().await? {
            *owed.entry(rec.latest.receipt.viewer).or_default() += rec.owed();
        }
        Ok(owed)
    }

    /// Notes that the relay acknowledged one of our receipts.
    pub async fn mark_acked(&self, claim: ClaimId, seq: u64) -> Result<(), LedgerError> {
        self.tx.send(Op::MarkAcked(claim, seq)).await.map_err(|_| LedgerError::Stopped)
    }
}

struct Writer {
    db: Database,
    path: PathBuf,
    /// Committed state per claim, so checks need no read.
    cache: HashMap<ClaimId, ClaimRecord>,
    /// Lazily written records are committed but not yet on disk.
    dirty: bool,
    /// The key of the next accepted receipt in `RECEIPTS`.
    next_receipt: u64,
}

/// Creates the tables and returns the next receipt's key. Receipts that a ledger of an older node kept by (session,
/// seq) stay where they are: a view reads them before the newer ones.
fn prepare_tables(db: &Database) -> Result<u64, redb::Error> {
    let w = db.begin_write()?;
    let next = {
        let receipts = w.open_table(RECEIPTS)?;
        w.open_table(CLAIMS)?;
        w.open_table(OWN_RECEIPTS)?;
        let next = receipts.last()?.map_or(0, |(k, _)| k.value() + 1);
        next
    };
    w.commit()?;
    Ok(next)
}

/// Moves what is queued into `group`, up to [`MAX_GROUP`], stopping at a close, which it returns.
fn drain(rx: &mut mpsc::Receiver<Op>, group: &mut Vec<Op>) -> Option<oneshot::Sender<()>> {
    while group.len() < MAX_GROUP {
        match rx.try_recv() {
            Ok(Op::Close(reply)) => return Some(reply),
            Ok(op) => group.push(op),
            Err(_) => break,
        }
    }
    None
}

impl Writer {
    fn run(mut self, mut rx: mpsc::Receiver<Op>) {
        while let Some(first) = rx.blocking_recv() {
            let taken = std::time::Instant::now();
            let (mut group, mut close) = match first {
                Op::Close(reply) => (vec![], Some(reply)),
                op => (vec![op], None),
            };
            if close.is_none() {
                close = drain(&mut rx, &mut group);
            }
            // A commit costs the writer about the same CPU (most of it the kernel's fsync) for one receipt as for
            // a hundred: wait a moment for more before committing.
            if close.is_none() && group.len() < MAX_GROUP && group.iter().any(Op::durable) {
                std::thread::sleep(GATHER.saturating_sub(taken.elapsed()));
                close = drain(&mut rx, &mut group);
            }
            let nothing_to_flush = !self.dirty && group.iter().all(|op| matches!(op, Op::Flush));
            if !group.is_empty() && !nothing_to_flush {
                if let Err(e) = self.apply(group) {
                    // The transaction was not committed: nothing was acknowledged, and the cache may be ahead of disk.
                    tracing::error!(error = %e, "ledger commit failed; receipts in this group were not acknowledged");
                    self.cache.clear();
                }
            }
            if let Some(reply) = close {
                self.flush_lazy();
                drop(self);
                let _ = reply.send(());
                return;
            }
        }
        // Every handle was dropped without `close`.
        self.flush_lazy();
    }

    /// Takes lazily written records to disk before the database closes.
    fn flush_lazy(&mut self) {
        if self.dirty {
            if let Err(e) = self.apply(vec![Op::Flush]) {
                tracing::error!(error = %e, "cannot write the last receipts this node signed to its ledger");
            }
        }
    }

    fn apply(&mut self, group: Vec<Op>) -> Result<(), LedgerError> {
        let p = self.path.clone();
        let mut w = self.db.begin_write().map_err(|e| db_error(&p, e))?;
        let durable = group.iter().any(Op::durable) || (self.dirty && group.iter().any(|op| matches!(op, Op::Flush)));
        let lazy = group.iter().any(Op::lazy_write);
        if !durable {
            w.set_durability(redb::Durability::None).map_err(|e| db_error(&p, e))?;
        }
        let mut replies = Vec::with_capacity(group.len());
        let mut own_replies = Vec::new();
        {
            let mut receipts = w.open_table(RECEIPTS).map_err(|e| db_error(&p, e))?;
            let mut claims = w.open_table(CLAIMS).map_err(|e| db_error(&p, e))?;
            let mut own = w.open_table(OWN_RECEIPTS).map_err(|e| db_error(&p, e))?;
            // Claims whose new latest receipt is only in the cache: a claim's record is written once per group,
            // however many of its receipts the group holds, and before anything reads the table.
            let mut unwritten: HashSet<ClaimId> = HashSet::new();
            for op in group {
                if matches!(op, Op::Pending(..) | Op::MarkSettled(..) | Op::MarkRefused(..) | Op::Claims(_)) {
                    self.write_claims(&mut claims, &mut unwritten)?;
                }
                match op {
                    Op::Commit(r, reply) => {
                        let claim = r.receipt.claim;
                        if let std::collections::hash_map::Entry::Vacant(slot) = self.cache.entry(claim) {
                            if let Some(rec) = read_claim(&claims, &p, claim)? {
                                slot.insert(rec);
                            }
                        }
                        let prev = self.cache.get(&claim);
                        let verdict = check_successor(prev.map(|rec| &rec.latest), &r);
                        if verdict.is_ok() {
                            let rec = ClaimRecord {
                                latest: (*r).clone(),
                                settled: prev.and_then(|rec| rec.settled.clone()),
                                refused: prev.and_then(|rec| rec.refused.clone()),
                            };
                            receipts.insert(self.next_receipt, r.encode().as_slice()).map_err(|e| db_error(&p, e))?;
                            self.next_receipt += 1;
                            self.cache.insert(claim, rec);
                            unwritten.insert(claim);
                        }
                        replies.push((reply, verdict));
                    }
                    Op::RecordOwn(r) => {
                        let rec = OwnReceipt { receipt: *r, acked: false };
                        let key = (rec.receipt.receipt.claim, rec.receipt.receipt.seq);
                        own.insert(key, rec.encode().as_slice()).map_err(|e| db_error(&p, e))?;
                    }
                    Op::Flush => {}
                    Op::Barrier(reply) | Op::Close(reply) => own_replies.push(reply),
                    Op::Pending(reply) => {
                        let mut out = vec![];
                        for rec in read_claims(&claims, &p)? {
                            let rec = rec?;
                            if rec.is_pending() || rec.is_short() {
                                out.push(rec);
                            }
                        }
                        let _ = reply.send(out);
                    }
                    Op::MarkSettled(list, block_number, block_hash, reply) => {
                        for s in list {
                            let Some(mut rec) = read_claim(&claims, &p, s.claim)? else { continue };
                            // The same seq again when a top-up paid a shortfall; the paid total only grows.
                            if rec.settled.as_ref().is_none_or(|old| old.seq <= s.seq) {
                                let before = rec.settled.as_ref().map_or(0, |old| old.operator_paid);
                                let paid_before = rec.settled.as_ref().map_or(0, |old| old.amount);
                                rec.settled = Some(Settlement {
                                    seq: s.seq,
                                    amount: s.amount.max(paid_before),
                                    operator_paid: s
                                        .operator_total
                                        .unwrap_or(0)
                                        .max(before.saturating_add(s.operator_paid)),
                                    block_number,
                                    block_hash,
                                });
                                claims.insert(s.claim, rec.encode().as_slice()).map_err(|e| db_error(&p, e))?;
                                self.cache.insert(s.claim, rec);
                            }
                        }
                        own_replies.push(reply);
                    }
                    Op::MarkRefused(claim, refusal, reply) => {
                        if let Some(mut rec) = read_claim(&claims, &p, claim)? {
                            rec.refused = Some(refusal);
                            claims.insert(claim, rec.encode().as_slice()).map_err(|e| db_error(&p, e))?;
                            self.cache.insert(claim, rec);
                        }
                        own_replies.push(reply);
                    }
                    Op::Claims(reply) => {
                        let _ = reply.send(read_claims(&claims, &p)?.collect::<Result<_, _>>()?);
                    }
                    Op::Latest(claim, reply) => {
                        let latest = match self.cache.get(&claim) {
                            Some(rec) => Some(rec.latest.clone()),
                            None => read_claim(&claims, &p, claim)?.map(|rec| rec.latest),
                        };
                        let _ = reply.send(latest);
                    }
                    Op::MarkAcked(claim, seq) => {
                        let current = own.get((claim, seq)).map_err(|e| db_error(&p, e))?.map(|v| v.value().to_vec());
                        if let Some(bytes) = current {
                            let mut rec = OwnReceipt::decode(&mut bytes.as_slice())
                                .map_err(|e| LedgerError::Corrupt(e.to_string()))?;
                            rec.acked = true;
                            own.insert((claim, seq), rec.encode().as_slice()).map_err(|e| db_error(&p, e))?;
                        }
                    }
                }
            }
            self.write_claims(&mut claims, &mut unwritten)?;
        }
        w.commit().map_err(|e| db_error(&p, e))?;
        self.dirty = if durable { false } else { self.dirty || lazy };
        for (reply, verdict) in replies {
            let _ = reply.send(verdict);
        }
        for reply in own_replies {
            let _ = reply.send(());
        }
        Ok(())
    }

    fn write_claims(
        &self,
        claims: &mut redb::Table<[u8; 16], &[u8]>,
        unwritten: &mut HashSet<ClaimId>,
    ) -> Result<(), LedgerError> {
        for claim in unwritten.drain() {
            if let Some(rec) = self.cache.get(&claim) {
                claims.insert(claim, rec.encode().as_slice()).map_err(|e| db_error(&self.path, e))?;
            }
        }
        Ok(())
    }
}

/// Every claim record, in key order.
fn read_claims<'t>(
    claims: &'t impl ReadableTable<[u8; 16], &'static [u8]>,
    path: &'t Path,
) -> Result<impl Iterator<Item = Result<ClaimRecord, LedgerError>> + 't, LedgerError> {
    Ok(claims.iter().map_err(|e| db_error(path, e))?.map(move |item| {
        let (_, v) = item.map_err(|e| db_error(path, e))?;
        ClaimRecord::decode(&mut v.value()).map_err(|e| LedgerError::Corrupt(e.to_string()))
    }))
}

fn read_claim(
    claims: &redb::Table<[u8; 16], &[u8]>,
    path: &Path,
    claim: ClaimId,
) -> Result<Option<ClaimRecord>, LedgerError> {
    match claims.get(claim).map_err(|e| db_error(path, e))? {
        Some(v) => Ok(Some(ClaimRecord::decode(&mut v.value()).map_err(|e| LedgerError::Corrupt(e.to_string()))?)),
        None => Ok(None),
    }
}

/// A receipt may follow the claim's previous one only if it is for the same parties and grows every total.
fn check_successor(prev: Option<&SignedReceipt>, next: &SignedReceipt) -> Result<(), Rejection> {
    let Some(prev) = prev else { return Ok(()) };
    let (p, n) = (&prev.receipt, &next.receipt);
    if n.seq <= p.seq {
        return Err(Rejection {
            code: Code::Replayed,
            reason: format!("seq {} is not above the last accepted seq {}", n.seq, p.seq),
        });
    }
    if (n.domain, n.relay, n.viewer, n.content) != (p.domain, p.relay, p.viewer, p.content) {
        return Err(Rejection {
            code: Code::WrongSession,
            reason: "receipt changes the claim's parties or content".into(),
        });
    }
    if n.bytes < p.bytes || n.amount < p.amount || n.tip < p.tip {
        return Err(Rejection {
            code: Code::NotMonotonic,
            reason: format!(
                "totals went down: bytes {}→{}, amount {}→{}, tip {}→{}",
                p.bytes, n.bytes, p.amount, n.amount, p.tip, n.tip
            ),
        });
    }
    Ok(())
}

fn db_error(path: &Path, e: impl Into<redb::Error>) -> LedgerError {
    let e: redb::Error = e.into();
    match e {
        redb::Error::DatabaseAlreadyOpen => LedgerError::InUse(path.to_path_buf()),
        e => LedgerError::Db(path.to_path_buf(), e.to_string()),
    }
}

/// A read-only view of a ledger that no process is writing, for `ferry receipts` and audits.
pub struct LedgerView {
    pub claims: Vec<ClaimRecord>,
    pub receipts: Vec<SignedReceipt>,
    pub own: Vec<OwnReceipt>,
}

impl LedgerView {
    pub fn read(home: &Path) -> Result<LedgerView, LedgerError> {
        let path = home.join(LEDGER_FILE);
        if !path.exists() {
            return Ok(LedgerView { claims: vec![], receipts: vec![], own: vec![] });
        }
        // A writable open repairs a ledger left by a crash; the file lock still refuses a running process's ledger.
        let db = Database::open(&path).map_err(|e| db_error(&path, e))?;
        let r = db.begin_read().map_err(|e| db_error(&path, e))?;
        // A table this ledger does not have (yet, or any more) reads as empty.
        fn values<K: redb::Key + 'static, T: Decode>(
            r: &redb::ReadTransaction,
            table: TableDefinition<K, &[u8]>,
            path: &Path,
        ) -> Result<Vec<T>, LedgerError> {
            let table = match r.open_table(table) {
                Ok(t) => t,
                Err(redb::TableError::TableDoesNotExist(_)) => return Ok(vec![]),
                Err(e) => return Err(db_error(path, e)),
            };
            let mut out = vec![];
            for item in table.iter().map_err(|e| db_error(path, e))? {
                let (_, v) = item.map_err(|e| db_error(path, e))?;
                out.push(T::decode(&mut v.value()).map_err(|e| LedgerError::Corrupt(e.to_string()))?);
            }
            Ok(out)
        }
        let mut receipts: Vec<SignedReceipt> = values(&r, RECEIPTS_BY_SESSION, &path)?;
        receipts.extend(values::<_, SignedReceipt>(&r, RECEIPTS, &path)?);
        let own = values(&r, OWN_RECEIPTS, &path)?;
        let table = r.open_table(CLAIMS).map_err(|e| db_error(&path, e))?;
        let claims = read_claims(&table, &path)?.collect::<Result<_, _>>()?;
        Ok(LedgerView { claims, receipts, own })
    }
}

mod hex_bytes {
    pub fn serialize<S: serde::Serializer>(v: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("0x{}", hex::encode(v)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_primitives::{Domain, Receipt};

    fn receipt(seq: u64, bytes: u64) -> SignedReceipt {
        Receipt {
            domain: Domain::default(),
            claim: [7; 16],
            relay: [1; 32],
            viewer: [2; 32],
            content: [3; 32],
            seq,
            bytes,
            amount: bytes as u128,
            chunk_chain: [0; 32],
            tip: 0,
        }
        .sign(&[5; 32])
    }

    #[tokio::test]
    async fn committed_receipts_are_checked_and_persist() {
        let dir = tempfile::tempdir().unwrap();
        {
            let ledger = Ledger::open(dir.path()).unwrap();
            assert_eq!(ledger.commit(receipt(1, 100)).await.unwrap(), Ok(()));
            assert_eq!(ledger.commit(receipt(2, 200)).await.unwrap(), Ok(()));
            assert_eq!(ledger.commit(receipt(2, 300)).await.unwrap().unwrap_err().code, Code::Replayed);
            assert_eq!(ledger.commit(receipt(3, 150)).await.unwrap().unwrap_err().code, Code::NotMonotonic);
        }
        // The writer thread holds the database until its channel closes.
        for _ in 0..50 {
            if let Ok(view) = LedgerView::read(dir.path()) {
                assert_eq!(view.receipts.len(), 2);
                assert_eq!(view.claims.len(), 1);
                assert_eq!(view.claims[0].latest.receipt.seq, 2);
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        panic!("ledger never became readable");
    }

    #[test]
    fn a_claim_settled_for_less_than_it_claims_is_short() {
        let settled = |amount| Settlement { seq: 2, amount, operator_paid: 0, block_number: 1, block_hash: [0; 32] };
        let rec = |s| ClaimRecord { latest: receipt(2, 200), settled: Some(s), refused: None };
        assert!(rec(settled(150)).is_short(), "paid 150 of 200");
        assert!(!rec(settled(200)).is_short() && !rec(settled(200)).is_pending(), "paid in full");
        let older = Settlement { seq: 1, ..settled(100) };
        assert!(!rec(older).is_short() && rec(settled(100)).is_short(), "a newer receipt is pending, not short");
    }

    /// A settlement the ledger never recorded (the relay died between the chain's finality and its own write)
    /// shows in the operator's figure once the chain's record of the claim is read, and later ones add to it.
    #[tokio::test]
    async fn the_operators_part_follows_the_chains_record_of_a_claim() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(dir.path()).unwrap();
        let settle = |seq, operator_paid, operator_total| Settled {
            claim: [7; 16],
            seq,
            amount: 100 * seq as u128,
            operator_paid,
            operator_total,
        };
        assert_eq!(ledger.commit(receipt(1, 100)).await.unwrap(), Ok(()));
        ledger.mark_settled(vec![settle(1, 30, None)], 1, [0; 32]).await.unwrap();
        assert_eq!(ledger.commit(receipt(2, 200)).await.unwrap(), Ok(()));
        // Seq 2 was settled on chain, paying the operator 40 more, and only its resubmission was seen.
        ledger.mark_settled(vec![settle(2, 0, Some(70))], 2, [0; 32]).await.unwrap();
        assert_eq!(ledger.commit(receipt(3, 300)).await.unwrap(), Ok(()));
        ledger.mark_settled(vec![settle(3, 25, None)], 3, [0; 32]).await.unwrap();
        ledger.close().await.unwrap();
        let view = LedgerView::read(dir.path()).unwrap();
        assert_eq!(view.claims[0].settled.as_ref().map(|s| s.operator_paid), Some(95));
    }

    /// `close` answers only once the file is free, even when an operation arrives right after it (within the
    /// writer's wait for company), and that operation is answered, not dropped.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn close_frees_the_file_even_with_an_operation_right_behind_it() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(dir.path()).unwrap();
        assert_eq!(ledger.commit(receipt(1, 100)).await.unwrap(), Ok(()));
        let other = ledger.clone();
        let late = tokio::task::spawn_blocking(move || {
            std::thread::sleep(std::time::Duration::from_micros(200));
            futures::executor::block_on(other.commit(receipt(2, 200)))
        });
        ledger.close().await.unwrap();
        assert!(LedgerView::read(dir.path()).is_ok(), "the ledger is still open after close answered");
        // Committed before the close was taken, or refused because the ledger stopped: never left unanswered.
        match late.await.unwrap() {
            Ok(verdict) => assert_eq!(verdict, Ok(())),
            Err(e) => assert!(matches!(e, LedgerError::Stopped), "{e}"),
        }
    }

    /// A ledger written before receipts were keyed by arrival keeps every receipt: a view reads the old table
    /// first, then the receipts accepted since.
    #[tokio::test]
    async fn receipts_kept_by_session_survive_the_change_to_arrival_order() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = Database::create(dir.path().join(LEDGER_FILE)).unwrap();
            let w = db.begin_write().unwrap();
            {
                let mut old = w.open_table(RECEIPTS_BY_SESSION).unwrap();
                for (seq, bytes) in [(1, 100), (2, 200)] {
                    old.insert(([7; 16], seq), receipt(seq, bytes).encode().as_slice()).unwrap();
                }
                let mut claims = w.open_table(CLAIMS).unwrap();
                let rec = ClaimRecord { latest: receipt(2, 200), settled: None, refused: None };
                claims.insert([7; 16], rec.encode().as_slice()).unwrap();
            }
            w.commit().unwrap();
        }
        let seqs = |view: &LedgerView| view.receipts.iter().map(|r| r.receipt.seq).collect::<Vec<_>>();
        assert_eq!(seqs(&LedgerView::read(dir.path()).unwrap()), vec![1, 2]);
        {
            let ledger = Ledger::open(dir.path()).unwrap();
            assert_eq!(ledger.commit(receipt(2, 200)).await.unwrap().unwrap_err().code, Code::Replayed);
            assert_eq!(ledger.commit(receipt(3, 300)).await.unwrap(), Ok(()));
            ledger.close().await.unwrap();
        }
        assert_eq!(seqs(&LedgerView::read(dir.path()).unwrap()), vec![1, 2, 3]);
        // Opened again, new receipts still follow.
        {
            let ledger = Ledger::open(dir.path()).unwrap();
            assert_eq!(ledger.commit(receipt(4, 400)).await.unwrap(), Ok(()));
            ledger.close().await.unwrap();
        }
        assert_eq!(seqs(&LedgerView::read(dir.path()).unwrap()), vec![1, 2, 3, 4]);
    }
}
