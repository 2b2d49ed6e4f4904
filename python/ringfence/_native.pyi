"""Type stubs of ringfence's native module (Rust, through pyo3)."""

import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, final

__version__: str
MAX_ACCOUNT_BYTES: int
MAX_FINGERPRINTS: int
MAX_FINGERPRINT_BYTES: int
MAX_MODEL_BYTES: int
MAX_ACCOUNTS: int
MAX_CLOCK_SECONDS: float
DECISIONS: tuple[str, ...]
REASONS: tuple[str, ...]
POLICIES: tuple[str, ...]
SIGNALS: tuple[str, ...]

_FingerprintValue = str | Sequence[str]
Fingerprints = Mapping[str, _FingerprintValue] | Iterable[tuple[str, _FingerprintValue]] | None
Item = str | bytes | bytearray | int

class RingfenceError(Exception):
    """Base class of every error ringfence raises."""

class ConfigError(RingfenceError, ValueError):
    """A configuration or scenario that cannot be used; the message names the key."""

class SnapshotError(RingfenceError, ValueError):
    """Bytes that are not a valid snapshot or sketch encoding, or do not fit this guard."""

class InputError(RingfenceError, ValueError):
    """An argument with a value ringfence cannot use; the message names it.

    Raised for a request that breaks the core's request contract, it has
    ``field``: ``"account"``, ``"fingerprints"`` or ``"fingerprints[i]"``.
    """

    field: str

class InputTypeError(InputError, TypeError):
    """An argument of the wrong type."""

