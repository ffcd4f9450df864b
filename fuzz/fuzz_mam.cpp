// libFuzzer target for the MAM module (common/mam): XEP-0082 datetimes, XEP-0313
// queries and results, RSM, data forms and XEP-0280 carbons. The raw input goes to
// parse_datetime (and, read as an integer, to format_datetime); then it is parsed with
// Stanza::parse and every element of the tree (to a bounded depth) goes through every
// parser, its attribute values and text through parse_datetime. Besides memory safety
// it checks the invariants callers rely on: errors name a known condition and carry a
// text, parsed requests respect their bounds, datetimes format back to themselves, and
// whatever a parser accepts survives a build/parse round trip (on the built tree, and
// the built tree serialises to parseable XML).
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "common/mam/carbons.h"
#include "common/mam/datetime.h"
#include "common/mam/mam_query.h"
#include "common/mam/mam_result.h"
#include "common/xml/stanza.h"

namespace {

using namespace s2::mam;

void check(bool ok) {
  if (!ok) __builtin_trap();
}

void check_serialises(const s2::Stanza& built) {
  check(static_cast<bool>(built));
  check(static_cast<bool>(s2::Stanza::parse(built.to_string())));
}

void run_datetime(std::string_view s) {
  auto ms = parse_datetime(s);
  if (!ms) return;
  check(*ms >= kMinDatetimeMs && *ms <= kMaxDatetimeMs);
  const std::string f = format_datetime(*ms);
  check(f.size() == 24);
  check(parse_datetime(f) == ms);
}

void run_query(const s2::Stanza& el) {
  auto r = parse_mam_query(el);
  if (!r) {
    const std::string& c = r.error().condition;
    check(c == "bad-request" || c == "policy-violation");
    check(!r.error().text.empty());
    return;
  }
  check(el.is("query", kNsMam));
  check(r->ids.size() <= kMaxQueryIds);
  for (const std::string& id : r->ids) check(!id.empty());
  if (r->max) check(*r->max <= kMaxRsmMax);
  if (r->rsm_after) check(!r->rsm_after->empty());
  check(!(r->after_id && r->rsm_after));
  check(!(r->before_id && r->rsm_before && !r->rsm_before->empty()));
  if (r->start_ms) run_datetime(format_datetime(*r->start_ms));

  // What the client role would send for this request parses back the same.
  ClientQuery q;
  q.start_ms = r->start_ms;
  q.rsm_after = r->rsm_after;
  q.rsm_before_last = r->rsm_before.has_value();
  q.max = r->max.value_or(100);
  s2::Stanza iq = build_mam_query_iq("id", r->queryid, q);
  check_serialises(iq);
  auto again = parse_mam_query(iq.child("query", kNsMam));
  check(again.ok());
  check(again->queryid == r->queryid && again->start_ms == r->start_ms &&
        again->rsm_after == r->rsm_after && again->max == q.max);
}

void run_result(const s2::Stanza& el) {
  auto item = parse_result_message(el);
  if (!item) return;
  check(!item->id.empty() && item->message && item->message.xmlns().empty());
  const int64_t stamp = item->stamp_ms.value_or(0);
  s2::Stanza built = build_result_message("a@b/c", item->queryid, item->id, stamp, item->message);
  check_serialises(built);
  auto again = parse_result_message(built);
  check(again.has_value());
  check(again->id == item->id && again->queryid == item->queryid && again->stamp_ms == stamp);
  check(again->message.to_string() == item->message.to_string());
}

void run_fin(const s2::Stanza& el) {
  auto fin = parse_fin(el);
  if (!fin) return;
  s2::Stanza built = build_fin_iq("a@b/c", "id", *fin);
  check_serialises(built);
  auto again = parse_fin(built);
  check(again.has_value());
  check(again->complete == fin->complete && again->first == fin->first &&
        again->last == fin->last && again->count == fin->count &&
        again->first_index == fin->first_index);
}

void run_metadata(const s2::Stanza& el) {
  auto md = parse_metadata(el);
  if (!md) return;
  s2::Stanza built = build_metadata_iq("", "id", md->first_id, md->first_ms.value_or(0),
                                       md->last_id, md->last_ms.value_or(0));
  check_serialises(built);
  auto again = parse_metadata(built);
  check(again.has_value());
  check(again->first_id == md->first_id && again->last_id == md->last_id);
  if (!md->first_id.empty()) check(again->first_ms == md->first_ms.value_or(0));
  if (!md->last_id.empty()) check(again->last_ms == md->last_ms.value_or(0));
}

void run_carbon(const s2::Stanza& el) {
  auto c = unwrap_carbon(el);
  if (!c) return;
  check(c->inner && c->inner.xmlns().empty());
  s2::Stanza built = wrap_carbon(c->kind, "a@b", "a@b/c", c->inner);
  check_serialises(built);
  auto again = unwrap_carbon(built);
  check(again.has_value());
  check(again->kind == c->kind);
  check(again->inner.to_string() == c->inner.to_string());
}

void run_forwarded(const s2::Stanza& el) {
  auto f = parse_forwarded(el);
  if (!f) return;
  check(f->message && f->message.xmlns().empty());
  auto again = parse_forwarded(build_forwarded(f->message, f->stamp_ms));
  check(again.has_value());
  check(again->stamp_ms == f->stamp_ms);
}

void run_all(const s2::Stanza& el, int depth) {
  run_query(el);
  run_result(el);
  run_fin(el);
  run_metadata(el);
  run_carbon(el);
  run_forwarded(el);
  run_datetime(el.text_content());
  run_datetime(trim_ascii(el.text_content()));
  for (const char* key : {"stamp", "timestamp", "id", "var"}) {
    if (auto v = el.attr(key)) run_datetime(*v);
  }
  if (depth >= 5) return;
  for (const s2::Stanza& c : el.children()) run_all(c, depth + 1);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  run_datetime(in);
  (void)parse_decimal(in);
  if (size >= sizeof(int64_t)) {
    int64_t ms;
    std::memcpy(&ms, data, sizeof ms);
    const std::string f = format_datetime(ms);
    const int64_t clamped = ms < kMinDatetimeMs   ? kMinDatetimeMs
                            : ms > kMaxDatetimeMs ? kMaxDatetimeMs
                                                  : ms;
    check(parse_datetime(f) == clamped);
  }
  s2::Stanza el = s2::Stanza::parse(in);
  if (!el) return 0;
  run_all(el, 0);
  return 0;
}
