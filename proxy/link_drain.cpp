// See link_drain.h.
#include "proxy/link_drain.h"

#include "common/session2/errors.h"
#include "proxy/proxy_context.h"

namespace s2 {

LinkDrain::LinkDrain(ProxyContext& ctx, std::function<void(Stanza)> message,
                     std::function<void(uint64_t serial)> stranded)
    : ctx_(ctx), message_(std::move(message)), stranded_(std::move(stranded)) {}

LinkDrain::~LinkDrain() {
  for (auto& [serial, dr] : draining_) {
    dr.timer->stop();
    dr.link->close();
  }
}

void LinkDrain::Listener::on_upstream_stanza(Stanza s) {
  if (!owner || !link) return;
  const std::string name = s.name();
  if (name == "message") {
    owner->message_(std::move(s));
    return;
  }
  const std::string type = s.attr_or("type");
  if (name == "iq" && (type == "get" || type == "set")) {
    if (auto err = session2::build_stanza_error(s, "cancel", "service-unavailable")) {
      err.remove_attr("from");
      link->send(err);
    }
  }
}

void LinkDrain::hold_until(std::unique_ptr<UpstreamSession> link, std::function<bool()> replaced) {
  const uint64_t serial = link->serial();
  drain(std::move(link));
  draining_[serial].replaced = std::move(replaced);
}

void LinkDrain::drain(std::unique_ptr<UpstreamSession> link) {
  auto listener = std::make_unique<Listener>();
  listener->owner = this;
  listener->link = link.get();
  link->set_listener(listener.get());
  const uint64_t serial = link->serial();
  auto timer = std::make_shared<Timer>(ctx_.loop);
  draining_[serial] = Draining{std::move(link), timer, uv_now(ctx_.loop), std::move(listener), {}};
  timer->start(
      20,
      [this, serial, alive = std::weak_ptr<bool>(alive_)] {
        if (!alive.expired()) check(serial);
      },
      20);
}

void LinkDrain::check(uint64_t serial) {
  auto it = draining_.find(serial);
  if (it == draining_.end()) return;
  auto& dr = it->second;
  const bool dead = !dr.link->ready();
  if (dr.replaced && !dead) {
    if (!dr.replaced() && uv_now(ctx_.loop) - dr.since < kHoldMs) return;
    dr.replaced = nullptr;
    dr.since = uv_now(ctx_.loop);  // from now on, drained as any link
  }
  const bool acked = dr.link->unacked_tracked() == 0;
  if (!acked && !dead && uv_now(ctx_.loop) - dr.since < kTimeoutMs) return;
  if (!acked) stranded_(serial);
  dr.link->close();
  dr.timer->stop();
  // The timer's callback is on the stack: free the link on the next turn.
  defer(ctx_.loop, [keep = std::make_shared<Draining>(std::move(dr))] {});
  draining_.erase(it);
}

}  // namespace s2
