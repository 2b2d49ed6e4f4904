//! [`RedisExchange`]: evidence batches between nodes in Redis Streams.

use crate::evidence::EvidenceExchange;
use crate::redis_store::{classify, connect};
use crate::store::StoreError;
use parking_lot::Mutex;
use std::time::Duration;

/// Batches in Redis Streams: one stream per node, `{prefix}:ev:{<node>}`
/// (hash-tagged by node, so Redis Cluster spreads the streams), each
/// trimmed to about `max_entries` batches and expiring `ttl` after its last
/// batch (the guard's evidence horizon). Each batch is one entry.
pub struct RedisExchange {
    client: redis::Client,
    conn: Mutex<Option<redis::Connection>>,
    timeout: Duration,
    prefix: String,
    nodes: u32,
    max_entries: u64,
    ttl: Duration,
    /// Per reader, per publisher: the last entry id read (one exchange may
    /// serve several nodes of one process, as a replay's do).
    cursors: Mutex<Vec<Vec<String>>>,
    /// Per node: its own batches to read again after a resume.
    again: Mutex<Vec<Vec<Vec<u8>>>>,
}

impl RedisExchange {
    /// An exchange between `nodes` nodes through the Redis at `url`.
    pub fn open(
        url: &str,
        prefix: &str,
        nodes: u32,
        timeout: Duration,
        max_entries: u64,
        ttl: Duration,
    ) -> Result<RedisExchange, StoreError> {
        let client = redis::Client::open(url)
            .map_err(|e| StoreError::Unavailable(format!("bad URL {url:?}: {e}")))?;
        Ok(RedisExchange {
            client,
            conn: Mutex::new(None),
            timeout: timeout.max(Duration::from_millis(1)),
            prefix: prefix.to_string(),
            nodes,
            max_entries: max_entries.max(1),
            ttl,
            cursors: Mutex::new(vec![
                vec!["0-0".to_string(); nodes as usize];
                nodes as usize
            ]),
            again: Mutex::new(vec![Vec::new(); nodes as usize]),
        })
    }

    /// The stream of node `node`.
    pub fn stream(&self, node: u32) -> String {
        format!("{}:ev:{{{node}}}", self.prefix)
    }

    fn with_conn<T>(
        &self,
        f: impl FnOnce(&mut redis::Connection) -> redis::RedisResult<T>,
    ) -> Result<T, StoreError> {
        let mut slot = self.conn.lock();
        if slot.is_none() {
            *slot = Some(connect(&self.client, self.timeout)?);
        }
        let conn = slot.as_mut().expect("connected above");
        f(conn).map_err(|e| {
            let (err, lost) = classify(e);
            if lost {
                *slot = None;
            }
            err
        })
    }
}

