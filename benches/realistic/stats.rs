//! The realistic bench's statistics: per-call latencies, their percentiles
//! and the decisions seen, printed readably.

use ringfence::guard::{Decision, Verdict};
use std::hint::black_box;
use std::time::{Duration, Instant};

pub(crate) fn nanos(d: Duration) -> u32 {
    u32::try_from(d.as_nanos()).unwrap_or(u32::MAX)
}

/// Decisions seen.
#[derive(Default, Clone, Copy)]
pub(crate) struct Tally {
    pub(crate) allow: u64,
    pub(crate) throttle: u64,
    pub(crate) deny: u64,
}

impl Tally {
    pub(crate) fn count(&mut self, v: &Verdict) {
        match v.decision {
            Decision::Allow => self.allow += 1,
            Decision::Throttle { .. } => self.throttle += 1,
            Decision::Deny => self.deny += 1,
        }
    }
    pub(crate) fn add(&mut self, o: Tally) {
        self.allow += o.allow;
        self.throttle += o.throttle;
        self.deny += o.deny;
    }
}

// ---------------------------------------------------------------------------
// Latency statistics.

pub(crate) struct Stats {
    pub(crate) n: usize,
    pub(crate) mean: f64,
    pub(crate) p50: u32,
    pub(crate) p99: u32,
    pub(crate) p999: u32,
    pub(crate) p9999: u32,
    pub(crate) max: u32,
    pub(crate) over_1ms: usize,
}

impl Stats {
    /// Sorts `lat`.
    pub(crate) fn of(lat: &mut [u32]) -> Stats {
        lat.sort_unstable();
        let n = lat.len();
        let at = |p: f64| {
            if n == 0 {
                0
            } else {
                lat[((p * n as f64).ceil() as usize).clamp(1, n) - 1]
            }
        };
        Stats {
            n,
            mean: lat.iter().map(|&x| f64::from(x)).sum::<f64>() / n.max(1) as f64,
            p50: at(0.50),
            p99: at(0.99),
            p999: at(0.999),
            p9999: at(0.9999),
            max: lat.last().copied().unwrap_or(0),
            over_1ms: n - lat.partition_point(|&x| x <= 1_000_000),
        }
    }
}

/// Nanoseconds, readably.
pub(crate) fn t(ns: f64) -> String {
    if ns < 10_000.0 {
        format!("{ns:.0} ns")
    } else if ns < 10_000_000.0 {
        format!("{:.1} µs", ns / 1e3)
    } else {
        format!("{:.1} ms", ns / 1e6)
    }
}

pub(crate) fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    if s.is_empty() {
        0.0
    } else if s.len() % 2 == 1 {
        s[s.len() / 2]
    } else {
        (s[s.len() / 2 - 1] + s[s.len() / 2]) / 2.0
    }
}

pub(crate) fn percentile_cells(s: &Stats) -> String {
    format!(
        "{:>9} {:>9} {:>9} {:>9} {:>9} {:>6}",
        t(f64::from(s.p50)),
        t(f64::from(s.p99)),
        t(f64::from(s.p999)),
        t(f64::from(s.p9999)),
        t(f64::from(s.max)),
        s.over_1ms
    )
}

pub(crate) const PERCENTILE_HEADER: &str =
    "      p50       p99     p99.9    p99.99       max  >1 ms";

pub(crate) fn timer_overhead() -> (u32, f64) {
    let mut lat: Vec<u32> = (0..200_000)
        .map(|_| {
            let t0 = Instant::now();
            nanos(black_box(t0).elapsed())
        })
        .collect();
    let s = Stats::of(&mut lat);
    (s.p50, s.mean)
}

pub(crate) fn tally_line(t: &Tally) -> String {
    format!(
        "allow {}, throttle {}, deny {}",
        t.allow, t.throttle, t.deny
    )
}
