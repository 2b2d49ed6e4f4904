// gateway_stream.hpp: the example gateway's streamed chat completions
// (gateway.cpp, which says how they are relayed and settled): StreamRelay
// reads one from the upstream on a thread of its own, through an SseScanner
// (gateway_usage.hpp), queues its bytes for the server thread that answers
// the client, and settles its verdict exactly once; RelayFinisher settles a
// relay no response owns.
//
// Included by gateway.cpp only (one translation unit); everything is inline.

#pragma once

#include "gateway_usage.hpp"
#include "ringfence.hpp"

#include <httplib.h>
#include <nlohmann/json.hpp>

#include <strings.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>

namespace gw {

// How far the upstream may be read ahead of a slow client.
inline constexpr std::size_t kMaxQueuedBytes = std::size_t{1} << 20;
// How much of a streamed request's answer that is not SSE is kept to find
// its `usage`.
inline constexpr std::size_t kMaxBodyCopy = std::size_t{4} << 20;

// One streamed chat completion, shared by the server thread answering the
// client and the thread reading the upstream: the upstream's status and
// headers, the bytes read but not yet relayed (at most kMaxQueuedBytes),
// and the verdict, settled once by finish().
class StreamRelay {
 public:
  StreamRelay(const ringfence::Guard& guard, ringfence::Verdict verdict, std::uint32_t max_tokens,
              std::string account, bool strip_usage, const std::string& upstream)
      : guard_(guard),
        verdict_(verdict),
        max_tokens_(max_tokens),
        account_(std::move(account)),
        scanner_(strip_usage),
        client_(upstream) {
    client_.set_keep_alive(false);
    client_.set_connection_timeout(5);
    client_.set_read_timeout(600);
  }

  StreamRelay(const StreamRelay&) = delete;
  StreamRelay& operator=(const StreamRelay&) = delete;

  ~StreamRelay() {
    // finish() joined it; should it not have, leave the thread to end on
    // its own (it holds this relay) rather than abort the process.
    if (thread_.joinable()) thread_.detach();
  }

  // Sends `up` upstream on a thread of its own. `self` is this relay.
  void start(httplib::Request up, const std::shared_ptr<StreamRelay>& self) {
    thread_ = std::thread([self, up = std::move(up)]() mutable { self->run(std::move(up)); });
    std::lock_guard<std::mutex> lock(mu_);
    started_ = true;
  }

  // Waits for the upstream's status and headers: true once they came,
  // false when the upstream failed first or the gateway is stopping.
  bool wait_for_headers(const std::atomic<bool>& stopping) {
    std::unique_lock<std::mutex> lock(mu_);
    while (!headers_ready_ && !upstream_done_) {
      if (stopping.load()) {
        if (ended_by_.empty()) ended_by_ = "the gateway is stopping";
        return false;
      }
      cv_.wait_for(lock, std::chrono::milliseconds(200));
    }
    return headers_ready_;
  }

  // Once wait_for_headers() said true.
  int status() const {
    std::lock_guard<std::mutex> lock(mu_);
    return status_;
  }
  httplib::Headers headers() const {
    std::lock_guard<std::mutex> lock(mu_);
    return headers_;
  }
  std::string content_type() const {
    std::lock_guard<std::mutex> lock(mu_);
    return content_type_;
  }
  bool sse() const {
    std::lock_guard<std::mutex> lock(mu_);
    return sse_;
  }
  // Why the upstream failed, once finish() returned.
  std::string error() const {
    std::lock_guard<std::mutex> lock(mu_);
    return error_;
  }

  // The chunked content provider: relays what the upstream sent since the
  // last call, waiting a little for it; when the upstream is done, settles
  // and ends the response, or aborts it (no last chunk, so the client sees a
  // cut-off answer) when the upstream broke off. A client that is gone, or
  // a gateway that is stopping, cancels the upstream request.
  bool pull(httplib::DataSink& sink, const std::atomic<bool>& stopping) {
    std::string chunk;
    bool end = false, broke = false;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait_for(lock, std::chrono::milliseconds(200),
                   [&] { return !queue_.empty() || upstream_done_ || cancelled_; });
      if (!queue_.empty()) {
        for (std::string& bytes : queue_) chunk += bytes;
        queue_.clear();
        queued_ = 0;
        cv_.notify_all();
      } else if (upstream_done_) {
        end = true;
        broke = !error_.empty();
      } else if (cancelled_) {
        return false;
      }
    }
    if (!chunk.empty()) {
      if (!sink.write(chunk.data(), chunk.size())) {
        cancel("the client went away");
        return false;
      }
      return true;
    }
    if (end) {
      finish();  // settled before the client sees the end, as a buffered answer is
      if (broke) return false;
      sink.done();
      return true;
    }
    if (stopping.load()) {
      cancel("the gateway is stopping");
      return false;
    }
    return true;  // nothing yet; asked again at once
  }

