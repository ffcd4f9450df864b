// AccountHub, presence: a device's broadcast presence goes upstream with
// priority -1 (bare-JID messages have one upstream path, the anchor), and
// the anchor mirrors the best presence of the account's devices (idle:
// --idle-presence). A legacy device's initial presence starts its catch-up
// (legacy_catchup.h), as offline storage would.
#include "policies/stanza_facts.h"
#include "proxy/account_hub.h"
#include "proxy/device.h"
#include "proxy/proxy_context.h"

namespace s2 {

void AccountHub::handle_device_presence(Device* d, Stanza p) {
  const bool broadcast = p.attr_or("to").empty();
  const std::string type = p.attr_or("type");
  if (broadcast && (type.empty() || type == "unavailable")) {
    const bool available = type.empty();
    const bool initial = available && !d->presence_available() && !d->live();
    d->set_presence(available, p.child("show").text_content(), p.child("status").text_content());
    d->set_presence_stanza(available ? p.clone() : Stanza());
    // Bare-JID messages must have one upstream path: the anchor (§3). On the link the anchor
    // rides, the anchor sends it at priority 0 (Anchor::set_ridden_presence).
    if (anchor_rides(d)) {
      anchor_->set_ridden_presence(d->presence_stanza());
      // Any child may have changed (an avatar hash), not only show and status.
      if (!update_anchor_presence()) anchor_->resend_presence();
    } else {
      if (available) set_presence_priority(p, -1);
      if (d->upstream()) d->upstream()->send(p);
      update_anchor_presence();
    }
    if (initial && d->profile() == policy::Profile::Legacy) {
      when_account_known([this, d, alive = d->alive_token()] {
        if (!alive.expired()) legacy_catchup_.start(d);
      });
    }
    return;
  }
  if (d->upstream()) d->upstream()->send(p);
}

bool AccountHub::update_anchor_presence() {
  if (!anchor_) return false;
  // The best presence of the devices that are available; idle otherwise.
  static const auto rank = [](const std::string& show) {
    if (show == "chat") return 5;
    if (show.empty()) return 4;
    if (show == "dnd") return 3;
    if (show == "away") return 2;
    return 1;  // xa
  };
  Device* best = nullptr;
  for (auto* d : devices_)
    if (d->presence_available() &&
        (!best || rank(d->presence_show()) > rank(best->presence_show())))
      best = d;
  if (best) {
    return anchor_->set_presence(true, best->presence_show(), best->presence_status());
  }
  if (ctx_.config.idle_presence == "unavailable") return anchor_->set_presence(false, "", "");
  return anchor_->set_presence(true, ctx_.config.idle_presence, "");
}

}  // namespace s2
