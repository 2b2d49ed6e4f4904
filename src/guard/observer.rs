//! Recording in the background (`[observe] mode = "background"`): a
//! request's thread copies the request into a bounded queue and returns
//! its verdict; observer threads record it (link, score, judge crowds).
//!
//! - **Bounded.** Each of `SHARDS` queues holds `observe.queue / SHARDS`
//!   requests. A request goes to its thread's queue (so that one thread's
//!   requests are recorded in order), or, when that one is full or its
//!   lock stays taken, the next with room whose lock is free (recorded out
//!   of turn, as another thread's would be); one that finds none is
//!   recorded on its own thread
//!   instead: nothing is dropped, and under overload the cost simply
//!   returns to the request threads. A request thread never waits for a
//!   queue's lock.
//! - **No allocation once warm.** A slot keeps its buffers between uses
//!   (one giving back what a prompt larger than `KEEP_BYTES` needed); the
//!   observer swaps the slot for its own scratch copy, so the queue's lock
//!   is held for a copy of the request or a swap, never while recording.
//! - **No wake-ups on the request path.** An idle observer naps, for at
//!   most `MAX_NAP`, rather than be woken by a system call per request;
//!   that bounds how long a request waits to be recorded when traffic is
//!   quiet (under load the observers do not nap).
//! - **Nothing lost.** [`Observer::flush`] records everything queued (the
//!   caller helping) and waits for what observers hold; the guard flushes
//!   before a snapshot, a merge, a restore, `maintain` and `explain`, and
//!   dropping the guard records what is left before the threads end.

use super::evidence::Evidence;
use crate::request::{Request, MAX_FINGERPRINTS};
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Queues, so that request threads on different cores rarely share one.
const SHARDS: usize = 8;
/// A slot gives its text buffer back after a request larger than this.
const KEEP_BYTES: usize = 64 * 1024;
/// The longest an idle observer naps before looking again.
const MAX_NAP: Duration = Duration::from_micros(500);
/// Attempts at a request thread's own queue's lock before it tries the next
/// queue (about a microsecond of spinning: an observer holds the lock for
/// tens of nanoseconds, unless it is descheduled meanwhile).
const HOME_TRIES: usize = 64;
/// Requests an observer takes from one queue before looking at the next.
const BATCH: usize = 32;

/// A byte range of [`Copied::text`].
type Span = (usize, usize);

/// A request copied for recording later.
#[derive(Default)]
struct Copied {
    now: f64,
    hash: u64,
    input_tokens: u32,
    max_tokens: u32,
    text: String,
    account: Span,
    system: Option<Span>,
    prompt: Option<Span>,
    model: Option<Span>,
    fingerprints: Vec<(Span, Span)>,
}

fn push(text: &mut String, s: &str) -> Span {
    let start = text.len();
    text.push_str(s);
    (start, text.len())
}

impl Copied {
    fn fill(&mut self, req: &Request<'_>, hash: u64, now: f64) {
        let t = &mut self.text;
        t.clear();
        self.now = now;
        self.hash = hash;
        self.input_tokens = req.input_tokens;
        self.max_tokens = req.max_tokens;
        self.account = push(t, req.account);
        self.system = req.system.map(|s| push(t, s));
        self.prompt = req.prompt.map(|s| push(t, s));
        self.model = req.model.map(|s| push(t, s));
        self.fingerprints.clear();
        for (k, v) in req.fingerprints {
            let k = push(t, k);
            let v = push(t, v);
            self.fingerprints.push((k, v));
        }
    }

    fn record(&mut self, ev: &Evidence) {
        {
            let text = self.text.as_str();
            let s = |(a, b): Span| &text[a..b];
            let mut inline = [("", ""); MAX_FINGERPRINTS];
            let spill: Vec<(&str, &str)>;
            let fingerprints: &[(&str, &str)] = if self.fingerprints.len() <= MAX_FINGERPRINTS {
                for (slot, &(k, v)) in inline.iter_mut().zip(&self.fingerprints) {
                    *slot = (s(k), s(v));
                }
                &inline[..self.fingerprints.len()]
            } else {
                // Past the contract's limit: linked all the same, as inline.
                spill = self
                    .fingerprints
                    .iter()
                    .map(|&(k, v)| (s(k), s(v)))
                    .collect();
                &spill
            };
            let req = Request {
                account: s(self.account),
                fingerprints,
                prompt: self.prompt.map(s),
                system: self.system.map(s),
                model: self.model.map(s),
                input_tokens: self.input_tokens,
                max_tokens: self.max_tokens,
            };
            ev.record(&req, self.hash, self.now, None);
        }
        if self.text.capacity() > KEEP_BYTES {
            self.text = String::new();
        }
    }
}

