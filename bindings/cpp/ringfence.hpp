// ringfence.hpp: a header-only C++17 wrapper of the ringfence C API
// (include/ringfence.h).
//
//  - Ownership: ringfence::Guard owns its rf_guard (move-only, freed by
//    rf_guard_free); owned results (snapshots, explanations) are copied into
//    std::vector / std::string and freed at once, exceptions or not.
//  - Errors: every failing call throws ringfence::Error, which carries the
//    rf_status and the message rf_last_error() gave.
//  - Strings: std::string_view in (no NUL needed), std::string out.
//  - Threads: one Guard may be used from many threads at once (its methods
//    are const); a Verdict is a plain value.
//
//     ringfence::Guard guard = ringfence::Guard::from_toml("deny_at = 0.7");
//     rf_fingerprint fps[] = {ringfence::fingerprint("ip", client_ip)};
//     ringfence::Request req;
//     req.account = api_key;
//     req.with_fingerprints(fps);
//     req.prompt = prompt;
//     req.input_tokens = 120;
//     req.max_tokens = 1024;
//     ringfence::Verdict v = guard.check(req);
//     if (!v.allowed()) { /* answer 429 with v.headers() */ }
//     else { /* forward; then */ guard.settle(v, output_tokens); }

#ifndef RINGFENCE_HPP
#define RINGFENCE_HPP

#include "ringfence.h"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ringfence {

/// A failed call: the status it returned and what was wrong.
class Error : public std::runtime_error {
 public:
  Error(rf_status status, const std::string& message)
      : std::runtime_error(message), status_(status) {}

  /// The status code (RF_ERR_*).
  rf_status status() const noexcept { return status_; }

 private:
  rf_status status_;
};

namespace detail {

/// Throws the Error for a status other than RF_OK, with this thread's
/// last-error message (copied before anything else can replace it).
inline void check(rf_status status) {
  if (status != RF_OK) throw Error(status, rf_last_error());
}

/// A view's pointer, never NULL: the C API reads NULL as "absent" or as an
/// error, while an empty std::string_view is simply empty.
inline const char* data(std::string_view s) noexcept { return s.data() ? s.data() : ""; }

struct GuardFree {
  void operator()(rf_guard* g) const noexcept { rf_guard_free(g); }
};
struct BytesFree {
  void operator()(rf_bytes* b) const noexcept { rf_bytes_free(b); }
};
struct StringFree {
  void operator()(rf_string* s) const noexcept { rf_string_free(s); }
};

/// The text of a string the library allocated, which it then frees.
inline std::string take_string(rf_string* raw) {
  std::unique_ptr<rf_string, StringFree> owned(raw);
  const char* text = nullptr;
  std::size_t len = 0;
  check(rf_string_data(owned.get(), &text, &len));
  return std::string(text, len);
}

}  // namespace detail

/// The version of the linked library, "MAJOR.MINOR.PATCH".
inline std::string_view version() noexcept { return rf_version(); }

/// Input tokens estimated from the bytes of a request's text (prompt,
/// system prompt and every message together), for a caller with no
/// tokenizer count: ringfence's one estimate, the same in every binding.
inline std::uint32_t estimate_tokens(std::size_t text_bytes) noexcept {
  return rf_estimate_tokens(text_bytes);
}

/// The names of the signals a cluster's score is computed from ("volume",
/// "cot", ..., "score"), in ringfence's order; a signal ringfence adds
/// appears here with no change to this header.
inline std::vector<std::string_view> signal_names() {
  std::vector<std::string_view> names;
  std::size_t n = rf_signal_count();
  names.reserve(n);
  for (std::size_t i = 0; i < n; i++) {
    const char* name = rf_signal_name(i);
    if (name) names.emplace_back(name);
  }
  return names;
}

/// A fingerprint viewing the caller's strings, which must outlive its use.
inline rf_fingerprint fingerprint(std::string_view kind, std::string_view value) noexcept {
  return rf_fingerprint{detail::data(kind), kind.size(), detail::data(value), value.size()};
}

/// One request. Views the caller's strings and fingerprints, which must
/// outlive the check.
struct Request {
  std::string_view account;
  const rf_fingerprint* fingerprints = nullptr;
  std::size_t fingerprint_count = 0;
  std::optional<std::string_view> prompt;
  std::optional<std::string_view> system;
  std::optional<std::string_view> model;
  std::uint32_t input_tokens = 0;
  std::uint32_t max_tokens = 0;

  /// Points at a contiguous container (array, std::vector, std::array) of
  /// rf_fingerprint.
  template <class Container>
  Request& with_fingerprints(const Container& fps) noexcept {
    fingerprints = std::data(fps);
    fingerprint_count = std::size(fps);
    return *this;
  }

