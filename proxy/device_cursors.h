// Per-device delivery cursors and the account's offline watermark
// (ARCHITECTURE.md §3): the highest archive id each device acknowledged (a
// legacy device's catch-up starts there) and the highest any device has
// (where a device never seen before starts). They change with every ack,
// so they are written at most every 100 ms, in one batch; they decide only
// what a legacy device is sent again after a crash, never what is archived.
// The same batch clears the resend keys devices no longer need
// (Device::announce_handled).
#pragma once

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/net/connection.h"
#include "common/store/store.h"

namespace s2 {

class ProxyContext;
class Device;

class DeviceCursors {
 public:
  // The record holding the offline watermark.
  static constexpr const char* kAnyDevice = "*";

  explicit DeviceCursors(ProxyContext& ctx);
  ~DeviceCursors();

  void set_account_no(store::AccountNo a);
  // Device `d` has archive id `id` (acknowledged, or written without SM).
  void delivered(Device* d, store::ArchiveId id);
  // Highest id any device received: what a new device is not owed.
  store::ArchiveId offline_watermark() const { return delivered_any_; }
  // The cursor of `resource` as stored, or pending: where its catch-up starts.
  store::ArchiveId cursor_of(const std::string& resource, store::ArchiveId otherwise) const;
  void forget_resend_keys(const std::string& resource, std::vector<std::string> keys);
  void flush();

 private:
  void schedule();

  ProxyContext& ctx_;
  store::AccountNo account_no_ = 0;
  std::unordered_map<std::string, store::ArchiveId> pending_;
  // Flushed, not yet committed (the store holds the write back a little: writer.h).
  std::unordered_map<std::string, store::ArchiveId> in_flight_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  std::unordered_map<std::string, std::vector<std::string>> forget_keys_;
  store::ArchiveId delivered_any_ = 0;
  Timer timer_;
};

}  // namespace s2
