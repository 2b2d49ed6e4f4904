//! What happened over trace time, for the HTML report's chart: requests
//! served and refused per bucket of trace time, by label, and when each
//! operation was first refused and first flagged.
//!
//! A bucket starts a minute wide; when the trace outgrows [`MAX_BUCKETS`]
//! buckets, neighbours merge and the width doubles, so the memory stays
//! bounded whatever the trace's length, and a request costs an index and a
//! few additions.

/// The most buckets kept (a day in minutes fits).
pub const MAX_BUCKETS: usize = 2048;

/// The first buckets' width, in seconds of trace time.
const FIRST_WIDTH: f64 = 60.0;

/// Requests in one bucket of trace time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Bucket {
    /// Requests replayed.
    pub requests: u64,
    /// Of which refused (throttled or denied), for any reason.
    pub refused: u64,
    /// Campaign-labelled requests served.
    pub campaign_served: u64,
    /// Campaign-labelled requests refused, for any reason.
    pub campaign_refused: u64,
    /// Benign-labelled requests refused for a reason other than their own
    /// account's limit.
    pub benign_refused: u64,
    /// Benign-labelled requests refused by their own account's limit only.
    pub benign_refused_account_limit: u64,
}

impl Bucket {
    fn add(&mut self, o: &Bucket) {
        self.requests += o.requests;
        self.refused += o.refused;
        self.campaign_served += o.campaign_served;
        self.campaign_refused += o.campaign_refused;
        self.benign_refused += o.benign_refused;
        self.benign_refused_account_limit += o.benign_refused_account_limit;
    }

    /// The sum of `buckets`.
    pub fn sum(buckets: &[Bucket]) -> Bucket {
        let mut s = Bucket::default();
        for b in buckets {
            s.add(b);
        }
        s
    }
}

/// When an operation's traffic began, and was first refused and flagged.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OperationMarks {
    /// The operation.
    pub operation: String,
    /// Its first request, in seconds after the trace's first line.
    pub first_request: f64,
    /// Its first request refused for a reason other than `account_limit`
    /// (as the report's time to detection counts it); `None` if none was.
    pub first_refused: Option<f64>,
    /// Its first request whose verdict showed a flagged cluster.
    pub first_flagged: Option<f64>,
}

/// The label a request carried, as the timeline counts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Class {
    /// No label.
    Unlabelled,
    /// `benign`.
    Benign,
    /// `campaign:<operation>`, by the operation's index.
    Campaign(u16),
}

/// What became of one request, as the timeline counts it.
#[derive(Clone, Copy, Debug)]
pub(super) struct Fate {
    pub(super) allowed: bool,
    pub(super) policy_refused: bool,
    pub(super) flagged: bool,
}

/// Requests per bucket of trace time (see the module docs).
#[derive(Clone, Debug)]
pub struct Timeline {
    t0: Option<f64>,
    width: f64,
    buckets: Vec<Bucket>,
    operations: Vec<OperationMarks>,
    /// Whether each operation has been named.
    named: Vec<bool>,
}

impl Default for Timeline {
    fn default() -> Self {
        Timeline {
            t0: None,
            width: FIRST_WIDTH,
            buckets: Vec::new(),
            operations: Vec::new(),
            named: Vec::new(),
        }
    }
}

impl Timeline {
    /// Seconds of trace time per bucket.
    pub fn bucket_secs(&self) -> f64 {
        self.width
    }

    /// The buckets, from the trace's first line on (bucket `i` covers
    /// `[i, i + 1) × bucket_secs()` after it).
    pub fn buckets(&self) -> &[Bucket] {
        &self.buckets
    }

    /// The operations seen, in order of first appearance (`first_request`
    /// is NaN for none seen yet).
    pub fn operations(&self) -> &[OperationMarks] {
        &self.operations
    }

    /// Whether operation `op` has its marks (and name) yet.
    pub(super) fn knows(&self, op: u16) -> bool {
        self.named.get(usize::from(op)).copied().unwrap_or(false)
    }

