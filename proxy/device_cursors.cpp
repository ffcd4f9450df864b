// See device_cursors.h.
#include "proxy/device_cursors.h"

#include <algorithm>

#include "common/util/clock.h"
#include "common/util/metrics.h"
#include "proxy/device.h"
#include "proxy/mirror_metrics.h"
#include "proxy/proxy_context.h"

namespace s2 {
DeviceCursors::DeviceCursors(ProxyContext& ctx) : ctx_(ctx), timer_(ctx.loop) {}

DeviceCursors::~DeviceCursors() { flush(); }  // acknowledged since the last flush

void DeviceCursors::set_account_no(store::AccountNo a) {
  account_no_ = a;
  if (auto rec = ctx_.store->get_device(a, kAnyDevice); rec.ok() && rec.value())
    delivered_any_ = rec.value()->last_delivered;
}

void DeviceCursors::delivered(Device* d, store::ArchiveId id) {
  // Before its catch-up a device's cursor stays where it was: what it got
  // meanwhile was addressed to it, not the history it missed. During the
  // catch-up only what the catch-up itself covered counts.
  if (id == 0 || account_no_ == 0) return;
  if (!d->live() && !(d->catching_up() && id <= d->catchup_cursor())) return;
  auto& cur = pending_[d->resource()];
  cur = std::max(cur, id);
  if (id > delivered_any_) {
    delivered_any_ = id;
    auto& any = pending_[kAnyDevice];
    any = std::max(any, id);
  }
  schedule();
}

store::ArchiveId DeviceCursors::cursor_of(const std::string& resource,
                                          store::ArchiveId otherwise) const {
  store::ArchiveId from = otherwise;
  if (auto rec = ctx_.store->get_device(account_no_, resource); rec.ok() && rec.value())
    from = rec.value()->last_delivered;
  if (auto it = in_flight_.find(resource); it != in_flight_.end())
    from = std::max(from, it->second);
  if (auto it = pending_.find(resource); it != pending_.end()) from = std::max(from, it->second);
  return from;
}

void DeviceCursors::forget_resend_keys(const std::string& resource, std::vector<std::string> keys) {
  if (keys.empty()) return;
  auto& v = forget_keys_[resource];
  for (auto& k : keys) v.push_back(std::move(k));
  schedule();
}

void DeviceCursors::schedule() {
  if (timer_.active()) return;
  timer_.start(100, [this] { flush(); });
}

void DeviceCursors::flush() {
  if ((pending_.empty() && forget_keys_.empty()) || account_no_ == 0) return;
  store::WriteBatch b;
  for (auto& [scope, keys] : forget_keys_)
    b.push_back(store::op::ClearResendKeys{account_no_, scope, std::move(keys)});
  forget_keys_.clear();
  const int64_t now = unix_ms();
  for (auto& [dev, id] : pending_) {
    store::op::UpdateDevice u;
    u.account = account_no_;
    u.device_id = dev;
    u.last_delivered = id;
    u.last_seen_ms = now;
    b.push_back(std::move(u));
    auto& f = in_flight_[dev];
    f = std::max(f, id);
  }
  auto written = std::move(pending_);
  pending_.clear();
  // Nobody waits for a cursor: it rides the next commit someone does wait for (writer.h), and
  // cursor_of() reads it from in_flight_ until it is in the store.
  ctx_.store->submit_deferrable(
      std::move(b), [this, written = std::move(written),
                     alive = std::weak_ptr<bool>(alive_)](store::WriteResult r) {
        if (!r.ok()) mirror_metrics::write_errors().inc();
        if (alive.expired()) return;
        for (auto& [dev, id] : written)
          if (auto it = in_flight_.find(dev); it != in_flight_.end() && it->second <= id)
            in_flight_.erase(it);
      });
}

}  // namespace s2
