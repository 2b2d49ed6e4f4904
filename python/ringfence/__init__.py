"""ringfence: rate limiting, account linking and distillation scoring for LLM API gateways.

A :class:`Guard` decides each request of an LLM API: it links the request's
account to the accounts it shares rare fingerprints with (card, device, IP,
TLS fingerprint, system prompt, prompt template), scores the cluster for
distillation, and applies the per-account, per-fingerprint and per-cluster
limits at once. Everything it remembers lives in bounded, mergeable
sketches, which are also usable on their own (:class:`CountMin`,
:class:`HyperLogLog`, :class:`MinHash`).

>>> import ringfence
>>> guard = ringfence.Guard(accounts=1_000)
>>> v = guard.check("acct-1", {"ip": "203.0.113.7"}, tokens=10, max_tokens=100)
>>> v.allowed, v.decision, v.reasons
(True, 'allow', ())
>>> guard.settle(v, output_tokens=42)

The request contract (``MAX_ACCOUNT_BYTES``, ``MAX_FINGERPRINTS``,
``MAX_FINGERPRINT_BYTES``, ``MAX_MODEL_BYTES``), the token estimate (:func:`estimate_tokens`),
the headers and the names (``DECISIONS``, ``REASONS``, ``POLICIES``,
``SIGNALS``) are the Rust core's own, so Rust, C and Python answer alike.

The native part is ``ringfence._native`` (Rust, through pyo3); this package
re-exports it, and adds :mod:`ringfence.asgi` (a middleware for
Starlette/FastAPI and vLLM) and :mod:`ringfence.sim` (the traffic simulator).
"""

import collections.abc

from ringfence._native import (
    DECISIONS,
    MAX_ACCOUNT_BYTES,
    MAX_ACCOUNTS,
    MAX_CLOCK_SECONDS,
    MAX_FINGERPRINT_BYTES,
    MAX_MODEL_BYTES,
    MAX_FINGERPRINTS,
    POLICIES,
    REASONS,
    SIGNALS,
    ConfigError,
    CountMin,
    Explanation,
    Guard,
    HyperLogLog,
    InputError,
    InputTypeError,
    MinHash,
    RingfenceError,
    SnapshotError,
    Verdict,
    Verdicts,
    __version__,
    estimate_tokens,
)

# A Verdicts behaves as a read-only sequence; make isinstance agree.
collections.abc.Sequence.register(Verdicts)

__all__ = [
    "DECISIONS",
    "MAX_ACCOUNTS",
    "MAX_ACCOUNT_BYTES",
    "MAX_CLOCK_SECONDS",
    "MAX_FINGERPRINTS",
    "MAX_FINGERPRINT_BYTES",
    "MAX_MODEL_BYTES",
    "POLICIES",
    "REASONS",
    "SIGNALS",
    "ConfigError",
    "CountMin",
    "Explanation",
    "Guard",
    "HyperLogLog",
    "InputError",
    "InputTypeError",
    "MinHash",
    "RingfenceError",
    "SnapshotError",
    "Verdict",
    "Verdicts",
    "__version__",
    "estimate_tokens",
]
