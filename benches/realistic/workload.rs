//! The realistic bench's workload: a million accounts, their fingerprints,
//! who asks (Zipf) and what (distinct prompts), and the per-thread builder
//! that makes each request outside the timed section.

use crate::stats::{nanos, Tally};
use crate::TRACE_NS_PER_REQUEST;
use ringfence::guard::{Guard, Request};
use std::fmt::Write as _;
use std::hint::black_box;
use std::time::Instant;

/// Zipf exponent of account activity.
pub(crate) const ZIPF_EXPONENT: f64 = 1.0;
/// Prompt lengths, bytes (uniform).
pub(crate) const PROMPT_MIN: usize = 300;
pub(crate) const PROMPT_MAX: usize = 1_500;
/// Words in the prompts' vocabulary.
pub(crate) const VOCABULARY: usize = 6_000;
pub(crate) const MAX_TOKENS: u32 = 1_024;
pub(crate) const MODELS: [&str; 4] = ["large-2025", "large-2025-mini", "coder-3", "reasoner-1"];

// ---------------------------------------------------------------------------
// Randomness: splitmix64, seeded, no dependencies.

/// splitmix64's finalizer: a well-mixed 64-bit hash of `x`.
pub(crate) fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A hash of `(i, salt)`: one independent stream per attribute.
pub(crate) fn hash2(i: u64, salt: u64) -> u64 {
    mix(i ^ mix(salt.wrapping_mul(0xd6e8_feb8_6659_fd93)))
}

pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(mix(seed))
    }
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix(self.0)
    }
    /// Uniform in `0..n`.
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }
    /// Uniform in [0, 1).
    pub(crate) fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// An index in `0..m` from hash `h`, the low indices far more popular
/// (the cube of a uniform: density falling as x^(-2/3), a few values shared
/// by very many accounts, a long tail shared by few).
pub(crate) fn skewed(h: u64, m: u64) -> u64 {
    let u = (h >> 11) as f64 / (1u64 << 53) as f64;
    ((u * u * u) * m as f64) as u64 % m
}

// ---------------------------------------------------------------------------
// The population: accounts, their fingerprints, their activity.

/// One account's 8 fingerprint values, rebuilt in place per request.
#[derive(Default)]
pub(crate) struct Fingerprints {
    pub(crate) ip: String,
    pub(crate) asn: String,
    pub(crate) device: String,
    pub(crate) payment: String,
    pub(crate) payment_bin: String,
    pub(crate) ja4: String,
    pub(crate) user_agent: String,
    pub(crate) email_domain: String,
}

pub(crate) const UA_FAMILIES: [&str; 10] = [
    "OpenAI/Python",
    "OpenAI/JS",
    "anthropic-sdk-python",
    "python-requests",
    "python-httpx",
    "curl",
    "Go-http-client",
    "okhttp",
    "LangChain",
    "node-fetch",
];
pub(crate) const CONSUMER_DOMAINS: [&str; 6] = [
    "gmail.com",
    "outlook.com",
    "yahoo.com",
    "icloud.com",
    "proton.me",
    "qq.com",
];

