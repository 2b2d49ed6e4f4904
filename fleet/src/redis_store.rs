//! [`RedisStore`]: the fleet's quotas in Redis or Valkey.

use crate::store::{Grant, QuotaStore, Rule, StoreError, Take, PIPELINE_TAKES};
use parking_lot::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// The GCRA script (see `gcra.lua`): run with `EVALSHA`, loaded on first
/// use and again after a server restart.
pub const GCRA_SCRIPT: &str = include_str!("gcra.lua");

/// Connections kept per store: a request that finds them all busy for
/// the whole timeout falls back instead of queueing.
const POOL: usize = 4;

/// After a failure, requests fall back at once for this long before a
/// connection is tried again (so an unreachable server costs one timeout
/// per second per connection, not one per request).
const RECONNECT_AFTER: Duration = Duration::from_millis(1000);

/// Quotas in Redis or Valkey, one key per quota, run through a script
/// atomically. Every call is bounded by the timeout: connecting, writing
/// and reading.
pub struct RedisStore {
    client: redis::Client,
    script: redis::Script,
    timeout: Duration,
    pool: Vec<Mutex<Option<redis::Connection>>>,
    next: AtomicUsize,
    /// Nanoseconds after `epoch` before which no connection is tried.
    down_until: AtomicU64,
    epoch: Instant,
}

impl RedisStore {
    /// A store at `url` (`redis://host:port/db`); nothing is connected
    /// until the first call.
    pub fn open(url: &str, timeout: Duration) -> Result<RedisStore, StoreError> {
        let client = redis::Client::open(url)
            .map_err(|e| StoreError::Unavailable(format!("bad URL {url:?}: {e}")))?;
        Ok(RedisStore {
            client,
            script: redis::Script::new(GCRA_SCRIPT),
            timeout: timeout.max(Duration::from_millis(1)),
            pool: (0..POOL).map(|_| Mutex::new(None)).collect(),
            next: AtomicUsize::new(0),
            down_until: AtomicU64::new(0),
            epoch: Instant::now(),
        })
    }

    fn since_epoch(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    fn connect(&self) -> Result<redis::Connection, StoreError> {
        if self.since_epoch() < self.down_until.load(Relaxed) {
            return Err(StoreError::Unavailable(
                "down (a connection is tried again each second)".into(),
            ));
        }
        connect(&self.client, self.timeout).inspect_err(|_| self.mark_down())
    }

    fn mark_down(&self) {
        let until = self.since_epoch() + u64::try_from(RECONNECT_AFTER.as_nanos()).unwrap_or(0);
        self.down_until.store(until, Relaxed);
    }
}

/// The script's reply as a grant.
fn grant_of(v: &[i64]) -> Result<Grant, StoreError> {
    if v.len() == 4 && v.iter().all(|&x| x >= 0) {
        Ok(Grant {
            granted: v[0] as u64,
            ahead_us: v[1] as u64,
            retry_us: v[2] as u64,
            repaired: v[3] == 1,
        })
    } else {
        Err(StoreError::BadReply(format!(
            "expected four counts from the GCRA script, got {v:?}"
        )))
    }
}

impl RedisStore {
    /// Runs `f` on a pooled connection (a free one, else the next one
    /// freed before the timeout), connecting it if needed; a lost
    /// connection is dropped and the server marked down for a while.
    fn with_conn<T>(
        &self,
        f: impl FnOnce(&mut redis::Connection) -> redis::RedisResult<T>,
    ) -> Result<T, StoreError> {
        let start = self.next.fetch_add(1, Relaxed);
        let deadline = Instant::now() + self.timeout;
        // A free connection, else wait for one until the deadline.
        let mut slot = None;
        for i in 0..POOL {
            if let Some(g) = self.pool[(start + i) % POOL].try_lock() {
                slot = Some(g);
                break;
            }
        }
        let mut slot = match slot {
            Some(s) => s,
            None => self.pool[start % POOL]
                .try_lock_until(deadline)
                .ok_or_else(|| StoreError::Unavailable("every connection busy".into()))?,
        };
        if slot.is_none() {
            *slot = Some(self.connect()?);
        }
        let conn = slot.as_mut().expect("connected above");
        f(conn).map_err(|e| {
            let (err, lost) = classify(e);
            if lost {
                *slot = None;
                self.mark_down();
            }
            err
        })
    }

    /// One pipeline of `EVALSHA`s; if the server has no script (a restart
    /// flushed it), none ran: it is loaded and the pipeline sent again.
    fn pipeline(&self, takes: &[Take], now_us: u64) -> Result<Vec<Vec<i64>>, StoreError> {
        let hash = self.script.get_hash();
        let mut pipe = redis::pipe();
        for t in takes {
            pipe.cmd("EVALSHA")
                .arg(hash)
                .arg(1)
                .arg(&t.key)
                .arg(t.rule.interval_us.max(1))
                .arg(t.rule.burst)
                .arg(t.want)
                .arg(now_us)
                .arg(t.debit);
        }
        self.with_conn(|c| match pipe.query::<Vec<Vec<i64>>>(c) {
            Err(e) if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) => {
                redis::cmd("SCRIPT")
                    .arg("LOAD")
                    .arg(GCRA_SCRIPT)
                    .query::<String>(c)?;
                pipe.query(c)
            }
            other => other,
        })
    }
}

impl QuotaStore for RedisStore {
    fn take(
        &self,
        key: &str,
        rule: Rule,
        want: u64,
        debit: u64,
        now_us: u64,
    ) -> Result<Grant, StoreError> {
        let v: Vec<i64> = self.with_conn(|conn| {
            self.script
                .key(key)
                .arg(rule.interval_us.max(1))
                .arg(rule.burst)
                .arg(want)
                .arg(now_us)
                .arg(debit)
                .invoke(conn)
        })?;
        grant_of(&v)
    }

    fn take_many(&self, takes: &[Take], now_us: u64) -> Vec<Result<Grant, StoreError>> {
        let mut out = Vec::with_capacity(takes.len());
        for chunk in takes.chunks(PIPELINE_TAKES) {
            match self.pipeline(chunk, now_us) {
                Ok(replies) if replies.len() == chunk.len() => {
                    out.extend(replies.iter().map(|v| grant_of(v)));
                }
                Ok(replies) => {
                    let e = StoreError::BadReply(format!(
                        "{} replies to {} takes",
                        replies.len(),
                        chunk.len()
                    ));
                    out.extend(chunk.iter().map(|_| Err(e.clone())));
                }
                Err(e) => out.extend(chunk.iter().map(|_| Err(e.clone()))),
            }
        }
        out
    }
}

/// A connection to `client` whose connecting, writes and reads are each
/// bounded by `timeout`.
pub(crate) fn connect(
    client: &redis::Client,
    timeout: Duration,
) -> Result<redis::Connection, StoreError> {
    client
        .get_connection_with_timeout(timeout)
        .and_then(|c| {
            c.set_read_timeout(Some(timeout))?;
            c.set_write_timeout(Some(timeout))?;
            Ok(c)
        })
        .map_err(|e| StoreError::Unavailable(e.to_string()))
}

/// A Redis error as the store reports it, and whether the connection is
/// lost: after an I/O error or a timeout its state is unknown (an answer
/// may still come), so it must be dropped.
pub(crate) fn classify(e: redis::RedisError) -> (StoreError, bool) {
    if e.is_io_error() || e.is_timeout() || e.is_connection_dropped() {
        (StoreError::Unavailable(e.to_string()), true)
    } else {
        (StoreError::BadReply(e.to_string()), false)
    }
}
