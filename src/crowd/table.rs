//! The table of crowds: a fixed number of cells, each behind its own small
//! lock, found by probing from the crowd's home cell; and how a crowd is
//! judged.

use super::config::{log_ramp, ramp, CrowdConfig};
use super::profile::{Behaviour, Prior};
use crate::codec::DecodeError as Error;
use crate::codec::{Reader, Writer};
use crate::sketch::PackedHll;
use crate::slots::{LockedSlots, Recency};

type Hll = PackedHll<16>;

/// What a crowd saw over its current window and the last: its accounts and
/// its suspicious accounts (tiny HyperLogLogs), and decayed sums over its
/// requests.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct CrowdStats {
    /// The current window (seconds / `window_secs`).
    pub window: u32,
    /// Last active, seconds.
    pub last: f32,
    pub accounts: [u64; 2],
    pub suspicious: [u64; 2],
    /// The distinct prompts (a tiny HyperLogLog) and the prompted requests
    /// of each window.
    pub prompts: [u64; 2],
    pub prompted: [f32; 2],
    /// Decayed: requests; requests of suspicious accounts; and over those,
    /// the sums of their suspicion and of its three features. Then the
    /// crowd's habits, each request weighted by one over its account's
    /// requests (so that each account counts about once, however busy):
    /// the weights, the weighted shares of requests eliciting reasoning,
    /// and for accounts with answers counted, the weights and the weighted
    /// mean answer lengths.
    pub sums: [f32; 10],
    /// The last judgement's score and members, and when it was made
    /// (seconds; not snapshotted: a restored crowd is judged afresh).
    pub judged: (f32, f32, f32),
}

/// How long a crowd's judgement stands before its next request judges it
/// again, seconds: judging reads three sketches, and a busy crowd's
/// standing hardly moves in a few seconds.
const JUDGED_FOR: f32 = 10.0;

const REQUESTS: usize = 0;
const SUSPICIOUS: usize = 1;
const SUSPICION: usize = 2;
const ELICITATION: usize = 3;
const LONG_OUTPUT: usize = 4;
const BUSY: usize = 5;
const HABIT_WEIGHT: usize = 6;
const HABIT_ELICITATION: usize = 7;
const ANSWER_WEIGHT: usize = 8;
const ANSWER_TOKENS: usize = 9;

/// Accounts of ordinary use a crowd's habits start from, so that a handful
/// of accounts does not make a crowd's habits.
const HABIT_PRIOR_ACCOUNTS: f64 = 8.0;
/// One request's account as a crowd sees it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Member<'b> {
    /// The account's hash.
    pub account: u64,
    /// The prompt's key (0: none).
    pub prompt_key: u64,
    /// The account's behaviour.
    pub behaviour: &'b Behaviour,
}

/// A crowd as judged now.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CrowdJudgement {
    /// The crowd's score in [0, 1]: the mean suspicion of its suspicious
    /// members, times how many they are (`members`), times how much of
    /// the crowd they make up (`suspicious_share`).
    pub score: f64,
    /// Suspicious accounts active in it (estimated).
    pub members: f64,
    /// All accounts active in it (estimated).
    pub accounts: f64,
    /// `members / accounts`.
    pub share: f64,
    /// Mean suspicion of its suspicious members' requests.
    pub suspicion: f64,
    /// Distinct prompts per prompted request over the windows (1 when
    /// every prompt is new; an evaluation re-running its benchmark repeats
    /// its prompts, an operation collecting answers never does).
    pub diversity: f64,
    /// Their mean elicitation, long-output and busy features.
    pub elicitation: f64,
    /// See `elicitation`.
    pub long_output: f64,
    /// See `elicitation`.
    pub busy: f64,
    /// The crowd's habits, which its members are read against until their
    /// own requests outweigh them: the share of requests eliciting
    /// reasoning and the mean answer length (output tokens) of its
    /// accounts, each account counting about once.
    pub habit_elicitation: f64,
    /// See `habit_elicitation`.
    pub habit_output: f64,
}

impl CrowdStats {
    fn new(now: f64, c: &CrowdConfig) -> CrowdStats {
        CrowdStats {
            window: (now.max(0.0) / c.window_secs) as u32,
            last: now as f32,
            judged: (0.0, 0.0, f32::NEG_INFINITY),
            ..CrowdStats::default()
        }
    }

