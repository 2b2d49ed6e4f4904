//! Keyed hashing: keys chosen to collide under the default seed (the
//! seed anyone can read in the source) do not collide under a secret one.
//! Every table position of the guard follows `[link] seed`: the accounts'
//! and the values' home cells, the limiter's shards, and the prompts'
//! template bands.

use super::{Guard, GuardConfig};
use crate::link::DEFAULT_LINK_SEED;
use std::collections::HashMap;

fn guard(seed: u64) -> Guard {
    let mut c = GuardConfig::for_accounts(10_000);
    c.link.seed = seed;
    Guard::new(c)
}

/// `pairs` pairs of distinct keys whose `position` is equal (found by
/// trying keys in order: what an attacker who knows the seed would do).
fn colliding(pairs: usize, position: impl Fn(&str) -> usize) -> Vec<(String, String)> {
    let mut seen: HashMap<usize, String> = HashMap::new();
    let mut out = Vec::new();
    for i in 0.. {
        let key = format!("aimed-{i}");
        let at = position(&key);
        match seen.remove(&at) {
            Some(other) => out.push((other, key)),
            None => {
                seen.insert(at, key);
            }
        }
        if out.len() == pairs {
            break;
        }
    }
    out
}

/// Of `pairs`, how many still collide under `position`.
fn still(pairs: &[(String, String)], position: impl Fn(&str) -> usize) -> usize {
    pairs
        .iter()
        .filter(|(a, b)| position(a) == position(b))
        .count()
}

#[test]
fn keys_aimed_at_one_position_under_the_default_seed_miss_under_a_secret_one() {
    let public = guard(DEFAULT_LINK_SEED);
    let secret = guard(0x1f2e_3d4c_5b6a_7988);
    // 200 pairs each. Under an independent seed a pair collides with
    // probability 1/cells: a few hundredths of a pair expected for the
    // tables, 200/shards for the limiter. The bounds leave a wide margin.
    fn account(g: &Guard) -> impl Fn(&str) -> usize + '_ {
        move |k| g.ev.linker.homes(k, "device", "-").0
    }
    fn value(g: &Guard) -> impl Fn(&str) -> usize + '_ {
        move |k| g.ev.linker.homes("a", "device", k).1
    }
    fn shard(g: &Guard) -> impl Fn(&str) -> usize + '_ {
        move |k| g.limiter.shard_of(g.limiter.key(k))
    }
    let pairs = colliding(200, account(&public));
    assert_eq!(still(&pairs, account(&public)), 200);
    assert!(still(&pairs, account(&secret)) <= 2, "accounts");
    let pairs = colliding(200, value(&public));
    assert!(still(&pairs, value(&secret)) <= 2, "values");
    let shards = public.limiter.table_shards();
    let pairs = colliding(200, shard(&public));
    let expected = 200.0 / shards as f64;
    let got = still(&pairs, shard(&secret));
    assert!(
        (got as f64) <= 4.0 * expected + 4.0,
        "limiter shards: {got} of 200 still collide ({shards} shards)"
    );
    // A prompt's template bands: all sixteen move.
    let prompt = Some(
        "Translate the following passage into French and keep every number exactly as written.",
    );
    let (a, _) = public.ev.linker.digest_texts(prompt, None);
    let (b, _) = secret.ev.linker.digest_texts(prompt, None);
    let (a, b) = (a.unwrap(), b.unwrap());
    assert!(a.iter().zip(&b).all(|(x, y)| x != y), "bands");
    // The default seed leaves the limiter's keys as they always were.
    assert_eq!(
        public.limiter.key("acct"),
        crate::limit::RateLimiter::builder(crate::limit::Quota::per_minute(1))
            .build()
            .key("acct")
    );
}
