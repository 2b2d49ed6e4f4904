"""A hook for the LiteLLM proxy that puts a :class:`ringfence.Guard` in front of it.

LiteLLM's proxy runs the ``CustomLogger`` objects named in its config around
each call. This module's :class:`GuardHook` is one; the proxy loads the
ready-made instance by its dotted name:

.. code-block:: yaml

    litellm_settings:
      callbacks: ringfence.litellm.proxy_handler_instance

That instance configures itself from the environment, as
:class:`ringfence.asgi.GuardMiddleware` does for vLLM:

``RINGFENCE_CONFIG``
    path of a TOML file with the guard's configuration (default: the
    defaults, sized for 250,000 accounts; the guard is built on the first
    request, not at import);
``RINGFENCE_LITELLM_ACCOUNT``
    where the account comes from, comma-separated sources tried in order
    (default ``user,key``; see :meth:`GuardHook.account`);
``RINGFENCE_FINGERPRINT_HEADERS``
    ``kind=header`` pairs, comma-separated, e.g.
    ``ja4=x-ja4,device=x-device-id``;
``RINGFENCE_TRUST_FORWARDED``
    ``1`` to take the client address from ``X-Forwarded-For``.

For each generation call (chat and text completions, the Responses API,
Anthropic messages, Gemini's generate_content; ``call_types`` changes them)
the hook:

1. before the call (``async_pre_call_hook``) takes the **account** from the
   caller's ``UserAPIKeyAuth`` (its user id, else its hashed key; a caller
   with neither passes unguarded), the **fingerprints** ``ip`` (the client
   address LiteLLM recorded), ``user_agent`` and the configured request
   headers, and the prompt, system prompt, model and ``max_tokens`` of the
   request (as :func:`ringfence.asgi.parse_request_body` reads them), and
   checks it with the guard;
2. refuses a request the guard refuses by raising :class:`GuardRefused`, a
   ``fastapi.HTTPException`` with status 429 and the verdict's
   ``Retry-After``, ``RateLimit`` and ``RateLimit-Policy`` headers
   (:meth:`ringfence.Verdict.headers`), which the proxy sends as they are;
3. adds ``RateLimit`` and ``RateLimit-Policy`` to allowed responses
   (``async_post_call_response_headers_hook``);
4. **settles** the reservation with the completion (output) tokens of the
   response's ``usage`` (``async_post_call_success_hook``), of the last
   chunk or event of a stream that carries it
   (``async_post_call_streaming_iterator_hook``; OpenAI's final chunk with
   ``stream_options.include_usage``, the Responses API's
   ``response.completed``, Anthropic's ``message_delta``), or else of the
   usage LiteLLM logs when the call is done (``async_log_success_event``);
5. settles a failed call with no output (``async_post_call_failure_hook``).

Each reservation is settled at most once. The verdicts waiting for
settlement are kept by LiteLLM's call id, at most ``max_pending`` of them;
past that the oldest is dropped and its reservation stands, as does the
reservation of a call whose usage never arrives.

The proxy finds a hook's methods on its own class, so configure a
:class:`GuardHook` with its keyword arguments rather than subclassing it.
A guard call takes microseconds, so the hook runs it on the event loop.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import AsyncGenerator, Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Any

from ringfence._native import (
    MAX_ACCOUNT_BYTES,
    MAX_FINGERPRINT_BYTES,
    MAX_MODEL_BYTES,
    Guard,
    InputError,
    Verdict,
)
from ringfence.asgi import RequestInfo, _clean, _Usage, parse_request_body

try:  # the base class the proxy looks for; optional, so the module imports without LiteLLM
    from litellm.integrations.custom_logger import CustomLogger as _HookBase
except ImportError:  # pragma: no cover - depends on the environment
    _HookBase = object  # type: ignore[assignment,misc]

try:  # the exception the proxy turns into an HTTP response with its headers
    from fastapi import HTTPException as _HTTPException
except ImportError:  # pragma: no cover - depends on the environment

    class _HTTPException(Exception):  # type: ignore[no-redef]
        """Stands in for ``fastapi.HTTPException`` where FastAPI is not installed."""

        def __init__(self, status_code: int, detail: Any = None, headers: Mapping[str, str] | None = None) -> None:
            super().__init__(status_code, detail)
            self.status_code = status_code
            self.detail = detail
            self.headers = dict(headers) if headers is not None else None


__all__ = [
    "ACCOUNT_SOURCES",
    "DEFAULT_CALL_TYPES",
    "GuardHook",
    "GuardRefused",
    "proxy_handler_instance",
]

#: The LiteLLM call types guarded by default: the generation endpoints.
DEFAULT_CALL_TYPES: frozenset[str] = frozenset({
    "completion", "acompletion",
    "text_completion", "atext_completion",
    "responses", "aresponses",
    "anthropic_messages", "aanthropic_messages",
    "generate_content", "agenerate_content",
    "generate_content_stream", "agenerate_content_stream",
})

#: The account sources :meth:`GuardHook.account` knows, and the
#: ``UserAPIKeyAuth`` field each reads.
ACCOUNT_SOURCES: Mapping[str, str] = MappingProxyType({
    "user": "user_id",
    "team": "team_id",
    "org": "org_id",
    "end_user": "end_user_id",
    "key": "token",
})

_U32_MAX = 2**32 - 1
_SSE_LINE_LIMIT = 1 << 20

AccountFn = Callable[[Any, Mapping[str, Any]], "str | None"]


class GuardRefused(_HTTPException):
    """A request the guard refused: a ``fastapi.HTTPException`` with status
    429, the verdict's headers (``Retry-After``, ``RateLimit``,
    ``RateLimit-Policy``) and a message naming the reasons; ``verdict`` is
    the :class:`ringfence.Verdict`."""

    def __init__(self, verdict: Verdict) -> None:
        headers = verdict.headers()
        reasons = ", ".join(verdict.reasons) or "rate_limited"
        retry = headers.get("Retry-After")
        detail = f"Request refused by ringfence ({reasons})" + (f"; retry after {retry} s" if retry else "")
        super().__init__(status_code=429, detail=detail, headers=headers)
        self.verdict = verdict


def _get(obj: Any, key: str) -> Any:
    """``obj[key]`` of a mapping, else the attribute; None when absent."""
    if isinstance(obj, Mapping):
        return obj.get(key)
    if obj is None or isinstance(obj, (str, bytes, bytearray, int, float)):
        return None
    try:
        return getattr(obj, key, None)
    except Exception:  # a property that raises
        return None


def _output_tokens(obj: Any) -> int | None:
    """The completion (output) tokens of a response, a stream chunk or an
    event: its ``usage`` (or that of its ``response`` or ``message``, as in
    the Responses API's and Anthropic's stream events); None without one."""
    for holder in (obj, _get(obj, "response"), _get(obj, "message")):
        usage = _get(holder, "usage")
        if usage is None:
            continue
        for key in ("completion_tokens", "output_tokens"):
            v = _get(usage, key)
            if isinstance(v, int) and not isinstance(v, bool):
                return min(max(v, 0), _U32_MAX)
    return None


def _call_id(data: Any) -> str | None:
    v = _get(data, "litellm_call_id")
    return v if isinstance(v, str) and v else None


def _metadata(data: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The request's metadata dicts: LiteLLM keeps them under ``metadata`` or
    ``litellm_metadata``, depending on the route."""
    return [m for m in (data.get("metadata"), data.get("litellm_metadata")) if isinstance(m, Mapping)]


