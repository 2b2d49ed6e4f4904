/*
 * Every function of include/ringfence.h, called from C, with its error
 * paths: NULL pointers, bad UTF-8, bad configurations, corrupt snapshots,
 * small buffers, double settles, many threads on one guard, and threat
 * intelligence shared between two guards (test_api_intel.inc, included).
 *
 * Built by bindings/c/run-tests.sh against the static and the shared
 * library, with and without -fsanitize=address,undefined, and run under
 * valgrind. Prints "test_api: N passed, N failed" and exits non-zero on a
 * failure.
 */
#include "ringfence.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int passed, failed;

#define CHECK(cond)                                                                  \
  do {                                                                               \
    if (cond) {                                                                      \
      passed++;                                                                      \
    } else {                                                                         \
      failed++;                                                                      \
      fprintf(stderr, "%s:%d: CHECK(%s) failed; last error: %s\n", __FILE__, __LINE__, \
              #cond, rf_last_error());                                               \
    }                                                                                \
  } while (0)

/* A string literal as pointer + length. */
#define S(lit) (lit), (sizeof(lit) - 1)

static int contains(const char *haystack, const char *needle) {
  return strstr(haystack, needle) != NULL;
}

/* Small tables, so that the tests (and valgrind) stay quick, and a policy
 * tight enough to refuse a cluster within a few dozen requests. */
static const char TIGHT[] =
    "account_requests_per_minute = 30\n"
    "cluster_requests_per_minute = 5\n"
    "share_at = 0.2\n"
    "deny_at = 1.0\n"
    "limiter_capacity = 4096\n"
    "[link]\n"
    "max_accounts = 1024\n"
    "max_values = 4096\n"
    "max_templates = 1024\n"
    "max_pairs = 1024\n"
    "[score]\n"
    "max_clusters = 256\n";

static rf_guard *tight_guard(void) {
  rf_guard *g = NULL;
  CHECK(rf_guard_from_toml(TIGHT, strlen(TIGHT), &g) == RF_OK);
  CHECK(g != NULL);
  return g;
}

static rf_fingerprint fp(const char *kind, const char *value) {
  rf_fingerprint f;
  f.kind = kind;
  f.kind_len = strlen(kind);
  f.value = value;
  f.value_len = strlen(value);
  return f;
}

static rf_request request(const char *account, const rf_fingerprint *fps, size_t n,
                          const char *prompt) {
  rf_request r;
  memset(&r, 0, sizeof r);
  r.account = account;
  r.account_len = strlen(account);
  r.fingerprints = fps;
  r.fingerprint_count = n;
  r.prompt = prompt;
  r.prompt_len = prompt ? strlen(prompt) : 0;
  r.model = "model-large";
  r.model_len = strlen(r.model);
  r.input_tokens = 20;
  r.max_tokens = 100;
  return r;
}

static void test_version_and_names(void) {
  CHECK(strcmp(rf_version(), RF_VERSION) == 0);
  CHECK(RF_VERSION_NUMBER == RF_VERSION_MAJOR * 10000 + RF_VERSION_MINOR * 100 + RF_VERSION_PATCH);
  CHECK(strncmp(rf_status_str(RF_OK), "RF_OK", 5) == 0);
  CHECK(strncmp(rf_status_str(RF_ERR_UTF8), "RF_ERR_UTF8", 11) == 0);
  CHECK(strncmp(rf_status_str(RF_ERR_PANIC), "RF_ERR_PANIC", 12) == 0);
  CHECK(strncmp(rf_status_str(12345), "RF_ERR_UNKNOWN", 14) == 0);
  CHECK(strcmp(rf_reason_str(RF_REASON_ACCOUNT_LIMIT), "account_limit") == 0);
  CHECK(strcmp(rf_reason_str(RF_REASON_CLUSTER_LIMIT), "cluster_limit") == 0);
  CHECK(strcmp(rf_reason_str(RF_REASON_FINGERPRINT_LIMIT), "fingerprint_limit") == 0);
  CHECK(strcmp(rf_reason_str(RF_REASON_SUSPECTED_DISTILLATION), "suspected_distillation") == 0);
  CHECK(strcmp(rf_reason_str(RF_REASON_SHARED_INDICATOR), "shared_indicator") == 0);
  CHECK(strcmp(rf_reason_str(3), "unknown") == 0);
  CHECK(strcmp(rf_decision_str(RF_DECISION_ALLOW), "allow") == 0);
  CHECK(strcmp(rf_decision_str(RF_DECISION_THROTTLE), "throttle") == 0);
  CHECK(strcmp(rf_decision_str(RF_DECISION_DENY), "deny") == 0);
  CHECK(strcmp(rf_decision_str(99), "unknown") == 0);
  CHECK(strcmp(rf_policy_str(RF_POLICY_ACCOUNT), "account") == 0);
  CHECK(strcmp(rf_policy_str(RF_POLICY_CLUSTER), "cluster") == 0);
  CHECK(strcmp(rf_policy_str(RF_POLICY_FINGERPRINT), "fingerprint") == 0);
  CHECK(strcmp(rf_policy_str(RF_POLICY_SUSPECTED_DISTILLATION), "suspected_distillation") == 0);
  CHECK(strcmp(rf_policy_str(77), "unknown") == 0);

  /* The signals, named by ringfence, however many it has. */
  size_t signals = rf_signal_count();
  CHECK(signals >= 2);
  int diversity = 0, score = 0, crowd = 0;
  for (size_t i = 0; i < signals; i++) {
    CHECK(rf_signal_name(i) != NULL);
    if (rf_signal_name(i) && strcmp(rf_signal_name(i), "diversity") == 0) diversity = 1;
    if (rf_signal_name(i) && strcmp(rf_signal_name(i), "score") == 0) score = 1;
    if (rf_signal_name(i) && strcmp(rf_signal_name(i), "crowd") == 0) crowd = 1;
  }
  CHECK(diversity && score && crowd);
  CHECK(strcmp(rf_signal_name(0), "volume") == 0);
  CHECK(rf_signal_name(signals) == NULL);
  CHECK(rf_signal_name((size_t)-1) == NULL);

  /* The token estimate every binding uses: a quarter of the bytes, rounded up. */
  CHECK(rf_estimate_tokens(0) == 0);
  CHECK(rf_estimate_tokens(1) == 1);
  CHECK(rf_estimate_tokens(9) == 3);
  CHECK(rf_estimate_tokens(1 << 20) == 1 << 18);
  CHECK(rf_estimate_tokens((size_t)-1) == (sizeof(size_t) > 4 ? UINT32_MAX : (uint32_t)(((size_t)-1) / 4 + 1)));
}

static void test_constructors(const char *dir) {
  rf_guard *g = (rf_guard *)&g; /* not NULL: failures must reset it */
  CHECK(rf_guard_new(&g) == RF_OK && g != NULL);
  rf_guard_free(g);
  CHECK(rf_guard_new(NULL) == RF_ERR_NULL);
  CHECK(contains(rf_last_error(), "rf_guard_new: `out` is NULL"));

  g = NULL;
  CHECK(rf_guard_new_for_accounts(1000, &g) == RF_OK && g != NULL);
  rf_guard_free(g);
  g = (rf_guard *)&g;
  CHECK(rf_guard_new_for_accounts(0, &g) == RF_ERR_INVALID && g == NULL);
  CHECK(contains(rf_last_error(), "`accounts` is 0"));
  g = (rf_guard *)&g;
  CHECK(rf_guard_new_for_accounts((size_t)1 << 27, &g) == RF_ERR_INVALID && g == NULL);
  CHECK(contains(rf_last_error(), "at most 67108864"));

  /* Bad configurations: an unknown key, a mistyped value, a range, bad UTF-8. */
  g = (rf_guard *)&g;
  CHECK(rf_guard_from_toml(S("deny_att = 0.9"), &g) == RF_ERR_CONFIG && g == NULL);
  CHECK(contains(rf_last_error(), "deny_att"));
  CHECK(rf_guard_from_toml(S("share_at = \"high\""), &g) == RF_ERR_CONFIG);
  CHECK(contains(rf_last_error(), "share_at"));
  CHECK(rf_guard_from_toml(S("share_at = 0.9\ndeny_at = 0.5"), &g) == RF_ERR_CONFIG);
  CHECK(contains(rf_last_error(), "deny_at"));
  CHECK(rf_guard_from_toml(S("shadow = \"\xc3\x28\""), &g) == RF_ERR_UTF8);
  CHECK(contains(rf_last_error(), "`toml` is not valid UTF-8 (bad byte at offset 10)"));
  CHECK(rf_guard_from_toml(NULL, 0, &g) == RF_ERR_NULL);
  CHECK(rf_guard_from_toml(S(""), NULL) == RF_ERR_NULL);
  /* An empty configuration is all defaults (about 60 MB). */
  CHECK(rf_guard_from_toml(S(""), &g) == RF_OK && g != NULL);
  rf_guard_free(g);

  /* From a file. */
  char path[4096];
  snprintf(path, sizeof path, "%s/guard.toml", dir);
  FILE *f = fopen(path, "w");
  CHECK(f != NULL);
  if (f) {
    fputs(TIGHT, f);
    fclose(f);
  }
  g = NULL;
  CHECK(rf_guard_from_file(path, strlen(path), &g) == RF_OK && g != NULL);
  rf_guard_free(g);
  snprintf(path, sizeof path, "%s/bad.toml", dir);
  f = fopen(path, "w");
  if (f) {
    fputs("[link]\nhorizon_secs = \"a day\"\n", f);
    fclose(f);
  }
  CHECK(rf_guard_from_file(path, strlen(path), &g) == RF_ERR_CONFIG && g == NULL);
  CHECK(contains(rf_last_error(), "horizon_secs") && contains(rf_last_error(), "bad.toml"));
  snprintf(path, sizeof path, "%s/missing.toml", dir);
  CHECK(rf_guard_from_file(path, strlen(path), &g) == RF_ERR_IO && g == NULL);
  CHECK(contains(rf_last_error(), "missing.toml"));
  CHECK(rf_guard_from_file(NULL, 3, &g) == RF_ERR_NULL);

  rf_guard_free(NULL); /* accepted */
}

static void test_check_and_headers(void) {
  rf_guard *g = tight_guard();
  rf_verdict v;
  char buf[256];
  size_t len = 0;

  /* Six accounts share a card and a rare TLS fingerprint and ask for
   * chain-of-thought answers; six unrelated accounts ask ordinary questions. */
  int cluster_refused = 0, users_refused = 0, users_allowed = 0;
  rf_verdict refused;
  memset(&refused, 0, sizeof refused);
  for (int round = 0; round < 8; round++) {
    for (int i = 0; i < 6; i++) {
      char account[32], ip[32], prompt[128];
      snprintf(account, sizeof account, "campaign-%d", i);
      snprintf(ip, sizeof ip, "198.51.100.%d", 10 + i);
      snprintf(prompt, sizeof prompt, "Explain step by step: what is %d * %d?", round, i);
      rf_fingerprint fps[3] = {fp("payment", "card-shared"), fp("ja4", "t13d_rare"), fp("ip", ip)};
      rf_request r = request(account, fps, 3, prompt);
      CHECK(rf_check(g, &r, &v) == RF_OK);
      if (v.decision != RF_DECISION_ALLOW) {
        cluster_refused++;
        refused = v;
      } else {
        CHECK(rf_settle(g, &v, 90) == RF_OK);
      }

      char user[32], card[32], uip[32];
      snprintf(user, sizeof user, "user-%d", i);
      snprintf(card, sizeof card, "card-%d", i);
      snprintf(uip, sizeof uip, "203.0.113.%d", 10 + i);
      rf_fingerprint ufps[2] = {fp("payment", card), fp("ip", uip)};
      rf_request u = request(user, ufps, 2, "What is the capital of France?");
      CHECK(rf_check(g, &u, &v) == RF_OK);
      if (v.decision == RF_DECISION_ALLOW) {
        users_allowed++;
        CHECK(v.cluster_size == 1);
        CHECK(v.reasons == 0);
        CHECK(rf_settle(g, &v, 12) == RF_OK);
      } else {
        users_refused++;
      }
    }
  }
  CHECK(users_refused == 0 && users_allowed == 48);
  CHECK(cluster_refused > 10);
  CHECK(refused.decision == RF_DECISION_THROTTLE);
  CHECK(refused.reasons == (RF_REASON_CLUSTER_LIMIT | RF_REASON_SUSPECTED_DISTILLATION));
  CHECK(refused.policy == RF_POLICY_CLUSTER);
  CHECK(refused.cluster_size == 6);
  CHECK(refused.score >= 0.2 && refused.score <= 1.0);
  CHECK(refused.retry_after_ms > 0 && refused.retry_after_secs >= 1);
  CHECK(refused.remaining == 0 && refused.policy_quota == 5 && refused.policy_window_secs == 60);

  /* The headers, and a buffer too small for them. */
  CHECK(rf_verdict_headers(&refused, buf, sizeof buf, &len) == RF_OK);
  CHECK(len == strlen(buf));
  CHECK(strncmp(buf, "RateLimit-Policy: \"cluster\";q=5;w=60\r\nRateLimit: \"cluster\";r=0;t=", 64) ==
        0);
  CHECK(contains(buf, "\r\nRetry-After: "));
  char small[8] = "xxxxxxx";
  size_t need = 0;
  CHECK(rf_verdict_headers(&refused, small, sizeof small, &need) == RF_ERR_BUFFER_TOO_SMALL);
  CHECK(need == len && strcmp(small, "xxxxxxx") == 0);
  CHECK(rf_verdict_headers(&refused, NULL, 0, &need) == RF_ERR_BUFFER_TOO_SMALL && need == len);
  CHECK(rf_verdict_headers(&refused, buf, sizeof buf, NULL) == RF_OK);
  CHECK(rf_verdict_headers(NULL, buf, sizeof buf, &len) == RF_ERR_NULL);

  /* A verdict rf_check did not fill has no headers. */
  rf_verdict scribbled = refused;
  scribbled.policy = 42;
  CHECK(rf_verdict_headers(&scribbled, buf, sizeof buf, &len) == RF_ERR_INVALID);
  CHECK(contains(rf_last_error(), "`verdict.policy` is 42"));

  /* A refused request reserved nothing and produced nothing: settling it
   * does nothing, but marks it settled all the same. */
  CHECK(rf_settle(g, &refused, 500) == RF_OK);
  CHECK(rf_settle(g, &refused, 0) == RF_ERR_INVALID);
  CHECK(contains(rf_last_error(), "settled already"));

  /* An allowed request's headers. */
  rf_fingerprint one = fp("ip", "192.0.2.1");
  rf_request a = request("fresh", &one, 1, NULL);
  CHECK(rf_check(g, &a, &v) == RF_OK && v.decision == RF_DECISION_ALLOW);
  CHECK(rf_verdict_headers(&v, buf, sizeof buf, &len) == RF_OK);
  CHECK(strcmp(buf, "RateLimit-Policy: \"account\";q=30;w=60\r\nRateLimit: \"account\";r=29;t=2\r\n") ==
        0);
  CHECK(v.retry_after_ms == 0 && v.retry_after_secs == 0);

  /* Settling: once, and only on the guard that made the verdict. */
  rf_guard *other = tight_guard();
  CHECK(rf_settle(other, &v, 10) == RF_ERR_INVALID);
  CHECK(contains(rf_last_error(), "another guard"));
  CHECK(rf_settle(g, &v, 10) == RF_OK);
  CHECK(rf_settle(g, &v, 10) == RF_ERR_INVALID);
  rf_verdict zero;
  memset(&zero, 0, sizeof zero);
  CHECK(rf_settle(g, &zero, 10) == RF_ERR_INVALID);
  CHECK(rf_settle(NULL, &v, 10) == RF_ERR_NULL);
  CHECK(rf_settle(g, NULL, 10) == RF_ERR_NULL);
  rf_guard_free(other);

  /* Bad requests: NULL pointers, bad UTF-8 anywhere; the verdict is left alone. */
  memset(&v, 0xAB, sizeof v);
  rf_verdict before = v;
  rf_request bad = request("acct", &one, 1, "prompt");
  CHECK(rf_check(NULL, &bad, &v) == RF_ERR_NULL);
  CHECK(strcmp(rf_last_error(), "rf_check: `guard` is NULL") == 0);
  CHECK(rf_check(g, NULL, &v) == RF_ERR_NULL);
  CHECK(rf_check(g, &bad, NULL) == RF_ERR_NULL);
  CHECK(strcmp(rf_last_error(), "rf_check: `verdict` is NULL") == 0);
  bad.account = NULL;
  CHECK(rf_check(g, &bad, &v) == RF_ERR_NULL);
  CHECK(strcmp(rf_last_error(), "rf_check: `request.account` is NULL") == 0);
  bad = request("acct\xff", &one, 1, "prompt");
  CHECK(rf_check(g, &bad, &v) == RF_ERR_UTF8);
  CHECK(strcmp(rf_last_error(),
               "rf_check: `request.account` is not valid UTF-8 (bad byte at offset 4)") == 0);
  bad = request("acct", &one, 1, "caf\xc3");
  CHECK(rf_check(g, &bad, &v) == RF_ERR_UTF8);
  CHECK(contains(rf_last_error(), "`request.prompt` is not valid UTF-8 (bad byte at offset 3)"));
  bad = request("acct", &one, 1, NULL);
  bad.system = "\x80";
  bad.system_len = 1;
  CHECK(rf_check(g, &bad, &v) == RF_ERR_UTF8);
  CHECK(contains(rf_last_error(), "`request.system`"));
  bad = request("acct", &one, 1, NULL);
  bad.model = "gpt\xfe";
  bad.model_len = 4;
  CHECK(rf_check(g, &bad, &v) == RF_ERR_UTF8);
  CHECK(contains(rf_last_error(), "`request.model`"));
  rf_fingerprint fps[2] = {fp("ip", "192.0.2.1"), fp("ja4", "t13\xe2\x82")};
  bad = request("acct", fps, 2, NULL);
  CHECK(rf_check(g, &bad, &v) == RF_ERR_UTF8);
  CHECK(contains(rf_last_error(), "`request.fingerprints[1].value` is not valid UTF-8"));
  fps[1].kind = NULL;
  CHECK(rf_check(g, &bad, &v) == RF_ERR_NULL);
  CHECK(contains(rf_last_error(), "`request.fingerprints[1].kind` is NULL"));
  bad = request("acct", NULL, 2, NULL);
  CHECK(rf_check(g, &bad, &v) == RF_ERR_NULL);
  CHECK(contains(rf_last_error(), "`request.fingerprints` is NULL"));

  /* Requests that break the request contract every binding shares:
   * RF_ERR_INVALID with ringfence's message, naming the field. */
  bad = request("", &one, 1, NULL);
  CHECK(rf_check(g, &bad, &v) == RF_ERR_INVALID);
  CHECK(strcmp(rf_last_error(),
               "rf_check: `account` is empty: every request must name its account") == 0);
  fps[1] = fp("", "value");
  bad = request("acct", fps, 2, NULL);
  CHECK(rf_check(g, &bad, &v) == RF_ERR_INVALID);
  CHECK(contains(rf_last_error(), "`fingerprints[1]` has an empty kind"));
  static char long_account[4097];
  memset(long_account, 'a', sizeof long_account);
  bad = request("acct", NULL, 0, NULL);
  bad.account = long_account;
  bad.account_len = sizeof long_account;
  CHECK(rf_check(g, &bad, &v) == RF_ERR_INVALID);
  CHECK(contains(rf_last_error(), "`account` is 4097 bytes long"));
  bad.account_len = 4096;
  CHECK(memcmp(&v, &before, sizeof v) == 0);
  CHECK(rf_check(g, &bad, &v) == RF_OK);

  /* Strings are pointer + length: a NUL inside is an ordinary byte, and
   * none is needed at the end. */
  const char not_terminated[4] = {'a', 'c', 'c', 't'};
  rf_request nt = request("x", NULL, 0, NULL);
  nt.account = not_terminated;
  nt.account_len = sizeof not_terminated;
  CHECK(rf_check(g, &nt, &v) == RF_OK && v.decision == RF_DECISION_ALLOW);
  nt.account = "a\0b";
  nt.account_len = 3;
  CHECK(rf_check(g, &nt, &v) == RF_OK);
  /* More fingerprints than fit on the stack, up to the most a request
   * may have (64), and one more. */
  rf_fingerprint many[65];
  char values[65][24];
  for (int i = 0; i < 65; i++) {
    snprintf(values[i], sizeof values[i], "dev-%d", i);
    many[i] = fp("device", values[i]);
  }
  rf_request m = request("many", many, 40, NULL);
  CHECK(rf_check(g, &m, &v) == RF_OK && v.decision == RF_DECISION_ALLOW);
  m.fingerprint_count = 64;
  CHECK(rf_check(g, &m, &v) == RF_OK && v.decision == RF_DECISION_ALLOW);
  m.fingerprint_count = 65;
  CHECK(rf_check(g, &m, &v) == RF_ERR_INVALID);
  CHECK(strcmp(rf_last_error(), "rf_check: `fingerprints` has 65 entries; the most is 64") == 0);
  m.fingerprint_count = 40;
  many[39].value = "\xff";
  many[39].value_len = 1;
  CHECK(rf_check(g, &m, &v) == RF_ERR_UTF8);
  CHECK(contains(rf_last_error(), "`request.fingerprints[39].value`"));

  CHECK(rf_guard_maintain(g) == RF_OK);
  CHECK(rf_guard_maintain(NULL) == RF_ERR_NULL);
  rf_guard_free(g);
}

/* A denied cluster: deny_at reached, suspected_distillation policy. */
static void test_deny(void) {
  rf_guard *g = NULL;
  char config[1024];
  snprintf(config, sizeof config, "%s", TIGHT);
  char *deny = strstr(config, "deny_at = 1.0");
  if (deny) memcpy(deny, "deny_at = 0.3", 13);
  CHECK(rf_guard_from_toml(config, strlen(config), &g) == RF_OK);
  rf_verdict v, denied;
  int n_denied = 0;
  for (int round = 0; round < 6; round++) {
    for (int i = 0; i < 6; i++) {
      char account[32], prompt[96];
      snprintf(account, sizeof account, "op-%d", i);
      snprintf(prompt, sizeof prompt, "Show your reasoning step by step: %d + %d", round, i);
      rf_fingerprint fps[1] = {fp("payment", "card-9")};
      rf_request r = request(account, fps, 1, prompt);
      CHECK(rf_check(g, &r, &v) == RF_OK);
      if (v.decision == RF_DECISION_DENY) {
        n_denied++;
        denied = v;
      }
    }
  }
  CHECK(n_denied > 0);
  if (n_denied > 0) {
    char buf[256];
    CHECK(denied.reasons == RF_REASON_SUSPECTED_DISTILLATION);
    CHECK(denied.policy == RF_POLICY_SUSPECTED_DISTILLATION);
    CHECK(denied.retry_after_ms == 3600 * 1000 && denied.retry_after_secs == 3600);
    CHECK(rf_verdict_headers(&denied, buf, sizeof buf, NULL) == RF_OK);
    CHECK(strcmp(buf,
                 "RateLimit-Policy: \"suspected_distillation\";q=0;w=3600\r\n"
                 "RateLimit: \"suspected_distillation\";r=0;t=3600\r\n"
                 "Retry-After: 3600\r\n") == 0);
  }
  rf_guard_free(g);
}

static void test_snapshots_and_explain(const char *dir) {
  rf_guard *g = tight_guard();
  rf_verdict v;
  for (int i = 0; i < 5; i++) {
    char account[32];
    snprintf(account, sizeof account, "acct-%d", i);
    rf_fingerprint f = fp("payment", "card-shared");
    rf_request r = request(account, &f, 1, NULL);
    CHECK(rf_check(g, &r, &v) == RF_OK);
  }

  /* To a buffer and back. */
  rf_bytes *bytes = (rf_bytes *)&bytes;
  CHECK(rf_guard_snapshot(NULL, &bytes) == RF_ERR_NULL && bytes == NULL);
  CHECK(rf_guard_snapshot(g, NULL) == RF_ERR_NULL);
  CHECK(rf_guard_snapshot(g, &bytes) == RF_OK && bytes != NULL);
  const uint8_t *data = NULL;
  size_t len = 0;
  CHECK(rf_bytes_data(bytes, &data, &len) == RF_OK && data != NULL && len > 100);
  CHECK(rf_bytes_data(NULL, &data, &len) == RF_ERR_NULL);
  CHECK(rf_bytes_data(bytes, NULL, &len) == RF_ERR_NULL);
  CHECK(rf_bytes_data(bytes, &data, NULL) == RF_ERR_NULL);
  uint8_t *copy = malloc(len);
  memcpy(copy, data, len);

  rf_guard *fresh = tight_guard();
  copy[len / 2] ^= 0x20; /* corrupt */
  CHECK(rf_guard_restore(fresh, copy, len) == RF_ERR_SNAPSHOT);
  CHECK(contains(rf_last_error(), "rf_guard_restore: cannot restore the guard snapshot"));
  copy[len / 2] ^= 0x20;
  CHECK(rf_guard_restore(fresh, copy, len / 3) == RF_ERR_SNAPSHOT); /* truncated */
  CHECK(rf_guard_restore(fresh, copy, 0) == RF_ERR_SNAPSHOT);
  CHECK(rf_guard_restore(fresh, NULL, 0) == RF_ERR_NULL);
  CHECK(rf_guard_restore(NULL, copy, len) == RF_ERR_NULL);
  rf_guard *bigger = NULL;
  CHECK(rf_guard_new_for_accounts(5000, &bigger) == RF_OK);
  CHECK(rf_guard_restore(bigger, copy, len) == RF_ERR_SNAPSHOT);
  rf_guard_free(bigger);
  CHECK(rf_guard_restore(fresh, copy, len) == RF_OK);
  free(copy);
  rf_bytes_free(bytes);
  rf_bytes_free(NULL);

  /* Explain, into a caller buffer. */
  char buf[2048];
  size_t text_len = 0;
  CHECK(rf_guard_explain(fresh, S("acct-2"), NULL, 0, &text_len) == RF_ERR_BUFFER_TOO_SMALL);
  CHECK(text_len > 20 && text_len < sizeof buf);
  CHECK(rf_guard_explain(fresh, S("acct-2"), buf, text_len, &text_len) == RF_ERR_BUFFER_TOO_SMALL);
  CHECK(rf_guard_explain(fresh, S("acct-2"), buf, text_len + 1, &text_len) == RF_OK);
  CHECK(strlen(buf) == text_len);
  CHECK(strncmp(buf, "account acct-2 is in cluster ", 29) == 0);
  CHECK(contains(buf, " of 5 accounts"));
  CHECK(contains(buf, "shares payment \"card-shared\""));
  CHECK(rf_guard_explain(fresh, S("nobody"), buf, sizeof buf, &text_len) == RF_ERR_NOT_FOUND);
  CHECK(contains(rf_last_error(), "nobody"));
  CHECK(rf_guard_explain(fresh, S("acct-\xff"), buf, sizeof buf, NULL) == RF_ERR_UTF8);
  CHECK(rf_guard_explain(fresh, NULL, 0, buf, sizeof buf, NULL) == RF_ERR_NULL);
  CHECK(rf_guard_explain(NULL, S("acct-2"), buf, sizeof buf, NULL) == RF_ERR_NULL);
  CHECK(rf_guard_explain(fresh, S("acct-2"), NULL, 100, NULL) == RF_ERR_NULL);

  /* Explain, into an owned string. */
  rf_string *s = (rf_string *)&s;
  CHECK(rf_guard_explain_string(fresh, S("nobody"), &s) == RF_ERR_NOT_FOUND && s == NULL);
  CHECK(rf_guard_explain_string(fresh, S("acct-2"), NULL) == RF_ERR_NULL);
  CHECK(rf_guard_explain_string(fresh, S("acct-2"), &s) == RF_OK && s != NULL);
  const char *text = NULL;
  size_t n = 0;
  CHECK(rf_string_data(s, &text, &n) == RF_OK && strcmp(text, buf) == 0 && n == text_len);
  CHECK(rf_string_data(s, &text, NULL) == RF_OK);
  CHECK(rf_string_data(NULL, &text, &n) == RF_ERR_NULL);
  CHECK(rf_string_data(s, NULL, &n) == RF_ERR_NULL);
  rf_string_free(s);
  rf_string_free(NULL);

  /* Metrics, in the Prometheus text format. */
  rf_string *ms = (rf_string *)&ms;
  CHECK(rf_guard_metrics(NULL, &ms) == RF_ERR_NULL && ms == NULL);
  CHECK(rf_guard_metrics(fresh, NULL) == RF_ERR_NULL);
  CHECK(rf_guard_metrics(fresh, &ms) == RF_OK && ms != NULL);
  CHECK(rf_string_data(ms, &text, &n) == RF_OK && n == strlen(text));
  CHECK(contains(text, "# TYPE ringfence_requests_total counter\n"));
  CHECK(contains(text, "ringfence_table_entries{table=\"accounts\"} "));
  rf_string_free(ms);

  /* Fleet counts: a lone guard has none; a [fleet] table makes a node (its
     quotas in this process when the url is empty). */
  rf_string *fs = (rf_string *)&fs;
  CHECK(rf_guard_fleet_stats(fresh, &fs) == RF_ERR_INVALID && fs == NULL);
  CHECK(contains(rf_last_error(), "not a fleet node"));
  CHECK(rf_guard_fleet_stats(fresh, NULL) == RF_ERR_NULL);
  rf_guard *fleet_node = NULL;
  CHECK(rf_guard_from_toml(S("[fleet]\nnode = \"edge-1\"\nnodes = 2\n"), &fleet_node) == RF_OK);
  CHECK(rf_guard_fleet_stats(fleet_node, &fs) == RF_OK && fs != NULL);
  CHECK(rf_string_data(fs, &text, NULL) == RF_OK && contains(text, "\"node\": \"edge-1\""));
  CHECK(contains(text, "\"quotas\": {") && contains(text, "\"evidence\": {"));
  rf_string_free(fs);
  rf_guard_free(fleet_node);

  /* To a file and back. */
  char path[4096];
  snprintf(path, sizeof path, "%s/guard.snapshot", dir);
  CHECK(rf_guard_snapshot_file(g, path, strlen(path)) == RF_OK);
  rf_guard *from_file = tight_guard();
  CHECK(rf_guard_restore_file(from_file, path, strlen(path)) == RF_OK);
  CHECK(rf_guard_explain(from_file, S("acct-4"), buf, sizeof buf, NULL) == RF_OK);
  CHECK(contains(buf, " of 5 accounts"));
  rf_guard_free(from_file);
  CHECK(rf_guard_snapshot_file(NULL, path, strlen(path)) == RF_ERR_NULL);
  CHECK(rf_guard_snapshot_file(g, NULL, 0) == RF_ERR_NULL);
  CHECK(rf_guard_snapshot_file(g, S("/nonexistent-dir/x/guard.snapshot")) == RF_ERR_IO);
  CHECK(contains(rf_last_error(), "cannot write the snapshot to \"/nonexistent-dir/x/guard.snapshot\""));
  from_file = tight_guard();
  snprintf(path, sizeof path, "%s/no-such.snapshot", dir);
  CHECK(rf_guard_restore_file(from_file, path, strlen(path)) == RF_ERR_IO);
  snprintf(path, sizeof path, "%s/guard.toml", dir); /* not a snapshot */
  CHECK(rf_guard_restore_file(from_file, path, strlen(path)) == RF_ERR_SNAPSHOT);
  CHECK(rf_guard_restore_file(NULL, path, strlen(path)) == RF_ERR_NULL);
  CHECK(rf_guard_restore_file(from_file, "\xff", 1) == RF_ERR_UTF8);
  rf_guard_free(from_file);

  /* Merging another node's snapshot. */
  rf_guard *node = tight_guard();
  for (int i = 5; i < 8; i++) {
    char account[32];
    snprintf(account, sizeof account, "acct-%d", i);
    rf_fingerprint f = fp("payment", "card-shared");
    rf_request r = request(account, &f, 1, NULL);
    CHECK(rf_check(node, &r, &v) == RF_OK);
  }
  rf_bytes *theirs = NULL;
  CHECK(rf_guard_snapshot(node, &theirs) == RF_OK);
  CHECK(rf_bytes_data(theirs, &data, &len) == RF_OK);
  CHECK(rf_guard_merge(g, data, len) == RF_OK);
  CHECK(rf_guard_explain(g, S("acct-0"), buf, sizeof buf, NULL) == RF_OK);
  CHECK(contains(buf, " of 8 accounts"));
  CHECK(rf_guard_merge(g, data, len / 2) == RF_ERR_SNAPSHOT);
  CHECK(rf_guard_merge(g, NULL, 0) == RF_ERR_NULL);
  CHECK(rf_guard_merge(NULL, data, len) == RF_ERR_NULL);
  rf_bytes_free(theirs);
  rf_guard_free(node);
  rf_guard_free(fresh);
  rf_guard_free(g);
}

/* Many threads on one guard; each thread's last error is its own. */
struct worker {
  rf_guard *guard;
  int id;
  int allowed;
  int errors_ok;
};

static void *work(void *arg) {
  struct worker *w = arg;
  for (int i = 0; i < 300; i++) {
    char account[32], ip[32];
    snprintf(account, sizeof account, "t%d-%d", w->id, i % 20);
    snprintf(ip, sizeof ip, "192.0.2.%d", i % 200);
    rf_fingerprint f = fp("ip", ip);
    rf_request r = request(account, &f, 1, "Summarise the attached text.");
    rf_verdict v;
    if (rf_check(w->guard, &r, &v) == RF_OK && v.decision == RF_DECISION_ALLOW) {
      w->allowed++;
      rf_settle(w->guard, &v, 40);
    }
  }
  char message[32];
  snprintf(message, sizeof message, "t%d-\xff", w->id);
  rf_fingerprint f = fp("ip", "192.0.2.1");
  rf_request bad = request(message, &f, 1, NULL);
  rf_verdict v;
  w->errors_ok = rf_check(w->guard, &bad, &v) == RF_ERR_UTF8 &&
                 contains(rf_last_error(), "`request.account` is not valid UTF-8");
  return NULL;
}

static void start_workers(rf_guard *g, struct worker workers[4], pthread_t threads[4]) {
  for (int i = 0; i < 4; i++) {
    workers[i].guard = g;
    workers[i].id = i;
    workers[i].allowed = 0;
    workers[i].errors_ok = 0;
    CHECK(pthread_create(&threads[i], NULL, work, &workers[i]) == 0);
  }
}

static void test_threads(void) {
  rf_guard *g = NULL;
  CHECK(rf_guard_from_toml(S("account_requests_per_minute = 1000000\nlimiter_capacity = 4096\n"
                             "[link]\nmax_accounts = 1024\nmax_values = 4096\n"
                             "max_templates = 1024\nmax_pairs = 1024\n"),
                           &g) == RF_OK);
  CHECK(rf_guard_maintain(NULL) == RF_ERR_NULL); /* this thread's message */
  struct worker workers[4];
  pthread_t threads[4];
  start_workers(g, workers, threads);
  for (int i = 0; i < 4; i++) {
    pthread_join(threads[i], NULL);
    CHECK(workers[i].allowed == 300);
    CHECK(workers[i].errors_ok);
  }
  CHECK(strcmp(rf_last_error(), "rf_guard_maintain: `guard` is NULL") == 0);
  rf_guard_free(g);
}

/* Recording in the background: the same workers, then a flush that leaves
   nothing waiting. */
static void test_background(void) {
  rf_guard *g = NULL;
  CHECK(rf_guard_from_toml(S("account_requests_per_minute = 1000000\nlimiter_capacity = 4096\n"
                             "[observe]\nmode = \"background\"\nqueue = 64\n"
                             "[link]\nmax_accounts = 1024\nmax_values = 4096\n"
                             "max_templates = 1024\nmax_pairs = 1024\n"),
                           &g) == RF_OK);
  struct worker workers[4];
  pthread_t threads[4];
  start_workers(g, workers, threads);
  for (int i = 0; i < 4; i++) {
    CHECK(pthread_join(threads[i], NULL) == 0);
    CHECK(workers[i].allowed == 300);
  }
  uint64_t backlog = 99, overflowed = 99;
  CHECK(rf_guard_flush(g, &backlog, &overflowed) == RF_OK);
  /* The queues hold 64; the one observer thread may have taken one more
     and not yet recorded it (seen on a loaded machine under ASan). */
  CHECK(backlog <= 64 + 1);
  CHECK(overflowed <= 1200);
  CHECK(rf_guard_flush(g, &backlog, NULL) == RF_OK);
  CHECK(backlog == 0);
  CHECK(rf_guard_flush(g, NULL, NULL) == RF_OK);
  CHECK(rf_guard_flush(NULL, NULL, NULL) == RF_ERR_NULL);
  CHECK(strcmp(rf_last_error(), "rf_guard_flush: `guard` is NULL") == 0);
  rf_guard_free(g);
}

/* Threat intelligence: export, import, sightings (test_intel). */
#include "test_api_intel.inc"

int main(int argc, char **argv) {
  const char *dir = argc > 1 ? argv[1] : ".";
  test_version_and_names();
  test_constructors(dir);
  test_check_and_headers();
  test_deny();
  test_snapshots_and_explain(dir);
  test_threads();
  test_background();
  test_intel(dir);
  printf("test_api: %d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
