"""The STIX 2.1 bundles of ringfence-intel, checked by the OASIS tools.

The Rust example `intel/examples/stix_fixtures.rs` writes an export, a
revocation and a sighting report; each is validated by stix2-validator
(strict, with the ringfence SCO's JSON schema) and round-tripped through
stix2, which must also compute the same deterministic SCO ids (see
docs/design/intel-stix.md, section 4).

This module does not import the ringfence package: it needs only cargo,
stix2 and stix2-validator (python/requirements-test.txt).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
import stix2
import stix2validator
from stix2.properties import StringProperty

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = ROOT / "intel" / "schemas"
EXT = "extension-definition--0b6a1f64-8c2e-4d7a-b5f3-2e9c4a7d1b58"
BUNDLES = ["export.json", "revocation.json", "sighting.json"]


def options() -> stix2validator.ValidationOptions:
    # --disable 103: the UUIDv4 check also demands v4 of a custom SCO, whose
    # id is a UUIDv5 (STIX 2.1 section 2.9); test_ids checks the versions
    # instead. Any --disable drops checks 225-231, 305 and 306 from the
    # list, so they are enabled again.
    return stix2validator.ValidationOptions(
        strict=True,
        disabled="103",
        enabled="225,226,227,228,230,231,305,306",
        schema_dir=str(SCHEMAS),
    )


# Registered once per process: stix2 keeps a global registry of classes.
@stix2.v21.CustomObservable(
    "x-ringfence-fingerprint",
    [
        ("kind", StringProperty(required=True)),
        ("hmac", StringProperty(required=True)),
        ("key_id", StringProperty(required=True)),
    ],
    id_contrib_props=["kind", "hmac", "key_id"],
    extension_name=EXT,
)
class Fingerprint:
    pass


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory: pytest.TempPathFactory) -> Path:
    assert shutil.which("cargo"), "cargo is needed to write the bundles"
    out = tmp_path_factory.mktemp("stix")
    subprocess.run(
        ["cargo", "run", "-q", "-p", "ringfence-intel", "--example", "stix_fixtures", "--", str(out)],
        cwd=ROOT,
        check=True,
        timeout=1800,
    )
    for name in BUNDLES:
        assert (out / name).is_file(), name
    return out


@pytest.mark.parametrize("name", BUNDLES)
def test_validator_strict(fixtures: Path, name: str) -> None:
    results = stix2validator.validate_file(str(fixtures / name), options())
    problems = [
        f"{o.object_id}: {e}" for o in results.object_results for e in [*o.errors, *o.warnings]
    ]
    assert results.is_valid, problems
    assert not problems, problems


@pytest.mark.parametrize("name", BUNDLES)
def test_stix2_round_trip(fixtures: Path, name: str) -> None:
    text = (fixtures / name).read_text()
    # allow_custom: stix2 counts any reference to an x- type (the grouping's
    # object_refs) as custom content, registered or not.
    bundle = stix2.parse(text, allow_custom=True)
    assert json.loads(bundle.serialize()) == json.loads(text)


@pytest.mark.parametrize("name", BUNDLES)
def test_ids(fixtures: Path, name: str) -> None:
    bundle = stix2.parse((fixtures / name).read_text(), allow_custom=True)
    seen = 0
    for o in bundle.objects:
        if o["type"] == "x-ringfence-fingerprint":
            # The deterministic UUIDv5 exactly as stix2 computes it.
            assert isinstance(o, Fingerprint)
            assert Fingerprint(kind=o["kind"], hmac=o["hmac"], key_id=o["key_id"]).id == o["id"]
            assert uuid.UUID(o["id"].split("--")[1]).version == 5
            seen += 1
        else:
            # What the disabled check 103 would have enforced.
            assert uuid.UUID(o["id"].split("--")[1]).version == 4, o["id"]
    assert seen == (4 if name == "export.json" else 0)


def test_bundle_contents(fixtures: Path) -> None:
    export = json.loads((fixtures / "export.json").read_text())
    revocation = json.loads((fixtures / "revocation.json").read_text())
    sighting = json.loads((fixtures / "sighting.json").read_text())
    types = [o["type"] for o in export["objects"]]
    assert types.count("grouping") == 1
    assert types.count("indicator") == 4 and types.count("campaign") == 2
    indicators = {o["id"]: o for o in export["objects"] if o["type"] == "indicator"}
    revoked = [o for o in revocation["objects"] if o["type"] == "indicator"]
    assert len(revoked) == 2
    for o in revoked:
        original = indicators[o["id"]]
        assert o["revoked"] is True
        assert o["created"] == original["created"] and o["modified"] > original["modified"]
        assert {k: v for k, v in o.items() if k not in ("revoked", "modified")} == {
            k: v for k, v in original.items() if k != "modified"
        }
    sightings = [o for o in sighting["objects"] if o["type"] == "sighting"]
    assert [s["sighting_of_ref"] in indicators for s in sightings] == [True, True]
    assert sightings[1]["count"] == 999_999_999
