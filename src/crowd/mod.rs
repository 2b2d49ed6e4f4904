//! Crowds: the population behind a shared value, judged as a crowd by how
//! its members behave.
//!
//! Linking weighs a shared value by its rarity, so an operation's shared
//! values (its system prompt, its card range, its client build) weigh less
//! the bigger it grows. Counting alone cannot tell 800 accounts of one
//! operation sharing a system prompt from 30,000 users of a popular agent.
//! Their behaviour can, and a crowd that behaves alike is stronger
//! evidence the larger it is.
//!
//! - **Each account's own behaviour** is kept in a cell beside its linker
//!   cell: decayed counts of its requests, of those eliciting reasoning,
//!   of its served requests' output tokens and of its input tokens. They
//!   read as three features in [0, 1]: *elicitation* (the share of requests
//!   asking for the model's reasoning), *long output* (mean answer length
//!   against `long_output_tokens`) and *busy* (requests per day against
//!   `busy_requests_per_day`), and their weighted mean, the account's
//!   *suspicion*. One account that asks for long reasoned answers all day is
//!   not an operation (an evaluation pipeline does that); it is
//!   *suspicious*, and only crowds decide.
//! - **A crowd** is every account presenting one shared value (a card, a
//!   card range, an address, a /24, a TLS fingerprint, a system prompt, a
//!   composite) of a kind not in `excluded_kinds`, or, for accounts that
//!   share nothing, every clearly suspicious account (at
//!   `behaviour_suspicious_at`) of one *behaviour class* (alike in
//!   elicitation, answer length, pace and prompt length). Its
//!   cell counts its active accounts and its suspicious ones over the last
//!   one to two windows (tiny HyperLogLogs) and decays sums over their
//!   requests.
//! - **A crowd has habits**: the share of its accounts' requests that
//!   elicit reasoning and their mean answer length, each account counting
//!   about once however busy it is. A member is judged *as a member*: its
//!   own counts read against the crowd's habits rather than against
//!   ordinary use (`prior_requests` requests' worth, as an account on its
//!   own is read against ordinary use), so that the thousandth account of
//!   an operation is not taken for an ordinary newcomer until its own
//!   requests show otherwise, while a newcomer to an honest crowd is read
//!   against its honest habits. (A behaviour class's members are
//!   judged by their own counts alone: the class is made of them. The
//!   exception is an account none of whose answers has been seen because
//!   it is refused on independent evidence (an imported indicator's
//!   campaign scored together here): its answers are
//!   unknown, not short, so it joins an existing class of accounts that
//!   ask as it does with long answers when, read against that class's
//!   habits, it is at the bar. Otherwise refusing an operation's known
//!   accounts early would shrink the class that catches its others.)
//! - **Its score** is the mean suspicion of its suspicious members' requests,
//!   times a factor that grows with how many they are (log-linearly from 0
//!   at `members[0]` to 1 at `members[1]`; for behaviour classes
//!   `behaviour_members`), times one that grows with their share of the
//!   crowd (from `suspicious_share[0]` to `[1]`), times one that falls
//!   when its prompts repeat dozens of times over (`diversity`: an
//!   evaluation re-running a small benchmark does that). A popular agent's
//!   100,000 users with a few heavy reasoners among them score 0; an
//!   operation's 800 accounts behind its system prompt score near 1.
//! - **A crowd's verdict applies only to its suspicious members**: the
//!   guard treats an account that is suspicious as a member of crowds as
//!   a member of the strongest of them (the crowd's id and members stand in for its cluster's, its score for
//!   the cluster's when higher), so that honest accounts that happen to
//!   share a value with an operation (a router's address pool, a card BIN)
//!   are served as before. Nor does it apply to a member far busier than
//!   the crowd's accounts on average (`pace_factor`): an operation spreads
//!   its traffic thin, and an evaluation pipeline on the SDK it also uses
//!   is another actor.
//!
//! The request path does a few lookups in fixed tables: the account's
//! cell, and on its first request of each minute (when linking records its
//! values) one cell per shared value. Nothing here allocates after
//! construction.

mod config;
mod profile;
mod snapshot;
mod table;

pub use config::CrowdConfig;
pub use profile::Behaviour;
pub(crate) use snapshot::CrowdSnapshot;
pub use table::CrowdJudgement;

use crate::link::Observed;
use profile::{Profiles, Remembered};
use table::{CrowdTable, Member};
use xxhash_rust::xxh3::xxh3_64_with_seed;

