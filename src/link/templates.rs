//! Prompt templates: a prompt's word 3-grams hashed into a MinHash
//! signature of [`TEMPLATE_K`] values, cut into [`TEMPLATE_BANDS`] bands
//! whose keys are values of the `template` kind: prompts that share a band
//! (near-identical text around different details) link their accounts.

use super::observe::Recorder;
use super::tables::{value_tag, Accounts};
use super::Linker;
use crate::sketch::{band_keys_into, Signature};

/// Values in a prompt's MinHash signature.
pub(super) const TEMPLATE_K: usize = 64;
/// Bands the signature is cut into (each a value of the `template` kind).
pub(super) const TEMPLATE_BANDS: usize = 16;
/// Signature values per band.
pub(super) const TEMPLATE_ROWS: usize = TEMPLATE_K / TEMPLATE_BANDS;
/// Words per shingle.
pub(super) const SHINGLE_WORDS: usize = 3;
/// Prompts of fewer words have no template.
pub(super) const MIN_PROMPT_WORDS: usize = 8;

const _: () = assert!(TEMPLATE_ROWS * TEMPLATE_BANDS == TEMPLATE_K);
const _: () = assert!(TEMPLATE_BANDS == crate::request::DIGEST_BANDS);

/// A prompt's band keys.
pub(super) type Bands = [u64; TEMPLATE_BANDS];
/// A prompt's MinHash signature.
pub(super) type Signed = [u64; TEMPLATE_K];

/// All the bands folded: equal only for (nearly) equal prompts; 0 without
/// bands.
pub(super) fn prompt_key(bands: Option<&Bands>) -> u64 {
    bands.map_or(0, |keys| {
        keys.iter().fold(0u64, |h, &k| {
            (h ^ k).wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(29)
        }) | 1
    })
}

impl Linker {
    /// The prompt's band keys, if it has enough words to have a template.
    pub(super) fn template_bands<'p>(&self, prompt: Option<&'p str>) -> Option<(&'p str, Bands)> {
        let mut sig = [0u64; TEMPLATE_K];
        self.template_signature(prompt, &mut sig)
    }

    /// [`Linker::template_bands`], leaving the prompt's signature in `sig`.
    /// The signature is seeded by the guard's secret seed or, with a
    /// consortium key, by a seed derived from the key (so that providers'
    /// bands agree); the band keys always follow the guard's own seed.
    pub(super) fn template_signature<'p>(
        &self,
        prompt: Option<&'p str>,
        sig: &mut Signed,
    ) -> Option<(&'p str, Bands)> {
        let template = self.kinds.at(self.kinds.template);
        let seed = self
            .intel
            .as_ref()
            .map_or(self.config.seed, |i| i.key.minhash_seed());
        prompt
            .filter(|p| {
                p.split_ascii_whitespace()
                    .nth(MIN_PROMPT_WORDS - 1)
                    .is_some()
            })
            .and_then(|prompt| {
                Signature::fill_from_text(sig, seed, prompt, SHINGLE_WORDS).ok()?;
                let mut bands = [0u64; TEMPLATE_BANDS];
                band_keys_into(sig, TEMPLATE_ROWS, template.hash, &mut bands);
                Some((prompt, bands))
            })
    }

    /// Reads the bands' first cells, to bring them into the cache (the
    /// value is meaningless).
    pub(super) fn prefetch_templates(&self, bands: &Bands) -> u64 {
        let template = self.kinds.template;
        bands.iter().fold(0u64, |warm, &vkey| {
            warm.wrapping_add(self.templates.prefetch(value_tag(vkey, template)))
        })
    }
}

/// Accounts whose prompts shared a band with this one (the first four).
pub(super) struct TemplatePeers {
    peers: [u32; 4],
    len: usize,
}

impl TemplatePeers {
    fn add(&mut self, b: u32) {
        if self.len < self.peers.len() && !self.peers[..self.len].contains(&b) {
            self.peers[self.len] = b;
            self.len += 1;
        }
    }

