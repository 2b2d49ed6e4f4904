"""Shared fixtures: small guards on a manual clock, so every test is exact."""

from __future__ import annotations

import pytest

import ringfence


def small_guard(config: dict | None = None, accounts: int = 1_000) -> ringfence.Guard:
    """A guard sized for `accounts`, on a manual clock at t = 1000 s."""
    g = ringfence.Guard(config or {}, accounts=accounts, manual_clock=True)
    g.set_time(1000.0)
    return g


@pytest.fixture
def guard() -> ringfence.Guard:
    return small_guard()


# Every account of one cluster denied as soon as it has 3 accounts: the
# cluster policy applies from a score of 0, so the tests do not depend on
# the scoring signals.
DENY_CLUSTERS = {"share_at": 0.0, "deny_at": 0.0}
