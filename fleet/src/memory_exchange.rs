//! [`MemoryExchange`]: evidence batches between nodes of one process
//! (replays and tests), behind the same interface as Redis Streams.

use crate::evidence::EvidenceExchange;
use crate::store::StoreError;
use parking_lot::Mutex;

/// Batches held in this process (replays, tests); a batch is dropped once
/// every other node has fetched it.
pub struct MemoryExchange {
    inner: Mutex<MemoryLog>,
}

struct MemoryLog {
    /// Per publisher: the index of its oldest batch kept, and the batches.
    log: Vec<(usize, std::collections::VecDeque<Vec<u8>>)>,
    /// Per reader, per publisher: the index of the next batch to read.
    next: Vec<Vec<usize>>,
    /// Per reader: its own batches to read again after a resume.
    again: Vec<Vec<Vec<u8>>>,
}

impl MemoryExchange {
    /// An exchange between `nodes` nodes (numbered from 0).
    pub fn new(nodes: u32) -> MemoryExchange {
        let n = nodes as usize;
        MemoryExchange {
            inner: Mutex::new(MemoryLog {
                log: (0..n).map(|_| (0, Default::default())).collect(),
                next: vec![vec![0; n]; n],
                again: vec![Vec::new(); n],
            }),
        }
    }

    /// Batches held (not yet fetched by every other node).
    pub fn held(&self) -> usize {
        self.inner.lock().log.iter().map(|(_, b)| b.len()).sum()
    }
}

impl EvidenceExchange for MemoryExchange {
    fn publish(&self, node: u32, batch: Vec<u8>) -> Result<(), StoreError> {
        let mut m = self.inner.lock();
        let (_, batches) = m
            .log
            .get_mut(node as usize)
            .ok_or_else(|| StoreError::BadReply(format!("no node {node}")))?;
        batches.push_back(batch);
        Ok(())
    }

    fn fetch(&self, node: u32) -> Result<Vec<(u32, Vec<u8>)>, StoreError> {
        let mut m = self.inner.lock();
        let me = node as usize;
        if me >= m.next.len() {
            return Err(StoreError::BadReply(format!("no node {node}")));
        }
        let mut out: Vec<(u32, Vec<u8>)> = std::mem::take(&mut m.again[me])
            .into_iter()
            .map(|b| (node, b))
            .collect();
        let n = m.log.len();
        for p in (0..n).filter(|&p| p != me) {
            let (base, ref batches) = m.log[p];
            let from = m.next[me][p].max(base);
            let end = base + batches.len();
            out.extend(
                batches
                    .iter()
                    .skip(from - base)
                    .map(|b| (p as u32, b.clone())),
            );
            m.next[me][p] = end;
            // Drop what every other node has read.
            let done = (0..n)
                .filter(|&r| r != p)
                .map(|r| m.next[r][p])
                .min()
                .unwrap_or(end);
            let (base, batches) = &mut m.log[p];
            while *base < done && !batches.is_empty() {
                batches.pop_front();
                *base += 1;
            }
        }
        Ok(out)
    }

    fn position(&self, node: u32) -> Vec<String> {
        let m = self.inner.lock();
        let me = node as usize;
        let Some(next) = m.next.get(me) else {
            return Vec::new();
        };
        (0..m.log.len())
            .map(|p| {
                // Its own: the count it published.
                let at = if p == me {
                    m.log[p].0 + m.log[p].1.len()
                } else {
                    next[p]
                };
                at.to_string()
            })
            .collect()
    }

    fn resume(&self, node: u32, position: &[String]) -> Result<usize, StoreError> {
        let mut m = self.inner.lock();
        let me = node as usize;
        let n = m.log.len();
        if me >= n || position.len() != n {
            return Err(StoreError::BadReply(format!(
                "a position of {} publishers for node {node} of {n}",
                position.len()
            )));
        }
        let mut at = Vec::with_capacity(n);
        for p in position {
            at.push(p.parse::<usize>().map_err(|_| {
                StoreError::BadReply(format!("a position {p:?} that is not a batch count"))
            })?);
        }
        // Its own batches still held (those every other node read are gone).
        let (base, batches) = &m.log[me];
        let again: Vec<Vec<u8>> = batches
            .iter()
            .skip(at[me].saturating_sub(*base))
            .cloned()
            .collect();
        let count = again.len();
        for (p, &a) in at.iter().enumerate() {
            if p != me {
                m.next[me][p] = a;
            }
        }
        m.again[me] = again;
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_memory_exchange_keeps_each_batch_until_every_other_node_has_read_it() {
        let x = MemoryExchange::new(3);
        x.publish(0, vec![1]).unwrap();
        x.publish(0, vec![2]).unwrap();
        x.publish(2, vec![9]).unwrap();
        assert_eq!(
            x.fetch(1).unwrap(),
            vec![(0, vec![1]), (0, vec![2]), (2, vec![9])]
        );
        assert_eq!(x.held(), 3);
        assert_eq!(x.fetch(2).unwrap(), vec![(0, vec![1]), (0, vec![2])]);
        assert_eq!(x.held(), 1, "node 0's batches read by 1 and 2");
        assert_eq!(x.fetch(0).unwrap(), vec![(2, vec![9])]);
        assert_eq!(x.held(), 0);
        assert!(x.fetch(1).unwrap().is_empty());
        assert!(x.publish(5, vec![]).is_err());
    }
}
