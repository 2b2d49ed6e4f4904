// gateway: a small HTTP reverse proxy in front of an OpenAI-style API that
// asks ringfence about every chat completion.
//
// For each `POST /v1/chat/completions` it takes the account from the API key
// (`Authorization: Bearer KEY`, or --api-key-header), fingerprints from the
// client address, the User-Agent and the headers named by
// --fingerprint-header, and the prompt, system prompt, model and max_tokens
// from the JSON body; asks the guard; answers 429 with Retry-After,
// RateLimit and RateLimit-Policy when refused; otherwise forwards the request
// upstream, relays the answer (with the RateLimit headers) and settles the
// tokens its `usage` reports. Every other request is forwarded unchanged,
// except `GET /metrics`.
//
// `GET /metrics` is answered by the gateway itself, never forwarded: the
// guard's counters and gauges (ringfence::Guard::metrics(): requests by
// verdict, decisions by reason, settlements and their tokens, table sizes,
// memory) in the Prometheus text format 0.0.4, with `Content-Type:
// text/plain; version=0.0.4; charset=utf-8`, for Prometheus to scrape. The
// counters start at zero with the process (a restored snapshot does not
// bring them back, which Prometheus reads as a counter reset).
//
// Streamed completions (`"stream": true`) are relayed as they arrive: the
// upstream's server-sent events go to the client one event at a time, in a
// chunked response, never buffered whole. The gateway asks the upstream for
// the final usage event (`"stream_options": {"include_usage": true}`) and
// settles the tokens it reports. When the client did not ask for that event
// itself, the gateway drops it (the chunk with empty `choices` and a
// `usage`) from what the client sees, so that the client gets the stream it
// asked for; the `"usage": null` OpenAI adds to the other chunks is left as
// it is. A stream that ends without a usage event (the upstream ignored
// stream_options or broke off, the client went away, the gateway stopped)
// is settled at an estimate of the text it carried: the larger of the number
// of deltas that carried text and ringfence's estimate from their bytes
// (rf_estimate_tokens), and a line on stderr says so. An upstream that
// cannot be reached, or answers with an error status, used nothing; an
// answer that is not SSE is settled as a buffered one is. Every streamed
// request is settled exactly once: before the client gets the end of the
// stream, or as soon as the stream is cut short. A client that leaves is
// noticed at the next event relayed to it, and its upstream request is
// then cancelled.
//
// Build (from the repository root, after `cargo build --release -p ringfence-c`):
//
//   g++ -std=c++17 -O2 -Iinclude -Ibindings/cpp bindings/cpp/examples/gateway.cpp
//       target/release/libringfence_c.a $(pkg-config --cflags --libs cpp-httplib)
//       -lpthread -ldl -lm -o gateway
//
// (one command; see the README, "C and C++"). The two headers beside this
// file, gateway_usage.hpp (what an answer used: `usage`, the SSE scanner)
// and gateway_stream.hpp (the streamed relay), are found by their quoted
// includes; they are part of this one translation unit.
//
// Run:
//
//   ./gateway --listen 127.0.0.1:8080 --upstream http://127.0.0.1:9000
//       --config guard.toml --fingerprint-header ja4=X-JA4-Fingerprint
//
// It prints `listening on http://HOST:PORT` once it accepts connections
// (port 0 picks a free one) and stops cleanly on SIGINT or SIGTERM.
//
// It is an example: it streams only guarded chat completions (every other
// request, and a non-streamed completion, is buffered whole), reads each
// streamed completion on a thread of its own with a connection of its own
// to the upstream, speaks plain HTTP to the upstream, and trusts
// --client-ip-header only because it is told to (set it only behind a
// proxy that overwrites that header). It serves /metrics to whoever reaches
// its port, like the API: keep scrapes on a network of your own.

#include "gateway_stream.hpp"
#include "gateway_usage.hpp"
#include "ringfence.hpp"

#include <httplib.h>
#include <nlohmann/json.hpp>

#include <pthread.h>
#include <signal.h>
#include <strings.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

using nlohmann::json;

