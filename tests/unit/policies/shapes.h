// Test vocabulary for the policy tables: stanza shapes built like the XML they stand for
// (`S::chat().body().no_store()` is <message type='chat'><body/><no-store/></message>), short
// aliases for the enums so a table row fits on one line, and stream operators so doctest prints
// enum names instead of numbers when a row fails.
#pragma once

#include <doctest/doctest.h>

#include <optional>
#include <string>
#include <string_view>

#include "policies/carbons.h"
#include "policies/classify.h"
#include "policies/csi.h"
#include "policies/message_features.h"
#include "policies/push.h"
#include "policies/receipts.h"
#include "policies/route.h"
#include "policies/urgency.h"

namespace s2::policy {

// Printing for doctest: its enum overload of toString() prints numbers; these non-template
// overloads, found by ADL, win overload resolution and print the names.
#define S2_POLICY_TEST_PRINTABLE(E)                                    \
  inline doctest::String toString(E v) {                               \
    const auto n = to_string(v);                                       \
    return doctest::String(n.data(), static_cast<unsigned>(n.size())); \
  }

inline std::string_view to_string(ReceiptAction v) {
  return v == ReceiptAction::SendUpstream ? "send_upstream" : "drop";
}
inline std::string_view to_string(ReceiptState v) {
  switch (v) {
    case ReceiptState::NotRequested:
      return "not_requested";
    case ReceiptState::Requested:
      return "requested";
    case ReceiptState::Sent:
      return "sent";
  }
  return "unknown";
}

S2_POLICY_TEST_PRINTABLE(MessageClass)
S2_POLICY_TEST_PRINTABLE(Direction)
S2_POLICY_TEST_PRINTABLE(Target)
S2_POLICY_TEST_PRINTABLE(Persistence)
S2_POLICY_TEST_PRINTABLE(Fanout)
S2_POLICY_TEST_PRINTABLE(Disposition)
S2_POLICY_TEST_PRINTABLE(Urgency)
S2_POLICY_TEST_PRINTABLE(CsiAction)
S2_POLICY_TEST_PRINTABLE(PushAction)
S2_POLICY_TEST_PRINTABLE(CarbonVerdict)
S2_POLICY_TEST_PRINTABLE(ReceiptAction)
S2_POLICY_TEST_PRINTABLE(ReceiptState)
#undef S2_POLICY_TEST_PRINTABLE

inline doctest::String toString(const StanzaError& e) {
  std::string s(to_string(e.condition));
  s += '/';
  s += to_string(e.type);
  return doctest::String(s.c_str());
}

namespace test {

// A stanza shape. Every setter returns a modified copy, so shapes compose in table rows.
struct S {
  MessageFeatures f;

  static constexpr S message(MessageType t) {
    S s;
    s.f.kind = StanzaKind::Message;
    s.f.type = t;
    return s;
  }
  static constexpr S chat() { return message(MessageType::Chat); }
  static constexpr S normal() { return message(MessageType::Normal); }
  static constexpr S groupchat() { return message(MessageType::Groupchat); }
  static constexpr S headline() { return message(MessageType::Headline); }
  static constexpr S error() { return message(MessageType::Error); }
  static constexpr S presence(PresenceType t = PresenceType::Available) {
    S s;
    s.f.kind = StanzaKind::Presence;
    s.f.presence = t;
    return s;
  }
  static constexpr S iq(IqType t = IqType::Get) {
    S s;
    s.f.kind = StanzaKind::Iq;
    s.f.iq = t;
    return s;
  }
  // Shorthands for the long ones.
  static constexpr S unavailable() { return presence(PresenceType::Unavailable); }
  static constexpr S subscribe() { return presence(PresenceType::Subscribe); }
  static constexpr S iq_set() { return iq(IqType::Set); }
  static constexpr S iq_result() { return iq(IqType::Result); }
  static constexpr S iq_error() { return iq(IqType::Error); }
  static constexpr S jmi(CallSignal c) { return chat().call(c); }  // XEP-0353, type chat
  static constexpr S propose() { return jmi(CallSignal::Propose); }

