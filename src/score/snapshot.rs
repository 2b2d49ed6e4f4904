//! The scorer's part of a guard snapshot: every scored cluster, in table
//! order, and how a decoded one is installed or merged.
//!
//! ```text
//! u64  table size (cells)
//! u64  scored clusters
//! per cluster, in cell order:
//!   u32 cell, u64 tag, f64 born, f64 last active,
//!   then each part of its statistics (see `parts`)
//! ```

use super::stats::Stats;
use super::table::Scorer;
use crate::codec::DecodeError as Error;
use crate::codec::{Reader, Writer};
use crate::slots::{decode_taken, TakenCells};

/// Decoded scorer state, checked and ready to install.
pub(crate) struct ScoreSnapshot(TakenCells<Stats>);

impl Scorer {
    /// Writes every scored cluster, in table order.
    pub(crate) fn encode(&self, w: &mut Writer) {
        self.slots.encode(w, |st, w| {
            w.f64(st.born);
            w.f64(st.last);
            st.encode(w);
        });
    }

    /// Reads what `encode` wrote, shifting every time by `shift` seconds.
    pub(crate) fn decode(&self, r: &mut Reader<'_>, shift: f64) -> Result<ScoreSnapshot, Error> {
        let cells = decode_taken(r, "cluster", 164, |r, i, _| self.decode_cell(r, i, shift))?;
        Ok(ScoreSnapshot(cells))
    }

    /// Reads one cluster's times and statistics.
    fn decode_cell(&self, r: &mut Reader<'_>, i: u32, shift: f64) -> Result<Stats, Error> {
        let born = r.f64("cluster born")?;
        let seen = r.f64("cluster last active")?;
        if !born.is_finite() || !seen.is_finite() {
            return Err(r.err(format!("cluster cell {i} is malformed")));
        }
        let (born, seen) = (born + shift, seen + shift);
        if !born.is_finite() || !seen.is_finite() {
            return Err(r.err(format!("cluster cell {i}'s times are out of range")));
        }
        let mut st = Stats::decode(r, born, seen)?;
        // Windows and buckets count from this guard's clock origin: they
        // follow the shifted last activity, not the other clock's.
        if shift != 0.0 {
            st.clock.rebase(st.last, self.config.half_life_secs);
        }
        Ok(st)
    }

    /// Whether a decoded snapshot can be installed as it is.
    pub(crate) fn check_installable(&self, s: &ScoreSnapshot) -> Result<(), String> {
        self.slots
            .check_installable(&s.0, "score", "score.max_clusters")
    }

    /// Replaces the state with a decoded one (checked with `check_installable`).
    pub(crate) fn install(&self, s: ScoreSnapshot) {
        self.slots.install(s.0.cells);
    }