@final
class Guard:
    """Links accounts, scores clusters and applies every limit at once."""

    def __init__(
        self,
        config: Mapping[str, Any] | str | os.PathLike[str] | None = None,
        *,
        accounts: int | None = None,
        manual_clock: bool = False,
    ) -> None: ...
    @staticmethod
    def from_toml(text: str, *, accounts: int | None = None, manual_clock: bool = False) -> Guard: ...
    @staticmethod
    def from_file(
        path: str | os.PathLike[str], *, accounts: int | None = None, manual_clock: bool = False
    ) -> Guard: ...
    def check(
        self,
        account: str,
        fingerprints: Fingerprints = None,
        prompt: str | None = None,
        system: str | None = None,
        model: str | None = None,
        tokens: int | None = None,
        max_tokens: int | None = None,
    ) -> Verdict: ...
    def check_many(
        self,
        requests: Iterable[Mapping[str, Any]] | None = None,
        *,
        accounts: Sequence[str] | None = None,
        fingerprints: Sequence[Fingerprints] | Mapping[str, Sequence[str | None]] | None = None,
        prompts: Sequence[str | None] | None = None,
        systems: Sequence[str | None] | None = None,
        models: Sequence[str | None] | None = None,
        tokens: int | Sequence[int | None] | None = None,
        max_tokens: int | Sequence[int | None] | None = None,
        threads: int | None = None,
    ) -> Verdicts: ...
    def settle(self, verdict: Verdict, output_tokens: int) -> None: ...
    def explain(self, account: str) -> Explanation | None: ...
    def export_indicators(
        self,
        producer_id: str,
        producer_name: str,
        *,
        now: float | None = None,
        min_score: float | None = None,
        min_campaign_accounts: int | None = None,
        max_benign_share: float | None = None,
        tlp: str = "amber",
    ) -> str | None:
        """The guard's intelligence as a STIX 2.1 bundle (JSON text), or None.

        The values that linked its flagged clusters, as keyed hashes under the
        consortium key (``[intel] key_file``): no account, raw value or prompt
        leaves. ``producer_id`` is the producer's STIX identity id,
        ``"identity--<lower-case UUID v4>"``, fixed per deployment. ``now``:
        the unix time the bundle is created at (default: the guard's present).
        ``min_score``, ``min_campaign_accounts``, ``max_benign_share``: the
        export rule (defaults: ``share_at``, ``intel.min_campaign_accounts``,
        ``intel.max_benign_share``). ``tlp``: ``"clear"``, ``"green"``,
        ``"amber"``, ``"amber+strict"`` or ``"red"`` (TLP 2.0; an unknown name
        raises InputError naming these). None when nothing passes the export
        rule. Without a key: ConfigError.
        """
    def import_indicators(self, bundle: str, *, now: float | None = None) -> dict[str, int]:
        """Imports another provider's STIX 2.1 bundle (JSON text), all or nothing.

        Checked against the consortium key at ``now`` (unix seconds; default:
        the guard's present). Accounts presenting its values are marked: their
        requests carry ``shared_indicator``. Returns ``{"added", "updated",
        "revoked", "ignored"}`` counts of indicators (ignored: not newer,
        expired, untrusted, too light, or of an ignored kind). A refused
        bundle (malformed, under another key, from the future, oversized)
        raises InputError naming what is wrong and leaves the guard as it was.
        Without a key: ConfigError.
        """
    def sightings(
        self, sighter_id: str, sighter_name: str, *, now: float | None = None, tlp: str = "amber"
    ) -> str | None:
        """The guard's sightings of imported indicators as a STIX 2.1 bundle, or None.

        Counts and times of the requests matching each imported indicator, by
        the sighter ``sighter_id`` (``"identity--<lower-case UUID v4>"``), at
        ``now`` (unix seconds; default: the guard's present), marked ``tlp``.
        No account is named. None when no imported indicator has matched.
        Without a key: ConfigError.
        """
    def matched_indicators(self) -> list[dict[str, Any]]:
        """Imported indicators that matched: dicts of ``id``, ``count``, ``first_seen``, ``last_seen``.

        ``count``: requests of accounts marked by the indicator; the times are
        on the guard's clock, in seconds (as ``time`` reads on a manual clock).
        Empty without a key.
        """
    @property
    def intel_key_id(self) -> str | None:
        """The consortium key's id (32 hex digits, the key_id bundles carry), or None without a key."""
    def snapshot(self) -> bytes: ...
    def restore(self, data: bytes | bytearray) -> None: ...
    def merge(self, data: bytes | bytearray) -> None: ...
    def maintain(self) -> None: ...
    def flush(self) -> None: ...
    @property
    def backlog(self) -> int: ...
    @property
    def overflowed(self) -> int: ...
    def set_time(self, seconds: float) -> None: ...
    def advance(self, seconds: float) -> None: ...
    def _time_native(
        self,
        accounts: Sequence[str],
        fingerprints: Sequence[Fingerprints] | Mapping[str, Sequence[str | None]] | None = None,
        prompts: Sequence[str | None] | None = None,
        rounds: int | None = None,
    ) -> float: ...
    def snapshot_file(self, path: str | os.PathLike[str]) -> None: ...
    def restore_file(self, path: str | os.PathLike[str]) -> None: ...
    def fleet_stats(self) -> dict[str, Any] | None: ...
    def metrics(self) -> str: ...
    @property
    def config(self) -> dict[str, Any]: ...
    @property
    def memory_bytes(self) -> int: ...
    @property
    def manual_clock(self) -> bool: ...
    @property
    def time(self) -> float: ...

@final
class Verdict:
    """The guard's answer to one request (immutable)."""

    @property
    def decision(self) -> str: ...
    @property
    def allowed(self) -> bool: ...
    @property
    def retry_after(self) -> float | None: ...
    @property
    def remaining(self) -> int: ...
    @property
    def score(self) -> float: ...
    @property
    def cluster(self) -> int: ...
    @property
    def cluster_size(self) -> int: ...
    @property
    def reasons(self) -> tuple[str, ...]: ...
    @property
    def contributors(self) -> list[tuple[str, float]]: ...
    @property
    def signals(self) -> dict[str, float]: ...
    @property
    def input_tokens(self) -> int: ...
    def headers(self) -> dict[str, str]: ...

@final
class Verdicts(Sequence[Verdict]):
    """The verdicts of a check_many batch, in request order."""

    def __len__(self) -> int: ...
    def __getitem__(self, index: int) -> Verdict: ...  # type: ignore[override]
    def __iter__(self) -> Iterator[Verdict]: ...
    @property
    def allowed(self) -> list[bool]: ...
    @property
    def allowed_count(self) -> int: ...
    @property
    def decisions(self) -> list[str]: ...

