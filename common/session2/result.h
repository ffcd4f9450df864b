// Errors as values for the session2 parsers (STYLE.md "Errors").
//
// Every parser in common/session2 returns Result<T>: either the parsed value or an
// Error naming the condition the session should answer with. Which namespace the
// condition belongs to is fixed per parser and documented at its declaration: SASL
// conditions (RFC 6120 §6.5, used in a SASL2 <failure>, XEP-0388 §2.6.2) for
// <authenticate>/<bind>/FAST, stanza conditions (RFC 6120 §8.3.3, used in an SM
// <failed>, XEP-0198 "Error Handling") for <enable>/<resume>, and stream conditions (RFC 6120
// §4.9.3) for acks and other SM elements whose misuse ends the stream. `text` is for
// the peer and the log; it never contains secrets. std::expected is C++23, hence this
// small variant-based stand-in.
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace s2::session2 {

struct Error {
  std::string condition;  // element name of the condition, e.g. "malformed-request"
  std::string text;       // human-readable explanation
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}      // NOLINT: implicit
  Result(Error error) : v_(std::in_place_index<1>, std::move(error)) {}  // NOLINT: implicit

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &std::get<0>(v_); }
  const T* operator->() const { return &std::get<0>(v_); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

}  // namespace s2::session2
