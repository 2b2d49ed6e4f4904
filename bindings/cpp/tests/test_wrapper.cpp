// The C++ wrapper (bindings/cpp/ringfence.hpp) over every function it wraps,
// with its error paths as exceptions: bad configurations, bad UTF-8, corrupt
// snapshots, double settles, moved-from guards; and threads on one guard.
//
// Built by bindings/c/run-tests.sh against the static and the shared
// library, with and without -fsanitize=address,undefined, and run under
// valgrind. Prints "test_wrapper: N passed, N failed".

#include "ringfence.hpp"

#include <array>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

static int passed, failed;

#define CHECK(cond)                                                                         \
  do {                                                                                      \
    if (cond) {                                                                             \
      passed++;                                                                             \
    } else {                                                                                \
      failed++;                                                                             \
      std::fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond);         \
    }                                                                                       \
  } while (0)

// Runs `body`, expecting a ringfence::Error with `status` whose message
// contains `needle`.
template <class Body>
static void expect_error(rf_status status, const char* needle, Body body, int line) {
  try {
    body();
    failed++;
    std::fprintf(stderr, "line %d: no exception\n", line);
  } catch (const ringfence::Error& e) {
    if (e.status() == status && std::string(e.what()).find(needle) != std::string::npos) {
      passed++;
    } else {
      failed++;
      std::fprintf(stderr, "line %d: status %u, message %s\n", line, e.status(), e.what());
    }
  }
}
#define EXPECT_ERROR(status, needle, ...) expect_error(status, needle, [&] { __VA_ARGS__; }, __LINE__)

static const char TIGHT[] =
    "account_requests_per_minute = 30\n"
    "cluster_requests_per_minute = 5\n"
    "share_at = 0.2\n"
    "deny_at = 1.0\n"
    "limiter_capacity = 4096\n"
    "[link]\nmax_accounts = 1024\nmax_values = 4096\nmax_templates = 1024\nmax_pairs = 1024\n"
    "[score]\nmax_clusters = 256\n";

static ringfence::Request request(std::string_view account, std::string_view prompt) {
  ringfence::Request r;
  r.account = account;
  r.prompt = prompt;
  r.model = "model-large";
  r.input_tokens = 20;
  r.max_tokens = 100;
  return r;
}

static void test_guards(const std::string& dir) {
  CHECK(ringfence::version() == RF_VERSION);
  ringfence::Guard defaults;
  CHECK(defaults.get() != nullptr);
  ringfence::Guard sized = ringfence::Guard::for_accounts(1000);
  CHECK(sized.get() != nullptr);
  EXPECT_ERROR(RF_ERR_INVALID, "at least 1", ringfence::Guard::for_accounts(0));
  EXPECT_ERROR(RF_ERR_CONFIG, "deny_att", ringfence::Guard::from_toml("deny_att = 0.9"));
  EXPECT_ERROR(RF_ERR_UTF8, "`toml` is not valid UTF-8", ringfence::Guard::from_toml("x = \"\xff\""));
  std::string path = dir + "/wrapper.toml";
  std::ofstream(path) << TIGHT;
  ringfence::Guard from_file = ringfence::Guard::from_file(path);
  CHECK(from_file.get() != nullptr);
  EXPECT_ERROR(RF_ERR_IO, "missing.toml", ringfence::Guard::from_file(dir + "/missing.toml"));

  // Moving transfers ownership; a moved-from guard refuses every call.
  ringfence::Guard moved = std::move(sized);
  CHECK(moved.get() != nullptr && sized.get() == nullptr);  // NOLINT(bugprone-use-after-move)
  EXPECT_ERROR(RF_ERR_NULL, "`guard` is NULL", sized.check(request("a", "b")));
  EXPECT_ERROR(RF_ERR_NULL, "`guard` is NULL", sized.snapshot());
}

