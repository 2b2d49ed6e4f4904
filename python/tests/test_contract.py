"""The cross-binding contract: the cases of ``tests/contract/cases.json``
(shared with the Rust and C tests) give the same verdict, reasons, headers
or error kind from Python.

Each case runs on a fresh guard with the default configuration sized for
1,000 accounts. A request is described, not spelled out:

- ``fingerprints``: N pairs ``("kind{i}", "value-{i}")``;
- ``prompt_bytes``: ``"Explain this: "`` then ``"word "`` repeated, cut to
  exactly N bytes (0: no prompt);
- ``input_tokens``, ``max_tokens``: as given (absent: the defaults);
- ``repeat``: the same request sent N times; the last verdict is compared.

``expect`` is either ``{"error": "invalid_request", "field": ...}`` or
``{"decision": ..., "reasons": [...], "headers": [[name, value], ...]}``;
``settle: true`` settles the last verdict with 100 output tokens, which
must not raise (a refused verdict included).
"""

from __future__ import annotations

import json
import pathlib

import pytest

import ringfence

CASES = pathlib.Path(__file__).resolve().parent.parent.parent / "tests" / "contract" / "cases.json"

PREFIX = "Explain this: "

# Cases that need no shared file: they keep the runner itself tested, and
# fix the rules the issue names (an empty account, 30 fingerprints, a 1 MiB
# prompt, a refused verdict settled).
LOCAL_CASES = [
    {
        "name": "local: first request",
        "request": {"account": "acct-1", "input_tokens": 10, "max_tokens": 10},
        "expect": {
            "decision": "allow",
            "reasons": [],
            "headers": [["RateLimit-Policy", '"account";q=20;w=60'], ["RateLimit", '"account";r=19;t=3']],
        },
        "settle": True,
    },
    {
        "name": "local: empty account",
        "request": {"account": ""},
        "expect": {"error": "invalid_request", "field": "account"},
    },
    {
        "name": "local: 65 fingerprints",
        "request": {"account": "a", "fingerprints": 65},
        "expect": {"error": "invalid_request", "field": "fingerprints"},
    },
    {
        "name": "local: 30 fingerprints",
        "request": {"account": "a", "fingerprints": 30, "input_tokens": 1, "max_tokens": 1},
        "expect": {"decision": "allow", "reasons": []},
    },
    {
        "name": "local: 1 MiB prompt",
        "request": {"account": "a", "prompt_bytes": 1 << 20, "input_tokens": 1000, "max_tokens": 10},
        "expect": {"decision": "allow", "reasons": []},
        "settle": True,
    },
    {
        "name": "local: refused, settled",
        "request": {"account": "a", "input_tokens": 1, "max_tokens": 1, "repeat": 21},
        "expect": {"decision": "throttle", "reasons": ["account_limit"]},
        "settle": True,
    },
]


def prompt_of(n: int) -> str | None:
    if n == 0:
        return None
    words = "word " * (n // 5 + 1)
    text = (PREFIX + words)[:n]
    assert len(text.encode("utf-8")) == n
    return text


def run_case(case: dict) -> None:
    req = case["request"]
    expect = case["expect"]
    guard = ringfence.Guard(accounts=1000)
    fingerprints = [(f"kind{i}", f"value-{i}") for i in range(req.get("fingerprints", 0))]
    kwargs = {
        "fingerprints": fingerprints,
        "prompt": prompt_of(req.get("prompt_bytes", 0)),
        "tokens": req.get("input_tokens"),
        "max_tokens": req.get("max_tokens"),
    }
    if "error" in expect:
        assert expect["error"] == "invalid_request", case["name"]
        with pytest.raises(ringfence.InputError) as e:
            for _ in range(req.get("repeat", 1)):
                guard.check(req["account"], **kwargs)
        # A contract error, not a type error: the request was well typed.
        assert not isinstance(e.value, TypeError), case["name"]
        assert e.value.field == expect["field"], case["name"]
        return
    verdict = None
    for _ in range(req.get("repeat", 1)):
        verdict = guard.check(req["account"], **kwargs)
    assert verdict is not None
    assert verdict.decision == expect["decision"], case["name"]
    assert list(verdict.reasons) == list(expect["reasons"]), case["name"]
    if "headers" in expect:
        assert list(verdict.headers().items()) == [tuple(h) for h in expect["headers"]], case["name"]
    if case.get("settle"):
        guard.settle(verdict, 100)


@pytest.mark.parametrize("case", LOCAL_CASES, ids=[c["name"] for c in LOCAL_CASES])
def test_local_case(case):
    run_case(case)


def shared_cases() -> list[dict]:
    if not CASES.is_file():
        return []
    cases = json.loads(CASES.read_text(encoding="utf-8"))
    assert isinstance(cases, list) and cases, CASES
    return cases


@pytest.mark.skipif(not CASES.is_file(), reason=f"{CASES} is not in this checkout")
@pytest.mark.parametrize("case", shared_cases(), ids=lambda c: c["name"])
def test_shared_case(case):
    run_case(case)

