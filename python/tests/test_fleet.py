"""Fleet mode from Python: a `[fleet]` table makes a guard a fleet node,
with quotas held across the nodes and evidence shared through a real
`redis-server` on loopback (started here; the test command installs it).
Without the server the Redis tests skip, unless RINGFENCE_REQUIRE_REDIS=1
(as the test command sets), where its absence fails them."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator

import pytest

import ringfence


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    server = shutil.which("redis-server")
    if server is None:
        if os.environ.get("RINGFENCE_REQUIRE_REDIS") == "1":
            pytest.fail("redis-server is not installed (RINGFENCE_REQUIRE_REDIS=1)")
        pytest.skip("redis-server is not installed")
    port = _free_port()
    with tempfile.TemporaryDirectory() as d:
        proc = subprocess.Popen(
            [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", d],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 10
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        pytest.fail("redis-server did not start within 10 s")
                    time.sleep(0.05)
            yield f"redis://127.0.0.1:{port}"
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def node(url: str, index: int, prefix: str) -> ringfence.Guard:
    return ringfence.Guard.from_toml(
        "account_requests_per_minute = 20\n"
        f'[fleet]\nurl = "{url}"\nnodes = 2\nindex = {index}\nnode = "py{index}"\n'
        f'prefix = "{prefix}"\nlease = 4\nsync_interval_ms = 50\ntimeout_ms = 200\n',
        accounts=2_000,
    )


def test_two_nodes_share_one_quota_and_their_evidence(redis_url: str) -> None:
    nodes = [node(redis_url, i, "pyfleet") for i in range(2)]
    admitted = 0
    for i in range(200):
        g = nodes[i % 2]
        v = g.check("one-account", [("ip", "198.51.100.9")], prompt=f"question {i}",
                    tokens=20, max_tokens=100)
        admitted += v.allowed
        g.settle(v, 40)
    # Alone, each node would admit its own 20 (40 in all). The bound of
    # docs/fleet.md: r(W + s) + b + nodes(lease - 1) + nodes*ceil(b/nodes),
    # r = 1/3 a second, W under 10 s, s = 0.05 s, b = 20, 2 nodes, lease 4.
    bound = 4 + 20 + 2 * 3 + 2 * 10
    assert 20 <= admitted <= bound, admitted
    deadline = time.monotonic() + 5
    while True:
        got = [g.fleet_stats()["evidence"]["received"] for g in nodes]
        if got == [100, 100]:
            break
        assert time.monotonic() < deadline, got
        time.sleep(0.02)
    st = nodes[0].fleet_stats()
    assert st["node"] == "py0"
    assert st["quotas"]["refused"] > 0, st
    assert st["evidence"]["bad_batches"] == 0, st
    # Each node knows the account from both nodes' requests.
    assert nodes[1].explain("one-account") is not None

    # A node's snapshot carries its place in the exchange; a restarted
    # node restores it.
    snap = nodes[0].snapshot()
    assert snap[:4] == b"RFFS"
    del nodes
    again = node(redis_url, 0, "pyfleet")
    again.restore(snap)
    assert again.explain("one-account") is not None


def test_a_lone_guard_has_no_fleet_and_bad_fleet_tables_are_named() -> None:
    assert ringfence.Guard({}, accounts=1_000).fleet_stats() is None
    local = ringfence.Guard.from_toml('[fleet]\nnode = "edge"\n', accounts=1_000)
    assert local.fleet_stats()["node"] == "edge"
    with pytest.raises(ringfence.ConfigError, match="manual_clock"):
        ringfence.Guard.from_toml("[fleet]\nnodes = 2\n", manual_clock=True)
    with pytest.raises(ringfence.ConfigError, match="nodes"):
        ringfence.Guard.from_toml("[fleet]\nnodes = 0\n")
    with pytest.raises(ringfence.ConfigError, match="fail"):
        ringfence.Guard({"fleet": {"fail": "sometimes"}})