static void test_check(void) {
  ringfence::Guard guard = ringfence::Guard::from_toml(TIGHT);
  int cluster_refused = 0, users_allowed = 0;
  ringfence::Verdict refused;
  for (int round = 0; round < 8; round++) {
    for (int i = 0; i < 6; i++) {
      std::string account = "campaign-" + std::to_string(i);
      std::string ip = "198.51.100." + std::to_string(10 + i);
      std::string prompt = "Explain step by step: what is " + std::to_string(round) + " * " +
                           std::to_string(i) + "?";
      std::array<rf_fingerprint, 3> fps = {ringfence::fingerprint("payment", "card-shared"),
                                           ringfence::fingerprint("ja4", "t13d_rare"),
                                           ringfence::fingerprint("ip", ip)};
      ringfence::Request r = request(account, prompt);
      r.with_fingerprints(fps);
      ringfence::Verdict v = guard.check(r);
      if (v.allowed()) {
        guard.settle(v, 90);
      } else {
        cluster_refused++;
        refused = v;
      }

      std::string user = "user-" + std::to_string(i);
      std::string card = "card-" + std::to_string(i);
      std::vector<rf_fingerprint> ufps = {ringfence::fingerprint("payment", card)};
      ringfence::Request u = request(user, "What is the capital of France?");
      u.with_fingerprints(ufps);
      ringfence::Verdict uv = guard.check(u);
      if (uv.allowed()) {
        users_allowed++;
        CHECK(uv.reasons() == 0 && uv.reason_names().empty());
        guard.settle(uv, 12);
      }
    }
  }
  CHECK(users_allowed == 48);
  CHECK(cluster_refused > 10);
  CHECK(refused.decision() == RF_DECISION_THROTTLE);
  CHECK(refused.has(RF_REASON_CLUSTER_LIMIT) && refused.has(RF_REASON_SUSPECTED_DISTILLATION));
  CHECK(!refused.has(RF_REASON_ACCOUNT_LIMIT));
  CHECK((refused.reason_names() == std::vector<std::string>{"cluster_limit", "suspected_distillation"}));
  CHECK(refused.cluster_size() == 6 && refused.cluster_id() != 0);
  CHECK(refused.score() >= 0.2 && refused.remaining() == 0);
  CHECK(refused.retry_after().count() > 0);
  auto headers = refused.headers();
  CHECK(headers.size() == 3);
  if (headers.size() == 3) {
    CHECK(headers[0].first == "RateLimit-Policy" && headers[0].second == "\"cluster\";q=5;w=60");
    CHECK(headers[1].first == "RateLimit" && headers[1].second.rfind("\"cluster\";r=0;t=", 0) == 0);
    CHECK(headers[2].first == "Retry-After" && std::stoi(headers[2].second) >= 1);
  }

  // An allowed request: two headers, settled once.
  std::array<rf_fingerprint, 1> one = {ringfence::fingerprint("ip", "192.0.2.1")};
  ringfence::Request a = request("fresh", "hello");
  a.with_fingerprints(one);
  a.prompt.reset();  // absent
  ringfence::Verdict v = guard.check(a);
  CHECK(v.allowed() && v.retry_after().count() == 0);
  CHECK(v.headers().size() == 2);
  ringfence::Verdict copy = v;
  guard.settle(v, 30);
  EXPECT_ERROR(RF_ERR_INVALID, "settled already", guard.settle(v, 30));
  ringfence::Guard other = ringfence::Guard::from_toml(TIGHT);
  EXPECT_ERROR(RF_ERR_INVALID, "another guard", other.settle(copy, 30));

  // Bad UTF-8 in each string is an exception naming it.
  EXPECT_ERROR(RF_ERR_UTF8, "`request.account`", guard.check(request("acct\xff", "x")));
  EXPECT_ERROR(RF_ERR_UTF8, "`request.prompt`", guard.check(request("acct", "caf\xc3")));
  ringfence::Request bad = request("acct", "x");
  bad.system = "\x80";
  EXPECT_ERROR(RF_ERR_UTF8, "`request.system`", guard.check(bad));
  bad = request("acct", "x");
  bad.model = "\xfe";
  EXPECT_ERROR(RF_ERR_UTF8, "`request.model`", guard.check(bad));
  std::array<rf_fingerprint, 2> fps = {ringfence::fingerprint("ip", "192.0.2.1"),
                                       ringfence::fingerprint("ja4\xff", "t13d")};
  bad = request("acct", "x");
  bad.with_fingerprints(fps);
  EXPECT_ERROR(RF_ERR_UTF8, "`request.fingerprints[1].kind`", guard.check(bad));
  // Empty views are empty strings, not NULL: an empty account is the
  // request contract's error (as in every binding), not a NULL pointer.
  ringfence::Request empty;
  EXPECT_ERROR(RF_ERR_INVALID, "`account` is empty", guard.check(empty));
  empty.account = "someone";
  CHECK(guard.check(empty).allowed());
  // The rest of the contract: too many fingerprints, an empty kind.
  std::vector<std::string> values;
  for (int i = 0; i < 65; i++) values.push_back("value-" + std::to_string(i));
  std::vector<rf_fingerprint> many;
  for (const std::string& value : values) many.push_back(ringfence::fingerprint("device", value));
  ringfence::Request crowded = request("crowded", "x");
  crowded.with_fingerprints(many);
  EXPECT_ERROR(RF_ERR_INVALID, "`fingerprints` has 65 entries", guard.check(crowded));
  many.resize(64);
  crowded.with_fingerprints(many);
  CHECK(guard.check(crowded).allowed());
  std::array<rf_fingerprint, 1> kindless = {ringfence::fingerprint("", "v")};
  bad = request("acct", "x");
  bad.with_fingerprints(kindless);
  EXPECT_ERROR(RF_ERR_INVALID, "`fingerprints[0]`", guard.check(bad));

  // A refused verdict settles (doing nothing), once.
  guard.settle(refused, 500);
  EXPECT_ERROR(RF_ERR_INVALID, "settled already", guard.settle(refused, 500));
  CHECK(refused.decision_name() == "throttle" && refused.policy() == RF_POLICY_CLUSTER);
  CHECK(refused.policy_name() == "cluster");
  guard.maintain();
  CHECK(guard.flush() == 0);  // an inline guard has nothing waiting
}

