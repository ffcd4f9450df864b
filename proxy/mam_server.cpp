// See mam_server.h.
#include "proxy/mam_server.h"

#include <algorithm>

#include "common/jid/jid.h"
#include "common/mam/mam_query.h"
#include "common/mam/mam_result.h"
#include "common/session2/errors.h"
#include "common/store/archive_id.h"
#include "common/util/log.h"
#include "common/util/metrics.h"
#include "proxy/device.h"
#include "proxy/proxy_context.h"

namespace s2 {
namespace {
Metric& m_queries(const char* result) {
  return counter("s2proxy_mam_queries_total", "MAM queries answered from the mirror",
                 std::string("result=\"") + result + "\"");
}

void error_reply(Device& d, const Stanza& iq, const std::string& type, const std::string& cond,
                 const std::string& text) {
  Stanza orig = iq.clone();
  orig.set_attr("from", d.full_jid());
  if (auto e = session2::build_stanza_error(orig, type, cond, text)) {
    e.remove_attr("from");
    e.set_attr("to", d.full_jid());
    d.deliver(e, 0);
  }
  m_queries(cond == "item-not-found" ? "item_not_found" : "error").inc();
}
}  // namespace

bool MamServer::wants(const Stanza& iq) {
  const std::string type = iq.attr_or("type");
  if (type == "set" && iq.child("query", mam::kNsMam)) return true;
  if (type == "get" && (iq.child("query", mam::kNsMam) || iq.child("metadata", mam::kNsMam)))
    return true;
  return false;
}

void MamServer::answer(ProxyContext& ctx, const std::string& account, store::AccountNo account_no,
                       Device& d, const Stanza& iq) {
  const std::string id = iq.attr_or("id");
  const std::string type = iq.attr_or("type");
  if (auto to = iq.attr("to"); to && !to->empty()) {
    if (bare_jid(*to).value_or("") != account) {
      error_reply(d, iq, "cancel", "forbidden", "only the account's own archive is served here");
      return;
    }
  }
  if (type == "get" && iq.child("metadata", mam::kNsMam)) {
    auto b = ctx.store->bounds(account_no);
    if (!b.ok()) {
      error_reply(d, iq, "wait", "internal-server-error", "the archive cannot be read");
      return;
    }
    const bool empty = b->last_id == 0;
    d.deliver(mam::build_metadata_iq(
                  d.full_jid(), id, empty ? "" : store::render_archive_id(b->first_id), b->first_ms,
                  empty ? "" : store::render_archive_id(b->last_id), b->last_ms),
              0);
    return;
  }
  if (type == "get") {
    auto r = Stanza::element("iq");
    r.set_attr("type", "result").set_attr("id", id).set_attr("to", d.full_jid());
    r.add_child(mam::build_mam_form_fields());
    d.deliver(r, 0);
    return;
  }
  auto parsed = mam::parse_mam_query(iq.child("query", mam::kNsMam));
  if (!parsed) {
    error_reply(d, iq, "modify", parsed.error().condition, parsed.error().text);
    return;
  }
  const mam::MamRequest& req = *parsed;
  if (req.rsm_index) {
    error_reply(d, iq, "cancel", "feature-not-implemented", "RSM <index/> is not supported");
    return;
  }
  store::MamQuery q;
  if (!req.with.empty()) {
    auto w = bare_jid(req.with);
    if (!w) {
      error_reply(d, iq, "modify", "jid-malformed", "'with' is not a valid JID");
      return;
    }
    q.with = *w;
  }
  q.start_ms = req.start_ms;
  q.end_ms = req.end_ms;
  q.after_id = req.after_id ? req.after_id : req.rsm_after;
  if (req.before_id) {
    q.before_id = req.before_id;
  } else if (req.rsm_before) {
    q.from_end = true;
    if (!req.rsm_before->empty()) q.before_id = req.rsm_before;
  }
  q.ids = req.ids;
  q.max = std::min<size_t>(req.max.value_or(ctx.config.mam_default_page), ctx.config.mam_max_page);
  // Never more than the device's SM queue takes now (results + the fin): a
  // shorter page with complete='false' is valid RSM, an overflow ends it.
  const size_t room = d.queue_room();
  if (room != SIZE_MAX) q.max = std::min(q.max, room > 1 ? room - 1 : size_t{0});
  auto page = ctx.store->query(account_no, q);
  if (!page.ok()) {
    if (page.error().code == store::Errc::kItemNotFound) {
      error_reply(d, iq, "cancel", "item-not-found", "no such archive id in this archive");
    } else {
      error_reply(d, iq, "wait", "internal-server-error", "the archive cannot be read");
    }
    return;
  }
  std::vector<const store::StoredMessage*> items;
  for (auto& m : page->items) items.push_back(&m);
  if (req.flip_page) std::reverse(items.begin(), items.end());
  // One parser for the whole page: a parser per result costs more than the
  // range scan itself.
  std::string bytes;
  for (auto* m : items) bytes += m->record.stanza;
  auto page_stanzas = Stanza::parse_all(bytes);
  const bool batch_ok = page_stanzas.size() == items.size();
  for (size_t i = 0; i < items.size(); ++i) {
    const auto* m = items[i];
    Stanza inner = batch_ok ? page_stanzas[i] : Stanza::parse(m->record.stanza);
    if (!inner) continue;
    d.deliver(
        mam::build_result_message(d.full_jid(), req.queryid,
                                  store::render_archive_id(m->archive_id), m->archive_ms, inner),
        0);
  }
  mam::FinInfo fin;
  fin.complete = page->complete;
  fin.first = page->first;
  fin.last = page->last;
  fin.count = page->count;
  fin.first_index = page->first_index;
  if (q.after_id || q.before_id) {
    // XEP-0059: <count/> is the whole result set and <first index/> the
    // page's place in it, not the part left after <after/>/<before/>. Cheap
    // only where ids are dense (no `with`); elsewhere they are left out.
    fin.count.reset();
    fin.first_index.reset();
    if (q.with.empty() && q.ids.empty()) {
      store::MamQuery all = q;
      all.after_id.reset();
      all.before_id.reset();
      all.from_end = false;
      all.max = 0;
      auto total = ctx.store->query(account_no, all);
      if (total.ok() && total->count) {
        fin.count = total->count;
        if (!page->first.empty()) {
          all.before_id = page->first;
          auto before = ctx.store->query(account_no, all);
          if (before.ok() && before->count) fin.first_index = before->count;
        }
      }
    }
  }
  if (req.flip_page) std::swap(fin.first, fin.last);
  d.deliver(mam::build_fin_iq(d.full_jid(), id, fin), 0);
  m_queries("ok").inc();
}

}  // namespace s2
