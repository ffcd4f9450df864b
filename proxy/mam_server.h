// MAM (XEP-0313, urn:xmpp:mam:2) for the account, answered from the mirror.
//
// A device's query for its own archive (no `to`, or the account's bare JID)
// never reaches the upstream: the mirror is the one ordered history, its
// archive ids are the <stanza-id> every device saw, and each query is a
// range scan of the mirror's indexes (cost independent of archive size).
// Queries to other JIDs (a MUC room's archive) are relayed by the caller;
// queries naming another account's archive are refused (forbidden).
// Supported: form fields with/start/end/after-id/before-id/ids, RSM
// max/after/before (empty <before/> = the last page), <flip-page/>, <count>,
// the form discovery (iq get) and metadata (XEP-0313 §6).
#pragma once

#include <string>

#include "common/store/store.h"
#include "common/xml/stanza.h"

namespace s2 {

class ProxyContext;
class Device;

struct MamServer {
  // The iq is a MAM request (query, form discovery or metadata).
  static bool wants(const Stanza& iq);
  // Answers it to `device` (result messages, then the iq result or error).
  static void answer(ProxyContext& ctx, const std::string& account, store::AccountNo account_no,
                     Device& device, const Stanza& iq);
};

}  // namespace s2
