"""The ASGI middleware's body parser as a fuzz target: raw request bytes
through ``GuardMiddleware`` (read, JSON, ``parse_request_body``, the
guard's check, the refusal or the replayed body) over a bare ASGI app.
``one_input`` must never raise, and every request must be answered.

Used by ``tests/test_fuzz_asgi.py`` (a seeded, structure-aware run that
pytest finishes in seconds) and by ``fuzz/asgi_body.py`` (Atheris,
coverage-guided, run by ``fuzz/run.sh``)."""

from __future__ import annotations

import asyncio
import json
import random
from typing import Any

import ringfence
from ringfence.asgi import GuardMiddleware

_KEYS = ["model", "messages", "input", "prompt", "system", "instructions", "max_tokens",
         "max_completion_tokens", "max_output_tokens", "stream", "role", "content", "text", "type"]


async def _app(scope: dict, receive: Any, send: Any) -> None:
    while True:
        msg = await receive()
        if not msg.get("more_body"):
            break
    body = json.dumps({"usage": {"prompt_tokens": 3, "completion_tokens": 5}}).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body, "more_body": False})


class Target:
    """One middleware over one small guard, and one event loop."""

    def __init__(self) -> None:
        guard = ringfence.Guard({"account_requests_per_minute": 1_000_000}, accounts=2_000)
        self.mw = GuardMiddleware(_app, guard, account_header="x-account",
                                  fingerprint_headers={"device": "x-device"}, max_body_bytes=4096)
        self.loop = asyncio.new_event_loop()
        self.n = 0

    def close(self) -> None:
        self.loop.close()

    def one_input(self, data: bytes) -> None:
        self.n += 1
        cut = [0, len(data) // 3, len(data)]
        chunks = [data[cut[i]:cut[i + 1]] for i in range(2)]
        sent: list[dict] = []
        path = "/v1/messages" if data[:1] == b"m" else "/v1/chat/completions"
        scope = {"type": "http", "method": "POST", "path": path,
                 "headers": [(b"x-account", b"acct-%d" % (self.n % 50)),
                             (b"x-device", data[:8].hex().encode()),
                             (b"content-type", b"application/json")],
                 "client": ("198.51.100.7", 5000)}

        async def receive() -> dict:
            if chunks:
                body = chunks.pop(0)
                return {"type": "http.request", "body": body, "more_body": bool(chunks)}
            return {"type": "http.disconnect"}

        async def send(msg: dict) -> None:
            sent.append(msg)

        self.loop.run_until_complete(self.mw(scope, receive, send))
        starts = [m for m in sent if m["type"] == "http.response.start"]
        assert len(starts) == 1 and starts[0]["status"] in (200, 429), sent


def _value(rng: random.Random, depth: int) -> Any:
    kind = rng.randrange(10 if depth < 4 else 6)
    if kind == 0:
        return rng.choice(["", "user", "system", "developer", "assistant", "\ud800", "é" * rng.randrange(50),
                           "Think step by step. " * rng.randrange(5), "\x00\x1f", "m" * rng.randrange(5000)])
    if kind == 1:
        return rng.choice([0, -1, 1, 2**31, 2**32, 2**64, -2**63, 10**30, True, False])
    if kind == 2:
        return rng.choice([None, 0.5, -0.0, 1e308, float("inf"), float("nan")])
    if kind == 3:
        return rng.choice(["text", "image_url", "input_text"])
    if kind in (4, 5):
        return rng.choice(_KEYS)
    if kind in (6, 7):
        return [_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {rng.choice(_KEYS): _value(rng, depth + 1) for _ in range(rng.randrange(5))}


def body(rng: random.Random) -> bytes:
    """A request body: JSON shaped like an API request, sometimes mutated."""
    doc = {rng.choice(_KEYS): _value(rng, 0) for _ in range(rng.randrange(6))}
    if rng.random() < 0.5:
        doc["messages"] = [{"role": rng.choice(["user", "system", "developer", None, 7]),
                            "content": _value(rng, 2)} for _ in range(rng.randrange(4))]
    raw = bytearray(json.dumps(doc, allow_nan=True).encode("utf-8", "surrogatepass"))
    for _ in range(rng.choice([0, 0, 0, 1, 3])):
        op = rng.randrange(3)
        if op == 0 and raw:
            raw[rng.randrange(len(raw))] = rng.randrange(256)
        elif op == 1:
            del raw[rng.randrange(len(raw) + 1):]
        else:
            raw[rng.randrange(len(raw) + 1):0] = rng.choice([b"[" * 2000, b"\xff\xfe", b'{"a":', b"\\u"])
    return bytes(raw)
