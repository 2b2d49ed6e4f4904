//! The parts of a cluster's statistics, each with its fields, its ageing,
//! its merge and its codec side by side (see [`Stat`]).
//!
//! The snapshot writes the parts in the order [`super::stats::Stats`]
//! lists them, and each part its fields in the order it lists them here.

use super::stats::{hll_estimate, hll_merge, hll_with};
use crate::codec::DecodeError as Error;
use crate::codec::{Reader, Writer};

/// How a cell's clock moved since it was last advanced.
pub(super) struct Aging {
    /// The factor every decayed count is multiplied by.
    pub(super) factor: f32,
    /// The half-life window now current.
    pub(super) window: u32,
    /// How far the window moved.
    pub(super) step: WindowStep,
}

/// How far the half-life window moved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum WindowStep {
    /// Not at all.
    Same,
    /// To the next one: the current window becomes the last.
    Next,
    /// Further: both windows are empty.
    Beyond,
}

/// Which clocks of two cells agree once both are advanced to the same time.
pub(super) struct Agree {
    /// Both are in the same half-life window.
    pub(super) window: bool,
    /// Both are in the same 30 s bucket.
    pub(super) bucket: bool,
}

/// One part of a cluster's statistics.
pub(super) trait Stat: Sized {
    /// Ages the part (counts decay; windows move).
    fn advance(&mut self, aging: &Aging);
    /// Folds in the same part of another cell advanced to the same time.
    fn merge(&mut self, other: &Self, agree: &Agree);
    /// Writes the part.
    fn encode(&self, w: &mut Writer);
    /// Reads what `encode` wrote.
    fn decode(r: &mut Reader<'_>) -> Result<Self, Error>;
}

/// Reads a decayed count: a finite, non-negative `f32`.
fn read_count(r: &mut Reader<'_>, what: &str) -> Result<f32, Error> {
    let x = f32::from_bits(r.u32(what)?);
    if x.is_finite() && x >= 0.0 {
        Ok(x)
    } else {
        Err(r.err(format!("{what} {x} is not a count")))
    }
}

/// Declares a part made of decayed counts: each field is listed once and
/// decays, adds up on merge and is written as its `f32` bits, in order.
macro_rules! decayed_counts {
    ($(#[$doc:meta])* $name:ident { $($(#[$fdoc:meta])* $field:ident,)* }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, Default, PartialEq)]
        pub(super) struct $name {
            $($(#[$fdoc])* pub(super) $field: f32,)*
        }

        impl Stat for $name {
            fn advance(&mut self, aging: &Aging) {
                $(self.$field *= aging.factor;)*
            }
            fn merge(&mut self, other: &Self, _: &Agree) {
                $(self.$field += other.$field;)*
            }
            fn encode(&self, w: &mut Writer) {
                $(w.u32(self.$field.to_bits());)*
            }
            fn decode(r: &mut Reader<'_>) -> Result<Self, Error> {
                Ok($name {
                    $($field: read_count(r, "a decayed count")?,)*
                })
            }
        }
    };
}

decayed_counts! {
    /// Decayed counts of the requests, and of those of each kind.
    Counts {
        /// Requests.
        requests,
        /// Requests eliciting chain-of-thought.
        cot,
        /// Requests whose prompt shares a template within the cluster.
        template,
        /// Requests made in a synchronous bucket.
        synchronous,
        /// Input tokens of the served requests.
        input,
        /// Output tokens of the served requests.
        output,
        /// Requests for a model taken up late.
        pivot,
    }
}

/// Decayed Misra–Gries counters of the busiest accounts (hash, count).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(super) struct Busiest([(u32, f32); 4]);

impl Busiest {
    /// Counts a request of `account`.
    pub(super) fn count(&mut self, account: u64) {
        let a = account as u32;
        if let Some(b) = self.0.iter_mut().find(|b| b.0 == a && b.1 > 0.0) {
            b.1 += 1.0;
        } else if let Some(b) = self.0.iter_mut().find(|b| b.1 <= 1e-3) {
            *b = (a, 1.0);
        } else {
            for b in &mut self.0 {
                b.1 = (b.1 - 1.0).max(0.0);
            }
        }
    }

    /// The busiest account's decayed count.
    pub(super) fn top(&self) -> f64 {
        self.0.iter().map(|b| f64::from(b.1)).fold(0.0, f64::max)
    }
}

impl Stat for Busiest {
    fn advance(&mut self, aging: &Aging) {
        for b in &mut self.0 {
            b.1 *= aging.factor;
        }
    }
    fn merge(&mut self, other: &Self, _: &Agree) {
        for b in other.0 {
            if let Some(x) = self.0.iter_mut().find(|x| x.0 == b.0) {
                x.1 += b.1;
            } else if let Some(x) = self.0.iter_mut().min_by(|x, y| x.1.total_cmp(&y.1)) {
                if x.1 < b.1 {
                    *x = b;
                }
            }
        }
    }
    fn encode(&self, w: &mut Writer) {
        for (a, n) in self.0 {
            w.u32(a);
            w.u32(n.to_bits());
        }
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, Error> {
        let mut s = Busiest::default();
        for b in &mut s.0 {
            b.0 = r.u32("account")?;
            b.1 = read_count(r, "an account's count")?;
        }
        Ok(s)
    }
}

/// What the current half-life window and the last saw: tiny HyperLogLogs
/// of the active accounts and of the distinct prompts, and how many
/// prompted requests each window had.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(super) struct Recent {
    active: [u64; 2],
    prompts: [u64; 2],
    prompted: [f32; 2],
}

impl Recent {
    /// Notes an active account.
    pub(super) fn add_account(&mut self, account: u64) {
        self.active[0] = hll_with(self.active[0], account);
    }

    /// Notes a prompted request, by its prompt's key.
    pub(super) fn add_prompt(&mut self, key: u64) {
        self.prompts[0] = hll_with(self.prompts[0], key);
        self.prompted[0] += 1.0;
    }

    /// Accounts active over both windows (estimated).
    pub(super) fn active_accounts(&self) -> f64 {
        hll_estimate(hll_merge(self.active[0], self.active[1]))
    }

    /// Distinct prompts over both windows (estimated).
    pub(super) fn distinct_prompts(&self) -> f64 {
        hll_estimate(hll_merge(self.prompts[0], self.prompts[1]))
    }

    /// Prompted requests over both windows.
    pub(super) fn prompted(&self) -> f64 {
        f64::from(self.prompted[0] + self.prompted[1])
    }
}

impl Stat for Recent {
    fn advance(&mut self, aging: &Aging) {
        match aging.step {
            WindowStep::Same => {}
            WindowStep::Next => {
                self.active = [0, self.active[0]];
                self.prompts = [0, self.prompts[0]];
                self.prompted = [0.0, self.prompted[0]];
            }
            WindowStep::Beyond => *self = Recent::default(),
        }
    }
    fn merge(&mut self, other: &Self, agree: &Agree) {
        if !agree.window {
            return;
        }
        for i in 0..2 {
            self.active[i] = hll_merge(self.active[i], other.active[i]);
            self.prompts[i] = hll_merge(self.prompts[i], other.prompts[i]);
            self.prompted[i] += other.prompted[i];
        }
    }
    fn encode(&self, w: &mut Writer) {
        w.u64(self.active[0]);
        w.u64(self.active[1]);
        w.u64(self.prompts[0]);
        w.u64(self.prompts[1]);
        w.u32(self.prompted[0].to_bits());
        w.u32(self.prompted[1].to_bits());
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, Error> {
        Ok(Recent {
            active: [r.u64("active accounts")?, r.u64("active accounts")?],
            prompts: [r.u64("distinct prompts")?, r.u64("distinct prompts")?],
            prompted: [
                read_count(r, "prompted requests")?,
                read_count(r, "prompted requests")?,
            ],
        })
    }
}

/// The cell's current half-life window and 30 s bucket, counted from this
/// guard's clock origin.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(super) struct Clock {
    pub(super) window: u32,
    pub(super) bucket: u32,
}

impl Clock {
    /// Places the clock at `last` (seconds) of this guard's clock, for a
    /// cell restored from another guard's.
    pub(super) fn rebase(&mut self, last: f64, half_life: f64) {
        self.window = (last.max(0.0) / half_life) as u32;
        self.bucket = (last.max(0.0) / super::stats::BUCKET_SECS) as u32;
    }
}

impl Stat for Clock {
    fn advance(&mut self, aging: &Aging) {
        self.window = aging.window;
    }
    fn merge(&mut self, _: &Self, _: &Agree) {}
    fn encode(&self, w: &mut Writer) {
        w.u32(self.window);
        w.u32(self.bucket);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, Error> {
        Ok(Clock {
            window: r.u32("window")?,
            bucket: r.u32("bucket")?,
        })
    }
}

/// A bitmap of the accounts active in the current 30 s bucket.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(super) struct Burst(pub(super) u64);

impl Stat for Burst {
    fn advance(&mut self, _: &Aging) {}
    fn merge(&mut self, other: &Self, agree: &Agree) {
        if agree.bucket {
            self.0 |= other.0;
        }
    }
    fn encode(&self, w: &mut Writer) {
        w.u64(self.0);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, Error> {
        Ok(Burst(r.u64("bucket accounts")?))
    }
}

/// The models seen (hash, seconds after the cluster was born that it was
/// first seen); hash 0 is a free entry.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(super) struct Models([(u32, f32); 4]);

impl Models {
    /// When `model` was first seen, noting it now (`age`) if it is new;
    /// `None` for a model beyond the four remembered.
    pub(super) fn first_seen(&mut self, model: u32, age: f32) -> Option<f32> {
        match self.0.iter().find(|x| x.0 == model) {
            Some(x) => Some(x.1),
            None => match self.0.iter_mut().find(|x| x.0 == 0) {
                Some(free) => {
                    *free = (model, age);
                    Some(age)
                }
                None => None,
            },
        }
    }
}

impl Stat for Models {
    fn advance(&mut self, _: &Aging) {}
    fn merge(&mut self, other: &Self, _: &Agree) {
        for m in other.0 {
            if m.0 != 0 && !self.0.iter().any(|x| x.0 == m.0) {
                if let Some(free) = self.0.iter_mut().find(|x| x.0 == 0) {
                    *free = m;
                }
            }
        }
    }
    fn encode(&self, w: &mut Writer) {
        for (m, t) in self.0 {
            w.u32(m);
            w.u32(t.to_bits());
        }
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, Error> {
        let mut s = Models::default();
        for m in &mut s.0 {
            m.0 = r.u32("model")?;
            m.1 = f32::from_bits(r.u32("model first seen")?);
            if !m.1.is_finite() {
                return Err(r.err("a model's first-seen time is not a number"));
            }
        }
        Ok(s)
    }
}
