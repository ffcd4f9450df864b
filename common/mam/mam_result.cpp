// XEP-0313 result builders (server role) and query/result handling (client role).
#include "common/mam/mam_result.h"

#include <string>

#include "common/mam/datetime.h"

namespace s2::mam {
namespace {

Stanza text_element(std::string_view name, std::string_view text) {
  Stanza el = Stanza::element(name);
  if (!text.empty()) el.add_text(text);
  return el;
}

Stanza result_iq(std::string_view to, std::string_view id) {
  Stanza iq = Stanza::element("iq");
  iq.set_attr("type", "result");
  iq.set_attr("id", id);
  if (!to.empty()) iq.set_attr("to", to);
  return iq;
}

bool is_result_iq(const Stanza& iq) {
  return (iq.is("iq", "jabber:client") || iq.is("iq", "jabber:server")) &&
         iq.attr_or("type") == "result";
}

std::optional<uint64_t> number_of(const Stanza& el) {
  if (!el) return std::nullopt;
  const std::string text = el.text_content();
  return parse_decimal(trim_ascii(text));
}

std::optional<int64_t> timestamp_of(const Stanza& el) {
  auto ts = el.attr("timestamp");
  if (!ts) return std::nullopt;
  return parse_datetime(trim_ascii(*ts));
}

}  // namespace

Stanza build_result_message(std::string_view to, std::string_view queryid,
                            std::string_view archive_id, int64_t stamp_ms,
                            const Stanza& inner_message) {
  Stanza m = Stanza::element("message");
  if (!to.empty()) m.set_attr("to", to);
  Stanza result = Stanza::element("result", kNsMam);
  if (!queryid.empty()) result.set_attr("queryid", queryid);
  result.set_attr("id", archive_id);
  result.add_child(build_forwarded(inner_message, stamp_ms));
  m.add_child(result);
  return m;
}

Stanza build_fin_iq(std::string_view to, std::string_view id, const FinInfo& fin) {
  Stanza iq = result_iq(to, id);
  Stanza f = Stanza::element("fin", kNsMam);
  if (fin.complete) f.set_attr("complete", "true");
  Stanza set = Stanza::element("set", kNsRsm);
  if (!fin.first.empty()) {
    Stanza first = text_element("first", fin.first);
    if (fin.first_index) first.set_attr("index", std::to_string(*fin.first_index));
    set.add_child(first);
  }
  if (!fin.last.empty()) set.add_child(text_element("last", fin.last));
  if (fin.count) set.add_child(text_element("count", std::to_string(*fin.count)));
  f.add_child(set);
  iq.add_child(f);
  return iq;
}

Stanza build_metadata_iq(std::string_view to, std::string_view id, std::string_view first_id,
                         int64_t first_ms, std::string_view last_id, int64_t last_ms) {
  Stanza iq = result_iq(to, id);
  Stanza md = Stanza::element("metadata", kNsMam);
  if (!first_id.empty()) {
    Stanza start = Stanza::element("start");
    start.set_attr("id", first_id);
    start.set_attr("timestamp", format_datetime(first_ms));
    md.add_child(start);
  }
  if (!last_id.empty()) {
    Stanza end = Stanza::element("end");
    end.set_attr("id", last_id);
    end.set_attr("timestamp", format_datetime(last_ms));
    md.add_child(end);
  }
  iq.add_child(md);
  return iq;
}

Stanza build_mam_query_iq(std::string_view id, std::string_view queryid, const ClientQuery& q) {
  Stanza iq = Stanza::element("iq");
  iq.set_attr("type", "set");
  iq.set_attr("id", id);
  Stanza query = Stanza::element("query", kNsMam);
  if (!queryid.empty()) query.set_attr("queryid", queryid);

  Stanza x = Stanza::element("x", kNsData);
  x.set_attr("type", "submit");
  Stanza form_type = Stanza::element("field");
  form_type.set_attr("var", "FORM_TYPE");
  form_type.set_attr("type", "hidden");
  form_type.add_child(text_element("value", kNsMam));
  x.add_child(form_type);
  if (q.start_ms) {
    Stanza start = Stanza::element("field");
    start.set_attr("var", "start");
    start.add_child(text_element("value", format_datetime(*q.start_ms)));
    x.add_child(start);
  }
  if (q.end_ms) {
    Stanza end = Stanza::element("field");
    end.set_attr("var", "end");
    end.add_child(text_element("value", format_datetime(*q.end_ms)));
    x.add_child(end);
  }
  query.add_child(x);

  Stanza set = Stanza::element("set", kNsRsm);
  set.add_child(text_element("max", std::to_string(q.max)));
  if (q.rsm_after) {
    set.add_child(text_element("after", *q.rsm_after));
  } else if (q.rsm_before_last) {
    set.add_child(Stanza::element("before"));
  }
  query.add_child(set);
  iq.add_child(query);
  return iq;
}

std::optional<MamResultItem> parse_result_message(const Stanza& message) {
  if (!message.is("message", "jabber:client") && !message.is("message", "jabber:server")) {
    return std::nullopt;
  }
  Stanza result;
  for (const Stanza& el : message.children()) {
    if (!el.is("result", kNsMam)) continue;
    if (result) return std::nullopt;
    result = el;
  }
  if (!result) return std::nullopt;
  MamResultItem item;
  item.id = result.attr_or("id");
  if (item.id.empty()) return std::nullopt;
  item.queryid = result.attr_or("queryid");
  auto fwd = parse_forwarded(result.child("forwarded", kNsForward));
  if (!fwd) return std::nullopt;
  item.stamp_ms = fwd->stamp_ms;
  item.message = std::move(fwd->message);
  return item;
}

std::optional<FinInfo> parse_fin(const Stanza& iq) {
  if (!is_result_iq(iq)) return std::nullopt;
  Stanza fin = iq.child("fin", kNsMam);
  if (!fin) return std::nullopt;
  FinInfo out;
  const std::string complete = fin.attr_or("complete");
  out.complete = complete == "true" || complete == "1";
  Stanza set = fin.child("set", kNsRsm);
  if (!set) return out;
  if (Stanza first = set.child("first", kNsRsm)) {
    out.first = std::string(trim_ascii(first.text_content()));
    if (auto index = first.attr("index")) out.first_index = parse_decimal(trim_ascii(*index));
  }
  if (Stanza last = set.child("last", kNsRsm)) {
    out.last = std::string(trim_ascii(last.text_content()));
  }
  out.count = number_of(set.child("count", kNsRsm));
  if (out.first.empty()) out.first_index.reset();
  return out;
}

std::optional<MamMetadata> parse_metadata(const Stanza& iq) {
  if (!is_result_iq(iq)) return std::nullopt;
  Stanza md = iq.child("metadata", kNsMam);
  if (!md) return std::nullopt;
  MamMetadata out;
  if (Stanza start = md.child("start", kNsMam)) {
    out.first_id = start.attr_or("id");
    out.first_ms = timestamp_of(start);
  }
  if (Stanza end = md.child("end", kNsMam)) {
    out.last_id = end.attr_or("id");
    out.last_ms = timestamp_of(end);
  }
  return out;
}

}  // namespace s2::mam
