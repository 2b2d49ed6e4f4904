"""Bad input of every kind: each is a ringfence exception naming what was
wrong, never a crash and never a PanicException."""

from __future__ import annotations

import os
import random

import pytest
from conftest import small_guard

import ringfence


def test_the_hierarchy():
    assert issubclass(ringfence.ConfigError, ringfence.RingfenceError)
    assert issubclass(ringfence.ConfigError, ValueError)
    assert issubclass(ringfence.SnapshotError, ringfence.RingfenceError)
    assert issubclass(ringfence.SnapshotError, ValueError)
    assert issubclass(ringfence.InputError, ringfence.RingfenceError)
    assert issubclass(ringfence.InputError, ValueError)
    assert issubclass(ringfence.InputTypeError, ringfence.InputError)
    assert issubclass(ringfence.InputTypeError, TypeError)
    assert issubclass(ringfence.RingfenceError, Exception)
    for e in (ringfence.RingfenceError, ringfence.ConfigError, ringfence.SnapshotError,
              ringfence.InputError, ringfence.InputTypeError):
        assert e.__module__ == "ringfence" and e.__doc__


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"account": 1}, ringfence.InputTypeError, "account must be a str, not int"),
        ({"account": None}, ringfence.InputTypeError, "account must be a str, not NoneType"),
        ({"account": b"bytes"}, ringfence.InputTypeError, "account must be a str, not bytes"),
        ({"account": ""}, ringfence.InputError, "`account` is empty: every request must name its account"),
        ({"account": "a\ud800b"}, ringfence.InputError, "account is not valid UTF-8"),
        ({"account": "x" * 5000}, ringfence.InputError, "`account` is 5000 bytes long; the most is 4096"),
        ({"account": "a", "fingerprints": "ip"}, ringfence.InputTypeError, "fingerprints must be a dict"),
        ({"account": "a", "fingerprints": 7}, ringfence.InputTypeError, "fingerprints must be a dict"),
        ({"account": "a", "fingerprints": [("ip",)]}, ringfence.InputTypeError, r"a \(kind, value\) tuple"),
        ({"account": "a", "fingerprints": {"ip": 7}}, ringfence.InputTypeError, r"fingerprints\[\"ip\"\] must be a str, not int"),
        ({"account": "a", "fingerprints": {1: "x"}}, ringfence.InputTypeError, "a kind in fingerprints must be a str"),
        ({"account": "a", "fingerprints": {"ip": "\udfff"}}, ringfence.InputError, "not valid UTF-8"),
        ({"account": "a", "fingerprints": {"ip": ["1.2.3.4", None]}}, ringfence.InputTypeError, "must be a str, not NoneType"),
        ({"account": "a", "fingerprints": {f"k{i}": "v" for i in range(65)}}, ringfence.InputError, "`fingerprints` has 65 entries; the most is 64"),
        ({"account": "a", "fingerprints": {"ip": "v" * 4097}}, ringfence.InputError, r"`fingerprints\[0\]` is 4097 bytes long; kinds and values are at most 4096"),
        ({"account": "a", "prompt": 3.5}, ringfence.InputTypeError, "prompt must be a str, not float"),
        ({"account": "a", "prompt": "\ud83d"}, ringfence.InputError, "prompt is not valid UTF-8"),
        ({"account": "a", "system": ["x"]}, ringfence.InputTypeError, "system must be a str, not list"),
        ({"account": "a", "model": "m" * 5000}, ringfence.InputError, "`model` is 5000 bytes long; the most is 4096"),
        ({"account": "a", "tokens": -1}, ringfence.InputError, "tokens must be an integer from 0 to 4294967295, not -1"),
        ({"account": "a", "tokens": 2**32}, ringfence.InputError, "not 4294967296"),
        ({"account": "a", "tokens": 2**100}, ringfence.InputError, "tokens must be an integer"),
        ({"account": "a", "tokens": 1.0}, ringfence.InputTypeError, "tokens must be an int, not float"),
        ({"account": "a", "tokens": True}, ringfence.InputTypeError, "tokens must be an int, not bool"),
        ({"account": "a", "max_tokens": "10"}, ringfence.InputTypeError, "max_tokens must be an int, not str"),
    ],
)
def test_check_rejects(kwargs, error, match):
    g = small_guard()
    with pytest.raises(error, match=match):
        g.check(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"account": ""}, "account"),
        ({"account": "x" * (ringfence.MAX_ACCOUNT_BYTES + 1)}, "account"),
        ({"account": "a", "fingerprints": [(f"k{i}", "v") for i in range(ringfence.MAX_FINGERPRINTS + 1)]}, "fingerprints"),
        ({"account": "a", "fingerprints": [("ip", "1.2.3.4"), ("", "x")]}, "fingerprints[1]"),
        ({"account": "a", "fingerprints": {"ip": "v" * (ringfence.MAX_FINGERPRINT_BYTES + 1)}}, "fingerprints[0]"),
        ({"account": "a", "model": "m" * (ringfence.MAX_MODEL_BYTES + 1)}, "model"),
    ],
)
def test_the_request_contract_is_the_cores(kwargs, field):
    g = small_guard()
    with pytest.raises(ringfence.InputError) as e:
        g.check(**kwargs)
    assert type(e.value) is ringfence.InputError
    assert e.value.field == field
    # The same rule, and the same message, for a batch (naming the request).
    with pytest.raises(ringfence.InputError, match=r"^requests\[1\]: ") as b:
        g.check_many([{"account": "ok"}, kwargs])
    assert b.value.field == field
    assert str(b.value) == f"requests[1]: {e.value}"
    assert g.check("ok").remaining == 19  # the rejected batch decided nothing


