// Append deduplication (ARCHITECTURE §4) and reference resolution.
#include <doctest/doctest.h>

#include "store_test_util.h"

using namespace s2::store;
using namespace s2::store::test;

namespace {

uint64_t message_count(const Store& m) {
  for (auto& [name, n] : entry_counts(m)) {
    if (name == "messages" || name == "s2_messages") return n;
  }
  return 0;
}

}  // namespace

TEST_CASE("dedup by upstream stanza-id") {
  TempDir dir;
  auto m = open_store(options(dir.path()));
  AccountNo a = create_account(*m, "alice@example.org");

  OpResult first = append(*m, a, msg("bob@example.org", 1000, "S1"));
  CHECK_FALSE(first.duplicate);
  CHECK(first.archive_id == 1);
  // The same message again (MAM catch-up overlapping a live carbon), even with
  // other metadata: the upstream id decides.
  OpResult again = append(*m, a, msg("bob@example.org", 2000, "S1", "other-origin"));
  CHECK(again.duplicate);
  CHECK(again.matched == DedupMatch::kUpstreamId);
  CHECK(again.archive_id == 1);
  CHECK(message_count(*m) == 1);
  // A different account has its own id space.
  AccountNo b = create_account(*m, "bea@example.org");
  CHECK_FALSE(append(*m, b, msg("bob@example.org", 1000, "S1")).duplicate);
}

TEST_CASE("dedup by origin-id is per peer") {
  TempDir dir;
  auto m = open_store(options(dir.path()));
  AccountNo a = create_account(*m, "alice@example.org");

  CHECK(append(*m, a, msg("bob@example.org", 1000, "", "O1")).archive_id == 1);
  OpResult dup = append(*m, a, msg("bob@example.org", 1000, "", "O1"));
  CHECK(dup.duplicate);
  CHECK(dup.matched == DedupMatch::kOriginId);
  CHECK(dup.archive_id == 1);
  // Same origin-id from another peer is another message.
  OpResult other = append(*m, a, msg("carol@example.org", 1000, "", "O1"));
  CHECK_FALSE(other.duplicate);
  CHECK(other.archive_id == 2);
}

