/*
 * include/ringfence.h compiles on its own, with nothing included before it,
 * as C (C99 and later) and as C++ (compiled with -x c++), once or twice
 * (with -DRF_INCLUDE_TWICE). Built by bindings/c/run-tests.sh with -Wall
 * -Wextra -pedantic -Werror; never run.
 */
#include "ringfence.h"
#ifdef RF_INCLUDE_TWICE
#include "ringfence.h"
#endif

/* Every type and constant is usable. */
static rf_status use_everything(rf_guard *guard, rf_request *request, rf_verdict *verdict) {
  rf_fingerprint fingerprint = {"ip", 2, "192.0.2.1", 9};
  rf_bytes *bytes = 0;
  rf_string *string = 0;
  rf_decision decision = RF_DECISION_ALLOW + RF_DECISION_THROTTLE + RF_DECISION_DENY;
  rf_reasons reasons = RF_REASON_ACCOUNT_LIMIT | RF_REASON_CLUSTER_LIMIT |
                       RF_REASON_FINGERPRINT_LIMIT | RF_REASON_SUSPECTED_DISTILLATION |
                       RF_REASON_SHARED_INDICATOR;
  rf_policy policy = RF_POLICY_ACCOUNT + RF_POLICY_CLUSTER + RF_POLICY_FINGERPRINT +
                     RF_POLICY_SUSPECTED_DISTILLATION;
  rf_tlp tlp = RF_TLP_CLEAR + RF_TLP_GREEN + RF_TLP_AMBER + RF_TLP_AMBER_STRICT + RF_TLP_RED;
  rf_intel_options options = {0, 0, 0, 0, 0.0, -1.0, 0, RF_TLP_AMBER};
  rf_import_report report = {0, 0, 0, 0};
  (void)fingerprint;
  (void)bytes;
  (void)string;
  (void)decision;
  (void)reasons;
  (void)policy;
  (void)tlp;
  (void)options;
  (void)report;
  (void)sizeof(rf_settlement);
  return rf_check(guard, request, verdict);
}

int main(void) {
  const char *version = RF_VERSION;
  (void)version;
  (void)use_everything;
#if !defined(RF_VERSION_NUMBER) || RF_VERSION_NUMBER < 0
#error "RF_VERSION_NUMBER is not a number that #if can compare"
#endif
  return (int)RF_OK;
}