impl Fingerprints {
    /// Account `i`'s values (of `n` accounts: pool sizes scale with `n`, so
    /// a value is shared by as many accounts at any scale).
    pub(crate) fn fill(&mut self, i: u32, n: u32) {
        let x = u64::from(i);
        let n = u64::from(n);
        for s in [
            &mut self.ip,
            &mut self.asn,
            &mut self.device,
            &mut self.payment,
            &mut self.payment_bin,
            &mut self.ja4,
            &mut self.user_agent,
            &mut self.email_domain,
        ] {
            s.clear();
        }
        // Addresses: 75 % unique, 20 % in shared /24s (~10 accounts per
        // block, each its own host), 5 % behind NATs (~10 per address).
        let h = hash2(x, 1);
        match h % 100 {
            0..75 => {
                // A bijection of the index: unique per account.
                let y = i.wrapping_mul(0x9e37_79b1) ^ 0x5bd1_e995;
                let [a, b, c, d] = (y ^ (y >> 15)).to_be_bytes();
                let _ = write!(self.ip, "{a}.{b}.{c}.{d}");
            }
            75..95 => {
                let block = hash2(x, 2) % (n / 50).max(1);
                let host = 1 + hash2(x, 3) % 254;
                let _ = write!(
                    self.ip,
                    "100.{}.{}.{host}",
                    64 + (block >> 8) % 64,
                    block & 255
                );
            }
            _ => {
                let nat = hash2(x, 4) % (n / 200).max(1);
                let _ = write!(self.ip, "198.18.{}.{}", (nat >> 8) % 256, nat & 255);
            }
        }
        let _ = write!(self.asn, "AS{}", 1_000 + skewed(hash2(x, 5), 3_000));
        let _ = write!(self.device, "dev-{:016x}", hash2(x, 6));
        let _ = write!(self.payment, "card-{:016x}", hash2(x, 7));
        let _ = write!(
            self.payment_bin,
            "{}",
            400_000 + 97 * skewed(hash2(x, 8), 2_000)
        );
        let j = skewed(hash2(x, 9), 48);
        let _ = write!(
            self.ja4,
            "t13d{:02}{:02}h2_{:012x}_{:012x}",
            10 + j % 9,
            8 + j % 7,
            mix(j) >> 16,
            mix(j + 100) >> 16
        );
        let u = skewed(hash2(x, 10), 240);
        let _ = write!(
            self.user_agent,
            "{}/{}.{}.{}",
            UA_FAMILIES[(u % 10) as usize],
            u % 3,
            u / 10,
            u % 7
        );
        // Email: 65 % consumer domains, the rest company domains of ~8
        // accounts each.
        let e = hash2(x, 11);
        if e % 100 < 65 {
            self.email_domain
                .push_str(CONSUMER_DOMAINS[skewed(e >> 8, 6) as usize]);
        } else {
            let _ = write!(self.email_domain, "co{:06}.com", (e >> 8) % (n / 8).max(1));
        }
    }

    pub(crate) fn pairs(&self) -> [(&str, &str); 8] {
        [
            ("ip", &self.ip),
            ("asn", &self.asn),
            ("device", &self.device),
            ("payment", &self.payment),
            ("payment_bin", &self.payment_bin),
            ("ja4", &self.ja4),
            ("user_agent", &self.user_agent),
            ("email_domain", &self.email_domain),
        ]
    }
}

/// Who asks (Zipf over a permutation of the accounts) and what they write.
pub(crate) struct World {
    pub(crate) accounts: u32,
    /// Cumulative Zipf weights by rank.
    pub(crate) cdf: Vec<f64>,
    /// Rank → account.
    pub(crate) perm: Vec<u32>,
    pub(crate) vocabulary: Vec<String>,
}

impl World {
    pub(crate) fn new(accounts: u32) -> World {
        let mut total = 0.0;
        let cdf: Vec<f64> = (0..accounts)
            .map(|k| {
                total += (f64::from(k) + 1.0).powf(-ZIPF_EXPONENT);
                total
            })
            .collect();
        World {
            accounts,
            cdf,
            perm: permutation(accounts, 0x2a),
            vocabulary: vocabulary(VOCABULARY, 0x766f63),
        }
    }

    /// `len` accounts asking, in order.
    pub(crate) fn sequence(&self, len: usize, seed: u64) -> Vec<u32> {
        let mut rng = Rng::new(seed);
        let total = *self.cdf.last().unwrap_or(&1.0);
        (0..len)
            .map(|_| {
                let x = rng.unit() * total;
                let rank = self.cdf.partition_point(|&c| c <= x);
                self.perm[rank.min(self.perm.len() - 1)]
            })
            .collect()
    }

    /// Request `seed`'s prompt, into `out`: 300 to 1,500 bytes of words.
    pub(crate) fn prompt(&self, out: &mut String, seed: u64) {
        let mut rng = Rng::new(seed);
        let len = PROMPT_MIN + rng.below((PROMPT_MAX - PROMPT_MIN + 1) as u64) as usize;
        out.clear();
        while out.len() < len {
            let w = &self.vocabulary[rng.below(self.vocabulary.len() as u64) as usize];
            out.push_str(w);
            match rng.below(16) {
                0 => out.push_str(". "),
                1 => out.push_str(", "),
                2 => out.push('\n'),
                _ => out.push(' '),
            }
        }
        out.truncate(len); // ASCII: any byte is a boundary
    }

