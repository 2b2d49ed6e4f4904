// gateway_usage.hpp: what an answer used, for the example gateway
// (gateway.cpp): the output tokens a completion reports in its `usage`, and
// SseScanner, which reads a streamed completion's server-sent events as
// they arrive, notes the usage and the text they carry, and drops the usage
// event the client did not ask for. No threads and no I/O: gateway_stream.hpp
// feeds it what the upstream sends.
//
// Included by gateway.cpp only (one translation unit); everything is inline.

#pragma once

#include "ringfence.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

namespace gw {

using json = nlohmann::json;

// The output tokens a completion (or a chunk of one) reports in its `usage`:
// `completion_tokens` (OpenAI) or `output_tokens`; nothing when it has none.
inline std::optional<std::uint32_t> output_tokens_of(const json& answer) {
  if (!answer.is_object()) return std::nullopt;
  auto usage = answer.find("usage");
  if (usage == answer.end() || !usage->is_object()) return std::nullopt;
  for (const char* field : {"completion_tokens", "output_tokens"}) {
    auto it = usage->find(field);
    if (it != usage->end() && it->is_number_unsigned())
      return static_cast<std::uint32_t>(std::min<std::uint64_t>(it->get<std::uint64_t>(), UINT32_MAX));
  }
  return std::nullopt;
}

// An SSE event longer than this is relayed without being read.
inline constexpr std::size_t kMaxEventBytes = std::size_t{1} << 20;

// Reads an upstream's server-sent events as they arrive, in chunks of any
// size, with LF, CRLF or CR line ends. Each event is relayed unchanged once
// its blank line has arrived (a client dispatches an event only then); the
// usage event the client did not ask for is dropped when `strip_usage`.
// From each event's `data` it notes the last usage reported, the deltas
// that carried text and their bytes, `[DONE]`, and the data that were not
// JSON objects. Nothing it is fed makes it throw but a failed allocation.
class SseScanner {
 public:
  explicit SseScanner(bool strip_usage) : strip_usage_(strip_usage) {}

  // Scans `n` bytes, appending to `out` what to relay.
  void feed(const char* p, std::size_t n, std::string& out) {
    for (std::size_t i = 0; i < n; i++) {
      char c = p[i];
      if (cr_) {  // a CR ended the line; an LF right after it belongs to it
        cr_ = false;
        if (c == '\n') {
          keep(c, out);
          end_line(out);
          continue;
        }
        end_line(out);
      }
      keep(c, out);
      if (c == '\r') {
        cr_ = true;
      } else if (c == '\n') {
        end_line(out);
      } else {
        line_empty_ = false;
        if (!passthrough_) line_ += c;
      }
    }
  }

  // The stream has ended: appends what is left (an event without its blank
  // line) to `out`, after reading it like the others.
  void finish(std::string& out) {
    if (cr_) {
      cr_ = false;
      end_line(out);
    }
    if (!line_empty_ && !passthrough_) field(line_);
    line_.clear();
    line_empty_ = true;
    dispatch(out);
  }

  std::optional<std::uint32_t> usage() const { return usage_; }
  std::size_t text_deltas() const { return text_deltas_; }
  std::size_t text_bytes() const { return text_bytes_; }
  std::size_t events() const { return events_; }
  std::size_t not_json() const { return not_json_; }
  std::size_t errors() const { return errors_; }
  std::size_t oversized() const { return oversized_; }
  bool done() const { return done_; }
  bool dropped_usage() const { return dropped_usage_; }

  // The output tokens the text seen stands for: the larger of the deltas
  // that carried text (a delta is usually one token) and ringfence's
  // estimate from their bytes.
  std::uint32_t estimate() const {
    std::uint32_t by_bytes = ringfence::estimate_tokens(text_bytes_);
    return static_cast<std::uint32_t>(std::max<std::uint64_t>(std::min<std::uint64_t>(text_deltas_, UINT32_MAX),
                                                              by_bytes));
  }