@final
class Explanation:
    """Why an account is treated as it is."""

    @property
    def account(self) -> str: ...
    @property
    def cluster(self) -> int: ...
    @property
    def cluster_size(self) -> int: ...
    @property
    def members(self) -> list[str]: ...
    @property
    def shared(self) -> list[tuple[str, str, float, float]]: ...
    @property
    def score(self) -> float: ...
    @property
    def signals(self) -> dict[str, float]: ...
    @property
    def contributors(self) -> list[tuple[str, float]]: ...
    @property
    def behaviour(self) -> dict[str, float] | None: ...
    @property
    def crowd(self) -> dict[str, int | str | float] | None: ...
    @property
    def indicator(self) -> dict[str, str | float | None] | None:
        """The imported indicator the account presents while it stands, or None.

        A dict of ``id`` (the STIX indicator id), ``producer`` (its identity
        id), ``producer_name`` (or None), ``kind``, ``weight`` (confidence
        times trust) and ``valid_until`` (the guard's clock, in seconds).
        """

@final
class CountMin:
    """A Count-Min sketch: how often was an item seen?"""

    def __init__(self, width: int, depth: int, *, seed: int | None = None, conservative: bool = False) -> None: ...
    @classmethod
    def with_error(
        cls, epsilon: float, delta: float, *, seed: int | None = None, conservative: bool = False
    ) -> CountMin: ...
    def add(self, item: Item, n: int | None = None) -> None: ...
    def update(self, items: Iterable[Item]) -> None: ...
    def estimate(self, item: Item) -> int: ...
    def merge(self, other: CountMin) -> None: ...
    def clear(self) -> None: ...
    def to_bytes(self) -> bytes: ...
    @classmethod
    def from_bytes(cls, data: bytes | bytearray) -> CountMin: ...
    @property
    def width(self) -> int: ...
    @property
    def depth(self) -> int: ...
    @property
    def seed(self) -> int: ...
    @property
    def conservative(self) -> bool: ...
    @property
    def epsilon(self) -> float: ...
    @property
    def delta(self) -> float: ...
    @property
    def total(self) -> int: ...
    @property
    def memory_bytes(self) -> int: ...

@final
class HyperLogLog:
    """A HyperLogLog sketch: how many distinct items?"""

    def __init__(self, precision: int | None = None, *, seed: int | None = None) -> None: ...
    @classmethod
    def with_error(cls, error: float, *, seed: int | None = None) -> HyperLogLog: ...
    def add(self, item: Item) -> None: ...
    def update(self, items: Iterable[Item]) -> None: ...
    def estimate(self) -> float: ...
    def merge(self, other: HyperLogLog) -> None: ...
    def clear(self) -> None: ...
    def is_empty(self) -> bool: ...
    def to_bytes(self) -> bytes: ...
    @classmethod
    def from_bytes(cls, data: bytes | bytearray) -> HyperLogLog: ...
    @property
    def precision(self) -> int: ...
    @property
    def seed(self) -> int: ...
    @property
    def relative_error(self) -> float: ...
    @property
    def memory_bytes(self) -> int: ...

@final
class MinHash:
    """A MinHash accumulator: how similar are two sets?"""

    def __init__(self, k: int | None = None, *, seed: int | None = None) -> None: ...
    @classmethod
    def from_text(
        cls, text: str, *, k: int | None = None, n: int | None = None, seed: int | None = None
    ) -> MinHash: ...
    def add(self, item: Item) -> None: ...
    def update(self, items: Iterable[Item]) -> None: ...
    def add_text(self, text: str, n: int | None = None) -> None: ...
    def jaccard(self, other: MinHash) -> float: ...
    def merge(self, other: MinHash) -> None: ...
    def signature(self) -> list[int]: ...
    def clear(self) -> None: ...
    def is_empty(self) -> bool: ...
    def to_bytes(self) -> bytes: ...
    @classmethod
    def from_bytes(cls, data: bytes | bytearray) -> MinHash: ...
    @property
    def k(self) -> int: ...
    @property
    def seed(self) -> int: ...

def simulate(
    scenario: str | Mapping[str, Any] | None = None,
    *,
    toml: str | None = None,
    scale: float | None = None,
    seed: int | None = None,
) -> list[dict[str, Any]]: ...
def write_trace(
    path: str | os.PathLike[str],
    scenario: str | Mapping[str, Any] | None = None,
    *,
    toml: str | None = None,
    scale: float | None = None,
    seed: int | None = None,
) -> int: ...
def scenario_names() -> list[str]: ...
def estimate_tokens(nbytes: int) -> int: ...
