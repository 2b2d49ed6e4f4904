//! Two providers, one operator: the traffic of a second provider (B) whose
//! campaign is run by the same operator as provider A's, for experiments on
//! sharing threat intelligence between providers.
//!
//! Provider A's traffic is an ordinary [`Scenario`]. Provider B's is the same
//! scenario simulated with B's own seed ([`SecondProvider::scenario`]), so B
//! has its own benign people (accounts, cards, devices, addresses), and its
//! campaign has the same operations under other account names. What the
//! operator brings from A to B is what it already had:
//!
//! - its clients (`ja4`, `user_agent`), its datacenter, router and proxy
//!   ranges and its prompt templates, which the simulator already gives
//!   every run of an operation alike;
//! - its stock of payment cards and devices: a share
//!   ([`SecondProvider::reuse`]) of B's campaign accounts, chosen by a
//!   seeded hash of the account name, carry a card and a device that A's
//!   accounts of the same operation used.
//!
//! The reuse maps each of B's values to one of A's (per operation, a seeded
//! shuffle of A's values, handed out in order of first use), not request by
//! request: B's reused accounts that shared a card among themselves still
//! share one, and distinct values stay distinct until A's stock of that
//! operation runs out. A reused card brings its own `payment_bin`. Nothing
//! else comes from A: every record of B is the record B's own simulation
//! makes, and only the `payment`, `payment_bin` and `device` fingerprints of
//! reused campaign accounts differ. Reuse applies whatever the
//! [`Knobs`](super::Knobs): an operator that shares no infrastructure
//! across its accounts ([`Knobs::shared_infrastructure`](super::Knobs::shared_infrastructure)
//! `= false`) may still register them with cards and devices it used
//! elsewhere, which is what shared intelligence catches.
//!
//! ```
//! use ringfence_lab::sim::{campaign_stock, second_provider, Scenario, SecondProvider};
//!
//! let a = Scenario::builtin("default").unwrap().scaled(0.01);
//! let b = second_provider(&a, &SecondProvider::default()).unwrap();
//! let stock = campaign_stock(&a);
//! let mut carried = 0;
//! for r in b {
//!     if r.cohort != "campaign" {
//!         continue;
//!     }
//!     let op = r.label.strip_prefix("campaign:").unwrap_or("reseller");
//!     let device = &r.fingerprints["device"];
//!     carried += usize::from(stock[op].devices.contains(device));
//! }
//! assert!(carried > 0);
//! ```

use super::{simulate_stream, Knobs, Record, Rng, Scenario, ScenarioError, TraceStream};
use std::collections::{BTreeMap, HashMap, HashSet};

/// The operation whose accounts mix genuine customers' traffic into their
/// own ([`Knobs::mix_in`](super::Knobs::mix_in)): a campaign account's record
/// labelled `benign` is one of its.
const MIXES_IN: &str = "reseller";

/// Salts of B's random choices (the reuse draw, the shuffles of A's stock).
const REUSE_SALT: u64 = 0x7e05_e5a1_7000_0001;
const SHUFFLE_SALT: u64 = 0x7e05_e5a1_7000_0002;

/// How provider B's traffic relates to provider A's.
#[derive(Clone, Debug, PartialEq)]
pub struct SecondProvider {
    /// B's seed: its own benign population, its own campaign account names
    /// and its own draw of which accounts reuse A's stock (default 4242).
    /// It must differ from A's.
    pub seed: u64,
    /// Share of B's campaign accounts, per operation, whose card and device
    /// are ones A's same operation used (from 0 to 1, default 0.5).
    pub reuse: f64,
    /// Hours from A's start to B's (default 0: the same period; positive:
    /// B runs later).
    pub start_offset_hours: f64,
    /// The operator's evasions at B (default: A's). An operator caught at A
    /// may share nothing among its accounts at B
    /// ([`Knobs::shared_infrastructure`] false) and still reuse its stock.
    pub knobs: Option<Knobs>,
}

impl Default for SecondProvider {
    fn default() -> Self {
        SecondProvider {
            seed: 4242,
            reuse: 0.5,
            start_offset_hours: 0.0,
            knobs: None,
        }
    }
}