static void test_names_and_estimate(void) {
  CHECK(ringfence::estimate_tokens(0) == 0);
  CHECK(ringfence::estimate_tokens(9) == 3);
  CHECK(ringfence::estimate_tokens(1 << 20) == (1 << 18));
  std::vector<std::string_view> names = ringfence::signal_names();
  CHECK(names.size() == rf_signal_count() && !names.empty());
  CHECK(!names.empty() && names.front() == "volume");
  bool diversity = false, score = false, crowd = false;
  for (std::string_view n : names) {
    diversity = diversity || n == "diversity";
    score = score || n == "score";
    crowd = crowd || n == "crowd";
  }
  CHECK(diversity && score && crowd);
}

static void test_snapshots(const std::string& dir) {
  ringfence::Guard guard = ringfence::Guard::from_toml(TIGHT);
  for (int i = 0; i < 5; i++) {
    std::array<rf_fingerprint, 1> fps = {ringfence::fingerprint("payment", "card-shared")};
    std::string account = "acct-" + std::to_string(i);
    ringfence::Request r = request(account, "hi");
    r.with_fingerprints(fps);
    guard.check(r);
  }
  std::vector<std::uint8_t> bytes = guard.snapshot();
  CHECK(bytes.size() > 100);
  ringfence::Guard fresh = ringfence::Guard::from_toml(TIGHT);
  std::vector<std::uint8_t> corrupt = bytes;
  corrupt[corrupt.size() / 2] ^= 0x10;
  EXPECT_ERROR(RF_ERR_SNAPSHOT, "cannot restore", fresh.restore(corrupt));
  EXPECT_ERROR(RF_ERR_SNAPSHOT, "cannot restore", fresh.restore(bytes.data(), 10));
  fresh.restore(bytes);
  std::optional<std::string> why = fresh.explain("acct-1");
  CHECK(why && why->rfind("account acct-1 is in cluster", 0) == 0);
  CHECK(why && why->find(" of 5 accounts") != std::string::npos);
  CHECK(!fresh.explain("nobody"));
  EXPECT_ERROR(RF_ERR_UTF8, "`account`", fresh.explain("\xff"));
  EXPECT_ERROR(RF_ERR_INVALID, "not a fleet node", fresh.fleet_stats());
  CHECK(fresh.metrics().find("# TYPE ringfence_decisions_total counter\n") != std::string::npos);
  ringfence::Guard fleet_node = ringfence::Guard::from_toml("[fleet]\nnode = \"edge-2\"\n");
  CHECK(fleet_node.fleet_stats().find("\"node\": \"edge-2\"") != std::string::npos);

  std::string path = dir + "/wrapper.snapshot";
  guard.snapshot_to_file(path);
  ringfence::Guard from_file = ringfence::Guard::from_toml(TIGHT);
  from_file.restore_from_file(path);
  CHECK(from_file.explain("acct-4").has_value());
  EXPECT_ERROR(RF_ERR_IO, "no-such", from_file.restore_from_file(dir + "/no-such"));
  EXPECT_ERROR(RF_ERR_IO, "cannot write", guard.snapshot_to_file("/nonexistent-dir/x"));

  ringfence::Guard node = ringfence::Guard::from_toml(TIGHT);
  for (int i = 5; i < 7; i++) {
    std::array<rf_fingerprint, 1> fps = {ringfence::fingerprint("payment", "card-shared")};
    std::string account = "acct-" + std::to_string(i);
    ringfence::Request r = request(account, "hi");
    r.with_fingerprints(fps);
    node.check(r);
  }
  std::vector<std::uint8_t> theirs = node.snapshot();
  guard.merge(theirs);
  why = guard.explain("acct-0");
  CHECK(why && why->find(" of 7 accounts") != std::string::npos);
  EXPECT_ERROR(RF_ERR_SNAPSHOT, "cannot restore", guard.merge(theirs.data(), theirs.size() - 1));
}