def test_the_limits_are_the_cores():
    assert ringfence.MAX_ACCOUNT_BYTES == 4096
    assert ringfence.MAX_FINGERPRINTS == 64
    assert ringfence.MAX_FINGERPRINT_BYTES == 4096
    assert ringfence.MAX_MODEL_BYTES == 4096
    assert ringfence.MAX_ACCOUNTS == 2**26
    assert not hasattr(ringfence, "MAX_KEY_BYTES")
    g = small_guard()
    assert g.check("a" * ringfence.MAX_ACCOUNT_BYTES).allowed
    assert g.check("b", [(f"k{i}", "v") for i in range(ringfence.MAX_FINGERPRINTS)]).allowed
    with pytest.raises(ringfence.InputError, match="accounts must be an integer from 1 to 67108864"):
        ringfence.Guard(accounts=2**26 + 1)


def test_huge_strings_are_fine_where_text_is_expected():
    g = small_guard()
    big = "step by step " * 2_000_000  # 26 MB
    v = g.check("acct", prompt=big, system=big[:1_000_000], tokens=5)
    assert v.allowed and v.input_tokens == 5
    assert g.check("acct2", {"device": "d" * 4096}).allowed  # exactly the limit


def test_a_str_subclass_is_a_str():
    class Name(str):
        pass

    assert small_guard().check(Name("acct"), {Name("ip"): Name("1.2.3.4")}).allowed


def test_check_many_rejects_with_the_position():
    g = small_guard()
    with pytest.raises(ringfence.InputTypeError, match=r"requests\[1\] must be a dict"):
        g.check_many([{"account": "a"}, "b"])
    with pytest.raises(ringfence.InputError, match=r'requests\[0\] has an unknown key "promt"'):
        g.check_many([{"account": "a", "promt": "x"}])
    with pytest.raises(ringfence.InputError, match=r"requests\[0\] has no \"account\""):
        g.check_many([{"prompt": "x"}])
    with pytest.raises(ringfence.InputTypeError, match=r"requests\[0\]\[\"tokens\"\] must be an int"):
        g.check_many([{"account": "a", "tokens": "3"}])
    with pytest.raises(ringfence.InputError, match=r"accounts\[1\] is not valid UTF-8"):
        g.check_many(accounts=["a", "\ud800"])
    with pytest.raises(ringfence.InputError, match="prompts has 1 entries for 2 accounts"):
        g.check_many(accounts=["a", "b"], prompts=["x"])
    with pytest.raises(ringfence.InputError, match="either a list of requests or columns"):
        g.check_many([{"account": "a"}], accounts=["a"])
    with pytest.raises(ringfence.InputError, match="needs a list of requests"):
        g.check_many()
    with pytest.raises(ringfence.InputTypeError, match="accounts must be a list of str, not str"):
        g.check_many(accounts="abc")
    with pytest.raises(ringfence.InputError, match="threads must be an integer from 1 to 256"):
        g.check_many(accounts=["a"], threads=0)
    with pytest.raises(ringfence.InputError, match=r"max_tokens\[0\] must be an integer"):
        g.check_many(accounts=["a"], max_tokens=[-5])
    with pytest.raises(ringfence.InputTypeError, match=r"fingerprints\['ip'\]\[1\] must be a str"):
        g.check_many(accounts=["a", "b"], fingerprints={"ip": ["1.1.1.1", 5]})
    # Nothing was decided by a rejected batch.
    assert g.check("a").remaining == 19


@pytest.mark.parametrize(
    ("config", "match"),
    [
        ({"deny_att": 0.9}, "`deny_att`: unknown field `deny_att`"),
        ({"link": {"horizon_secs": "x"}}, "`link.horizon_secs`: invalid type: string \"x\", expected f64"),
        ({"deny_at": 2.0}, "`deny_at` must be between 0 and 1"),
        ({"share_at": 0.6, "deny_at": 0.5}, "`deny_at` must not be below `share_at`"),
        ({"account_requests_per_minute": -1}, "account_requests_per_minute"),
        ({"link": {"max_accounts": 0}}, "`link.max_accounts` must be between 1 and 2\\^28"),
        ({"deny_at": float("nan")}, "`deny_at` must be a finite number"),
        ({"allow_list": {"a", "b"}, "shadow": object()}, "`shadow` has a value of type object"),
        ({1: 2}, "the keys of the configuration must be str"),
        ({"link": {"kind_rarity": {"device": [5.0, 1.0]}}}, "kind_rarity.device"),
        ({"account_requests_per_minute": 2**70}, "out of range"),
    ],
)
def test_bad_configs_name_the_key(config, match):
    with pytest.raises(ringfence.ConfigError, match=match):
        ringfence.Guard(config, accounts=10)


