// AccountHub, entering traffic (upstream → devices): every message from the
// anchor (bare-JID traffic, Carbons copies, MAM catch-up pages) and from the
// device links (full-JID traffic) is read into facts once, classified and
// routed by policies/, archived when persistent (the mirror's dedup makes
// the many copies of one message one entry; only the first commit is
// delivered) and fanned out (carbons_fanout.h).
#include <algorithm>
#include <chrono>

#include "common/jid/jid.h"
#include "common/mam/carbons.h"
#include "common/mam/datetime.h"
#include "common/mam/mam_result.h"
#include "common/session2/errors.h"
#include "common/util/clock.h"
#include "common/util/log.h"
#include "common/util/metrics.h"
#include "policies/classify.h"
#include "policies/dedup.h"
#include "policies/stanza_facts.h"
#include "proxy/account_hub.h"
#include "proxy/device.h"
#include "proxy/metrics_catalogue.h"
#include "proxy/mirror_metrics.h"
#include "proxy/proxy_context.h"
#include "proxy/push_service.h"
#include "proxy/storage_guard.h"
#include "proxy/xmpp_ns.h"

namespace s2 {
namespace {

std::optional<int64_t> delay_stamp(const Stanza& m) {
  if (auto d = m.child("delay", ns::kDelay)) return mam::parse_datetime(d.attr_or("stamp"));
  return std::nullopt;
}
}  // namespace

bool AccountHub::trust_upstream_ids() const {
  return anchor_ && anchor_->upstream_has_mam().value_or(false);
}

void AccountHub::on_anchor_stanza(Stanza s) {
  // A result of the account's own archive that the anchor did not claim belongs to a query
  // that is over (timed out, or its session or ridden link went away): never a message.
  if (s.name() == "message" && mam::parse_result_message(s)) {
    const std::string from = s.attr_or("from");
    if (from.empty() || policy::jid_equal(from, account_)) return;
  }
  if (archive_catchup_.hold(s)) return;  // after the catch-up, in order
  const std::string name = s.name();
  if (name == "presence" || name == "iq") return;  // the anchor's own (route: consume)
  if (name != "message") return;
  Entering e;
  if (auto c = mam::unwrap_carbon(s)) {
    // XEP-0280 §11: only the account itself may send carbons.
    const std::string from = s.attr_or("from");
    if (!from.empty() && !policy::jid_equal(from, account_)) {
      S2_LOG(LogLevel::Warn, "hub.carbon_spoofed", {{"account", account_}, {"from", from}});
      return;
    }
    e.forwarded =
        c->kind == mam::CarbonKind::Sent ? policy::Forwarded::Sent : policy::Forwarded::Received;
    e.inner = std::move(c->inner);
    if (e.forwarded == policy::Forwarded::Sent) {
      // The upstream routed a message one of our carriers sent: whatever
      // became of the carrier, the outbox entry is done.
      outbox_.settle_origin_id(message_ids(e.inner).origin_id);
      // What our own device links sent was handled when the device sent it.
      auto from_jid = e.inner.attr_or("from");
      if (device_by_jid(from_jid)) return;
    }
  } else {
    e.inner = std::move(s);
  }
  process_entering(std::move(e));
}

void AccountHub::from_link(Device* d, Stanza s) {
  const bool ridden = anchor_rides(d);
  if (ridden && from_ridden_link(d, s)) return;
  const std::string name = s.name();
  if (name == "message") notify_.observe(s);  // a bookmarks notification (XEP-0492 settings)
  if (name != "message") {
    // Presence, iq and their errors: that device's own traffic.
    if (name == "presence" && !ridden && anchor_ && !anchor_jid().empty() &&
        policy::jid_equal(s.attr_or("from"), anchor_jid()))
      return;  // the anchor's own presence is not a device
    // The account's features include what the proxy adds (XEP-0490 assist).
    if (name == "iq" && s.attr_or("type") == "result") {
      const std::string from = s.attr_or("from");
      if (from.empty() || policy::jid_equal(from, account_)) DisplayedSync::advertise(s, account_);
    }
    d->deliver(s, 0);
    return;
  }
  Entering e;
  e.via = d;
  if (mam::unwrap_carbon(s)) {
    // Links never enable Carbons upstream; a carbon here is stale or spoofed.
    return;
  }
  e.inner = std::move(s);
  process_entering(std::move(e));
}

policy::Addressing AccountHub::entering_addressing(const Entering& e, bool outgoing) const {
  policy::Addressing a;
  a.dir = policy::Direction::FromLegacy;
  const auto f_type = e.inner.attr_or("type");
  const bool groupchat = f_type == "groupchat";
  const bool muc_user = static_cast<bool>(e.inner.child("x", ns::kMucUser));
  if (e.via && e.forwarded == policy::Forwarded::None) {
    a.to = policy::Target::OwnDevice;
    a.device_present = true;
    return a;
  }
  const std::string to = e.inner.attr_or("to");
  a.to = target_of(to, groupchat, muc_user);
  if (outgoing && a.to == policy::Target::OwnBare && to.empty()) a.to = policy::Target::OtherBare;
  if (a.to == policy::Target::OwnDevice) a.device_present = device_by_jid(to) != nullptr;
  return a;
}

store::MessageRecord AccountHub::make_record(const Stanza& inner, const MessageFacts& m,
                                             bool outgoing, uint32_t flags,
                                             const std::string& upstream_id, int64_t ts) const {
  store::MessageRecord r;
  r.timestamp_ms = ts;
  r.direction = outgoing ? store::Direction::kOutgoing : store::Direction::kIncoming;
  r.peer_bare = bare_jid(outgoing ? m.to : m.from).value_or(account_);
  r.flags = flags;
  r.upstream_stanza_id = upstream_id;
  // An error echoes the payload of what it bounces (ejabberd includes the
  // <origin-id/>): its ids are the original's and must not make it a
  // duplicate of it. Errors deduplicate by fingerprint only.
  const bool error = m.type == "error";
  r.origin_id = error ? std::string() : m.ids.origin_id;
  if (error) r.upstream_stanza_id.clear();
  r.id = m.ids.id;
  const std::string content = fingerprint_content(inner);
  policy::DedupInput in;
  in.from = m.from;
  in.to = m.to;
  in.type = m.type;
  in.id = m.ids.id;
  in.content = content;
  r.fingerprint = policy::dedup_key(in, account_, false).key;
  r.stanza = inner.to_string();
  return r;
}

void AccountHub::process_entering(Entering e) {
  const auto taken = std::chrono::steady_clock::now();  // s2proxy_message_transit_seconds
  Stanza& inner = e.inner;
  // Its facts, read once (stanza-ids are metadata: stripping them below
  // changes nothing the policies look at).
  const MessageFacts facts = read_message_facts(inner);
  const auto& ids = facts.ids;
  // The upstream's own archive id, before any stanza-id is stripped.
  if (e.upstream_id.empty() && trust_upstream_ids() && facts.type != "error") {
    for (auto& [id, by] : ids.stanza_ids)
      if (policy::jid_equal(by, account_)) e.upstream_id = id;
  }
  strip_claimed_stanza_ids(inner, account_, domain_);
  auto f = facts.features;
  const std::string from_bare = bare_jid(facts.from).value_or("");
  const bool outgoing = e.forwarded == policy::Forwarded::Sent ||
                        (e.forwarded == policy::Forwarded::None && e.via == nullptr &&
                         from_bare == account_ && !facts.from.empty() && facts.type != "error");
  if (outgoing && e.forwarded == policy::Forwarded::None) e.forwarded = policy::Forwarded::Sent;
  f.forwarded = e.forwarded;
  if (!ids.ref_id.empty() && account_no_ != 0) {
    const std::string peer = outgoing ? bare_jid(facts.to).value_or("") : from_bare;
    auto kind = f.type == policy::MessageType::Error ? store::RefKind::kSentId
                : f.correction || f.retraction
                    ? (outgoing ? store::RefKind::kSentId : store::RefKind::kReceivedId)
                    : (outgoing ? store::RefKind::kReceivedId : store::RefKind::kSentId);
    auto r = ctx_.store->resolve_ref(account_no_, peer, kind, ids.ref_id);
    f.refers_to_archived = r.ok() && r.value().has_value();
  }
  const auto cls = policy::classify(f);
  const auto addr = entering_addressing(e, outgoing);
  const auto d = policy::route(cls, addr, f);
  S2_LOG(LogLevel::Debug, "hub.entering",
         {{"account", account_},
          {"via", e.via ? e.via->resource() : "anchor"},
          {"class", std::string(policy::to_string(cls))},
          {"fwd", e.forwarded == policy::Forwarded::None   ? "none"
                  : e.forwarded == policy::Forwarded::Sent ? "sent"
                                                           : "received"},
          {"to", std::string(policy::to_string(addr.to))},
          {"decision", std::string(policy::to_string(d.disposition))},
          {"fanout", std::string(policy::to_string(d.devices))},
          {"archive", d.archive ? "yes" : "no"}});

  // A carbon of what one device's link receives is that link's business
  // unless it is history: the link got its own copy (and CSI holds it).
  if (e.via == nullptr && e.forwarded == policy::Forwarded::Received && !d.archive) return;

  if (d.disposition == policy::Disposition::Bounce) {
    // Back to the sender through the session it arrived on.
    UpstreamSession* back = e.via ? e.via->upstream() : anchor_ ? anchor_->session() : nullptr;
    if (d.error && back && e.forwarded == policy::Forwarded::None) {
      auto err = session2::build_stanza_error(inner, std::string(policy::to_string(d.error->type)),
                                              std::string(policy::to_string(d.error->condition)),
                                              "the addressed device is not connected");
      if (err) {
        err.remove_attr("from");
        back->send(err);
      }
    }
    return;
  }
  if (d.disposition != policy::Disposition::Deliver || d.proxy) return;
  Device* only = d.devices == policy::Fanout::OneDevice
                     ? (e.via ? e.via : device_by_jid(inner.attr_or("to")))
                     : nullptr;
  if (!d.archive) {
    // Not the mirror's (a room's groupchat, a message to one full JID): it can wake only the
    // device it is for, with that device's view of it (its nick, the chat's XEP-0492 setting).
    std::optional<std::pair<std::string, PushService::Facts>> wake;
    if (only && !outgoing)
      wake.emplace(
          only->resource(),
          PushService::Facts{delivery_facts(inner, only->delivery_view()).urgency, d.persistence});
    fanout_.fan_out(inner, outgoing, 0, d.devices, only, nullptr, nullptr);
    if (wake) push_->on_delivered(wake->first, inner, wake->second);
    return;
  }
  uint32_t flags = store::msgflag::kPersistent;
  if (f.type == policy::MessageType::Error) flags |= store::msgflag::kError;
  if (f.receipt_request) flags |= store::msgflag::kReceiptRequested;
  const int64_t ts = e.stamp.value_or(delay_stamp(inner).value_or(unix_ms()));
  auto record = make_record(inner, facts, outgoing, flags, e.upstream_id, ts);
  store::WriteBatch batch;
  batch.push_back(store::op::Append{account_no_, std::move(record), std::nullopt});
  // The peer's receipt for what the account sent: its state, with it.
  if (cls == policy::MessageClass::Receipt && !outgoing)
    if (auto mark = receipts_.peer_receipt(from_bare, ids.ref_id)) batch.push_back(*mark);
  // The cursor moves with live anchor traffic once catch-up is over: what
  // is behind it has been committed.
  if (!e.upstream_id.empty() && e.via == nullptr && !archive_catchup_.catching_up() &&
      archive_catchup_.synced())
    batch.push_back(store::op::SetSyncCursor{account_no_, e.upstream_id});
  // Push (push_service.h): the urgency of this message for a device that sleeps.
  const auto prefs = notify_.for_chat(outgoing ? bare_jid(facts.to).value_or("") : from_bare);
  const PushService::Facts push_facts{policy::urgency(cls, f, addr.dir, prefs), d.persistence};
  when_account_known([this, batch = std::move(batch), inner, outgoing, fanout = d.devices,
                      push_facts, taken, alive = std::weak_ptr<bool>(alive_)]() mutable {
    for (auto& op : batch) {
      if (auto* a = std::get_if<store::op::Append>(&op)) a->account = account_no_;
      if (auto* c = std::get_if<store::op::SetSyncCursor>(&op)) c->account = account_no_;
    }
    ctx_.store->submit(std::move(batch), [this, inner, outgoing, fanout, push_facts, taken,
                                          alive](store::WriteResult r) {
      if (alive.expired()) return;
      if (!r.ok() || r.ops.empty()) {
        mirror_metrics::write_errors().inc();
        S2_LOG(LogLevel::Error, "hub.archive_failed",
               {{"account", account_}, {"error", r.error ? r.error->text : "?"}});
        if (r.error && ctx_.storage) ctx_.storage->note_commit_error(*r.error);
        // Not in the mirror, not delivered: the cursor stops here and a
        // catch-up replays it from the upstream's archive once a commit
        // can succeed again.
        archive_catchup_.resync(kResyncAfterFailureMs);
        return;
      }
      const auto& op = r.ops[0];
      if (op.duplicate) {
        mirror_metrics::deduplicated().inc();
        // The upstream's copy of a message a device sent: it has it.
        if (outgoing) outbox_.settle_archive_id(op.archive_id);
        return;
      }
      mirror_metrics::archived(outgoing).inc();
      fanout_.fan_out(inner, outgoing, op.archive_id, fanout, nullptr, nullptr, nullptr);
      message_transit(false).observe(
          std::chrono::duration<double>(std::chrono::steady_clock::now() - taken).count());
      push_->on_committed(inner, push_facts, op.archive_id);  // wake sleeping devices
    });
  });
}

// One page of the upstream archive (archive_catchup.h): the same routing as
// a live copy, committed in one batch with the cursor that covers it.
void AccountHub::catchup_commit(std::vector<mam::MamResultItem> items, const std::string& last,
                                std::function<void(bool ok)> done) {
  store::WriteBatch batch;
  struct Pending {
    Stanza inner;
    bool outgoing;
    policy::Fanout fanout;
    PushService::Facts push;
  };
  auto pending = std::make_shared<std::vector<Pending>>();
  for (auto& item : items) {
    Stanza inner = item.message;
    strip_claimed_stanza_ids(inner, account_, domain_);
    const MessageFacts facts = read_message_facts(inner);
    auto f = facts.features;
    const bool outgoing = bare_jid(facts.from).value_or("") == account_;
    const std::string& peer = outgoing ? facts.to : facts.from;
    f.forwarded = outgoing ? policy::Forwarded::Sent : policy::Forwarded::Received;
    Entering e;
    e.inner = inner;
    e.forwarded = f.forwarded;
    const auto addr = entering_addressing(e, outgoing);
    const auto cls = policy::classify(f);
    const auto dec = policy::route(cls, addr, f);
    if (!dec.archive) continue;
    uint32_t flags = store::msgflag::kPersistent;
    if (f.receipt_request) flags |= store::msgflag::kReceiptRequested;
    batch.push_back(store::op::Append{
        account_no_,
        make_record(inner, facts, outgoing, flags, item.id, item.stamp_ms.value_or(unix_ms())),
        std::nullopt});
    // What arrived while the anchor was away wakes a sleeping device as a live copy would: it
    // has not seen it either (coalesced into one push per device, like a burst).
    pending->push_back(
        Pending{inner,
                outgoing,
                dec.devices,
                {policy::urgency(cls, f, addr.dir, notify_.for_chat(bare_jid(peer).value_or(""))),
                 dec.persistence}});
  }
  if (!last.empty()) batch.push_back(store::op::SetSyncCursor{account_no_, last});
  ctx_.store->submit(std::move(batch), [this, pending, done = std::move(done),
                                        alive = std::weak_ptr<bool>(alive_)](store::WriteResult r) {
    if (alive.expired()) return;
    if (!r.ok()) {
      mirror_metrics::write_errors().inc();
      done(false);
      return;
    }
    size_t fresh = 0;
    for (size_t i = 0; i < pending->size() && i < r.ops.size(); ++i) {
      const auto& op = r.ops[i];
      if (op.duplicate) {
        // In the upstream archive: an outbox entry for it is done.
        outbox_.settle_archive_id(op.archive_id);
        continue;
      }
      ++fresh;
      auto& p = (*pending)[i];
      fanout_.fan_out(p.inner, p.outgoing, op.archive_id, p.fanout, nullptr, nullptr, nullptr);
      push_->on_committed(p.inner, p.push, op.archive_id);
    }
    if (fresh) S2_LOG(LogLevel::Info, "hub.catchup_page", {{"account", account_}, {"new", fresh}});
    done(true);
  });
}

}  // namespace s2