 private:
  // One byte of the current event: kept until the event ends (to relay or
  // drop it whole), or relayed at once in an event too long to keep.
  void keep(char c, std::string& out) {
    if (passthrough_) {
      out += c;
      return;
    }
    event_ += c;
    if (event_.size() > kMaxEventBytes) {
      out += event_;
      event_.clear();
      data_.clear();
      line_.clear();
      has_data_ = false;
      passthrough_ = true;
      oversized_++;
    }
  }

  void end_line(std::string& out) {
    if (line_empty_) {
      dispatch(out);
    } else if (!passthrough_) {
      field(line_);
    }
    line_.clear();
    line_empty_ = true;
  }

  void field(const std::string& line) {
    if (line.empty() || line[0] == ':') return;  // a comment
    std::size_t colon = line.find(':');
    if (line.compare(0, colon, "data") != 0) return;  // only data matters here
    std::size_t start = colon == std::string::npos ? line.size() : colon + 1;
    if (start < line.size() && line[start] == ' ') start++;
    data_.append(line, start, std::string::npos);
    data_ += '\n';
    has_data_ = true;
  }

  void dispatch(std::string& out) {
    bool relay = true;
    if (!passthrough_ && has_data_) {
      data_.pop_back();  // the last data line's newline
      relay = inspect(data_);
    }
    if (!passthrough_ && relay) out += event_;
    event_.clear();
    data_.clear();
    has_data_ = false;
    passthrough_ = false;
  }

  // Reads one event's data; says whether to relay it.
  bool inspect(const std::string& data) {
    events_++;
    if (data == "[DONE]") {
      done_ = true;
      return true;
    }
    json chunk = json::parse(data, nullptr, false);
    if (chunk.is_discarded() || !chunk.is_object()) {
      not_json_++;
      return true;
    }
    if (chunk.contains("error")) errors_++;
    std::optional<std::uint32_t> used = output_tokens_of(chunk);
    if (used) usage_ = used;
    std::size_t text = 0;
    auto choices = chunk.find("choices");
    if (choices != chunk.end() && choices->is_array()) {
      for (const json& choice : *choices) {
        if (!choice.is_object()) continue;
        auto delta = choice.find("delta");
        if (delta == choice.end() || !delta->is_object()) continue;
        for (const char* key : {"content", "refusal", "reasoning_content"}) {
          auto it = delta->find(key);
          if (it != delta->end() && it->is_string()) text += it->get_ref<const std::string&>().size();
        }
        auto calls = delta->find("tool_calls");
        if (calls != delta->end() && calls->is_array()) {
          for (const json& call : *calls) {
            if (!call.is_object()) continue;
            auto function = call.find("function");
            if (function == call.end() || !function->is_object()) continue;
            auto arguments = function->find("arguments");
            if (arguments != function->end() && arguments->is_string())
              text += arguments->get_ref<const std::string&>().size();
          }
        }
      }
    }
    if (text > 0) {
      text_deltas_++;
      text_bytes_ += text;
    }
    // The usage event asked for on the client's behalf: no choices, a usage.
    if (strip_usage_ && used && choices != chunk.end() && choices->is_array() && choices->empty()) {
      dropped_usage_ = true;
      return false;
    }
    return true;
  }

  bool strip_usage_;
  std::string event_;  // the current event's bytes, as they came
  std::string line_;   // the current line, without its end
  std::string data_;   // the current event's data lines, each ended by '\n'
  bool has_data_ = false;
  bool line_empty_ = true;
  bool cr_ = false;           // the last byte was a CR
  bool passthrough_ = false;  // the current event is too long: relayed unread
  std::optional<std::uint32_t> usage_;
  std::size_t text_deltas_ = 0, text_bytes_ = 0, events_ = 0, not_json_ = 0, errors_ = 0, oversized_ = 0;
  bool done_ = false, dropped_usage_ = false;
};

}  // namespace gw
