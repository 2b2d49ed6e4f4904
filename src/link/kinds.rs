//! Fingerprint kinds: their weights and evidence groups, resolved once at
//! construction so the hot path maps a kind name to them with one short hash
//! and a scan of a small array, and derives values (`ip24`, composites,
//! `system`, `template`) without building strings.

use super::LinkConfig;
use xxhash_rust::xxh3::xxh3_64_with_seed;

/// Evidence groups a pair records (one byte each).
pub(crate) const GROUPS: usize = 12;
/// Groups given to configured kinds; unknown kinds share the rest by hash.
pub(crate) const NAMED_GROUPS: usize = 11;
/// The kind index of values whose kind is not configured.
pub(crate) const UNKNOWN: u8 = u8::MAX;
/// The most configured kinds (derived ones included).
pub(crate) const MAX_KINDS: usize = 250;

#[derive(Clone, Debug)]
pub(crate) struct Kind {
    pub name: String,
    /// Seeds the hash of this kind's values.
    pub hash: u64,
    pub weight: f64,
    pub group: u8,
    /// `[full_weight_until, zero_weight_from]`.
    pub rarity: [f64; 2],
}

/// The configured kinds (see the module docs).
#[derive(Clone, Debug)]
pub(crate) struct Kinds {
    pub kinds: Vec<Kind>,
    hashes: Vec<u64>,
    pub ip: Option<u8>,
    pub ip24: u8,
    pub system: u8,
    pub template: u8,
    /// Composite kind and its parts.
    pub composites: Vec<(u8, Vec<u8>)>,
    default_weight: f64,
    seed: u64,
}

/// A kind as presented by a request: configured, or unknown with its hash.
#[derive(Clone, Copy, Debug)]
pub(crate) struct KindRef {
    pub index: u8,
    pub hash: u64,
    pub weight: f64,
    pub group: u8,
}

impl Kinds {
    /// Resolves a (validated) configuration.
    pub(crate) fn new(c: &LinkConfig) -> Result<Kinds, String> {
        let mut names: Vec<String> = c.kind_weights.keys().cloned().collect();
        for derived in ["ip", "ip24", "system", "template"] {
            if !names.iter().any(|n| n == derived) {
                names.push(derived.to_string());
            }
        }
        for combo in &c.composites {
            if combo.len() < 2 {
                return Err(format!(
                    "`link.composites`: {combo:?} needs at least two kinds"
                ));
            }
            let name = combo.join("+");
            if !names.contains(&name) {
                names.push(name);
            }
            for part in combo {
                if !names.contains(part) {
                    names.push(part.clone());
                }
            }
        }
        if names.len() > MAX_KINDS {
            return Err(format!(
                "`link.kind_weights`: at most {MAX_KINDS} kinds (with derived and composite ones), found {}",
                names.len()
            ));
        }
        let mut groups: Vec<String> = Vec::new();
        let mut kinds = Vec::with_capacity(names.len());
        for name in names {
            let group_name = c.groups.get(&name).cloned().unwrap_or_else(|| name.clone());
            let group = match groups.iter().position(|g| *g == group_name) {
                Some(g) => g,
                None => {
                    groups.push(group_name);
                    groups.len() - 1
                }
            };
            if group >= NAMED_GROUPS {
                return Err(format!(
                    "`link.groups`: at most {NAMED_GROUPS} evidence groups (configured kinds not in a group are one each); found {}",
                    group + 1
                ));
            }
            let weight = c
                .kind_weights
                .get(&name)
                .copied()
                .unwrap_or(c.default_weight);
            kinds.push(Kind {
                rarity: c.rarity(&name),
                hash: xxh3_64_with_seed(name.as_bytes(), c.seed),
                name,
                weight,
                group: group as u8,
            });
        }
        let find = |n: &str| kinds.iter().position(|k| k.name == n).map(|i| i as u8);
        let composites = c
            .composites
            .iter()
            .map(|combo| {
                let parts = combo.iter().filter_map(|p| find(p)).collect();
                (find(&combo.join("+")).unwrap_or(0), parts)
            })
            .collect();
        Ok(Kinds {
            hashes: kinds.iter().map(|k| k.hash).collect(),
            ip: find("ip"),
            ip24: find("ip24").unwrap_or(0),
            system: find("system").unwrap_or(0),
            template: find("template").unwrap_or(0),
            composites,
            kinds,
            default_weight: c.default_weight,
            seed: c.seed,
        })
    }