    /// The score and members of [`CrowdStats::judge`], judged at most once
    /// every [`JUDGED_FOR`] seconds.
    fn standing(&mut self, now: f64, behaviour: bool, c: &CrowdConfig) -> (f64, f64) {
        let now = now as f32;
        let (score, members, at) = self.judged;
        if now - at < JUDGED_FOR && now >= at {
            return (f64::from(score), f64::from(members));
        }
        let j = self.judge(behaviour, c);
        let (score, members) = (j.score as f32, j.members as f32);
        self.judged = (score, members, now);
        (f64::from(score), f64::from(members))
    }

    /// Moves the windows and decays the sums to `now`.
    fn advance(&mut self, now: f64, c: &CrowdConfig) {
        let window = (now.max(0.0) / c.window_secs) as u32;
        match window.saturating_sub(self.window) {
            0 => {}
            1 => {
                self.accounts = [0, self.accounts[0]];
                self.suspicious = [0, self.suspicious[0]];
                self.prompts = [0, self.prompts[0]];
                self.prompted = [0.0, self.prompted[0]];
            }
            _ => {
                self.accounts = [0; 2];
                self.suspicious = [0; 2];
                self.prompts = [0; 2];
                self.prompted = [0.0; 2];
            }
        }
        self.window = self.window.max(window);
        let elapsed = now - f64::from(self.last);
        if elapsed > 0.0 {
            let factor = 0.5f64.powf(elapsed / c.window_secs) as f32;
            for s in &mut self.sums {
                *s *= factor;
            }
            self.last = now as f32;
        }
    }

    /// The crowd's habits (see [`CrowdJudgement::habit_elicitation`]).
    fn habits(&self, c: &CrowdConfig) -> Prior {
        let q = HABIT_PRIOR_ACCOUNTS;
        let o = Prior::ordinary(c);
        let sum = |i: usize| f64::from(self.sums[i]);
        Prior {
            elicitation: ((sum(HABIT_ELICITATION) + q * o.elicitation) / (sum(HABIT_WEIGHT) + q))
                .clamp(0.0, 1.0),
            output: (sum(ANSWER_TOKENS) + q * o.output) / (sum(ANSWER_WEIGHT) + q),
        }
    }

    /// Counts a request of `m`; returns its account's suspicion as a
    /// member: read against the crowd's habits, or for a behaviour class
    /// (whose members are alike by construction), its own.
    fn observe(&mut self, m: &Member<'_>, behaviour: bool, c: &CrowdConfig) -> f64 {
        let own = m.behaviour;
        let mut b = *own;
        if !behaviour {
            (b.elicitation, b.long_output, b.suspicion) =
                own.against(self.habits(c).for_member(own, c), c);
        }
        let w = (1.0 / own.requests.max(1.0)) as f32;
        self.sums[HABIT_WEIGHT] += w;
        self.sums[HABIT_ELICITATION] += w * (own.elicited / own.requests.max(1.0)).min(1.0) as f32;
        if own.served >= 1.0 {
            self.sums[ANSWER_WEIGHT] += w;
            self.sums[ANSWER_TOKENS] += w * own.mean_output as f32;
        }
        let b = &b;
        // (An account hash's low bit is always set: rotate it away.)
        let h = m.account.rotate_right(1);
        self.accounts[0] = Hll::from_bits(self.accounts[0]).with(h).bits();
        if m.prompt_key != 0 {
            let k = m
                .prompt_key
                .wrapping_mul(0x9e37_79b9_7f4a_7c15)
                .rotate_left(29);
            self.prompts[0] = Hll::from_bits(self.prompts[0]).with(k).bits();
            self.prompted[0] += 1.0;
        }
        self.sums[REQUESTS] += 1.0;
        if b.suspicion >= c.suspicious_at {
            self.suspicious[0] = Hll::from_bits(self.suspicious[0]).with(h).bits();
            self.sums[SUSPICIOUS] += 1.0;
            self.sums[SUSPICION] += b.suspicion as f32;
            self.sums[ELICITATION] += b.elicitation as f32;
            self.sums[LONG_OUTPUT] += b.long_output as f32;
            self.sums[BUSY] += b.busy as f32;
        }
        b.suspicion
    }

