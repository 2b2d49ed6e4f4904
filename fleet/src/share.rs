//! A gateway node's side of shared evidence: what it decided waits in a
//! bounded outbox until its sync publishes it, and each sync records what
//! the other nodes published (see `evidence`).

use crate::evidence::{encode_batch, receive, EvidenceExchange, Observation, Seen};
use parking_lot::Mutex;
use ringfence::guard::{Guard, Request};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

/// Counts of a node's shared evidence (monotonic).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ShareStats {
    /// Requests this node published.
    pub published: u64,
    /// Answers (to requests it published) it published.
    pub answers_published: u64,
    /// Requests of other nodes it recorded.
    pub received: u64,
    /// Answers of other nodes it recorded.
    pub answers_received: u64,
    /// Batches from other nodes skipped because they did not decode.
    pub bad_batches: u64,
    /// Requests dropped from a full outbox while the store was away.
    pub dropped: u64,
    /// Publishes or fetches that failed (kept and tried again).
    pub errors: u64,
    /// Bytes of the batches this node published.
    pub bytes_published: u64,
}

impl ShareStats {
    /// The sum of two nodes' counts.
    pub fn plus(self, o: ShareStats) -> ShareStats {
        ShareStats {
            published: self.published + o.published,
            answers_published: self.answers_published + o.answers_published,
            received: self.received + o.received,
            answers_received: self.answers_received + o.answers_received,
            bad_batches: self.bad_batches + o.bad_batches,
            dropped: self.dropped + o.dropped,
            errors: self.errors + o.errors,
            bytes_published: self.bytes_published + o.bytes_published,
        }
    }
}

/// A node's side of shared evidence: its outbox, its place in the
/// exchange, and its counts.
pub struct EvidenceLink {
    exchange: Arc<dyn EvidenceExchange>,
    index: u32,
    outbox: Mutex<Vec<Observation>>,
    max_pending: usize,
    published: AtomicU64,
    answers_published: AtomicU64,
    received: AtomicU64,
    answers_received: AtomicU64,
    bad_batches: AtomicU64,
    dropped: AtomicU64,
    errors: AtomicU64,
    bytes_published: AtomicU64,
    /// Held by a sync and by a snapshot's position, so that a snapshot
    /// never holds a batch its position says is unread.
    syncing: Mutex<()>,
}

impl EvidenceLink {
    /// Node `index`'s link to `exchange`, keeping up to `max_pending`
    /// requests while the exchange is away.
    pub fn new(exchange: Arc<dyn EvidenceExchange>, index: u32, max_pending: usize) -> Self {
        EvidenceLink {
            exchange,
            index,
            outbox: Mutex::new(Vec::new()),
            max_pending: max_pending.max(1),
            published: AtomicU64::new(0),
            answers_published: AtomicU64::new(0),
            received: AtomicU64::new(0),
            answers_received: AtomicU64::new(0),
            bad_batches: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            bytes_published: AtomicU64::new(0),
            syncing: Mutex::new(()),
        }
    }

    /// Keeps `req` (served with `output` tokens, when known) for the next
    /// sync.
    pub fn note(&self, req: &Request<'_>, output: Option<u32>) {
        self.push(Observation::of(req, output));
    }

    fn push(&self, o: Observation) {
        let mut out = self.outbox.lock();
        if out.len() >= self.max_pending {
            // The oldest half goes: the store has been away a while.
            let half = out.len() / 2;
            out.drain(..half);
            self.dropped.fetch_add(half as u64, Relaxed);
        }
        out.push(o);
    }

    /// Keeps the answer of `output` tokens to a request of the account
    /// whose hash is `account` (`Settlement::account`) for the next sync.
    pub fn note_answer(&self, account: u64, input_tokens: u32, output: u32) {
        self.push(Observation::answer(account, input_tokens, output));
    }

