// libFuzzer target for proxy/stanza_facts: every stanza a client or the upstream
// sends is read by stanza_features / message_ids / fingerprint_content and edited
// in place (stanza-id stripping, origin-id, delay, hints, priority) before the
// policies see it. The input is parsed with Stanza::parse; the facts must never
// crash, the edits must keep the stanza serialisable and re-parseable, and
// stripping must leave no stanza-id that claims the account or the domain.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/xml/stanza.h"
#include "policies/classify.h"
#include "policies/dedup.h"
#include "policies/stanza_facts.h"

namespace {
void check(bool ok) {
  if (!ok) __builtin_trap();
}
constexpr std::string_view kAccount = "alice@example.org";
constexpr std::string_view kDomain = "example.org";
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 64 * 1024) return 0;
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  s2::Stanza s = s2::Stanza::parse(in);
  if (!s) return 0;
  const auto f = s2::stanza_features(s);
  (void)s2::policy::classify(f);
  const auto ids = s2::message_ids(s);
  const std::string content = s2::fingerprint_content(s);
  s2::policy::DedupInput di;
  di.origin_id = ids.origin_id;
  di.id = ids.id;
  di.content = content;
  (void)s2::policy::dedup_key(di, kAccount, true);

  s2::Stanza m = s.clone();
  s2::strip_claimed_stanza_ids(m, kAccount, kDomain);
  for (const auto& [id, by] : s2::message_ids(m).stanza_ids)
    check(!s2::policy::should_strip_stanza_id(by, kAccount, kDomain));
  s2::set_stanza_id(m, kAccount, "0000000000001");
  s2::ensure_origin_id(m, "fuzz-origin");
  s2::add_delay(m, kDomain, "2026-11-25T00:00:00.000Z");
  s2::add_hint_no_store(m);
  s2::add_carbons_private(m);
  if (m.name() == "presence") s2::set_presence_priority(m, -1);
  const std::string out = m.to_string();
  check(static_cast<bool>(s2::Stanza::parse(out)));
  return 0;
}
