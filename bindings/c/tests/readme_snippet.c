#include <stdio.h>
#include <string.h>

#include "ringfence.h"

int main(void) {
  /* A guard from a TOML configuration (every key optional). */
  const char *config = "deny_at = 0.7\n[link]\nmax_accounts = 10000\n";
  rf_guard *guard = NULL;
  if (rf_guard_from_toml(config, strlen(config), &guard) != RF_OK) {
    fprintf(stderr, "ringfence: %s\n", rf_last_error());
    return 1;
  }

  /* One request: strings are pointer + length, UTF-8, borrowed for the call. */
  const char *account = "acct-42", *ip = "203.0.113.7", *card = "card-9f2c";
  const char *prompt = "Explain step by step how a transformer computes attention.";
  rf_fingerprint fingerprints[] = {
      {"ip", 2, ip, strlen(ip)},
      {"payment", 7, card, strlen(card)},
  };
  rf_request request = {0};
  request.account = account;
  request.account_len = strlen(account);
  request.fingerprints = fingerprints;
  request.fingerprint_count = 2;
  request.prompt = prompt;
  request.prompt_len = strlen(prompt);
  request.input_tokens = 14;
  request.max_tokens = 1024;

  rf_verdict verdict; /* caller-owned; nothing to free */
  if (rf_check(guard, &request, &verdict) != RF_OK) {
    fprintf(stderr, "ringfence: %s\n", rf_last_error());
    rf_guard_free(guard);
    return 1;
  }
  if (verdict.decision == RF_DECISION_ALLOW) {
    printf("allowed (cluster of %u, score %.2f)\n", verdict.cluster_size, verdict.score);
    /* ... forward the request, then settle what the answer really used: */
    rf_settle(guard, &verdict, 380);
  } else {
    char headers[256]; /* RateLimit-Policy, RateLimit, Retry-After */
    rf_verdict_headers(&verdict, headers, sizeof headers, NULL);
    printf("HTTP/1.1 429 Too Many Requests\r\n%s\r\n", headers);
  }
  rf_guard_free(guard);
  return 0;
}
