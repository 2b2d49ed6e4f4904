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
        self.with_conn(|c| {
            redis::pipe()
                .cmd("XADD")
                .arg(&key)
                .arg("MAXLEN")
                .arg("~")
                .arg(self.max_entries)
                .arg("*")
                .arg("b")
                .arg(batch)
                .ignore()
                .cmd("PEXPIRE")
                .arg(&key)
                .arg(ttl_ms)
                .ignore()
                .query::<()>(c)
        })
    }

    fn fetch(&self, node: u32) -> Result<Vec<(u32, Vec<u8>)>, StoreError> {
        let mut out = Vec::new();
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
