"""An ASGI middleware that puts a :class:`ringfence.Guard` in front of an LLM API.

Pure ASGI (no dependency): it works under Starlette and FastAPI
(``app.add_middleware(GuardMiddleware, guard=guard)``), under any ASGI
server, and as vLLM's ``--middleware ringfence.asgi.GuardMiddleware``.
vLLM constructs the middleware with no arguments, so then it configures
itself from the environment:

``RINGFENCE_CONFIG``
    path of a TOML file with the guard's configuration (default: the
    defaults, sized for 250,000 accounts);
``RINGFENCE_ACCOUNT_HEADER``
    a header naming the account (default: none; the API key is used);
``RINGFENCE_FINGERPRINT_HEADERS``
    ``kind=header`` pairs, comma-separated, e.g.
    ``ja4=x-ja4,device=x-device-id,payment=x-payment-fingerprint``;
``RINGFENCE_TRUST_FORWARDED``
    ``1`` to take the client address from ``X-Forwarded-For`` (behind a
    proxy you trust);
``RINGFENCE_PATHS``
    comma-separated path suffixes to guard (default
    ``/chat/completions,/completions,/messages,/responses``).

For each guarded request (``POST`` to one of those paths) the middleware:

1. takes the **account** from the configured header, else from the API key
   (``Authorization: Bearer …`` or ``x-api-key``), hashed so that no key is
   stored; a request with neither passes through unguarded;
2. takes the **fingerprints**: ``ip`` (the client address), ``user_agent``
   and the configured headers;
3. reads the **body** (buffered, up to ``max_body_bytes``) as an OpenAI
   (chat completions, completions, responses) or Anthropic (messages) JSON
   request: the last user message is the prompt, system and developer
   messages the system prompt, ``max_tokens`` / ``max_completion_tokens``
   / ``max_output_tokens`` the reservation, and the body is replayed to the
   app unchanged;
4. answers **429** with ``Retry-After``, ``RateLimit`` and
   ``RateLimit-Policy`` (and an error body shaped like the API's) when the
   guard refuses; otherwise adds ``RateLimit`` and ``RateLimit-Policy`` to
   the app's response;
5. **settles** the request with the ``usage`` of the app's JSON response, or
   of the last event carrying it in a streamed (``text/event-stream``)
   response (OpenAI's final chunk with ``stream_options.include_usage``,
   Anthropic's ``message_delta``); an error response settles with no
   output; a response without usage leaves the reservation standing.

A guard call takes microseconds, so it runs on the event loop.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping
from typing import Any

from ringfence._native import (
    MAX_ACCOUNT_BYTES,
    MAX_FINGERPRINT_BYTES,
    MAX_MODEL_BYTES,
    Guard,
    InputError,
    Verdict,
    estimate_tokens,
)

__all__ = ["DEFAULT_PATHS", "GuardMiddleware", "RequestInfo", "parse_request_body"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: The path suffixes guarded by default: OpenAI's and Anthropic's generation endpoints.
DEFAULT_PATHS: tuple[str, ...] = ("/chat/completions", "/completions", "/messages", "/responses")

_U32_MAX = 2**32 - 1


def _text(content: Any) -> str:
    """The text of a message's content: a string, or a list of parts with ``text``."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text") for p in content if isinstance(p, dict)]
        return "\n".join(p for p in parts if isinstance(p, str))
    return ""


class RequestInfo:
    """What the middleware reads from a request body."""

    __slots__ = {
        "prompt": "The prompt: the last user message (or the completion prompt, or the input).",
        "system": "The system prompt: system and developer messages, Anthropic's system, instructions.",
        "model": "The model asked for.",
        "max_tokens": "max_tokens, max_completion_tokens or max_output_tokens, if given.",
        "input_tokens": "The guard's estimate (estimate_tokens) of the UTF-8 bytes of every message.",
    }

    def __init__(self) -> None:
        self.prompt: str | None = None
        self.system: str | None = None
        self.model: str | None = None
        self.max_tokens: int | None = None
        self.input_tokens: int | None = None