TEST_CASE("dedup by fingerprint only within the window") {
  TempDir dir;
  MirrorOptions o = options(dir.path());
  o.fingerprint_window_ms = 60'000;
  auto m = open_store(o);
  AccountNo a = create_account(*m, "alice@example.org");

  CHECK(append(*m, a, msg("bob@example.org", 100'000, "", "", "FP")).archive_id == 1);
  OpResult near = append(*m, a, msg("bob@example.org", 130'000, "", "", "FP"));
  CHECK(near.duplicate);
  CHECK(near.matched == DedupMatch::kFingerprint);
  CHECK(near.archive_id == 1);
  // "ok" with id "1" again an hour later is a new message...
  OpResult later = append(*m, a, msg("bob@example.org", 3'700'000, "", "", "FP"));
  CHECK_FALSE(later.duplicate);
  CHECK(later.archive_id == 2);
  // ...and the window now follows the newest one.
  CHECK(append(*m, a, msg("bob@example.org", 3'710'000, "", "", "FP")).archive_id == 2);
}

TEST_CASE("a duplicate back-fills the keys it brought") {
  TempDir dir;
  auto m = open_store(options(dir.path()));
  AccountNo a = create_account(*m, "alice@example.org");

  // Sent by a device: only the origin-id is known.
  MessageRecord sent = msg("bob@example.org", 1000, "", "O7");
  sent.direction = Direction::kOutgoing;
  CHECK(append(*m, a, sent).archive_id == 1);
  CHECK_FALSE(m->find_upstream_id(a, "S7")->has_value());
  // MAM returns it later with the upstream's stanza-id.
  sent.upstream_stanza_id = "S7";
  OpResult mam = append(*m, a, sent);
  CHECK(mam.duplicate);
  CHECK(mam.matched == DedupMatch::kOriginId);
  REQUIRE(m->find_upstream_id(a, "S7")->has_value());
  CHECK(**m->find_upstream_id(a, "S7") == 1);
  // A copy that carries only the stanza-id now resolves too.
  OpResult live = append(*m, a, msg("bob@example.org", 1000, "S7"));
  CHECK(live.duplicate);
  CHECK(live.matched == DedupMatch::kUpstreamId);
  CHECK(live.archive_id == 1);
}

TEST_CASE("duplicates inside one batch, and a duplicate enqueues nothing") {
  TempDir dir;
  auto m = open_store(options(dir.path()));
  AccountNo a = create_account(*m, "alice@example.org");

  OutboxItem out{"phone", "<message/>", 1};
  WriteResult r = write_sync(*m, {op::Append{a, msg("bob@example.org", 1, "", "O1"), out},
                                  op::Append{a, msg("bob@example.org", 1, "", "O1"), out}});
  REQUIRE(r.ok());
  CHECK(r.ops[0].archive_id == 1);
  CHECK(r.ops[0].outbox_seq == 1);
  CHECK(r.ops[1].duplicate);
  CHECK(r.ops[1].archive_id == 1);
  CHECK(r.ops[1].outbox_seq == 0);
  CHECK(m->list_outbox(a, 0, 10)->size() == 1);
}

TEST_CASE("references resolve by origin-id and by id per direction; newest id wins") {
  TempDir dir;
  auto m = open_store(options(dir.path()));
  AccountNo a = create_account(*m, "alice@example.org");

  MessageRecord out = msg("bob@example.org", 1, "", "uuid-1");
  out.direction = Direction::kOutgoing;
  out.id = "1";
  MessageRecord in = msg("bob@example.org", 2);
  in.id = "1";  // bob's client also counts from 1
  MessageRecord out2 = out;
  out2.origin_id = "uuid-2";
  CHECK(append(*m, a, out).archive_id == 1);
  CHECK(append(*m, a, in).archive_id == 2);

  CHECK(**m->resolve_ref(a, "bob@example.org", RefKind::kSentId, "1") == 1);
  CHECK(**m->resolve_ref(a, "bob@example.org", RefKind::kReceivedId, "1") == 2);
  CHECK(**m->resolve_ref(a, "bob@example.org", RefKind::kOriginId, "uuid-1") == 1);
  CHECK_FALSE(m->resolve_ref(a, "carol@example.org", RefKind::kSentId, "1")->has_value());

  CHECK(append(*m, a, out2).archive_id == 3);
  CHECK(**m->resolve_ref(a, "bob@example.org", RefKind::kSentId, "1") == 3);
}

TEST_CASE("an id equal to the origin-id resolves through the origin-id entry") {
  TempDir dir;
  auto m = open_store(options(dir.path()));
  AccountNo a = create_account(*m, "alice@example.org");
  const std::string bob = "bob@example.org";

  MessageRecord sent = msg(bob, 1, "", "abc");  // id == origin-id, as most clients do
  sent.direction = Direction::kOutgoing;
  sent.id = "abc";
  CHECK(append(*m, a, sent).archive_id == 1);
  CHECK(**m->resolve_ref(a, bob, RefKind::kSentId, "abc") == 1);
  CHECK(**m->resolve_ref(a, bob, RefKind::kOriginId, "abc") == 1);
  CHECK_FALSE(m->resolve_ref(a, bob, RefKind::kReceivedId, "abc")->has_value());  // direction

  // An older message with the same bare id but its own origin-id: the newer
  // (id == origin-id) one still wins...
  MessageRecord older = msg(bob, 2, "", "zzz");
  older.direction = Direction::kOutgoing;
  older.id = "7";
  MessageRecord newer = msg(bob, 3, "", "7");
  newer.direction = Direction::kOutgoing;
  newer.id = "7";
  CHECK(append(*m, a, older).archive_id == 2);
  CHECK(append(*m, a, newer).archive_id == 3);
  CHECK(**m->resolve_ref(a, bob, RefKind::kSentId, "7") == 3);
  // ...and a newer plain id wins over it in turn.
  MessageRecord newest = msg(bob, 4, "", "yyy");
  newest.direction = Direction::kOutgoing;
  newest.id = "7";
  CHECK(append(*m, a, newest).archive_id == 4);
  CHECK(**m->resolve_ref(a, bob, RefKind::kSentId, "7") == 4);
}

TEST_CASE("oversized key components are hashed, not rejected") {
  TempDir dir;
  auto m = open_store(options(dir.path()));
  AccountNo a = create_account(*m, "alice@example.org");
  std::string peer(600, 'p');
  peer += "@example.org";
  std::string origin(2000, 'o');
  CHECK(append(*m, a, msg(peer, 1, std::string(900, 's'), origin)).archive_id == 1);
  CHECK(append(*m, a, msg(peer, 1, "", origin)).duplicate);
  std::string other_origin = origin;
  other_origin.back() = 'x';  // same 128-byte prefix, different string
  CHECK_FALSE(append(*m, a, msg(peer, 1, "", other_origin)).duplicate);
  MamQuery q;
  q.with = peer;
  CHECK(m->query(a, q)->items.size() == 2);
  // A very long account name still gets its own account.
  std::string long_jid = std::string(400, 'x') + "@example.org";
  AccountNo b = create_account(*m, long_jid);
  CHECK(b != a);
  CHECK(create_account(*m, long_jid) == b);
  CHECK((*m->find_account(long_jid))->account == b);
}