  /// The C struct, viewing the same memory.
  rf_request raw() const noexcept {
    rf_request r{};
    r.account = detail::data(account);
    r.account_len = account.size();
    r.fingerprints = fingerprints;
    r.fingerprint_count = fingerprint_count;
    if (prompt) {
      r.prompt = detail::data(*prompt);
      r.prompt_len = prompt->size();
    }
    if (system) {
      r.system = detail::data(*system);
      r.system_len = system->size();
    }
    if (model) {
      r.model = detail::data(*model);
      r.model_len = model->size();
    }
    r.input_tokens = input_tokens;
    r.max_tokens = max_tokens;
    return r;
  }
};

/// The guard's answer to one request: a plain value (copyable; settle it
/// once, with Guard::settle, when the request was served).
class Verdict {
 public:
  Verdict() noexcept : raw_{} {}
  explicit Verdict(const rf_verdict& raw) noexcept : raw_(raw) {}

  /// RF_DECISION_ALLOW, RF_DECISION_THROTTLE or RF_DECISION_DENY.
  rf_decision decision() const noexcept { return raw_.decision; }
  /// Whether to serve the request.
  bool allowed() const noexcept { return raw_.decision == RF_DECISION_ALLOW; }
  /// How long to wait before trying again (0 when allowed).
  std::chrono::milliseconds retry_after() const noexcept {
    return std::chrono::milliseconds(static_cast<std::chrono::milliseconds::rep>(raw_.retry_after_ms));
  }
  /// Requests left in the binding quota.
  std::uint64_t remaining() const noexcept { return raw_.remaining; }
  /// The cluster's distillation score, 0 to 1.
  double score() const noexcept { return raw_.score; }
  /// The account's cluster.
  std::uint64_t cluster_id() const noexcept { return raw_.cluster_id; }
  /// Accounts in the cluster.
  std::uint32_t cluster_size() const noexcept { return raw_.cluster_size; }
  /// RF_REASON_* bits.
  rf_reasons reasons() const noexcept { return raw_.reasons; }
  /// Whether the reasons include `reason` (an RF_REASON_* bit).
  bool has(rf_reasons reason) const noexcept { return (raw_.reasons & reason) != 0; }
  /// The decision's name ("allow", "throttle", "deny").
  std::string_view decision_name() const noexcept { return rf_decision_str(raw_.decision); }
  /// The limit the headers describe (RF_POLICY_*).
  rf_policy policy() const noexcept { return raw_.policy; }
  /// Its name as the headers give it ("account", "cluster", ...).
  std::string_view policy_name() const noexcept { return rf_policy_str(raw_.policy); }

  /// The reasons' names ("account_limit", "cluster_limit", ...), in the
  /// order of their bits.
  std::vector<std::string> reason_names() const {
    std::vector<std::string> names;
    for (rf_reasons bit = 1; bit != 0 && bit <= raw_.reasons; bit <<= 1) {
      if (raw_.reasons & bit) names.emplace_back(rf_reason_str(bit));
    }
    return names;
  }

  /// The HTTP headers to answer with: RateLimit-Policy, RateLimit and, when
  /// refused, Retry-After, as (name, value) pairs.
  std::vector<std::pair<std::string, std::string>> headers() const {
    char buf[256];
    std::size_t len = 0;
    std::string text;
    rf_status s = rf_verdict_headers(&raw_, buf, sizeof buf, &len);
    if (s == RF_ERR_BUFFER_TOO_SMALL) {
      text.resize(len + 1);
      detail::check(rf_verdict_headers(&raw_, text.data(), text.size(), &len));
      text.resize(len);
    } else {
      detail::check(s);
      text.assign(buf, len);
    }
    std::vector<std::pair<std::string, std::string>> out;
    std::size_t start = 0;
    while (start < text.size()) {
      std::size_t end = text.find("\r\n", start);
      if (end == std::string::npos) end = text.size();
      std::string_view line(text.data() + start, end - start);
      std::size_t colon = line.find(": ");
      if (colon != std::string_view::npos) {
        out.emplace_back(std::string(line.substr(0, colon)), std::string(line.substr(colon + 2)));
      }
      start = end + 2;
    }
    return out;
  }

  /// The C struct.
  const rf_verdict& raw() const noexcept { return raw_; }
  rf_verdict& raw() noexcept { return raw_; }

 private:
  rf_verdict raw_;
};

/// A guard: owns an rf_guard. Move-only; safe to use from many threads at
/// once (every method is const).
class Guard {
 public:
  /// The default configuration, sized for 250,000 accounts (about 60 MB).
  Guard() {
    rf_guard* g = nullptr;
    detail::check(rf_guard_new(&g));
    guard_.reset(g);
  }

