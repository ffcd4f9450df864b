// See cluster.h.
#include "proxy/cluster.h"

#include <unistd.h>

#include <chrono>
#include <cstdlib>

#include "common/util/log.h"
#include "common/util/metrics.h"
#include "proxy/account_hub.h"
#include "proxy/proxy_context.h"

namespace s2 {
namespace {

constexpr uint64_t kSweepMs = 2000;
// A node that creates an account claims it right after the commit; the sweep
// of the others leaves new accounts to it for this long.
constexpr int64_t kSettleMs = 3000;
constexpr size_t kSweepBatch = 500;

int64_t unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Metric& m_owned() {
  return gauge("s2proxy_cluster_owned_accounts", "accounts whose lease this node holds");
}
Metric& m_lease(const char* change) {
  return counter("s2proxy_cluster_lease_changes_total", "account leases taken or lost",
                 std::string("change=\"") + change + "\"");
}

}  // namespace

Cluster::Cluster(ProxyContext& ctx, uv_loop_t* loop, std::unique_ptr<store::AccountLeases> leases)
    : ctx_(ctx), leases_(std::move(leases)), timer_(loop) {}

void Cluster::start() {
  timer_.start(
      kSweepMs, [this] { sweep(); }, kSweepMs);
  timer_.unref();
}

void Cluster::stop() { timer_.stop(); }

bool Cluster::serve_here(const std::string& bare_jid, std::string* owner_address,
                         std::string* owner_node) {
  auto acct = ctx_.store->find_account(bare_jid);
  // Not in the store yet: a first login. The hub creates the account and
  // claims it before it writes anything else for it.
  if (!acct.ok() || !acct.value()) return true;
  return serve_here(bare_jid, (*acct)->account, owner_address, owner_node);
}

bool Cluster::serve_here(const std::string& bare_jid, store::AccountNo a,
                         std::string* owner_address, std::string* owner_node) {
  const size_t before = leases_->owned();
  auto c = leases_->claim(a);
  if (!c.ok()) {
    S2_LOG(LogLevel::Warn, "cluster.claim_failed",
           {{"account", bare_jid}, {"error", c.error().text}});
    return false;
  }
  if (c->owned) {
    if (leases_->owned() != before) {
      m_lease("claimed").inc();
      m_owned().set(static_cast<int64_t>(leases_->owned()));
      S2_LOG(LogLevel::Info, "cluster.claimed", {{"account", bare_jid}, {"epoch", c->epoch}});
    }
    return true;
  }
  if (owner_address != nullptr) *owner_address = c->address;
  if (owner_node != nullptr) *owner_node = c->node;
  return false;
}

void Cluster::sweep() {
  if (ctx_.shutting_down) return;
  if (!leases_->alive()) {
    m_lease("lost").inc();
    S2_LOG(LogLevel::Error, "cluster.lease_lost",
           {{"error",
             "the database session holding this node's account leases is gone: every account "
             "may be served elsewhere now; exiting so that devices reconnect to their owner"}});
    std::fflush(nullptr);
    std::_Exit(75);  // EX_TEMPFAIL: the supervisor restarts the node
  }
  auto free = leases_->unowned(unix_ms(), kSettleMs, kSweepBatch);
  if (!free.ok()) {
    S2_LOG(LogLevel::Warn, "cluster.sweep_failed", {{"error", free.error().text}});
    return;
  }
  for (const auto& u : *free) {
    auto c = leases_->claim(u.account);
    if (!c.ok() || !c->owned) continue;  // another node was quicker
    m_lease("taken_over").inc();
    S2_LOG(LogLevel::Info, "cluster.taken_over", {{"account", u.bare_jid}, {"epoch", c->epoch}});
    AccountHub::of(ctx_, u.bare_jid).start_anchor();
  }
  m_owned().set(static_cast<int64_t>(leases_->owned()));
}

}  // namespace s2