    /// The kind named `name`.
    #[inline]
    pub(crate) fn get(&self, name: &str) -> KindRef {
        let hash = xxh3_64_with_seed(name.as_bytes(), self.seed);
        match self.hashes.iter().position(|&h| h == hash) {
            Some(i) => self.at(i as u8),
            None => KindRef {
                index: UNKNOWN,
                hash,
                weight: self.default_weight,
                group: NAMED_GROUPS as u8 + (hash % (GROUPS - NAMED_GROUPS) as u64) as u8,
            },
        }
    }

    /// The configured kind at `index`.
    #[inline]
    pub(crate) fn at(&self, index: u8) -> KindRef {
        let k = &self.kinds[usize::from(index)];
        KindRef {
            index,
            hash: k.hash,
            weight: k.weight,
            group: k.group,
        }
    }

    /// The name of kind `index` (unknown kinds are `other`).
    pub(crate) fn name(&self, index: u8) -> &str {
        self.kinds
            .get(usize::from(index))
            .map_or("other", |k| k.name.as_str())
    }

    /// `[full_weight_until, zero_weight_from]` of kind `index`.
    pub(crate) fn rarity(&self, index: u8, c: &LinkConfig) -> [f64; 2] {
        self.kinds
            .get(usize::from(index))
            .map_or([c.full_weight_until, c.zero_weight_from], |k| k.rarity)
    }

    /// The weight of a value of kind `index` (`UNKNOWN` for unknown kinds).
    pub(crate) fn base_weight(&self, index: u8) -> f64 {
        self.kinds
            .get(usize::from(index))
            .map_or(self.default_weight, |k| k.weight)
    }
}

/// The /24 network of a dotted IPv4 address, as the text before its last
/// dot (`"203.0.113"`), or `None` for anything else (IPv6, garbage): the
/// value the linker derives for an address's `ip24`.
///
/// ```
/// assert_eq!(ringfence::link::ipv4_prefix("203.0.113.7"), Some("203.0.113"));
/// assert_eq!(ringfence::link::ipv4_prefix("2001:db8::1"), None);
/// ```
pub fn ipv4_prefix(ip: &str) -> Option<&str> {
    let b = ip.as_bytes();
    let (mut dots, mut digits, mut last_dot) = (0, 0, 0);
    for (i, &c) in b.iter().enumerate() {
        match c {
            b'0'..=b'9' if digits < 3 => digits += 1,
            b'.' if digits > 0 && dots < 3 => {
                dots += 1;
                digits = 0;
                last_dot = i;
            }
            _ => return None,
        }
    }
    (dots == 3 && digits > 0).then(|| &ip[..last_dot])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_prefixes() {
        assert_eq!(ipv4_prefix("203.0.113.7"), Some("203.0.113"));
        assert_eq!(ipv4_prefix("2001:db8::1"), None);
        assert_eq!(ipv4_prefix("1.2.3"), None);
        assert_eq!(ipv4_prefix("1.2.3.4.5"), None);
        assert_eq!(ipv4_prefix("1.2.3."), None);
        assert_eq!(ipv4_prefix("1234.2.3.4"), None);
    }

    #[test]
    fn kinds_resolve_with_groups() {
        let k = Kinds::new(&LinkConfig::default()).unwrap();
        let ip = k.get("ip");
        let ip24 = k.get("ip24");
        assert_eq!(ip.group, ip24.group);
        assert_ne!(k.get("device").group, ip.group);
        let x = k.get("no-such-kind");
        assert_eq!(x.index, UNKNOWN);
        assert!(usize::from(x.group) >= NAMED_GROUPS && usize::from(x.group) < GROUPS);
        assert_eq!(k.name(k.get("payment").index), "payment");
    }
}