    /// Folds another node's statistics in: counts decayed to the later time
    /// and added, active accounts and buckets united. `cluster_now` gives
    /// the id a cluster of the other node has here (a cluster's id is its
    /// root account's, and the merged links may have another root).
    pub(crate) fn merge(&self, other: ScoreSnapshot, cluster_now: impl Fn(u64) -> u64) {
        let half_life = self.config.half_life_secs;
        for (_, tag, o) in other.0.cells {
            self.slots.update(
                cluster_now(tag),
                || Stats::new(o.last),
                |st| st.merge(o, half_life),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Kind;
    use crate::score::{Activity, ScoreConfig};
    use xxhash_rust::xxh3::xxh3_64;

    fn workload(s: &Scorer, seed: u64) {
        let mut t = 10.0;
        for i in 0..4000u64 {
            let h = xxh3_64(&(i ^ seed).to_le_bytes());
            let cluster = (h % 40) * 7919 + 3;
            let account = (h >> 20) % 50;
            let prompt = if h % 3 == 0 {
                format!("show your reasoning step by step for {}", h % 97)
            } else {
                format!("hello {}", h % 13)
            };
            let models = ["m1", "m2", "m3", "m4", "m5", "m6"];
            let model = models[((h >> 40) % if i < 2000 { 2 } else { 6 }) as usize];
            let a = Activity {
                cluster,
                cluster_size: (h % 5) as u32,
                account: xxh3_64(&account.to_le_bytes()),
                prompt: if h % 11 == 0 { None } else { Some(&prompt) },
                cot: h % 3 == 0 && h % 11 != 0,
                template_shared: h % 4 == 0,
                prompt_key: if h % 11 == 0 {
                    0
                } else {
                    xxh3_64(prompt.as_bytes())
                },
                model: if h % 17 == 0 { None } else { Some(model) },
                input_tokens: (h % 500) as u32,
                now: t,
            };
            s.record(&a);
            if h % 5 == 1 {
                s.record_output(cluster, (h % 300) as u32, (h % 3000) as u32, t);
            }
            t += (h % 15) as f64;
            if i % 700 == 699 {
                t += 5000.0;
            }
        }
    }

    fn enc(s: &Scorer) -> Vec<u8> {
        let mut w = Writer::new(Kind::Guard, 1, 0);
        s.encode(&mut w);
        w.finish()
    }

    fn dec(s: &Scorer, b: &[u8], shift: f64) -> ScoreSnapshot {
        let mut r = Reader::open(b, Kind::Guard, 1).unwrap();
        let x = s.decode(&mut r, shift).unwrap();
        r.finish().unwrap();
        x
    }

    fn sigs(s: &Scorer, now: f64) -> Vec<u8> {
        let mut out = Vec::new();
        for c in 0..40u64 {
            if let Some(g) = s.signals_of(c * 7919 + 3, now) {
                for v in [
                    g.volume,
                    g.active_accounts,
                    g.busiest_share,
                    g.spread,
                    g.cot,
                    g.template,
                    g.diversity,
                    g.synchrony,
                    g.output_ratio,
                    g.pivot,
                    g.score,
                ] {
                    out.extend_from_slice(&v.to_bits().to_le_bytes());
                }
                for (n, v) in g.strongest(s.config()).iter() {
                    out.extend_from_slice(n.as_bytes());
                    out.extend_from_slice(&v.to_bits().to_le_bytes());
                }
            } else {
                out.push(0xff);
            }
        }
        out
    }

    /// Hashes of the snapshots of a workload (two scorers, a merge, a
    /// shifted restore) and of the signals read afterwards.
    fn workload_hashes() -> [u64; 6] {
        let cfg = ScoreConfig {
            max_clusters: 16,
            ..ScoreConfig::default()
        };
        let a = Scorer::new(cfg.clone());
        let b = Scorer::new(cfg.clone());
        workload(&a, 1);
        workload(&b, 2);
        let ea = enc(&a);
        let eb = enc(&b);
        b.merge(dec(&b, &ea, 0.0), |c| c);
        let merged = enc(&b);
        let c = Scorer::new(cfg.clone());
        let snap = dec(&c, &ea, 1234.5);
        c.check_installable(&snap).unwrap();
        c.install(snap);
        let shifted = enc(&c);
        let d = Scorer::new(cfg);
        d.merge(dec(&d, &eb, -77.25), |c| c);
        d.merge(dec(&d, &shifted, 0.0), |c| c);
        let sd = enc(&d);
        let mut s = sigs(&b, 40_000.0);
        s.extend(sigs(&c, 50_000.0));
        s.extend(sigs(&d, 45_000.0));
        [
            xxh3_64(&ea),
            xxh3_64(&eb),
            xxh3_64(&merged),
            xxh3_64(&shifted),
            xxh3_64(&sd),
            xxh3_64(&s),
        ]
    }

    #[test]
    fn the_snapshot_format_and_the_numbers_are_fixed() {
        // Taken before the scorer was split into modules: the bytes of a
        // snapshot, and the signals after merging and restoring, must not
        // change without a new snapshot version.
        assert_eq!(
            workload_hashes(),
            [
                0xd6b12770ff559c6c,
                0xa5401235b35005f6,
                0xca4d44bedda80e9d,
                0xccae0646313b596f,
                0xd01946060e90ccca,
                0xac2e917467158307,
            ]
        );
    }

    #[test]
    fn a_corrupt_count_is_an_error() {
        let s = Scorer::new(ScoreConfig::default());
        s.record(&Activity {
            cluster: 5,
            cluster_size: 3,
            account: 1,
            prompt: None,
            cot: false,
            template_shared: false,
            prompt_key: 0,
            model: None,
            input_tokens: 1,
            now: 1.0,
        });
        let mut b = enc(&s);
        // The first decayed count (requests) follows the table size, the
        // cluster count, the cell, the tag and the two times.
        let at = 6 + 8 + 8 + 4 + 8 + 16;
        b[at..at + 4].copy_from_slice(&(-1.0f32).to_bits().to_le_bytes());
        let n = b.len() - 8;
        let sum = xxh3_64(&b[..n]);
        b[n..].copy_from_slice(&sum.to_le_bytes());
        let mut r = Reader::open(&b, Kind::Guard, 1).unwrap();
        let e = s.decode(&mut r, 0.0).err().unwrap().to_string();
        assert!(e.contains("a decayed count -1 is not a count"), "{e}");
    }
}
