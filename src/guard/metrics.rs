//! The guard's counters and gauges, written by [`Guard::metrics`] in the
//! Prometheus text exposition format (0.0.4), with no dependency.
//!
//! The request path only adds to counters: one relaxed add per verdict and
//! three per settlement, on a line of the calling thread's stripe (sixteen
//! stripes, as the read locks), so threads on different cores do not
//! share a line. Everything else is read from the tables' own statistics
//! when the metrics are written. Counters start at zero with the guard (a
//! restored snapshot does not bring them back: Prometheus treats that as a
//! counter reset).

use super::verdict::{Decision, Reason, Verdict};
use super::Guard;
use crate::sync::{stripe, STRIPE_COUNT};
use std::fmt::{Display, Write};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Sets of reasons: one bit per reason.
const REASON_SETS: usize = 1 << Reason::ALL.len();
/// A verdict's decision and set of reasons: 3 × 32 counters.
const COMBOS: usize = 3 * REASON_SETS;
const SETTLEMENTS: usize = COMBOS;
const RESERVED: usize = COMBOS + 1;
const ACTUAL: usize = COMBOS + 2;
const WORDS: usize = COMBOS + 3;

/// One thread stripe's counters, on lines of their own.
#[repr(align(128))]
struct Stripe([AtomicU64; WORDS]);

/// The guard's counters (see the module docs).
pub(crate) struct Counters {
    stripes: Box<[Stripe]>,
    /// Verdicts allowed by the guard and then refused by [`Guard::refuse`],
    /// by reason.
    overruled: [AtomicU64; Reason::ALL.len()],
    flagged: FirstTimes,
    refused: FirstTimes,
}

impl Counters {
    pub(crate) fn new() -> Counters {
        Counters {
            stripes: (0..STRIPE_COUNT)
                .map(|_| Stripe(std::array::from_fn(|_| AtomicU64::new(0))))
                .collect(),
            overruled: Default::default(),
            flagged: FirstTimes::new(),
            refused: FirstTimes::new(),
        }
    }

    #[inline]
    fn add(&self, word: usize, n: u64) {
        self.stripes[stripe() % STRIPE_COUNT].0[word].fetch_add(n, Relaxed);
    }

    fn sum(&self, word: usize) -> u64 {
        self.stripes
            .iter()
            .map(|s| s.0[word].load(Relaxed))
            .fold(0, u64::wrapping_add)
    }

    /// Counts a verdict the guard gave.
    #[inline]
    pub(crate) fn verdict(&self, v: &Verdict) {
        let reasons = v.reasons.iter().fold(0, |m, r| m | r.bit() as usize);
        self.add(
            v.decision.code() as usize * REASON_SETS + (reasons & (REASON_SETS - 1)),
            1,
        );
        if v.reasons.contains(&Reason::SuspectedDistillation) {
            self.flagged.mark(v.cluster.id);
        }
        if !v.allowed() && v.cluster.size >= 2 {
            self.refused.mark(v.cluster.id);
        }
    }

    /// Counts a verdict overruled by [`Guard::refuse`].
    pub(crate) fn overruled(&self, reason: Reason) {
        self.overruled[reason as usize].fetch_add(1, Relaxed);
    }

    /// Counts a settlement: tokens reserved (with a reservation) and used.
    #[inline]
    pub(crate) fn settled(&self, reserved: Option<u64>, actual: u64) {
        self.add(SETTLEMENTS, 1);
        if let Some(reserved) = reserved {
            self.add(RESERVED, reserved);
            self.add(ACTUAL, actual);
        }
    }
}

/// Which cluster ids were seen before, in a fixed table of 4,096 cells (8
/// probed from an id's home): `mark` is true the first time, and counted.
/// When an id finds its cells all taken it replaces one, so beyond some
/// thousands of clusters at once an old one can be counted again.
struct FirstTimes {
    cells: Box<[AtomicU64]>,
    count: AtomicU64,
}

