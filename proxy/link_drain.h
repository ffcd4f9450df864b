// A device's link that outlives its device: when a device ends while its
// upstream link carries sends the upstream has not acknowledged, the link
// stays open (up to 3 s) for the acks instead of being cut — a send-and-close
// client's message would otherwise count as stranded. What still arrives on
// a draining link is for a device that is gone: messages go to the hub's
// routing (history is archived), iq requests are answered
// service-unavailable. A link that ends unacknowledged hands its entries to
// the outbox as stranded (Outbox::carrier_down).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>

#include "common/net/connection.h"
#include "common/xml/stanza.h"
#include "proxy/upstream_session.h"

namespace s2 {

class ProxyContext;

class LinkDrain {
 public:
  // `message`: a message that arrived on a draining link; `stranded`: the
  // link `serial` closed with sends unacknowledged.
  LinkDrain(ProxyContext& ctx, std::function<void(Stanza)> message,
            std::function<void(uint64_t serial)> stranded);
  ~LinkDrain();

  void drain(std::unique_ptr<UpstreamSession> link);
  // The link an account's anchor rode (anchor.h): kept open, and its traffic taken, until
  // `replaced()` says the anchor's own session is ready (at most kHoldMs), so that bare-JID
  // traffic always has a path; then drained as any link.
  void hold_until(std::unique_ptr<UpstreamSession> link, std::function<bool()> replaced);

 private:
  struct Listener : UpstreamSession::Listener {
    LinkDrain* owner = nullptr;
    UpstreamSession* link = nullptr;
    void on_upstream_authenticated() override {}
    void on_upstream_login_failed(const UpstreamFailure&) override {}
    void on_upstream_bound(const std::string&) override {}
    void on_upstream_bind_failed(const std::string&, const std::string&) override {}
    void on_upstream_stanza(Stanza s) override;
    void on_upstream_closed(const std::string&, const std::string&) override {}
  };
  struct Draining {
    std::unique_ptr<UpstreamSession> link;
    std::shared_ptr<Timer> timer;
    uint64_t since = 0;
    std::unique_ptr<Listener> listener;
    std::function<bool()> replaced;  // hold_until: the anchor's own session is ready
  };
  void check(uint64_t serial);

  ProxyContext& ctx_;
  std::function<void(Stanza)> message_;
  std::function<void(uint64_t)> stranded_;
  std::map<uint64_t, Draining> draining_;  // by session serial
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  static constexpr uint64_t kTimeoutMs = 3000;
  static constexpr uint64_t kHoldMs = 15000;
};

}  // namespace s2
