//! Exact properties of the sketches: merge, encoding, concurrency, errors.

use proptest::prelude::*;
use ringfence::sketch::{shingle, CountMin, Error, HyperLogLog, LshIndex, MinHash, Signature};
use std::sync::Arc;
use std::thread;

fn count_min(items: &[u64]) -> CountMin {
    let cm = CountMin::new(64, 4).unwrap().with_seed(3);
    items.iter().for_each(|x| cm.add(x, (*x % 5) as u32 + 1));
    cm
}
fn hll(items: &[u64], p: u8) -> HyperLogLog {
    let h = HyperLogLog::new(p).unwrap().with_seed(3);
    items.iter().for_each(|x| h.insert(x));
    h
}
fn minhash(items: &[u64]) -> MinHash {
    let m = MinHash::new(64).unwrap().with_seed(3);
    items.iter().for_each(|x| m.insert(x));
    m
}
fn texts(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            format!(
                "please explain step by step topic {} and then topic {}",
                i % 7,
                i % 3
            )
        })
        .collect()
}
fn lsh(ids: &[u64]) -> LshIndex {
    let index = LshIndex::new(64, 0.5, 1000).unwrap().with_seed(3);
    for (&id, t) in ids.iter().zip(texts(ids.len())) {
        index
            .insert(
                id,
                &Signature::from_hashes(64, 3, shingle(&t, 2, 0)).unwrap(),
            )
            .unwrap();
    }
    index
}

/// Flips bytes, truncates, or both, and re-seals the checksum half the time so
/// the payload checks (not only the checksum) are exercised.
fn corrupt(mut bytes: Vec<u8>, flips: &[(usize, u8)], cut: Option<usize>, reseal: bool) -> Vec<u8> {
    for &(pos, x) in flips {
        let i = pos % bytes.len();
        bytes[i] ^= x.max(1);
    }
    if let Some(c) = cut {
        bytes.truncate(c % bytes.len());
    }
    if reseal && bytes.len() >= 14 {
        let end = bytes.len() - 8;
        let sum = xxhash_rust_check::xxh3_64(&bytes[..end]);
        bytes[end..].copy_from_slice(&sum.to_le_bytes());
    }
    bytes
}

