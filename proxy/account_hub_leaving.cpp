// AccountHub, leaving traffic (devices → upstream): a device's stanza is
// read into facts once, classified and routed by policies/; a persistent
// message gets our own origin-id, is committed with its outbox entry before
// the device's SM counter covers it (outbox.h takes it upstream from there)
// and reaches the account's other devices as a Carbons <sent/> copy. A
// client's resend of what it did not see acknowledged is recognised by its
// resend key (device.h) and taken once.
#include <algorithm>
#include <chrono>

#include "common/crypto/encoding.h"
#include "common/jid/jid.h"
#include "common/session2/errors.h"
#include "common/store/archive_id.h"
#include "common/util/clock.h"
#include "common/util/log.h"
#include "common/util/metrics.h"
#include "policies/classify.h"
#include "policies/dedup.h"
#include "policies/stanza_facts.h"
#include "proxy/account_hub.h"
#include "proxy/device.h"
#include "proxy/mam_server.h"
#include "proxy/metrics_catalogue.h"
#include "proxy/mirror_metrics.h"
#include "proxy/proxy_context.h"
#include "proxy/push_service.h"
#include "proxy/storage_guard.h"
#include "proxy/xmpp_ns.h"

namespace s2 {
namespace {

std::string new_id() { return crypto::hex_encode(crypto::random_bytes(9)); }
// 128 random bits: unique across every device and session of every account.
std::string new_origin_id() { return crypto::hex_encode(crypto::random_bytes(16)); }
// How long after a message a client's resend of it is recognised.
constexpr int64_t kResendWindowMs = 15 * 60 * 1000;
}  // namespace

void AccountHub::from_device(Device* d, Stanza s, const std::string& resend_key,
                             std::function<void()> handled) {
  const std::string name = s.name();
  if (name == "message") {
    process_leaving_message(d, std::move(s), resend_key, std::move(handled));
    return;
  }
  if (name == "iq") {
    if (!handle_device_iq(d, s) && d->upstream()) d->upstream()->send(s);
    handled();
    return;
  }
  if (name == "presence") {
    handle_device_presence(d, std::move(s));
    handled();
    return;
  }
  handled();
}

bool AccountHub::handle_device_iq(Device* d, const Stanza& iq) {
  const std::string to = iq.attr_or("to");
  const bool to_account = to.empty() || policy::jid_equal(to, account_);
  notify_.observe(iq);  // a bookmark (XEP-0492 settings) changing: read them again
  if (CarbonsFanout::handle_iq(d, iq)) return true;
  // Push (XEP-0357) registrations are the proxy's, never relayed: the upstream's own push module
  // must not know them (push_service.h).
  if (to_account && PushService::wants(iq)) {
    // Kept in the account's record: a first login's registration waits for the record (the
    // vault derives its verifiers off the loop, so the record may still be on its way).
    when_account_known([this, d, alive = d->alive_token(), iq] {
      if (alive.expired()) return;
      push_->handle_iq(d, iq);
    });
    return true;
  }
  // Another account's archive on this server is not ours to show (room
  // archives live on other domains and are relayed).
  const auto to_jid = parse_jid(to);
  const bool other_account = to_jid && !to_account && to_jid->domain == domain_ &&
                             !to_jid->local.empty() && to_jid->resource.empty();
  if ((to_account || other_account) && MamServer::wants(iq)) {
    when_account_known([this, d, alive = d->alive_token(), iq] {
      if (alive.expired()) return;
      MamServer::answer(ctx_, account_, account_no_, *d, iq);
    });
    return true;
  }
  return false;
}

void AccountHub::process_leaving_message(Device* d, Stanza s, const std::string& resend_key,
                                         std::function<void()> handled) {
  const auto taken = std::chrono::steady_clock::now();  // s2proxy_message_transit_seconds
  strip_claimed_stanza_ids(s, account_, domain_);
  // XEP-0490 server assist: the <displayed/> for the account's own node is
  // taken out before the message is read, archived, copied or sent.
  const auto assist = DisplayedSync::take_assist(s);
  const bool had_assist = assist.has_value();
  if (assist) displayed_.assisted(s.attr_or("to"), *assist);
  // Its facts, read once; the rewrites below (origin-id, hints, `from`) are
  // carried into the value instead of reading the stanza again.
  MessageFacts facts = read_message_facts(s);
  const auto& f = facts.features;
  const std::string to = facts.to;
  const bool groupchat = facts.type == "groupchat";
  policy::Addressing a;
  a.dir = policy::Direction::FromDevice;
  a.sender = d->profile();
  a.to = target_of(to, groupchat, static_cast<bool>(s.child("x", ns::kMucUser)));
  if (a.to == policy::Target::OwnDevice) a.device_present = device_by_jid(to) != nullptr;
  const auto cls = policy::classify(f);
  // Receipts and markers once per account (receipts_once.h): a second
  // device's answer is only reflected to the others.
  ReceiptsOnce::Verdict answer;
  if ((cls == policy::MessageClass::Receipt || cls == policy::MessageClass::Marker) &&
      (a.to == policy::Target::OtherBare || a.to == policy::Target::OtherFull)) {
    answer = receipts_.device_answer(cls, bare_jid(to).value_or(""), facts.ids.ref_id);
    // A displayed marker that goes upstream moves the chat's XEP-0490 state
    // (1:1 only: a room's state names the room's own stanza-id).
    if (answer.send && answer.mark && cls == policy::MessageClass::Marker && !groupchat &&
        !had_assist)
      displayed_.marker_sent(bare_jid(to).value_or(""), answer.mark->archive_id);
    if (!answer.send) {
      Stanza reflected = s.clone();
      reflected.set_attr("from", d->full_jid());
      fanout_.fan_out(reflected, true, 0, policy::Fanout::AllDevices, nullptr, d, nullptr);
      handled();
      return;
    }
  }
  const auto dec = policy::route(cls, a, f);
  if (dec.disposition == policy::Disposition::Bounce) {
    if (dec.error) bounce_to_device(d, s, *dec.error);
    handled();
    return;
  }
  if (dec.disposition != policy::Disposition::Deliver) {
    handled();
    return;
  }
  if (dec.rewrites.add_origin_id) {
    // The message's identity is ours to make unique: a client's 'id' may be
    // "1" every time (XEP-0359 §3: the origin-id is what must not repeat).
    // The client's 'id' stays as it is: receipts and corrections refer to it.
    if (!s.attr("id")) s.set_attr("id", facts.ids.id = new_id());
    facts.ids.origin_id = ensure_origin_id(s, new_origin_id());
  }
  if (dec.rewrites.add_no_store) add_hint_no_store(s);
  if (dec.rewrites.add_private) add_carbons_private(s);
  // The copy other devices and the mirror see names its sender.
  Stanza stored = s.clone();
  stored.set_attr("from", d->full_jid());

  if (!dec.archive) {
    if (dec.upstream && d->upstream()) d->upstream()->send(s);
    Device* only = dec.devices == policy::Fanout::OneDevice ? device_by_jid(to) : nullptr;
    const bool to_own_device = only != nullptr;
    fanout_.fan_out(stored, !to_own_device, 0, dec.devices, only, d, nullptr);
    handled();
    return;
  }
  if (dec.upstream && outbox_.full()) {
    // Bounded (ARCHITECTURE.md §10): the upstream is not taking what we
    // send. Refused before it is acknowledged, with an error the client
    // shows: never taken and then dropped.
    bounce_to_device(
        d, s,
        policy::StanzaError{policy::ErrorCondition::ServiceUnavailable, policy::ErrorType::Wait},
        "resource-constraint", "too many messages are waiting for the server");
    handled();
    return;
  }
  if (ctx_.storage) {
    // Short of space (storage_guard.h): refused before it is acknowledged,
    // with an error the client shows and can retry; the session goes on.
    const auto v = ctx_.storage->admit();
    if (v != policy::StorageVerdict::kAccept) {
      S2_LOG(LogLevel::Warn, "hub.send_refused_storage", {{"account", account_}});
      bounce_to_device(
          d, s,
          policy::StanzaError{policy::ErrorCondition::ServiceUnavailable, policy::ErrorType::Wait},
          "resource-constraint", std::string(policy::refusal_text(v)));
      handled();
      return;
    }
  }
  facts.from = d->full_jid();
  auto record = make_record(stored, facts, true, store::msgflag::kPersistent, "", unix_ms());
  // Its origin-id is unique (ours, or the client's): that is its dedup key.
  // A fingerprint would make a reused id with the same text a duplicate.
  record.fingerprint.clear();
  std::optional<store::OutboxItem> outbox;
  const std::string wire = s.to_string();
  const int64_t now = unix_ms();
  if (dec.upstream) outbox = store::OutboxItem{d->resource(), wire, now};
  const std::string resource = d->resource();
  const std::string origin_id = record.origin_id;
  if (!resend_key.empty()) resend_.committing(resource, resend_key, d->serial());
  when_account_known([this, record = std::move(record), outbox, stored, resource, wire, origin_id,
                      answer, now, taken, resend_key, handled = std::move(handled), dev = d,
                      dev_alive = d->alive_token(), alive = std::weak_ptr<bool>(alive_)]() mutable {
    store::WriteBatch b;
    store::op::Append append{account_no_, std::move(record), std::move(outbox)};
    append.resend_scope = resource;
    append.resend_key = resend_key;
    b.push_back(std::move(append));
    if (answer.mark) b.push_back(*answer.mark);
    ctx_.store->submit(std::move(b), [this, stored, resource, wire, origin_id, now, taken,
                                      resend_key, answer, handled, dev, dev_alive,
                                      alive](store::WriteResult r) {
      if (alive.expired()) return;
      receipts_.committed(answer);
      if (!resend_key.empty())
        resend_.committed(resource, resend_key,
                          r.ok() && !r.ops.empty() && !r.ops[0].duplicate
                              ? std::optional<store::ArchiveId>(r.ops[0].archive_id)
                              : std::nullopt);
      if (!r.ok() || r.ops.empty()) {
        mirror_metrics::write_errors().inc();
        S2_LOG(LogLevel::Error, "hub.send_not_archived",
               {{"account", account_}, {"error", r.error ? r.error->text : "?"}});
        if (r.error && ctx_.storage && ctx_.storage->note_commit_error(*r.error)) {
          // Out of space: this message is answered with an error the client
          // shows (and acknowledged as answered); the session goes on.
          if (!dev_alive.expired()) {
            Stanza original = Stanza::parse(wire);
            bounce_to_device(
                dev, original,
                policy::StanzaError{policy::ErrorCondition::ServiceUnavailable,
                                    policy::ErrorType::Wait},
                "resource-constraint",
                std::string(policy::refusal_text(policy::StorageVerdict::kRefuseMirrorFull)));
          }
          handled();
          return;
        }
        // Not committed, so not acknowledged. Acks cover a prefix: the
        // device's counter could never move again, so its session ends and
        // the client resends everything it has not seen acknowledged.
        if (!dev_alive.expired())
          dev->abort("internal-server-error", "a message could not be stored; please resend");
        return;
      }
      handled();
      const auto& op = r.ops[0];
      if (op.duplicate) {
        // The client's own origin-id, seen before: it is this message again.
        mirror_metrics::deduplicated().inc();
        return;
      }
      mirror_metrics::archived(true).inc();
      if (op.outbox_seq != 0) {
        outbox_.add(Outbox::Entry{op.outbox_seq, op.archive_id, resource, wire, origin_id, now});
        message_transit(true).observe(
            std::chrono::duration<double>(std::chrono::steady_clock::now() - taken).count());
      }
      Device* sender = dev_alive.expired() ? nullptr : dev;
      // A message to another of the account's devices arrives there as a
      // message; the others get the <sent/> copy.
      Device* target = device_by_jid(stored.attr_or("to"));
      if (target && target != sender) {
        Stanza m = stored.clone();
        set_stanza_id(m, account_, store::render_archive_id(op.archive_id));
        target->deliver(m, op.archive_id);
      }
      fanout_.fan_out(stored, true, op.archive_id, policy::Fanout::AllDevices, nullptr, sender,
                      target);
    });
  });
}

// A copy is what an *earlier* session of the same device sent: committed
// (its key is in the mirror, fresh) or committing now. The device itself
// tells apart its own session's sends (Device::is_resent_copy).
bool AccountHub::resend_seen(Device* d, const std::string& key) {
  return resend_.seen(d->resource(), key, d->serial(), unix_ms(), kResendWindowMs);
}

void AccountHub::bounce_to_device(Device* d, const Stanza& s, const policy::StanzaError& e,
                                  std::string condition, std::string text) {
  Stanza orig = s.clone();
  if (!orig.attr("from")) orig.set_attr("from", d->full_jid());
  if (condition.empty()) condition = std::string(policy::to_string(e.condition));
  if (text.empty()) text = "the addressed device is not connected";
  // The error goes back to the device as if the addressee had answered.
  auto err =
      session2::build_stanza_error(orig, std::string(policy::to_string(e.type)), condition, text);
  if (!err) return;
  err.set_attr("from", s.attr_or("to"));
  err.set_attr("to", d->full_jid());
  d->deliver(err, 0);
}

}  // namespace s2
