"""The Guard's behaviour through the bindings: decisions, verdicts, headers,
settling, explanations, snapshots, configuration and batches."""

from __future__ import annotations

import collections.abc
import pathlib

import pytest
from conftest import DENY_CLUSTERS, small_guard

import ringfence


def test_an_account_gets_its_quota_then_a_throttle_with_headers(guard):
    verdicts = [guard.check("acct-1", {"ip": "203.0.113.7"}, tokens=10, max_tokens=100) for _ in range(21)]
    assert [v.allowed for v in verdicts] == [True] * 20 + [False]
    first, last = verdicts[0], verdicts[-1]
    assert (first.decision, first.reasons, first.retry_after) == ("allow", (), None)
    assert first.remaining == 19
    assert first.headers() == {"RateLimit-Policy": '"account";q=20;w=60', "RateLimit": '"account";r=19;t=3'}
    assert last.decision == "throttle"
    assert last.reasons == ("account_limit",)
    assert last.retry_after == pytest.approx(3.0, abs=0.01)  # one request every 3 s
    assert last.headers() == {
        "RateLimit-Policy": '"account";q=20;w=60',
        "RateLimit": '"account";r=0;t=60',  # the whole window to refill
        "Retry-After": "3",
    }
    guard.advance(3.0)
    assert guard.check("acct-1", {"ip": "203.0.113.7"}).allowed


def test_accounts_sharing_a_card_form_one_cluster_that_is_denied():
    g = small_guard(DENY_CLUSTERS)
    v = [g.check(f"acct-{i}", {"payment": "card-shared", "ip": f"198.51.100.{i}"}) for i in range(5)]
    assert [x.cluster_size for x in v] == [1, 2, 3, 4, 5]
    assert len({x.cluster for x in v}) == 1
    assert [x.decision for x in v] == ["allow", "allow", "deny", "deny", "deny"]
    denied = v[2]
    assert denied.reasons == ("suspected_distillation",)
    assert denied.retry_after is None
    h = denied.headers()
    assert h["Retry-After"] == "3600"  # the score's half-life
    assert h["RateLimit-Policy"].startswith('"suspected_distillation";q=0')
    # An unrelated account is not affected.
    other = g.check("loner", {"payment": "card-own", "ip": "192.0.2.1"})
    assert (other.allowed, other.cluster_size) == (True, 1)
    e = g.explain("acct-0")
    assert isinstance(e, ringfence.Explanation)
    assert (e.account, e.cluster, e.cluster_size) == ("acct-0", v[0].cluster, 5)
    assert sorted(e.members) == ["acct-1", "acct-2", "acct-3", "acct-4"]
    assert e.shared[0][:2] == ("payment", "card-shared")
    assert e.shared[0][3] == pytest.approx(1.0)
    assert "account acct-0 is in cluster" in str(e)
    assert g.explain("nobody") is None


def test_background_recording_decides_on_standing_and_flushes():
    g = small_guard({**DENY_CLUSTERS, "observe": {"mode": "background"}})
    v = [g.check(f"acct-{i}", {"payment": "card-shared", "ip": f"198.51.100.{i}"}) for i in range(5)]
    # Each verdict is decided on what was recorded before it (nothing
    # linked yet, or some of the others): never refused before a cluster of 3.
    assert v[0].allowed and v[0].cluster_size == 1
    g.flush()
    assert (g.backlog, g.overflowed) == (0, 0)
    assert g.explain("acct-0").cluster_size == 5
    late = g.check("acct-0", {"payment": "card-shared"})
    assert (late.decision, late.cluster_size) == ("deny", 5)


def test_a_suspicious_cluster_shares_one_budget_and_is_throttled():
    g = small_guard({"share_at": 0.0, "deny_at": 1.0, "cluster_requests_per_minute": 5})
    decisions = [g.check(f"acct-{i % 4}", {"payment": "card-shared"}) for i in range(12)]
    allowed = [v for v in decisions if v.allowed]
    # Two requests before the cluster reaches 3 accounts, then its budget of 5.
    assert len(allowed) == 7
    refused = decisions[-1]
    assert refused.decision == "throttle"
    assert "cluster_limit" in refused.reasons and "suspected_distillation" in refused.reasons
    assert refused.headers()["RateLimit-Policy"] == '"cluster";q=5;w=60'
    assert refused.retry_after == pytest.approx(12.0, abs=0.01)