impl SecondProvider {
    /// B's scenario: A's, with B's seed, its start moved by
    /// `start_offset_hours`, and `-b` after its name.
    pub fn scenario(&self, a: &Scenario) -> Scenario {
        Scenario {
            name: format!("{}-b", a.name),
            seed: self.seed,
            start_ts: a.start_ts + self.start_offset_hours * 3600.0,
            knobs: self.knobs.clone().unwrap_or_else(|| a.knobs.clone()),
            ..a.clone()
        }
    }
}

/// A payment card as the trace shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Card {
    /// The `payment` fingerprint.
    pub payment: String,
    /// The `payment_bin` fingerprint that came with it, if any.
    pub payment_bin: Option<String>,
}

/// The cards and devices one campaign operation's accounts used at provider
/// A, each once, in order of first use.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stock {
    /// Its distinct cards.
    pub cards: Vec<Card>,
    /// Its distinct `device` fingerprints.
    pub devices: Vec<String>,
}

impl Stock {
    /// Whether `payment` is one of its cards.
    pub fn has_payment(&self, payment: &str) -> bool {
        self.cards.iter().any(|c| c.payment == payment)
    }
}

/// The campaign operation a record's account belongs to (`None`: a benign
/// account). A campaign account's `benign` records are the genuine traffic
/// only [`MIXES_IN`] mixes in.
fn operation<'a>(label: &'a str, cohort: &str) -> Option<&'a str> {
    match label.strip_prefix("campaign:") {
        Some(op) => Some(op),
        None if cohort == "campaign" => Some(MIXES_IN),
        None => None,
    }
}

/// Provider A's campaign stock: per operation (`coordinated`, `multi_route`,
/// `reseller`), the cards and devices its accounts used. Simulates A once,
/// keeping only the campaign's values.
pub fn campaign_stock(a: &Scenario) -> BTreeMap<String, Stock> {
    let mut stock: BTreeMap<String, Stock> = BTreeMap::new();
    // Per operation, the cards and the devices already in its stock.
    let mut seen: HashMap<String, [HashSet<String>; 2]> = HashMap::new();
    for r in simulate_stream(a) {
        let Some(op) = operation(&r.label, &r.cohort) else {
            continue;
        };
        let s = stock.entry(op.to_string()).or_default();
        let [cards, devices] = seen.entry(op.to_string()).or_default();
        if let Some(payment) = r.fingerprints.get("payment") {
            if cards.insert(payment.clone()) {
                s.cards.push(Card {
                    payment: payment.clone(),
                    payment_bin: r.fingerprints.get("payment_bin").cloned(),
                });
            }
        }
        if let Some(device) = r.fingerprints.get("device") {
            if devices.insert(device.clone()) {
                s.devices.push(device.clone());
            }
        }
    }
    stock
}

/// 64-bit FNV-1a: a hash that is the same on every platform and version.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// B's values of one kind (cards or devices) of one operation, mapped to
/// A's: the `n`-th distinct value gets the `n`-th item of a seeded shuffle
/// of A's stock (again from the start once it is spent).
#[derive(Debug)]
struct Mapping {
    order: Vec<usize>,
    assigned: HashMap<String, usize>,
}

impl Mapping {
    fn new(n: usize, rng: &mut Rng) -> Mapping {
        let mut order: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            let j = rng.below(i as u64 + 1) as usize;
            order.swap(i, j);
        }
        Mapping {
            order,
            assigned: HashMap::new(),
        }
    }

    /// The index in A's stock that B's `value` maps to (`None`: A has none).
    fn get(&mut self, value: &str) -> Option<usize> {
        if self.order.is_empty() {
            return None;
        }
        if let Some(&i) = self.assigned.get(value) {
            return Some(i);
        }
        let i = self.order[self.assigned.len() % self.order.len()];
        self.assigned.insert(value.to_string(), i);
        Some(i)
    }
}

/// The mappings of one operation's values at B onto its stock at A.
#[derive(Debug)]
struct Pool {
    cards: Mapping,
    devices: Mapping,
}

/// Provider B's records, in time order (ties by account), with a share of
/// its campaign accounts carrying provider A's cards and devices: see
/// [`second_provider`]. Holds B's simulation, A's campaign stock and the
/// mapping of B's reused campaign values: bounded memory, apart from what
/// grows with the campaign's accounts.
pub struct SecondProviderStream {
    scenario: Scenario,
    inner: TraceStream,
    stock: BTreeMap<String, Stock>,
    pools: BTreeMap<String, Pool>,
    seed: u64,
    reuse: f64,
}

