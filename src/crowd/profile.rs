//! Each account's own behaviour: a few decayed counts in a cell beside its
//! linker cell, read as three features and a suspicion in [0, 1].
//!
//! The counts are updated with plain loads and stores, not read-modify-write
//! loops: two requests of one account on two threads in the same instant
//! may lose one update, which a statistic can afford (and the request path
//! stays free of retries).

use super::config::{ramp, CrowdConfig};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};

/// Served requests a mean answer length remembers: past this many, each
/// new answer moves it by a fixed share.
const SERVED_MEMORY: f32 = 64.0;

/// One account's behaviour (56 bytes).
#[derive(Default)]
struct ProfileCell {
    /// The account's hash; a cell whose tag differs belongs to an account
    /// forgotten since, and starts afresh.
    tag: AtomicU64,
    /// First seen (high 32 bits) and last updated (low 32), in seconds.
    times: AtomicU64,
    /// Decayed counts (`f32` bits) of requests, of requests eliciting
    /// reasoning and of input tokens; the served requests settled (up to
    /// [`SERVED_MEMORY`], not decayed) and their mean output tokens.
    requests: AtomicU32,
    elicited: AtomicU32,
    served: AtomicU32,
    output: AtomicU32,
    input: AtomicU32,
    /// The crowd whose verdict applies to the account (its tag; 0: none),
    /// as judged at its last recorded request.
    crowd: AtomicU64,
    /// That crowd's score and the account's suspicion in it (16 bits each,
    /// in 65,535ths) and the crowd's suspicious members (low 32 bits, `f32`).
    verdict: AtomicU64,
}

/// An account's behaviour, read from its counts.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Behaviour {
    /// Requests (decayed).
    pub requests: f64,
    /// Share of its requests that elicit reasoning (with the prior).
    pub elicitation: f64,
    /// How long its answers are, in [0, 1].
    pub long_output: f64,
    /// How busy it is, in [0, 1].
    pub busy: f64,
    /// Its requests per day, sustained.
    pub per_day: f64,
    /// Its mean input tokens per request.
    pub mean_input: f64,
    /// The weighted mean of the three features, in [0, 1].
    pub suspicion: f64,
    /// Requests eliciting reasoning (decayed), without the prior.
    pub elicited: f64,
    /// Served requests whose answers are counted (up to 64).
    pub served: f64,
    /// Their mean output tokens (0 with none), without the prior.
    pub mean_output: f64,
}

/// What an account's behaviour is read against until its own requests
/// outweigh it (`prior_requests` of them): the share of requests eliciting
/// reasoning and the mean answer length of the population it is judged in.
/// An account on its own is judged against ordinary use; a member of a
/// crowd, against the crowd's own requests, so that the thousandth account
/// of an operation is not taken for an ordinary newcomer while an honest
/// crowd's members are held to their crowd's honest habits.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Prior {
    /// Share of requests eliciting reasoning.
    pub elicitation: f64,
    /// Mean output tokens per answer.
    pub output: f64,
}

/// The share of an ordinary user's requests taken to elicit reasoning
/// when weighing whether an account is of a crowd's kind (see
/// [`Prior::for_member`]).
const ORDINARY_ELICITATION: f64 = 0.05;

impl Prior {
    /// Ordinary use: no reasoning asked for, answers half the long mark.
    pub fn ordinary(c: &CrowdConfig) -> Prior {
        Prior {
            elicitation: 0.0,
            output: c.long_output_tokens / 2.0,
        }
    }

    /// These habits (a crowd's) as the prior of member `b`, weighed by how
    /// likely it is that `b` is of the crowd's kind rather than an ordinary
    /// user who happens to share its value: a crowd is a mixture, and an
    /// honest user behind an operation's proxy address who asks for no
    /// reasoning is not read against the operation's habits. The weight is
    /// the posterior of the crowd's kind, even odds before the account's
    /// requests, given how many of them elicited reasoning (binomial at the
    /// crowd's share against an ordinary user's).
    pub fn for_member(self, b: &Behaviour, c: &CrowdConfig) -> Prior {
        let ordinary = Prior::ordinary(c);
        let crowd = self.elicitation.clamp(0.01, 0.99);
        let usual = ORDINARY_ELICITATION;
        let k = b.elicited.min(b.requests);
        let log_odds =
            k * (crowd / usual).ln() + (b.requests - k) * ((1.0 - crowd) / (1.0 - usual)).ln();
        let kind = 1.0 / (1.0 + (-log_odds.clamp(-50.0, 50.0)).exp());
        Prior {
            elicitation: kind * self.elicitation + (1.0 - kind) * ordinary.elicitation,
            output: kind * self.output + (1.0 - kind) * ordinary.output,
        }
    }
}