def test_settle_refunds_the_token_reservation():
    g = small_guard({"account_tokens_per_minute": 1000, "account_requests_per_minute": 100})
    v = g.check("acct", tokens=100, max_tokens=800)  # reserves 900 of 1000
    assert v.allowed and v.input_tokens == 100
    assert not g.check("acct", tokens=100, max_tokens=800).allowed
    g.settle(v, 50)  # actual use 150: 750 back
    assert g.check("acct", tokens=100, max_tokens=700).allowed


def test_settle_checks_its_verdict():
    a, b = small_guard(), small_guard()
    v = a.check("acct")
    with pytest.raises(ringfence.InputError, match="given by another guard"):
        b.settle(v, 1)
    with pytest.raises(ringfence.InputError, match="given by another guard"):
        b.settle(v, 1)  # the refused settlement left the verdict unsettled
    a.settle(v, 1)
    with pytest.raises(ringfence.InputError, match="already settled"):
        a.settle(v, 1)
    with pytest.raises(ringfence.InputTypeError, match="verdict must be a Verdict, not str"):
        a.settle("verdict", 1)


def test_tokens_default_to_a_quarter_of_the_text():
    g = small_guard()
    assert g.check("a", prompt="x" * 10, system="y" * 7).input_tokens == 5
    assert g.check("b").input_tokens == 0


def test_verdict_is_immutable_and_readable(guard):
    v = guard.check("acct", {"ip": "203.0.113.9"})
    with pytest.raises(AttributeError):
        v.decision = "deny"  # type: ignore[misc]
    assert "allow" in repr(v)
    assert set(v.signals) >= {"score", "cot", "spread", "template"}
    assert set(v.signals) == set(ringfence.SIGNALS)
    assert isinstance(v.contributors, list)
    assert 0.0 <= v.score <= 1.0


def test_fingerprints_in_every_accepted_shape(guard):
    g = small_guard(DENY_CLUSTERS)
    g.check("a", {"payment": ["card-x", "card-y"]})
    g.check("b", [("payment", "card-x")])
    v = g.check("c", (("payment", "card-y"),))
    assert v.cluster_size == 3


def test_snapshot_restore_and_merge():
    g = small_guard(DENY_CLUSTERS)
    for i in range(3):
        g.check(f"acct-{i}", {"payment": "card-shared"})
    data = g.snapshot()
    assert isinstance(data, bytes)
    fresh = small_guard(DENY_CLUSTERS)
    fresh.restore(data)
    assert fresh.explain("acct-0").cluster_size == 3
    assert fresh.check("acct-9", {"payment": "card-shared"}).decision == "deny"
    assert fresh.snapshot() == fresh.snapshot()
    other = small_guard(DENY_CLUSTERS)
    other.merge(bytearray(data))
    assert other.explain("acct-2").cluster_size == 3


def test_config_from_dict_toml_text_and_file(tmp_path: pathlib.Path):
    toml = "account_requests_per_minute = 2\n[link]\nhorizon_secs = 3600.0\n"
    path = tmp_path / "guard.toml"
    path.write_text(toml)
    for g in (
        ringfence.Guard({"account_requests_per_minute": 2, "link": {"horizon_secs": 3600.0}}, accounts=100),
        ringfence.Guard(toml, accounts=100),
        ringfence.Guard.from_toml(toml, accounts=100),
        ringfence.Guard(path, accounts=100),
        ringfence.Guard.from_file(path, accounts=100),
        ringfence.Guard.from_file(str(path), accounts=100),
    ):
        assert g.config["account_requests_per_minute"] == 2
        assert g.config["link"]["horizon_secs"] == 3600.0
        assert g.config["link"]["max_accounts"] == 100
        assert [g.check("a").allowed for _ in range(3)] == [True, True, False]