  /// The default configuration, sized for `accounts` tracked accounts.
  static Guard for_accounts(std::size_t accounts) {
    rf_guard* g = nullptr;
    detail::check(rf_guard_new_for_accounts(accounts, &g));
    return Guard(g);
  }

  /// From a TOML configuration; throws Error (RF_ERR_CONFIG) naming the bad key.
  static Guard from_toml(std::string_view toml) {
    rf_guard* g = nullptr;
    detail::check(rf_guard_from_toml(detail::data(toml), toml.size(), &g));
    return Guard(g);
  }

  /// From a TOML configuration file.
  static Guard from_file(std::string_view path) {
    rf_guard* g = nullptr;
    detail::check(rf_guard_from_file(detail::data(path), path.size(), &g));
    return Guard(g);
  }

  /// Decides one request. A request that breaks the request contract (an
  /// empty account, too many fingerprints, ...) throws Error
  /// (RF_ERR_INVALID) naming the field.
  Verdict check(const Request& request) const {
    rf_request r = request.raw();
    Verdict v;
    detail::check(rf_check(guard_.get(), &r, &v.raw()));
    return v;
  }

  /// Settles a request's actual output tokens (once per verdict). Settling a
  /// refused verdict does nothing (but marks it settled).
  void settle(Verdict& verdict, std::uint32_t output_tokens) const {
    detail::check(rf_settle(guard_.get(), &verdict.raw(), output_tokens));
  }

  /// Why `account` is treated as it is; std::nullopt for an account the
  /// guard has never seen.
  std::optional<std::string> explain(std::string_view account) const {
    rf_string* raw = nullptr;
    rf_status s = rf_guard_explain_string(guard_.get(), detail::data(account), account.size(), &raw);
    if (s == RF_ERR_NOT_FOUND) return std::nullopt;
    detail::check(s);
    return detail::take_string(raw);
  }

  /// The guard's counters and gauges in the Prometheus text format, ready
  /// to serve at /metrics.
  std::string metrics() const {
    rf_string* raw = nullptr;
    detail::check(rf_guard_metrics(guard_.get(), &raw));
    return detail::take_string(raw);
  }

  /// A fleet node's counts (quotas and shared evidence) as JSON text; throws
  /// for a guard whose configuration has no [fleet] table.
  std::string fleet_stats() const {
    rf_string* raw = nullptr;
    detail::check(rf_guard_fleet_stats(guard_.get(), &raw));
    return detail::take_string(raw);
  }

  /// Everything the guard remembers, as bytes.
  std::vector<std::uint8_t> snapshot() const {
    rf_bytes* raw = nullptr;
    detail::check(rf_guard_snapshot(guard_.get(), &raw));
    std::unique_ptr<rf_bytes, detail::BytesFree> owned(raw);
    const std::uint8_t* data = nullptr;
    std::size_t len = 0;
    detail::check(rf_bytes_data(owned.get(), &data, &len));
    return std::vector<std::uint8_t>(data, data + len);
  }

  /// Writes the snapshot to a file (atomically replaced).
  void snapshot_to_file(std::string_view path) const {
    detail::check(rf_guard_snapshot_file(guard_.get(), detail::data(path), path.size()));
  }

  /// Restores a snapshot into this fresh guard.
  void restore(const std::uint8_t* data, std::size_t len) const {
    detail::check(rf_guard_restore(guard_.get(), data, len));
  }
  void restore(const std::vector<std::uint8_t>& bytes) const { restore(bytes.data(), bytes.size()); }

  /// Restores the snapshot in a file into this fresh guard.
  void restore_from_file(std::string_view path) const {
    detail::check(rf_guard_restore_file(guard_.get(), detail::data(path), path.size()));
  }

  /// Folds another node's snapshot in.
  void merge(const std::uint8_t* data, std::size_t len) const {
    detail::check(rf_guard_merge(guard_.get(), data, len));
  }
  void merge(const std::vector<std::uint8_t>& bytes) const { merge(bytes.data(), bytes.size()); }

  /// Forgets expired evidence and rebuilds the clusters now.
  void maintain() const { detail::check(rf_guard_maintain(guard_.get())); }

  /// With `[observe] mode = "background"`: records every request still
  /// waiting for the observer threads; returns how many were waiting.
  std::uint64_t flush() const {
    std::uint64_t backlog = 0;
    detail::check(rf_guard_flush(guard_.get(), &backlog, nullptr));
    return backlog;
  }

  /// The handle, still owned by this Guard (NULL once moved from).
  rf_guard* get() const noexcept { return guard_.get(); }

 private:
  explicit Guard(rf_guard* g) noexcept : guard_(g) {}

  std::unique_ptr<rf_guard, detail::GuardFree> guard_;
};

}  // namespace ringfence

#endif  // RINGFENCE_HPP
