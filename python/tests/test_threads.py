"""Many Python threads on one Guard (and one sketch) at once: totals exact."""

from __future__ import annotations

import threading

import ringfence
from conftest import small_guard

THREADS = 8
CHECKS = 4_000


def run_threads(target) -> None:
    start = threading.Barrier(THREADS)
    errors: list[BaseException] = []

    def body(t: int) -> None:
        try:
            start.wait()
            target(t)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=body, args=(t,)) for t in range(THREADS)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors, errors


def test_threads_share_one_quota_exactly():
    # A frozen manual clock: nothing refills, so exactly the burst is allowed.
    quota = 1_000
    g = small_guard({"account_requests_per_minute": quota, "account_tokens_per_minute": 0})
    allowed = [0] * THREADS
    own = [0] * THREADS

    def work(t: int) -> None:
        for i in range(CHECKS):
            if g.check("shared-account", {"ip": f"10.0.{t}.{i % 250}"}).allowed:
                allowed[t] += 1
            if g.check(f"own-{t}", {"device": f"dev-{t}"}).allowed:
                own[t] += 1

    run_threads(work)
    assert sum(allowed) == quota
    assert own == [quota] * THREADS


def test_threads_mixing_check_many_settle_and_snapshots():
    quota = 500
    g = small_guard({"account_requests_per_minute": quota, "account_tokens_per_minute": 0})
    allowed = [0] * THREADS

    def work(t: int) -> None:
        for _ in range(10):
            out = g.check_many(accounts=["shared"] * 100 + [f"t{t}"] * 10)
            allowed[t] += out.allowed_count
            for v in out:
                if v.allowed:
                    g.settle(v, 10)
            g.snapshot()
            g.explain("shared")

    run_threads(work)
    assert sum(allowed) == quota + THREADS * 100


def test_threads_feeding_one_sketch_build_the_one_thread_sketch():
    shared = ringfence.HyperLogLog(12)
    cm = ringfence.CountMin(1024, 4)

    def work(t: int) -> None:
        for i in range(t, 40_000, THREADS):
            shared.add(i)
            cm.add(i % 100)

    run_threads(work)
    alone = ringfence.HyperLogLog(12)
    alone.update(range(40_000))
    assert shared.to_bytes() == alone.to_bytes()
    assert cm.total == 40_000
    assert all(cm.estimate(k) >= 400 for k in range(100))
