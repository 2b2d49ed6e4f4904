#!/usr/bin/env python3
"""End-to-end test of the example gateway (bindings/cpp/examples/gateway.cpp).

Starts a stub OpenAI-style upstream and the gateway on loopback, on free
ports, then sends real HTTP requests: six accounts sharing a card and a TLS
fingerprint (headers) with chain-of-thought prompts, and six unrelated
accounts, in turns. The cluster must be refused with 429 and the
Retry-After, RateLimit and RateLimit-Policy headers, before its requests
reach the upstream, while every unrelated request passes. Token settling is
checked too: the token quota would refuse the unrelated accounts by their
third request if the gateway did not settle the answers' `usage`. Last, the
gateway is restarted from the snapshot it saved when stopped, and still
refuses the cluster.

Streamed completions ("stream": true) are tested on a second gateway whose
token quota binds (so that its RateLimit header counts tokens, and the
tokens a stream was settled with can be read off a later request's
header): the first event reaches the client while the upstream is still
blocked; the gateway asks the upstream for the usage event, hides it from a
client that did not ask for it, and settles its tokens; a stream without
usage, one the client leaves, one the upstream breaks off and one cut by
SIGTERM are settled once, at the documented estimate, and say so on stderr;
malformed and oversized events are relayed unchanged.

Each gateway's own GET /metrics (never forwarded) is scraped after its
traffic and parsed by prometheus_client: requests by verdict, refusals by
reason, settlements and their tokens must be those the test's traffic makes.

Usage: gateway_test.py PATH/TO/gateway
Prints "gateway_test: N passed, N failed"; exits non-zero on a failure.
Standard library, and prometheus_client (Debian's python3-prometheus-client).
"""

import http.client
import http.server
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter

from prometheus_client.parser import text_string_to_metric_families

passed = failed = 0


def check(cond, what):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print(f"FAILED: {what}", file=sys.stderr)


# The guard's configuration: small tables, a tight policy (a cluster of 3 or
# more scoring 0.2 shares 5 requests a minute), and a token quota that only
# settling keeps the unrelated accounts under: each request reserves about
# 10 input + 1,000 max_tokens of 2,500 a minute, and uses 20.
CONFIG = """
account_requests_per_minute = 30
account_tokens_per_minute = 2500
cluster_requests_per_minute = 5
share_at = 0.2
deny_at = 1.0
limiter_capacity = 4096
[link]
max_accounts = 1024
max_values = 4096
max_templates = 1024
max_pairs = 1024
[score]
max_clusters = 256
"""


# The streaming gateway's guard: a token quota that binds (its RateLimit
# header then counts tokens), no cluster policy.
STREAM_CONFIG = """
account_requests_per_minute = 100000
account_tokens_per_minute = 6000
cluster_requests_per_minute = 100000
share_at = 1.0
deny_at = 1.0
limiter_capacity = 4096
[link]
max_accounts = 1024
max_values = 4096
max_templates = 1024
max_pairs = 1024
[score]
max_clusters = 256
"""
TOKENS_PER_SECOND = 6000 / 60
STREAM_MAX_TOKENS = 2000
STREAM_USAGE = 300  # the completion_tokens of the stub's usage event


def sse(obj):
    """One SSE event whose data is `obj` as JSON (or the string as it is)."""
    data = obj if isinstance(obj, str) else json.dumps(obj)
    return f"data: {data}\n\n".encode()