/// The checksum the frame uses (xxh3-64, seed 0), recomputed here through the
/// crate's own public hashing so the test needs no extra dependency.
mod xxhash_rust_check {
    use ringfence::sketch::Item;
    pub fn xxh3_64(b: &[u8]) -> u64 {
        // `Item::sketch_hash` is xxh3-64 with the given seed.
        b.sketch_hash(0)
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn merge_equals_sketch_of_union(a in prop::collection::vec(any::<u64>(), 0..400),
                                    b in prop::collection::vec(any::<u64>(), 0..400)) {
        let union: Vec<u64> = a.iter().chain(&b).copied().collect();

        let cm = count_min(&a);
        cm.merge(&count_min(&b)).unwrap();
        prop_assert_eq!(&cm, &count_min(&union));

        for p in [6, 12] {
            let h = hll(&a, p);
            h.merge(&hll(&b, p)).unwrap();
            prop_assert_eq!(&h, &hll(&union, p));
        }

        let m = minhash(&a);
        m.merge(&minhash(&b)).unwrap();
        prop_assert_eq!(&m, &minhash(&union));
        prop_assert_eq!(m.signature(), minhash(&union).signature());
    }

    #[test]
    fn encoding_round_trips(items in prop::collection::vec(any::<u64>(), 0..3000)) {
        let cm = count_min(&items);
        prop_assert_eq!(&CountMin::from_bytes(&cm.to_bytes()).unwrap(), &cm);
        for p in [4, 8, 12, 14] {
            let h = hll(&items, p);
            let back = HyperLogLog::from_bytes(&h.to_bytes()).unwrap();
            prop_assert_eq!(&back, &h);
            prop_assert_eq!(back.estimate(), h.estimate());
        }
        let m = minhash(&items);
        prop_assert_eq!(&MinHash::from_bytes(&m.to_bytes()).unwrap(), &m);
        let s = m.signature();
        prop_assert_eq!(&Signature::from_bytes(&s.to_bytes()).unwrap(), &s);
        let ids: Vec<u64> = items.iter().take(50).copied().collect::<std::collections::BTreeSet<_>>().into_iter().collect();
        let l = lsh(&ids);
        prop_assert_eq!(&LshIndex::from_bytes(&l.to_bytes()).unwrap(), &l);
    }

    #[test]
    fn corrupt_bytes_are_errors_never_panics(
        items in prop::collection::vec(any::<u64>(), 0..500),
        flips in prop::collection::vec((any::<usize>(), any::<u8>()), 0..4),
        cut in prop::option::of(any::<usize>()),
        reseal in any::<bool>(),
    ) {
        prop_assume!(!flips.is_empty() || cut.is_some());
        let encodings = [
            count_min(&items).to_bytes(),
            hll(&items, 12).to_bytes(),
            hll(&items, 5).to_bytes(),
            minhash(&items).to_bytes(),
            minhash(&items).signature().to_bytes(),
            lsh(&items.iter().take(20).copied().collect::<std::collections::BTreeSet<_>>().into_iter().collect::<Vec<_>>()).to_bytes(),
        ];
        for (i, bytes) in encodings.iter().enumerate() {
            let bad = corrupt(bytes.clone(), &flips, cut, reseal);
            if &bad == bytes {
                continue;
            }
            // Decoding must not panic; without resealing it must fail.
            let ok = match i {
                0 => CountMin::from_bytes(&bad).is_ok(),
                1 | 2 => HyperLogLog::from_bytes(&bad).is_ok(),
                3 => MinHash::from_bytes(&bad).is_ok(),
                4 => Signature::from_bytes(&bad).is_ok(),
                _ => LshIndex::from_bytes(&bad).is_ok(),
            };
            if !reseal {
                prop_assert!(!ok, "corrupted encoding {} was accepted", i);
            }
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256), kind in 1u8..=5) {
        let mut framed = b"RFSK".to_vec();
        framed.push(kind);
        framed.push(1);
        framed.extend_from_slice(&bytes);
        framed.extend_from_slice(&[0; 8]);
        let framed = corrupt(framed, &[], None, true);
        let _ = CountMin::from_bytes(&framed);
        let _ = HyperLogLog::from_bytes(&framed);
        let _ = MinHash::from_bytes(&framed);
        let _ = Signature::from_bytes(&framed);
        let _ = LshIndex::from_bytes(&framed);
        let _ = CountMin::from_bytes(&bytes);
    }
}

#[test]
fn decode_errors_say_what_and_where() {
    let bytes = hll(&[1, 2, 3], 12).to_bytes();
    let e = HyperLogLog::from_bytes(&bytes[..bytes.len() - 3]).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Decode {
                sketch: "HyperLogLog",
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("checksum"), "{e}");

    let e = CountMin::from_bytes(&bytes).unwrap_err();
    assert!(e.to_string().contains("kind"), "{e}");

    let e = MinHash::from_bytes(b"nonsense bytes here").unwrap_err();
    assert!(e.to_string().contains("magic"), "{e}");

    let e = HyperLogLog::from_bytes(&[]).unwrap_err();
    assert!(e.to_string().contains("shorter"), "{e}");
}

#[test]
fn merge_refuses_other_shapes_and_seeds() {
    let a = CountMin::new(64, 4).unwrap();
    assert!(matches!(
        a.merge(&CountMin::new(32, 4).unwrap()),
        Err(Error::Incompatible { .. })
    ));
    assert!(a
        .merge(&CountMin::new(64, 4).unwrap().with_seed(9))
        .is_err());
    assert!(a
        .merge(&CountMin::new(64, 4).unwrap().conservative(true))
        .is_err());

    let h = HyperLogLog::new(12).unwrap();
    assert!(h.merge(&HyperLogLog::new(11).unwrap()).is_err());
    assert!(h
        .merge(&HyperLogLog::new(12).unwrap().with_seed(1))
        .is_err());

    let m = MinHash::new(64).unwrap();
    assert!(m.merge(&MinHash::new(128).unwrap()).is_err());
    let e = m
        .merge(&MinHash::new(64).unwrap().with_seed(1))
        .unwrap_err();
    assert!(e.to_string().contains("seed"), "{e}");

    let l = LshIndex::with_banding(16, 4, 10).unwrap();
    assert!(l.merge(&LshIndex::with_banding(8, 8, 10).unwrap()).is_err());
}

#[test]
fn bad_parameters_are_errors() {
    assert!(CountMin::new(0, 4).is_err());
    assert!(CountMin::new(10, 0).is_err());
    assert!(CountMin::new(u32::MAX, 32).is_err());
    assert!(CountMin::with_error(0.0, 0.1).is_err());
    assert!(CountMin::with_error(0.1, f64::NAN).is_err());
    assert!(HyperLogLog::new(3).is_err());
    assert!(HyperLogLog::new(19).is_err());
    assert!(HyperLogLog::from_registers(4, 0, &[0; 15]).is_err());
    assert!(HyperLogLog::from_registers(4, 0, &[62; 16]).is_err());
    assert!(MinHash::new(0).is_err());
    assert!(Signature::from_hashes(0, 0, [1]).is_err());
    assert!(LshIndex::new(128, 1.5, 10).is_err());
    assert!(LshIndex::new(128, 0.5, 0).is_err());
    let e = HyperLogLog::new(30).unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid HyperLogLog parameter `precision`: must be in 4..=18, got 30"
    );
}