  constexpr S body() const {
    return with([](MessageFeatures& m) { m.has_body = true; });
  }
  constexpr S subject() const {
    return with([](MessageFeatures& m) { m.has_subject = true; });
  }
  constexpr S state() const {
    return with([](MessageFeatures& m) { m.chat_state = true; });
  }
  constexpr S request() const {
    return with([](MessageFeatures& m) { m.receipt_request = true; });
  }
  constexpr S receipt() const {
    return with([](MessageFeatures& m) { m.receipt = true; });
  }
  constexpr S displayed() const {
    return with([](MessageFeatures& m) { m.marker_displayed = true; });
  }
  constexpr S replace() const {
    return with([](MessageFeatures& m) { m.correction = true; });
  }
  constexpr S retract() const {
    return with([](MessageFeatures& m) { m.retraction = true; });
  }
  constexpr S call(CallSignal c) const {
    return with([c](MessageFeatures& m) { m.call = c; });
  }
  constexpr S other() const {
    return with([](MessageFeatures& m) { m.other_payload = true; });
  }
  constexpr S enc(Encryption e) const {
    return with([e](MessageFeatures& m) { m.encryption = e; });
  }
  constexpr S omemo() const { return enc(Encryption::Omemo); }
  constexpr S store() const {
    return with([](MessageFeatures& m) { m.hints.store = true; });
  }
  constexpr S no_store() const {
    return with([](MessageFeatures& m) { m.hints.no_store = true; });
  }
  constexpr S no_perm() const {
    return with([](MessageFeatures& m) { m.hints.no_permanent_store = true; });
  }
  constexpr S no_copy() const {
    return with([](MessageFeatures& m) { m.hints.no_copy = true; });
  }
  constexpr S priv() const {
    return with([](MessageFeatures& m) { m.carbons_private = true; });
  }
  constexpr S muc_x() const {
    return with([](MessageFeatures& m) { m.muc_user_x = true; });
  }
  constexpr S invite() const {
    return with([](MessageFeatures& m) { m.muc_invite = true; });
  }
  constexpr S mention() const {
    return with([](MessageFeatures& m) { m.mentions_user = true; });
  }
  constexpr S from_self() const {
    return with([](MessageFeatures& m) { m.muc_own_reflection = true; });
  }
  // Carbon copies (XEP-0280 <sent>/<received>): the shape is the forwarded message's.
  constexpr S sent_cc() const {
    return with([](MessageFeatures& m) { m.forwarded = Forwarded::Sent; });
  }
  constexpr S rcvd_cc() const {
    return with([](MessageFeatures& m) { m.forwarded = Forwarded::Received; });
  }
  constexpr S linked() const {
    return with([](MessageFeatures& m) { m.refers_to_archived = true; });
  }
  constexpr S for_proxy() const {
    return with([](MessageFeatures& m) { m.iq_for_proxy = true; });
  }

  constexpr operator const MessageFeatures&() const { return f; }  // NOLINT: rows read as stanzas

 private:
  template <typename Fn>
  constexpr S with(Fn fn) const {
    S s = *this;
    fn(s.f);
    return s;
  }
};

// Short names so rows stay on one line. Targets:
inline constexpr Target Bare = Target::OwnBare, Anc = Target::Anchor, Dev = Target::OwnDevice,
                        Foreign = Target::OwnForeign, OBare = Target::OtherBare,
                        OFull = Target::OtherFull, Room = Target::Room, Occ = Target::Occupant;
// Persistence:
inline constexpr Persistence Pers = Persistence::Persistent,
                             AllOn = Persistence::EphemeralAllOnline,
                             OneDev = Persistence::EphemeralOneDevice,
                             Kept = Persistence::KeptUpstream;
// Fan-out:
inline constexpr Fanout NoDev = Fanout::None, All = Fanout::AllDevices,
                        Online = Fanout::AllOnlineDevices, One = Fanout::OneDevice;
// Disposition:
inline constexpr Disposition Deliver = Disposition::Deliver, Drop = Disposition::Drop,
                             Bounce = Disposition::Bounce;
// Urgency:
inline constexpr Urgency Imm = Urgency::Immediate, Urg = Urgency::Urgent, Norm = Urgency::Normal,
                         Sil = Urgency::Silent;
// Profiles and directions:
inline constexpr Profile S2 = Profile::Session2, Leg = Profile::Legacy;
inline constexpr Direction In = Direction::FromLegacy, Out = Direction::FromDevice;

inline constexpr bool yes = true, no = false;

inline Addressing entering(Target to, bool present = true) {
  return Addressing{Direction::FromLegacy, to, Profile::Session2, present};
}
inline Addressing leaving(Target to, Profile p = Profile::Session2, bool present = true) {
  return Addressing{Direction::FromDevice, to, p, present};
}

}  // namespace test
}  // namespace s2::policy