impl Behaviour {
    /// The account's elicitation, long-output feature and suspicion read
    /// against `prior` instead of ordinary use (its pace is its own).
    pub(crate) fn against(&self, prior: Prior, c: &CrowdConfig) -> (f64, f64, f64) {
        let w = c.prior_requests;
        let elicitation =
            ((self.elicited + w * prior.elicitation) / (self.requests + w).max(1e-9)).min(1.0);
        let mean_output =
            (self.mean_output * self.served + w * prior.output) / (self.served + w).max(1e-9);
        let long_output = ramp(
            mean_output,
            c.long_output_tokens / 2.0,
            c.long_output_tokens,
        );
        let total = c.elicitation_weight + c.long_output_weight + c.busy_weight;
        let suspicion = (c.elicitation_weight * elicitation
            + c.long_output_weight * long_output
            + c.busy_weight * self.busy)
            / total;
        (elicitation, long_output, suspicion)
    }
}

/// The crowd verdict remembered for an account.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct Remembered {
    pub crowd: u64,
    pub score: f64,
    pub members: f64,
    /// The account's suspicion as a member of the crowd.
    pub suspicion: f64,
}

/// One account's counts as snapshotted.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct ProfileState {
    pub tag: u64,
    pub first: u32,
    pub last: u32,
    pub counts: [f32; 5],
    pub crowd: u64,
    pub verdict: u64,
}

pub(crate) struct Profiles {
    cells: Box<[ProfileCell]>,
}

#[inline]
fn f(x: &AtomicU32) -> f32 {
    f32::from_bits(x.load(Relaxed))
}

#[inline]
fn set(x: &AtomicU32, v: f32) {
    x.store(v.to_bits(), Relaxed);
}

impl Profiles {
    /// A cell for each of the linker's `cells` account cells.
    pub fn new(cells: usize) -> Result<Profiles, String> {
        let mut v = Vec::new();
        v.try_reserve_exact(cells).map_err(|_| {
            format!(
                "cannot allocate the account behaviour table ({cells} cells): lower `link.max_accounts`"
            )
        })?;
        v.extend((0..cells).map(|_| ProfileCell::default()));
        Ok(Profiles {
            cells: v.into_boxed_slice(),
        })
    }

    pub fn len(&self) -> usize {
        self.cells.len()
    }

    pub fn bytes(&self) -> usize {
        self.cells.len() * std::mem::size_of::<ProfileCell>()
    }

    /// Decays `cell`'s counts to `now`, taking it for `tag` first if it
    /// held another account.
    fn advance(&self, cell: &ProfileCell, tag: u64, now: u32, half_life: f64) {
        if cell.tag.load(Relaxed) != tag {
            cell.tag.store(tag, Relaxed);
            cell.times
                .store((u64::from(now) << 32) | u64::from(now), Relaxed);
            for c in [
                &cell.requests,
                &cell.elicited,
                &cell.served,
                &cell.output,
                &cell.input,
            ] {
                c.store(0, Relaxed);
            }
            cell.crowd.store(0, Relaxed);
            cell.verdict.store(0, Relaxed);
            return;
        }
        let times = cell.times.load(Relaxed);
        let last = times as u32;
        if now <= last {
            return;
        }
        let factor = 0.5f64.powf(f64::from(now - last) / half_life) as f32;
        // (Answer lengths are a running mean over served requests, not a
        // decayed sum: an account whose requests are refused keeps the
        // evidence its served ones gave.)
        for c in [&cell.requests, &cell.elicited, &cell.input] {
            set(c, f(c) * factor);
        }
        cell.times
            .store((times & !0xffff_ffff) | u64::from(now), Relaxed);
    }

    /// Counts a request of the account in `cell` (hash `tag`) and reads its
    /// behaviour. `None` for a cell out of range.
    pub fn observe(
        &self,
        cell: u32,
        tag: u64,
        now: u32,
        elicits: bool,
        input_tokens: u32,
        c: &CrowdConfig,
    ) -> Option<(Behaviour, Remembered)> {
        let p = self.cells.get(cell as usize)?;
        self.advance(p, tag, now, c.account_half_life_secs);
        set(&p.requests, f(&p.requests) + 1.0);
        if elicits {
            set(&p.elicited, f(&p.elicited) + 1.0);
        }
        set(&p.input, f(&p.input) + input_tokens as f32);
        Some((self.read(p, now, c), remembered(p)))
    }

