"""The traffic simulator: LLM API traffic with labelled distillation campaigns.

The same generator as ``ringfence simulate`` (Rust's ``ringfence_lab::sim``):
benign cohorts (individuals, mobile CGNAT, a campus, a company sharing one
card and IP, users of one coding agent, households, evaluation pipelines,
users of a third-party router) and three campaign operations
(``coordinated``, ``multi_route``, ``reseller``). The same scenario and seed
always give the same trace.

>>> from ringfence import sim
>>> records = sim.simulate("default", scale=0.01)
>>> sorted(records[0])
['account', 'cohort', 'fingerprints', 'input_tokens', 'label', 'model', 'output_tokens', 'prompt', 'system', 'ts']
>>> any(r["label"].startswith("campaign:") for r in records)
True

A scenario is a built-in name (:func:`scenario_names`), a dict of
``ringfence_lab::sim::Scenario`` fields (every key defaulted, e.g.
``{"hours": 6.0, "knobs": {"paraphrase_rate": 0.5}}``), or a path to a TOML
file of them. ``scale`` multiplies every account count; ``seed`` replaces
the scenario's seed.
"""

from __future__ import annotations

import os
from typing import Any, Union

from ringfence import _native

__all__ = ["scenario_names", "simulate", "write_trace"]

#: What a scenario may be given as: a built-in name, a dict of fields, or a TOML file's path.
Scenario = Union[str, "dict[str, Any]", "os.PathLike[str]", None]


def _resolve(scenario: Scenario) -> tuple[Any, str | None]:
    """(the scenario argument for the native call, TOML text or None)."""
    if isinstance(scenario, os.PathLike):
        with open(scenario, encoding="utf-8") as f:
            return None, f.read()
    return scenario, None


def scenario_names() -> list[str]:
    """The names of the built-in scenarios (``default``, ``adaptive``, ``seed``, ``seed-adaptive``)."""
    return _native.scenario_names()


def simulate(
    scenario: Scenario = "default",
    *,
    scale: float | None = None,
    seed: int | None = None,
) -> list[dict[str, Any]]:
    """Simulates a scenario; returns one dict per request, in time order.

    Each dict has the trace format's fields: ``ts`` (seconds since the
    epoch), ``account``, ``fingerprints`` (kind to value), ``prompt``,
    ``system`` (or None), ``model``, ``input_tokens``, ``output_tokens``,
    ``label`` (``benign`` or ``campaign:<operation>``) and ``cohort``.
    The simulation runs with the GIL released. Raises
    :class:`ringfence.ConfigError` for a scenario that cannot be used.
    """
    native, toml = _resolve(scenario)
    return _native.simulate(native, toml=toml, scale=scale, seed=seed)


def write_trace(
    path: str | os.PathLike[str],
    scenario: Scenario = "default",
    *,
    scale: float | None = None,
    seed: int | None = None,
) -> int:
    """Simulates a scenario and writes its trace to ``path`` (JSON Lines, the
    format ``ringfence replay`` reads); returns the number of requests."""
    native, toml = _resolve(scenario)
    return _native.write_trace(path, native, toml=toml, scale=scale, seed=seed)
