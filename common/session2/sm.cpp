// XEP-0198 elements and SmState (see sm.h for the design).
//
// Sequence arithmetic: queue_[i] carries sequence number acked_ + i + 1 (mod 2^32) and
// the queue holds far fewer than 2^31 stanzas, so for an incoming h the distance
// d = h - acked_ (mod 2^32) is unambiguous: 0 ≤ d ≤ queue size acknowledges d stanzas,
// d that is "negative" as a signed 32-bit value means h went backwards, anything else
// acknowledges stanzas that were never sent (§4 handled-count-too-high).
#include "common/session2/sm.h"

#include <limits>

#include "common/session2/codec.h"
#include "common/session2/detail.h"
#include "common/session2/errors.h"

namespace s2::session2 {
namespace {

using detail::err;
using detail::is_element;

constexpr std::string_view kBadRequest = "bad-request";
constexpr std::string_view kUndefined = "undefined-condition";

std::string u32(uint32_t v) { return std::to_string(v); }

// Optional xs:unsignedInt attribute; sets *error on a bad value.
std::optional<uint32_t> opt_u32(const Stanza& el, const char* name, std::string_view condition,
                                std::optional<Error>* error) {
  auto v = el.attr(name);
  if (!v) return std::nullopt;
  auto n = parse_uint32(*v);
  if (!n) {
    *error = err(condition, std::string("'") + name + "' is not an integer in 0..4294967295");
  }
  return n;
}

Result<uint32_t> req_u32(const Stanza& el, const char* name, std::string_view condition) {
  std::optional<Error> e;
  auto n = opt_u32(el, name, condition, &e);
  if (e) return *e;
  if (!n) return err(condition, std::string("missing '") + name + "'");
  return *n;
}

Result<bool> opt_bool(const Stanza& el, const char* name, std::string_view condition) {
  auto v = el.attr(name);
  if (!v) return false;
  auto b = parse_xs_boolean(*v);
  if (!b) return err(condition, std::string("'") + name + "' is not a boolean");
  return *b;
}

Result<std::string> sm_id(const Stanza& el, const char* name, std::string_view condition) {
  auto v = el.attr(name);
  if (!v || v->empty()) return err(condition, std::string("missing '") + name + "'");
  if (v->size() > kMaxSmIdBytes) return err(condition, std::string("'") + name + "' too long");
  return *v;
}

Error not_sm(std::string_view name, std::string_view condition) {
  return err(condition, "not an <" + std::string(name) + " xmlns='urn:xmpp:sm:3'/>");
}

}  // namespace

Result<SmEnable> parse_sm_enable(const Stanza& el) {
  if (!is_element(el, "enable", kNsSm)) return not_sm("enable", kBadRequest);
  SmEnable out;
  auto resume = opt_bool(el, "resume", kBadRequest);
  if (!resume) return resume.error();
  out.resume = *resume;
  std::optional<Error> e;
  out.max = opt_u32(el, "max", kBadRequest, &e);
  if (e) return *e;
  return out;
}

Result<SmEnabled> parse_sm_enabled(const Stanza& el) {
  if (!is_element(el, "enabled", kNsSm)) return not_sm("enabled", kUndefined);
  SmEnabled out;
  auto resume = opt_bool(el, "resume", kUndefined);
  if (!resume) return resume.error();
  out.resume = *resume;
  if (el.attr("id") || out.resume) {  // §5: an id MUST come with resume='true'
    auto id = sm_id(el, "id", kUndefined);
    if (!id) return id.error();
    out.id = std::move(*id);
  }
  std::optional<Error> e;
  out.max = opt_u32(el, "max", kUndefined, &e);
  if (e) return *e;
  out.location = el.attr_or("location");
  return out;
}

Result<SmResume> parse_sm_resume(const Stanza& el) {
  if (!is_element(el, "resume", kNsSm)) return not_sm("resume", kBadRequest);
  auto previd = sm_id(el, "previd", kBadRequest);
  if (!previd) return previd.error();
  auto h = req_u32(el, "h", kBadRequest);
  if (!h) return h.error();
  return SmResume{std::move(*previd), *h};
}

Result<SmResumed> parse_sm_resumed(const Stanza& el) {
  if (!is_element(el, "resumed", kNsSm)) return not_sm("resumed", kUndefined);
  auto previd = sm_id(el, "previd", kUndefined);
  if (!previd) return previd.error();
  auto h = req_u32(el, "h", kUndefined);
  if (!h) return h.error();
  return SmResumed{std::move(*previd), *h};
}

Result<SmFailed> parse_sm_failed(const Stanza& el) {
  if (!is_element(el, "failed", kNsSm)) return not_sm("failed", kUndefined);
  SmFailed out;
  std::optional<Error> e;
  out.h = opt_u32(el, "h", kUndefined, &e);
  if (e) return *e;
  for (const Stanza& c : el.children()) {
    if (c.xmlns() == kNsStanzaErrors && c.name() != "text") {
      out.condition = c.name();
      break;
    }
  }
  return out;
}

Result<SmAck> parse_sm_ack(const Stanza& el) {
  if (!is_element(el, "a", kNsSm)) return not_sm("a", kUndefined);
  auto h = req_u32(el, "h", kUndefined);
  if (!h) return h.error();
  return SmAck{*h};
}

Result<SmRequest> parse_sm_request(const Stanza& el) {
  if (!is_element(el, "r", kNsSm)) return not_sm("r", kUndefined);
  return SmRequest{};
}

namespace {
template <typename T>
Result<SmElement> widen(Result<T> r) {
  if (!r) return r.error();
  return SmElement(std::move(*r));
}
}  // namespace

Result<SmElement> parse_sm(const Stanza& el) {
  if (!el || el.xmlns() != kNsSm) return err(kUndefined, "not a urn:xmpp:sm:3 element");
  const std::string name = el.name();
  if (name == "a") return widen(parse_sm_ack(el));
  if (name == "r") return widen(parse_sm_request(el));
  if (name == "enable") return widen(parse_sm_enable(el));
  if (name == "enabled") return widen(parse_sm_enabled(el));
  if (name == "resume") return widen(parse_sm_resume(el));
  if (name == "resumed") return widen(parse_sm_resumed(el));
  if (name == "failed") return widen(parse_sm_failed(el));
  return err("unsupported-stanza-type", "unknown SM element <" + name + "/>");
}

Stanza build_sm_enable(const SmEnable& e) {
  Stanza el = Stanza::element("enable", kNsSm);
  if (e.resume) el.set_attr("resume", "true");
  if (e.max) el.set_attr("max", u32(*e.max));
  return el;
}

Stanza build_sm_enabled(const SmEnabled& e) {
  Stanza el = Stanza::element("enabled", kNsSm);
  if (!e.id.empty()) el.set_attr("id", e.id);
  if (e.resume) el.set_attr("resume", "true");
  if (e.max) el.set_attr("max", u32(*e.max));
  if (!e.location.empty()) el.set_attr("location", e.location);
  return el;
}

Stanza build_sm_resume(std::string_view previd, uint32_t h) {
  Stanza el = Stanza::element("resume", kNsSm);
  el.set_attr("previd", previd);
  el.set_attr("h", u32(h));
  return el;
}

Stanza build_sm_resumed(std::string_view previd, uint32_t h) {
  Stanza el = Stanza::element("resumed", kNsSm);
  el.set_attr("previd", previd);
  el.set_attr("h", u32(h));
  return el;
}

Stanza build_sm_failed(std::string_view condition, std::optional<uint32_t> h) {
  Stanza el = Stanza::element("failed", kNsSm);
  if (h) el.set_attr("h", u32(*h));
  if (!condition.empty()) el.add_child(Stanza::element(condition, kNsStanzaErrors));
  return el;
}

Stanza build_sm_ack(uint32_t h) {
  Stanza el = Stanza::element("a", kNsSm);
  el.set_attr("h", u32(h));
  return el;
}

Stanza build_sm_request() { return Stanza::element("r", kNsSm); }

Stanza build_handled_count_too_high(uint32_t h, uint32_t send_count) {
  Stanza el = Stanza::element("handled-count-too-high", kNsSm);
  el.set_attr("h", u32(h));
  el.set_attr("send-count", u32(send_count));
  return el;
}

bool is_sm_counted(const Stanza& s) {
  if (!s) return false;
  const std::string ns = s.xmlns();
  if (!ns.empty() && ns != "jabber:client" && ns != "jabber:server") return false;
  const std::string name = s.name();
  return name == "message" || name == "presence" || name == "iq";
}

bool SmState::on_inbound(const Stanza& s) {
  if (!is_sm_counted(s)) return false;
  ++inbound_h_;  // §4: wraps to 0 after 2^32-1 (unsigned arithmetic)
  return true;
}

SmState::Outbound SmState::on_outbound(const Stanza& s) {
  if (!is_sm_counted(s)) return Outbound::NotCounted;
  if (queue_.size() >= max_queue_) return Outbound::QueueFull;
  queue_.push_back(s);
  ++sent_;
  return Outbound::Queued;
}

Result<std::vector<Stanza>> SmState::on_ack(uint32_t h) {
  const uint32_t d = h - acked_;  // mod 2^32
  if (d > queue_.size()) {
    if (d > static_cast<uint32_t>(std::numeric_limits<int32_t>::max())) {
      return err(kUndefined,
                 "h=" + u32(h) + " is lower than the previous acknowledgement " + u32(acked_));
    }
    // §4, text as in the XEP's example.
    return err(kUndefined, "You acknowledged " + u32(h) + " stanzas, but I only sent you " +
                               u32(sent_) + " so far.");
  }
  std::vector<Stanza> acked;
  acked.reserve(d);
  for (uint32_t i = 0; i < d; ++i) {
    acked.push_back(std::move(queue_.front()));
    queue_.pop_front();
  }
  acked_ = h;
  return acked;
}

Result<std::vector<Stanza>> SmState::on_resume(uint32_t peer_h) {
  auto acked = on_ack(peer_h);
  if (!acked) return acked.error();
  return std::vector<Stanza>(queue_.begin(), queue_.end());
}

std::vector<Stanza> SmState::take_unacked() {
  std::vector<Stanza> out(std::make_move_iterator(queue_.begin()),
                          std::make_move_iterator(queue_.end()));
  queue_.clear();
  acked_ = sent_;
  return out;
}

}  // namespace s2::session2
