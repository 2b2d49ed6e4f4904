//! The named signals of a cluster, the score computed from them, and the
//! contributions that explain it.

use super::config::total_weight;
use super::stats::Stats;
use super::ScoreConfig;
use serde::Serialize;

/// Declares [`Signal`]: each signal listed once with its name, which is
/// also the name of its field in [`Signals`].
macro_rules! signals {
    ($($(#[$doc:meta])* $variant:ident => $field:ident,)*) => {
        /// One of the values in [`Signals`], by name; [`Signal::ALL`] lists
        /// them in the order of the fields, so a binding can show every
        /// signal the core has without naming any (and a new signal reaches
        /// them without a change there; hence non-exhaustive).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum Signal {
            $($(#[$doc])* $variant,)*
        }

        impl Signal {
            /// Every signal, in the order of the fields of [`Signals`].
            pub const ALL: &'static [Signal] = &[$(Signal::$variant,)*];

            /// The signal's name: the name of its field in [`Signals`]
            /// (and its key when they are serialised).
            pub const fn name(self) -> &'static str {
                match self {
                    $(Signal::$variant => stringify!($field),)*
                }
            }
        }

        impl Signals {
            /// The value of one signal.
            pub fn get(&self, signal: Signal) -> f64 {
                match signal {
                    $(Signal::$variant => self.$field,)*
                }
            }
        }
    };
}

signals! {
    /// Decayed request count.
    Volume => volume,
    /// Accounts active recently (estimated).
    ActiveAccounts => active_accounts,
    /// The busiest account's share of the requests.
    BusiestShare => busiest_share,
    /// The spread gate.
    Spread => spread,
    /// Chain-of-thought share.
    Cot => cot,
    /// Template share.
    Template => template,
    /// Distinct prompts per prompted request.
    Diversity => diversity,
    /// Synchronous share.
    Synchrony => synchrony,
    /// Output/input ratio, scaled.
    OutputRatio => output_ratio,
    /// Share of requests for a model taken up late.
    Pivot => pivot,
    /// The combined score.
    Score => score,
    /// The account's suspicion (its behaviour; as a member of the crowd
    /// whose verdict applies, where one does; see [`crate::crowd`]).
    Suspicion => suspicion,
    /// The score of the strongest crowd the account is a suspicious member of.
    Crowd => crowd,
}

impl Signal {
    /// The signal called `name` ([`Signal::name`]), if there is one.
    pub fn from_name(name: &str) -> Option<Signal> {
        Signal::ALL.iter().copied().find(|s| s.name() == name)
    }
}

impl std::fmt::Display for Signal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A cluster's signals and score.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Signals {
    /// Decayed request count.
    pub volume: f64,
    /// Accounts active recently (estimated).
    pub active_accounts: f64,
    /// The busiest account's share of the requests.
    pub busiest_share: f64,
    /// The spread gate in [0, 1].
    pub spread: f64,
    /// Chain-of-thought share.
    pub cot: f64,
    /// Template share.
    pub template: f64,
    /// Distinct prompts per prompted request over the last one to two
    /// half-lives (a HyperLogLog count): 1 when every prompt is new.
    pub diversity: f64,
    /// Synchronous share.
    pub synchrony: f64,
    /// Output/input ratio, scaled to [0, 1].
    pub output_ratio: f64,
    /// Share of requests for a model the cluster took up late.
    pub pivot: f64,
    /// The combined score (of the linked cluster).
    pub score: f64,
    /// The account's suspicion in [0, 1]: how much it elicits reasoning,
    /// how long its answers are, how busy it is; where a crowd's verdict
    /// applies to it, as a member of that crowd (read against the crowd's
    /// habits; see [`crate::crowd`]). Set by the guard.
    pub suspicion: f64,
    /// The score of the strongest crowd the account is a suspicious
    /// member of (0 if none; see [`crate::crowd`]). Set by the guard; the
    /// verdict's score is the higher of this and `score`.
    pub crowd: f64,
}

impl Signals {
    /// Every signal with its value, in the order of [`Signal::ALL`].
    pub fn iter(&self) -> impl Iterator<Item = (Signal, f64)> {
        let s = *self;
        Signal::ALL.iter().map(move |&k| (k, s.get(k)))
    }

    /// The signals that contribute most, strongest first, as `(name,
    /// contribution to the score)`; the contributions add up to the score.
    pub fn contributors(&self, config: &ScoreConfig) -> Vec<(&'static str, f64)> {
        self.strongest(config).to_vec()
    }

    /// [`Signals::contributors`] without allocating.
    pub fn strongest(&self, config: &ScoreConfig) -> Contributors {
        let scale = self.spread / total_weight(config);
        let mut c = Contributors {
            items: [
                (Signal::Cot.name(), self.cot * config.cot_weight * scale),
                (
                    Signal::Template.name(),
                    self.template * self.diversity * config.template_weight * scale,
                ),
                (
                    Signal::Synchrony.name(),
                    self.synchrony * config.synchrony_weight * scale,
                ),
                (
                    Signal::OutputRatio.name(),
                    self.output_ratio * config.output_ratio_weight * scale,
                ),
                (
                    Signal::Pivot.name(),
                    self.pivot * config.pivot_weight * scale,
                ),
            ],
            len: 5,
        };
        c.items.sort_by(|a, b| b.1.total_cmp(&a.1));
        c.len = c.items.iter().take_while(|(_, v)| *v > 0.0).count() as u8;
        c
    }
}

/// The signals behind a score, strongest first (at most five; derefs to a
/// slice of `(name, contribution)`).
#[derive(Clone, Copy, PartialEq)]
pub struct Contributors {
    items: [(&'static str, f64); 5],
    len: u8,
}

impl Contributors {
    /// A crowd's score standing in for the cluster's: one contributor,
    /// `crowd`.
    pub fn crowd(score: f64) -> Contributors {
        let mut c = Contributors::default();
        c.items[0] = (Signal::Crowd.name(), score);
        c.len = 1;
        c
    }
}

impl Default for Contributors {
    fn default() -> Self {
        Contributors {
            items: [("", 0.0); 5],
            len: 0,
        }
    }
}

impl std::ops::Deref for Contributors {
    type Target = [(&'static str, f64)];
    fn deref(&self) -> &Self::Target {
        &self.items[..usize::from(self.len)]
    }
}

impl std::fmt::Debug for Contributors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl Signals {
    /// The signals of a cluster's statistics (decayed to now) under `c`.
    pub(super) fn of(st: &Stats, c: &ScoreConfig) -> Signals {
        let n = f64::from(st.counts.requests).max(1e-9);
        let active = st.recent.active_accounts().round();
        let busiest_share = (st.busiest.top() / n).clamp(0.0, 1.0);
        let spread = ((active - 1.0) / (c.full_spread_accounts - 1.0).max(1.0)).clamp(0.0, 1.0)
            * (1.0 - busiest_share).sqrt();
        let share = |x: f32| (f64::from(x) / n).clamp(0.0, 1.0);
        let prompted = st.recent.prompted();
        let diversity = if prompted > 0.0 {
            (st.recent.distinct_prompts() / prompted).min(1.0)
        } else {
            0.0
        };
        let (cot, template, synchrony, pivot) = (
            share(st.counts.cot),
            share(st.counts.template),
            share(st.counts.synchronous),
            share(st.counts.pivot),
        );
        let output_ratio = if st.counts.input > 0.0 {
            (f64::from(st.counts.output) / f64::from(st.counts.input) / 10.0).min(1.0)
        } else {
            0.0
        };
        // One template with varied content: the template share counts as
        // far as the prompts differ (a client retrying one prompt is not a
        // template being filled).
        let content = (c.cot_weight * cot
            + c.template_weight * template * diversity
            + c.synchrony_weight * synchrony
            + c.output_ratio_weight * output_ratio
            + c.pivot_weight * pivot)
            / total_weight(c);
        Signals {
            volume: n,
            active_accounts: active,
            busiest_share,
            spread,
            cot,
            template,
            diversity,
            synchrony,
            output_ratio,
            pivot,
            score: (spread * content).clamp(0.0, 1.0),
            suspicion: 0.0,
            crowd: 0.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_of_signals_is_a_named_signal() {
        let s = Signals {
            volume: 1.0,
            active_accounts: 2.0,
            busiest_share: 3.0,
            spread: 4.0,
            cot: 5.0,
            template: 6.0,
            diversity: 7.0,
            synchrony: 8.0,
            output_ratio: 9.0,
            pivot: 10.0,
            score: 11.0,
            suspicion: 12.0,
            crowd: 13.0,
        };
        // Naming every field without `..`: a new field fails to compile
        // here until it is listed, and then fails below until it is a signal.
        let Signals {
            volume,
            active_accounts,
            busiest_share,
            spread,
            cot,
            template,
            diversity,
            synchrony,
            output_ratio,
            pivot,
            score,
            suspicion,
            crowd,
        } = s;
        let fields = [
            ("volume", volume),
            ("active_accounts", active_accounts),
            ("busiest_share", busiest_share),
            ("spread", spread),
            ("cot", cot),
            ("template", template),
            ("diversity", diversity),
            ("synchrony", synchrony),
            ("output_ratio", output_ratio),
            ("pivot", pivot),
            ("score", score),
            ("suspicion", suspicion),
            ("crowd", crowd),
        ];
        let listed: Vec<(&str, f64)> = s.iter().map(|(k, v)| (k.name(), v)).collect();
        assert_eq!(listed, fields);
        assert_eq!(Signal::ALL.len(), fields.len());
        for &k in Signal::ALL {
            assert_eq!(Signal::from_name(k.name()), Some(k));
            assert_eq!(k.to_string(), k.name());
        }
        assert_eq!(Signal::from_name("nonsense"), None);
    }

    #[test]
    fn contributors_are_named_signals() {
        let s = Signals {
            spread: 1.0,
            cot: 1.0,
            template: 1.0,
            diversity: 1.0,
            synchrony: 1.0,
            output_ratio: 1.0,
            pivot: 1.0,
            ..Signals::default()
        };
        let c = s.contributors(&ScoreConfig::default());
        assert_eq!(c.len(), 5);
        assert!(c.iter().all(|(n, _)| Signal::from_name(n).is_some()));
    }
}