    /// Whether one of them is in the cluster whose root is `root`.
    pub fn any_in(&self, accounts: &Accounts, root: u32) -> bool {
        self.peers[..self.len]
            .iter()
            .any(|&b| accounts.root(b) == root)
    }
}

impl Recorder<'_> {
    /// Records the prompt's template bands, gathering evidence; the other
    /// accounts anchoring them.
    pub(super) fn record_templates(
        &mut self,
        bands: Option<(&str, Bands)>,
        sig: Option<&Signed>,
    ) -> TemplatePeers {
        let mut peers = TemplatePeers {
            peers: [0; 4],
            len: 0,
        };
        let Some((prompt, keys)) = bands else {
            return peers;
        };
        let l = self.linker;
        let template = l.kinds.at(l.kinds.template);
        for (band, vkey) in keys.into_iter().enumerate() {
            // A band's value for the consortium: its index and its rows.
            let raw = sig.map(|sig| {
                move |feed: &mut dyn FnMut(&[u8])| {
                    feed(&[band as u8]);
                    for v in &sig[band * TEMPLATE_ROWS..(band + 1) * TEMPLATE_ROWS] {
                        feed(&v.to_le_bytes());
                    }
                }
            });
            let raw = raw.as_ref().map(|r| r as &crate::intel::Pieces<'_>);
            let (anchors, _) = self.value(&l.templates, template, vkey, None, raw, || {
                format!("a prompt template ({:.40}…)", prompt.trim())
            });
            for b in anchors.iter().filter(|&b| b != self.a) {
                peers.add(b);
            }
        }
        peers
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guard::Request;
    use crate::link::LinkConfig;
    use xxhash_rust::xxh3::xxh3_64_with_seed;

    #[test]
    fn templates_link_through_their_bands() {
        let l = Linker::new(LinkConfig {
            kind_weights: [("template".to_string(), 1.0)].into_iter().collect(),
            ..LinkConfig::default()
        });
        let prompt = |topic: &str| {
            format!("You are an expert tutor. Think step by step and show all of your reasoning before answering. Explain {topic} to a student.")
        };
        let obs = |account: &str, topic: &str, now: f64| {
            l.observe(
                &Request {
                    account,
                    fingerprints: &[],
                    prompt: Some(&prompt(topic)),
                    system: None,
                    model: None,
                    input_tokens: 0,
                    max_tokens: 0,
                },
                now,
            )
        };
        assert!(!obs("t1", "photosynthesis", 0.0).template_shared);
        let o = obs("t2", "the krebs cycle", 1.0);
        assert_eq!(o.cluster.size, 2);
        assert!(o.template_shared);
        assert!(l.evidence("t2").iter().any(|v| v.kind == "template"));
    }

    /// The band keys are those the linker always computed: xxh3 of each
    /// band's four little-endian values, seeded with the template kind's
    /// hash and the band.
    #[test]
    fn band_keys_are_unchanged() {
        let l = Linker::new(LinkConfig::default());
        let prompt = "one two three four five six seven eight nine ten";
        let (_, bands) = l.template_bands(Some(prompt)).unwrap();
        let mut sig = [0u64; 64];
        Signature::fill_from_text(&mut sig, l.config.seed, prompt, 3).unwrap();
        let seed = l.kinds.at(l.kinds.template).hash;
        for (band, vals) in sig.chunks_exact(4).enumerate() {
            let mut bytes = [0u8; 32];
            for (i, v) in vals.iter().enumerate() {
                bytes[i * 8..i * 8 + 8].copy_from_slice(&v.to_le_bytes());
            }
            assert_eq!(bands[band], xxh3_64_with_seed(&bytes, seed ^ band as u64));
        }
        assert!(l
            .template_bands(Some("only seven words in this short prompt"))
            .is_none());
    }
}