namespace {

using gw::output_tokens_of;
using gw::RelayFinisher;
using gw::StreamRelay;

struct Options {
  std::string listen_host = "127.0.0.1";
  int listen_port = 8080;
  std::string upstream;                                          // http://host:port
  std::string config;                                            // TOML file; defaults if empty
  std::vector<std::pair<std::string, std::string>> fp_headers;  // kind, header
  std::string client_ip_header;                                  // e.g. X-Forwarded-For
  std::string api_key_header = "Authorization";
  std::uint32_t default_max_tokens = 1024;
  std::string snapshot;  // restored at start, saved every minute and at exit
};

[[noreturn]] void usage(const char* why) {
  std::fprintf(stderr,
               "gateway: %s\n"
               "usage: gateway --upstream http://HOST:PORT [--listen HOST:PORT] [--config FILE]\n"
               "               [--fingerprint-header KIND=HEADER]... [--client-ip-header HEADER]\n"
               "               [--api-key-header HEADER] [--default-max-tokens N] [--snapshot FILE]\n",
               why);
  std::exit(2);
}

Options parse_options(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; i++) {
    std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage(("missing value for " + arg).c_str());
      return argv[++i];
    };
    if (arg == "--listen") {
      std::string v = value();
      auto colon = v.rfind(':');
      if (colon == std::string::npos) usage("--listen wants HOST:PORT");
      o.listen_host = v.substr(0, colon);
      o.listen_port = std::atoi(v.c_str() + colon + 1);
    } else if (arg == "--upstream") {
      o.upstream = value();
    } else if (arg == "--config") {
      o.config = value();
    } else if (arg == "--fingerprint-header") {
      std::string v = value();
      auto eq = v.find('=');
      if (eq == std::string::npos || eq == 0 || eq + 1 == v.size())
        usage("--fingerprint-header wants KIND=HEADER");
      o.fp_headers.emplace_back(v.substr(0, eq), v.substr(eq + 1));
    } else if (arg == "--client-ip-header") {
      o.client_ip_header = value();
    } else if (arg == "--api-key-header") {
      o.api_key_header = value();
    } else if (arg == "--default-max-tokens") {
      o.default_max_tokens = static_cast<std::uint32_t>(std::strtoul(value().c_str(), nullptr, 10));
    } else if (arg == "--snapshot") {
      o.snapshot = value();
    } else {
      usage(("unknown argument " + arg).c_str());
    }
  }
  if (o.upstream.empty()) usage("--upstream is required");
  return o;
}

// An OpenAI-style error body.
std::string error_body(const std::string& message, const std::string& type, json extra = json::object()) {
  json e = {{"message", message}, {"type", type}};
  e.update(extra);
  return json{{"error", e}}.dump();
}

// The text of a message's content: a string, or an array of parts whose
// "text" parts are joined.
std::string content_text(const json& content) {
  if (content.is_string()) return content.get<std::string>();
  std::string text;
  if (content.is_array()) {
    for (const json& part : content) {
      if (part.is_object() && part.value("type", "") == "text" && part.contains("text") &&
          part["text"].is_string()) {
        if (!text.empty()) text += "\n";
        text += part["text"].get<std::string>();
      }
    }
  }
  return text;
}

// A 64-bit FNV-1a hash: the account is the hash of the API key, so that
// neither snapshots nor explanations hold keys.
std::string account_of(const std::string& key) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : key) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  char out[24];
  std::snprintf(out, sizeof out, "key-%016llx", static_cast<unsigned long long>(h));
  return out;
}

// Header names compare without regard to ASCII case.
bool same_name(const std::string& a, const std::string& b) {
  return a.size() == b.size() && strncasecmp(a.c_str(), b.c_str(), a.size()) == 0;
}

bool hop_by_hop(const std::string& name) {
  static const char* const names[] = {"Connection",      "Keep-Alive", "Transfer-Encoding",
                                      "Content-Length",  "Host",       "Proxy-Connection",
                                      "Accept-Encoding", "Upgrade",    "Content-Encoding",
                                      "TE",              "Trailer"};
  for (const char* n : names) {
    if (same_name(name, n)) return true;
  }
  return false;
}

class Gateway {
 public:
  Gateway(Options options, ringfence::Guard guard) : o_(std::move(options)), guard_(std::move(guard)) {}

  const ringfence::Guard& guard() const { return guard_; }