def completion_chunk(delta, include_usage):
    chunk = {"id": "chatcmpl-stub", "object": "chat.completion.chunk", "model": "model-large",
             "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
    if include_usage:
        chunk["usage"] = None  # as OpenAI does when asked for the usage event
    return chunk


USAGE_CHUNK = {"id": "chatcmpl-stub", "object": "chat.completion.chunk", "model": "model-large",
               "choices": [], "usage": {"prompt_tokens": 10, "completion_tokens": STREAM_USAGE,
                                        "total_tokens": 10 + STREAM_USAGE}}


class Stub:
    """What the test and the streaming stub share, per API key."""

    lock = threading.Lock()
    release = {}    # key -> Event the stub waits on mid-stream
    finished = {}   # key -> Event set when the stub has sent its whole stream
    requests = {}   # key -> the JSON body the stub got
    sent = {}       # key -> the bytes the stub sent (the body, before chunking)
    cancelled = {}  # key -> how many chunks the stub sent before its write failed

    @staticmethod
    def expect(key):
        with Stub.lock:
            Stub.release[key] = threading.Event()
            Stub.finished[key] = threading.Event()
        return Stub.release[key], Stub.finished[key]


class Upstream(http.server.BaseHTTPRequestHandler):
    """Answers chat completions with a fixed usage; counts requests per key.
    Streams when asked to, as the X-Stub-Stream header says."""

    seen = {}
    gets = []  # the paths of the GETs it got
    lock = threading.Lock()

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        key = self.headers.get("Authorization", "")
        with Upstream.lock:
            Upstream.seen[key] = Upstream.seen.get(key, 0) + 1
        request = json.loads(body)
        if request.get("stream") is True:
            try:
                self.stream(key.removeprefix("Bearer "), request, self.headers.get("X-Stub-Stream", "usage"))
            except (BrokenPipeError, ConnectionResetError):
                pass
            return
        answer = json.dumps({
            "id": "chatcmpl-stub",
            "object": "chat.completion",
            "model": request.get("model", ""),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "42"},
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 20, "total_tokens": 30},
        }).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def stream(self, key, request, mode):
        with Stub.lock:
            Stub.requests[key] = request
            Stub.sent[key] = b""
            release, finished = Stub.release.get(key), Stub.finished.get(key)
        include_usage = (request.get("stream_options") or {}).get("include_usage") is True
        if mode == "error":
            answer = json.dumps({"error": {"message": "the model is overloaded", "type": "server_error"}}).encode()
            self.send_response(500)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)
            return
        self.protocol_version = "HTTP/1.1"
        self.close_connection = True
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Connection", "close")
        self.end_headers()

        def send(data):
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()
            with Stub.lock:
                Stub.sent[key] += data

        send(sse(completion_chunk({"role": "assistant", "content": ""}, include_usage)))
        if mode == "malformed":
            # CRLF line ends, a comment, data split mid-line across writes, a
            # data field on two lines, data that is not JSON, an event over
            # the gateway's 1 MiB limit, and an event the gateway need not
            # read at all.
            send(b": keep-alive\r\n\r\n")
            send(b'data: {"choices": [{"index": 0, "delta": {"content": "Hel')
            send(b'lo"}}]}\r\n\r\ndata: {not json\r\n\r\n')
            send(b'data: {"choices": [{"index": 0,\ndata:  "delta": {"content": " world"}}]}\n\n')
            send(b'data: "' + b"x" * (1_200_000) + b'"\n\n')
            send(b"event: ping\nid: 7\nretry: 100\n\n")
            send(sse(USAGE_CHUNK) + sse("[DONE]"))
            self.wfile.write(b"0\r\n\r\n")
            return
        if mode == "no-usage":  # ten deltas of 200 bytes: an estimate of 500 tokens
            for _ in range(10):
                send(sse(completion_chunk({"content": "abcd" * 50}, include_usage)))
            send(sse("[DONE]"))
            self.wfile.write(b"0\r\n\r\n")
            return
        send(sse(completion_chunk({"content": "Hel"}, include_usage)))
        if release is not None and not release.wait(10):
            print(f"the stub waited 10 s in vain for {mode} {key}", file=sys.stderr)
        if mode in ("leave", "hang"):
            # "leave": streams a delta every 20 ms, for 10 s at most; "hang": a
            # comment every 50 ms, for 30 s at most; both until the gateway
            # drops the connection (which it should do long before).
            for i in range(1, 500 if mode == "leave" else 600):
                try:
                    send(sse(completion_chunk({"content": "lo"}, include_usage)) if mode == "leave"
                         else b": still thinking\n\n")
                except (BrokenPipeError, ConnectionResetError):
                    with Stub.lock:
                        Stub.cancelled[key] = i
                    return
                time.sleep(0.02 if mode == "leave" else 0.05)
            return
        for text in ("lo", " wor", "ld"):
            time.sleep(0.02)
            send(sse(completion_chunk({"content": text}, include_usage)))
        if mode == "broken":  # the connection drops: no usage, no [DONE], no last chunk
            return
        if include_usage:
            send(sse(USAGE_CHUNK))
        send(sse("[DONE]"))
        self.wfile.write(b"0\r\n\r\n")
        if finished is not None:
            finished.set()

    def do_GET(self):
        Upstream.gets.append(self.path)
        answer = json.dumps({"object": "list", "data": [{"id": "model-large"}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)


def post(port, key, body, headers):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    all_headers = {"Content-Type": "application/json", **headers}
    if key is not None:
        all_headers["Authorization"] = f"Bearer {key}"
    conn.request("POST", "/v1/chat/completions", body=body, headers=all_headers)
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, data


def chat_body(prompt, max_tokens=1000):
    return {"model": "model-large", "max_tokens": max_tokens,
            "messages": [{"role": "system", "content": "You are helpful."}, {"role": "user", "content": prompt}]}


def chat(port, key, prompt, headers, max_tokens=1000):
    return post(port, key, json.dumps(chat_body(prompt, max_tokens)), headers)


def scrape(port):
    """GET /metrics parsed by prometheus_client: {(name, sorted labels): value}."""
    want = "text/plain; version=0.0.4; charset=utf-8"
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/metrics")
    response = conn.getresponse()
    text, content_type = response.read().decode(), response.getheader("Content-Type")
    conn.close()
    check(response.status == 200 and content_type == want, f"/metrics: 200, {want} ({content_type})")
    check("/metrics" not in Upstream.gets, "/metrics is not forwarded upstream")
    try:
        families = list(text_string_to_metric_families(text))
    except ValueError as e:
        families = []
        check(False, f"/metrics: prometheus_client parses it ({e}): {text[:200]!r}")
    types = {f.name: f.type for f in families}  # a counter's family drops its _total
    check(types.get("ringfence_requests") == "counter" and types.get("ringfence_table_entries") == "gauge",
          f"/metrics: the families and their types ({types})")
    return {(m.name, tuple(sorted(m.labels.items()))): m.value for f in families for m in f.samples}


def metric(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))))


