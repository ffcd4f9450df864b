// See metrics_catalogue.h. The label values listed here are the ones the
// code uses (conditions from RFC 6120 §4.9.3 and §6.5 that the proxy sends);
// a value not listed still appears on first use.
#include "proxy/metrics_catalogue.h"

#include <span>

#include "common/util/process_metrics.h"
#include "proxy/version.h"

namespace s2 {
namespace {
const std::vector<std::string> kSaslConditions = {
    "aborted",           "credentials-expired", "encryption-required", "invalid-authzid",
    "invalid-mechanism", "malformed-request",   "not-authorized",      "temporary-auth-failure"};
std::vector<std::string> with(std::vector<std::string> v, std::vector<std::string> more) {
  v.insert(v.begin(), more.begin(), more.end());
  return v;
}
std::string label_set(const std::string& label, const std::string& value) {
  return label.empty() ? "" : label + "=\"" + value + "\"";
}
// A message's transit is a fraction of a millisecond plus a commit: the default buckets (from
// 0.5 ms) would put most of them in the first two.
constexpr double kTransitBuckets[] = {0.0001, 0.00025, 0.0005, 0.00075, 0.001, 0.0015, 0.002,
                                      0.003,  0.005,   0.01,   0.025,   0.1,   1,      10};
std::span<const double> histogram_bounds(const std::string& name) {
  if (name == "s2proxy_message_transit_seconds") return kTransitBuckets;
  return kLatencyBuckets;
}
}  // namespace

const std::vector<CatalogueEntry>& metrics_catalogue() {
  static const std::vector<CatalogueEntry> all = {
      {"s2proxy_build_info", "gauge", "s2proxy version (always 1)", "version", {S2PROXY_VERSION}},
      {"s2proxy_client_sessions", "gauge", "client connections open", "", {}},
      {"s2proxy_client_stream_errors_total",
       "counter",
       "stream errors sent to clients",
       "condition",
       {"connection-timeout", "host-unknown", "not-authorized", "not-well-formed",
        "policy-violation", "reset", "see-other-host", "undefined-condition",
        "unsupported-stanza-type", "unsupported-version"}},
      {"s2proxy_cluster_owned_accounts",
       "gauge",
       "accounts whose lease this node holds (PostgreSQL store)",
       "",
       {}},
      {"s2proxy_cluster_lease_changes_total",
       "counter",
       "account leases claimed (a login or an anchor here), taken over (the sweep found them "
       "free) or lost (the lease connection ended)",
       "change",
       {"claimed", "taken_over", "lost"}},
      {"s2proxy_cluster_redirects_total",
       "counter",
       "devices sent to the node that serves their account (see-other-host)",
       "",
       {}},
      {"s2proxy_client_auth_total", "counter", "client SASL outcomes", "result",
       with(kSaslConditions, {"success"})},
      {"s2proxy_client_sasl2_total", "counter", "SASL2 outcomes", "result",
       with(kSaslConditions, {"success", "resumed"})},
      {"s2proxy_login_throttled_total",
       "counter",
       "logins refused by backoff or a full per-address login queue",
       "",
       {}},
      {"s2proxy_login_queued_total",
       "counter",
       "logins that waited for a slot of their source address",
       "",
       {}},
      {"s2proxy_login_queue", "gauge", "logins waiting for a slot of their source address", "", {}},
      {"s2proxy_client_unauthenticated",
       "gauge",
       "client connections not yet authenticated",
       "",
       {}},
      {"s2proxy_connections_refused_total",
       "counter",
       "client connections refused at accept",
       "reason",
       {"max_clients", "unauthenticated_total", "unauthenticated_per_address", "proxy_source",
        "proxy_header"}},
      {"s2proxy_max_clients",
       "gauge",
       "client connections allowed in all (--max-clients or the descriptor limit)",
       "",
       {}},
      {"s2proxy_upstream_logins_total",
       "counter",
       "upstream logins by result",
       "result",
       {"ok", "rejected", "unavailable"}},
      {"s2proxy_stanzas_relayed_total",
       "counter",
       "stanzas relayed",
       "direction",
       {"to_upstream", "to_client"}},
      {"s2proxy_devices_hibernating", "gauge", "devices waiting for SM resumption", "", {}},
      {"s2proxy_sm_resumed_total", "counter", "client SM resumptions", "", {}},
      {"s2proxy_client_read_paused_total",
       "counter",
       "times a client's reading paused for --client-read-rate",
       "",
       {}},
      {"s2proxy_client_flood_closed_total",
       "counter",
       "client streams ended with policy-violation for going over --client-stanza-rate",
       "",
       {}},
      {"s2proxy_archive_pruned_total",
       "counter",
       "messages removed from the mirror by retention (--archive-max-age, --archive-max-messages)",
       "",
       {}},
      {"s2proxy_storage_full",
       "gauge",
       "1 while new persistent messages from devices are refused for lack of space (disk under "
       "--min-free-disk, or the mirror full)",
       "",
       {}},
      {"s2proxy_storage_refusals_total",
       "counter",
       "persistent messages from devices refused with resource-constraint for lack of space",
       "",
       {}},
      {"s2proxy_data_dir_free_bytes",
       "gauge",
       "free bytes on the data dir's filesystem (for the daemon's user)",
       "",
       {}},
      {"s2proxy_sm_queue_overflow_total",
       "counter",
       "devices ended because their SM queue was full",
       "",
       {}},
      {"s2proxy_anchors_ready", "gauge", "anchor sessions logged in upstream", "", {}},
      {"s2proxy_anchors",
       "gauge",
       "accounts keeping an anchor session upstream (ready or not)",
       "",
       {}},
      {"s2proxy_upstream_reconnects_total", "counter", "anchor reconnect attempts", "", {}},
      {"s2proxy_anchor_device_links_total",
       "counter",
       "device links the anchor kept when their device ended (kept) and handed back to the "
       "device binding that resource again (given_back): upstream logins spared",
       "event",
       {"kept", "given_back"}},
      {"s2proxy_messages_archived_total",
       "counter",
       "messages committed to the mirror",
       "direction",
       {"incoming", "outgoing"}},
      {"s2proxy_messages_deduplicated_total",
       "counter",
       "copies recognised as already archived",
       "",
       {}},
      {"s2proxy_outbox_pending", "gauge", "device messages not yet acked upstream", "", {}},
      {"s2proxy_outbox_settled_total",
       "counter",
       "outbox entries done, by the evidence that the upstream has them",
       "how",
       {"ack", "carbon", "archive", "refused"}},
      {"s2proxy_outbox_resent_total",
       "counter",
       "outbox entries sent again: their carrier died and the upstream showed no evidence of them",
       "",
       {}},
      {"s2proxy_device_resends_absorbed_total",
       "counter",
       "messages a client sent again after a lost ack, taken once",
       "",
       {}},
      {"s2proxy_device_reading_paused_total",
       "counter",
       "times a client's socket was paused for upstream flow control",
       "",
       {}},
      {"s2proxy_deliveries_total",
       "counter",
       "stanzas delivered to devices, by urgency",
       "urgency",
       {"immediate", "urgent", "normal", "silent"}},
      {"s2proxy_csi_held_total",
       "counter",
       "stanzas held for a CSI-inactive device (XEP-0352)",
       "",
       {}},
      {"s2proxy_csi_coalesced_total",
       "counter",
       "held stanzas superseded by a newer one of the same key (dropped)",
       "",
       {}},
      {"s2proxy_csi_flushed_total",
       "counter",
       "held stanzas written to the client, by what flushed them (end: dropped when the device "
       "ended)",
       "reason",
       {"urgent", "normal", "immediate", "active", "overflow", "end"}},
      {"s2proxy_push_sent_total",
       "counter",
       "XEP-0357 notifications published to app servers",
       "",
       {}},
      {"s2proxy_push_coalesced_total",
       "counter",
       "urgent stanzas counted into a pending notification instead of one",
       "",
       {}},
      {"s2proxy_push_failed_total",
       "counter",
       "notifications not accepted by an app server",
       "reason",
       {"error", "timeout", "anchor-down"}},
      {"s2proxy_push_disabled_total",
       "counter",
       "registrations removed after repeated app-server errors",
       "",
       {}},
      {"s2proxy_receipts_absorbed_total",
       "counter",
       "receipts and markers a device sent that another device had already sent",
       "kind",
       {"receipt", "displayed"}},
      {"s2proxy_mds_published_total",
       "counter",
       "XEP-0490 displayed states the proxy published to the account's PEP node",
       "result",
       {"ok", "error", "retry"}},
      {"s2proxy_upstream_logins_in_flight",
       "gauge",
       "upstream logins started and not yet authenticated",
       "",
       {}},
      {"s2proxy_upstream_logins_waiting",
       "gauge",
       "upstream logins waiting for their turn",
       "",
       {}},
      {"s2proxy_upstream_logins_paced_total",
       "counter",
       "upstream logins that waited for a slot or the rate",
       "",
       {}},
      {"s2proxy_notify_settings_reads_total",
       "counter",
       "reads of the account's XEP-0492 notification settings (bookmarks node)",
       "result",
       {"ok", "error", "timeout"}},
      {"s2proxy_mirror_write_errors_total", "counter", "failed mirror writes", "", {}},
      {"s2proxy_history_gaps_total", "counter", "history gaps recorded", "", {}},
      {"s2proxy_mam_queries_total",
       "counter",
       "MAM queries answered from the mirror",
       "result",
       {"ok", "item_not_found", "error"}},
      {"s2proxy_login_duration_seconds",
       "histogram",
       "successful client logins, from the auth request to authenticated (upstream login "
       "included), by SASL mechanism",
       "mechanism",
       {"PLAIN", "SCRAM-SHA-1", "SCRAM-SHA-256", "HT-SHA-256-NONE"}},
      {"s2proxy_mirror_commit_seconds",
       "histogram",
       "mirror write transactions: building and committing one group (fsync included)",
       "",
       {}},
      {"s2proxy_message_transit_seconds",
       "histogram",
       "a persistent message's time inside the proxy, its mirror commit included: leaving, from "
       "a device's stanza read to its hand-over to the upstream link; entering, from the "
       "upstream's stanza read to its hand-over to the devices' sessions",
       "direction",
       {"leaving", "entering"}},
  };
  return all;
}

void register_metrics_catalogue() {
  for (const auto& e : metrics_catalogue()) {
    std::vector<std::string> values = e.values;
    if (e.label.empty()) values = {""};
    for (const auto& v : values) {
      const std::string labels = label_set(e.label, v);
      if (e.type == "histogram")
        histogram(e.name, e.help, labels, histogram_bounds(e.name));
      else
        metric(e.name, labels, e.type, e.help);
    }
  }
  gauge("s2proxy_build_info", "", label_set("version", S2PROXY_VERSION)).set(1);
  register_process_metrics();
}

Histogram& login_duration(const std::string& mechanism) {
  return histogram("s2proxy_login_duration_seconds", "", label_set("mechanism", mechanism));
}

Histogram& message_transit(bool leaving) {
  static Histogram& out = histogram("s2proxy_message_transit_seconds", "",
                                    label_set("direction", "leaving"), kTransitBuckets);
  static Histogram& in = histogram("s2proxy_message_transit_seconds", "",
                                   label_set("direction", "entering"), kTransitBuckets);
  return leaving ? out : in;
}

Histogram& mirror_commit_duration() {
  static Histogram& h = histogram("s2proxy_mirror_commit_seconds", "");
  return h;
}

}  // namespace s2