  // POST /v1/chat/completions.
  void chat(const httplib::Request& req, httplib::Response& res) {
    std::string key = api_key(req);
    if (key.empty()) {
      res.status = 401;
      res.set_content(error_body("missing API key (" + o_.api_key_header + ")", "invalid_request_error"),
                      "application/json");
      return;
    }
    json body = json::parse(req.body, nullptr, false);
    if (body.is_discarded() || !body.is_object()) {
      res.status = 400;
      res.set_content(error_body("the body is not a JSON object", "invalid_request_error"),
                      "application/json");
      return;
    }

    // The request's text: the last user message is the prompt; system (and
    // developer) messages form the system prompt. Input tokens are
    // ringfence's estimate from all the messages' bytes (rf_estimate_tokens).
    std::string prompt, system, model;
    std::size_t text_bytes = 0;
    if (body.contains("messages") && body["messages"].is_array()) {
      for (const json& m : body["messages"]) {
        if (!m.is_object() || !m.contains("content")) continue;
        std::string text = content_text(m["content"]);
        text_bytes += text.size();
        std::string role = m.value("role", "");
        if (role == "system" || role == "developer") {
          if (!system.empty()) system += "\n";
          system += text;
        } else if (role == "user") {
          prompt = std::move(text);
        }
      }
    }
    if (body.contains("model") && body["model"].is_string()) model = body["model"].get<std::string>();
    std::uint32_t max_tokens = o_.default_max_tokens;
    for (const char* field : {"max_completion_tokens", "max_tokens"}) {
      if (body.contains(field) && body[field].is_number_unsigned()) {
        max_tokens = static_cast<std::uint32_t>(std::min<std::uint64_t>(body[field].get<std::uint64_t>(), UINT32_MAX));
        break;
      }
    }

    // Fingerprints. The strings live in `values` until the check is done.
    std::string account = account_of(key);
    std::vector<std::string> values;
    std::vector<rf_fingerprint> fps;
    values.reserve(o_.fp_headers.size() + 2);
    fps.reserve(o_.fp_headers.size() + 2);
    auto add = [&](const char* kind, std::string value) {
      if (value.empty()) return;
      values.push_back(std::move(value));
      fps.push_back(ringfence::fingerprint(kind, values.back()));
    };
    add("ip", client_ip(req));
    add("user_agent", req.get_header_value("User-Agent"));
    for (const auto& [kind, header] : o_.fp_headers) add(kind.c_str(), req.get_header_value(header.c_str()));

    ringfence::Request r;
    r.account = account;
    r.with_fingerprints(fps);
    if (!prompt.empty()) r.prompt = prompt;
    if (!system.empty()) r.system = system;
    if (!model.empty()) r.model = model;
    r.input_tokens = ringfence::estimate_tokens(text_bytes);
    r.max_tokens = max_tokens;

    ringfence::Verdict verdict;
    try {
      verdict = guard_.check(r);
    } catch (const ringfence::Error& e) {  // e.g. a header not UTF-8, or too long
      res.status = 400;
      res.set_content(error_body(e.what(), "invalid_request_error"), "application/json");
      return;
    }
    for (const auto& [name, value] : verdict.headers()) res.set_header(name.c_str(), value);

    if (!verdict.allowed()) {
      json reasons = verdict.reason_names();
      res.status = 429;
      std::string message = "Too many requests (" + json(reasons).dump() + ")";
      res.set_content(error_body(message, "rate_limit_exceeded",
                                 {{"reasons", reasons},
                                  {"decision", rf_decision_str(verdict.decision())},
                                  {"retry_after_ms", verdict.retry_after().count()},
                                  {"cluster_size", verdict.cluster_size()}}),
                      "application/json");
      return;
    }

    if (body.contains("stream") && body["stream"].is_boolean() && body["stream"].get<bool>()) {
      stream(req, res, body, verdict, max_tokens, account);
      return;
    }

    auto upstream = forward(req, res);
    // Settle with what the answer says it used; an upstream failure used
    // nothing; a success without `usage` is taken to have used max_tokens.
    std::uint32_t output = 0;
    if (upstream && upstream->status < 400) {
      json answer = json::parse(upstream->body, nullptr, false);
      output = output_tokens_of(answer).value_or(max_tokens);
    }
    guard_.settle(verdict, output);
  }