    /// Whether `b` has no more than `pace_factor` times the requests of
    /// the crowd's accounts on average. Both are the accounts' own decayed
    /// counts: each request adds one to the crowd's requests and one over
    /// its account's count to the habit weights, so their ratio is the
    /// mean count of the accounts behind the crowd's requests, each
    /// counting once, and reads alike however young the crowd is.
    fn alike_in_pace(&self, b: &Behaviour, c: &CrowdConfig) -> bool {
        let weight = f64::from(self.sums[HABIT_WEIGHT]);
        if c.pace_factor == 0.0 || weight <= 0.0 {
            return true;
        }
        b.requests <= c.pace_factor * f64::from(self.sums[REQUESTS]) / weight
    }

    /// The judgement of this crowd (a behaviour crowd when `behaviour`).
    pub fn judge(&self, behaviour: bool, c: &CrowdConfig) -> CrowdJudgement {
        let union = |w: [u64; 2]| Hll::from_bits(w[0]).merge(Hll::from_bits(w[1])).estimate();
        let members = union(self.suspicious);
        let accounts = if behaviour {
            members
        } else {
            union(self.accounts).max(members)
        };
        let share = if accounts > 0.0 {
            members / accounts
        } else {
            0.0
        };
        let n = f64::from(self.sums[SUSPICIOUS]).max(1e-9);
        let mean = |i: usize| (f64::from(self.sums[i]) / n).clamp(0.0, 1.0);
        let [lo, hi] = if behaviour {
            c.behaviour_members
        } else {
            c.members
        };
        let [s0, s1] = c.suspicious_share;
        let suspicion = mean(SUSPICION);
        let prompted = f64::from(self.prompted[0] + self.prompted[1]);
        // (Without prompts to judge by, nothing is known to repeat.)
        let diversity = if prompted > 0.0 {
            (union(self.prompts) / prompted).min(1.0)
        } else {
            1.0
        };
        let [d0, d1] = c.diversity;
        let habits = self.habits(c);
        CrowdJudgement {
            score: suspicion
                * log_ramp(members, lo, hi)
                * ramp(share, s0, s1)
                * ramp(diversity, d0, d1),
            members,
            accounts,
            share,
            suspicion,
            diversity,
            elicitation: mean(ELICITATION),
            long_output: mean(LONG_OUTPUT),
            busy: mean(BUSY),
            habit_elicitation: habits.elicitation,
            habit_output: habits.output,
        }
    }

    pub fn encode(&self, w: &mut Writer) {
        w.u32(self.window);
        w.u32(self.last.to_bits());
        for x in self
            .accounts
            .iter()
            .chain(&self.suspicious)
            .chain(&self.prompts)
        {
            w.u64(*x);
        }
        for s in self.prompted.iter().chain(&self.sums) {
            w.u32(s.to_bits());
        }
    }

    pub fn decode(r: &mut Reader<'_>) -> Result<CrowdStats, Error> {
        let window = r.u32("crowd window")?;
        let last = f32::from_bits(r.u32("crowd last active")?);
        let mut s = CrowdStats {
            window,
            last,
            judged: (0.0, 0.0, f32::NEG_INFINITY),
            ..CrowdStats::default()
        };
        for x in s
            .accounts
            .iter_mut()
            .chain(s.suspicious.iter_mut())
            .chain(s.prompts.iter_mut())
        {
            *x = r.u64("crowd accounts or prompts")?;
        }
        for x in s.prompted.iter_mut().chain(s.sums.iter_mut()) {
            *x = f32::from_bits(r.u32("a crowd's decayed sum")?);
            if !(x.is_finite() && *x >= 0.0) {
                return Err(r.err(format!("a crowd's decayed sum {x} is not a count")));
            }
        }
        if !last.is_finite() {
            return Err(r.err("a crowd's last-active time is not a number"));
        }
        Ok(s)
    }

    /// Folds in another node's crowd, both advanced to the same time.
    pub fn merge(&mut self, other: &CrowdStats) {
        if self.window == other.window {
            for i in 0..2 {
                self.accounts[i] = Hll::from_bits(self.accounts[i])
                    .merge(Hll::from_bits(other.accounts[i]))
                    .bits();
                self.suspicious[i] = Hll::from_bits(self.suspicious[i])
                    .merge(Hll::from_bits(other.suspicious[i]))
                    .bits();
                self.prompts[i] = Hll::from_bits(self.prompts[i])
                    .merge(Hll::from_bits(other.prompts[i]))
                    .bits();
                self.prompted[i] += other.prompted[i];
            }
        }
        for (s, o) in self.sums.iter_mut().zip(other.sums) {
            *s += o;
        }
        self.last = self.last.max(other.last);
        self.judged.2 = f32::NEG_INFINITY;
    }