  // Ends the stream (cancelling the upstream request if it is still going),
  // waits for the upstream thread and settles the verdict. Only the first
  // call does anything; it never throws.
  void finish() noexcept {
    if (finished_.exchange(true)) return;
    try {
      {
        std::unique_lock<std::mutex> lock(mu_);
        if (started_ && !upstream_done_) {
          cancelled_ = true;
          if (ended_by_.empty()) ended_by_ = "the response ended early";
          cv_.notify_all();
          // stop() shuts the upstream socket down if a request is in flight;
          // repeated, in case the thread had not opened it yet.
          while (!upstream_done_) {
            lock.unlock();
            client_.stop();
            lock.lock();
            cv_.wait_for(lock, std::chrono::milliseconds(50), [&] { return upstream_done_; });
          }
        }
      }
      if (thread_.joinable()) thread_.join();
      settle();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "gateway: stream for %s: %s\n", account_.c_str(), e.what());
    }
  }

 private:
  // The upstream thread.
  void run(httplib::Request up) {
    std::string error;
    try {
      up.response_handler = [this](const httplib::Response& r) {
        std::lock_guard<std::mutex> lock(mu_);
        if (cancelled_) return false;
        take_head(r);
        return true;
      };
      up.content_receiver = [this](const char* data, std::size_t n, std::uint64_t, std::uint64_t) {
        std::string out;
        if (sse_) {
          scanner_.feed(data, n, out);
        } else {
          out.assign(data, n);
          if (status_ < 400 && body_.size() < kMaxBodyCopy) body_.append(data, std::min(n, kMaxBodyCopy - body_.size()));
        }
        return push(std::move(out));
      };
      httplib::Result result = client_.send(up);
      if (result) {
        std::string tail;
        if (sse_) scanner_.finish(tail);
        push(std::move(tail));
        std::lock_guard<std::mutex> lock(mu_);
        if (!headers_ready_) take_head(*result);  // e.g. a 204: no body, no response handler
      } else {
        error = httplib::to_string(result.error());
      }
    } catch (const std::exception& e) {
      error = e.what();
    }
    std::lock_guard<std::mutex> lock(mu_);
    if (!error.empty()) {
      error_ = cancelled_ ? "cancelled: " + ended_by_ : "the upstream broke off: " + error;
    }
    upstream_done_ = true;
    cv_.notify_all();
  }

  // The upstream's status and headers (mu_ held).
  void take_head(const httplib::Response& r) {
    status_ = r.status;
    headers_ = r.headers;
    content_type_ = r.get_header_value("Content-Type");
    sse_ = content_type_.size() >= 17 && strncasecmp(content_type_.c_str(), "text/event-stream", 17) == 0;
    headers_ready_ = true;
    cv_.notify_all();
  }

  // Queues bytes for the client, waiting while it is far behind; false
  // once cancelled (which stops the upstream request).
  bool push(std::string bytes) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return cancelled_ || queued_ < kMaxQueuedBytes; });
    if (cancelled_) return false;
    if (!bytes.empty()) {
      queued_ += bytes.size();
      queue_.push_back(std::move(bytes));
      cv_.notify_all();
    }
    return true;
  }

  void cancel(const char* why) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (upstream_done_ || cancelled_) return;
      cancelled_ = true;
      ended_by_ = why;
    }
    cv_.notify_all();
    client_.stop();
  }

  // After the upstream thread ended: what the stream used, settled once.
  void settle() {
    std::uint32_t output = 0;
    std::string note;  // why the stream is settled on less than its usage event
    if (!headers_ready_) {
      note = "no answer from the upstream (" + (error_.empty() ? ended_by_ : error_) + "); settled 0 tokens";
    } else if (status_ >= 400) {
      output = 0;  // an error used nothing
    } else if (!sse_) {
      json answer = json::parse(body_, nullptr, false);
      std::optional<std::uint32_t> used = output_tokens_of(answer);
      output = used ? *used : max_tokens_;
      if (!used) note = "an answer that is not SSE, without usage; settled max_tokens, " + std::to_string(output);
    } else if (scanner_.usage()) {
      output = *scanner_.usage();
    } else {
      output = scanner_.estimate();
      std::string why = !ended_by_.empty()  ? ended_by_
                        : !error_.empty()   ? error_
                        : scanner_.done()   ? "the upstream sent [DONE] without it"
                                            : "the upstream ended the stream without it";
      note = "no usage event (" + why + "); settled " + std::to_string(output) + " tokens, the estimate from " +
             std::to_string(scanner_.text_deltas()) + " text deltas (" + std::to_string(scanner_.text_bytes()) +
             " bytes)";
    }
    if (sse_ && (scanner_.not_json() || scanner_.oversized() || scanner_.errors())) {
      if (!note.empty()) note += "; ";
      note += std::to_string(scanner_.not_json()) + " events whose data is not a JSON object, " +
              std::to_string(scanner_.oversized()) + " over " + std::to_string(kMaxEventBytes) + " bytes, " +
              std::to_string(scanner_.errors()) + " error events (relayed as they came)";
    }
    guard_.settle(verdict_, output);
    if (!note.empty()) std::fprintf(stderr, "gateway: stream for %s: %s\n", account_.c_str(), note.c_str());
  }

  const ringfence::Guard& guard_;
  ringfence::Verdict verdict_;
  std::uint32_t max_tokens_;
  std::string account_;
  SseScanner scanner_;  // the upstream thread's until it ends
  std::string body_;    // likewise: an answer that is not SSE, for its usage
  httplib::Client client_;
  std::thread thread_;
  bool started_ = false;
  std::atomic<bool> finished_{false};

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool headers_ready_ = false, sse_ = false, upstream_done_ = false, cancelled_ = false;
  int status_ = 0;
  httplib::Headers headers_;
  std::string content_type_;
  std::deque<std::string> queue_;
  std::size_t queued_ = 0;
  std::string error_;     // set when the upstream request failed
  std::string ended_by_;  // set when the gateway cancelled it
};

// Finishes a relay the response does not own yet (an early return, an
// exception), so that its verdict is settled all the same.
struct RelayFinisher {
  std::shared_ptr<StreamRelay> relay;
  ~RelayFinisher() {
    if (relay) relay->finish();
  }
};

}  // namespace gw