    /// Publishes what waits, then records what the others published on
    /// `guard`. Nothing is lost when the store is away: the outbox is
    /// kept (up to `max_pending`) and published at a later sync.
    pub fn sync(&self, guard: &Guard, report: &dyn Fn(&str)) {
        let _one = self.syncing.lock();
        self.publish(guard, report);
        self.receive_on(guard, report);
    }

    /// Runs `snapshot` where no sync can interleave, with this node's
    /// position in the exchange after it (see
    /// [`EvidenceExchange::position`]): the snapshot holds every batch of
    /// the others' that the position says was read, and none after it.
    /// What this node decides while `snapshot` runs is published right
    /// after it and counted as part of it: a restart from this snapshot
    /// reads none of it again (so nothing is counted twice; what the
    /// snapshot missed of it is lost).
    pub fn at_position<T>(
        &self,
        guard: &Guard,
        report: &dyn Fn(&str),
        snapshot: impl FnOnce() -> T,
    ) -> (Vec<String>, T) {
        let _one = self.syncing.lock();
        self.publish(guard, report);
        let taken = snapshot();
        self.publish(guard, report);
        (self.exchange.position(self.index), taken)
    }

    /// Puts this node back at `position` after a restart (see
    /// [`EvidenceExchange::resume`]); the batches are recorded at the
    /// next sync. Returns how many of its own it will read again.
    pub fn resume(&self, position: &[String]) -> Result<usize, crate::StoreError> {
        let _one = self.syncing.lock();
        self.exchange.resume(self.index, position)
    }

    /// Publishes what waits (kept for the next sync if the store is away),
    /// its requests' texts digested by `guard` (see
    /// `Observation::digested`): off the request path, once per request
    /// for the whole fleet.
    pub fn publish(&self, guard: &Guard, report: &dyn Fn(&str)) {
        let batch: Vec<Observation> = std::mem::take(&mut *self.outbox.lock())
            .into_iter()
            .map(|o| o.digested(guard))
            .collect();
        if !batch.is_empty() {
            let bytes = encode_batch(&batch);
            let len = bytes.len() as u64;
            match self.exchange.publish(self.index, bytes) {
                Ok(()) => {
                    self.bytes_published.fetch_add(len, Relaxed);
                    let answers = batch.iter().filter(|o| o.seen == Seen::Answer).count() as u64;
                    self.published
                        .fetch_add(batch.len() as u64 - answers, Relaxed);
                    self.answers_published.fetch_add(answers, Relaxed);
                }
                Err(e) => {
                    self.errors.fetch_add(1, Relaxed);
                    report(&format!(
                        "evidence not published (kept for the next sync): {e}"
                    ));
                    let mut out = self.outbox.lock();
                    let newer = std::mem::take(&mut *out);
                    *out = batch;
                    out.extend(newer);
                }
            }
        }
    }

    /// Records on `guard` what the other nodes published since the last
    /// time.
    pub fn receive_on(&self, guard: &Guard, report: &dyn Fn(&str)) {
        let got = receive(self.exchange.as_ref(), self.index, guard, |from, e| {
            report(&format!("skipped an evidence batch from node {from}: {e}"));
        });
        match got {
            Ok(r) => {
                self.received.fetch_add(r.observed, Relaxed);
                self.answers_received.fetch_add(r.answers, Relaxed);
                self.bad_batches.fetch_add(r.bad_batches, Relaxed);
            }
            Err(e) => {
                self.errors.fetch_add(1, Relaxed);
                report(&format!(
                    "evidence not fetched (tried again at the next sync): {e}"
                ));
            }
        }
    }

    /// The counts so far.
    pub fn stats(&self) -> ShareStats {
        ShareStats {
            published: self.published.load(Relaxed),
            answers_published: self.answers_published.load(Relaxed),
            received: self.received.load(Relaxed),
            answers_received: self.answers_received.load(Relaxed),
            bad_batches: self.bad_batches.load(Relaxed),
            dropped: self.dropped.load(Relaxed),
            errors: self.errors.load(Relaxed),
            bytes_published: self.bytes_published.load(Relaxed),
        }
    }
}