def test_accounts_sizes_only_what_the_config_leaves_unset():
    g = ringfence.Guard({"link": {"max_accounts": 500}}, accounts=100)
    c = g.config
    assert c["link"]["max_accounts"] == 500
    assert c["link"]["max_values"] == 250
    assert c["limiter_capacity"] == 200
    assert ringfence.Guard().config["link"]["max_accounts"] == 250_000
    assert g.memory_bytes > 0


def test_check_many_matches_check_on_the_same_requests():
    requests = [
        {"account": f"acct-{i % 7}", "fingerprints": {"payment": f"card-{i % 3}"}, "tokens": 5, "max_tokens": 10}
        for i in range(200)
    ]
    one = small_guard(DENY_CLUSTERS)
    expected = [
        one.check(r["account"], r["fingerprints"], tokens=r["tokens"], max_tokens=r["max_tokens"]).decision
        for r in requests
    ]
    many = small_guard(DENY_CLUSTERS).check_many(requests)
    assert isinstance(many, ringfence.Verdicts)
    assert many.decisions == expected
    assert len(many) == 200
    assert [v.decision for v in many] == expected
    assert many[-1].decision == expected[-1]
    assert many.allowed_count == expected.count("allow")
    assert many.allowed == [d == "allow" for d in expected]
    with pytest.raises(IndexError):
        many[200]

    columns = small_guard(DENY_CLUSTERS).check_many(
        accounts=[r["account"] for r in requests],
        fingerprints={"payment": [r["fingerprints"]["payment"] for r in requests]},
        tokens=5,
        max_tokens=[10] * 200,
    )
    assert columns.decisions == expected
    per_request = small_guard(DENY_CLUSTERS).check_many(
        accounts=[r["account"] for r in requests],
        fingerprints=[r["fingerprints"] for r in requests],
    )
    assert per_request.decisions == expected


def test_check_many_on_two_threads_allows_exactly_the_quota():
    g = small_guard({"account_requests_per_minute": 50, "account_tokens_per_minute": 0})
    out = g.check_many(accounts=["acct"] * 10_000 + [f"other-{i}" for i in range(1000)], threads=2)
    assert out.allowed_count == 50 + 1000


def test_verdicts_from_check_many_can_be_settled_once():
    g = small_guard({"account_tokens_per_minute": 1000})
    out = g.check_many(accounts=["a"], tokens=100, max_tokens=800)
    assert isinstance(out, collections.abc.Sequence)
    g.settle(out[0], 0)
    with pytest.raises(ringfence.InputError, match="already settled"):
        g.settle(out[0], 0)  # another Verdict object for the same entry
    assert g.check("a", tokens=100, max_tokens=800).allowed


def test_manual_clock_bounds_and_system_clock():
    g = small_guard()
    assert g.manual_clock and g.time == 1000.0
    g.advance(0.5)
    assert g.time == 1000.5
    with pytest.raises(ringfence.InputError, match="400 days"):
        g.set_time(ringfence.MAX_CLOCK_SECONDS + 1)
    with pytest.raises(ringfence.InputError):
        g.advance(-1)
    system = ringfence.Guard(accounts=10)
    assert not system.manual_clock
    with pytest.raises(ringfence.InputError, match="manual_clock=True"):
        system.set_time(5)
    system.maintain()
    assert "Guard for 10 accounts" in repr(system)


def test_signals_are_every_signal_of_the_core(guard):
    assert isinstance(ringfence.SIGNALS, tuple)
    assert "diversity" in ringfence.SIGNALS and "score" in ringfence.SIGNALS
    assert len(set(ringfence.SIGNALS)) == len(ringfence.SIGNALS)
    v = guard.check("acct-signals", {"ip": "203.0.113.99"}, prompt="hello")
    assert list(v.signals) == list(ringfence.SIGNALS)
    e = guard.explain("acct-signals")
    assert e is not None and list(e.signals) == list(ringfence.SIGNALS)
    assert {name for name, _ in v.contributors} <= set(ringfence.SIGNALS)