/// One bounded queue: a ring of slots.
struct Ring {
    slots: Box<[Copied]>,
    head: usize,
    len: usize,
    /// Requests ever queued here.
    queued: u64,
}

/// A queue and how many of its requests have been recorded, on a cache
/// line of its own.
#[repr(align(128))]
struct Shard {
    ring: Mutex<Ring>,
    recorded: AtomicU64,
}

/// An observer thread's state: odd while it may hold a request (one more
/// at each start and end of a turn), so that [`Observer::flush`] can wait
/// for exactly the requests taken before it looked.
#[repr(align(128))]
#[derive(Default)]
struct Turns(AtomicU64);

struct Queues {
    shards: [Shard; SHARDS],
    turns: Box<[Turns]>,
    stop: AtomicBool,
    /// Requests that found their queue full.
    overflowed: AtomicU64,
}

impl Queues {
    /// Moves the oldest request of shard `i` into `into`, if there is one.
    fn take(&self, i: usize, into: &mut Copied) -> bool {
        let mut ring = self.shards[i].ring.lock();
        if ring.len == 0 {
            return false;
        }
        let head = ring.head;
        std::mem::swap(&mut ring.slots[head], into);
        ring.head = (head + 1) % ring.slots.len();
        ring.len -= 1;
        true
    }

    /// Records up to `batch` requests of shard `i` on this thread; how many.
    fn record_some(&self, ev: &Evidence, i: usize, batch: usize, scratch: &mut Copied) -> usize {
        let mut n = 0;
        while n < batch && self.take(i, scratch) {
            scratch.record(ev);
            self.shards[i].recorded.fetch_add(1, Ordering::Release);
            n += 1;
        }
        n
    }
}

/// The queues and the observer threads (see the module docs).
pub(crate) struct Observer {
    queues: Arc<Queues>,
    evidence: Arc<Evidence>,
    threads: Vec<JoinHandle<()>>,
}

static NEXT_SHARD: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// The queue this thread's requests go to.
    static SHARD: usize = NEXT_SHARD.fetch_add(1, Ordering::Relaxed) % SHARDS;
}

impl Observer {
    /// Queues of `capacity` requests in all, and `threads` observers
    /// recording into `evidence`; an error if a thread cannot be started.
    pub fn start(
        evidence: Arc<Evidence>,
        threads: usize,
        capacity: usize,
    ) -> Result<Observer, String> {
        let per = (capacity / SHARDS).max(1);
        let queues = Arc::new(Queues {
            turns: (0..threads).map(|_| Turns::default()).collect(),
            shards: std::array::from_fn(|_| Shard {
                ring: Mutex::new(Ring {
                    slots: (0..per).map(|_| Copied::default()).collect(),
                    head: 0,
                    len: 0,
                    queued: 0,
                }),
                recorded: AtomicU64::new(0),
            }),
            stop: AtomicBool::new(false),
            overflowed: AtomicU64::new(0),
        });
        let mut observer = Observer {
            queues,
            evidence,
            threads: Vec::with_capacity(threads),
        };
        for t in 0..threads {
            let queues = observer.queues.clone();
            let evidence = observer.evidence.clone();
            let handle = std::thread::Builder::new()
                .name(format!("ringfence-observer-{t}"))
                .spawn(move || observe(&queues, &evidence, t))
                .map_err(|e| format!("cannot start observer thread {t}: {e}"))?;
            observer.threads.push(handle);
        }
        Ok(observer)
    }

    /// Queues `req` for recording; `false` if no queue had room (the
    /// caller records it itself). It never blocks on a lock: its thread's
    /// queue is tried for a moment (an observer holds it only to swap one
    /// slot out), then, if it is still locked (its observer descheduled
    /// while holding it) or full, the next queues in turn.
    pub fn push(&self, req: &Request<'_>, hash: u64, now: f64) -> bool {
        let home = SHARD.with(|s| *s);
        for k in 0..SHARDS {
            let shard = &self.queues.shards[(home + k) % SHARDS];
            let tries = if k == 0 { HOME_TRIES } else { 1 };
            let Some(mut ring) = (0..tries).find_map(|_| {
                let ring = shard.ring.try_lock();
                if ring.is_none() {
                    std::hint::spin_loop();
                }
                ring
            }) else {
                continue;
            };
            let cap = ring.slots.len();
            if ring.len == cap {
                continue;
            }
            let at = (ring.head + ring.len) % cap;
            ring.slots[at].fill(req, hash, now);
            ring.len += 1;
            ring.queued += 1;
            return true;
        }
        self.queues.overflowed.fetch_add(1, Ordering::Relaxed);
        false
    }