/// Several threads inserting into one sketch give exactly the sketch one
/// thread would build (the updates are commutative atomics).
#[test]
fn concurrent_inserts_equal_single_thread() {
    let items: Vec<u64> = (0..200_000u64)
        .map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15))
        .collect();
    let threads = 4;
    let cm = Arc::new(CountMin::new(1024, 4).unwrap());
    let h = Arc::new(HyperLogLog::new(12).unwrap());
    let m = Arc::new(MinHash::new(128).unwrap());
    let items = Arc::new(items);
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (cm, h, m, items) = (cm.clone(), h.clone(), m.clone(), items.clone());
            thread::spawn(move || {
                // Overlapping shares: each thread inserts every item whose
                // index is ≡ t or t+1 (mod threads), so items are duplicated
                // across threads as well.
                for (i, x) in items.iter().enumerate() {
                    if i % threads == t || i % threads == (t + 1) % threads {
                        cm.add(x, 1);
                        h.insert(x);
                        m.insert(x);
                    }
                }
            })
        })
        .collect();
    handles.into_iter().for_each(|j| j.join().unwrap());

    let (cm1, h1, m1) = (
        CountMin::new(1024, 4).unwrap(),
        HyperLogLog::new(12).unwrap(),
        MinHash::new(128).unwrap(),
    );
    for x in items.iter() {
        cm1.add(x, 2);
        h1.insert(x);
        m1.insert(x);
    }
    assert_eq!(*cm, cm1);
    assert_eq!(*h, h1);
    assert_eq!(*m, m1);
}

/// The sparse → dense move of a HyperLogLog loses nothing when many threads
/// race through it, at every precision that has a sparse form. The threads
/// start together and insert just past the promotion point, so the move
/// happens while all of them write.
#[test]
fn concurrent_sparse_promotion_loses_nothing() {
    for p in [8, 10, 12] {
        for round in 0..200u64 {
            let h = Arc::new(HyperLogLog::new(p).unwrap());
            let n = (3u64 << p) / 64 * 2; // twice the promotion threshold
            let start = Arc::new(std::sync::Barrier::new(4));
            let handles: Vec<_> = (0..4u64)
                .map(|t| {
                    let (h, start) = (h.clone(), start.clone());
                    thread::spawn(move || {
                        start.wait();
                        for i in (t..n).step_by(4) {
                            h.insert(&(i + round * n));
                        }
                    })
                })
                .collect();
            handles.into_iter().for_each(|j| j.join().unwrap());
            assert!(!h.is_sparse());
            let single = HyperLogLog::new(p).unwrap();
            (0..n).for_each(|i| single.insert(&(i + round * n)));
            assert_eq!(h.registers(), single.registers(), "p = {p}, round {round}");
        }
    }
}

/// Conservative update stays an upper bound when threads race on the same items.
#[test]
fn concurrent_conservative_update_never_under_estimates() {
    let cm = Arc::new(CountMin::new(64, 4).unwrap().conservative(true));
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let cm = cm.clone();
            thread::spawn(move || {
                for i in 0..50_000u64 {
                    cm.add(&(i % 100), 1);
                }
            })
        })
        .collect();
    handles.into_iter().for_each(|j| j.join().unwrap());
    for x in 0..100u64 {
        assert!(cm.estimate(&x) >= 2000, "item {x}: {}", cm.estimate(&x));
    }
}

#[test]
fn counters_saturate_instead_of_wrapping() {
    let cm = CountMin::new(8, 2).unwrap();
    cm.add("x", u32::MAX - 1);
    cm.add("x", 5);
    assert_eq!(cm.estimate("x"), u32::MAX);
    cm.merge(&cm.clone()).unwrap();
    assert_eq!(cm.estimate("x"), u32::MAX);
}

