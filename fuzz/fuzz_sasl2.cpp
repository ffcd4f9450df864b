// libFuzzer target for the session2 parsers (common/session2): SASL2 <authenticate/>,
// <response/>, <abort/>, Bind2 <bind/>, FAST <request-token/>/<fast/> and every
// XEP-0198 element, plus SmState fed with the parsed acks. Input is parsed with
// Stanza::parse; every element of the tree (to a bounded depth) goes through every
// parser, so nested elements are also tried on their own. Besides memory safety it
// checks the invariants callers rely on: errors always name a condition, syntax-only
// parsing accepts whatever offer-checked parsing accepts, SM elements survive a
// build/parse round trip, derived resources never contain '/', controls or the
// user-agent id, and the SM queue never exceeds its bound.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

#include "common/session2/bind2.h"
#include "common/session2/codec.h"
#include "common/session2/errors.h"
#include "common/session2/fast.h"
#include "common/session2/sasl2.h"
#include "common/session2/sm.h"
#include "common/xml/stanza.h"

namespace {

using namespace s2::session2;

void check(bool ok) {
  if (!ok) __builtin_trap();
}

template <typename T>
void check_result(const Result<T>& r) {
  if (!r) check(!r.error().condition.empty() && !r.error().text.empty());
}

const AuthenticationFeature& offer() {
  static const AuthenticationFeature f{{"SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"},
                                       true,
                                       {"urn:xmpp:carbons:2", "urn:xmpp:csi:0", "urn:xmpp:sm:3"},
                                       {"HT-SHA-256-NONE"},
                                       true};
  return f;
}

void check_resource(const std::string& r, std::string_view ua) {
  check(!r.empty() && r.size() <= kMaxResourceTagBytes + 9);
  for (unsigned char c : r) check(c >= 0x20 && c != 0x7f && c != '/');
  if (ua.size() >= 8) check(r.find(ua) == std::string::npos);
}

void run_authenticate(const s2::Stanza& el) {
  auto with_offer = parse_authenticate(el, &offer());
  auto bare = parse_authenticate(el);
  check_result(with_offer);
  check_result(bare);
  if (with_offer) check(bare.ok());
  if (!bare) return;
  if (bare->initial_response) {
    check(base64_decode(base64_encode(*bare->initial_response)) == *bare->initial_response);
  }
  if (bare->user_agent) {
    const std::string& id = bare->user_agent->id;
    check(!id.empty() && id.size() <= kMaxUserAgentIdBytes);
    const std::string tag = bare->bind && bare->bind->tag ? *bare->bind->tag : "";
    const std::string r = derive_resource(tag, id, "fuzz-secret-0123456789");
    check_resource(r, id);
    check(r == derive_resource(tag, id, "fuzz-secret-0123456789"));
  }
}

void run_sm(const s2::Stanza& el) {
  auto any = parse_sm(el);
  check_result(any);
  check_result(parse_sm_enable(el));
  check_result(parse_sm_enabled(el));
  check_result(parse_sm_resume(el));
  check_result(parse_sm_resumed(el));
  check_result(parse_sm_failed(el));
  check_result(parse_sm_request(el));
  auto ack = parse_sm_ack(el);
  check_result(ack);
  if (!any) return;
  // Round trips through the builders.
  if (auto* a = std::get_if<SmAck>(&*any)) {
    auto again = parse_sm_ack(build_sm_ack(a->h));
    check(again && again->h == a->h);
  } else if (auto* e = std::get_if<SmEnable>(&*any)) {
    auto again = parse_sm_enable(build_sm_enable(*e));
    check(again && again->resume == e->resume && again->max == e->max);
  } else if (auto* ed = std::get_if<SmEnabled>(&*any)) {
    auto again = parse_sm_enabled(build_sm_enabled(*ed));
    check(again && again->id == ed->id && again->resume == ed->resume && again->max == ed->max);
  } else if (auto* rs = std::get_if<SmResume>(&*any)) {
    auto again = parse_sm_resume(build_sm_resume(rs->previd, rs->h));
    check(again && again->previd == rs->previd && again->h == rs->h);
  } else if (auto* rd = std::get_if<SmResumed>(&*any)) {
    auto again = parse_sm_resumed(build_sm_resumed(rd->previd, rd->h));
    check(again && again->previd == rd->previd && again->h == rd->h);
  } else if (auto* f = std::get_if<SmFailed>(&*any)) {
    auto again = parse_sm_failed(build_sm_failed(f->condition, f->h));
    check(again && again->h == f->h);
  }
}

void run_state(const s2::Stanza& el) {
  auto ack = parse_sm_ack(el);
  if (!ack) return;
  SmState sm = SmState::restore(4, ack->h, ack->h - 3);
  s2::Stanza m = s2::Stanza::element("message");
  for (int i = 0; i < 6; ++i) (void)sm.on_outbound(m);
  check(sm.unacked_count() <= sm.max_queue());
  const size_t before = sm.unacked_count();
  auto r = sm.on_ack(ack->h);
  check_result(r);
  if (r) check(r->size() + sm.unacked_count() == before);
  auto resumed = sm.on_resume(ack->h);
  check_result(resumed);
  (void)sm.on_inbound(el);
  (void)sm.take_unacked();
  check(sm.unacked_count() == 0);
}

void run_all(const s2::Stanza& el, int depth) {
  run_authenticate(el);
  check_result(parse_response(el));
  check_result(parse_abort(el));
  (void)classify_sasl2(el);
  auto bind = parse_bind(el);
  check_result(bind);
  if (bind && bind->tag) check_resource(sanitize_resource_tag(*bind->tag), {});
  check_result(parse_fast(el));
  check_result(parse_fast_request_token(el));
  run_sm(el);
  run_state(el);
  (void)is_sm_counted(el);

  s2::Stanza err = build_stanza_error(el, el.attr_or("type"), el.name(), el.text_content(), true);
  if (err) check(static_cast<bool>(s2::Stanza::parse(err.to_string())));
  check(static_cast<bool>(s2::Stanza::parse(build_stream_error(el.name(), el.text_content()))));

  if (depth >= 4) return;
  for (const s2::Stanza& c : el.children()) run_all(c, depth + 1);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  s2::Stanza el = s2::Stanza::parse(in);
  if (!el) return 0;
  run_all(el, 0);
  return 0;
}