  // A streamed chat completion, allowed by `verdict`: asks the upstream for
  // the usage event, relays its events as they come, and settles the
  // verdict once the response is done (see the top of the file).
  void stream(const httplib::Request& req, httplib::Response& res, json& body, const ringfence::Verdict& verdict,
              std::uint32_t max_tokens, const std::string& account) {
    httplib::Request up = upstream_request(req);
    // The client asked for the usage event itself when it set
    // stream_options.include_usage to true; a stream_options that is not an
    // object is left for the upstream to refuse.
    bool client_wants_usage = true;
    auto options = body.find("stream_options");
    if (options == body.end() || options->is_null() || options->is_object()) {
      bool asked = options != body.end() && options->is_object() && options->contains("include_usage") &&
                   (*options)["include_usage"] == true;
      if (!asked) {
        client_wants_usage = false;
        body["stream_options"]["include_usage"] = true;
        up.body = body.dump();
      }
    }

    auto relay = std::make_shared<StreamRelay>(guard_, verdict, max_tokens, account, !client_wants_usage, o_.upstream);
    RelayFinisher finisher{relay};
    relay->start(std::move(up), relay);
    if (!relay->wait_for_headers(stopping_)) {
      relay->finish();  // settles 0: nothing was served
      res.status = 502;
      res.set_content(error_body("the upstream could not be reached: " + relay->error(), "upstream_error"),
                      "application/json");
      return;
    }
    res.status = relay->status();
    for (const auto& [name, value] : relay->headers()) {
      if (!hop_by_hop(name) && !same_name(name, "Content-Type")) res.headers.emplace(name, value);
    }
    if (res.status == 204 || res.status == 304) return;  // no body (the finisher settles)
    // The type without parameters, so that httplib never compresses the
    // events (it would hold them back); SSE is UTF-8 whatever it says.
    std::string content_type = relay->sse() ? "text/event-stream" : relay->content_type();
    if (content_type.empty()) content_type = "application/octet-stream";
    res.set_chunked_content_provider(
        content_type, [relay, this](std::size_t, httplib::DataSink& sink) { return relay->pull(sink, stopping_); },
        [relay](bool) { relay->finish(); });
    finisher.relay.reset();  // the response owns it now: it finishes it when done
  }

  // Sends the request upstream and relays the answer into `res` (502 when
  // the upstream cannot be reached). Returns the upstream's response.
  std::optional<httplib::Response> forward(const httplib::Request& req, httplib::Response& res) {
    thread_local std::unique_ptr<httplib::Client> client;
    if (!client) {
      client = std::make_unique<httplib::Client>(o_.upstream);
      client->set_keep_alive(true);
      client->set_connection_timeout(5);
      client->set_read_timeout(600);
    }
    httplib::Result result = client->send(upstream_request(req));
    if (!result) {
      client.reset();
      res.status = 502;
      res.set_content(error_body("the upstream could not be reached: " + httplib::to_string(result.error()),
                                 "upstream_error"),
                      "application/json");
      return std::nullopt;
    }
    res.status = result->status;
    std::string content_type = result->get_header_value("Content-Type");
    for (const auto& [name, value] : result->headers) {
      if (!hop_by_hop(name) && !same_name(name, "Content-Type"))
        res.headers.emplace(name, value);
    }
    res.set_content(result->body, content_type.empty() ? "application/octet-stream" : content_type);
    return *result;
  }

  // GET /metrics: the guard's counters and gauges, for Prometheus.
  void metrics(httplib::Response& res) const {
    try {
      res.set_content(guard_.metrics(), "text/plain; version=0.0.4; charset=utf-8");
    } catch (const ringfence::Error& e) {
      res.status = 500;
      res.set_content(std::string("gateway: ") + e.what() + "\n", "text/plain; charset=utf-8");
    }
  }

  // Ends the streams in progress (the server is stopping).
  void stop() { stopping_.store(true); }

  // Forgets expired evidence and saves the snapshot, if asked to.
  void maintain() {
    guard_.maintain();
    if (!o_.snapshot.empty()) guard_.snapshot_to_file(o_.snapshot);
  }

 private:
  // `req` as the upstream gets it: without hop-by-hop headers, with the
  // client's address in X-Forwarded-For.
  httplib::Request upstream_request(const httplib::Request& req) const {
    httplib::Request up;
    up.method = req.method;
    up.path = req.target.empty() ? req.path : req.target;
    up.body = req.body;
    for (const auto& [name, value] : req.headers) {
      if (!hop_by_hop(name) && !same_name(name, "X-Forwarded-For"))
        up.headers.emplace(name, value);
    }
    up.headers.emplace("X-Forwarded-For", client_ip(req));
    return up;
  }