/// The kind byte of a behaviour class's tag (no fingerprint kind has it).
pub const BEHAVIOUR_KIND: u8 = 0xff;

/// What the crowds say about one request's account.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CrowdVerdict {
    /// The account's own behaviour.
    pub behaviour: Behaviour,
    /// The strongest crowd the account is a suspicious member of (its tag;
    /// 0: none), its score and suspicious members. The score is 0 unless
    /// the account is suspicious as a member of the crowd.
    pub crowd: u64,
    /// See `crowd`.
    pub score: f64,
    /// See `crowd`.
    pub members: f64,
    /// The account's suspicion: as a member of `crowd` (read against the
    /// crowd's habits, see [`CrowdJudgement::habit_elicitation`]) where one
    /// applies, else its own.
    pub suspicion: f64,
}

impl CrowdVerdict {
    /// The crowd as the cluster it stands in for: its id, and its
    /// suspicious members as its size.
    pub fn cluster(&self) -> crate::link::ClusterView {
        crate::link::ClusterView {
            id: self.crowd,
            size: self.members.round().clamp(1.0, f64::from(u32::MAX)) as u32,
        }
    }
}

/// Account behaviour and the crowds behind shared values (see the module docs).
pub struct Crowds {
    config: CrowdConfig,
    profiles: Profiles,
    table: CrowdTable,
    /// Kind indices not judged as crowds.
    excluded: [bool; 256],
    seed: u64,
}

