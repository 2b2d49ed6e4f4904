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

Usage: gateway_test.py PATH/TO/gateway
Prints "gateway_test: N passed, N failed"; exits non-zero on a failure.
Standard library only.
"""

import http.client
import http.server
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading

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


class Upstream(http.server.BaseHTTPRequestHandler):
    """Answers chat completions with a fixed usage; counts requests per key."""

    seen = {}
    lock = threading.Lock()

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        key = self.headers.get("Authorization", "")
        with Upstream.lock:
            Upstream.seen[key] = Upstream.seen.get(key, 0) + 1
        request = json.loads(body)
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

    def do_GET(self):
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


def chat(port, key, prompt, headers, max_tokens=1000):
    body = json.dumps({
        "model": "model-large",
        "max_tokens": max_tokens,
        "messages": [{"role": "system", "content": "You are helpful."},
                     {"role": "user", "content": prompt}],
    })
    return post(port, key, body, headers)


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

    def __init__(self, args):
        self.args = args

    def __enter__(self):
        self.process = subprocess.Popen(self.args, stdout=subprocess.PIPE, text=True)
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
            status, h, _ = chat(port, "sk-campaign-0", "Explain step by step: what is 9 * 9?",
                                CAMPAIGN_HEADERS(0))
            check(status == 429 and h.get("ratelimit-policy") == '"cluster";q=5;w=60',
                  f"after a restart from the snapshot, the cluster is still refused ({status})")
            status, _, _ = chat(port, "sk-user-0", "What is the capital of Peru?", USER_HEADERS(0))
            check(status == 200, f"after a restart, an unrelated account is served ({status})")
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
            else:
                check(status == 200, f"campaign request: 200 or 429 ({status})")
                campaign_served += 1

            headers = USER_HEADERS(i)
            status, h, body = chat(port, f"sk-user-{i}", f"What is the capital of country {rnd}?", headers)
            if status == 200:
                users_served += 1
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


if __name__ == "__main__":
    sys.exit(main())
