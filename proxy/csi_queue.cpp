// CsiQueue: see csi_queue.h; the decisions are policies/csi.h's.
#include "proxy/csi_queue.h"

#include <algorithm>

#include "policies/csi.h"

namespace s2 {

std::vector<CsiQueue::Item> CsiQueue::set_inactive(bool inactive) {
  inactive_ = inactive;
  if (inactive) return {};
  return take_all();
}

std::vector<CsiQueue::Item> CsiQueue::take_all() {
  std::vector<Item> out(std::make_move_iterator(held_.begin()),
                        std::make_move_iterator(held_.end()));
  held_.clear();
  return out;
}

CsiQueue::Outcome CsiQueue::offer(Item item, policy::Urgency u) {
  Outcome out;
  auto same = held_.end();
  if (item.coalesce_key) {
    same = std::find_if(held_.begin(), held_.end(),
                        [&](const Item& h) { return h.coalesce_key == item.coalesce_key; });
  }
  const policy::CsiQueue q{inactive_, held_.size(), limit_};
  switch (policy::csi_decide(u, q, same != held_.end())) {
    case policy::CsiAction::Hold:
      held_.push_back(std::move(item));
      return out;
    case policy::CsiAction::Replace:
      held_.erase(same);
      held_.push_back(std::move(item));
      out.coalesced = true;
      return out;
    case policy::CsiAction::FlushThenDeliver:
      out.flushed = take_all();
      break;
    case policy::CsiAction::DeliverNow:
      break;
  }
  if (!out.flushed.empty()) {
    switch (u) {
      case policy::Urgency::Urgent:
        out.reason = FlushReason::Urgent;
        break;
      case policy::Urgency::Normal:
        out.reason = FlushReason::Normal;
        break;
      case policy::Urgency::Immediate:
        out.reason = FlushReason::Immediate;
        break;
      case policy::Urgency::Silent:
        // Silent flushes only when the queue is full (or holding is off: limit 0) — or when it
        // is no longer inactive, which set_inactive() already flushed.
        out.reason = inactive_ ? FlushReason::Overflow : FlushReason::Active;
        break;
    }
  }
  out.now = std::move(item);
  return out;
}

std::string_view to_string(CsiQueue::FlushReason r) {
  switch (r) {
    case CsiQueue::FlushReason::Urgent:
      return "urgent";
    case CsiQueue::FlushReason::Normal:
      return "normal";
    case CsiQueue::FlushReason::Immediate:
      return "immediate";
    case CsiQueue::FlushReason::Active:
      return "active";
    case CsiQueue::FlushReason::Overflow:
      return "overflow";
    case CsiQueue::FlushReason::End:
      return "end";
  }
  return "unknown";
}

}  // namespace s2