const FIRST_CELLS: usize = 4096;
const FIRST_PROBE: usize = 8;

impl FirstTimes {
    fn new() -> FirstTimes {
        FirstTimes {
            cells: (0..FIRST_CELLS).map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
        }
    }

    fn mark(&self, id: u64) {
        if id == 0 {
            return;
        }
        let home = (id.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 52) as usize;
        for i in 0..FIRST_PROBE {
            let cell = &self.cells[(home + i) % FIRST_CELLS];
            match cell.load(Relaxed) {
                v if v == id => return,
                0 => match cell.compare_exchange(0, id, Relaxed, Relaxed) {
                    Ok(_) => {
                        self.count.fetch_add(1, Relaxed);
                        return;
                    }
                    Err(v) if v == id => return,
                    Err(_) => {}
                },
                _ => {}
            }
        }
        self.cells[(home + (id as usize % FIRST_PROBE)) % FIRST_CELLS].store(id, Relaxed);
        self.count.fetch_add(1, Relaxed);
    }
}

/// The text being written.
struct Exposition(String);

impl Exposition {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl Display) {
        self.0.push_str(name);
        if !labels.is_empty() {
            self.0.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.0.push(',');
                }
                let _ = write!(self.0, "{k}=\"");
                for c in v.chars() {
                    match c {
                        '\\' => self.0.push_str("\\\\"),
                        '"' => self.0.push_str("\\\""),
                        '\n' => self.0.push_str("\\n"),
                        c => self.0.push(c),
                    }
                }
                self.0.push('"');
            }
            self.0.push('}');
        }
        let _ = writeln!(self.0, " {value}");
    }

    /// A family of one unlabelled sample.
    fn one(&mut self, name: &str, kind: &str, help: &str, value: impl Display) {
        self.family(name, kind, help);
        self.sample(name, &[], value);
    }
}