def _request_headers(data: Mapping[str, Any]) -> dict[str, str]:
    """The client's request headers as LiteLLM recorded them (credentials
    redacted), with lower-case names."""
    found: dict[str, str] = {}
    sources = [_get(data.get("proxy_server_request"), "headers")]
    sources += [m.get("headers") for m in _metadata(data)]
    for headers in sources:
        if isinstance(headers, Mapping):
            for k, v in headers.items():
                if isinstance(k, str) and isinstance(v, str):
                    found.setdefault(k.lower(), v)
    return found


def _env_list(name: str) -> list[str]:
    return [p.strip() for p in os.environ.get(name, "").split(",") if p.strip()]


class GuardHook(_HookBase):  # type: ignore[misc,valid-type]
    """A LiteLLM proxy hook (a ``litellm.integrations.custom_logger.CustomLogger``):
    checks each generation call with a :class:`ringfence.Guard`, refuses
    with 429 when it is refused, and settles the response's token usage.

    ``guard``
        the Guard to use; default: one built, on the first request, from
        the TOML file named by ``RINGFENCE_CONFIG``, or the default
        configuration.
    ``account``
        where the account comes from: source names tried in order (see
        :meth:`account`; default ``RINGFENCE_LITELLM_ACCOUNT`` or
        ``("user", "key")``), or a function of ``(user_api_key_dict, data)``
        returning the account or None.
    ``fingerprint_headers``
        kind to request header, e.g. ``{"ja4": "x-ja4"}`` (default
        ``RINGFENCE_FINGERPRINT_HEADERS``).
    ``trust_forwarded``
        take the client address from ``X-Forwarded-For`` (default
        ``RINGFENCE_TRUST_FORWARDED``); otherwise the address LiteLLM
        recorded (which is ``X-Forwarded-For`` when the proxy's
        ``use_x_forwarded_for`` is set).
    ``call_types``
        the LiteLLM call types to guard (``"*"`` guards all; default
        :data:`DEFAULT_CALL_TYPES`).
    ``default_max_tokens``
        the output tokens reserved when a request names no ``max_tokens``
        (default 1024).
    ``rate_limit_headers``
        add ``RateLimit`` and ``RateLimit-Policy`` to allowed responses
        (default True).
    ``max_pending``
        the most verdicts kept waiting for settlement (default 100,000).
    ``on_verdict``
        called with ``(data, verdict)`` after each check (for logging).

    Other keyword arguments go to ``CustomLogger``.
    """

    def __init__(
        self,
        guard: Guard | None = None,
        *,
        account: Iterable[str] | AccountFn | None = None,
        fingerprint_headers: Mapping[str, str] | None = None,
        trust_forwarded: bool | None = None,
        call_types: Iterable[str] | None = None,
        default_max_tokens: int = 1024,
        rate_limit_headers: bool = True,
        max_pending: int = 100_000,
        on_verdict: Callable[[Mapping[str, Any], Verdict], None] | None = None,
        **kwargs: Any,
    ) -> None:
        if _HookBase is not object:
            super().__init__(**kwargs)
        elif kwargs:
            raise TypeError(f"unexpected keyword arguments {sorted(kwargs)}")
        self._guard = guard
        if account is None:
            account = _env_list("RINGFENCE_LITELLM_ACCOUNT") or ("user", "key")
        if callable(account):
            self._account_fn: AccountFn | None = account
            self.account_sources: tuple[str, ...] = ()
        else:
            self._account_fn = None
            self.account_sources = tuple(account)
            unknown = [s for s in self.account_sources if s not in ACCOUNT_SOURCES]
            if unknown or not self.account_sources:
                raise ValueError(
                    f"account: {unknown or 'no source'} not among {sorted(ACCOUNT_SOURCES)}"
                )
        if fingerprint_headers is None:
            fingerprint_headers = {}
            for pair in _env_list("RINGFENCE_FINGERPRINT_HEADERS"):
                kind, sep, header = pair.partition("=")
                if not sep or not kind.strip() or not header.strip():
                    raise ValueError(f"RINGFENCE_FINGERPRINT_HEADERS: {pair!r} is not kind=header")
                fingerprint_headers[kind.strip()] = header.strip()
        self.fingerprint_headers = [(kind, header.lower()) for kind, header in fingerprint_headers.items()]
        if trust_forwarded is None:
            trust_forwarded = os.environ.get("RINGFENCE_TRUST_FORWARDED", "") in ("1", "true", "yes")
        self.trust_forwarded = trust_forwarded
        self.call_types = frozenset(DEFAULT_CALL_TYPES if call_types is None else call_types)
        self.default_max_tokens = default_max_tokens
        self.rate_limit_headers = rate_limit_headers
        self.max_pending = max(1, max_pending)
        self.on_verdict = on_verdict
        # Call id -> the verdict waiting for settlement, and -> the headers
        # for the response; oldest first (dicts keep insertion order).
        self._pending: dict[str, Verdict] = {}
        self._headers: dict[str, dict[str, str]] = {}

    @property
    def guard(self) -> Guard:
        """The guard (built on first use when none was given)."""
        if self._guard is None:
            path = os.environ.get("RINGFENCE_CONFIG")
            self._guard = Guard.from_file(path) if path else Guard()
        return self._guard

    @property
    def pending(self) -> int:
        """How many allowed calls wait for settlement."""
        return len(self._pending)

    # -- what a request is ------------------------------------------------

    def guards(self, call_type: Any) -> bool:
        """Whether calls of this type are checked."""
        name = getattr(call_type, "value", call_type)
        return "*" in self.call_types or name in self.call_types

    def account(self, user_api_key_dict: Any, data: Mapping[str, Any]) -> str | None:
        """The caller's account, from the first source that has one:
        ``user`` (the user id, as it is), ``team`` (``team:<id>``), ``org``
        (``org:<id>``), ``end_user`` (``end_user:<id>``, the request's
        ``user`` field, which the client chooses) or ``key`` (``key-`` and
        32 hex digits of the SHA-256 of the API key, the same account
        :class:`ringfence.asgi.GuardMiddleware` gives that key); None when
        none has."""
        if self._account_fn is not None:
            found = self._account_fn(user_api_key_dict, data)
        else:
            found = None
            for source in self.account_sources:
                found = self._from_source(source, user_api_key_dict)
                if found:
                    break
        if not found:
            return None
        if len(found.encode("utf-8", "replace")) > MAX_ACCOUNT_BYTES:
            return "acct-" + hashlib.sha256(found.encode("utf-8", "replace")).hexdigest()[:32]
        return found

    @staticmethod
    def _from_source(source: str, auth: Any) -> str | None:
        value = _get(auth, ACCOUNT_SOURCES[source])
        if source == "key":
            if not isinstance(value, str) or not value:
                raw = _get(auth, "api_key")
                if not isinstance(raw, str) or not raw:
                    return None
                value = hashlib.sha256(raw.encode("utf-8")).hexdigest()
            # LiteLLM's token is already the SHA-256 of the key, in hex.
            return "key-" + value[:32]
        if not isinstance(value, str) or not value:
            return None
        return value if source == "user" else f"{source}:{value}"

    def fingerprints(self, data: Mapping[str, Any]) -> dict[str, str]:
        """The request's fingerprints: ``ip``, ``user_agent`` and the configured headers."""
        headers = _request_headers(data)
        meta = _metadata(data)
        fps: dict[str, str] = {}
        ip = None
        if self.trust_forwarded and headers.get("x-forwarded-for"):
            ip = headers["x-forwarded-for"]
        for m in meta:
            if not ip and isinstance(m.get("requester_ip_address"), str):
                ip = m["requester_ip_address"]
        if ip:
            ip = ip.split(",")[0].strip()
        if ip:
            fps["ip"] = ip
        ua = headers.get("user-agent")
        for m in meta:
            if not ua and isinstance(m.get("user_agent"), str):
                ua = m["user_agent"]
        if ua:
            fps["user_agent"] = ua
        for kind, header in self.fingerprint_headers:
            v = headers.get(header)
            if v:
                fps[kind] = v
        cleaned = {k: _clean(v, MAX_FINGERPRINT_BYTES) for k, v in fps.items()}
        return {k: v for k, v in cleaned.items() if v}

    def _check(self, account: str, fps: dict[str, str], info: RequestInfo) -> Verdict:
        max_tokens = info.max_tokens if info.max_tokens is not None else self.default_max_tokens
        try:
            return self.guard.check(
                account, fps, info.prompt, info.system, info.model, info.input_tokens, max_tokens
            )
        except InputError:
            # Text the guard refuses (lone surrogates, an over-long model
            # name): cleaned, not fatal.
            return self.guard.check(
                _clean(account, MAX_ACCOUNT_BYTES) or "?",
                {k: c for k, v in fps.items() if (c := _clean(v, MAX_FINGERPRINT_BYTES))},
                _clean(info.prompt),
                _clean(info.system),
                _clean(info.model, MAX_MODEL_BYTES),
                info.input_tokens,
                max_tokens,
            )

    # -- bookkeeping ------------------------------------------------------

    def _keep(self, table: dict[str, Any], call_id: str, value: Any) -> None:
        table[call_id] = value
        while len(table) > self.max_pending:
            # The oldest goes; an evicted reservation stands.
            table.pop(next(iter(table)), None)

    def settle(self, call_id: str | None, output_tokens: int) -> bool:
        """Settles the call's reservation with ``output_tokens``; False when
        the call has none waiting (never checked, refused, or settled)."""
        verdict = self._pending.pop(call_id, None) if call_id is not None else None
        if verdict is None:
            return False
        try:
            self.guard.settle(verdict, min(max(int(output_tokens), 0), _U32_MAX))
        except InputError:  # settled already, by a caller of our own guard
            return False
        return True

    # -- LiteLLM's hooks --------------------------------------------------

    async def async_pre_call_hook(
        self, user_api_key_dict: Any, cache: Any, data: dict, call_type: Any
    ) -> None:
        """Checks the request; raises :class:`GuardRefused` (429) when the
        guard refuses it. The request goes on unchanged."""
        if not isinstance(data, dict) or not self.guards(call_type):
            return None
        account = self.account(user_api_key_dict, data)
        if account is None:
            return None
        verdict = self._check(account, self.fingerprints(data), parse_request_body(data))
        if self.on_verdict is not None:
            self.on_verdict(data, verdict)
        if not verdict.allowed:
            raise GuardRefused(verdict)
        call_id = _call_id(data)
        if call_id is None:  # outside the proxy, which always sets one
            call_id = data["litellm_call_id"] = str(uuid.uuid4())
        self._keep(self._pending, call_id, verdict)
        if self.rate_limit_headers:
            headers = {k: v for k, v in verdict.headers().items() if k != "Retry-After"}
            self._keep(self._headers, call_id, headers)
        return None

    async def async_post_call_response_headers_hook(
        self,
        data: dict,
        user_api_key_dict: Any,
        response: Any,
        request_headers: dict[str, str] | None = None,
        litellm_call_info: dict[str, Any] | None = None,
    ) -> dict[str, str] | None:
        """``RateLimit`` and ``RateLimit-Policy`` for an allowed call's response."""
        call_id = _call_id(data)
        return self._headers.pop(call_id, None) if call_id is not None else None

    async def async_post_call_success_hook(self, data: dict, user_api_key_dict: Any, response: Any) -> None:
        """Settles the call with the completion tokens of the response's usage."""
        out = _output_tokens(response)
        if out is not None:
            self.settle(_call_id(data), out)
        return None

    async def async_post_call_streaming_iterator_hook(
        self, user_api_key_dict: Any, response: Any, request_data: dict
    ) -> AsyncGenerator[Any, None]:
        """Passes a stream on unchanged, and settles the call with the usage
        of the last chunk or event that carries it, once the stream ends."""
        call_id = _call_id(request_data)
        if call_id is None or call_id not in self._pending:
            async for item in response:
                yield item
            return
        out: int | None = None
        sse: _Usage | None = None
        async for item in response:
            if isinstance(item, (bytes, bytearray, str)):  # server-sent events, as bytes
                if sse is None:
                    sse = _Usage("text/event-stream", _SSE_LINE_LIMIT)
                sse.feed(item.encode("utf-8") if isinstance(item, str) else bytes(item))
            else:
                found = _output_tokens(item)
                if found is not None:
                    out = found
            yield item
        if sse is not None:
            found = sse.finish()
            if found is not None:
                out = found
        if out is not None:
            self.settle(call_id, out)

    async def async_post_call_failure_hook(
        self,
        request_data: dict,
        original_exception: Exception,
        user_api_key_dict: Any,
        traceback_str: str | None = None,
    ) -> None:
        """Settles a failed call with no output (a refusal of this hook's
        own has nothing to settle)."""
        call_id = _call_id(request_data)
        self.settle(call_id, 0)
        if call_id is not None:
            self._headers.pop(call_id, None)
        return None

    async def async_log_success_event(self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any) -> None:
        """Settles a call still waiting (a stream without usage in its
        chunks) with the usage LiteLLM logged for it."""
        call_id = _call_id(kwargs)
        if call_id is None or call_id not in self._pending:
            return
        out = _output_tokens(response_obj)
        if out is None:
            logged = _get(kwargs, "standard_logging_object")
            v = _get(logged, "completion_tokens")
            if isinstance(v, int) and not isinstance(v, bool):
                out = v
        if out is not None:
            self.settle(call_id, out)


#: The instance a LiteLLM proxy config names
#: (``callbacks: ringfence.litellm.proxy_handler_instance``), configured from
#: the environment.
proxy_handler_instance = GuardHook()
