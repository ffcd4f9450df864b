// Legacy catch-up: a legacy device that sent its initial presence gets what
// it missed since its last session (like offline storage, but for every
// device), as delayed messages: from its own cursor, or — a device never
// seen before — from the offline watermark (what no device has received
// yet), capped at --catchup-max. It is paced by the client: at most half
// the SM queue unacknowledged (or, without SM, a chunk whenever the socket
// drained), so a long absence never overflows the device's queue. Session2
// devices sync with MAM themselves and never take this path.
#pragma once

#include <string>

#include "common/store/store.h"

namespace s2 {

class ProxyContext;
class Device;
class DeviceCursors;
class CarbonsFanout;

class LegacyCatchup {
 public:
  LegacyCatchup(ProxyContext& ctx, const std::string& domain, DeviceCursors& cursors,
                const CarbonsFanout& fanout);
  void set_account_no(store::AccountNo a) { account_no_ = a; }
  // The device's initial presence: start its catch-up.
  void start(Device* d);

 private:
  void more(Device* d);

  ProxyContext& ctx_;
  const std::string& domain_;
  DeviceCursors& cursors_;
  const CarbonsFanout& fanout_;
  store::AccountNo account_no_ = 0;
};

}  // namespace s2
