"""The middleware in a real server: uvicorn on loopback running a FastAPI app
behind GuardMiddleware, driven over HTTP by httpx."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import uvicorn
from conftest import DENY_CLUSTERS, small_guard
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

import ringfence
from ringfence.asgi import GuardMiddleware, parse_request_body

OUTPUT_TOKENS = 300


def make_app(guard: ringfence.Guard, seen: list[bytes], verdicts: list[ringfence.Verdict]) -> FastAPI:
    app = FastAPI()

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        body = await request.body()
        seen.append(body)
        data = json.loads(body)
        if data.get("fail"):
            return JSONResponse({"error": {"message": "boom"}}, status_code=500)
        usage = {"prompt_tokens": 20, "completion_tokens": OUTPUT_TOKENS, "total_tokens": 320}
        if data.get("stream"):
            async def events() -> Iterator[str]:
                for word in ("Hel", "lo"):
                    chunk = {"choices": [{"delta": {"content": word}}]}
                    yield f"data: {json.dumps(chunk)}\n\n"
                    await asyncio.sleep(0)
                yield f"data: {json.dumps({'choices': [], 'usage': usage})}\n\n"
                yield "data: [DONE]\n\n"

            return StreamingResponse(events(), media_type="text/event-stream")
        return {"choices": [{"message": {"role": "assistant", "content": "Hello"}}], "usage": usage}

    @app.post("/v1/messages")
    async def messages(request: Request):
        seen.append(await request.body())
        return {"content": [{"type": "text", "text": "Hi"}], "usage": {"input_tokens": 9, "output_tokens": 40}}

    @app.get("/v1/models")
    async def models():
        return {"data": []}

    app.add_middleware(
        GuardMiddleware,
        guard=guard,
        account_header="x-account",
        fingerprint_headers={"payment": "x-payment", "device": "x-device"},
        on_verdict=lambda scope, v: verdicts.append(v),
    )
    return app


class Server:
    """uvicorn serving an app on 127.0.0.1 on a free port, in a thread."""

    def __init__(self, app: FastAPI) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        config = uvicorn.Config(app, log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)
        self.sock.close()


@pytest.fixture
def served():
    guard = small_guard({**DENY_CLUSTERS, "account_tokens_per_minute": 10_000})
    seen: list[bytes] = []
    verdicts: list[ringfence.Verdict] = []
    with Server(make_app(guard, seen, verdicts)) as url, httpx.Client(base_url=url, timeout=10) as client:
        yield client, guard, seen, verdicts


def chat_body(prompt: str, system: str | None = "You are terse.", **extra) -> bytes:
    messages = [{"role": "system", "content": system}] if system else []
    body = {
        "model": "big-model",
        "messages": [*messages, {"role": "user", "content": prompt}],
        "max_tokens": 1000,
        **extra,
    }
    # Unusual spacing and key order: the app must see these exact bytes.
    return json.dumps(body, indent=1, ensure_ascii=False).encode("utf-8")


def test_a_linked_cluster_gets_429_and_others_pass(served):
    client, guard, seen, _ = served
    statuses = []
    for i in range(5):
        r = client.post(
            "/v1/chat/completions",
            content=chat_body(f"question {i} ✓"),
            headers={"x-account": f"fleet-{i}", "x-payment": "card-shared", "content-type": "application/json"},
        )
        statuses.append(r.status_code)
        if r.status_code == 429:
            assert r.headers["retry-after"] == "3600"
            assert r.headers["ratelimit-policy"].startswith('"suspected_distillation";q=0')
            assert r.headers["ratelimit"].startswith('"suspected_distillation";r=0')
            err = r.json()["error"]
            assert err["code"] == "rate_limit_exceeded"
            assert "suspected_distillation" in err["message"]
        else:
            assert r.headers["ratelimit-policy"] == '"account";q=20;w=60'
            assert "retry-after" not in r.headers
    assert statuses == [200, 200, 429, 429, 429]
    # Unrelated accounts pass, from the same client address (a shared
    # address alone does not link; with the fleet's system prompt it would).
    for i in range(5):
        r = client.post(
            "/v1/chat/completions",
            content=chat_body("hello", system=None),
            headers={"x-account": f"solo-{i}", "x-payment": f"card-{i}"},
        )
        assert r.status_code == 200, r.text
    # The app saw every allowed body byte for byte.
    assert seen[:2] == [chat_body("question 0 ✓"), chat_body("question 1 ✓")]
    assert len(seen) == 7


def test_usage_is_settled_from_json_and_streams(served):
    client, guard, seen, verdicts = served
    # 10,000 tokens a minute; each request reserves 1,000 + its input, and
    # settling gives back all but the 300 output (and input) tokens.
    for i in range(30):
        stream = i % 2 == 1
        body = chat_body("say hello", stream=stream, stream_options={"include_usage": True})
        r = client.post("/v1/chat/completions", content=body, headers={"x-account": "heavy-user"})
        if i < 20:
            assert r.status_code == 200, (i, r.text)
        if stream and i < 20:
            assert "data: [DONE]" in r.text
    # Without settling, 10 requests (10 x ~1,006 tokens) would use the budget.
    assert verdicts[9].allowed and verdicts[10].allowed
    assert verdicts[-1].reasons == ("account_limit",)  # 20 requests a minute


def test_an_unsettled_reservation_stands_and_errors_refund(served):
    client, guard, seen, verdicts = served
    for _ in range(9):
        r = client.post("/v1/chat/completions", content=chat_body("x", fail=True), headers={"x-account": "unlucky"})
        assert r.status_code == 500
    # Failed responses settled with no output: the budget is intact.
    r = client.post("/v1/chat/completions", content=chat_body("x"), headers={"x-account": "unlucky"})
    assert r.status_code == 200


def test_api_keys_anthropic_shape_and_unguarded_routes(served):
    client, guard, seen, verdicts = served
    body = {
        "model": "claude-x",
        "system": [{"type": "text", "text": "Be brief."}],
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi there"}]}],
        "max_tokens": 64,
    }
    r = client.post("/v1/messages", json=body, headers={"x-api-key": "sk-secret-1"})
    assert r.status_code == 200
    assert r.headers["ratelimit"].startswith('"account";r=19')
    # The account is a hash of the key, never the key.
    assert guard.explain("sk-secret-1") is None
    assert verdicts[-1].input_tokens == -(-len("Hi thereBe brief.") // 4)
    # No account: passed through unguarded; GET routes are never guarded.
    n = len(verdicts)
    assert client.post("/v1/chat/completions", content=chat_body("x")).status_code == 200
    assert client.get("/v1/models", headers={"x-account": "a"}).status_code == 200
    assert len(verdicts) == n
    # A body that is not JSON still reaches the app; lone surrogates are cleaned.
    r = client.post("/v1/messages", content=b'{"messages": [{"role": "user", "content": "\\ud800"}]}',
                    headers={"authorization": "Bearer sk-2"})
    assert r.status_code == 200
    assert client.post("/v1/messages", content=b"not json", headers={"authorization": "Bearer sk-2"}).status_code == 200
    assert seen[-1] == b"not json"


def test_the_anthropic_429_shape():
    guard = small_guard(DENY_CLUSTERS)
    app = make_app(guard, [], [])
    with Server(app) as url, httpx.Client(base_url=url, timeout=10) as client:
        codes = [
            client.post("/v1/messages", json={"messages": []}, headers={"x-account": f"a{i}", "x-device": "dev-1"})
            for i in range(3)
        ]
        assert [c.status_code for c in codes] == [200, 200, 429]
        assert codes[-1].json()["error"]["type"] == "rate_limit_error"


def test_vllm_style_construction_from_the_environment(tmp_path, monkeypatch):
    config = tmp_path / "ringfence.toml"
    config.write_text("account_requests_per_minute = 1\n[link]\nmax_accounts = 100\nmax_values = 250\n"
                      "max_templates = 50\nmax_pairs = 100\n")
    monkeypatch.setenv("RINGFENCE_CONFIG", str(config))
    monkeypatch.setenv("RINGFENCE_ACCOUNT_HEADER", "X-User")
    monkeypatch.setenv("RINGFENCE_FINGERPRINT_HEADERS", "ja4=x-ja4, device=x-device")
    app = FastAPI()

    @app.post("/v1/completions")
    async def complete(request: Request):
        return {"choices": [{"text": "ok"}], "usage": {"completion_tokens": 1}}

    app.add_middleware(GuardMiddleware)  # as vLLM's --middleware does: no arguments
    with Server(app) as url, httpx.Client(base_url=url, timeout=10) as client:
        first = client.post("/v1/completions", json={"prompt": "a"}, headers={"x-user": "u1"})
        second = client.post("/v1/completions", json={"prompt": "a"}, headers={"x-user": "u1"})
        assert (first.status_code, second.status_code) == (200, 429)
        assert second.headers["retry-after"] == "60"
    mw = GuardMiddleware(app)
    assert mw.account_header == b"x-user"
    assert mw.fingerprint_headers == [("ja4", b"x-ja4"), ("device", b"x-device")]
    monkeypatch.setenv("RINGFENCE_FINGERPRINT_HEADERS", "nonsense")
    with pytest.raises(ValueError, match="kind=header"):
        GuardMiddleware(app)


def test_parse_request_body_shapes():
    chat = parse_request_body({
        "model": "m",
        "messages": [
            {"role": "developer", "content": "rules"},
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "answer"},
            {"role": "user", "content": [{"type": "text", "text": "second"}, {"type": "image_url"}]},
        ],
        "max_completion_tokens": 77,
    })
    assert (chat.prompt, chat.system, chat.model, chat.max_tokens) == ("second", "rules", "m", 77)
    assert chat.input_tokens == -(-len("firstanswersecondrules") // 4)
    responses = parse_request_body({"input": "hello", "instructions": "be nice", "max_output_tokens": 5})
    assert (responses.prompt, responses.system, responses.max_tokens) == ("hello", "be nice", 5)
    legacy = parse_request_body({"prompt": ["a", "b"], "max_tokens": -4})
    assert (legacy.prompt, legacy.max_tokens) == ("a\nb", 0)
    assert parse_request_body([1, 2]).prompt is None
