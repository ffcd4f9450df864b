// route(): persistence first (one rule for both directions), then the border-specific fan-out.
// See route.h for the rules and their sources; this file is their plain transcription.
#include "policies/route.h"

namespace s2::policy {
namespace {

bool no_store(const Hints& h) { return h.no_store || h.no_permanent_store; }

// Does the stanza name a single resource? FromLegacy, only what arrived on one device's link does:
// a carbon's inner message to another account's full JID is still a copy for the whole account.
bool one_resource(const Addressing& a) {
  if (a.dir == Direction::FromLegacy) return a.to == Target::OwnDevice;
  switch (a.to) {
    case Target::OwnDevice:
    case Target::OwnForeign:
    case Target::OtherFull:
    case Target::Occupant:
      return true;
    case Target::OwnBare:
    case Target::Anchor:
    case Target::OtherBare:
    case Target::Room:
      break;
  }
  return false;
}

Persistence ephemeral(const Addressing& a) {
  return one_resource(a) ? Persistence::EphemeralOneDevice : Persistence::EphemeralAllOnline;
}

// A session2 device addressing a full JID means "that resource only" (ARCHITECTURE.md §2) unless
// it asks for <store/>; an occupant has no bare JID to address instead, so PMs stay persistent.
bool session2_one_resource(const Addressing& a) {
  return a.dir == Direction::FromDevice && a.sender == Profile::Session2 && one_resource(a) &&
         a.to != Target::Occupant;
}

RouteDecision drop(RouteDecision d) {
  d.disposition = Disposition::Drop;
  d.devices = Fanout::None;
  return d;
}

RouteDecision consume(RouteDecision d) {
  d.disposition = Disposition::Deliver;
  d.proxy = true;
  return d;
}

RouteDecision send_upstream(RouteDecision d) {
  d.disposition = Disposition::Deliver;
  d.upstream = true;
  return d;
}

RouteDecision deliver_one(RouteDecision d, MessageClass c, const Addressing& a,
                          const MessageFeatures& f) {
  if (a.device_present) {
    d.disposition = Disposition::Deliver;
    d.devices = Fanout::OneDevice;
    return d;
  }
  d = drop(d);
  if (auto e = error_if_device_gone(c, f)) {
    d.disposition = Disposition::Bounce;
    d.error = e;
  }
  return d;
}

RouteDecision route_entering(MessageClass c, const Addressing& a, const MessageFeatures& f,
                             RouteDecision d) {
  const bool at_link = a.to == Target::OwnDevice;
  const bool at_anchor = a.to == Target::OwnBare || a.to == Target::Anchor;
  switch (c) {
    case MessageClass::Iq:
      if (f.iq_for_proxy || at_anchor) return consume(d);
      return at_link ? deliver_one(d, c, a, f) : drop(d);
    case MessageClass::Presence:
    case MessageClass::Subscription:
      // Every link hears its own presence broadcasts and subscription requests; the anchor's copy
      // is the proxy's (it mirrors contacts' presence for itself), never a device's.
      if (at_link) return deliver_one(d, c, a, f);
      return at_anchor ? consume(d) : drop(d);
    case MessageClass::Groupchat:
      // Only the occupant device is in the room; Carbons never copy groupchat (PROTOCOLS.md §4).
      return at_link ? deliver_one(d, c, a, f) : drop(d);
    default:
      break;
  }
  switch (d.persistence) {
    case Persistence::Persistent:
      d.disposition = Disposition::Deliver;
      d.archive = true;
      d.devices = Fanout::AllDevices;
      return d;
    case Persistence::EphemeralOneDevice:
      return deliver_one(d, c, a, f);
    case Persistence::EphemeralAllOnline:
      // Services broadcast headlines (announcements) to every session's full JID: each device's
      // link got its own copy, so the anchor's would be a duplicate.
      // The anchor's own full JID: contacts never address it, but ejabberd 23 hands a stanza for an
      // unavailable full JID to the best resource with `to` rewritten to it. One device's stanza
      // whose device is gone: never rerouted (headlines: each link also got its own copy).
      if (a.to == Target::Anchor) {
        Addressing gone = a;
        gone.device_present = false;
        return deliver_one(d, c, gone, f);
      }
      d.disposition = Disposition::Deliver;
      d.devices = Fanout::AllOnlineDevices;
      return d;
    case Persistence::KeptUpstream:
      break;
  }
  return drop(d);
}

RouteDecision route_leaving(MessageClass c, const Addressing& a, const MessageFeatures& f,
                            RouteDecision d) {
  // XEP-0359: a device cannot vouch for ids the account's archive (or the proxy) assigns.
  d.rewrites.strip_claimed_stanza_ids = f.kind == StanzaKind::Message;
  switch (c) {
    case MessageClass::Iq:
      if (f.iq_for_proxy || a.to == Target::Anchor) return consume(d);
      return a.to == Target::OwnDevice ? deliver_one(d, c, a, f) : send_upstream(d);
    case MessageClass::Presence:
      d = send_upstream(d);
      if (a.to == Target::OwnBare &&
          (f.presence == PresenceType::Available || f.presence == PresenceType::Unavailable)) {
        d.proxy = true;  // the anchor's presence mirrors the best device presence (§3)
        d.rewrites.negative_priority = f.presence == PresenceType::Available;
      }
      return d;
    case MessageClass::Subscription:
      return send_upstream(d);  // the roster lives upstream
    case MessageClass::Groupchat:
      d = send_upstream(d);
      d.rewrites.add_origin_id = true;  // survives MUC reflection (PROTOCOLS.md §6)
      return d;
    case MessageClass::Error:
      // A device's own error reply: for the stanza's sender only, never history.
      return a.to == Target::OwnDevice ? deliver_one(d, c, a, f) : send_upstream(d);
    default:
      break;
  }
  const bool to_own = a.to == Target::OwnBare || a.to == Target::Anchor;
  switch (d.persistence) {
    case Persistence::Persistent:
      d.disposition = Disposition::Deliver;
      d.archive = true;
      d.devices = Fanout::AllDevices;
      d.include_sender = a.sender == Profile::Session2;
      // The proxy is authoritative for its own devices and anchor; anything else also goes
      // upstream, so contacts, upstream MAM and the account's non-proxy clients see it.
      d.upstream = a.to != Target::OwnDevice && a.to != Target::Anchor;
      d.rewrites.add_origin_id = true;
      return d;
    case Persistence::EphemeralOneDevice:
      if (a.to == Target::OwnDevice) return deliver_one(d, c, a, f);
      d = send_upstream(d);
      // A standalone chat state is left as sent: no server archives one, and ejabberd's CSI only
      // holds a message whose every child is a chat state (misc:is_standalone_chat_state), so a
      // <private/> would make it flush the recipient's queue.
      if (c == MessageClass::ChatState) return d;
      d.rewrites.add_no_store = true;  // upstream MAM must not archive it
      d.rewrites.add_private = true;   // upstream Carbons must not copy it
      return d;
    case Persistence::EphemeralAllOnline: {
      d.disposition = Disposition::Deliver;
      d.upstream = !to_own;
      // Reflect to the other online devices as Carbons would (PROTOCOLS.md §4: not headlines, not
      // what the sender marked <private/> or <no-copy/>); a stanza to the account itself reaches
      // its online devices whatever it carries.
      const bool copy = c != MessageClass::Headline && !f.carbons_private && !f.hints.no_copy;
      d.devices = (to_own || copy) ? Fanout::AllOnlineDevices : Fanout::None;
      return d;
    }
    case Persistence::KeptUpstream:
      break;
  }
  return send_upstream(d);
}

}  // namespace

Persistence persistence(MessageClass c, const MessageFeatures& f, const Addressing& a) {
  switch (c) {
    case MessageClass::Iq:
      return Persistence::EphemeralOneDevice;
    case MessageClass::Presence:
    case MessageClass::Headline:  // never stored, even with <store/> (RFC 6121 §5.2.2)
      return ephemeral(a);
    case MessageClass::Groupchat:
    case MessageClass::Subscription:
      return Persistence::KeptUpstream;
    case MessageClass::Error:
      // Linked to an archived original: history every device must see (ARCHITECTURE.md §7).
      if (a.dir == Direction::FromLegacy && f.refers_to_archived && !no_store(f.hints)) {
        return Persistence::Persistent;
      }
      return ephemeral(a);
    case MessageClass::ChatState:
    case MessageClass::Call:
    case MessageClass::Other:
      if (f.hints.store && !no_store(f.hints)) return Persistence::Persistent;
      return ephemeral(a);
    case MessageClass::ChatBody:
    case MessageClass::NormalBody:
    case MessageClass::Encrypted:
      if (no_store(f.hints)) return ephemeral(a);
      if (session2_one_resource(a) && !f.hints.store) return Persistence::EphemeralOneDevice;
      return Persistence::Persistent;
    case MessageClass::MucPrivate:
    case MessageClass::MucInvite:
    case MessageClass::Receipt:
    case MessageClass::Marker:
    case MessageClass::Correction:
    case MessageClass::Retraction:
      // Content a user must see everywhere, or a change to archived history: addressing a full JID
      // cannot make it one device's business without the histories diverging.
      return no_store(f.hints) ? ephemeral(a) : Persistence::Persistent;
  }
  return ephemeral(a);
}

RouteDecision route(MessageClass c, Addressing a, const MessageFeatures& f) {
  RouteDecision d;
  d.persistence = persistence(c, f, a);
  return a.dir == Direction::FromLegacy ? route_entering(c, a, f, d) : route_leaving(c, a, f, d);
}

std::optional<StanzaError> error_if_device_gone(MessageClass c, const MessageFeatures& f) {
  const StanzaError unavailable{ErrorCondition::ServiceUnavailable, ErrorType::Cancel};
  switch (c) {
    case MessageClass::Iq:
      if (f.iq == IqType::Get || f.iq == IqType::Set) return unavailable;
      return std::nullopt;
    case MessageClass::Error:
    case MessageClass::Presence:
    case MessageClass::Subscription:
    case MessageClass::Headline:
      return std::nullopt;
    default:
      return unavailable;
  }
}

std::string_view to_string(Direction d) {
  switch (d) {
    case Direction::FromDevice:
      return "from_device";
    case Direction::FromLegacy:
      return "from_legacy";
  }
  return "unknown";
}

std::string_view to_string(Target t) {
  switch (t) {
    case Target::OwnBare:
      return "own_bare";
    case Target::Anchor:
      return "anchor";
    case Target::OwnDevice:
      return "own_device";
    case Target::OwnForeign:
      return "own_foreign";
    case Target::OtherBare:
      return "other_bare";
    case Target::OtherFull:
      return "other_full";
    case Target::Room:
      return "room";
    case Target::Occupant:
      return "occupant";
  }
  return "unknown";
}

std::string_view to_string(Persistence p) {
  switch (p) {
    case Persistence::Persistent:
      return "persistent";
    case Persistence::EphemeralAllOnline:
      return "ephemeral_all_online";
    case Persistence::EphemeralOneDevice:
      return "ephemeral_one_device";
    case Persistence::KeptUpstream:
      return "kept_upstream";
  }
  return "unknown";
}

std::string_view to_string(Fanout f) {
  switch (f) {
    case Fanout::None:
      return "none";
    case Fanout::AllDevices:
      return "all_devices";
    case Fanout::AllOnlineDevices:
      return "all_online_devices";
    case Fanout::OneDevice:
      return "one_device";
  }
  return "unknown";
}

std::string_view to_string(Disposition d) {
  switch (d) {
    case Disposition::Deliver:
      return "deliver";
    case Disposition::Drop:
      return "drop";
    case Disposition::Bounce:
      return "bounce";
  }
  return "unknown";
}

std::string_view to_string(ErrorCondition c) {
  switch (c) {
    case ErrorCondition::ServiceUnavailable:
      return "service-unavailable";
  }
  return "undefined-condition";
}

std::string_view to_string(ErrorType t) {
  switch (t) {
    case ErrorType::Cancel:
      return "cancel";
    case ErrorType::Continue:
      return "continue";
    case ErrorType::Modify:
      return "modify";
    case ErrorType::Auth:
      return "auth";
    case ErrorType::Wait:
      return "wait";
  }
  return "cancel";
}

}  // namespace s2::policy
