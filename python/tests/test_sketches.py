"""The sketches on their own: estimates within their bounds, merges, encodings, errors."""

from __future__ import annotations

import random

import pytest

import ringfence


def test_hyperloglog_counts_distinct_items():
    h = ringfence.HyperLogLog(12)
    assert h.is_empty() and h.estimate() == 0.0
    h.update(f"acct-{i}" for i in range(10_000))
    h.update(f"acct-{i}" for i in range(5_000))  # repeats change nothing
    # p = 12: relative standard error 1.625 %; 4 sigma.
    assert h.estimate() == pytest.approx(10_000, rel=4 * 0.01625)
    assert h.relative_error == pytest.approx(1.04 / 64)
    assert h.precision == 12 and h.seed == ringfence.HyperLogLog().seed


def test_hyperloglog_merge_equals_the_union_and_round_trips():
    a, b, union = ringfence.HyperLogLog(10), ringfence.HyperLogLog(10), ringfence.HyperLogLog(10)
    for i in range(3000):
        (a if i % 2 else b).add(i)
        union.add(i)
    a.merge(b)
    assert a.to_bytes() == union.to_bytes()
    c = ringfence.HyperLogLog.from_bytes(a.to_bytes())
    assert c.estimate() == a.estimate()
    with pytest.raises(ringfence.InputError, match="cannot combine"):
        a.merge(ringfence.HyperLogLog(11))
    with pytest.raises(ringfence.InputTypeError, match="other must be a HyperLogLog"):
        a.merge(ringfence.CountMin(10, 2))


def test_item_types_hash_like_rust():
    h = ringfence.HyperLogLog(8)
    h.add("x")
    h.add(b"x")  # the same bytes: the same item
    h.add(bytearray(b"x"))
    assert round(h.estimate()) == 1
    h.add(-1)
    h.add(2**64 - 1)  # i64 -1 and u64 max share their 8 bytes
    assert round(h.estimate()) == 2
    with pytest.raises(ringfence.InputError, match="does not fit in 64 bits"):
        h.add(2**64)
    with pytest.raises(ringfence.InputTypeError, match="item must be a str, bytes or int, not float"):
        h.add(1.5)
    with pytest.raises(ringfence.InputTypeError):
        h.add(True)
    with pytest.raises(ringfence.InputError, match="not valid UTF-8"):
        h.add("\ud800")


def test_countmin_never_underestimates():
    cm = ringfence.CountMin.with_error(0.001, 0.01)
    rng = random.Random(1)
    truth: dict[str, int] = {}
    for _ in range(20_000):
        k = f"ip-{int(rng.paretovariate(1.2)) % 5000}"
        truth[k] = truth.get(k, 0) + 1
        cm.add(k)
    cm.add("heavy", 1000)
    assert cm.total == 21_000
    for k, n in truth.items():
        assert n <= cm.estimate(k) <= n + 0.001 * cm.total * 3
    assert cm.estimate("heavy") >= 1000
    assert cm.estimate("never") <= 0.001 * cm.total * 3
    copy = ringfence.CountMin.from_bytes(cm.to_bytes())
    assert copy.estimate("heavy") == cm.estimate("heavy")
    copy.merge(cm)
    assert copy.total == 2 * cm.total
    with pytest.raises(ringfence.InputError, match="n must be an integer from 0 to 4294967295"):
        cm.add("x", -1)
    with pytest.raises(ringfence.InputError):
        ringfence.CountMin.with_error(0.0, 0.01)
    with pytest.raises(ringfence.InputError, match="depth must be an integer from 1 to 32"):
        ringfence.CountMin(100, 0)
    assert ringfence.CountMin(16, 4, seed=9, conservative=True).conservative


def test_minhash_estimates_similarity():
    a = ringfence.MinHash.from_text("Think step by step and show all of your reasoning: what is 12 * 19?")
    b = ringfence.MinHash.from_text("Think step by step and show all of your reasoning: what is 31 * 7?")
    c = ringfence.MinHash.from_text("Recommend a good book about the history of Portugal, please")
    assert a.jaccard(b) > 0.4
    assert a.jaccard(c) < 0.2
    assert a.k == 128 and len(a.signature()) == 128
    s1, s2 = ringfence.MinHash(64), ringfence.MinHash(64)
    s1.update(range(0, 1000))
    s2.update(range(500, 1500))
    # J = 500/1500; standard error sqrt(J(1-J)/k) = 0.059; 4 sigma.
    assert s1.jaccard(s2) == pytest.approx(1 / 3, abs=4 * 0.059)
    s1.merge(s2)
    back = ringfence.MinHash.from_bytes(s1.to_bytes())
    assert back.signature() == s1.signature()
    with pytest.raises(ringfence.InputError):
        s1.jaccard(ringfence.MinHash(128))
    with pytest.raises(ringfence.InputError, match="n must be an integer from 1 to 16"):
        a.add_text("x", 0)
    with pytest.raises(ringfence.InputError, match="k must be an integer from 1 to 65536"):
        ringfence.MinHash(0)


@pytest.mark.parametrize("cls", [ringfence.CountMin, ringfence.HyperLogLog, ringfence.MinHash])
def test_corrupt_encodings_are_snapshot_errors(cls):
    good = (cls(64, 4) if cls is ringfence.CountMin else cls()).to_bytes()
    rng = random.Random(3)
    for _ in range(300):
        data = bytearray(good)
        data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        with pytest.raises(ringfence.SnapshotError, match="not a valid"):
            cls.from_bytes(bytes(data))
    for data in (b"", good[:5], good[:-1], b"RFSK" + bytes(100)):
        with pytest.raises(ringfence.SnapshotError):
            cls.from_bytes(data)
    with pytest.raises(ringfence.InputTypeError):
        cls.from_bytes(None)