def check_counts(samples, where, *want):
    """ringfence_requests_total by verdict (allow, throttle, deny), then ringfence_settlements_total."""
    got = tuple(metric(samples, "ringfence_requests_total", verdict=v) for v in ("allow", "throttle", "deny"))
    got += (metric(samples, "ringfence_settlements_total"),)
    check(got == want, f"{where}: requests by verdict and settlements {got} == {want}")


def CAMPAIGN_HEADERS(i):
    """Six accounts, each its own address, sharing a card and a TLS fingerprint."""
    return {
        "X-Forwarded-For": f"198.51.100.{10 + i}",
        "User-Agent": "python-requests/2.31",
        "X-JA4-Fingerprint": "t13d1516h2_8daaf6152771_e5627efa2ab1",
        "X-Payment-Fingerprint": "card-4242-shared",
    }


def USER_HEADERS(i):
    """Six unrelated accounts."""
    return {
        "X-Forwarded-For": f"203.0.113.{10 + i}",
        "User-Agent": f"my-app/{i}.0",
        "X-JA4-Fingerprint": f"t13d_user_{i}",
        "X-Payment-Fingerprint": f"card-user-{i}",
    }


class Gateway:
    """Runs the gateway until the block ends, then stops it with SIGTERM."""

    def __init__(self, args, stderr=None):
        self.args = args
        self.stderr = stderr

    def __enter__(self):
        self.process = subprocess.Popen(self.args, stdout=subprocess.PIPE, stderr=self.stderr, text=True)
        line = self.process.stdout.readline()
        started = line.startswith("listening on http://127.0.0.1:")
        check(started, f"gateway started: {line!r}")
        if not started:
            self.process.kill()
            self.process.wait()
            raise RuntimeError("the gateway did not start")
        return int(line.split("http://127.0.0.1:")[1].split()[0])

    def __exit__(self, *exc):
        self.process.terminate()
        try:
            check(self.process.wait(timeout=10) == 0, "gateway stops cleanly on SIGTERM")
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            check(False, "gateway stops on SIGTERM")
        return False