    /// Counts a served request's output tokens.
    pub fn settle(&self, cell: u32, now: u32, output_tokens: u32, c: &CrowdConfig) {
        let Some(p) = self.cells.get(cell as usize) else {
            return;
        };
        let tag = p.tag.load(Relaxed);
        if tag == 0 {
            return;
        }
        self.advance(p, tag, now, c.account_half_life_secs);
        let served = (f(&p.served) + 1.0).min(SERVED_MEMORY);
        let mean = f(&p.output);
        set(&p.served, served);
        set(&p.output, mean + (output_tokens as f32 - mean) / served);
    }

    /// Remembers the crowd verdict that applies to the account.
    pub fn remember(&self, cell: u32, r: Remembered) {
        if let Some(p) = self.cells.get(cell as usize) {
            p.crowd.store(r.crowd, Relaxed);
            p.verdict.store(
                (u64::from(unit_bits(r.score)) << 48)
                    | (u64::from(unit_bits(r.suspicion)) << 32)
                    | u64::from((r.members as f32).to_bits()),
                Relaxed,
            );
        }
    }

    /// The behaviour of the account in `cell`, if it holds `tag`.
    /// Reads cell `cell`'s first word, so that its cache miss overlaps
    /// other work (the value is meaningless).
    #[inline]
    pub fn prefetch(&self, cell: u32) -> u64 {
        self.cells
            .get(cell as usize)
            .map_or(0, |p| p.tag.load(Relaxed))
    }

    pub fn behaviour(
        &self,
        cell: u32,
        tag: u64,
        now: u32,
        c: &CrowdConfig,
    ) -> Option<(Behaviour, Remembered)> {
        let p = self.cells.get(cell as usize)?;
        if p.tag.load(Relaxed) != tag {
            return None;
        }
        let mut copy = ProfileCell::default();
        Self::copy(p, &mut copy);
        self.advance(&copy, tag, now, c.account_half_life_secs);
        Some((self.read(&copy, now, c), remembered(&copy)))
    }

    fn copy(from: &ProfileCell, to: &mut ProfileCell) {
        let s = Self::state_of(from);
        Self::store(to, &s);
    }

    fn state_of(p: &ProfileCell) -> ProfileState {
        let times = p.times.load(Relaxed);
        ProfileState {
            tag: p.tag.load(Relaxed),
            first: (times >> 32) as u32,
            last: times as u32,
            counts: [
                f(&p.requests),
                f(&p.elicited),
                f(&p.served),
                f(&p.output),
                f(&p.input),
            ],
            crowd: p.crowd.load(Relaxed),
            verdict: p.verdict.load(Relaxed),
        }
    }

    fn store(p: &ProfileCell, s: &ProfileState) {
        p.tag.store(s.tag, Relaxed);
        p.times
            .store((u64::from(s.first) << 32) | u64::from(s.last), Relaxed);
        for (c, v) in [&p.requests, &p.elicited, &p.served, &p.output, &p.input]
            .into_iter()
            .zip(s.counts)
        {
            set(c, v);
        }
        p.crowd.store(s.crowd, Relaxed);
        p.verdict.store(s.verdict, Relaxed);
    }