    /// The same statistics with times shifted by `shift` seconds.
    pub fn shifted(mut self, shift: f64, c: &CrowdConfig) -> CrowdStats {
        let last = (f64::from(self.last) + shift).max(0.0);
        self.last = last as f32;
        self.window = (last / c.window_secs) as u32;
        self
    }
}

impl Recency for CrowdStats {
    fn last_active(&self) -> f64 {
        f64::from(self.last)
    }
}

/// The crowds judged at once (see [`crate::slots`]).
pub(crate) struct CrowdTable {
    pub(super) slots: LockedSlots<CrowdStats>,
}

impl CrowdTable {
    pub fn new(max: usize) -> CrowdTable {
        CrowdTable {
            slots: LockedSlots::new(max),
        }
    }

    pub fn bytes(&self) -> usize {
        self.slots.bytes()
    }

    /// Counts a request of `m` in crowd `tag` (a behaviour class when
    /// `behaviour`); returns the crowd's score as it applies to `m` and its
    /// suspicious members (as judged within the last [`JUDGED_FOR`]
    /// seconds), and the account's suspicion as a member. The score is 0
    /// for a member of a crowd behind a shared value that is far busier
    /// than the crowd's suspicious members (see
    /// [`CrowdConfig::pace_factor`]).
    pub fn record(
        &self,
        tag: u64,
        behaviour: bool,
        m: &Member<'_>,
        now: f64,
        c: &CrowdConfig,
    ) -> (f64, f64, f64) {
        self.slots
            .update(
                tag,
                || CrowdStats::new(now, c),
                |st| {
                    st.advance(now, c);
                    let suspicion = st.observe(m, behaviour, c);
                    let (score, members) = st.standing(now, behaviour, c);
                    let alike = behaviour || st.alike_in_pace(m.behaviour, c);
                    (if alike { score } else { 0.0 }, members, suspicion)
                },
            )
            .unwrap_or_default()
    }

    /// For an account none of whose answers has been seen (see
    /// [`Behaviour::served`]): joins the behaviour class `tag` if it is
    /// tracked already and the account, its answers read as the class's
    /// habits (see [`Prior::for_member`]), is at the bar and of the
    /// class's answer-length step. Returns what [`CrowdTable::record`]
    /// does, or `None`, counting nothing.
    pub fn join_unseen(
        &self,
        tag: u64,
        step: u8,
        m: &Member<'_>,
        now: f64,
        c: &CrowdConfig,
    ) -> Option<(f64, f64, f64)> {
        self.slots
            .update_existing(tag, |st| {
                st.advance(now, c);
                let own = m.behaviour;
                let mut b = *own;
                (b.elicitation, b.long_output, b.suspicion) =
                    own.against(st.habits(c).for_member(own, c), c);
                if b.suspicion < c.behaviour_suspicious_at
                    || super::long_output_step(b.long_output) != step
                {
                    return None;
                }
                let as_read = Member {
                    behaviour: &b,
                    ..*m
                };
                let suspicion = st.observe(&as_read, true, c);
                let (score, members) = st.standing(now, true, c);
                Some((score, members, suspicion))
            })
            .flatten()
    }

    /// Folds another node's crowd in (maintenance only).
    pub fn merge(&self, tag: u64, o: &CrowdStats, c: &CrowdConfig) {
        let now = f64::from(o.last);
        self.slots.update(
            tag,
            || CrowdStats::new(now, c),
            |st| {
                let later = now.max(f64::from(st.last));
                st.advance(later, c);
                let mut o = *o;
                o.advance(later, c);
                st.merge(&o);
            },
        );
    }

    /// The statistics of crowd `tag` advanced to `now`, if it is tracked.
    pub fn stats_of(&self, tag: u64, now: f64, c: &CrowdConfig) -> Option<CrowdStats> {
        let mut st = self.slots.get(tag)?;
        st.advance(now, c);
        Some(st)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn suspicious() -> Behaviour {
        Behaviour {
            requests: 20.0,
            elicitation: 0.9,
            long_output: 1.0,
            busy: 0.8,
            suspicion: 0.9,
            elicited: 20.0,
            served: 20.0,
            mean_output: 1500.0,
            ..Behaviour::default()
        }
    }

    fn ordinary() -> Behaviour {
        Behaviour {
            requests: 3.0,
            suspicion: 0.1,
            served: 3.0,
            mean_output: 250.0,
            ..Behaviour::default()
        }
    }

    fn member(account: u64, prompt_key: u64, behaviour: &Behaviour) -> Member<'_> {
        Member {
            account,
            prompt_key,
            behaviour,
        }
    }