def parse_request_body(body: Any) -> RequestInfo:
    """Reads the prompt, system prompt, model, ``max_tokens`` and an input
    token estimate (:func:`ringfence.estimate_tokens` of the text's UTF-8
    bytes) from an OpenAI- or
    Anthropic-shaped JSON request (already decoded). Unknown shapes give
    what could be found."""
    info = RequestInfo()
    if not isinstance(body, dict):
        return info
    model = body.get("model")
    if isinstance(model, str):
        info.model = model
    for key in ("max_tokens", "max_completion_tokens", "max_output_tokens"):
        v = body.get(key)
        if isinstance(v, int) and not isinstance(v, bool):
            info.max_tokens = min(max(v, 0), _U32_MAX)
            break
    system: list[str] = []
    texts: list[str] = []
    prompt: str | None = None
    # Anthropic's top-level system; the Responses API's instructions.
    for key in ("system", "instructions"):
        s = _text(body.get(key))
        if s:
            system.append(s)
    messages = body.get("messages")
    if not isinstance(messages, list):
        inp = body.get("input")
        if isinstance(inp, str):
            prompt = inp
        elif isinstance(inp, list):
            messages = inp
    if isinstance(messages, list):
        for m in messages:
            if not isinstance(m, dict):
                continue
            text = _text(m.get("content"))
            role = m.get("role")
            if role in ("system", "developer"):
                system.append(text)
            else:
                texts.append(text)
                if role == "user" or role is None:
                    prompt = text
    p = body.get("prompt")  # legacy completions
    if prompt is None and isinstance(p, str):
        prompt = p
    elif prompt is None and isinstance(p, list) and p and all(isinstance(x, str) for x in p):
        prompt = "\n".join(p)
    info.prompt = prompt
    info.system = "\n".join(system) if system else None
    total = sum(len(t.encode("utf-8", "replace")) for t in [*texts, *system])
    if prompt is not None and not texts:
        total += len(prompt.encode("utf-8", "replace"))
    info.input_tokens = estimate_tokens(total)
    return info


def _clean(s: str | None, limit: int | None = None) -> str | None:
    """A string the guard accepts: lone surrogates replaced, at most `limit` bytes."""
    if s is None:
        return None
    b = s.encode("utf-8", "replace")
    if limit is not None and len(b) > limit:
        b = b[:limit]
    return b.decode("utf-8", "ignore")


def _header(scope: Scope, name: bytes) -> str | None:
    for k, v in scope.get("headers", ()):
        if k == name:
            return v.decode("latin-1")
    return None


def _env_list(name: str) -> list[str]:
    return [p.strip() for p in os.environ.get(name, "").split(",") if p.strip()]


class _Usage:
    """Finds the output tokens in a response: its JSON body, or the last
    server-sent event that carries ``usage``."""

    def __init__(self, content_type: str, limit: int) -> None:
        self.sse = "text/event-stream" in content_type
        self.json = "json" in content_type
        self.limit = limit
        self.buf = bytearray()
        self.too_big = False
        self.output: int | None = None

    @staticmethod
    def _output_of(obj: Any) -> int | None:
        if not isinstance(obj, dict):
            return None
        usage = obj.get("usage")
        if not isinstance(usage, dict):
            inner = obj.get("message") or obj.get("response")
            usage = inner.get("usage") if isinstance(inner, dict) else None
        if not isinstance(usage, dict):
            return None
        for key in ("completion_tokens", "output_tokens"):
            v = usage.get(key)
            if isinstance(v, int) and not isinstance(v, bool):
                return min(max(v, 0), _U32_MAX)
        return None

    def _event_line(self, line: bytes) -> None:
        if not line.startswith(b"data:") or b'"usage"' not in line:
            return
        try:
            out = self._output_of(json.loads(line[5:]))
        except ValueError:
            return
        if out is not None:
            self.output = out

    def feed(self, chunk: bytes) -> None:
        if self.sse:
            self.buf += chunk
            *lines, rest = bytes(self.buf).split(b"\n")
            self.buf = bytearray(rest)
            for line in lines:
                self._event_line(line.rstrip(b"\r"))
            if len(self.buf) > self.limit:  # an endless line: give up on it
                self.buf.clear()
        elif self.json and not self.too_big:
            self.buf += chunk
            if len(self.buf) > self.limit:
                self.too_big = True
                self.buf.clear()

    def finish(self) -> int | None:
        if self.sse:
            self._event_line(bytes(self.buf).rstrip(b"\r"))
        elif self.json and not self.too_big and self.buf:
            try:
                self.output = self._output_of(json.loads(bytes(self.buf)))
            except ValueError:
                pass
        return self.output


