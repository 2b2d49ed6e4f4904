"""A brief, seeded fuzz run of the ASGI middleware's body parser (see
``asgi_fuzz.py``; ``fuzz/run.sh`` runs it coverage-guided with Atheris)."""

from __future__ import annotations

import random

from asgi_fuzz import Target, body


def test_random_request_bodies_are_answered_and_never_raise() -> None:
    rng = random.Random(20261202)
    t = Target()
    try:
        for _ in range(10_000):
            t.one_input(body(rng))
        for raw in (b"", b"null", b"[]", b"{", b"\xff" * 10, b"[" * 100_000, b"m" + b"{}" * 3000):
            t.one_input(raw)
        assert t.n == 10_007
    finally:
        t.close()
