"""The guard's metrics: the text parsed by prometheus_client's own parser,
the collector registered and scraped over HTTP."""

from __future__ import annotations

import urllib.request

import pytest
from conftest import DENY_CLUSTERS, small_guard
from prometheus_client import CollectorRegistry, generate_latest, start_http_server
from prometheus_client.parser import text_string_to_metric_families

from ringfence.prometheus import GuardCollector


def values(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the text, by name and sorted labels, parsed by
    prometheus_client (which raises on anything malformed)."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            key = (s.name, tuple(sorted(s.labels.items())))
            assert key not in out, key
            out[key] = s.value
    return out


def traffic():
    """A guard after five accounts sharing a card (denied from the third)
    and one honest account, with its served requests settled."""
    g = small_guard(DENY_CLUSTERS)
    verdicts = [g.check(f"acct-{i}", {"payment": "card-shared"}, tokens=40, max_tokens=500) for i in range(5)]
    verdicts.append(g.check("loner", {"payment": "card-own"}, tokens=40, max_tokens=500))
    for v in verdicts:
        if v.allowed:
            g.settle(v, 100)
    return g, verdicts


def test_the_text_parses_and_counts_the_verdicts():
    g, verdicts = traffic()
    m = values(g.metrics())
    allowed = sum(v.allowed for v in verdicts)
    denied = sum(v.decision == "deny" for v in verdicts)
    assert (allowed, denied) == (3, 3)
    assert m[("ringfence_requests_total", (("verdict", "allow"),))] == allowed
    assert m[("ringfence_requests_total", (("verdict", "deny"),))] == denied
    key = ("ringfence_decisions_total", (("decision", "deny"), ("reason", "suspected_distillation")))
    assert m[key] == denied
    assert m[("ringfence_clusters_flagged_total", ())] == 1
    assert m[("ringfence_clusters_refused_total", ())] == 1
    assert m[("ringfence_settlements_total", ())] == allowed
    # Each served request reserved 40 + 500 tokens and used 40 + 100.
    assert m[("ringfence_settlement_reserved_tokens_total", ())] == allowed * 540
    assert m[("ringfence_settlement_actual_tokens_total", ())] == allowed * 140
    assert m[("ringfence_settlement_drift_tokens", ())] == allowed * 400
    assert m[("ringfence_table_entries", (("table", "accounts"),))] == 6
    assert m[("ringfence_table_capacity", (("table", "accounts"),))] >= 1000


def test_a_collector_scraped_over_http():
    g, _ = traffic()
    registry = CollectorRegistry()
    registry.register(GuardCollector(g, labels={"guard": "chat"}))
    server, thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    try:
        url = f"http://127.0.0.1:{server.server_port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as r:
            assert r.status == 200
            body = r.read().decode()
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
    m = values(body)
    assert m[("ringfence_requests_total", (("guard", "chat"), ("verdict", "deny")))] == 3
    assert m[("ringfence_memory_bytes", (("guard", "chat"),))] > 0
    # The registry writes the same families again.
    assert values(generate_latest(registry).decode()) == m


def test_the_collector_refuses_what_it_cannot_use():
    g = small_guard()
    with pytest.raises(ValueError, match="reason"):
        GuardCollector(g, labels={"reason": "x"})
    with pytest.raises(TypeError, match="ringfence.Guard"):
        GuardCollector(object())  # type: ignore[arg-type]
