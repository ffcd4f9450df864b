// See legacy_catchup.h.
#include "proxy/legacy_catchup.h"

#include <algorithm>

#include "common/mam/datetime.h"
#include "common/store/archive_id.h"
#include "common/util/log.h"
#include "policies/dedup.h"
#include "policies/stanza_facts.h"
#include "proxy/carbons_fanout.h"
#include "proxy/device.h"
#include "proxy/device_cursors.h"
#include "proxy/proxy_context.h"

namespace s2 {

LegacyCatchup::LegacyCatchup(ProxyContext& ctx, const std::string& domain, DeviceCursors& cursors,
                             const CarbonsFanout& fanout)
    : ctx_(ctx), domain_(domain), cursors_(cursors), fanout_(fanout) {}

void LegacyCatchup::start(Device* d) {
  if (d->live() || d->catching_up() || account_no_ == 0) return;
  store::ArchiveId from = cursors_.cursor_of(d->resource(), d->first_cursor());
  auto bounds = ctx_.store->bounds(account_no_);
  const store::ArchiveId last = bounds.ok() ? bounds->last_id : 0;
  const size_t cap = ctx_.config.catchup_max;
  if (last > cap && last - cap > from) {
    S2_LOG(LogLevel::Info, "hub.catchup_capped",
           {{"device", d->log_id()}, {"missed", last - from}});
    from = last - cap;
  }
  d->set_catchup(true, from);
  more(d);
}

void LegacyCatchup::more(Device* d) {
  if (!d->catching_up() || d->ended()) return;
  store::ArchiveId cursor = d->catchup_cursor();
  size_t room = d->catchup_room();
  size_t sent = 0;
  bool at_end = false;
  while (room > 0) {
    store::MamQuery q;
    if (cursor > 0) q.after_id = store::render_archive_id(cursor);
    q.max = std::min<size_t>(room, 200);
    auto page = ctx_.store->query(account_no_, q);
    if (!page.ok() || page->items.empty()) {
      at_end = true;
      break;
    }
    for (auto& m : page->items) {
      // Without SM the socket's backlog is the only brake: check it per stanza.
      if (!d->sm_enabled() && d->catchup_room() == 0) {
        room = 0;
        break;
      }
      cursor = m.archive_id;
      if (d->pre_live(m.archive_id)) continue;  // it got this one already, addressed to it
      auto inner = Stanza::parse(m.record.stanza);
      if (!inner) continue;
      const bool outgoing = m.record.direction == store::Direction::kOutgoing;
      // Its own sends are not news to it.
      if (outgoing && policy::jid_equal(inner.attr_or("from"), d->full_jid())) continue;
      add_delay(inner, domain_, mam::format_datetime(m.archive_ms));
      auto copy = fanout_.copy_for(d, inner, outgoing, m.archive_id);
      if (!copy) continue;
      d->set_catchup(true, cursor);
      d->deliver(copy, m.archive_id);
      if (!d->catching_up()) return;  // the device ended
      ++sent;
      --room;
    }
    d->set_catchup(true, cursor);
    if (room == 0) break;
    if (page->complete) {
      at_end = true;
      break;
    }
  }
  if (sent)
    S2_LOG(LogLevel::Debug, "hub.device_catchup", {{"device", d->log_id()}, {"delivered", sent}});
  if (at_end) {
    // Everything up to `cursor` is out; newer ids are live deliveries. Both
    // happen on this thread, so nothing falls in between.
    d->set_catchup(false, cursor);
    d->set_live(cursor);
    if (!d->sm_enabled() || sent == 0) cursors_.delivered(d, cursor);
    return;
  }
  // Wait for the client to take more (acks, or the socket draining).
  d->poll_catchup([this, d] { more(d); });
}

}  // namespace s2
