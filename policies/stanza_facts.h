// From XML to facts: what the routing policies (policies/) need to know about one real stanza,
// and the few in-place edits the routing decisions ask for (policies/route.h Rewrites).
//
// stanza_features() fills every policy::MessageFeatures field the XML alone can answer; the
// daemon adds the fields that need its own state (mentions_user, muc_own_reflection,
// refers_to_archived, iq_for_proxy) and, for a copy (carbon, MAM result), passes the *inner*
// message and sets `forwarded` itself. The rules, beyond message_features.h's field comments:
//
// * Namespaces are matched on the effective namespace (an element's xmlns, else its parent's).
//   The stanza itself and children without xmlns are in the stream's content namespace: "",
//   "jabber:client" and "jabber:server" all count, so a stanza parsed off a stream, built by hand
//   or unwrapped from <forwarded> (where it carries xmlns='jabber:client') reads the same.
// * kind: <presence> and <iq> by name; anything else is read as a message (callers pass stanzas).
// * type: message: chat/groupchat/headline/error, missing or unknown = Normal (RFC 6121 §5.2.2);
//   presence: missing = Available, and an unknown value too (the Presence class either way);
//   iq: get/set/result/error, missing or unknown = Get (invalid; the caller answers bad-request).
// * has_body: some <body> (any xml:lang) with non-empty text; has_subject: a <subject> element,
//   even empty (an empty MUC subject clears it, RFC 6121 §5.2.4 / XEP-0045 §8.1).
// * encryption, strongest evidence first: an OMEMO <encrypted> (eu.siacs.conversations.axolotl,
//   urn:xmpp:omemo:1, urn:xmpp:omemo:2) ⇒ Omemo; an OX <openpgp> ⇒ Ox; an EME <encryption
//   namespace=…> naming OMEMO/OX/OTR ⇒ that scheme, naming anything else ⇒ Eme; an obsolete
//   XEP-0027 <x xmlns='jabber:x:encrypted'> ⇒ Eme (another scheme); a body starting "?OTR" ⇒ Otr.
// * chat markers (XEP-0333): only <displayed/> sets marker_displayed. <markable/>, and the
//   <received/>/<acknowledged/> markers the XEP dropped, are recognised (not other_payload) but
//   set nothing: alone they make an Other message, which is what they are to the routing rules.
// * retraction: <retract> in urn:xmpp:message-retract:1 (XEP-0424 ≥ 0.4) or :0, also wrapped in
//   XEP-0422 <apply-to xmlns='urn:xmpp:fasten:0'> (XEP-0424 < 0.4). A <retracted/> tombstone (as
//   MAM serves it) is not a retraction and counts as other_payload.
// * call: JMI (urn:xmpp:jingle-message:0 or :1) propose/retract/accept/proceed/reject/finish; an
//   unknown JMI element is other_payload.
// * other_payload: any child element not recognised above that is not metadata. Metadata: body,
//   subject, thread, error (and presence's show/status/priority) in the content namespace; hints
//   (any element of urn:xmpp:hints); urn:xmpp:sid:0 (stanza-id, origin-id); delay (urn:xmpp:delay,
//   jabber:x:delay); XEP-0033 addresses; XEP-0172 nick; XEP-0428 fallback indications; carbons
//   <private/>; the muc#user <x> (muc_user_x). A carbon's <received>/<sent> wrapper is not
//   unwrapped here and counts as other_payload. jabber:x:oob, XEP-0461 replies, reactions … are
//   payload. The scan covers presence and iq children too (an iq's query is other_payload).
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/xml/stanza.h"
#include "policies/message_features.h"