    /// How many of `seq`'s requests come from an account that already asked
    /// in the same trace minute (the memo can only hit on those), with the
    /// first request at `start_ns` and one every `TRACE_NS_PER_REQUEST`.
    pub(crate) fn same_minute(&self, seq: &[u32], start_ns: u64) -> usize {
        let mut last = vec![u64::MAX; self.accounts as usize];
        let mut repeats = 0;
        for (k, &a) in seq.iter().enumerate() {
            let minute = (start_ns + k as u64 * TRACE_NS_PER_REQUEST) / 60_000_000_000;
            repeats += usize::from(last[a as usize] == minute);
            last[a as usize] = minute;
        }
        repeats
    }
}

pub(crate) fn permutation(n: u32, seed: u64) -> Vec<u32> {
    let mut rng = Rng::new(seed);
    let mut p: Vec<u32> = (0..n).collect();
    for i in (1..p.len()).rev() {
        p.swap(i, rng.below(i as u64 + 1) as usize);
    }
    p
}

/// `n` made-up words of one to four syllables, plus common short words.
pub(crate) fn vocabulary(n: usize, seed: u64) -> Vec<String> {
    const SYLLABLES: [&str; 48] = [
        "ka", "ro", "mi", "tel", "san", "qu", "pre", "ver", "lo", "dix", "an", "bor", "ce", "dra",
        "el", "fi", "gon", "hy", "im", "jul", "ker", "lum", "mon", "ny", "ox", "pha", "ri", "stu",
        "tri", "un", "vo", "wex", "yi", "zor", "ble", "cra", "de", "ent", "for", "gra", "ion",
        "ment", "ous", "ply", "ser", "tion", "ure", "ward",
    ];
    const COMMON: [&str; 24] = [
        "the", "of", "and", "to", "in", "is", "for", "that", "with", "as", "on", "be", "this",
        "by", "it", "are", "from", "or", "an", "which", "can", "how", "what", "why",
    ];
    let mut rng = Rng::new(seed);
    let mut words: Vec<String> = COMMON.iter().map(|w| w.to_string()).collect();
    while words.len() < n {
        let mut w = String::new();
        for _ in 0..1 + rng.below(4) {
            w.push_str(SYLLABLES[rng.below(SYLLABLES.len() as u64) as usize]);
        }
        words.push(w);
    }
    words
}

// ---------------------------------------------------------------------------
// One request, built outside the timed section.

/// Per-thread buffers for building requests without allocating.
pub(crate) struct Builder<'w> {
    pub(crate) world: &'w World,
    pub(crate) name: String,
    pub(crate) fingerprints: Fingerprints,
    pub(crate) prompt: String,
}

impl<'w> Builder<'w> {
    pub(crate) fn new(world: &'w World) -> Builder<'w> {
        Builder {
            world,
            name: String::with_capacity(16),
            fingerprints: Fingerprints::default(),
            prompt: String::with_capacity(PROMPT_MAX + 16),
        }
    }

    /// Fills the buffers for account `a`; the prompt too when `prompt_seed`
    /// is given.
    pub(crate) fn load(&mut self, a: u32, prompt_seed: Option<u64>) {
        self.name.clear();
        let _ = write!(self.name, "acct-{a:08}");
        self.fingerprints.fill(a, self.world.accounts);
        if let Some(seed) = prompt_seed {
            self.world.prompt(&mut self.prompt, seed);
        }
    }

    /// Checks the loaded request, timing the call alone; settles it
    /// afterwards (untimed) as a gateway would once the answer is served.
    pub(crate) fn check(&self, guard: &Guard, a: u32, with_prompt: bool, tally: &mut Tally) -> u32 {
        let fps = self.fingerprints.pairs();
        let prompt = with_prompt.then_some(self.prompt.as_str());
        let req = Request {
            account: &self.name,
            fingerprints: &fps,
            prompt,
            system: None,
            model: Some(MODELS[(hash2(u64::from(a), 12) % 4) as usize]),
            input_tokens: prompt.map_or(200, |p| (p.len() / 4) as u32),
            max_tokens: MAX_TOKENS,
        };
        let t0 = Instant::now();
        let verdict = guard.check(black_box(&req));
        let ns = nanos(t0.elapsed());
        tally.count(&verdict);
        guard.settle(&verdict, 50 + (hash2(u64::from(a), 13) % 700) as u32);
        ns
    }
}