def main():
    gateway_bin = sys.argv[1]
    upstream = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    upstream_port = upstream.server_address[1]

    workdir = tempfile.mkdtemp(prefix="ringfence-gateway-")
    config = os.path.join(workdir, "guard.toml")
    with open(config, "w") as f:
        f.write(CONFIG)
    snapshot = os.path.join(workdir, "guard.snapshot")
    args = [gateway_bin, "--listen", "127.0.0.1:0", "--upstream", f"http://127.0.0.1:{upstream_port}",
            "--config", config, "--client-ip-header", "X-Forwarded-For",
            "--fingerprint-header", "ja4=X-JA4-Fingerprint",
            "--fingerprint-header", "payment=X-Payment-Fingerprint",
            "--snapshot", snapshot]
    try:
        with Gateway(args) as port:
            run(port)
        # Stopped, the gateway saved its snapshot; a new one restores it and
        # still refuses the cluster, and still serves the others.
        check(os.path.getsize(snapshot) > 0, "the snapshot is saved on SIGTERM")
        with Gateway(args) as port:
            status, h, body = chat(port, "sk-campaign-0", "Explain step by step: what is 9 * 9?",
                                   CAMPAIGN_HEADERS(0))
            check(status == 429 and h.get("ratelimit-policy") == '"cluster";q=5;w=60',
                  f"after a restart from the snapshot, the cluster is still refused ({status})")
            decision = json.loads(body)["error"]["decision"] if status == 429 else None
            status, _, _ = chat(port, "sk-user-0", "What is the capital of Peru?", USER_HEADERS(0))
            check(status == 200, f"after a restart, an unrelated account is served ({status})")
            # The counters start at zero with the process, snapshot or not.
            check_counts(scrape(port), "after a restart, /metrics", 1, int(decision == "throttle"),
                         int(decision == "deny"), 1)

        # Streams, on a gateway whose token quota binds.
        stream_config = os.path.join(workdir, "stream.toml")
        with open(stream_config, "w") as f:
            f.write(STREAM_CONFIG)
        stderr_path = os.path.join(workdir, "stream-gateway.stderr")
        stream_args = [gateway_bin, "--listen", "127.0.0.1:0", "--upstream", f"http://127.0.0.1:{upstream_port}",
                       "--config", stream_config, "--client-ip-header", "X-Forwarded-For"]
        with open(stderr_path, "w") as stderr:
            hanging = None
            with Gateway(stream_args, stderr=stderr) as port:
                hanging = run_streams(port, stderr_path)
            check_stopped_stream(stderr_path, *hanging)
    finally:
        upstream.shutdown()
        shutil.rmtree(workdir, ignore_errors=True)

    print(f"gateway_test: {passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


def run(port):
    # Errors first: no key, a body that is not JSON.
    status, _, body = chat(port, None, "hello", {})
    check(status == 401 and b"missing API key" in body, f"no key: 401 ({status} {body!r})")
    status, _, _ = post(port, "sk-x", "{not json", {})
    check(status == 400, f"bad JSON: 400 ({status})")
    # Other requests pass through unchanged.
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/v1/models")
    r = conn.getresponse()
    check(r.status == 200 and b"model-large" in r.read(), "GET /v1/models passes through")
    conn.close()

    campaign_refused = campaign_served = users_served = users_refused = 0
    first_refused = None
    refusal = None
    refused_by, decisions = Counter(), Counter()  # from the 429s: (decision, reason), and decision
    served_input = 0  # the input tokens of the requests served
    for rnd in range(8):
        for i in range(6):
            headers = CAMPAIGN_HEADERS(i)
            prompt = f"Explain step by step, showing your reasoning: what is {rnd} * {i}?"
            status, h, body = chat(port, f"sk-campaign-{i}", prompt, headers)
            if status == 429:
                if campaign_refused == 0:
                    first_refused = campaign_served + 1
                campaign_refused += 1
                refusal = (h, json.loads(body))
                error = refusal[1].get("error", {})
                decisions[error.get("decision")] += 1
                refused_by.update((error.get("decision"), r) for r in error.get("reasons") or ["none"])
            else:
                check(status == 200, f"campaign request: 200 or 429 ({status})")
                campaign_served += 1
                served_input += input_tokens(chat_body(prompt))

            headers = USER_HEADERS(i)
            prompt = f"What is the capital of country {rnd}?"
            status, h, body = chat(port, f"sk-user-{i}", prompt, headers)
            if status == 200:
                users_served += 1
                served_input += input_tokens(chat_body(prompt))
                check(json.loads(body)["choices"][0]["message"]["content"] == "42", "relayed body")
                check(h.get("ratelimit-policy", "").startswith('"account";q=30;w=60'),
                      f"allowed: RateLimit-Policy ({h.get('ratelimit-policy')})")
                check(h.get("ratelimit", "").startswith('"account";r='), "allowed: RateLimit")
                check("retry-after" not in h, "allowed: no Retry-After")
            else:
                users_refused += 1
                check(False, f"unrelated account refused: {status} {body!r}")

    print(f"campaign: {campaign_served} served, {campaign_refused} refused (the first refused was its "
          f"request {first_refused}); unrelated: {users_served} served, {users_refused} refused")
    check(users_served == 48 and users_refused == 0, f"unrelated accounts all served ({users_served}/48)")
    check(campaign_refused >= 20, f"the cluster refused ({campaign_refused} of 48; served {campaign_served})")
    campaign_seen = sum(n for k, n in Upstream.seen.items() if "campaign" in k)
    check(campaign_seen == campaign_served,
          f"refused requests never reach the upstream ({campaign_seen} seen, {campaign_served} served)")
    if refusal:
        h, body = refusal
        check(int(h.get("retry-after", "0")) >= 1, f"refused: Retry-After ({h.get('retry-after')})")
        check(h.get("ratelimit-policy") == '"cluster";q=5;w=60',
              f"refused: RateLimit-Policy ({h.get('ratelimit-policy')})")
        check(h.get("ratelimit", "").startswith('"cluster";r=0;t='),
              f"refused: RateLimit ({h.get('ratelimit')})")
        error = body.get("error", {})
        check(error.get("type") == "rate_limit_exceeded", f"refused: error type ({error})")
        check(error.get("reasons") == ["cluster_limit", "suspected_distillation"],
              f"refused: reasons ({error.get('reasons')})")
        check(error.get("cluster_size") == 6, f"refused: cluster of 6 ({error.get('cluster_size')})")

    # A header that is not UTF-8 is a clear 400, not a crash.
    status, _, body = chat(port, "sk-odd", "hi", {"X-JA4-Fingerprint": "t13d\udcff".encode(
        "utf-8", "surrogateescape").decode("latin-1")})
    check(status == 400 and b"not valid UTF-8" in body, f"non-UTF-8 header: 400 ({status} {body!r})")

    # /metrics counts what the guard saw: the loop's requests (the 401, the
    # 400s and the pass-through never reached it), each served one settled
    # once, reserving its input and max_tokens (1,000), using its input and 20.
    samples = scrape(port)
    served = campaign_served + users_served
    check_counts(samples, "/metrics", served, decisions["throttle"], decisions["deny"], served)
    check(decisions["throttle"] + decisions["deny"] == campaign_refused, f"each 429 names its decision ({decisions})")
    wrong = {k: v for k, v in samples.items() if k[0] == "ringfence_decisions_total" and
             dict(k[1])["decision"] != "allow" and v != refused_by[(dict(k[1])["decision"], dict(k[1])["reason"])]}
    check(bool(samples) and not wrong, f"/metrics: refusals by reason match the 429s ({wrong}; {refused_by})")
    reserved, actual = served_input + 1000 * served, served_input + 20 * served
    got = tuple(metric(samples, f"ringfence_settlement_{n}") for n in ("reserved_tokens_total", "actual_tokens_total",
                                                                       "drift_tokens"))
    check(got == (reserved, actual, reserved - actual),
          f"/metrics: tokens reserved, used, and the drift {got} == {(reserved, actual, reserved - actual)}")


def account_of(key):
    """The gateway's account for an API key (a 64-bit FNV-1a hash)."""
    h = 0xcbf29ce484222325
    for b in key.encode():
        h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return f"key-{h:016x}"


def stream_headers(n):
    return {"X-Forwarded-For": f"192.0.2.{n}", "User-Agent": f"stream-client/{n}", "Accept-Encoding": "gzip",
            "Accept": "text/event-stream"}


def stream_body(prompt, include_usage=None):
    body = {"model": "model-large", "max_tokens": STREAM_MAX_TOKENS, "stream": True,
            "messages": [{"role": "system", "content": "You are helpful."},
                         {"role": "user", "content": prompt}]}
    if include_usage is not None:
        body["stream_options"] = {"include_usage": include_usage}
    return body


def input_tokens(body):
    """ringfence's estimate of a request's input tokens: a quarter of its bytes, rounded up."""
    return (sum(len(m["content"].encode()) for m in body["messages"]) + 3) // 4


def open_stream(port, key, body, headers, mode):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    conn.request("POST", "/v1/chat/completions", body=json.dumps(body),
                 headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}",
                          "X-Stub-Stream": mode, **headers})
    response = conn.getresponse()
    return conn, response