impl Guard {
    /// The guard's counters and gauges in the Prometheus text format
    /// (0.0.4), ready to serve at `/metrics`:
    ///
    /// - `ringfence_requests_total{verdict}`: requests checked, by verdict;
    /// - `ringfence_decisions_total{decision,reason}`: verdicts by decision
    ///   and reason (a verdict with two reasons counts under each; one
    ///   with none under `reason="none"`);
    /// - `ringfence_overruled_total{reason}`: verdicts allowed here and
    ///   then refused by [`Guard::refuse`] (a fleet's quota);
    /// - `ringfence_clusters_{formed,flagged,refused}_total`;
    /// - `ringfence_evictions_total{table}` and
    ///   `ringfence_untracked_accounts_total`;
    /// - `ringfence_table_entries{table}` and `ringfence_table_capacity{table}`;
    /// - `ringfence_maintenance_{cycles,steps}_total` and
    ///   `ringfence_maintenance_step_{last,max}_seconds`;
    /// - `ringfence_settlements_total`,
    ///   `ringfence_settlement_{reserved,actual}_tokens_total` and the
    ///   drift between them, `ringfence_settlement_drift_tokens`;
    /// - `ringfence_intel_values`, `ringfence_intel_values_dropped_total`,
    ///   `ringfence_intel_indicators{state}` (`active`, `revoked`),
    ///   `ringfence_intel_marked_accounts`, `ringfence_intel_matches_total`
    ///   and `ringfence_intel_checked_total`: shared intelligence (all 0
    ///   without a consortium key);
    /// - `ringfence_memory_bytes`, `ringfence_observer_backlog_requests`,
    ///   `ringfence_observer_overflowed_total`.
    ///
    /// ```
    /// use ringfence::guard::{Guard, GuardConfig, Request};
    ///
    /// let guard = Guard::new(GuardConfig::for_accounts(1_000));
    /// guard.check(&Request {
    ///     account: "acct-1",
    ///     fingerprints: &[("ip", "203.0.113.7")],
    ///     prompt: None,
    ///     system: None,
    ///     model: None,
    ///     input_tokens: 10,
    ///     max_tokens: 100,
    /// });
    /// let text = guard.metrics();
    /// assert!(text.contains("ringfence_requests_total{verdict=\"allow\"} 1\n"));
    /// ```
    pub fn metrics(&self) -> String {
        let c = &self.counters;
        let link = self.ev.linker.stats();
        let limiter = self.limiter.stats();
        let mut out = Exposition(String::with_capacity(8 << 10));

        let combos: Vec<u64> = (0..COMBOS).map(|i| c.sum(i)).collect();
        out.family(
            "ringfence_requests_total",
            "counter",
            "Requests checked, by the guard's verdict.",
        );
        for (d, name) in Decision::NAMES.iter().enumerate() {
            let n: u64 = combos[d * REASON_SETS..(d + 1) * REASON_SETS].iter().sum();
            out.sample("ringfence_requests_total", &[("verdict", name)], n);
        }
        out.family(
            "ringfence_decisions_total",
            "counter",
            "Verdicts by decision and reason: a verdict with several reasons counts under each, one with none under reason=\"none\".",
        );
        for (d, name) in Decision::NAMES.iter().enumerate() {
            let row = &combos[d * REASON_SETS..(d + 1) * REASON_SETS];
            out.sample(
                "ringfence_decisions_total",
                &[("decision", name), ("reason", "none")],
                row[0],
            );
            for r in Reason::ALL {
                let bit = r.bit() as usize;
                let n: u64 = (0..REASON_SETS)
                    .filter(|m| m & bit != 0)
                    .map(|m| row[m])
                    .sum();
                out.sample(
                    "ringfence_decisions_total",
                    &[("decision", name), ("reason", r.as_str())],
                    n,
                );
            }
        }
        out.family(
            "ringfence_overruled_total",
            "counter",
            "Verdicts the guard allowed that a fleet-wide quota then refused, by reason.",
        );
        for r in Reason::ALL {
            let n = c.overruled[r as usize].load(Relaxed);
            out.sample("ringfence_overruled_total", &[("reason", r.as_str())], n);
        }
        out.one(
            "ringfence_clusters_formed_total",
            "counter",
            "Clusters formed: two single accounts linked by a request.",
            link.clusters_formed,
        );
        out.one(
            "ringfence_clusters_flagged_total",
            "counter",
            "Clusters first scored as suspected distillation.",
            c.flagged.count.load(Relaxed),
        );
        out.one(
            "ringfence_clusters_refused_total",
            "counter",
            "Clusters of two accounts or more first refused (throttled or denied).",
            c.refused.count.load(Relaxed),
        );
        out.family(
            "ringfence_evictions_total",
            "counter",
            "Entries evicted to make room: live limiter cells, and fingerprint values, templates and linked pairs replaced.",
        );
        out.sample(
            "ringfence_evictions_total",
            &[("table", "limiter")],
            limiter.evictions,
        );
        out.sample(
            "ringfence_evictions_total",
            &[("table", "links")],
            link.replaced,
        );
        out.one(
            "ringfence_untracked_accounts_total",
            "counter",
            "Accounts that found their cells full and were not tracked.",
            link.untracked,
        );
        let tables = [
            ("accounts", link.accounts, link.max_accounts),
            ("values", link.values, link.max_values),
            ("templates", link.templates, link.max_templates),
            ("pairs", link.pairs, link.max_pairs),
            ("limiter", limiter.len, limiter.capacity),
        ];
        out.family(
            "ringfence_table_entries",
            "gauge",
            "Entries held, per table.",
        );
        for (t, n, _) in tables {
            out.sample("ringfence_table_entries", &[("table", t)], n);
        }
        out.family(
            "ringfence_table_capacity",
            "gauge",
            "The most entries each table keeps.",
        );
        for (t, _, cap) in tables {
            out.sample("ringfence_table_capacity", &[("table", t)], cap);
        }
        out.one(
            "ringfence_maintenance_cycles_total",
            "counter",
            "Maintenance cycles started (forgetting and rebuilding the clusters).",
            link.maintenance_cycles,
        );
        out.one(
            "ringfence_maintenance_steps_total",
            "counter",
            "Maintenance steps taken, each under the exclusive lock.",
            link.maintenance_steps,
        );
        out.one(
            "ringfence_maintenance_step_last_seconds",
            "gauge",
            "How long the last maintenance step held the exclusive lock.",
            link.maintenance_last_step.as_secs_f64(),
        );
        out.one(
            "ringfence_maintenance_step_max_seconds",
            "gauge",
            "The longest any maintenance step held the exclusive lock.",
            link.maintenance_max_step.as_secs_f64(),
        );
        let (reserved, actual) = (c.sum(RESERVED), c.sum(ACTUAL));
        out.one(
            "ringfence_settlements_total",
            "counter",
            "Served requests settled.",
            c.sum(SETTLEMENTS),
        );
        out.one(
            "ringfence_settlement_reserved_tokens_total",
            "counter",
            "Tokens reserved by the settled requests (input plus max_tokens).",
            reserved,
        );
        out.one(
            "ringfence_settlement_actual_tokens_total",
            "counter",
            "Tokens the settled requests used (input plus output).",
            actual,
        );
        out.one(
            "ringfence_settlement_drift_tokens",
            "gauge",
            "Reserved minus used tokens over all settlements (positive: max_tokens over-estimates).",
            i128::from(reserved) - i128::from(actual),
        );
        out.one(
            "ringfence_memory_bytes",
            "gauge",
            "Bytes the guard holds (tables, names and texts kept).",
            self.memory_bytes(),
        );
        out.one(
            "ringfence_observer_backlog_requests",
            "gauge",
            "Requests waiting for the observer threads (background mode).",
            self.backlog(),
        );
        let intel = self.intel_stats();
        out.one(
            "ringfence_intel_values",
            "gauge",
            "Shared values remembered for export as indicators (0 without a consortium key).",
            intel.values,
        );
        out.one(
            "ringfence_intel_values_dropped_total",
            "counter",
            "Shared values not remembered for export because the table was full.",
            intel.dropped,
        );
        out.family(
            "ringfence_intel_indicators",
            "gauge",
            "Imported indicators held, by state.",
        );
        for (state, n) in [
            ("active", intel.imports - intel.revoked),
            ("revoked", intel.revoked),
        ] {
            out.sample("ringfence_intel_indicators", &[("state", state)], n);
        }
        out.one(
            "ringfence_intel_marked_accounts",
            "gauge",
            "Accounts marked by an imported indicator.",
            intel.marked,
        );
        out.one(
            "ringfence_intel_matches_total",
            "counter",
            "Requests of accounts marked by the imported indicators held (their sightings' counts).",
            intel.matches,
        );
        out.one(
            "ringfence_intel_checked_total",
            "counter",
            "Values hashed under the consortium key to check them against the imports.",
            intel.checked,
        );
        out.one(
            "ringfence_observer_overflowed_total",
            "counter",
            "Requests that found the observers' queue full and were recorded on their own thread.",
            self.overflowed(),
        );
        out.0
    }
}

#[cfg(test)]
mod tests {
    use super::FirstTimes;

    #[test]
    fn first_times_count_each_id_once() {
        let f = FirstTimes::new();
        for round in 0..3 {
            for id in 1..=1000u64 {
                f.mark(id * 0x1_0000_0001);
            }
            assert_eq!(
                f.count.load(std::sync::atomic::Ordering::Relaxed),
                1000,
                "round {round}"
            );
        }
        f.mark(0);
        assert_eq!(f.count.load(std::sync::atomic::Ordering::Relaxed), 1000);
    }
}
