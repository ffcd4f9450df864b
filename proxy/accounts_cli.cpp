// See accounts_cli.h.
#include "proxy/accounts_cli.h"

#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <future>
#include <iostream>
#include <optional>

#include "common/jid/jid.h"
#include "common/store/archive_id.h"
#include "common/store/pg_leases.h"
#include "common/util/json_text.h"
#include "proxy/credential_vault.h"
#include "proxy/store_open.h"

namespace s2 {
namespace {
// Milliseconds since the epoch as ISO 8601 UTC ("2026-12-03T08:25:38.447Z").
std::string iso8601(int64_t ms) {
  const time_t secs = static_cast<time_t>(ms / 1000);
  tm t{};
  gmtime_r(&secs, &t);
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", t.tm_year + 1900,
                t.tm_mon + 1, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec,
                static_cast<int>(ms % 1000));
  return buf;
}

std::unique_ptr<store::Store> open_mirror(const Config& cfg) {
  auto m = open_configured_store(cfg, store::WriterOptions{});
  if (!m) {
    std::cerr << m.error().text << "\n";
    return nullptr;
  }
  return std::move(m.value());
}

// The bare JID argument and the mirror, or an exit code.
struct Target {
  std::string jid;
  std::unique_ptr<store::Store> mirror;
  int error = 0;
};
Target open_target(const Config& cfg, const std::string& jid_text) {
  Target t;
  auto jid = bare_jid(jid_text);
  if (!jid) {
    std::cerr << "not a JID: " << jid_text << "\n";
    t.error = 2;
    return t;
  }
  t.jid = *jid;
  if (!store_may_exist(cfg)) {  // read-only commands create nothing
    std::cerr << "unknown account: " << t.jid << " (no mirror in " << cfg.data_dir << ")\n";
    t.error = 1;
    return t;
  }
  t.mirror = open_mirror(cfg);
  if (!t.mirror) t.error = 1;
  return t;
}
// The account's record, or nullopt after saying on stderr that it is unknown.
std::optional<store::AccountInfo> find_known(const Target& t) {
  auto acct = t.mirror->find_account(t.jid);
  if (acct && acct.value()) return *acct.value();
  std::cerr << "unknown account: " << t.jid << "\n";
  return std::nullopt;
}
}  // namespace

int accounts_list(const Config& cfg) {
  if (!store_may_exist(cfg)) {  // read-only commands create nothing
    std::cerr << "no accounts: no mirror in " << cfg.data_dir << "\n";
    return 0;
  }
  auto m = open_mirror(cfg);
  if (!m) return 1;
  auto list = m->list_accounts();
  if (!list) {
    std::cerr << list.error().text << "\n";
    return 1;
  }
  for (const auto& a : *list) std::cout << a.bare_jid << "\n";
  return 0;
}

int accounts_show(const Config& cfg, const std::string& jid_text) {
  auto t = open_target(cfg, jid_text);
  if (t.error) return t.error;
  auto& m = t.mirror;
  const auto found = find_known(t);
  if (!found) return 1;
  const auto& a = *found;
  auto creds = m->get_credentials(a.account);
  auto bounds = m->bounds(a.account);
  auto devices = m->list_devices(a.account);
  std::cout << "account      " << a.bare_jid << "\n"
            << "number       " << a.account << "\n"
            << "created      " << iso8601(a.created_ms) << "\n"
            << "credentials  " << (creds && creds.value() ? "stored (sealed)" : "none") << "\n";
  if (bounds) {
    std::cout << "archive      "
              << (bounds->first_id ? store::render_archive_id(bounds->first_id) : "-") << " .. "
              << (bounds->last_id ? store::render_archive_id(bounds->last_id) : "-") << "\n";
  }
  if (devices) std::cout << "devices      " << devices->size() << "\n";
  const char* body = (a.settings & store::acctset::kPushBodyOn)    ? "on"
                     : (a.settings & store::acctset::kPushBodyOff) ? "off"
                                                                   : "default (--push-body)";
  std::cout << "push body    " << body << "\n";
  return 0;
}

