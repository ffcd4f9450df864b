// CsiQueue: what an inactive device holds, what replaces what, the order things are written in,
// the bound, and why each flush happened.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "proxy/csi_queue.h"

namespace s2 {
namespace {

using U = policy::Urgency;
using R = CsiQueue::FlushReason;

// A stanza named by its id; `key` is its coalescing key ("" = none).
CsiQueue::Item item(const std::string& id, const std::string& key = "",
                    store::ArchiveId archive_id = 0) {
  CsiQueue::Item it;
  it.stanza = Stanza::element("message");
  it.stanza.set_attr("id", id);
  it.archive_id = archive_id;
  it.held_at_ms = 1000;
  if (!key.empty()) it.coalesce_key = key;
  return it;
}

std::string ids(const std::vector<CsiQueue::Item>& items) {
  std::string out;
  for (const auto& i : items) out += (out.empty() ? "" : ",") + i.stanza.attr_or("id");
  return out;
}

// Offers a sequence and records what is written: "flushed ids|now id" per offer.
struct Step {
  std::string id, key;
  U u;
  std::string written;  // what the offer writes, in order ("" = held)
  std::string reason;   // flush reason, "" = none
  bool coalesced = false;
};

void run(CsiQueue& q, const std::vector<Step>& steps) {
  for (const auto& s : steps) {
    CAPTURE(s.id);
    auto out = q.offer(item(s.id, s.key), s.u);
    std::vector<CsiQueue::Item> w = std::move(out.flushed);
    if (out.now) w.push_back(std::move(*out.now));
    CHECK(ids(w) == s.written);
    CHECK((out.reason ? std::string(to_string(*out.reason)) : std::string()) == s.reason);
    CHECK(out.coalesced == s.coalesced);
  }
}

TEST_CASE("csi queue: active delivers everything at once") {
  CsiQueue q;
  run(q, {{"p1", "presence/bob", U::Silent, "p1", ""},
          {"m1", "", U::Urgent, "m1", ""},
          {"iq", "", U::Immediate, "iq", ""}});
  CHECK(q.size() == 0);
}

TEST_CASE("csi queue: silent held in order, urgent flushes then goes") {
  CsiQueue q;
  CHECK(q.set_inactive(true).empty());
  run(q, {{"c1", "chatstate/bob", U::Silent, "", ""},
          {"r1", "", U::Silent, "", ""},
          {"p1", "presence/carol", U::Silent, "", ""},
          {"m1", "", U::Urgent, "c1,r1,p1,m1", "urgent"},
          {"c2", "chatstate/bob", U::Silent, "", ""}});
  CHECK(q.size() == 1);
}

TEST_CASE("csi queue: flush reasons") {
  struct Row {
    U u;
    std::string reason;
  };
  const Row rows[] = {{U::Urgent, "urgent"}, {U::Normal, "normal"}, {U::Immediate, "immediate"}};
  for (const auto& r : rows) {
    CsiQueue q;
    q.set_inactive(true);
    run(q, {{"h", "", U::Silent, "", ""}, {"x", "", r.u, "h,x", r.reason}});
    CHECK(q.size() == 0);
    // Nothing held: no flush reported.
    run(q, {{"y", "", r.u, "y", ""}});
  }
}

TEST_CASE("csi queue: <active/> returns what was held, in order") {
  CsiQueue q;
  q.set_inactive(true);
  run(q, {{"a", "", U::Silent, "", ""}, {"b", "k", U::Silent, "", ""}});
  auto held = q.set_inactive(false);
  CHECK(ids(held) == "a,b");
  CHECK(q.size() == 0);
  CHECK_FALSE(q.inactive());
  run(q, {{"c", "", U::Silent, "c", ""}});  // active again: written at once
  CHECK(q.set_inactive(false).empty());
}

TEST_CASE("csi queue: coalescing keeps the latest per key, at the end") {
  CsiQueue q;
  q.set_inactive(true);
  run(q, {{"p1", "presence/bob/b1", U::Silent, "", ""},
          {"c1", "chatstate/bob/b1", U::Silent, "", ""},
          {"p2", "presence/bob/b1", U::Silent, "", "", true},
          {"p3", "presence/bob/b2", U::Silent, "", ""},
          {"r1", "", U::Silent, "", ""},
          {"p4", "presence/bob/b1", U::Silent, "", "", true},
          {"c2", "chatstate/bob/b1", U::Silent, "", "", true}});
  CHECK(q.size() == 4);
  CHECK(ids(q.set_inactive(false)) == "p3,r1,p4,c2");
}

TEST_CASE("csi queue: an unkeyed stanza never replaces, a keyed one only its key") {
  CsiQueue q;
  q.set_inactive(true);
  run(q, {{"r1", "", U::Silent, "", ""},
          {"r2", "", U::Silent, "", ""},
          {"k1", "a", U::Silent, "", ""},
          {"k2", "b", U::Silent, "", ""}});
  CHECK(ids(q.take_all()) == "r1,r2,k1,k2");
}

TEST_CASE("csi queue: bounded — overflow flushes, never drops") {
  CsiQueue q(3);
  q.set_inactive(true);
  run(q, {{"a", "", U::Silent, "", ""},
          {"b", "", U::Silent, "", ""},
          {"c", "k", U::Silent, "", ""},
          {"c2", "k", U::Silent, "", "", true},  // replacing needs no room
          {"d", "", U::Silent, "a,b,c2,d", "overflow"},
          {"e", "", U::Silent, "", ""}});
  CHECK(q.size() == 1);
}

TEST_CASE("csi queue: limit 0 holds nothing") {
  CsiQueue q(0);
  q.set_inactive(true);
  run(q, {{"a", "k", U::Silent, "a", ""}, {"b", "", U::Silent, "b", ""}});
  CHECK(q.size() == 0);
}

TEST_CASE("csi queue: archive ids and hold times stay with the stanza") {
  CsiQueue q;
  q.set_inactive(true);
  auto it = item("m", "", 42);
  it.held_at_ms = 12345;
  CHECK_FALSE(q.offer(std::move(it), U::Silent).now);
  auto all = q.take_all();
  REQUIRE(all.size() == 1);
  CHECK(all[0].archive_id == 42);
  CHECK(all[0].held_at_ms == 12345);
  CHECK(q.size() == 0);
}

}  // namespace
}  // namespace s2
