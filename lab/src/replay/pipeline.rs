//! Replay on several threads: reading and parsing run beside the guard,
//! which still takes every request in the trace's order, so the decisions
//! are the same, byte for byte, with any number of threads.
//!
//! One thread reads the trace into chunks of [`CHUNK_LINES`] lines; the
//! parser threads decode chunks (UTF-8, JSON, the request's strings copied
//! out of the line); the calling thread puts the chunks back in order and
//! replays them, then hands each spent chunk back to the reader to free, so
//! that the guard's thread neither parses nor frees. Channels are bounded,
//! so memory stays at a few chunks per thread however long the trace.

use super::replayer::{decode, DecisionLine, Decoded, Progress, ReplayError, Replayer};
use std::collections::BTreeMap;
use std::io::{self, BufRead};
use std::sync::mpsc::{channel, sync_channel, Receiver};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Lines per chunk.
pub const CHUNK_LINES: usize = 512;

/// Lines as read: the bytes of each, and where each ends in `data`.
struct Raw {
    seq: u64,
    /// The number of its first line.
    first_line: u64,
    data: Vec<u8>,
    ends: Vec<usize>,
}

/// A chunk decoded: each line with its length in bytes.
struct Parsed {
    seq: u64,
    lines: Vec<(Decoded<'static>, u64)>,
}

impl Replayer {
    /// [`Replayer::replay_reader`] with reading and parsing on `threads - 1`
    /// threads of their own (and a reader), the guard on the calling
    /// thread; `threads` ≤ 1 is `replay_reader` itself. The decisions,
    /// their order, the counts and the report are the same whatever
    /// `threads` is (only the time differs).
    pub fn replay_reader_threads<R: BufRead + Send>(
        &mut self,
        reader: R,
        threads: usize,
        mut on_decision: impl FnMut(&DecisionLine<'_>) -> io::Result<()>,
        mut progress: impl FnMut(Progress),
    ) -> Result<(), ReplayError> {
        if threads <= 1 {
            return self.replay_reader(reader, on_decision, progress);
        }
        let parsers = threads - 1;
        let started = Instant::now();
        let wall_before = self.wall_time();
        let mut bytes = 0u64;
        let result = std::thread::scope(|s| {
            let (raw_tx, raw_rx) = sync_channel::<Raw>(2 * parsers);
            let raw_rx = Arc::new(Mutex::new(raw_rx));
            let (parsed_tx, parsed_rx) = sync_channel::<Parsed>(2 * parsers);
            let (spent_tx, spent_rx) = channel::<Parsed>();
            let base = self.lines_read();
            let reading = s.spawn(move || read_chunks(reader, base, &raw_tx, &spent_rx));
            for _ in 0..parsers {
                let raw_rx = raw_rx.clone();
                let parsed_tx = parsed_tx.clone();
                s.spawn(move || parse_chunks(&raw_rx, &parsed_tx));
            }
            // Only the parsers hold these now: when they stop, the reader's
            // sends fail and it stops too.
            drop(raw_rx);
            drop(parsed_tx);
            let mut early = BTreeMap::new();
            let mut next = 0u64;
            let replayed = 'replay: {
                while let Ok(chunk) = parsed_rx.recv() {
                    early.insert(chunk.seq, chunk);
                    while let Some(mut chunk) = early.remove(&next) {
                        next += 1;
                        for (line, n) in chunk.lines.drain(..) {
                            bytes += n;
                            let elapsed = wall_before + started.elapsed();
                            let line_no = self.count_line(bytes, elapsed, &mut progress);
                            if let Err(e) = self.replay_decoded(line, line_no, &mut on_decision) {
                                break 'replay Err(e);
                            }
                        }
                        // Freed on the reader's thread (or here, if it is gone).
                        let _ = spent_tx.send(chunk);
                    }
                }
                Ok(())
            };
            // Stopping early: the parsers' sends fail, then the reader's.
            drop(parsed_rx);
            drop(spent_tx);
            let read = reading
                .join()
                .unwrap_or_else(|p| std::panic::resume_unwind(p));
            replayed.and(read.map_err(ReplayError::Read))
        });
        self.finish(bytes, wall_before + started.elapsed(), &mut progress);
        result
    }
}

/// The reader's thread: sends chunks of lines until the end of `reader`,
/// a read error, or nobody listening; frees spent chunks meanwhile.
/// Lines are numbered from `base + 1`.
fn read_chunks<R: BufRead>(
    mut reader: R,
    base: u64,
    out: &std::sync::mpsc::SyncSender<Raw>,
    spent: &Receiver<Parsed>,
) -> io::Result<()> {
    let mut seq = 0;
    let mut first_line = base + 1;
    loop {
        let mut raw = Raw {
            seq,
            first_line,
            data: Vec::with_capacity(CHUNK_LINES * 512),
            ends: Vec::with_capacity(CHUNK_LINES),
        };
        let mut result = Ok(());
        while raw.ends.len() < CHUNK_LINES {
            match reader.read_until(b'\n', &mut raw.data) {
                Ok(0) => break,
                Ok(_) => raw.ends.push(raw.data.len()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // What was read of a line before the error is not a line.
                    raw.data.truncate(raw.ends.last().copied().unwrap_or(0));
                    result = Err(e);
                    break;
                }
            }
        }
        let last = raw.ends.len() < CHUNK_LINES;
        first_line += raw.ends.len() as u64;
        if !raw.ends.is_empty() && out.send(raw).is_err() {
            return Ok(());
        }
        while let Ok(chunk) = spent.try_recv() {
            drop(chunk);
        }
        if last {
            return result;
        }
        seq += 1;
    }
}

/// A parser thread: decodes chunks until there are none or nobody listens.
fn parse_chunks(input: &Mutex<Receiver<Raw>>, out: &std::sync::mpsc::SyncSender<Parsed>) {
    loop {
        let raw = {
            let Ok(rx) = input.lock() else { return };
            match rx.recv() {
                Ok(raw) => raw,
                Err(_) => return,
            }
        };
        let mut start = 0;
        let lines = raw
            .ends
            .iter()
            .zip(raw.first_line..)
            .map(|(&end, line_no)| {
                let line = &raw.data[start..end];
                start = end;
                let decoded = match decode(line, line_no) {
                    Decoded::Line(t) => Decoded::Line(t.into_owned()),
                    Decoded::Blank => Decoded::Blank,
                    Decoded::Bad(e) => Decoded::Bad(e),
                };
                (decoded, line.len() as u64)
            })
            .collect();
        if out
            .send(Parsed {
                seq: raw.seq,
                lines,
            })
            .is_err()
        {
            return;
        }
    }
}