    /// Requests queued and not yet recorded (an estimate while requests flow).
    pub fn backlog(&self) -> u64 {
        self.queues
            .shards
            .iter()
            .map(|s| {
                let queued = s.ring.lock().queued;
                queued.saturating_sub(s.recorded.load(Ordering::Acquire))
            })
            .sum()
    }

    /// Requests that found their queue full (and were recorded on their
    /// own thread).
    pub fn overflowed(&self) -> u64 {
        self.queues.overflowed.load(Ordering::Relaxed)
    }

    /// Records everything queued before this call: this thread records what
    /// is still queued, then waits for the observers to finish the requests
    /// they took before it looked.
    pub fn flush(&self) {
        let mut scratch = Copied::default();
        for i in 0..SHARDS {
            while self
                .queues
                .record_some(&self.evidence, i, usize::MAX, &mut scratch)
                > 0
            {}
        }
        // Every request queued before the call has been taken. An observer
        // between turns holds none of them; one in a turn may.
        for t in self.queues.turns.iter() {
            let seen = t.0.load(Ordering::Acquire);
            if seen % 2 == 1 {
                while t.0.load(Ordering::Acquire) == seen {
                    std::thread::yield_now();
                }
            }
        }
    }
}

impl Drop for Observer {
    /// Stops the observers once they have recorded everything queued.
    fn drop(&mut self) {
        self.queues.stop.store(true, Ordering::Release);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        // Whatever a thread that failed to start would have taken.
        self.flush();
    }
}

/// An observer thread: takes requests from every queue in turn, naps
/// (longer while nothing comes, up to `MAX_NAP`) when all are empty, and
/// ends when told to once all are empty.
fn observe(queues: &Queues, evidence: &Evidence, me: usize) {
    let mut scratch = Copied::default();
    let mut nap = Duration::from_micros(10);
    let turns = &queues.turns[me].0;
    loop {
        let mut n = 0;
        turns.fetch_add(1, Ordering::AcqRel);
        for k in 0..SHARDS {
            n += queues.record_some(evidence, (me + k) % SHARDS, BATCH, &mut scratch);
        }
        turns.fetch_add(1, Ordering::AcqRel);
        if n > 0 {
            nap = Duration::from_micros(10);
            continue;
        }
        if queues.stop.load(Ordering::Acquire) {
            return;
        }
        std::thread::sleep(nap);
        nap = (nap * 2).min(MAX_NAP);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guard::{Guard, GuardConfig};

    fn request<'a>(account: &'a str, fps: &'a [(&'a str, &'a str)]) -> Request<'a> {
        Request {
            account,
            fingerprints: fps,
            prompt: Some("a prompt of a few words"),
            system: Some("a system prompt"),
            model: Some("m"),
            input_tokens: 7,
            max_tokens: 9,
        }
    }

    /// With no observer thread, the queues take their capacity and refuse
    /// the next request; a flush records everything, every field intact.
    #[test]
    fn a_full_queue_refuses_and_a_flush_records_everything() {
        let guard = Guard::new(GuardConfig::for_accounts(1000));
        let observer = Observer::start(guard.ev.clone(), 0, 64).unwrap();
        let names: Vec<String> = (0..65).map(|i| format!("acct-{i}")).collect();
        let fps = [("payment", "card-1"), ("ip", "10.0.0.1")];
        let taken = names
            .iter()
            .take_while(|n| observer.push(&request(n, &fps), guard.ev.linker.account_hash(n), 5.0))
            .count();
        assert_eq!(taken, 64);
        assert_eq!(observer.overflowed(), 1);
        assert_eq!(observer.backlog(), taken as u64);
        observer.flush();
        assert_eq!(observer.backlog(), 0);
        let (first, last) = (&names[0], &names[taken - 1]);
        let a = guard.ev.linker.cluster_of(first).unwrap();
        assert_eq!(a, guard.ev.linker.cluster_of(last).unwrap());
        assert_eq!(a.size, taken as u32);
        assert!(guard.ev.linker.cluster_of(&names[taken]).is_none());
    }

    #[test]
    fn more_fingerprints_than_the_contract_allows_are_all_copied() {
        let values: Vec<String> = (0..MAX_FINGERPRINTS + 3).map(|i| format!("v{i}")).collect();
        let fps: Vec<(&str, &str)> = values.iter().map(|v| ("ip", v.as_str())).collect();
        let mut c = Copied::default();
        c.fill(&request("a", &fps), 1, 2.0);
        assert_eq!(c.fingerprints.len(), fps.len());
        let (k, v) = c.fingerprints[MAX_FINGERPRINTS + 2];
        assert_eq!((&c.text[k.0..k.1], &c.text[v.0..v.1]), ("ip", "v66"));
    }
}
