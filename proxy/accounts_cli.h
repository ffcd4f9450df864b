// `s2proxy accounts list | show JID | export JID | forget JID | push-body JID on|off|default`:
// operator access to what the proxy keeps per account (mirror, credentials, FAST tokens, devices).
// Works on the data dir directly (LMDB allows a second process while the daemon runs).
#pragma once

#include <string>

#include "proxy/config.h"

namespace s2 {

int accounts_list(const Config& cfg);
int accounts_show(const Config& cfg, const std::string& jid);
int accounts_forget(const Config& cfg, const std::string& jid);
// The account's archive as JSON lines on stdout, in archive order: archive_id,
// time (ISO 8601, when the message was received), direction ("in"/"out"), peer
// (bare JID) and stanza (the stored XML). A count goes to stderr.
int accounts_export(const Config& cfg, const std::string& jid);
// The account's push-body setting: "on", "off" or "default" (the daemon's
// --push-body). Read at each publish, so a running daemon follows it.
int accounts_push_body(const Config& cfg, const std::string& jid, const std::string& setting);

}  // namespace s2