class GuardMiddleware:
    """ASGI middleware: checks each LLM API request with a :class:`ringfence.Guard`,
    answers 429 when it is refused, and settles the response's token usage.

    ``app``
        the ASGI application to guard.
    ``guard``
        the Guard to use; default: one built from the TOML file named by
        ``RINGFENCE_CONFIG``, or the default configuration.
    ``account_header``
        a header naming the account (default ``RINGFENCE_ACCOUNT_HEADER``);
        without it, or when a request lacks it, the API key is the account.
    ``fingerprint_headers``
        kind to header name, e.g. ``{"ja4": "x-ja4"}`` (default
        ``RINGFENCE_FINGERPRINT_HEADERS``).
    ``trust_forwarded``
        take the client address from ``X-Forwarded-For`` (default
        ``RINGFENCE_TRUST_FORWARDED``).
    ``paths``
        path suffixes to guard (``"*"`` guards every ``POST``; default
        ``RINGFENCE_PATHS`` or :data:`DEFAULT_PATHS`).
    ``max_body_bytes``
        the most request (and JSON response) body read for prompts and usage
        (default 8 MiB); a longer body is passed on unread.
    ``default_max_tokens``
        the output tokens reserved when a request names no ``max_tokens``
        (default 1024).
    ``rate_limit_headers``
        add ``RateLimit`` and ``RateLimit-Policy`` to allowed responses (default True).
    ``on_verdict``
        called with ``(scope, verdict)`` after each check (for logging).
    """

    def __init__(
        self,
        app: ASGIApp,
        guard: Guard | None = None,
        *,
        account_header: str | None = None,
        fingerprint_headers: Mapping[str, str] | None = None,
        trust_forwarded: bool | None = None,
        paths: Iterable[str] | None = None,
        max_body_bytes: int = 8 << 20,
        default_max_tokens: int = 1024,
        rate_limit_headers: bool = True,
        on_verdict: Callable[[Scope, Verdict], None] | None = None,
    ) -> None:
        self.app = app
        if guard is None:
            path = os.environ.get("RINGFENCE_CONFIG")
            guard = Guard.from_file(path) if path else Guard()
        self.guard = guard
        if account_header is None:
            account_header = os.environ.get("RINGFENCE_ACCOUNT_HEADER") or None
        self.account_header = account_header.lower().encode("latin-1") if account_header else None
        if fingerprint_headers is None:
            fingerprint_headers = {}
            for pair in _env_list("RINGFENCE_FINGERPRINT_HEADERS"):
                kind, sep, header = pair.partition("=")
                if not sep or not kind.strip() or not header.strip():
                    raise ValueError(
                        f"RINGFENCE_FINGERPRINT_HEADERS: {pair!r} is not kind=header"
                    )
                fingerprint_headers[kind.strip()] = header.strip()
        self.fingerprint_headers = [
            (kind, header.lower().encode("latin-1")) for kind, header in fingerprint_headers.items()
        ]
        if trust_forwarded is None:
            trust_forwarded = os.environ.get("RINGFENCE_TRUST_FORWARDED", "") in ("1", "true", "yes")
        self.trust_forwarded = trust_forwarded
        if paths is None:
            paths = _env_list("RINGFENCE_PATHS") or DEFAULT_PATHS
        self.paths = tuple(paths)
        self.max_body_bytes = max_body_bytes
        self.default_max_tokens = default_max_tokens
        self.rate_limit_headers = rate_limit_headers
        self.on_verdict = on_verdict

    def _guarded(self, scope: Scope) -> bool:
        if scope["type"] != "http" or scope.get("method") != "POST":
            return False
        path = scope.get("path", "")
        return "*" in self.paths or any(path.endswith(p) for p in self.paths)

    def account(self, scope: Scope) -> str | None:
        """The request's account: the account header, else a hash of the API key."""
        if self.account_header is not None:
            a = _header(scope, self.account_header)
            if a:
                if len(a.encode("utf-8")) > MAX_ACCOUNT_BYTES:
                    return "hdr-" + hashlib.sha256(a.encode("utf-8")).hexdigest()[:32]
                return a
        key = None
        auth = _header(scope, b"authorization")
        if auth and auth[:7].lower() == "bearer ":
            key = auth[7:].strip()
        if not key:
            key = _header(scope, b"x-api-key")
        if not key:
            return None
        return "key-" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]

    def fingerprints(self, scope: Scope) -> dict[str, str]:
        """The request's fingerprints: ``ip``, ``user_agent`` and the configured headers."""
        fps: dict[str, str] = {}
        ip = None
        if self.trust_forwarded:
            fwd = _header(scope, b"x-forwarded-for")
            if fwd:
                ip = fwd.split(",")[0].strip()
        if not ip and scope.get("client"):
            ip = scope["client"][0]
        if ip:
            fps["ip"] = ip
        ua = _header(scope, b"user-agent")
        if ua:
            fps["user_agent"] = ua
        for kind, header in self.fingerprint_headers:
            v = _header(scope, header)
            if v:
                fps[kind] = v
        return {k: v[:MAX_FINGERPRINT_BYTES] for k, v in fps.items()}

    async def _read_body(self, receive: Receive) -> tuple[list[Message], bytes | None]:
        """The request's messages as received, and its whole body (None when
        it is longer than ``max_body_bytes`` or the client went away)."""
        messages: list[Message] = []
        chunks: list[bytes] = []
        size = 0
        while True:
            msg = await receive()
            messages.append(msg)
            if msg["type"] != "http.request":
                return messages, None
            body = msg.get("body", b"")
            chunks.append(body)
            size += len(body)
            if not msg.get("more_body", False):
                return messages, b"".join(chunks)
            if size > self.max_body_bytes:
                return messages, None

    def _check(self, account: str, fps: dict[str, str], info: RequestInfo) -> Verdict:
        max_tokens = info.max_tokens if info.max_tokens is not None else self.default_max_tokens
        args = (account, fps, info.prompt, info.system, info.model, info.input_tokens, max_tokens)
        try:
            return self.guard.check(*args)
        except InputError:
            # Text the guard refuses (lone surrogates from JSON escapes, an
            # over-long model name): cleaned, not fatal.
            return self.guard.check(
                _clean(account, MAX_ACCOUNT_BYTES) or "?",
                {k: _clean(v, MAX_FINGERPRINT_BYTES) for k, v in fps.items()},
                _clean(info.prompt),
                _clean(info.system),
                _clean(info.model, MAX_MODEL_BYTES),
                info.input_tokens,
                max_tokens,
            )

    async def _refuse(self, scope: Scope, send: Send, verdict: Verdict) -> None:
        reasons = ", ".join(verdict.reasons) or "rate_limited"
        headers = verdict.headers()
        retry = headers.get("Retry-After")
        message = f"Request refused by ringfence ({reasons})" + (
            f"; retry after {retry} s" if retry else ""
        )
        if scope.get("path", "").endswith("/messages"):
            payload: dict[str, Any] = {
                "type": "error",
                "error": {"type": "rate_limit_error", "message": message},
            }
        else:
            payload = {
                "error": {
                    "message": message,
                    "type": "rate_limit_exceeded",
                    "param": None,
                    "code": "rate_limit_exceeded",
                }
            }
        body = json.dumps(payload).encode("utf-8")
        raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
        raw += [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 429, "headers": raw})
        await send({"type": "http.response.body", "body": body, "more_body": False})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self._guarded(scope):
            await self.app(scope, receive, send)
            return
        account = self.account(scope)
        if account is None:
            await self.app(scope, receive, send)
            return
        messages, body = await self._read_body(receive)
        info = RequestInfo()
        if body:
            try:
                info = parse_request_body(json.loads(body))
            except (ValueError, RecursionError):
                pass
        verdict = self._check(account, self.fingerprints(scope), info)
        if self.on_verdict is not None:
            self.on_verdict(scope, verdict)
        if not verdict.allowed:
            await self._refuse(scope, send, verdict)
            return

        # Replay the body: one message when it was read whole, else the
        # messages as received and then the rest from the client.
        if body is not None:
            pending: list[Message] = [{"type": "http.request", "body": body, "more_body": False}]
        else:
            pending = list(messages)

        async def replay() -> Message:
            if pending:
                return pending.pop(0)
            return await receive()

        extra = []
        if self.rate_limit_headers:
            extra = [
                (k.lower().encode("latin-1"), v.encode("latin-1"))
                for k, v in verdict.headers().items()
                if k != "Retry-After"
            ]
        state: dict[str, Any] = {"usage": None, "status": None, "settled": False}

        def settle(output: int) -> None:
            if not state["settled"]:
                state["settled"] = True
                self.guard.settle(verdict, output)

        async def wrapped_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                state["status"] = message.get("status", 200)
                headers = list(message.get("headers", []))
                ctype = ""
                for k, v in headers:
                    if k.lower() == b"content-type":
                        ctype = v.decode("latin-1").lower()
                state["usage"] = _Usage(ctype, self.max_body_bytes)
                if extra:
                    message = {**message, "headers": headers + extra}
            elif message["type"] == "http.response.body" and state["usage"] is not None:
                usage: _Usage = state["usage"]
                usage.feed(message.get("body", b""))
                if not message.get("more_body", False):
                    if state["status"] >= 400:
                        settle(0)
                    else:
                        out = usage.finish()
                        if out is not None:
                            settle(out)
            await send(message)

        try:
            await self.app(scope, replay, wrapped_send)
        finally:
            if state["status"] is None:
                # The app answered nothing: nothing was served.
                settle(0)