    fn judged(t: &CrowdTable, tag: u64, now: f64) -> CrowdJudgement {
        let c = CrowdConfig::default();
        t.stats_of(tag, now, &c).unwrap().judge(false, &c)
    }

    fn hash(i: u64) -> u64 {
        xxhash_rust::xxh3::xxh3_64(&i.to_le_bytes()) | 1
    }

    #[test]
    fn a_crowd_of_alike_suspicious_accounts_grows_stronger_with_its_size() {
        let c = CrowdConfig::default();
        let t = CrowdTable::new(64);
        let mut scores = Vec::new();
        for size in [5u64, 20, 200] {
            for i in 0..size * 3 {
                t.record(
                    1000 + size,
                    false,
                    &member(hash(i % size), hash(i + 9), &suspicious()),
                    i as f64,
                    &c,
                );
            }
            scores.push(judged(&t, 1000 + size, (size * 3) as f64).score);
        }
        assert_eq!(scores[0], 0.0, "{scores:?}");
        assert!(scores[1] > 0.0 && scores[1] < scores[2], "{scores:?}");
        assert!(scores[2] > 0.85, "{scores:?}");
    }

    #[test]
    fn a_few_suspicious_accounts_in_an_honest_crowd_do_not_condemn_it() {
        let c = CrowdConfig::default();
        let t = CrowdTable::new(64);
        // 2,000 honest users and 100 suspicious ones behind one value.
        for i in 0..2100u64 {
            let b = if i % 21 == 0 {
                suspicious()
            } else {
                ordinary()
            };
            t.record(7, false, &member(hash(i), hash(i + 9), &b), i as f64, &c);
        }
        let j = judged(&t, 7, 2100.0);
        assert!(j.members > 40.0, "{j:?}");
        assert_eq!(j.score, 0.0, "{j:?}");
    }

    #[test]
    fn a_crowd_repeating_its_prompts_is_an_evaluation_not_an_operation() {
        let c = CrowdConfig::default();
        let t = CrowdTable::new(64);

        // 50 accounts re-running a benchmark of 20 questions, and 50
        // asking a new question every time.
        for i in 0..5000u64 {
            t.record(
                3,
                false,
                &member(hash(i % 50), hash(i % 20), &suspicious()),
                i as f64,
                &c,
            );
            t.record(
                4,
                false,
                &member(hash(i % 50), hash(i), &suspicious()),
                i as f64,
                &c,
            );
        }
        let bench = judged(&t, 3, 5000.0);
        let fresh = judged(&t, 4, 5000.0);
        assert!(bench.diversity < 0.01 && bench.score < 0.5, "{bench:?}");
        assert!(fresh.diversity > 0.5 && fresh.score > 0.8, "{fresh:?}");
    }

    #[test]
    fn a_busy_crowd_is_judged_at_most_every_ten_seconds() {
        let c = CrowdConfig::default();
        let t = CrowdTable::new(64);
        let mut first = (0.0, 0.0);
        for i in 0..100u64 {
            let (score, members, _) = t.record(
                5,
                false,
                &member(hash(i), hash(i + 9), &suspicious()),
                0.01 * i as f64,
                &c,
            );
            let got = (score, members);
            if i == 0 {
                first = got;
            }
            // Within ten seconds of the first judgement, it stands.
            assert_eq!(got, first);
        }
        let (score, members, _) = t.record(
            5,
            false,
            &member(hash(7), hash(999), &suspicious()),
            11.0,
            &c,
        );
        let later = (score, members);
        assert!(later.1 > 50.0, "{later:?}");
        let j = judged(&t, 5, 11.0);
        let rounded = |x: f64| f64::from(x as f32);
        assert_eq!(later, (rounded(j.score), rounded(j.members)));
    }

