// See carbons_fanout.h.
#include "proxy/carbons_fanout.h"

#include <algorithm>

#include "common/jid/jid.h"
#include "common/mam/carbons.h"
#include "common/store/archive_id.h"
#include "policies/dedup.h"
#include "policies/stanza_facts.h"
#include "proxy/device.h"
#include "proxy/proxy_context.h"
#include "proxy/xmpp_ns.h"

namespace s2 {

CarbonsFanout::CarbonsFanout(ProxyContext& ctx, const std::string& account,
                             const std::vector<Device*>& devices)
    : ctx_(ctx), account_(account), devices_(devices) {}

Stanza CarbonsFanout::copy_for(Device* d, const Stanza& inner, bool outgoing,
                               store::ArchiveId id) const {
  Stanza m = inner.clone();
  if (id != 0) set_stanza_id(m, account_, store::render_archive_id(id));
  if (outgoing) {
    // Sent by another resource of the account: Carbons <sent/>, for devices
    // that asked for Carbons.
    if (!d->carbons()) return {};
    return mam::wrap_carbon(mam::CarbonKind::Sent, account_, d->full_jid(), m);
  }
  const std::string to = inner.attr_or("to");
  auto tj = parse_jid(to);
  // Errors reach every device as they are: a bounce of what one device sent
  // is news for all of them (ARCHITECTURE.md §7).
  if (inner.attr_or("type") == "error") return m;
  const bool for_this = to.empty() || !tj || tj->resource.empty() ||
                        tj->resource == ctx_.config.anchor_resource ||
                        policy::jid_equal(to, d->full_jid()) || tj->bare() != account_;
  if (for_this) return m;
  if (d->carbons()) return mam::wrap_carbon(mam::CarbonKind::Received, account_, d->full_jid(), m);
  // Addressed to another resource: a session2 device converges to the one
  // history anyway; a legacy device that did not ask for Carbons keeps the
  // legacy contract (it finds the message in MAM).
  if (d->profile() == policy::Profile::Session2) return m;
  return {};
}

void CarbonsFanout::fan_out(const Stanza& inner, bool outgoing, store::ArchiveId id,
                            policy::Fanout fanout, Device* only, Device* except,
                            Device* except2) const {
  if (fanout == policy::Fanout::None) return;
  if (fanout == policy::Fanout::OneDevice) {
    if (!only) return;
    Stanza m = inner.clone();
    if (id != 0) set_stanza_id(m, account_, store::render_archive_id(id));
    only->deliver(m, id);
    return;
  }
  // Copy: delivering may end a device (SM queue overflow), which detaches it.
  const std::vector<Device*> targets = devices_;
  for (auto* d : targets) {
    if (d == except || d == except2) continue;
    if (std::find(devices_.begin(), devices_.end(), d) == devices_.end()) continue;
    // A legacy device before its initial presence (and catch-up) gets
    // history at catch-up, not now; anything it already got there is skipped.
    // A message addressed to this very device is its own, live or not (a
    // legacy client may never send presence); catch-up will not repeat it.
    const bool addressed = !outgoing && policy::jid_equal(inner.attr_or("to"), d->full_jid());
    if (id != 0 && !d->live() && addressed) {
      d->note_pre_live(id);
    } else {
      if (id != 0 && (!d->live() || id <= d->live_from())) continue;
      if (id == 0 && !d->live() && d->profile() == policy::Profile::Legacy && !addressed) continue;
    }
    auto copy = copy_for(d, inner, outgoing, id);
    if (copy) d->deliver(copy, id);
  }
}

bool CarbonsFanout::handle_iq(Device* d, const Stanza& iq) {
  // Carbons are the proxy's (links never enable them upstream: the anchor
  // hears everything once, and the hub copies it to the devices that asked).
  if (!iq.attr_or("to").empty() || iq.attr_or("type") != "set") return false;
  bool on;
  if (iq.child("enable", ns::kCarbons)) {
    on = true;
  } else if (iq.child("disable", ns::kCarbons)) {
    on = false;
  } else {
    return false;
  }
  d->set_carbons(on);
  auto r = Stanza::element("iq");
  r.set_attr("type", "result").set_attr("id", iq.attr_or("id")).set_attr("to", d->full_jid());
  d->deliver(r, 0);
  return true;
}

}  // namespace s2