static void test_threads(void) {
  const ringfence::Guard guard =
      ringfence::Guard::from_toml("account_requests_per_minute = 1000000\nlimiter_capacity = 4096\n"
                                  "[link]\nmax_accounts = 1024\nmax_values = 4096\n"
                                  "max_templates = 1024\nmax_pairs = 1024\n");
  std::vector<std::thread> threads;
  std::array<int, 4> allowed{};
  for (int t = 0; t < 4; t++) {
    threads.emplace_back([&guard, &allowed, t] {
      for (int i = 0; i < 300; i++) {
        std::string account = "t" + std::to_string(t) + "-" + std::to_string(i % 20);
        std::string ip = "192.0.2." + std::to_string(i % 200);
        std::array<rf_fingerprint, 1> fps = {ringfence::fingerprint("ip", ip)};
        ringfence::Request r = request(account, "Summarise the attached text.");
        r.with_fingerprints(fps);
        ringfence::Verdict v = guard.check(r);
        if (v.allowed()) {
          allowed[t]++;
          guard.settle(v, 40);
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int a : allowed) CHECK(a == 300);
}

int main(int argc, char** argv) {
  std::string dir = argc > 1 ? argv[1] : ".";
  try {
    test_guards(dir);
    test_check();
    test_names_and_estimate();
    test_snapshots(dir);
    test_threads();
  } catch (const ringfence::Error& e) {
    failed++;
    std::fprintf(stderr, "unexpected ringfence::Error %u: %s\n", e.status(), e.what());
  }
  std::printf("test_wrapper: %d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
