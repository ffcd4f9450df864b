// Push by the proxy (XEP-0357), one PushService per account (ARCHITECTURE.md §7, issue 10 item 3).
//
// Devices register with <enable xmlns='urn:xmpp:push:0' jid node>[publish-options]</enable> and
// revoke with <disable jid [node]/>. The proxy answers both itself and keeps the registrations per
// device (by resource) in the mirror's device record (DeviceRecord::push, the blob format below),
// so they survive restarts and a device that ended its session — cleanly or not — is still woken.
// Nothing is relayed upstream: the upstream's own push module (Prosody mod_cloud_notify, ejabberd
// mod_push) never learns of the registration and so never pushes a second time.
//
// The hub calls on_committed() for every message it committed to the mirror, with the urgency and
// persistence the policies gave it. For each registered device that is hibernating (a Device
// without a client connection: its SM queue holds the stanza) or offline (no Device: it syncs
// from the mirror), policy::push_decide() says push, coalesce or skip; PushCoalescer turns that
// into at most one publish per device per burst: the first urgent stanza publishes at once, the
// ones within the window after it are only counted, and the next publish carries the count of
// every urgent stanza since the device was last connected (message-count, a badge). A connected
// device is never pushed. The notification is published to the app server through the account's
// anchor session (Anchor::request): urn:xmpp:push:summary with message-count and
// last-message-sender, the client's publish-options passed through, the body only when the account
// opted in (`accounts push-body`, else --push-body; and then only a plain-text one,
// policy::push_includes_body).
//
// App-server errors are counted; like mod_cloud_notify's push_max_errors, a registration is
// removed after kMaxErrors errors in a row whose type is not `wait`. A timeout or a missing anchor
// is the proxy's (or the upstream's) problem, not the app server's: counted, never disabling.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/store/store.h"
#include "common/xml/stanza.h"
#include "policies/push.h"
#include "policies/route.h"
#include "policies/urgency.h"

namespace s2 {

class Anchor;
class Device;
class ProxyContext;

// One XEP-0357 registration of one device.
struct PushRegistration {
  std::string jid;              // the app server (XEP-0357 §5 `jid`)
  std::string node;             // the node on it for this device
  std::string publish_options;  // the client's <x xmlns='jabber:x:data'/> as XML ("" = none)
  uint32_t errors = 0;          // app-server errors (type other than wait) in a row
  bool operator==(const PushRegistration&) const = default;
};

// DeviceRecord::push: "" when the device has no registration, else "S2P1", a 32-bit count and per
// registration the three strings (32-bit big-endian length + bytes) and `errors` (32-bit). Decoding
// refuses anything else (truncated, trailing bytes, unknown version, absurd counts): nullopt.
std::string encode_push_registrations(const std::vector<PushRegistration>& regs);
std::optional<std::vector<PushRegistration>> decode_push_registrations(std::string_view blob);

// Coalescing for one device (pure: the clock is a value). on_stanza() decides with
// policy::push_decide(); a connected device resets the burst and the count.
class PushCoalescer {
 public:
  struct Step {
    policy::PushAction action = policy::PushAction::Skip;
    uint32_t message_count = 0;  // for Push: urgent stanzas since the device was last connected
  };
  Step on_stanza(policy::Urgency u, policy::Persistence p, policy::DeviceState state,
                 bool registered, uint64_t now_ms, uint64_t window_ms);
  // The device connected (bound or resumed): whatever was pushed has been answered.
  void on_connected();

 private:
  bool unanswered_ = false;
  uint64_t last_push_ms_ = 0;
  uint32_t pending_ = 0;
};

class PushService {
 public:
  static constexpr uint32_t kMaxErrors = 16;         // mod_cloud_notify's push_max_errors
  static constexpr size_t kMaxPerDevice = 8;         // registrations kept per device
  static constexpr size_t kMaxFormBytes = 8 * 1024;  // publish-options kept per registration
  static constexpr uint64_t kPublishTimeoutMs = 30000;

  // `account_no` and `anchor` are asked when needed: the account number is known only once the
  // mirror created the account, and the anchor (null unless ready) comes and goes.
  PushService(ProxyContext& ctx, std::string account, std::function<store::AccountNo()> account_no,
              std::function<Anchor*()> anchor);
  ~PushService();

  // An <iq type='set'> with a XEP-0357 <enable/> or <disable/>: handle_iq() is its whole answer.
  static bool wants(const Stanza& iq);
  void handle_iq(Device* d, const Stanza& iq);

  // The hub's devices as they bind and end (a hibernating Device is still attached).
  // The anchor is (again) ready: publishes that found it down go out now.
  void anchor_ready();
  void device_attached(Device* d);
  void device_detached(Device* d);

  // What the policies said about a message the hub committed.
  struct Facts {
    policy::Urgency urgency = policy::Urgency::Silent;
    policy::Persistence persistence = policy::Persistence::Persistent;
  };
  // A message the hub committed to the mirror (archive id `id`).
  void on_committed(const Stanza& inner, const Facts& facts, store::ArchiveId id);
  // A stanza that is not the mirror's (a room's groupchat, kept upstream) written to one device
  // `resource` only: it wakes that device alone, with the urgency the device's own view gave it
  // (its nick in the room, the room's XEP-0492 setting).
  void on_delivered(const std::string& resource, const Stanza& inner, const Facts& facts);

 private:
  // Publishes waiting for the anchor: it is down for a moment when it leaves the link of a
  // device that ended (anchor.h) until its own session is ready, and for an outage.
  std::vector<std::function<void()>> waiting_anchor_;
  static constexpr size_t kMaxWaitingAnchor = 256;
  void consider(const Stanza& inner, const Facts& facts, store::ArchiveId id,
                const std::string* only);
  struct Entry {
    std::vector<PushRegistration> regs;
    PushCoalescer coalescer;
  };

  bool ensure_loaded();
  policy::DeviceState state_of(const std::string& resource) const;
  bool body_opted_in() const;
  void persist(const std::string& resource, std::function<void(bool)> done);
  void publish(const std::string& resource, const PushRegistration& reg, uint32_t count,
               const std::string& sender, const std::string& body);
  void publish_answered(const std::string& resource, const std::string& jid,
                        const std::string& node, const Stanza* answer);

  ProxyContext& ctx_;
  std::string account_;
  std::function<store::AccountNo()> account_no_;
  std::function<Anchor*()> anchor_;
  bool loaded_ = false;
  std::map<std::string, Entry> entries_;  // by device resource
  std::vector<Device*> devices_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace s2
