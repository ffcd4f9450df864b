// check_carbon(): see carbons.h.
#include "policies/carbons.h"

#include "policies/dedup.h"

namespace s2::policy {

CarbonVerdict check_carbon(const CarbonCheck& c) {
  if (c.kind == Forwarded::None) return CarbonVerdict::Accept;  // not a carbon: nothing to check
  // XEP-0280 Security Considerations: the wrapper must come from our own bare JID — not a full JID,
  // not absent.
  if (c.wrapper_from.empty() || !jid_equal(c.wrapper_from, c.account_bare)) {
    return CarbonVerdict::Reject;
  }
  const std::string_view ours = c.kind == Forwarded::Sent ? c.inner_from : c.inner_to;
  if (!jid_equal(bare_of(ours), c.account_bare)) return CarbonVerdict::Reject;
  if (c.inner_from_own_device || c.inner_to_own_device) return CarbonVerdict::Echo;
  return CarbonVerdict::Accept;
}

std::string_view to_string(CarbonVerdict v) {
  switch (v) {
    case CarbonVerdict::Accept:
      return "accept";
    case CarbonVerdict::Reject:
      return "reject";
    case CarbonVerdict::Echo:
      return "echo";
  }
  return "unknown";
}

}  // namespace s2::policy