def read_event(response):
    """The next event's data lines, joined by newlines (None at the end)."""
    data = []
    while True:
        line = response.readline()
        if not line:
            return "\n".join(data) if data else None
        line = line.rstrip(b"\r\n")
        if not line:
            if data:
                return "\n".join(data)
            continue
        if line.startswith(b"data:"):
            data.append(line[5:].lstrip(b" ").decode())


def read_events(response):
    events = []
    while (event := read_event(response)) is not None:
        events.append(event)
    return events


def ratelimit_r(headers):
    m = re.match(r'"account";r=(\d+);', headers.get("ratelimit", ""))
    return int(m.group(1)) if m else None


PROBE_PROMPT = "probe"


def probe(port, key, n):
    """The tokens left to `key` after reserving a probe that asks for no output."""
    status, h, _ = chat(port, key, PROBE_PROMPT, stream_headers(n), max_tokens=0)
    check(status == 200, f"probe for {key}: 200 ({status})")
    return ratelimit_r(h)


def settled(port, key, n, body, started, baseline):
    """The range of output tokens the stream of `key` (sent at `started`) was
    settled with, read off a probe's RateLimit header: the probe has
    `baseline` tokens left on a fresh account; the stream took its input
    tokens and its output, less what refilled since it started."""
    left = probe(port, key, n)
    refilled = (time.monotonic() - started) * TOKENS_PER_SECOND
    low = baseline - left - input_tokens(body)
    return low - 1, low + refilled + 1


