"""Python-side cost of ringfence's Guard: per-call overhead and batch throughput.

Run (with the wheel installed, e.g. by python/run-tests.sh into target/python-venv):

    target/python-venv/bin/python python/bench/bench_check.py

What it measures, on one guard (default size: tables for 250,000 accounts,
quotas high enough that every request is allowed, as in `cargo bench --bench
guard`), over 10,000 known accounts visited in turn:

* native: `Guard._time_native`, which times `Guard::check` in a Rust loop
  over the same requests (already converted; no Python in the loop);
* `Guard.check` from a Python loop, per call;
* the overhead: the difference of the two, the cost a Python caller pays
  on top of the native check (argument conversion, the GIL released and
  taken back around the check, the Verdict object, the loop itself);
* `Guard.check_many` on columns and on a list of request dicts, one thread
  and two, in requests per second.

Each figure is the median of several repetitions; this machine is shared
and noisy, so compare figures from one run.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time

import ringfence

KINDS8 = ["ip", "asn", "device", "payment", "payment_bin", "ja4", "user_agent", "email_domain"]


def fingerprints(i: int, kinds: int) -> dict[str, str]:
    """The Rust benchmark's fingerprints for account i (the first `kinds` of them)."""
    values = {
        "ip": f"73.{i % 200}.{(i // 200) % 250}.{1 + i % 250}",
        "asn": f"AS{7000 + i % 10}",
        "device": f"dev-{i:08x}",
        "payment": f"card-{i:08x}",
        "payment_bin": f"4{i % 20:05}",
        "ja4": f"t13d1516h2_8daaf6152771_{i % 7:012x}",
        "user_agent": f"OpenAI/Python 1.{i % 7}",
        "email_domain": ["gmail.com", "outlook.com", "yahoo.com"][i % 3],
    }
    order = ["ip", "device"] + [k for k in KINDS8 if k not in ("ip", "device")]
    return {k: values[k] for k in order[:kinds]}


def median_of(reps: int, f) -> float:
    """The median of `reps` calls of f (each returning seconds per request)."""
    out = []
    for _ in range(reps):
        gc.collect()
        out.append(f())
    return statistics.median(out)


def run(kinds: int, accounts: int, reps: int, batch_size: int, size: int | None) -> dict[str, float]:
    guard = ringfence.Guard(
        {"account_requests_per_minute": 10**9, "account_tokens_per_minute": 10**12},
        accounts=size,
    )
    names = [f"acct-{i:08}" for i in range(accounts)]
    fps = [fingerprints(i, kinds) for i in range(accounts)]
    # Warm: every account and value known, as in the Rust benchmark.
    guard.check_many(accounts=names, fingerprints=fps)

    native = median_of(reps, lambda: guard._time_native(names, fps, rounds=3))

    check = guard.check
    pairs = list(zip(names, fps))

    def python_loop() -> float:
        t0 = time.perf_counter()
        for a, f in pairs:
            check(a, f)
        return (time.perf_counter() - t0) / len(pairs)

    def empty_loop() -> float:
        t0 = time.perf_counter()
        for a, f in pairs:
            pass
        return (time.perf_counter() - t0) / len(pairs)

    per_call = median_of(reps, python_loop)
    loop = median_of(reps, empty_loop)

    n = batch_size
    cols_accounts = [names[i % accounts] for i in range(n)]
    by_kind = {k: [fps[i % accounts][k] for i in range(n)] for k in fps[0]}
    per_request = [fps[i % accounts] for i in range(n)]
    dicts = [{"account": cols_accounts[i], "fingerprints": per_request[i]} for i in range(n)]

    def many(**kw) -> float:
        t0 = time.perf_counter()
        out = guard.check_many(**kw)
        dt = time.perf_counter() - t0
        assert len(out) == n
        return dt / n

    return {
        "native": native,
        "check": per_call,
        "overhead": per_call - native,
        "empty_loop": loop,
        "many_columns_by_kind": median_of(reps, lambda: many(accounts=cols_accounts, fingerprints=by_kind)),
        "many_columns": median_of(reps, lambda: many(accounts=cols_accounts, fingerprints=per_request)),
        "many_dicts": median_of(reps, lambda: many(requests=dicts)),
        "many_columns_by_kind_2_threads": median_of(
            reps, lambda: many(accounts=cols_accounts, fingerprints=by_kind, threads=2)
        ),
    }