  std::string api_key(const httplib::Request& req) const {
    std::string v = req.get_header_value(o_.api_key_header.c_str());
    const std::string bearer = "Bearer ";
    if (v.size() > bearer.size() && same_name(v.substr(0, bearer.size()), bearer))
      v = v.substr(bearer.size());
    return v;
  }

  std::string client_ip(const httplib::Request& req) const {
    if (!o_.client_ip_header.empty()) {
      std::string v = req.get_header_value(o_.client_ip_header.c_str());
      std::string first = v.substr(0, v.find(','));
      auto b = first.find_first_not_of(' ');
      auto e = first.find_last_not_of(' ');
      if (b != std::string::npos) return first.substr(b, e - b + 1);
    }
    return req.remote_addr;
  }

  Options o_;
  ringfence::Guard guard_;
  std::atomic<bool> stopping_{false};
};

ringfence::Guard make_guard(const Options& o) {
  ringfence::Guard guard = o.config.empty() ? ringfence::Guard() : ringfence::Guard::from_file(o.config);
  if (!o.snapshot.empty() && std::ifstream(o.snapshot).good()) guard.restore_from_file(o.snapshot);
  return guard;
}

}  // namespace

int main(int argc, char** argv) {
  Options options = parse_options(argc, argv);

  // SIGINT and SIGTERM are taken by one thread (below); block them in all
  // others, which inherit this mask.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  std::unique_ptr<Gateway> gateway;
  try {
    gateway = std::make_unique<Gateway>(options, make_guard(options));
  } catch (const ringfence::Error& e) {
    std::fprintf(stderr, "gateway: %s\n", e.what());
    return 1;
  }

  httplib::Server server;
  server.Post("/v1/chat/completions",
              [&](const httplib::Request& req, httplib::Response& res) { gateway->chat(req, res); });
  // Before the catch-all below: the first pattern that matches wins.
  server.Get("/metrics", [&](const httplib::Request&, httplib::Response& res) { gateway->metrics(res); });
  auto pass = [&](const httplib::Request& req, httplib::Response& res) { gateway->forward(req, res); };
  server.Get(".*", pass);
  server.Post(".*", pass);
  server.Put(".*", pass);
  server.Patch(".*", pass);
  server.Delete(".*", pass);

  int port = options.listen_port == 0 ? server.bind_to_any_port(options.listen_host)
                                      : (server.bind_to_port(options.listen_host, options.listen_port)
                                             ? options.listen_port
                                             : -1);
  if (port < 0) {
    std::fprintf(stderr, "gateway: cannot listen on %s:%d\n", options.listen_host.c_str(), options.listen_port);
    return 1;
  }

  std::mutex mu;
  std::condition_variable cv;
  std::atomic<bool> stopping{false};
  std::thread signals([&] {
    int sig = 0;
    sigwait(&stop_signals, &sig);
    {
      std::lock_guard<std::mutex> lock(mu);
      stopping.store(true);
    }
    cv.notify_all();
    gateway->stop();
    server.stop();
  });
  // Once a minute: forget expired evidence off the request path, and save
  // the snapshot.
  std::thread background([&] {
    std::unique_lock<std::mutex> lock(mu);
    while (!cv.wait_for(lock, std::chrono::minutes(1), [&] { return stopping.load(); })) {
      lock.unlock();
      try {
        gateway->maintain();
      } catch (const ringfence::Error& e) {
        std::fprintf(stderr, "gateway: %s\n", e.what());
      }
      lock.lock();
    }
  });

  std::printf("listening on http://%s:%d (upstream %s, ringfence %s)\n", options.listen_host.c_str(), port,
              options.upstream.c_str(), std::string(ringfence::version()).c_str());
  std::fflush(stdout);
  bool ok = server.listen_after_bind();

  if (!stopping.load()) {  // listen failed: wake the signal thread so it can be joined
    pthread_kill(signals.native_handle(), SIGTERM);
  }
  signals.join();
  background.join();
  int status = ok ? 0 : 1;
  if (!options.snapshot.empty()) {
    try {
      gateway->guard().snapshot_to_file(options.snapshot);
    } catch (const ringfence::Error& e) {
      std::fprintf(stderr, "gateway: %s\n", e.what());
      status = 1;
    }
  }
  return status;
}
