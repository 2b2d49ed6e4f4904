"""ringfence.litellm: the LiteLLM proxy hook, driven the way LiteLLM's proxy drives it.

Each scenario runs twice: against a small stand-in of the objects LiteLLM
hands a hook (``UserAPIKeyAuth``, ``DualCache``, a ``ModelResponse`` with
``usage``, a stream of chunks whose last one carries ``usage``), and against
the real ``litellm`` package (its objects, ``litellm.acompletion`` with
``mock_response=``, no network), when it is installed. LiteLLM is not in
``requirements-test.txt`` (it adds about 340 MB to the environment), so in
the normal suite the real-LiteLLM runs skip; ``pip install litellm`` in the
test environment runs them too, and the test that starts the proxy itself
in a subprocess runs where the proxy's own dependencies are installed.

The order of the hook calls in :func:`serve` is the proxy's
(``litellm/proxy/common_request_processing.py``): the pre-call hook, the
call, then the success hook and the response-headers hook, or for a stream
the headers hook and the streaming iterator hook, or on an exception
(including the hook's own 429) the failure hook and the headers hook.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib
import importlib.util
import inspect
import json
import os
import pathlib
import subprocess
import sys
import textwrap
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import yaml
from conftest import DENY_CLUSTERS, small_guard
from fastapi import HTTPException

import ringfence
from ringfence.asgi import GuardMiddleware

# No network: LiteLLM reads its model price list from its own package (set
# before ringfence.litellm imports LiteLLM, where it is installed).
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
GuardHook = importlib.import_module("ringfence.litellm").GuardHook
GuardRefused = ringfence.litellm.GuardRefused

# LiteLLM's types make pydantic warn (filterwarnings = error) about their
# ReadOnly TypedDict items as the calls first build them.
pytestmark = pytest.mark.filterwarnings(r"ignore:.*`ReadOnly` qualifier:UserWarning")

try:
    import litellm
    from litellm.caching.dual_cache import DualCache
    from litellm.integrations.custom_logger import CustomLogger
    from litellm.proxy._types import UserAPIKeyAuth
except ImportError:
    litellm = None

def _readme_config() -> str:
    """The ``yaml`` block of the README's LiteLLM section, as written."""
    readme = (pathlib.Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme.split("### LiteLLM", 1)[1]
    return section.split("```yaml\n", 1)[1].split("```", 1)[0]


#: The LiteLLM section of the README: its proxy configuration.
README_CONFIG = _readme_config()

MODEL = "gpt-4o-mini"
TEXT = "Hello from the mock"
#: The completion tokens of a non-streamed mocked response (LiteLLM's mock says 20).
COMPLETION_TOKENS = 20


# -- the two sides: a stand-in of LiteLLM's objects, and LiteLLM ------------


@dataclass
class StandInUsage:
    completion_tokens: int
    prompt_tokens: int = 8
    total_tokens: int = 0


@dataclass
class StandInResponse:
    """A ``ModelResponse`` (or a ``ModelResponseStream`` chunk): ``choices`` and ``usage``."""

    choices: list[dict[str, Any]]
    usage: StandInUsage | None = None


class StandInAuth:
    """The ``UserAPIKeyAuth`` fields the hook reads; as LiteLLM's does, it
    keeps the API key only as its SHA-256 (``token``)."""

    def __init__(self, api_key: str | None = None, user_id: str | None = None, team_id: str | None = None,
                 org_id: str | None = None, end_user_id: str | None = None) -> None:
        self.token = hashlib.sha256(api_key.encode()).hexdigest() if api_key else None
        self.api_key = self.token
        self.user_id, self.team_id, self.org_id, self.end_user_id = user_id, team_id, org_id, end_user_id


class StandIn:
    name = "stand-in"

    def auth(self, **fields: Any) -> Any:
        return StandInAuth(**fields)

    def cache(self) -> Any:
        return object()  # DualCache: the hook does not use it

    async def call(self, data: dict[str, Any], fail: bool = False) -> Any:
        if fail:
            raise RuntimeError("the upstream failed")
        if not data.get("stream"):
            message = {"message": {"role": "assistant", "content": TEXT}}
            return StandInResponse([message], StandInUsage(COMPLETION_TOKENS))
        include_usage = (data.get("stream_options") or {}).get("include_usage")
        return self._stream(include_usage)

    async def _stream(self, include_usage: bool) -> AsyncIterator[StandInResponse]:
        words = TEXT.split()
        for w in words:
            yield StandInResponse([{"delta": {"content": w}}])
        if include_usage:
            yield StandInResponse([], StandInUsage(len(words)))


class Real:
    name = "litellm"

    def auth(self, **fields: Any) -> Any:
        return UserAPIKeyAuth(**fields)

    def cache(self) -> Any:
        return DualCache()

    async def call(self, data: dict[str, Any], fail: bool = False) -> Any:
        # The proxy passes the request on as keyword arguments, its
        # litellm_call_id, metadata and proxy_server_request included.
        mock = "litellm.InternalServerError" if fail else TEXT
        return await litellm.acompletion(**data, mock_response=mock, api_key="sk-not-used")


@pytest.fixture(params=["stand-in", "litellm"])
def side(request: pytest.FixtureRequest) -> Any:
    if request.param == "stand-in":
        return StandIn()
    if litellm is None:
        pytest.skip("litellm is not installed")
    litellm.suppress_debug_info = True
    return Real()


# -- one request through the hook, as the proxy runs it ----------------------


@dataclass
class Served:
    status: int
    headers: dict[str, str]
    response: Any = None
    chunks: list[Any] = field(default_factory=list)
    detail: Any = None


def request(prompt: str, *, ip: str = "203.0.113.7", headers: dict[str, str] | None = None,
            system: str | None = "You are terse.", stream: bool = False, include_usage: bool = True,
            max_tokens: int = 1000) -> dict[str, Any]:
    """The ``data`` dict the proxy hands its hooks for a chat completion."""
    hdrs = {"content-type": "application/json", "user-agent": "client/1.0", **(headers or {})}
    messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
    body: dict[str, Any] = {"model": MODEL, "messages": messages, "max_tokens": max_tokens}
    if stream:
        body["stream"] = True
        if include_usage:
            body["stream_options"] = {"include_usage": True}
    return {
        **body,
        "litellm_call_id": str(uuid.uuid4()),
        "metadata": {"requester_ip_address": ip, "user_agent": hdrs["user-agent"], "headers": hdrs},
        "proxy_server_request": {
            "url": "http://127.0.0.1:4000/v1/chat/completions",
            "method": "POST",
            "headers": hdrs,
            "body": dict(body),
        },
    }


async def serve(hook: GuardHook, side: Any, auth: Any, data: dict[str, Any], *, fail: bool = False,
                call_type: str = "acompletion") -> Served:
    try:
        await hook.async_pre_call_hook(user_api_key_dict=auth, cache=side.cache(), data=data, call_type=call_type)
        response = await side.call(data, fail=fail)
    except Exception as e:
        await hook.async_post_call_failure_hook(request_data=data, original_exception=e, user_api_key_dict=auth)
        extra = await hook.async_post_call_response_headers_hook(data=data, user_api_key_dict=auth, response=None)
        if isinstance(e, HTTPException):
            return Served(e.status_code, {**(e.headers or {}), **(extra or {})}, detail=e.detail)
        return Served(500, extra or {}, detail=str(e))
    if data.get("stream"):
        headers = await hook.async_post_call_response_headers_hook(data=data, user_api_key_dict=auth, response=response)
        stream = hook.async_post_call_streaming_iterator_hook(user_api_key_dict=auth, response=response,
                                                              request_data=data)
        chunks = [chunk async for chunk in stream]
        return Served(200, headers or {}, chunks=chunks)
    assert await hook.async_post_call_success_hook(data=data, user_api_key_dict=auth, response=response) is None
    headers = await hook.async_post_call_response_headers_hook(data=data, user_api_key_dict=auth, response=response)
    return Served(200, headers or {}, response=response)


class Recording:
    """A guard whose settlements are recorded (the hook only checks and settles)."""

    def __init__(self, guard: ringfence.Guard) -> None:
        self.inner = guard
        self.settled: list[int] = []

    def check(self, *args: Any, **kwargs: Any) -> ringfence.Verdict:
        return self.inner.check(*args, **kwargs)

    def settle(self, verdict: ringfence.Verdict, output_tokens: int) -> None:
        self.settled.append(output_tokens)
        self.inner.settle(verdict, output_tokens)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def content(chunk: Any) -> str:
    """The text a stream chunk adds."""
    if not chunk.choices:
        return ""
    choice = chunk.choices[0]
    delta = choice["delta"] if isinstance(choice, dict) else choice.delta
    text = delta.get("content") if isinstance(delta, dict) else delta.content
    return text or ""


# -- the scenarios -------------------------------------------------------------


def test_a_linked_cluster_gets_429_with_headers_and_others_are_served(side):
    guard = small_guard({**DENY_CLUSTERS, "account_tokens_per_minute": 100_000})
    verdicts: list[ringfence.Verdict] = []
    hook = GuardHook(guard, fingerprint_headers={"payment": "x-payment"},
                     on_verdict=lambda data, v: verdicts.append(v))

    async def scenario() -> None:
        statuses = []
        for i in range(5):
            auth = side.auth(api_key=f"sk-fleet-{i}", user_id=f"fleet-{i}")
            served = await serve(hook, side, auth, request(f"question {i}", headers={"x-payment": "card-shared"}))
            statuses.append(served.status)
            if served.status == 429:
                assert served.headers["Retry-After"] == "3600"
                assert served.headers["RateLimit-Policy"].startswith('"suspected_distillation";q=0')
                assert served.headers["RateLimit"].startswith('"suspected_distillation";r=0')
                assert "suspected_distillation" in served.detail
                assert "retry after 3600 s" in served.detail
            else:
                # Allowed responses carry RateLimit and RateLimit-Policy, never Retry-After.
                assert served.headers == {k: v for k, v in verdicts[-1].headers().items() if k != "Retry-After"}
                assert served.headers["RateLimit-Policy"] == '"account";q=20;w=60'
        assert statuses == [200, 200, 429, 429, 429]
        # Unrelated users from the same address (one shared address alone links no one).
        for i in range(5):
            auth = side.auth(api_key=f"sk-solo-{i}", user_id=f"solo-{i}")
            served = await serve(hook, side, auth, request("hello", system=None, headers={"x-payment": f"card-{i}"}))
            assert served.status == 200, served.detail
            if side.name == "litellm":
                assert served.response.choices[0].message.content == TEXT

    run(scenario())
    assert [v.cluster_size for v in verdicts[:3]] == [1, 2, 3]
    explained = guard.explain("fleet-4")
    assert explained is not None and explained.cluster_size == 5
    assert guard.explain("solo-0").cluster_size == 1
    # Refused requests reserved nothing; every served one was settled.
    assert hook.pending == 0


def test_usage_is_settled_from_the_response(side):
    # 5,000 tokens a minute: each request reserves its 1,000 max_tokens and
    # its input; unsettled, the fifth would not fit.
    recording = Recording(small_guard({"account_tokens_per_minute": 5_000}))
    hook = GuardHook(recording)  # type: ignore[arg-type]
    auth = side.auth(api_key="sk-heavy", user_id="heavy")

    async def scenario() -> list[Served]:
        return [await serve(hook, side, auth, request(f"say hello {i}")) for i in range(15)]

    served = run(scenario())
    assert [s.status for s in served] == [200] * 15
    assert recording.settled == [COMPLETION_TOKENS] * 15
    assert [s.response.usage.completion_tokens for s in served] == recording.settled
    assert hook.pending == 0
    # RateLimit counts the requests down.
    assert served[-1].headers["RateLimit"].startswith('"account";r=5;')


def test_an_unsettled_reservation_stands(side):
    # The control for the test above: calls whose usage never comes back
    # keep their reservations, so the fifth no longer fits the budget.
    guard = small_guard({"account_tokens_per_minute": 5_000})
    hook = GuardHook(guard)
    auth = side.auth(api_key="sk-quiet", user_id="quiet")

    async def scenario() -> list[bool]:
        allowed = []
        for i in range(6):
            try:
                await hook.async_pre_call_hook(user_api_key_dict=auth, cache=side.cache(),
                                               data=request(f"x {i}"), call_type="acompletion")
                allowed.append(True)
            except GuardRefused as e:
                assert e.status_code == 429 and e.verdict.reasons
                allowed.append(False)
        return allowed

    assert run(scenario()) == [True, True, True, True, False, False]
    assert hook.pending == 4


def test_a_failure_releases_the_reservation(side):
    recording = Recording(small_guard({"account_tokens_per_minute": 5_000}))
    hook = GuardHook(recording)  # type: ignore[arg-type]
    auth = side.auth(api_key="sk-unlucky", user_id="unlucky")

    async def scenario() -> tuple[list[Served], Served]:
        failed = [await serve(hook, side, auth, request(f"x {i}"), fail=True) for i in range(9)]
        return failed, await serve(hook, side, auth, request("x"))

    failed, ok = run(scenario())
    assert [f.status for f in failed] == [500] * 9
    # Failures settle with no output, and their headers are dropped.
    assert recording.settled == [0] * 9 + [COMPLETION_TOKENS]
    assert ok.status == 200
    assert hook.pending == 0 and not hook._headers


def test_a_stream_is_settled_with_its_final_usage(side):
    recording = Recording(small_guard({"account_tokens_per_minute": 5_000}))
    hook = GuardHook(recording)  # type: ignore[arg-type]
    auth = side.auth(api_key="sk-streamer", user_id="streamer")

    async def scenario() -> list[Served]:
        return [await serve(hook, side, auth, request(f"stream {i}", stream=True)) for i in range(8)]

    served = run(scenario())
    assert [s.status for s in served] == [200] * 8
    last_usages = []
    for s in served:
        # The stream passed through whole, and the usage it ended with was settled.
        usages = [c.usage.completion_tokens for c in s.chunks if getattr(c, "usage", None) is not None]
        assert "".join(content(c) for c in s.chunks).replace(" ", "") == TEXT.replace(" ", "")
        assert usages and usages[-1] > 0
        last_usages.append(usages[-1])
        assert s.headers["RateLimit-Policy"] == '"account";q=20;w=60'
    assert recording.settled == last_usages
    assert hook.pending == 0


def test_a_stream_without_usage_waits_for_litellms_log(side):
    recording = Recording(small_guard())
    hook = GuardHook(recording)  # type: ignore[arg-type]
    auth = side.auth(api_key="sk-k", user_id="u")
    served = run(serve(hook, side, auth, request("no usage", stream=True, include_usage=False)))
    assert served.status == 200 and served.chunks
    # No usage in the stream: nothing settled by the stream; the call waits
    # for LiteLLM's success log (next test), else its reservation stands.
    assert recording.settled == [] and hook.pending == 1


def test_litellm_logging_settles_a_stream_without_usage(monkeypatch):
    if litellm is None:
        pytest.skip("litellm is not installed")
    litellm.suppress_debug_info = True
    recording = Recording(small_guard())
    hook = GuardHook(recording)  # type: ignore[arg-type]
    # LiteLLM copies litellm.callbacks into its own lists on each call: put
    # every one back afterwards.
    for name in ("callbacks", "success_callback", "_async_success_callback", "failure_callback",
                 "_async_failure_callback"):
        monkeypatch.setattr(litellm, name, list(getattr(litellm, name)))
    litellm.callbacks.append(hook)
    auth = UserAPIKeyAuth(api_key="sk-k", user_id="u")

    async def scenario() -> Served:
        served = await serve(hook, Real(), auth, request("no usage", stream=True, include_usage=False))
        for _ in range(500):  # LiteLLM logs success on its logging worker
            if not hook.pending:
                break
            await asyncio.sleep(0.01)
        return served

    served = run(scenario())
    assert served.status == 200
    assert hook.pending == 0
    assert len(recording.settled) == 1 and recording.settled[0] > 0


def test_accounts_fingerprints_and_what_is_guarded(side):
    guard = small_guard()
    hook = GuardHook(guard, fingerprint_headers={"device": "X-Device-Id"})
    key_only = side.auth(api_key="sk-secret-1")
    data = request("hi", ip="198.51.100.9, 10.0.0.1", headers={"x-device-id": "dev-7", "x-forwarded-for": "192.0.2.1"})

    # The hashed key is the account the ASGI middleware gives the same key.
    scope = {"type": "http", "headers": [(b"authorization", b"Bearer sk-secret-1")]}
    assert hook.account(key_only, data) == GuardMiddleware(None, guard).account(scope)  # type: ignore[arg-type]
    assert hook.account(side.auth(api_key="sk-secret-1", user_id="alice"), data) == "alice"
    team = side.auth(api_key="sk-x", user_id="bob", team_id="t-1")
    assert GuardHook(guard, account=("team", "user")).account(team, data) == "team:t-1"
    assert GuardHook(guard, account=["org", "user"]).account(team, data) == "bob"
    assert GuardHook(guard, account=lambda auth, d: d["metadata"]["user_agent"]).account(team, data) == "client/1.0"
    assert GuardHook(guard, account=["end_user"]).account(side.auth(end_user_id="cust-9"), data) == "end_user:cust-9"
    assert hook.account(side.auth(), data) is None
    long = hook.account(side.auth(user_id="u" * 5000), data)
    assert long is not None and long.startswith("acct-") and len(long) == 37
    with pytest.raises(ValueError, match="account"):
        GuardHook(guard, account=("user", "nonsense"))

    assert hook.fingerprints(data) == {"ip": "198.51.100.9", "user_agent": "client/1.0", "device": "dev-7"}
    assert GuardHook(guard, trust_forwarded=True).fingerprints(data)["ip"] == "192.0.2.1"
    bare = {"messages": [], "metadata": {"user_agent": "ua"}}
    assert hook.fingerprints(bare) == {"user_agent": "ua"}

    async def scenario() -> None:
        # No account, or a call type that is not generation: unguarded.
        assert await hook.async_pre_call_hook(side.auth(), side.cache(), request("x"), "acompletion") is None
        assert await hook.async_pre_call_hook(key_only, side.cache(), {"input": "x"}, "aembedding") is None
        assert hook.pending == 0
        # Anthropic's messages route: system and max_tokens are read too.
        anthropic = {"model": "claude-x", "system": "Be brief.", "max_tokens": 64,
                     "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi there"}]}]}
        verdicts: list[ringfence.Verdict] = []
        hook.on_verdict = lambda d, v: verdicts.append(v)
        await hook.async_pre_call_hook(key_only, side.cache(), anthropic, "anthropic_messages")
        assert verdicts[-1].input_tokens == -(-len("Hi thereBe brief.") // 4)
        # Outside the proxy a call id is made up, so the call can be settled.
        assert hook.pending == 1 and isinstance(anthropic["litellm_call_id"], str)
        await hook.async_post_call_success_hook(anthropic, key_only, {"usage": {"input_tokens": 5, "output_tokens": 7}})
        assert hook.pending == 0
        # Lone surrogates and an over-long model name are cleaned, not fatal.
        odd = request("\ud800 odd")
        odd["model"] = "m" * 10_000
        await hook.async_pre_call_hook(key_only, side.cache(), odd, "acompletion")
        # "*" guards every call type.
        everything = GuardHook(guard, call_types="*")
        await everything.async_pre_call_hook(key_only, side.cache(), {"input": "x"}, "aembedding")
        assert everything.pending == 1

    run(scenario())


def test_usage_shapes_and_settling_once():
    out = ringfence.litellm._output_tokens
    assert out({"usage": {"completion_tokens": 3}}) == 3
    assert out({"type": "message_delta", "usage": {"output_tokens": 9}}) == 9
    assert out({"type": "message_start", "message": {"usage": {"output_tokens": 1}}}) == 1
    assert out({"type": "response.completed", "response": {"usage": {"output_tokens": 11}}}) == 11
    assert out(StandInResponse([], StandInUsage(-5))) == 0
    assert out({"usage": {"completion_tokens": True}}) is None
    assert out(None) is None and out(b"data: x") is None and out({"usage": None}) is None

    recording = Recording(small_guard())
    hook = GuardHook(recording, max_pending=2)  # type: ignore[arg-type]
    auth = StandInAuth(user_id="u")

    async def scenario() -> None:
        ids = []
        for i in range(3):
            data = request(f"p {i}")
            ids.append(data["litellm_call_id"])
            await hook.async_pre_call_hook(auth, None, data, "acompletion")
        # The oldest was dropped (its reservation stands); the rest settle once.
        assert hook.pending == 2 and len(hook._headers) == 2
        assert not hook.settle(ids[0], 5)
        assert hook.settle(ids[1], 5) and not hook.settle(ids[1], 5)
        await hook.async_log_success_event({"litellm_call_id": ids[2], "standard_logging_object":
                                            {"completion_tokens": 6}}, None, None, None)
        # An Anthropic stream relayed as server-sent-event bytes.
        data = request("sse", stream=True)
        await hook.async_pre_call_hook(auth, None, data, "anthropic_messages")

        async def events() -> AsyncIterator[bytes]:
            yield (b'event: message_start\n'
                   b'data: {"type": "message_start", "message": {"usage": {"output_tokens": 1}}}\n\n')
            yield b'event: message_delta\ndata: {"type": "message_delta", "usage": {"output_tokens": 42}}'

        relayed = [c async for c in hook.async_post_call_streaming_iterator_hook(auth, events(), data)]
        assert len(relayed) == 2
        # A stream of a call that is not waiting passes through untouched.
        assert [c async for c in hook.async_post_call_streaming_iterator_hook(auth, events(), {})] == relayed

    run(scenario())
    assert recording.settled == [5, 6, 42]
    assert hook.pending == 0


def test_the_readme_config_names_the_hook():
    config = yaml.safe_load(README_CONFIG)
    name = config["litellm_settings"]["callbacks"]
    assert name == "ringfence.litellm.proxy_handler_instance"
    # LiteLLM resolves it as module path and attribute.
    module, _, attr = name.rpartition(".")
    instance = getattr(importlib.import_module(module), attr)
    assert isinstance(instance, GuardHook)
    assert instance is ringfence.litellm.proxy_handler_instance
    if litellm is not None:
        from litellm.proxy.types_utils.utils import get_instance_fn

        assert get_instance_fn(name) is instance
        assert isinstance(instance, CustomLogger)
        # The proxy runs only the hooks a callback's own class defines.
        for hook in ("async_pre_call_hook", "async_post_call_success_hook", "async_post_call_failure_hook",
                     "async_post_call_streaming_iterator_hook", "async_post_call_response_headers_hook",
                     "async_log_success_event"):
            assert hook in vars(GuardHook), hook
            ours = inspect.signature(getattr(GuardHook, hook)).parameters
            theirs = inspect.signature(getattr(CustomLogger, hook)).parameters
            assert list(ours)[: len(theirs)] == list(theirs)[: len(ours)], hook


def test_the_default_instance_configures_itself_from_the_environment(tmp_path, monkeypatch):
    config = tmp_path / "ringfence.toml"
    config.write_text("account_requests_per_minute = 1\n[link]\nmax_accounts = 100\nmax_values = 250\n"
                      "max_templates = 50\nmax_pairs = 100\n")
    monkeypatch.setenv("RINGFENCE_CONFIG", str(config))
    monkeypatch.setenv("RINGFENCE_LITELLM_ACCOUNT", "team, key")
    monkeypatch.setenv("RINGFENCE_FINGERPRINT_HEADERS", "ja4=x-ja4, device=x-device")
    monkeypatch.setenv("RINGFENCE_TRUST_FORWARDED", "1")
    hook = GuardHook()
    assert hook.account_sources == ("team", "key")
    assert hook.fingerprint_headers == [("ja4", "x-ja4"), ("device", "x-device")]
    assert hook.trust_forwarded
    assert hook._guard is None  # built on the first request, from RINGFENCE_CONFIG
    auth = StandInAuth(api_key="sk-1", team_id="t")

    async def twice() -> int:
        await hook.async_pre_call_hook(auth, None, request("a"), "completion")
        with pytest.raises(GuardRefused) as refused:
            await hook.async_pre_call_hook(auth, None, request("a"), "completion")
        return refused.value.status_code

    assert run(twice()) == 429
    assert hook.guard.config["account_requests_per_minute"] == 1
    monkeypatch.setenv("RINGFENCE_FINGERPRINT_HEADERS", "nonsense")
    with pytest.raises(ValueError, match="kind=header"):
        GuardHook()


def test_the_module_is_documented():
    module = ringfence.litellm
    assert module.__doc__ and "proxy_handler_instance" in module.__doc__
    missing = [n for n in module.__all__ if not n.isupper() and not inspect.getdoc(getattr(module, n))]
    for name in dir(GuardHook):
        if not name.startswith("_") and name in vars(GuardHook) and not inspect.getdoc(getattr(GuardHook, name)):
            missing.append(f"GuardHook.{name}")
    assert not missing, missing
    assert issubclass(GuardRefused, HTTPException)


# -- the proxy itself ----------------------------------------------------------

PROXY_SCRIPT = r'''
import json, os, sys
import yaml
try:
    from fastapi.testclient import TestClient
    from litellm.proxy.proxy_server import app
except ImportError as e:  # the proxy's own dependencies are missing
    print(json.dumps({"skip": f"the LiteLLM proxy does not import here: {e!r}"}))
    sys.exit(0)

out = {}
def post(client, user, body, **headers):
    r = client.post("/v1/chat/completions", json=body,
                    headers={"authorization": "Bearer sk-client", "x-user": user, **headers})
    keep = {k.lower(): v for k, v in r.headers.items() if k.lower() in ("retry-after", "ratelimit", "ratelimit-policy")}
    return {"status": r.status_code, "headers": keep, "text": r.text}

def chat(prompt, **kw):
    return {"model": "gpt-4o", "messages": [{"role": "user", "content": prompt}], "max_tokens": 1000, **kw}

with TestClient(app) as client:
    out["fleet"] = [post(client, f"fleet-{i}", chat(f"q {i}"), **{"x-payment": "card-shared"}) for i in range(5)]
    out["solo"] = [post(client, f"solo-{i}", chat("hello"), **{"x-payment": f"card-{i}"}) for i in range(5)]
    out["heavy"] = [post(client, "heavy", chat(f"h {i}")) for i in range(8)]
    out["stream"] = [post(client, "streamer", chat(f"s {i}", stream=True, stream_options={"include_usage": True}))
                     for i in range(8)]
    out["broken"] = [post(client, "unlucky", dict(chat(f"b {i}"), model="broken")) for i in range(8)]
    out["after_broken"] = post(client, "unlucky", chat("fine now"))
    import ringfence.litellm
    out["pending"] = ringfence.litellm.proxy_handler_instance.pending
print(json.dumps(out))
'''


def test_the_proxy_in_process(tmp_path):
    if litellm is None:
        pytest.skip("litellm is not installed")
    config = yaml.safe_load(README_CONFIG)
    # The README's config, with mocked models and a custom auth that names
    # the user by a header (the proxy's keys live in its database otherwise).
    config["model_list"] = [
        {"model_name": "gpt-4o", "litellm_params": {"model": "openai/gpt-4o", "api_key": "sk-fake",
                                                    "mock_response": TEXT}},
        {"model_name": "broken", "litellm_params": {"model": "openai/gpt-4o", "api_key": "sk-fake",
                                                    "mock_response": "litellm.InternalServerError"}},
    ]
    config["general_settings"] = {"master_key": "sk-master-" + "0123456789abcdef" * 2,
                                  "custom_auth": "auth.user_api_key_auth"}
    config["router_settings"] = {"num_retries": 0}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    (tmp_path / "auth.py").write_text(textwrap.dedent("""
        from litellm.proxy._types import UserAPIKeyAuth
        async def user_api_key_auth(request, api_key):
            return UserAPIKeyAuth(api_key=api_key, user_id=request.headers.get("x-user"))
    """))
    (tmp_path / "ringfence.toml").write_text(
        "share_at = 0.0\ndeny_at = 0.0\naccount_tokens_per_minute = 5000\n"
        "[link]\nmax_accounts = 100\nmax_values = 250\nmax_templates = 50\nmax_pairs = 100\n")
    (tmp_path / "proxy.py").write_text(PROXY_SCRIPT)
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "CONFIG_FILE_PATH": str(tmp_path / "config.yaml"),
           "RINGFENCE_CONFIG": str(tmp_path / "ringfence.toml"), "RINGFENCE_FINGERPRINT_HEADERS": "payment=x-payment"}
    done = subprocess.run([sys.executable, "proxy.py"], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    if "skip" in out:
        pytest.skip(out["skip"])
    fleet = out["fleet"]
    assert [r["status"] for r in fleet] == [200, 200, 429, 429, 429]
    refused = fleet[-1]
    assert refused["headers"]["retry-after"] == "3600"
    assert refused["headers"]["ratelimit-policy"].startswith('"suspected_distillation";q=0')
    assert refused["headers"]["ratelimit"].startswith('"suspected_distillation";r=0')
    error = json.loads(refused["text"])["error"]
    assert "suspected_distillation" in error["message"] and str(error["code"]) == "429"
    assert fleet[0]["headers"]["ratelimit-policy"] == '"account";q=20;w=60'
    assert "retry-after" not in fleet[0]["headers"]
    assert [r["status"] for r in out["solo"]] == [200] * 5
    # 5,000 tokens a minute and 1,000 reserved per request: eight of each
    # are served only because each was settled with its real usage.
    assert [r["status"] for r in out["heavy"]] == [200] * 8
    assert [r["status"] for r in out["stream"]] == [200] * 8
    assert all('"usage"' in r["text"] and "data: [DONE]" in r["text"] for r in out["stream"])
    assert [r["status"] for r in out["broken"]] == [500] * 8
    assert out["after_broken"]["status"] == 200
    assert out["pending"] == 0