impl std::fmt::Debug for SecondProviderStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecondProviderStream")
            .field("scenario", &self.scenario.name)
            .field("seed", &self.seed)
            .field("reuse", &self.reuse)
            .finish_non_exhaustive()
    }
}

/// Provider B's traffic, given provider A's scenario: B's own simulation
/// ([`SecondProvider::scenario`]), streamed, with a share
/// ([`SecondProvider::reuse`]) of its campaign accounts carrying cards and
/// devices from A's campaign stock ([`campaign_stock`]) of the same
/// operation. Simulates A once first (keeping only its campaign's values);
/// the same inputs always give the same stream.
///
/// Errors if B's seed is A's (B would be A), `reuse` is not from 0 to 1,
/// or B's scenario is not valid (an offset that is not finite, or that puts
/// B's start out of range).
pub fn second_provider(
    a: &Scenario,
    b: &SecondProvider,
) -> Result<SecondProviderStream, ScenarioError> {
    let bad = |message: &str| {
        Err(ScenarioError {
            message: message.to_string(),
        })
    };
    if b.seed == a.seed {
        return bad("provider B's `seed` must differ from provider A's");
    }
    if !(0.0..=1.0).contains(&b.reuse) {
        return bad("provider B's `reuse` must be from 0 to 1");
    }
    if !b.start_offset_hours.is_finite() {
        return bad("provider B's `start_offset_hours` must be finite");
    }
    let scenario = b.scenario(a);
    scenario.validate()?;
    let stock = campaign_stock(a);
    let pools = stock
        .iter()
        .map(|(op, s)| {
            let mut rng = Rng::new(b.seed ^ SHUFFLE_SALT, fnv1a(op.as_bytes()));
            let cards = Mapping::new(s.cards.len(), &mut rng);
            let devices = Mapping::new(s.devices.len(), &mut rng);
            (op.clone(), Pool { cards, devices })
        })
        .collect();
    Ok(SecondProviderStream {
        inner: simulate_stream(&scenario),
        scenario,
        stock,
        pools,
        seed: b.seed,
        reuse: b.reuse,
    })
}

impl SecondProviderStream {
    /// B's scenario.
    pub fn scenario(&self) -> &Scenario {
        &self.scenario
    }

    /// A's campaign stock, per operation: what B's reused accounts carry.
    pub fn stock(&self) -> &BTreeMap<String, Stock> {
        &self.stock
    }

    /// Whether `account`, if one of B's campaign accounts, reuses A's stock
    /// (decided by a seeded hash of its name, with probability `reuse`).
    pub fn reuses(&self, account: &str) -> bool {
        if self.reuse <= 0.0 {
            return false;
        }
        Rng::new(self.seed ^ REUSE_SALT, fnv1a(account.as_bytes())).unit() < self.reuse
    }

    /// Gives a reused campaign account's record A's card and device.
    fn apply(&mut self, r: &mut Record) {
        let Some(op) = operation(&r.label, &r.cohort) else {
            return;
        };
        if !self.reuses(&r.account) {
            return;
        }
        let (Some(pool), Some(stock)) = (self.pools.get_mut(op), self.stock.get(op)) else {
            return;
        };
        let fp = &mut r.fingerprints;
        if let Some(payment) = fp.get_mut("payment") {
            if let Some(i) = pool.cards.get(payment) {
                let card = &stock.cards[i];
                payment.clone_from(&card.payment);
                match &card.payment_bin {
                    Some(bin) => fp.insert("payment_bin".to_string(), bin.clone()),
                    None => fp.remove("payment_bin"),
                };
            }
        }
        if let Some(device) = fp.get_mut("device") {
            if let Some(i) = pool.devices.get(device) {
                device.clone_from(&stock.devices[i]);
            }
        }
    }
}

impl Iterator for SecondProviderStream {
    type Item = Record;

    fn next(&mut self) -> Option<Record> {
        let mut r = self.inner.next()?;
        self.apply(&mut r);
        Some(r)
    }
}
