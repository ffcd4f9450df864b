// Stream and stanza error builders (RFC 6120 §4.9, §8.3); see errors.h.
#include "common/session2/errors.h"

#include <algorithm>
#include <iterator>

namespace s2::session2 {
namespace {

constexpr std::string_view kStreamConditions[] = {
    "bad-format",
    "bad-namespace-prefix",
    "conflict",
    "connection-timeout",
    "host-gone",
    "host-unknown",
    "improper-addressing",
    "internal-server-error",
    "invalid-from",
    "invalid-namespace",
    "invalid-xml",
    "not-authorized",
    "not-well-formed",
    "policy-violation",
    "remote-connection-failed",
    "reset",
    "resource-constraint",
    "restricted-xml",
    "see-other-host",
    "system-shutdown",
    "undefined-condition",
    "unsupported-encoding",
    "unsupported-feature",
    "unsupported-stanza-type",
    "unsupported-version",
};

constexpr std::string_view kStanzaConditions[] = {
    "bad-request",
    "conflict",
    "feature-not-implemented",
    "forbidden",
    "gone",
    "internal-server-error",
    "item-not-found",
    "jid-malformed",
    "not-acceptable",
    "not-allowed",
    "not-authorized",
    "policy-violation",
    "recipient-unavailable",
    "redirect",
    "registration-required",
    "remote-server-not-found",
    "remote-server-timeout",
    "resource-constraint",
    "service-unavailable",
    "subscription-required",
    "undefined-condition",
    "unexpected-request",
};

template <size_t N>
bool contains(const std::string_view (&a)[N], std::string_view v) {
  return std::find(std::begin(a), std::end(a), v) != std::end(a);
}

}  // namespace

bool is_stream_error_condition(std::string_view c) { return contains(kStreamConditions, c); }

bool is_stanza_error_condition(std::string_view c) { return contains(kStanzaConditions, c); }

bool is_stanza_error_type(std::string_view t) {
  return t == "auth" || t == "cancel" || t == "continue" || t == "modify" || t == "wait";
}

namespace {
// RFC 6120 §4.9.2: the optional <text/> lives in the streams namespace.
void append_stream_error_text(std::string& out, std::string_view text) {
  if (text.empty()) return;
  out += "<text xmlns='";
  out += kNsStreamErrors;
  out += "'>";
  out += xml_escape(text);
  out += "</text>";
}
}  // namespace

std::string build_stream_error(std::string_view condition, std::string_view text,
                               const Stanza& app) {
  const std::string_view cond =
      is_stream_error_condition(condition) ? condition : std::string_view("undefined-condition");
  std::string out = "<stream:error><";
  out += cond;
  out += " xmlns='";
  out += kNsStreamErrors;
  out += "'/>";
  append_stream_error_text(out, text);
  if (app) out += app.to_string();
  out += "</stream:error>";
  return out;
}

std::string build_see_other_host(std::string_view host, std::string_view text) {
  std::string out = "<stream:error><see-other-host xmlns='";
  out += kNsStreamErrors;
  out += "'>";
  out += xml_escape(host);
  out += "</see-other-host>";
  append_stream_error_text(out, text);
  out += "</stream:error>";
  return out;
}

Stanza build_stanza_error(const Stanza& original, std::string_view type, std::string_view condition,
                          std::string_view text, bool include_payload) {
  if (!original) return {};
  const std::string name = original.name();
  const std::string orig_type = original.attr_or("type");
  if (orig_type == "error") return {};                   // §8.3.1 rule 2
  if (name == "iq" && orig_type == "result") return {};  // §8.2.3
  if (name.empty()) return {};                           // a text node

  Stanza reply = Stanza::element(name, original.xmlns());
  if (auto to = original.attr("to")) reply.set_attr("from", *to);
  if (auto from = original.attr("from")) reply.set_attr("to", *from);
  if (auto id = original.attr("id")) reply.set_attr("id", *id);
  reply.set_attr("type", "error");
  if (include_payload) {
    for (const Stanza& c : original.children()) reply.add_child(c.clone());
  }

  Stanza error = Stanza::element("error");
  error.set_attr("type", is_stanza_error_type(type) ? type : std::string_view("cancel"));
  error.add_child(Stanza::element(
      is_stanza_error_condition(condition) ? condition : std::string_view("undefined-condition"),
      kNsStanzaErrors));
  if (!text.empty()) {
    Stanza t = Stanza::element("text", kNsStanzaErrors);
    t.add_text(text);
    error.add_child(t);
  }
  reply.add_child(error);
  return reply;
}

}  // namespace s2::session2
