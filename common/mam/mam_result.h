// XEP-0313 results, both roles.
//
// Server role (the proxy answers a device from its own archive): the <result/>
// messages (§4.2), the closing <fin/> iq with its RSM <set/> (§4.3, XEP-0059 §2.6) and
// the archive metadata (§5.2).
// Client role (the proxy pages through the upstream server's archive): the query iq,
// and parsers for the <result/> messages and the <fin/> that come back.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/mam/carbons.h"
#include "common/mam/mam_query.h"
#include "common/xml/stanza.h"

namespace s2::mam {

// ---- Server role ----

// <message to=…><result xmlns='urn:xmpp:mam:2' queryid=… id=…><forwarded
// xmlns='urn:xmpp:forward:0'><delay xmlns='urn:xmpp:delay' stamp=…/><message
// xmlns='jabber:client' …/></forwarded></result></message>. queryid is omitted when
// empty, `to` too. The inner message is deep-copied.
Stanza build_result_message(std::string_view to, std::string_view queryid,
                            std::string_view archive_id, int64_t stamp_ms,
                            const Stanza& inner_message);

struct FinInfo {
  bool complete = false;
  std::string first, last;  // archive ids of the page's first and last item; empty = none
  std::optional<uint64_t> count, first_index;
};

// <iq type='result' id to><fin xmlns='urn:xmpp:mam:2' [complete='true']><set
// xmlns='http://jabber.org/protocol/rsm'>[<first [index]>…</first><last>…</last>]
// [<count>N</count>]</set></fin></iq>. <first/> (and its index) and <last/> are each
// left out when empty; `to` when empty.
Stanza build_fin_iq(std::string_view to, std::string_view id, const FinInfo& fin);

// <iq type='result' id to><metadata xmlns='urn:xmpp:mam:2'>[<start id timestamp/>]
// [<end id timestamp/>]</metadata></iq>; <start/> is left out when first_id is empty,
// <end/> when last_id is (an empty archive: both empty, <metadata/>).
Stanza build_metadata_iq(std::string_view to, std::string_view id, std::string_view first_id,
                         int64_t first_ms, std::string_view last_id, int64_t last_ms);

// ---- Client role ----

struct ClientQuery {
  std::optional<int64_t> start_ms;
  std::optional<std::string> rsm_after;
  bool rsm_before_last = false;  // <before/>: the last page (ignored when rsm_after is set)
  size_t max = 100;
  std::optional<int64_t> end_ms;
};

// <iq type='set' id><query xmlns='urn:xmpp:mam:2' [queryid]><x xmlns='jabber:x:data'
// type='submit'>FORM_TYPE [start] [end]</x><set xmlns='http://jabber.org/protocol/rsm'>
// <max>N</max>[<after>X</after> | <before/>]</set></query></iq>
Stanza build_mam_query_iq(std::string_view id, std::string_view queryid, const ClientQuery& q);

struct MamResultItem {
  std::string queryid;  // empty when absent
  std::string id;       // archive id, never empty
  std::optional<int64_t> stamp_ms;
  Stanza message;  // detached copy, no xmlns attribute (see carbons.h)
};

// A <message/> with a <result xmlns='urn:xmpp:mam:2' id> child holding a valid
// <forwarded/> (parse_forwarded); nullopt otherwise (no or empty id, no inner message,
// several <result/>s, …).
std::optional<MamResultItem> parse_result_message(const Stanza& message);

// From an <iq type='result'> carrying <fin xmlns='urn:xmpp:mam:2'>: complete is
// 'true' or '1'; first/last/count/index come from its RSM <set/> (a malformed count or
// index reads as absent). nullopt when it is not such an iq.
std::optional<FinInfo> parse_fin(const Stanza& iq);

struct MamMetadata {
  std::string first_id, last_id;  // empty when the archive is empty
  std::optional<int64_t> first_ms, last_ms;
};
// From an <iq type='result'> carrying <metadata xmlns='urn:xmpp:mam:2'>.
std::optional<MamMetadata> parse_metadata(const Stanza& iq);

}  // namespace s2::mam
