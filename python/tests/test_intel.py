"""Shared threat intelligence through the bindings (issue 17): a guard that
caught an operation exports it as a STIX 2.1 bundle of keyed hashes, a
second provider's guard under the same consortium key imports it and marks
the operation's next accounts from their first request, and reports its
sightings back. Bundles under another key, malformed ones and guards
without a key are refused.

Provider A's traffic is the core's `provider_a` (tests/intel.rs): ten
accounts on one card and one rare TLS client asking for step-by-step
reasoning with long outputs, beside six honest colleagues sharing a
company card and an office address with one of them.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

import ringfence

ROOT = Path(__file__).resolve().parents[2]
KEY = b"example consortium key: 32 bytes"
OTHER_KEY = b"another consortium's 32-byte key"
PRODUCER = "identity--3dff565e-7265-4139-9cb0-eceed191fca9"
SIGHTER = "identity--8a1c7f52-0b3e-4d6a-9f21-5c4e7d9b0a13"
PROMPT = (
    "You will be given a problem. Solve it completely. Think step by step and show all of "
    "your reasoning before the final answer. Problem: compute {} times {}"
)
# What must never leave a provider: raw values, account names, prompts.
RAW = [
    "card-shared",
    "rare-client",
    "company-card",
    "45.83.10.2",
    "203.0.113.9",
    "fleet",
    "staff",
    "step by step",
    "meeting note",
]


def key_file(directory: Path, key: bytes) -> Path:
    path = directory / f"consortium-{len(list(directory.iterdir()))}.key"
    path.write_bytes(key)
    assert len(key) == 32
    return path


def keyed_guard(key: Path | None, seed: int) -> ringfence.Guard:
    """A guard for 10,000 accounts on a manual clock, from TOML, with the
    key (if any) in `[intel] key_file`; every producer trusted, no kind
    ignored."""
    intel = ""
    if key is not None:
        intel = f"[intel]\nkey_file = {json.dumps(str(key))}\ndefault_trust = 1.0\nignore_kinds = []\n"
    return ringfence.Guard.from_toml(f"[link]\nseed = {seed}\n{intel}", accounts=10_000, manual_clock=True)


def run_operation(g: ringfence.Guard) -> None:
    for i in range(400):
        g.set_time(i * 5.0)
        ip = "203.0.113.9" if i % 10 == 0 else "45.83.10.2"
        fps = {"payment": "card-shared", "ja4": "rare-client", "ip": ip}
        v = g.check(f"fleet{i % 10}", fps, prompt=PROMPT.format(i, i + 7), tokens=40, max_tokens=500)
        if v.allowed:
            g.settle(v, 900)
        v = g.check(
            f"staff{i % 6}",
            {"payment": "company-card", "ip": "203.0.113.9"},
            prompt=f"Summarise this meeting note number {i} for the team",
            tokens=40,
            max_tokens=500,
        )
        if v.allowed:
            g.settle(v, 120)


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("keys")
    return {"ours": key_file(d, KEY), "theirs": key_file(d, OTHER_KEY)}


@pytest.fixture(scope="module")
def provider_a(keys: dict[str, Path]) -> ringfence.Guard:
    g = keyed_guard(keys["ours"], seed=11)
    run_operation(g)
    return g


@pytest.fixture(scope="module")
def exported(provider_a: ringfence.Guard) -> str:
    bundle = provider_a.export_indicators(PRODUCER, "Provider A")
    assert bundle is not None
    return bundle


def indicators_of(bundle: str) -> list[dict]:
    return [o for o in json.loads(bundle)["objects"] if o["type"] == "indicator"]


def usable(bundle: str) -> int:
    """The indicators an import adds: those weighing at least
    `intel.min_weight` (0.2) at full trust. Prompt-template bands
    (confidence 15) are ignored."""
    return sum(o["confidence"] >= 20 for o in indicators_of(bundle))


def test_the_operation_is_flagged_and_exported_without_raw_values(provider_a, exported):
    e = provider_a.explain("fleet3")
    assert e is not None and e.score >= provider_a.config["deny_at"], e
    assert e.indicator is None
    assert provider_a.intel_key_id is not None and len(provider_a.intel_key_id) == 32
    doc = json.loads(exported)
    assert doc["type"] == "bundle" and doc["id"].startswith("bundle--")
    types = [o["type"] for o in doc["objects"]]
    kinds = {o["kind"] for o in doc["objects"] if o["type"] == "x-ringfence-fingerprint"}
    assert {"payment", "ja4"} <= kinds, kinds  # the card and the client, at least
    assert "identity" in types and "x-ringfence-fingerprint" in types
    for o in doc["objects"]:
        if o["type"] == "indicator":
            assert o["created_by_ref"] == PRODUCER
            assert 0 < o["confidence"] <= 100
        if o["type"] == "x-ringfence-fingerprint":
            assert o["key_id"] == provider_a.intel_key_id
    for raw in RAW:
        assert raw not in exported, raw
    # Deterministic at one time; a stricter rule leaves nothing.
    now = time.time()
    assert provider_a.export_indicators(PRODUCER, "Provider A", now=now) == provider_a.export_indicators(
        PRODUCER, "Provider A", now=now
    )
    assert provider_a.export_indicators(PRODUCER, "Provider A", min_campaign_accounts=50) is None


def test_tlp_markings_and_bad_arguments(provider_a):
    red = provider_a.export_indicators(PRODUCER, "Provider A", tlp="RED")
    assert red is not None and "marking-definition" in red
    with pytest.raises(ValueError, match=r'"clear", "green", "amber", "amber\+strict", "red"') as err:
        provider_a.export_indicators(PRODUCER, "Provider A", tlp="purple")
    assert isinstance(err.value, ringfence.InputError) and "purple" in str(err.value)
    with pytest.raises(ringfence.InputError, match="tlp must be one of"):
        provider_a.sightings(SIGHTER, "Provider B", tlp="white!")
    with pytest.raises(ringfence.InputError, match="identity"):
        provider_a.export_indicators("identity--not-a-uuid", "Provider A")
    with pytest.raises(ringfence.InputError, match="min_score"):
        provider_a.export_indicators(PRODUCER, "Provider A", min_score=1.5)
    with pytest.raises(ringfence.InputError, match="min_campaign_accounts"):
        provider_a.export_indicators(PRODUCER, "Provider A", min_campaign_accounts=0)
    with pytest.raises(ringfence.InputError, match="now"):
        provider_a.export_indicators(PRODUCER, "Provider A", now=float("nan"))
    with pytest.raises(ringfence.InputTypeError):
        provider_a.import_indicators(b"{}")
    with pytest.raises(TypeError):
        provider_a.export_indicators(PRODUCER, "Provider A", "amber")  # keyword-only


def test_a_second_provider_imports_marks_the_operation_and_reports_sightings(keys, exported):
    b = keyed_guard(keys["ours"], seed=99)
    b.set_time(1000.0)
    fingerprints = [o for o in json.loads(exported)["objects"] if o["type"] == "x-ringfence-fingerprint"]
    assert {o["key_id"] for o in fingerprints} == {b.intel_key_id}
    assert b.sightings(SIGHTER, "Provider B") is None  # nothing imported, nothing matched
    n = len(indicators_of(exported))
    report = b.import_indicators(exported)
    assert report == {"added": usable(exported), "updated": 0, "revoked": 0, "ignored": n - usable(exported)}
    assert report["added"] >= 2  # the card and the client, at least
    # Again: the same versions, nothing new.
    assert b.import_indicators(exported)["added"] == 0
    for i in range(60):
        b.set_time(1000.0 + i)
        v = b.check(f"op-b-{i % 20}", {"payment": "card-shared"}, prompt="hello")
        assert "shared_indicator" in v.reasons, v
        assert v.decision != "deny", "an indicator alone never denies"
    e = b.explain("op-b-7")
    assert e is not None
    m = e.indicator
    assert m is not None
    assert set(m) == {"id", "producer", "producer_name", "kind", "weight", "valid_until"}
    assert (m["producer"], m["producer_name"], m["kind"]) == (PRODUCER, "Provider A", "payment")
    assert m["id"] in {o["id"] for o in indicators_of(exported)}
    assert 0 < m["weight"] <= 1 and m["valid_until"] > b.time
    assert "shared_indicator" in str(e) and PRODUCER in str(e)
    # An unrelated account is untouched.
    other = b.check("someone", {"payment": "own-card"}, prompt="hello")
    assert other.allowed and other.reasons == ()
    assert b.explain("someone").indicator is None
    matched = b.matched_indicators()
    assert [x["id"] for x in matched] == [m["id"]]
    assert matched[0]["count"] == 60
    assert 1000.0 <= matched[0]["first_seen"] <= matched[0]["last_seen"] <= 1059.0
    text = b.sightings(SIGHTER, "Provider B")
    assert text is not None
    sightings = [o for o in json.loads(text)["objects"] if o["type"] == "sighting"]
    assert [(s["sighting_of_ref"], s["count"]) for s in sightings] == [(m["id"], 60)]
    assert SIGHTER in text
    for raw in ("op-b-", "card-shared", "hello", "someone"):
        assert raw not in text, raw


def test_a_bundle_under_another_key_is_refused_and_changes_nothing(keys, exported):
    theirs = keyed_guard(keys["theirs"], seed=11)
    run_operation(theirs)
    foreign = theirs.export_indicators(PRODUCER, "Provider A")
    assert foreign is not None
    assert theirs.intel_key_id != keyed_guard(keys["ours"], seed=1).intel_key_id
    b = keyed_guard(keys["ours"], seed=99)
    b.set_time(1000.0)
    with pytest.raises(ringfence.InputError, match="key") as err:
        b.import_indicators(foreign)
    assert isinstance(err.value, ValueError)
    assert str(err.value).startswith("the bundle is refused"), err.value
    # Untouched: the next good import adds everything, and the card is
    # not marked by the foreign bundle.
    v = b.check("op-b-0", {"payment": "card-shared"}, prompt="hello")
    assert "shared_indicator" not in v.reasons
    assert b.matched_indicators() == []
    assert b.import_indicators(exported)["added"] == usable(exported)
    # And the other way round.
    with pytest.raises(ringfence.InputError, match="key"):
        theirs.import_indicators(exported)


@pytest.mark.parametrize(
    "bundle",
    ["", "{not json", "[]", '{"type": "bundle"}', '{"type": "bundle", "id": "bundle--x", "objects": 3}'],
)
def test_a_malformed_bundle_is_refused(keys, exported, bundle):
    b = keyed_guard(keys["ours"], seed=99)
    with pytest.raises(ringfence.InputError, match="the bundle is refused"):
        b.import_indicators(bundle)
    assert b.import_indicators(exported)["added"] == usable(exported)


def test_a_bundle_from_the_future_is_refused(keys, exported):
    b = keyed_guard(keys["ours"], seed=99)
    with pytest.raises(ringfence.InputError, match="the bundle is refused"):
        b.import_indicators(exported, now=time.time() - 86_400.0)
    assert b.import_indicators(exported, now=time.time())["added"] == usable(exported)


def test_nothing_to_export_is_none(keys):
    g = keyed_guard(keys["ours"], seed=3)
    g.set_time(10.0)
    g.check("a", {"payment": "card-1"}, prompt="hello")
    assert g.export_indicators(PRODUCER, "Provider A") is None
    assert g.sightings(SIGHTER, "Provider B") is None
    assert g.matched_indicators() == []


def test_a_guard_without_a_key_raises(exported):
    g = keyed_guard(None, seed=11)
    assert g.intel_key_id is None
    assert g.matched_indicators() == []
    for call in (
        lambda: g.export_indicators(PRODUCER, "Provider A"),
        lambda: g.import_indicators(exported),
        lambda: g.sightings(SIGHTER, "Provider B"),
    ):
        with pytest.raises(ringfence.ConfigError, match=r"\[intel\] key_file"):
            call()


def test_the_guard_is_shared_while_an_exchange_runs(provider_a, exported, keys):
    # The calls release the GIL: other threads run checks meanwhile.
    import threading

    b = keyed_guard(keys["ours"], seed=99)
    b.set_time(1000.0)
    errors: list[BaseException] = []

    def checks() -> None:
        try:
            for i in range(200):
                b.check(f"t-{i % 7}", {"payment": "card-shared"}, prompt="hi")
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=checks) for _ in range(3)]
    for t in threads:
        t.start()
    for _ in range(5):
        b.import_indicators(exported)
        provider_a.export_indicators(PRODUCER, "Provider A")
        b.sightings(SIGHTER, "Provider B")
    for t in threads:
        t.join()
    assert not errors, errors


def test_the_bundles_pass_the_oasis_validator(keys, exported, tmp_path):
    stix2validator = pytest.importorskip("stix2validator")
    b = keyed_guard(keys["ours"], seed=99)
    b.set_time(1000.0)
    b.import_indicators(exported)
    b.check("op-b-1", {"payment": "card-shared"}, prompt="hello")
    sighting = b.sightings(SIGHTER, "Provider B")
    assert sighting is not None
    # As tests/test_stix.py validates: strict, with the ringfence SCO's
    # schema; check 103 (UUIDv4) is off because the SCO's id is a UUIDv5.
    options = stix2validator.ValidationOptions(
        strict=True,
        disabled="103",
        enabled="225,226,227,228,230,231,305,306",
        schema_dir=str(ROOT / "intel" / "schemas"),
    )
    for name, text in (("export.json", exported), ("sighting.json", sighting)):
        (tmp_path / name).write_text(text)
        results = stix2validator.validate_file(str(tmp_path / name), options)
        problems = [f"{o.object_id}: {e}" for o in results.object_results for e in [*o.errors, *o.warnings]]
        assert results.is_valid, problems
        assert not problems, problems