#[test]
fn serde_round_trips_and_validates() {
    let items: Vec<u64> = (0..5000).collect();
    let cm = count_min(&items);
    let back: CountMin = serde_json::from_str(&serde_json::to_string(&cm).unwrap()).unwrap();
    assert_eq!(back, cm);
    let h = hll(&items, 10);
    let back: HyperLogLog = serde_json::from_str(&serde_json::to_string(&h).unwrap()).unwrap();
    assert_eq!(back, h);
    let m = minhash(&items);
    let back: MinHash = serde_json::from_str(&serde_json::to_string(&m).unwrap()).unwrap();
    assert_eq!(back, m);
    let s = m.signature();
    let back: Signature = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
    assert_eq!(back, s);
    let l = lsh(&[1, 2, 3]);
    let back: LshIndex = serde_json::from_str(&serde_json::to_string(&l).unwrap()).unwrap();
    assert_eq!(back, l);

    let bad = r#"{"precision":4,"seed":0,"registers":[0,0,0]}"#;
    assert!(serde_json::from_str::<HyperLogLog>(bad)
        .unwrap_err()
        .to_string()
        .contains("registers"));
    let bad = r#"{"width":2,"depth":2,"seed":0,"conservative":false,"total":0,"counters":[1]}"#;
    assert!(serde_json::from_str::<CountMin>(bad).is_err());
    let bad = r#"{"seed":0,"bins":[5]}"#; // a value that does not belong to bin 0 of 1? (every value does)
    assert!(serde_json::from_str::<MinHash>(bad).is_ok());
    let bad = r#"{"seed":0,"bins":[5, 6]}"#; // small values belong to bin 0, not bin 1
    assert!(serde_json::from_str::<MinHash>(bad).is_err());
    assert!(serde_json::from_str::<Signature>(r#"{"seed":0,"values":[]}"#).is_err());
}

#[test]
fn hll_sparse_form_is_small_and_moves_to_dense() {
    let h = HyperLogLog::new(12).unwrap();
    assert!(h.is_sparse());
    assert_eq!(h.memory_bytes(), 1024);
    for i in 0..150u64 {
        h.insert(&i);
    }
    assert!(h.is_sparse());
    assert!(h.to_bytes().len() < 700, "{}", h.to_bytes().len());
    for i in 150..1000u64 {
        h.insert(&i);
    }
    assert!(!h.is_sparse());
    assert_eq!(h.memory_bytes(), 1024 + 4096);
    // Packed six bits per register.
    assert_eq!(h.to_bytes().len(), 6 + 1 + 8 + 1 + 3072 + 8);
}

#[test]
fn lsh_finds_near_duplicates_and_respects_capacity() {
    let index = LshIndex::new(128, 0.5, 100).unwrap();
    let sig = |t: &str| Signature::from_hashes(128, index.seed(), shingle(t, 3, 0)).unwrap();
    let template = "You are a helpful assistant. Think step by step and show all of your reasoning before the final answer. Question:";
    for i in 0..100u64 {
        index
            .insert(i, &sig(&format!("{template} what is {i} times {}?", i + 1)))
            .unwrap();
    }
    assert_eq!(index.len(), 100);
    let found = index
        .query(&sig(&format!("{template} what is 7 times 9?")))
        .unwrap();
    assert!(found.len() >= 90, "template matches: {}", found.len());
    assert!(index
        .query(&sig(
            "write a limerick about a cat who learned to sail the seas"
        ))
        .unwrap()
        .is_empty());

    // Full: the oldest id goes first.
    assert_eq!(
        index.insert(1000, &sig("a new prompt entirely")).unwrap(),
        Some(0)
    );
    assert_eq!(index.len(), 100);
    assert_eq!(index.evictions(), 1);
    assert!(index.remove(1000));
    assert!(!index.remove(1000));
    // Re-inserting the same id many times never grows the index.
    for _ in 0..10_000 {
        index.insert(5, &sig("the same id again")).unwrap();
    }
    assert_eq!(index.len(), 99);
    // Wrong signature length or seed is an error, not a panic.
    assert!(index
        .insert(1, &Signature::from_hashes(64, index.seed(), [1]).unwrap())
        .is_err());
    assert!(index
        .query(&Signature::from_hashes(128, 1, [1]).unwrap())
        .is_err());
}

#[test]
fn lsh_banding_uses_all_values_and_tracks_the_threshold() {
    for (t, lo, hi) in [(0.3, 0.2, 0.45), (0.5, 0.35, 0.65), (0.8, 0.7, 0.9)] {
        let index = LshIndex::new(128, t, 10).unwrap();
        assert_eq!(index.bands() * index.rows(), 128);
        let at = index.threshold();
        assert!(
            at > lo && at < hi,
            "threshold {t}: banding {}x{} has knee {at}",
            index.bands(),
            index.rows()
        );
    }
}

#[test]
fn jaccard_edge_cases() {
    let empty = MinHash::new(32).unwrap();
    let one = MinHash::new(32).unwrap();
    one.insert("x");
    assert_eq!(empty.jaccard(&empty.clone()).unwrap(), 1.0);
    assert_eq!(empty.jaccard(&one).unwrap(), 0.0);
    assert_eq!(one.jaccard(&one.clone()).unwrap(), 1.0);
    assert!(one
        .signature()
        .jaccard(&MinHash::new(16).unwrap().signature())
        .is_err());
}

/// Frames with a valid checksum but hostile parameters: errors, no huge
/// allocation, no overflow.
#[test]
fn resealed_hostile_frames_are_rejected_cheaply() {
    fn frame(kind: u8, payload: &[u8]) -> Vec<u8> {
        let mut f = b"RFSK".to_vec();
        f.push(kind);
        f.push(1);
        f.extend_from_slice(payload);
        f.extend_from_slice(&[0; 8]);
        corrupt(f, &[], None, true)
    }
    // CountMin claiming 2^28 counters with none present.
    let mut p = Vec::new();
    p.extend_from_slice(&(1u32 << 28).to_le_bytes());
    p.extend_from_slice(&1u32.to_le_bytes());
    p.extend_from_slice(&0u64.to_le_bytes());
    p.push(0);
    p.extend_from_slice(&0u64.to_le_bytes());
    let e = CountMin::from_bytes(&frame(1, &p)).unwrap_err();
    assert!(e.to_string().contains("counters"), "{e}");
    // LshIndex with capacity u64::MAX.
    let mut p = Vec::new();
    p.extend_from_slice(&1u32.to_le_bytes());
    p.extend_from_slice(&1u32.to_le_bytes());
    p.extend_from_slice(&u64::MAX.to_le_bytes());
    p.extend_from_slice(&0u64.to_le_bytes());
    p.extend_from_slice(&1u64.to_le_bytes());
    p.extend_from_slice(&7u64.to_le_bytes());
    p.extend_from_slice(&9u64.to_le_bytes());
    assert!(LshIndex::from_bytes(&frame(4, &p)).is_err());
    // A CountMin whose counters disagree with its total.
    let cm = CountMin::new(4, 2).unwrap();
    cm.add("x", 3);
    let mut bytes = cm.to_bytes();
    let total_at = 6 + 4 + 4 + 8 + 1;
    bytes[total_at] = 9;
    let e = CountMin::from_bytes(&corrupt(bytes, &[], None, true)).unwrap_err();
    assert!(e.to_string().contains("total"), "{e}");
    // Serde: the shape is checked before anything is allocated.
    let huge =
        r#"{"width":268435456,"depth":1,"seed":0,"conservative":false,"total":0,"counters":[]}"#;
    assert!(serde_json::from_str::<CountMin>(huge).is_err());
    // A signature half empty did not come from a set.
    let half = format!(r#"{{"seed":0,"values":[{},5]}}"#, u64::MAX);
    assert!(serde_json::from_str::<Signature>(&half).is_err());
    let l = LshIndex::with_banding(1, 1, usize::MAX);
    assert!(l.is_err());
}

#[test]
fn saturated_hll_estimates_stay_finite() {
    let full = HyperLogLog::from_registers(4, 0, &[61; 16]).unwrap();
    assert!(full.estimate().is_finite());
}

/// Densification stays cheap at the largest k: a set of two items fills
/// 65,534 empty bins in O(k) (it used to take k²/2 draws).
#[test]
fn densification_is_linear_at_large_k() {
    let m = MinHash::new(ringfence::sketch::MAX_K).unwrap();
    m.insert("a");
    m.insert("b");
    let sig = m.signature();
    assert!(sig.values().iter().all(|&v| v != u64::MAX));
    let other =
        Signature::from_text(ringfence::sketch::MAX_K, m.seed(), "hello there world", 2).unwrap();
    assert_eq!(other.len(), ringfence::sketch::MAX_K);
}