    /// Names operation `op` (and makes room for those before it).
    pub(super) fn name(&mut self, op: u16, name: &str) {
        let op = usize::from(op);
        if self.operations.len() <= op {
            self.operations.resize_with(op + 1, || OperationMarks {
                first_request: f64::NAN,
                ..OperationMarks::default()
            });
            self.named.resize(op + 1, false);
        }
        self.operations[op].operation = name.to_string();
        self.named[op] = true;
    }

    /// Counts a request at `ts` (seconds since the epoch).
    pub(super) fn record(&mut self, ts: f64, class: Class, f: Fate) {
        let t0 = *self.t0.get_or_insert(ts);
        let rel = (ts - t0).max(0.0);
        let mut i = (rel / self.width) as usize;
        while i >= MAX_BUCKETS {
            self.merge();
            i = (rel / self.width) as usize;
        }
        if i >= self.buckets.len() {
            self.buckets.resize(i + 1, Bucket::default());
        }
        let b = &mut self.buckets[i];
        b.requests += 1;
        b.refused += u64::from(!f.allowed);
        match class {
            Class::Unlabelled => {}
            Class::Benign => {
                b.benign_refused += u64::from(f.policy_refused);
                b.benign_refused_account_limit += u64::from(!f.allowed && !f.policy_refused);
            }
            Class::Campaign(op) => {
                b.campaign_served += u64::from(f.allowed);
                b.campaign_refused += u64::from(!f.allowed);
                if let Some(m) = self.operations.get_mut(usize::from(op)) {
                    if m.first_request.is_nan() {
                        m.first_request = rel;
                    }
                    if f.policy_refused && m.first_refused.is_none() {
                        m.first_refused = Some(rel);
                    }
                    if f.flagged && m.first_flagged.is_none() {
                        m.first_flagged = Some(rel);
                    }
                }
            }
        }
    }

    /// Halves the resolution: neighbours merge, the width doubles.
    fn merge(&mut self) {
        let merged = self
            .buckets
            .chunks(2)
            .map(Bucket::sum)
            .collect::<Vec<Bucket>>();
        self.buckets = merged;
        self.width *= 2.0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SERVED: Fate = Fate {
        allowed: true,
        policy_refused: false,
        flagged: false,
    };
    const REFUSED: Fate = Fate {
        allowed: false,
        policy_refused: true,
        flagged: true,
    };

    #[test]
    fn buckets_count_by_label_and_marks_first_refusals() {
        let mut t = Timeline::default();
        t.name(0, "op");
        t.record(1000.0, Class::Benign, SERVED);
        t.record(1030.0, Class::Campaign(0), SERVED);
        t.record(1100.0, Class::Campaign(0), REFUSED);
        t.record(1190.0, Class::Unlabelled, REFUSED);
        assert_eq!(t.bucket_secs(), 60.0);
        assert_eq!(t.buckets().len(), 4);
        assert_eq!(t.buckets()[0].requests, 2);
        assert_eq!(t.buckets()[0].campaign_served, 1);
        assert_eq!(t.buckets()[1].campaign_refused, 1);
        assert_eq!(t.buckets()[3].refused, 1);
        assert!(t.knows(0) && !t.knows(1));
        let m = &t.operations()[0];
        assert_eq!(
            (m.first_request, m.first_refused, m.first_flagged),
            (30.0, Some(100.0), Some(100.0))
        );
    }

    #[test]
    fn a_long_trace_stays_within_its_buckets() {
        let mut t = Timeline::default();
        let n = 100_000u64;
        for i in 0..n {
            // A year, a request every five minutes or so.
            t.record(i as f64 * 316.0, Class::Benign, SERVED);
        }
        assert!(t.buckets().len() <= MAX_BUCKETS, "{}", t.buckets().len());
        assert!(t.buckets().len() > MAX_BUCKETS / 4);
        assert_eq!(Bucket::sum(t.buckets()).requests, n);
    }
}
