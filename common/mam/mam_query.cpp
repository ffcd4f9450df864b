// XEP-0313 query parsing (server role) and the form discovery answer.
#include "common/mam/mam_query.h"

#include <algorithm>
#include <array>
#include <limits>

#include "common/mam/datetime.h"

namespace s2::mam {
namespace {

constexpr size_t kMaxEchoBytes = 64;  // of peer input quoted in error texts

MamParseError bad(std::string text) { return MamParseError{"bad-request", std::move(text)}; }

// Peer input for an error text: at most kMaxEchoBytes, cut on a UTF-8 boundary.
std::string echo(std::string_view s) {
  if (s.size() <= kMaxEchoBytes) return std::string(s);
  size_t n = kMaxEchoBytes;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  return std::string(s.substr(0, n)) + "...";
}

// One submitted form field.
struct Field {
  std::string var;
  std::vector<std::string> values;  // raw text of each <value/>
};

// The single value of a field, trimmed; nullopt when absent or empty.
Result<std::optional<std::string>> single(const Field& f) {
  if (f.values.size() > 1) return bad("field " + echo(f.var) + " takes a single value");
  if (f.values.empty()) return std::optional<std::string>();
  std::string_view v = trim_ascii(f.values[0]);
  if (v.empty()) return std::optional<std::string>();
  return std::optional<std::string>(std::string(v));
}

Result<std::optional<int64_t>> datetime_field(const Field& f) {
  auto v = single(f);
  if (!v) return v.error();
  if (!*v) return std::optional<int64_t>();
  auto ms = parse_datetime(**v);
  if (!ms) return bad("field " + f.var + " is not an XEP-0082 datetime: " + echo(**v));
  return std::optional<int64_t>(*ms);
}

// Applies the form's fields to `req`.
std::optional<MamParseError> parse_form(const Stanza& x, MamRequest* req) {
  if (x.attr_or("type") != "submit") return bad("the form must be of type 'submit'");
  std::vector<std::string> seen;
  for (const Stanza& el : x.children()) {
    if (!el.is("field", kNsData)) continue;
    Field f;
    f.var = el.attr_or("var");
    if (f.var.empty()) return bad("form field without var");
    if (std::find(seen.begin(), seen.end(), f.var) != seen.end()) {
      return bad("field " + echo(f.var) + " appears twice");
    }
    seen.push_back(f.var);
    for (const Stanza& v : el.children()) {
      if (v.is("value", kNsData)) f.values.push_back(v.text_content());
    }

    if (f.var == "ids") {
      for (const std::string& raw : f.values) {
        std::string_view id = trim_ascii(raw);
        if (id.empty()) return bad("field ids has an empty value");
        if (req->ids.size() == kMaxQueryIds) {
          return MamParseError{"policy-violation", "field ids has more than " +
                                                       std::to_string(kMaxQueryIds) + " values"};
        }
        req->ids.emplace_back(id);
      }
      continue;
    }
    if (f.var == "start" || f.var == "end") {
      auto ms = datetime_field(f);
      if (!ms) return ms.error();
      (f.var == "start" ? req->start_ms : req->end_ms) = *ms;
      continue;
    }
    static constexpr std::array<std::string_view, 4> kScalars = {"FORM_TYPE", "with", "after-id",
                                                                 "before-id"};
    if (std::find(kScalars.begin(), kScalars.end(), f.var) == kScalars.end()) {
      return bad("field " + echo(f.var) + " is not supported");
    }
    auto v = single(f);
    if (!v) return v.error();
    if (f.var == "FORM_TYPE") {
      if (!*v || **v != kNsMam) {
        return bad("FORM_TYPE must be " + std::string(kNsMam));
      }
    } else if (f.var == "with") {
      req->with = v->value_or("");
    } else if (f.var == "after-id") {
      req->after_id = *v;
    } else {
      req->before_id = *v;
    }
  }
  return std::nullopt;
}

Result<size_t> rsm_number(const Stanza& el, std::string_view what, uint64_t limit) {
  const std::string text = el.text_content();
  auto n = parse_decimal(trim_ascii(text));
  if (!n || *n > limit) {
    return bad("RSM <" + std::string(what) + "/> must be an integer from 0 to " +
               std::to_string(limit));
  }
  return static_cast<size_t>(*n);
}

std::optional<MamParseError> parse_rsm(const Stanza& set, MamRequest* req) {
  bool have_max = false, have_after = false, have_before = false, have_index = false;
  for (const Stanza& el : set.children()) {
    const std::string name = el.name();
    bool* seen = nullptr;
    if (!el.is(name, kNsRsm)) continue;
    if (name == "max") {
      seen = &have_max;
    } else if (name == "after") {
      seen = &have_after;
    } else if (name == "before") {
      seen = &have_before;
    } else if (name == "index") {
      seen = &have_index;
    } else {
      continue;
    }
    if (*seen) return bad("RSM <" + name + "/> appears twice");
    *seen = true;
    if (name == "max") {
      auto n = rsm_number(el, name, kMaxRsmMax);
      if (!n) return n.error();
      req->max = *n;
    } else if (name == "index") {
      auto n = rsm_number(el, name, std::numeric_limits<size_t>::max());
      if (!n) return n.error();
      req->rsm_index = *n;
    } else {
      const std::string text = el.text_content();
      std::string_view v = trim_ascii(text);
      if (name == "after") {
        if (v.empty()) return bad("RSM <after/> must name an item");
        req->rsm_after = std::string(v);
      } else {
        req->rsm_before = std::string(v);
      }
    }
  }
  return std::nullopt;
}

Stanza form_field(std::string_view var, std::string_view type) {
  Stanza f = Stanza::element("field");
  f.set_attr("var", var);
  f.set_attr("type", type);
  return f;
}

}  // namespace

Result<MamRequest> parse_mam_query(const Stanza& query) {
  if (!query.is("query", kNsMam)) return bad("not a <query xmlns='urn:xmpp:mam:2'/>");
  MamRequest req;
  req.queryid = query.attr_or("queryid");
  bool have_form = false, have_set = false;
  for (const Stanza& el : query.children()) {
    if (el.is("x", kNsData)) {
      if (have_form) return bad("more than one data form");
      have_form = true;
      if (auto e = parse_form(el, &req)) return *e;
    } else if (el.is("set", kNsRsm)) {
      if (have_set) return bad("more than one RSM <set/>");
      have_set = true;
      if (auto e = parse_rsm(el, &req)) return *e;
    } else if (el.is("flip-page", kNsMam)) {
      req.flip_page = true;
    }
  }
  if (req.after_id && req.rsm_after) return bad("after-id and RSM <after/> are exclusive");
  if (req.before_id && req.rsm_before && !req.rsm_before->empty()) {
    return bad("before-id and RSM <before/> with an id are exclusive");
  }
  return req;
}

Stanza build_mam_form_fields() {
  Stanza x = Stanza::element("x", kNsData);
  x.set_attr("type", "form");
  Stanza form_type = form_field("FORM_TYPE", "hidden");
  Stanza value = Stanza::element("value");
  value.add_text(kNsMam);
  form_type.add_child(value);
  x.add_child(form_type);
  x.add_child(form_field("with", "jid-single"));
  x.add_child(form_field("start", "text-single"));
  x.add_child(form_field("end", "text-single"));
  x.add_child(form_field("after-id", "text-single"));
  x.add_child(form_field("before-id", "text-single"));
  x.add_child(form_field("ids", "text-multi"));
  Stanza query = Stanza::element("query", kNsMam);
  query.add_child(x);
  return query;
}

}  // namespace s2::mam