def sketches(reps: int) -> dict[str, float]:
    """Per-call cost of the sketches from Python (for scale against the
    Python sketch packages the issue names)."""
    items = [f"acct-{i}" for i in range(100_000)]
    hll = ringfence.HyperLogLog(12)
    add = hll.add

    def hll_add() -> float:
        t0 = time.perf_counter()
        for x in items:
            add(x)
        return (time.perf_counter() - t0) / len(items)

    def hll_update() -> float:
        t0 = time.perf_counter()
        hll.update(items)
        return (time.perf_counter() - t0) / len(items)

    words = ["data", "model", "train", "loss", "graph", "query", "token", "layer", "write", "prove"]
    text, x = [], 1
    while len(" ".join(text)) < 1024:
        x = (x * 6364136223846793005 + 1442695040888963407) % 2**64
        w = (x >> 33) % 600
        text.append(f"{words[w % 10]}{w}")
    kb = " ".join(text)[:1024]

    def minhash_1kb() -> float:
        t0 = time.perf_counter()
        for _ in range(2000):
            ringfence.MinHash.from_text(kb, k=128)
        return (time.perf_counter() - t0) / 2000

    return {
        "hll_add": median_of(reps, hll_add),
        "hll_update": median_of(reps, hll_update),
        "minhash_1kb": median_of(reps, minhash_1kb),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--accounts", type=int, default=10_000)
    p.add_argument("--reps", type=int, default=7)
    p.add_argument("--batch", type=int, default=100_000)
    p.add_argument("--kinds", type=int, nargs="*", default=[1, 2, 8])
    p.add_argument("--size", type=int, default=None,
                   help="size the guard's tables for this many accounts (default: the default, 250,000)")
    a = p.parse_args()
    sized = f"tables for {a.size:,} accounts" if a.size else "default tables (250,000 accounts)"
    print(f"ringfence {ringfence.__version__}; {a.accounts:,} accounts, {sized}, median of {a.reps}")
    for kinds in a.kinds:
        r = run(kinds, a.accounts, a.reps, a.batch, a.size)
        print(f"\n{kinds} fingerprint(s) per request, no prompt")
        print(f"  native Guard::check (Rust loop)        {r['native'] * 1e9:8.0f} ns")
        print(f"  Guard.check from a Python loop         {r['check'] * 1e9:8.0f} ns")
        print(f"  overhead of the Python call            {r['overhead'] * 1e9:8.0f} ns"
              f"  (of which the bare loop {r['empty_loop'] * 1e9:.0f} ns)")
        for key, label in [
            ("many_columns_by_kind", "check_many, columns (fingerprints by kind)"),
            ("many_columns", "check_many, columns (a dict per request)"),
            ("many_dicts", "check_many, a list of request dicts"),
            ("many_columns_by_kind_2_threads", "check_many, columns by kind, threads=2"),
        ]:
            print(f"  {label:<46} {1 / r[key]:>11,.0f} requests/s ({r[key] * 1e9:.0f} ns each)")
    s = sketches(a.reps)
    print("\nsketches from Python")
    print(f"  HyperLogLog(12).add(str), one call per item   {s['hll_add'] * 1e9:8.0f} ns")
    print(f"  HyperLogLog(12).update(list of str), per item {s['hll_update'] * 1e9:8.0f} ns")
    print(f"  MinHash.from_text(1 KB, k=128)                {s['minhash_1kb'] * 1e6:8.2f} us")


if __name__ == "__main__":
    main()