    #[test]
    fn members_are_read_against_their_crowds_habits_if_they_are_of_its_kind() {
        let c = CrowdConfig::default();
        let t = CrowdTable::new(64);
        // 300 accounts, each of its 20 requests weighing a twentieth.
        for i in 0..6000u64 {
            t.record(
                11,
                false,
                &member(hash(i % 300), hash(i + 9), &suspicious()),
                1.0,
                &c,
            );
        }
        let j = judged(&t, 11, 1.0);
        assert!(
            j.habit_elicitation > 0.9 && j.habit_output > 1400.0,
            "{j:?}"
        );
        // A newcomer whose one request asked for reasoning: on its own, an
        // ordinary newcomer; as a member, of the crowd's kind.
        let newcomer = Behaviour {
            requests: 1.0,
            elicited: 1.0,
            ..Behaviour::default()
        };
        let own = newcomer.against(Prior::ordinary(&c), &c).2;
        let (_, _, as_member) = t.record(11, false, &member(hash(1001), 5, &newcomer), 1.0, &c);
        assert!(
            own < c.suspicious_at && as_member >= c.suspicious_at,
            "{own} {as_member}"
        );
        // One whose two requests asked for none is an honest user who
        // shares the value; and in a behaviour class, only its own counts.
        let honest = Behaviour {
            requests: 2.0,
            ..Behaviour::default()
        };
        let (_, _, as_member) = t.record(11, false, &member(hash(1002), 6, &honest), 1.0, &c);
        assert!(as_member < 0.2, "{as_member}");
        let (_, _, in_class) = t.record(12, true, &member(hash(1001), 5, &newcomer), 1.0, &c);
        assert_eq!(in_class, newcomer.suspicion);
        // An honest crowd's habits are ordinary, and read as ordinary.
        for i in 0..300u64 {
            t.record(
                13,
                false,
                &member(hash(i), hash(i + 9), &ordinary()),
                1.0,
                &c,
            );
        }
        let (_, _, as_member) = t.record(13, false, &member(hash(1001), 5, &newcomer), 1.0, &c);
        assert!((as_member - own).abs() < 0.05, "{own} {as_member}");
    }

    #[test]
    fn windows_forget_accounts_and_sums_decay() {
        let c = CrowdConfig::default();
        let t = CrowdTable::new(64);
        for i in 0..100u64 {
            t.record(
                9,
                false,
                &member(hash(i), hash(i + 9), &suspicious()),
                0.0,
                &c,
            );
        }
        let later = t.stats_of(9, 2.5 * c.window_secs, &c).unwrap();
        assert_eq!(later.judge(false, &c).members, 0.0);
        assert!(later.sums[REQUESTS] < 20.0);
    }

    #[test]
    fn an_account_with_no_answer_seen_joins_only_a_class_it_asks_like() {
        let c = CrowdConfig::default();
        let t = CrowdTable::new(64);
        // (Busy and always asking for reasoning, but nothing served: its
        // own suspicion is under the bar.)
        let unseen = Behaviour {
            requests: 20.0,
            elicited: 20.0,
            elicitation: 20.0 / 24.0,
            busy: 0.8,
            suspicion: 0.45,
            ..Behaviour::default()
        };
        let never_asks = Behaviour {
            elicited: 0.0,
            elicitation: 0.0,
            ..unseen
        };
        assert_eq!(
            t.join_unseen(21, 2, &member(hash(1), 0, &unseen), 1.0, &c),
            None
        );
        assert!(
            t.stats_of(21, 1.0, &c).is_none(),
            "an untracked class is not made"
        );
        for i in 0..300u64 {
            t.record(
                21,
                true,
                &member(hash(i), hash(i + 9), &suspicious()),
                1.0,
                &c,
            );
        }
        let before = t.stats_of(21, 1.0, &c).unwrap();
        assert_eq!(
            t.join_unseen(21, 2, &member(hash(1000), 0, &never_asks), 1.0, &c),
            None,
            "asks for no reasoning in a class that always does"
        );
        assert_eq!(
            t.join_unseen(21, 1, &member(hash(1000), 0, &unseen), 1.0, &c),
            None,
            "the class's answers are long, not middling"
        );
        assert_eq!(t.stats_of(21, 1.0, &c).unwrap().sums, before.sums);
        let (_, _, suspicion) = t
            .join_unseen(21, 2, &member(hash(1000), 0, &unseen), 1.0, &c)
            .unwrap();
        assert!(suspicion >= c.behaviour_suspicious_at, "{suspicion}");
        let after = t.stats_of(21, 1.0, &c).unwrap();
        assert_eq!(after.sums[SUSPICIOUS], before.sums[SUSPICIOUS] + 1.0);
        // Its missing answers do not move the class's answer habits.
        assert_eq!(after.sums[ANSWER_WEIGHT], before.sums[ANSWER_WEIGHT]);
    }
}