namespace s2 {

// Facts of one stanza (message, presence or iq) as the policies see them.
// For a carbon / MAM result the caller passes the inner message and sets `forwarded` itself.
policy::MessageFeatures stanza_features(const Stanza& s);

// What the mirror and dedup need from a message.
struct MessageIds {
  std::string id;         // 'id' attribute
  std::string origin_id;  // <origin-id xmlns='urn:xmpp:sid:0' id=…/> (the first one)
  std::vector<std::pair<std::string, std::string>> stanza_ids;  // (id, by) of every <stanza-id
                                                                // xmlns='urn:xmpp:sid:0'>, in order
  // The id this message refers to, chosen in classify()'s precedence order so that it names the
  // target of the message's class: retraction (<retract id> of XEP-0424 ≥ 0.4, else the XEP-0422
  // <apply-to id>), correction <replace id>, receipt <received id>, marker <displayed id>. For a
  // message of type error: its own id attribute (an error echoes the id of the stanza it bounces,
  // message_features.h refers_to_archived). Else "".
  std::string ref_id;
};
MessageIds message_ids(const Stanza& s);

// One message's facts, read once: what the policies decide on (features) and
// what the mirror indexes (ids, addresses). The hub reads them when a stanza
// enters its way and passes the value on; nothing downstream parses again.
// The features are the XML's only: the caller sets `forwarded` and the
// fields that need its state (message_features.h).
struct MessageFacts {
  policy::MessageFeatures features;
  MessageIds ids;
  std::string from, to, type;
};
MessageFacts read_message_facts(const Stanza& s);

// Canonical content for the dedup fingerprint (policies/dedup.h DedupInput::content), the same
// whether the message is seen live, as a carbon's inner message or as a MAM result:
// * the text of the first <body> with non-empty text, when there is one;
// * else a canonical serialisation of the content children: routing metadata — <stanza-id> and
//   <origin-id> (urn:xmpp:sid:0), delay (urn:xmpp:delay, jabber:x:delay), <thread>, hints,
//   carbons <private/>, XEP-0033 addresses — is left out (servers add or strip it on the way);
//   every other child is written as effective namespace (the content namespace always as
//   "jabber:client"), name, attributes sorted by name (xmlns excluded), non-whitespace text and
//   children, recursively, delimited by C0 control characters (XML 1.0 cannot carry them, so no
//   two different trees share a serialisation); the top-level children are sorted, so their order
//   does not matter. A message with no content children gives "".
std::string fingerprint_content(const Stanza& s);

// Removes every <stanza-id xmlns='urn:xmpp:sid:0'> child whose `by` policy::should_strip_stanza_id
// says to strip (account bare JID, domain, missing `by`). Returns how many were removed. Operates
// in place (a Stanza shares the libstrophe node). The kept stanza-ids move behind the other
// children (the wrapper can only unlink by name); their relative order is preserved.
int strip_claimed_stanza_ids(Stanza& s, std::string_view account_bare, std::string_view domain);

// Adds <stanza-id xmlns='urn:xmpp:sid:0' by=… id=…/> after removing any existing one whose `by`
// is the same JID (ASCII case folded, policy::jid_equal).
void set_stanza_id(Stanza& s, std::string_view by, std::string_view id);

// Adds <origin-id xmlns='urn:xmpp:sid:0' id=…/> if there is none with a non-empty id (an empty
// one is replaced); returns the origin-id now present.
std::string ensure_origin_id(Stanza& s, std::string_view fresh_id);

// Adds <delay xmlns='urn:xmpp:delay' from=… stamp=…/> unless an urn:xmpp:delay <delay> is already
// there (stamp is an XEP-0082 string the caller formats; an empty `from` is omitted).
void add_delay(Stanza& s, std::string_view from, std::string_view stamp);

// Leaving rules (policies/route.h Rewrites): add <no-store xmlns='urn:xmpp:hints'/> and/or
// <private xmlns='urn:xmpp:carbons:2'/> if absent.
void add_hint_no_store(Stanza& s);
void add_carbons_private(Stanza& s);

// Presence priority rewrite for device links (ARCHITECTURE §3: device upstream sessions advertise
// priority -1): replaces every content-namespace <priority> child with one carrying `priority`.
void set_presence_priority(Stanza& s, int priority);

}  // namespace s2