def test_names_are_the_cores():
    assert ringfence.DECISIONS == ("allow", "throttle", "deny")
    assert ringfence.REASONS == (
        "account_limit", "cluster_limit", "fingerprint_limit", "suspected_distillation", "shared_indicator",
    )
    assert ringfence.POLICIES == ("account", "cluster", "fingerprint", "suspected_distillation")
    g = small_guard({"account_requests_per_minute": 1})
    verdicts = [g.check("acct"), g.check("acct")]
    assert [v.decision for v in verdicts] == ["allow", "throttle"]
    for v in verdicts:
        assert v.decision in ringfence.DECISIONS
        assert set(v.reasons) <= set(ringfence.REASONS)
    out = g.check_many(accounts=["acct", "other"])
    assert set(out.decisions) <= set(ringfence.DECISIONS)


def test_the_token_estimate_is_the_cores():
    assert ringfence.estimate_tokens(0) == 0
    assert ringfence.estimate_tokens(1) == 1
    assert ringfence.estimate_tokens(9) == 3
    assert ringfence.estimate_tokens(1 << 20) == 1 << 18
    assert ringfence.estimate_tokens(2**64 - 1) == 2**32 - 1
    with pytest.raises(ringfence.InputError):
        ringfence.estimate_tokens(-1)
    with pytest.raises(ringfence.InputTypeError):
        ringfence.estimate_tokens(1.5)
    g = small_guard()
    prompt, system = "x" * 10, "y" * 7
    assert g.check("a", prompt=prompt, system=system).input_tokens == ringfence.estimate_tokens(17)


def test_settling_a_refused_verdict_does_nothing():
    g = small_guard({"account_requests_per_minute": 1, "account_tokens_per_minute": 1000})
    assert g.check("acct", tokens=10, max_tokens=10).allowed
    refused = g.check("acct", tokens=10, max_tokens=10)
    assert not refused.allowed
    g.settle(refused, 100)
    g.settle(refused, 100)  # not an error, and still nothing


def test_a_crowd_behind_a_shared_system_prompt_is_explained():
    # 60 accounts share a system prompt (given no link weight here, so that
    # only the crowd can refuse them) and ask for long reasoned answers
    # every 20 minutes for four hours.
    g = small_guard({"link": {"kind_weights": {"system": 0.0}}})
    system = "You are a senior engineer. Explain every design choice in detail."
    refused = 0
    for step in range(12):
        for i in range(60):
            v = g.check(
                f"op-{i}",
                {"device": f"dev-{i}"},
                prompt=f"Solve problem {step * 60 + i} completely. Think step by step and show all of your reasoning.",
                system=system,
                tokens=40,
                max_tokens=2000,
            )
            if v.allowed:
                g.settle(v, 1200)
            else:
                refused += 1
                assert v.signals["crowd"] >= 0.5 and v.signals["suspicion"] >= 0.5
            g.advance(20.0)
    assert refused > 300
    e = g.explain("op-7")
    assert e.behaviour is not None and e.behaviour["suspicion"] >= 0.5
    assert e.crowd is not None
    assert e.crowd["kind"] == "system" and e.crowd["score"] >= 0.5 and e.crowd["members"] > 30
    assert "in the crowd behind system" in str(e)
    # Its habits: every request asks for reasoning, answers of 1,200 tokens.
    assert e.crowd["habit_elicitation"] > 0.8 and e.crowd["habit_output"] > 1000
    assert e.crowd["member_suspicion"] >= 0.5
    # An account with a few ordinary requests has a behaviour and no crowd.
    for _ in range(3):
        g.settle(g.check("person", {"device": "own"}, prompt="What is a good name for a cat?", tokens=9), 80)
    p = g.explain("person")
    assert p.crowd is None and p.behaviour["suspicion"] < 0.5