int accounts_push_body(const Config& cfg, const std::string& jid_text, const std::string& setting) {
  auto t = open_target(cfg, jid_text);
  if (t.error) return t.error;
  const auto acct = find_known(t);
  if (!acct) return 1;
  using namespace store::acctset;
  store::op::SetAccountSettings op{acct->account, 0, kPushBodyOn | kPushBodyOff};
  if (setting == "on") op.set = kPushBodyOn;
  if (setting == "off") op.set = kPushBodyOff;
  std::promise<store::WriteResult> done;
  t.mirror->submit({op}, [&](store::WriteResult r) { done.set_value(r); });
  auto r = done.get_future().get();
  if (!r.ok()) {
    std::cerr << "push-body failed: " << r.error->text << "\n";
    return 1;
  }
  std::cout << "push body for " << t.jid << ": " << setting << "\n";
  return 0;
}

int accounts_export(const Config& cfg, const std::string& jid_text) {
  auto t = open_target(cfg, jid_text);
  if (t.error) return t.error;
  const auto acct = find_known(t);
  if (!acct) return 1;
  // Pages of the archive in archive order; each page is its own read
  // transaction, so a running daemon keeps appending behind the export.
  store::MamQuery q;
  q.max = 500;
  uint64_t n = 0;
  std::string line;
  for (;;) {
    auto page = t.mirror->query(acct->account, q);
    if (!page) {
      std::cerr << "export failed: " << page.error().text << "\n";
      return 1;
    }
    for (const auto& m : page->items) {
      line.clear();
      line += "{\"archive_id\":";
      append_json_string(line, store::render_archive_id(m.archive_id));
      line += ",\"time\":";
      append_json_string(line, iso8601(m.record.timestamp_ms));
      line += ",\"direction\":";
      line += m.record.direction == store::Direction::kOutgoing ? "\"out\"" : "\"in\"";
      line += ",\"peer\":";
      append_json_string(line, m.record.peer_bare);
      line += ",\"stanza\":";
      append_json_string(line, m.record.stanza);
      line += "}\n";
      std::cout << line;
      ++n;
    }
    if (page->complete || page->items.empty()) break;
    q.after_id = page->last;
  }
  std::cout.flush();
  std::cerr << "exported " << n << " messages of " << t.jid << "\n";
  return std::cout ? 0 : 1;
}

int accounts_forget(const Config& cfg, const std::string& jid_text) {
  auto t = open_target(cfg, jid_text);
  if (t.error) return t.error;
  auto& m = t.mirror;
  const auto* jid = &t.jid;
  // Nodes sharing a PostgreSQL store (cluster.h): the command takes the
  // account's lease for its duration, as a node would. Held by a node, the
  // account is being served (its anchor and devices write for it): forgetting
  // it under that node would race with its commits, so the command refuses and
  // names the node. Taken here, no node can claim it until the command ends,
  // and a node that held it before can no longer commit (the epoch moved).
  std::unique_ptr<store::AccountLeases> leases;
  if (auto* pg = dynamic_cast<store::PgStore*>(m.get())) {
    auto acct = m->find_account(*jid);
    if (acct && acct.value()) {
      auto l = store::AccountLeases::open(
          {cfg.store, "accounts-forget@" + store::this_process_name(), ""}, *pg);
      if (!l) {
        std::cerr << "forget failed: account leases: " << l.error().text << "\n";
        return 1;
      }
      leases = std::move(l.value());
      auto c = leases->claim(acct.value()->account);
      if (!c) {
        std::cerr << "forget failed: account lease: " << c.error().text << "\n";
        return 1;
      }
      if (!c->owned) {
        std::cerr << "forget refused: " << *jid << " is being served by "
                  << (c->node.empty() ? std::string("another node") : "node " + c->node)
                  << (c->address.empty() ? "" : " (" + c->address + ")")
                  << "; stop that node (its lease ends with it) or wait until no node serves "
                     "the account, then run this again\n";
        return 1;
      }
    }
  }
  std::promise<store::WriteResult> done;
  m->submit({store::op::ForgetAccount{*jid}}, [&](store::WriteResult r) { done.set_value(r); });
  auto r = done.get_future().get();
  if (!r.ok()) {
    std::cerr << "forget failed: " << r.error->text << "\n";
    return 1;
  }
  const uint64_t n = r.ops.empty() ? 0 : r.ops[0].count;
  std::cout << "forgot " << *jid << " (" << n << " records: history, credentials, tokens)\n";
  return n > 0 ? 0 : 1;
}

}  // namespace s2
