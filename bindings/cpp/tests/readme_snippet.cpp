#include <iostream>

#include "ringfence.hpp"

int main() {
  try {
    ringfence::Guard guard = ringfence::Guard::from_toml("deny_at = 0.7\n[link]\nmax_accounts = 10000\n");
    rf_fingerprint fingerprints[] = {ringfence::fingerprint("ip", "203.0.113.7"),
                                     ringfence::fingerprint("ja4", "t13d1516h2_8daaf6152771")};
    ringfence::Request request;  // views: the strings must outlive the check
    request.account = "acct-42";
    request.with_fingerprints(fingerprints);
    request.prompt = "Explain step by step how a transformer computes attention.";
    request.input_tokens = 14;
    request.max_tokens = 1024;

    ringfence::Verdict verdict = guard.check(request);
    if (verdict.allowed()) {
      std::cout << "allowed\n";
      guard.settle(verdict, 380);  // after the response, with its real usage
    } else {
      for (const auto& [name, value] : verdict.headers()) std::cout << name << ": " << value << "\n";
    }
  } catch (const ringfence::Error& e) {  // carries the rf_status and the message
    std::cerr << "ringfence: " << e.what() << " (status " << e.status() << ")\n";
    return 1;
  }
}