def test_bad_config_sources(tmp_path):
    with pytest.raises(ringfence.ConfigError, match="line 2"):
        ringfence.Guard("deny_at = 0.5\nshare_at = = 1\n")
    with pytest.raises(ringfence.ConfigError, match="`deny_at`: invalid type"):
        ringfence.Guard.from_toml('deny_at = "high"')
    with pytest.raises(FileNotFoundError):
        ringfence.Guard.from_file(tmp_path / "missing.toml")
    bad = tmp_path / "latin1.toml"
    bad.write_bytes(b"# caf\xe9\n")
    with pytest.raises(ringfence.ConfigError, match="not valid UTF-8"):
        ringfence.Guard.from_file(bad)
    with pytest.raises(ringfence.InputTypeError, match="config must be a dict, TOML text"):
        ringfence.Guard(42)
    with pytest.raises(ringfence.InputError, match="accounts must be an integer from 1"):
        ringfence.Guard(accounts=0)
    with pytest.raises(ringfence.InputTypeError, match="accounts must be an int"):
        ringfence.Guard(accounts="10")


def test_corrupt_snapshots_change_nothing():
    g = small_guard()
    g.check("acct-1", {"payment": "card-1"})
    good = g.snapshot()
    rng = random.Random(7)
    target = small_guard()
    bad_inputs = [b"", b"\x00", b"RFSK", good[:-1], good[:20], good + b"\x00", os.urandom(256)]
    for _ in range(200):
        data = bytearray(good)
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        bad_inputs.append(bytes(data))
    for data in bad_inputs:
        with pytest.raises(ringfence.SnapshotError):
            target.restore(data)
        with pytest.raises(ringfence.SnapshotError):
            target.merge(data)
    assert target.explain("acct-1") is None  # untouched
    target.restore(good)
    assert target.explain("acct-1") is not None
    with pytest.raises(ringfence.InputTypeError, match="data must be bytes or bytearray, not str"):
        target.restore("snapshot")
    with pytest.raises(ringfence.SnapshotError, match="Guard"):
        target.restore(ringfence.HyperLogLog().to_bytes())


def test_snapshot_files_are_written_whole_and_bad_ones_change_nothing(tmp_path):
    g = small_guard()
    g.check("acct-1", {"payment": "card-1"})
    path = tmp_path / "guard.snapshot"
    g.snapshot_file(path)
    g.snapshot_file(str(path))  # replaced whole, no temporary file left
    assert sorted(p.name for p in tmp_path.iterdir()) == ["guard.snapshot"]
    target = small_guard()
    with pytest.raises(FileNotFoundError, match="missing.snapshot"):
        target.restore_file(tmp_path / "missing.snapshot")
    with pytest.raises(IsADirectoryError):
        target.restore_file(tmp_path)
    (tmp_path / "junk.snapshot").write_bytes(b"junk")
    with pytest.raises(ringfence.SnapshotError, match="junk.snapshot"):
        target.restore_file(tmp_path / "junk.snapshot")
    with pytest.raises(FileNotFoundError):
        g.snapshot_file(tmp_path / "no-such-dir" / "guard.snapshot")
    with pytest.raises(ringfence.InputTypeError, match="path"):
        g.snapshot_file(42)
    assert target.explain("acct-1") is None  # untouched
    target.restore_file(path)
    assert target.explain("acct-1") is not None


def test_a_snapshot_of_another_size_is_refused():
    g = small_guard(accounts=1000)
    g.check("a")
    with pytest.raises(ringfence.SnapshotError):
        small_guard(accounts=2000).restore(g.snapshot())


def test_python_code_that_changes_the_input_midway_is_no_panic():
    g = small_guard()
    fps: dict = {"ip": "1.2.3.4"}

    class Sneaky(list):
        def __iter__(self):
            fps.clear()
            fps.update({f"k{i}": "v" for i in range(10)})
            return super().__iter__()

    fps["device"] = Sneaky(["d1", "d2"])
    assert g.check("a", fps).allowed  # read by index: __iter__ never runs

    columns: dict = {}

    def column():
        columns.update({f"k{i}": ["x"] for i in range(10)})
        yield "v"

    columns["ip"] = column()
    assert len(g.check_many(accounts=["a"], fingerprints=columns)) == 1

    config: dict = {}

    class Growing(list):
        def __iter__(self):
            config["shadow"] = True
            return super().__iter__()

    config["allow_list"] = Growing(["a"])
    ringfence.Guard(config, accounts=10)