    /// The live cells, for a snapshot: (cell, state).
    pub fn states(&self) -> impl Iterator<Item = (u32, ProfileState)> + '_ {
        self.cells
            .iter()
            .enumerate()
            .filter(|(_, p)| p.tag.load(Relaxed) != 0)
            .map(|(i, p)| (i as u32, Self::state_of(p)))
    }

    /// Installs a state in `cell` (maintenance and restore only).
    pub fn install(&self, cell: u32, s: &ProfileState) {
        if let Some(p) = self.cells.get(cell as usize) {
            Self::store(p, s);
        }
    }

    /// Adds another node's counts of the same account to `cell` (both
    /// decayed to the later time), or installs them if the cell holds
    /// another account or none (maintenance only).
    pub fn merge(&self, cell: u32, o: &ProfileState, c: &CrowdConfig) {
        let Some(p) = self.cells.get(cell as usize) else {
            return;
        };
        if p.tag.load(Relaxed) != o.tag {
            Self::store(p, o);
            return;
        }
        let now = (p.times.load(Relaxed) as u32).max(o.last);
        self.advance(p, o.tag, now, c.account_half_life_secs);
        let factor = 0.5f64.powf(f64::from(now - o.last) / c.account_half_life_secs) as f32;
        let [requests, elicited, served, output, input] = o.counts;
        for (x, v) in [
            (&p.requests, requests),
            (&p.elicited, elicited),
            (&p.input, input),
        ] {
            set(x, f(x) + v * factor);
        }
        // Mean answer lengths combine by their served requests.
        let mine = f(&p.served);
        let both = mine + served;
        if both > 0.0 {
            set(&p.output, (f(&p.output) * mine + output * served) / both);
            set(&p.served, both.min(SERVED_MEMORY));
        }
        let first = ((p.times.load(Relaxed) >> 32) as u32).min(o.first);
        p.times
            .store((u64::from(first) << 32) | u64::from(now), Relaxed);
    }

    /// Empties every cell whose account is no longer `live`.
    pub fn forget(&self, mut live: impl FnMut(u32, u64) -> bool) {
        for (i, p) in self.cells.iter().enumerate() {
            let tag = p.tag.load(Relaxed);
            if tag != 0 && !live(i as u32, tag) {
                Self::store(p, &ProfileState::EMPTY);
            }
        }
    }

    fn read(&self, p: &ProfileCell, now: u32, c: &CrowdConfig) -> Behaviour {
        let times = p.times.load(Relaxed);
        let first = (times >> 32) as u32;
        let requests = f64::from(f(&p.requests));
        // Requests per day: the decayed count over the time it covers (at
        // least three hours, so that a burst of a few requests is not read
        // as a day's pace).
        let h = c.account_half_life_secs;
        let age = f64::from(now.saturating_sub(first));
        let covered = (h / std::f64::consts::LN_2 * (1.0 - 0.5f64.powf(age / h))).max(3.0 * 3600.0);
        let per_day = requests / covered * 86_400.0;
        let busy = ramp(
            per_day,
            c.busy_requests_per_day / 4.0,
            c.busy_requests_per_day,
        );
        let mut b = Behaviour {
            requests,
            busy,
            per_day,
            mean_input: f64::from(f(&p.input)) / requests.max(1e-9),
            elicited: f64::from(f(&p.elicited)),
            served: f64::from(f(&p.served)),
            mean_output: f64::from(f(&p.output)),
            ..Behaviour::default()
        };
        (b.elicitation, b.long_output, b.suspicion) = b.against(Prior::ordinary(c), c);
        b
    }
}

impl ProfileState {
    const EMPTY: ProfileState = ProfileState {
        tag: 0,
        first: 0,
        last: 0,
        counts: [0.0; 5],
        crowd: 0,
        verdict: 0,
    };
}

fn remembered(p: &ProfileCell) -> Remembered {
    let v = p.verdict.load(Relaxed);
    let unit = |bits: u64| (bits & 0xffff) as f64 / 65_535.0;
    Remembered {
        crowd: p.crowd.load(Relaxed),
        score: unit(v >> 48),
        suspicion: unit(v >> 32),
        members: f64::from(f32::from_bits(v as u32)).max(0.0),
    }
}

/// A value in [0, 1] in 65,535ths (rounded up, so that a score at a
/// threshold stays at it).
fn unit_bits(x: f64) -> u16 {
    (x.clamp(0.0, 1.0) * 65_535.0).ceil() as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cell_is_56_bytes() {
        assert_eq!(std::mem::size_of::<ProfileCell>(), 56);
    }

    #[test]
    fn an_account_that_asks_for_long_reasoning_all_day_is_suspicious() {
        let c = CrowdConfig::default();
        let p = Profiles::new(4).unwrap();
        let mut b = Behaviour::default();
        // Every 20 minutes for 12 hours, reasoning asked, 1,000 tokens back.
        for i in 0..36u32 {
            let now = i * 1200;
            b = p.observe(1, 77, now, true, 80, &c).unwrap().0;
            p.settle(1, now + 30, 1000, &c);
        }
        assert!(b.suspicion > 0.8, "{b:?}");
        assert!((60.0..90.0).contains(&b.per_day), "{b:?}");
        // An ordinary user: a few short questions.
        let mut o = Behaviour::default();
        for i in 0..4u32 {
            o = p.observe(2, 78, i * 600, i == 0, 30, &c).unwrap().0;
            p.settle(2, i * 600 + 5, 250, &c);
        }
        assert!(o.suspicion < 0.2, "{o:?}");
        // One or two long answers do not make anyone suspicious.
        let mut n = Behaviour::default();
        for i in 0..2u32 {
            n = p.observe(3, 79, i * 60, false, 30, &c).unwrap().0;
            p.settle(3, i * 60 + 5, 2000, &c);
        }
        assert!(n.suspicion < c.suspicious_at, "{n:?}");
    }

    #[test]
    fn a_cell_taken_by_another_account_starts_afresh() {
        let c = CrowdConfig::default();
        let p = Profiles::new(2).unwrap();
        for i in 0..10 {
            p.observe(0, 5, i, true, 10, &c);
        }
        let (b, _) = p.observe(0, 6, 20, false, 10, &c).unwrap();
        assert_eq!(b.requests, 1.0);
        assert!(p.behaviour(0, 5, 20, &c).is_none());
        assert!(p.observe(9, 5, 0, false, 1, &c).is_none());
    }
}