def stderr_lines(path, key, wait=5.0):
    """The gateway's stderr lines about `key`'s account (waiting a little for one)."""
    account = account_of(key)
    deadline = time.monotonic() + wait
    while True:
        with open(path) as f:
            lines = [line for line in f if account in line]
        if lines or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


def run_streams(port, stderr_path):
    baseline = probe(port, "sk-stream-baseline", 1)
    check(baseline is not None and baseline > 5900, f"the probe's RateLimit counts tokens ({baseline})")

    # 1. A slow stream, the client not asking for usage: the first event
    # arrives while the stub is blocked; the gateway asked for the usage
    # event, hides it from the client, and settles its tokens.
    key = "sk-stream-slow"
    release, finished = Stub.expect(key)
    body = stream_body("Tell me a story.")
    started = time.monotonic()
    conn, response = open_stream(port, key, body, stream_headers(2), "slow")
    h = {k.lower(): v for k, v in response.getheaders()}
    check(response.status == 200, f"stream: 200 ({response.status})")
    check(h.get("content-type") == "text/event-stream", f"stream: text/event-stream ({h.get('content-type')})")
    check(h.get("transfer-encoding") == "chunked" and "content-encoding" not in h,
          f"stream: chunked, not compressed ({h})")
    check(h.get("ratelimit-policy") == '"account";q=6000;w=60', f"stream: RateLimit-Policy ({h})")
    r = ratelimit_r(h)
    check(r is not None and abs(r - (6000 - input_tokens(body) - STREAM_MAX_TOKENS)) <= 1,
          f"stream: RateLimit counts the reservation ({h.get('ratelimit')})")
    check(h.get("cache-control") == "no-cache", "stream: the upstream's headers are relayed")
    first = read_event(response)
    check(not finished.is_set(), "the first event reaches the client before the upstream has finished")
    check(first is not None and json.loads(first)["choices"][0]["delta"].get("role") == "assistant",
          f"stream: the first event ({first!r})")
    second = read_event(response)
    check(not finished.is_set() and second is not None and '"Hel"' in second,
          f"the second event too, while the upstream is blocked ({second!r})")
    release.set()
    events = read_events(response)
    conn.close()
    check(finished.is_set(), "the stub finished once released")
    check(events[-1:] == ["[DONE]"], f"stream: ends with [DONE] ({events[-1:]})")
    chunks = [json.loads(e) for e in [first, second] + events[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    check(text == "Hello world", f"stream: the text ({text!r})")
    check(all(c["choices"] for c in chunks), f"stream: the usage event the client did not ask for is hidden ({chunks[-1]})")
    options = Stub.requests[key].get("stream_options")
    check(options == {"include_usage": True}, f"the gateway asked the upstream for usage ({options})")
    low, high = settled(port, key, 3, body, started, baseline)
    check(low <= STREAM_USAGE <= high, f"the stream is settled with its usage event ({STREAM_USAGE} in [{low}, {high:.0f}])")
    check(stderr_lines(stderr_path, key, wait=0.2) == [], "a stream settled with its usage says nothing")

    # 2. A client that asks for the usage event gets it.
    key = "sk-stream-usage"
    body = stream_body("Tell me another story.", include_usage=True)
    conn, response = open_stream(port, key, body, stream_headers(4), "usage")
    events = read_events(response)
    conn.close()
    check(response.status == 200 and len(events) >= 3 and json.loads(events[-2]) == USAGE_CHUNK,
          f"a client that asked for usage gets the usage event ({events[-2:]})")

    # 3. A stream without usage: settled at the estimate of its text, max(10
    # deltas, 2,000 bytes / 4) = 500, and stderr says so.
    key = "sk-stream-no-usage"
    body = stream_body("Write a long poem.")
    started = time.monotonic()
    conn, response = open_stream(port, key, body, stream_headers(5), "no-usage")
    events = read_events(response)
    conn.close()
    check(len(events) == 12 and events[-1] == "[DONE]", f"no usage: every event relayed ({len(events)})")
    low, high = settled(port, key, 6, body, started, baseline)
    check(low <= 500 <= high, f"no usage: settled at the text's estimate (500 in [{low}, {high:.0f}])")
    lines = stderr_lines(stderr_path, key)
    check(len(lines) == 1 and "no usage event (the upstream sent [DONE] without it); settled 500 tokens, "
          "the estimate from 10 text deltas (2000 bytes)" in lines[0], f"no usage: stderr says so once ({lines})")

    # 4. Malformed and oversized events are relayed as they came; the usage
    # event still counts.
    key = "sk-stream-malformed"
    body = stream_body("Say hello.", include_usage=True)
    started = time.monotonic()
    conn, response = open_stream(port, key, body, stream_headers(7), "malformed")
    raw = response.read()
    conn.close()
    check(response.status == 200 and raw == Stub.sent[key],
          f"malformed: relayed byte for byte ({len(raw)} of {len(Stub.sent[key])} bytes)")
    low, high = settled(port, key, 8, body, started, baseline)
    check(low <= STREAM_USAGE <= high, f"malformed: settled with its usage ({STREAM_USAGE} in [{low}, {high:.0f}])")
    lines = stderr_lines(stderr_path, key)
    check(len(lines) == 1 and "1 events whose data is not a JSON object, 1 over 1048576 bytes" in lines[0],
          f"malformed: stderr counts the odd events ({lines})")

    # 5. A client that leaves after the first events: the gateway stops the
    # upstream and settles what was streamed.
    key = "sk-stream-leave"
    release, _ = Stub.expect(key)
    body = stream_body("Count to a thousand.")
    started = time.monotonic()
    conn, response = open_stream(port, key, body, stream_headers(9), "leave")
    read_event(response)
    read_event(response)
    response.close()
    conn.close()
    release.set()
    deadline = time.monotonic() + 10
    while key not in Stub.cancelled and time.monotonic() < deadline:
        time.sleep(0.05)
    sent = Stub.cancelled.get(key)
    check(sent is not None and sent < 499, f"leave: the gateway stops the upstream request ({sent} chunks sent)")
    lines = stderr_lines(stderr_path, key)
    m = re.search(r"no usage event \(the client went away\); settled (\d+) tokens", lines[0]) if len(lines) == 1 else None
    check(m is not None, f"leave: stderr says the client went away, once ({lines})")
    low, high = settled(port, key, 10, body, started, baseline)
    if m:
        check(low <= int(m.group(1)) <= high and int(m.group(1)) < 500,
              f"leave: settled at the streamed text ({m.group(1)} in [{low}, {high:.0f}])")

    # 6. An upstream that breaks off: the client's response is cut off (no
    # last chunk), and the stream is settled at its text, 4 deltas.
    # (http.client does not tell a cut-off chunked body from a whole one:
    # read it off the socket.)
    key = "sk-stream-broken"
    body = stream_body("Tell me a secret.")
    started = time.monotonic()
    data = json.dumps(body).encode()
    raw = b""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\n"
                     b"Authorization: Bearer " + key.encode() + b"\r\nX-Stub-Stream: broken\r\n"
                     b"Content-Length: " + str(len(data)).encode() + b"\r\n\r\n" + data)
        while chunk := sock.recv(65536):
            raw += chunk
    check(raw.startswith(b"HTTP/1.1 200 ") and b'"ld"' in raw and not raw.endswith(b"\r\n0\r\n\r\n"),
          f"broken: the client's answer is cut off too, after the events that came ({raw[-40:]!r})")
    lines = stderr_lines(stderr_path, key)
    check(len(lines) == 1 and "no usage event (the upstream broke off: " in lines[0] and "settled 4 tokens" in lines[0],
          f"broken: stderr says so, once ({lines})")
    low, high = settled(port, key, 12, body, started, baseline)
    check(low <= 4 <= high, f"broken: settled at its text (4 in [{low}, {high:.0f}])")

    # 7. An upstream error is relayed, and used nothing.
    key = "sk-stream-error"
    body = stream_body("Anything.")
    started = time.monotonic()
    conn, response = open_stream(port, key, body, {**stream_headers(13), "Accept-Encoding": "identity"}, "error")
    raw = response.read()
    conn.close()
    check(response.status == 500 and b"overloaded" in raw, f"error: relayed ({response.status} {raw!r})")
    low, high = settled(port, key, 14, body, started, baseline)
    check(low <= 0 <= high, f"error: settled at 0 output tokens (0 in [{low}, {high:.0f}])")

    # 8. A non-streamed request still works as before on this gateway.
    status, h, data = chat(port, "sk-stream-plain", "Hello?", {**stream_headers(15), "Accept-Encoding": "identity"},
                           max_tokens=1000)
    check(status == 200 and json.loads(data)["choices"][0]["message"]["content"] == "42",
          f"a non-streamed request still works ({status})")

    # 9. A stream in progress when the gateway is stopped (by the caller, on
    # return): the gateway still stops, and settles it.
    key = "sk-stream-hang"
    release, _ = Stub.expect(key)
    conn, response = open_stream(port, key, stream_body("Never stop."), stream_headers(16), "hang")
    read_event(response)
    read_event(response)
    release.set()

    # /metrics while that stream is open: every request this gateway got was
    # allowed (and reached the stub), and each but that stream is settled,
    # once.
    with Upstream.lock:
        reached = sum(n for k, n in Upstream.seen.items() if k.startswith("Bearer sk-stream-"))
    check_counts(scrape(port), "streams, /metrics", reached, 0, 0, reached - 1)
    return key, conn


def check_stopped_stream(stderr_path, key, conn):
    conn.close()
    lines = stderr_lines(stderr_path, key)
    check(len(lines) == 1 and "no usage event (" in lines[0], f"a stream cut by SIGTERM is settled, once ({lines})")
    deadline = time.monotonic() + 5
    while key not in Stub.cancelled and time.monotonic() < deadline:
        time.sleep(0.05)
    check(key in Stub.cancelled, "a stream cut by SIGTERM stops its upstream request")


if __name__ == "__main__":
    sys.exit(main())