impl EvidenceExchange for RedisExchange {
    fn publish(&self, node: u32, batch: Vec<u8>) -> Result<(), StoreError> {
        let key = self.stream(node);
        let ttl_ms = u64::try_from(self.ttl.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        let (id,): (String,) = self.with_conn(|c| {
            redis::pipe()
                .cmd("XADD")
                .arg(&key)
                .arg("MAXLEN")
                .arg("~")
                .arg(self.max_entries)
                .arg("*")
                .arg("b")
                .arg(batch)
                .cmd("PEXPIRE")
                .arg(&key)
                .arg(ttl_ms)
                .ignore()
                .query(c)
        })?;
        // Its own place: the last batch it published (for a snapshot).
        if let Some(own) = self
            .cursors
            .lock()
            .get_mut(node as usize)
            .and_then(|c| c.get_mut(node as usize))
        {
            *own = id;
        }
        Ok(())
    }

    fn fetch(&self, node: u32) -> Result<Vec<(u32, Vec<u8>)>, StoreError> {
        let mut out: Vec<(u32, Vec<u8>)> = self
            .again
            .lock()
            .get_mut(node as usize)
            .map(std::mem::take)
            .unwrap_or_default()
            .into_iter()
            .map(|b| (node, b))
            .collect();
        let mut all = self.cursors.lock();
        let cursors = all
            .get_mut(node as usize)
            .ok_or_else(|| StoreError::BadReply(format!("no node {node}")))?;
        // One round trip: every other node's stream, after what was read.
        let publishers: Vec<u32> = (0..self.nodes).filter(|&p| p != node).collect();
        let mut pipe = redis::pipe();
        for &p in &publishers {
            pipe.cmd("XRANGE")
                .arg(self.stream(p))
                .arg(format!("({}", cursors[p as usize]))
                .arg("+");
        }
        let replies: Vec<redis::Value> = self.with_conn(|c| pipe.query(c))?;
        if replies.len() != publishers.len() {
            return Err(StoreError::BadReply(format!(
                "{} replies to {} XRANGEs",
                replies.len(),
                publishers.len()
            )));
        }
        for (&p, reply) in publishers.iter().zip(replies) {
            for (id, batch) in entries(reply)? {
                cursors[p as usize] = id;
                out.push((p, batch));
            }
        }
        Ok(out)
    }

    fn position(&self, node: u32) -> Vec<String> {
        self.cursors
            .lock()
            .get(node as usize)
            .cloned()
            .unwrap_or_default()
    }

    fn resume(&self, node: u32, position: &[String]) -> Result<usize, StoreError> {
        let me = node as usize;
        let n = self.nodes as usize;
        let bad = |why: String| StoreError::BadReply(why);
        if me >= n || position.len() != n {
            return Err(bad(format!(
                "a position of {} publishers for node {node} of {n}",
                position.len()
            )));
        }
        if let Some(p) = position.iter().find(|p| !is_entry_id(p)) {
            return Err(bad(format!("a position {p:?} that is not a stream id")));
        }
        // What it published after its snapshot: read again, once.
        let reply: redis::Value = self.with_conn(|c| {
            redis::cmd("XRANGE")
                .arg(self.stream(node))
                .arg(format!("({}", position[me]))
                .arg("+")
                .query(c)
        })?;
        let own = entries(reply)?;
        let count = own.len();
        let last = own
            .last()
            .map_or(position[me].clone(), |(id, _)| id.clone());
        self.again.lock()[me] = own.into_iter().map(|(_, b)| b).collect();
        // Its own place moves past what it reads again, so that a snapshot
        // taken before it publishes anew does not count those twice.
        let mut all = self.cursors.lock();
        all[me].clone_from_slice(position);
        all[me][me] = last;
        Ok(count)
    }
}

/// Whether `id` is a stream entry id (`<ms>-<seq>`).
fn is_entry_id(id: &str) -> bool {
    id.split_once('-').is_some_and(|(ms, seq)| {
        !ms.is_empty()
            && !seq.is_empty()
            && ms.bytes().all(|b| b.is_ascii_digit())
            && seq.bytes().all(|b| b.is_ascii_digit())
            && ms.len() <= 20
            && seq.len() <= 20
    })
}

/// The (id, batch) entries of an XRANGE reply.
fn entries(reply: redis::Value) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
    use redis::Value;
    let bad = |why: &str| StoreError::BadReply(format!("XRANGE: {why}"));
    let Value::Array(items) = reply else {
        return Err(bad("not an array"));
    };
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let Value::Array(pair) = item else {
            return Err(bad("an entry is not an array"));
        };
        let mut pair = pair.into_iter();
        let id = match pair.next() {
            Some(Value::BulkString(b)) => {
                String::from_utf8(b).map_err(|_| bad("an id is not text"))?
            }
            Some(Value::SimpleString(s)) => s,
            _ => return Err(bad("an entry has no id")),
        };
        let Some(Value::Array(fields)) = pair.next() else {
            return Err(bad("an entry has no fields"));
        };
        // Fields: "b", the batch. An entry of another shape is kept as an
        // empty batch, which the reader counts as bad and skips.
        let batch = match fields.as_slice() {
            [Value::BulkString(k), Value::BulkString(v)] if k == b"b" => v.clone(),
            _ => Vec::new(),
        };
        out.push((id, batch));
    }
    Ok(out)
}
