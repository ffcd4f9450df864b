// Whether the upstream server archives a message (MAM) before it delivers that message or any
// that follows it (docs/architecture.md §21, §30): a pure decision over what the upstream
// says about itself (XEP-0092 software version), so that each server is a row of a table test.
//
// It decides how a catch-up ends. On a server that may archive late, a message routed to an
// anchor session that is being replaced can appear in MAM after the new session's catch-up read
// the archive's end, while later messages already came live: ejabberd archives in the
// receiving session's own process (the chaos run lost one message that way). So the end is read
// a second time 1 s later, with live stanzas held. Prosody 0.x archives in its `message/bare`
// hook at priority 0, with storage that does not yield (internal, SQL), before the delivery
// handler at -1 runs: what a catch-up's MAM read does not see has not been delivered to anyone
// yet, and arrives live after it. The second read and its second of held live messages are then
// pure cost. Anything not known to behave so (ejabberd, other servers, a Prosody release after
// 0.x whose storage may go asynchronous, no answer) gets the second read.
#pragma once

#include <string_view>

namespace s2::policy {

enum class ArchiveTiming {
  BeforeDelivery,  // archived before it or anything later is delivered: one read of the end
  MaybeLate,       // may become visible in MAM after later messages were delivered: read twice
};

ArchiveTiming archive_timing(std::string_view software_name, std::string_view version);

const char* to_string(ArchiveTiming t);

}  // namespace s2::policy