impl Crowds {
    /// Crowds for a linker of `account_cells` account cells; `excluded`
    /// lists the kind indices not judged as crowds.
    pub(crate) fn try_new(
        config: CrowdConfig,
        account_cells: usize,
        excluded: &[u8],
        seed: u64,
    ) -> Result<Crowds, String> {
        config.validate()?;
        let mut ex = [false; 256];
        for &k in excluded {
            ex[usize::from(k)] = true;
        }
        Ok(Crowds {
            profiles: Profiles::new(account_cells)?,
            table: CrowdTable::new(config.max_crowds),
            excluded: ex,
            seed,
            config,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &CrowdConfig {
        &self.config
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.profiles.bytes() + self.table.bytes()
    }

    /// Counts a request of the account `seen` describes and judges its crowds.
    pub(crate) fn observe(
        &self,
        seen: &Observed,
        now: f64,
        elicits: bool,
        input_tokens: u32,
        withheld: bool,
    ) -> CrowdVerdict {
        let c = &self.config;
        let Some(cell) = seen.cell else {
            return CrowdVerdict::default();
        };
        let secs = seconds(now);
        let Some((b, mut best)) =
            self.profiles
                .observe(cell, seen.account, secs, elicits, input_tokens, c)
        else {
            return CrowdVerdict::default();
        };
        if seen.recorded {
            best = self.judge_crowds(seen, &b, now, withheld);
            self.profiles.remember(cell, best);
        }
        self.verdict(b, best)
    }

    /// Records the request in each of its crowds, and returns the strongest.
    fn judge_crowds(&self, seen: &Observed, b: &Behaviour, now: f64, withheld: bool) -> Remembered {
        let c = &self.config;
        let mut best = Remembered::default();
        let member = Member {
            account: seen.account,
            prompt_key: seen.prompt_key,
            behaviour: b,
        };
        let mut consider = |tag: u64, behaviour: bool| {
            let (score, members, suspicion) = self.table.record(tag, behaviour, &member, now, c);
            let needed = if behaviour {
                c.behaviour_suspicious_at
            } else {
                c.suspicious_at
            };
            if suspicion >= needed && score > best.score {
                best = Remembered {
                    crowd: tag,
                    score,
                    members,
                    suspicion,
                };
            }
        };
        for &(tag, _) in seen.crowds.iter() {
            if !self.excluded[usize::from(crate::link::tag_kind(tag))] {
                consider(tag, false);
            }
        }
        if b.requests < 4.0 {
            return best;
        }
        if b.suspicion >= c.behaviour_suspicious_at {
            consider(
                self.behaviour_class(b, long_output_step(b.long_output)),
                true,
            );
        } else if withheld && b.served < 1.0 && could_be_suspicious(b, c) {
            // None of its answers seen, because its requests are refused
            // on independent evidence (an imported indicator): its answers
            // are unknown, not short. It joins the class of accounts
            // asking as it does whose answers it would have to share to be
            // at the bar. (Not for any unserved account: one refused by
            // the crowds themselves would only be held there.)
            for step in [2, 1] {
                let class = self.behaviour_class(b, step);
                if let Some((score, members, suspicion)) =
                    self.table.join_unseen(class, step, &member, now, c)
                {
                    if score > best.score {
                        best = Remembered {
                            crowd: class,
                            score,
                            members,
                            suspicion,
                        };
                    }
                    break;
                }
            }
        }
        best
    }

    /// The verdict of the crowd remembered for the account: judged at its
    /// last recorded request (the first of each minute), where its
    /// suspicion as a member was at the bar.
    fn verdict(&self, b: Behaviour, best: Remembered) -> CrowdVerdict {
        if best.crowd != 0 {
            CrowdVerdict {
                behaviour: b,
                crowd: best.crowd,
                score: best.score,
                members: best.members,
                suspicion: best.suspicion.max(b.suspicion),
            }
        } else {
            CrowdVerdict {
                behaviour: b,
                suspicion: b.suspicion,
                ..CrowdVerdict::default()
            }
        }
    }

    /// The tag of a suspicious account's behaviour class: whether it mostly
    /// elicits reasoning, how long its answers are (`step`, see
    /// [`long_output_step`]), and its pace and prompt length (powers of
    /// two).
    fn behaviour_class(&self, b: &Behaviour, step: u8) -> u64 {
        let key = [
            u8::from(b.elicitation >= 0.5),
            step,
            b.per_day.max(1.0).log2().floor().min(60.0) as u8,
            b.mean_input.max(1.0).log2().floor().min(60.0) as u8,
        ];
        let h = xxh3_64_with_seed(&key, self.seed ^ 0x6265_6861_7669_6f75);
        (h & !0xff) | 0x100 | u64::from(BEHAVIOUR_KIND)
    }

    /// Brings the profile of the account in `cell` into the cache ahead of
    /// [`Crowds::of`] (the value is meaningless).
    #[inline]
    pub(crate) fn prefetch(&self, cell: u32) -> u64 {
        self.profiles.prefetch(cell)
    }

    /// Counts a served request's output tokens for the account in `cell`.
    pub(crate) fn settle(&self, cell: u32, now: f64, output_tokens: u32) {
        self.profiles
            .settle(cell, seconds(now), output_tokens, &self.config);
    }

    /// The behaviour of the account in `cell` (hash `account`) and the
    /// crowd verdict that applies to it now, without counting anything:
    /// the crowd remembered from its last recorded request, as that crowd
    /// is judged now, and the account as it was judged then (nothing new
    /// is known of it since: an account idle overnight is not cleared by
    /// its pace decaying, as a linked cluster's score is not).
    pub(crate) fn of(&self, cell: u32, account: u64, now: f64) -> Option<CrowdVerdict> {
        let (b, mut r) = self
            .profiles
            .behaviour(cell, account, seconds(now), &self.config)?;
        if r.crowd != 0 {
            match self.judgement(r.crowd, now) {
                Some(j) => {
                    r.score = j.score;
                    r.members = j.members;
                }
                None => r = Remembered::default(),
            }
        }
        Some(self.verdict(b, r))
    }

    /// Crowd `tag` as judged now, if it is tracked.
    pub fn judgement(&self, tag: u64, now: f64) -> Option<CrowdJudgement> {
        let st = self.table.stats_of(tag, now, &self.config)?;
        Some(st.judge(crate::link::tag_kind(tag) == BEHAVIOUR_KIND, &self.config))
    }
}

/// The long-output feature in three steps (short, middling, long), as
/// behaviour classes are keyed.
fn long_output_step(long_output: f64) -> u8 {
    (long_output * 2.0).round() as u8
}

/// Whether an account none of whose answers has been seen would be at the
/// behaviour bar were its answers long and its elicitation read against
/// a crowd that always elicits: the accounts worth looking up a class for.
fn could_be_suspicious(b: &Behaviour, c: &CrowdConfig) -> bool {
    let w = c.prior_requests;
    let elicitation = ((b.elicited + w) / (b.requests + w)).min(1.0);
    let total = c.elicitation_weight + c.long_output_weight + c.busy_weight;
    (c.elicitation_weight * elicitation + c.long_output_weight + c.busy_weight * b.busy) / total
        >= c.behaviour_suspicious_at
}

/// Seconds as the profile cells keep them.
fn seconds(now: f64) -> u32 {
    if now > 0.0 {
        now.min(f64::from(u32::MAX)) as u32
    } else {
        0
    }
}
