// Accounts, credentials, FAST tokens, devices, sync cursor/gaps, outbox, flags
// and forget.
#include <doctest/doctest.h>
#include <lmdb.h>

#include <map>

#include "common/store/schema.h"
#include "store_test_util.h"

using namespace s2::store;
using namespace s2::store::test;

namespace {

TokenHash token(uint8_t n) {
  TokenHash h{};
  h.fill(n);
  return h;
}

FastToken fast(AccountNo a, int64_t expiry) {
  return FastToken{a, "ua-" + std::to_string(a), "HT-SHA-256-NONE", expiry, 1, 0};
}

std::map<std::string, uint64_t> counts(const Store& m) {
  auto c = entry_counts(m);
  return {c.begin(), c.end()};
}

// Puts at least one record of `a` into every database.
void populate(Store& s, AccountNo a, uint8_t token_byte) {
  MessageRecord out = msg("bob@example.org", 1000, "S-" + std::to_string(a), "O1", "F1");
  out.direction = Direction::kOutgoing;
  out.id = "m1";
  WriteBatch b{op::Append{a, out, OutboxItem{"phone", "<message/>", 1000}},
               op::Append{a, msg("carol@example.org", 2000, "", "", "F2"), std::nullopt},
               op::EnqueueOutbox{a, OutboxItem{"phone", "<iq/>", 1001}},
               op::PutCredentials{a, "sealed"},
               op::PutFastToken{token(token_byte), fast(a, 10'000)},
               op::UpdateDevice{a, "phone", 2, "sm", "push", 1, 3000},
               op::SetSyncCursor{a, "S-" + std::to_string(a)},
               op::AddGap{a, Gap{0, 1, 2, "expired"}}};
  REQUIRE(write_sync(s, std::move(b)).ok());
}

}  // namespace

TEST_CASE("accounts: get-or-create is idempotent, numbers are never reused") {
  TempDir dir;
  auto m = open_store(options(dir.path()));
  AccountNo a = create_account(*m, "alice@example.org");
  AccountNo b = create_account(*m, "bob@example.org");
  CHECK(a == 1);
  CHECK(b == 2);
  CHECK(create_account(*m, "alice@example.org") == a);
  auto info = *m->find_account("alice@example.org");
  REQUIRE(info.has_value());
  CHECK(info->account == a);
  CHECK(info->bare_jid == "alice@example.org");
  CHECK(info->state == AccountState::kActive);
  CHECK(info->created_ms > 0);
  CHECK_FALSE(m->find_account("nobody@example.org")->has_value());
  CHECK(m->list_accounts()->size() == 2);

  WriteResult r = write_sync(*m, {op::ForgetAccount{"alice@example.org"}});
  REQUIRE(r.ok());
  CHECK(r.ops[0].account == a);
  CHECK(create_account(*m, "alice@example.org") == 3);
  CHECK(write_sync(*m, {op::ForgetAccount{"nobody@example.org"}}).ops[0].count == 0);
  CHECK(write_sync(*m, {op::CreateAccount{""}}).error->code == Errc::kInvalidArgument);
}

TEST_CASE("writes to an unknown account fail and leave nothing") {
  TempDir dir;
  auto m = open_store(options(dir.path()));
  AccountNo a = create_account(*m, "alice@example.org");
  auto before = counts(*m);
  WriteResult r = write_sync(*m, {op::Append{a, msg("bob@example.org", 1), std::nullopt},
                                  op::Append{99, msg("bob@example.org", 1), std::nullopt}});
  REQUIRE_FALSE(r.ok());
  CHECK(r.error->code == Errc::kNotFound);
  CHECK(r.ops.empty());
  CHECK(counts(*m) == before);  // the first append of the batch was rolled back
  CHECK(write_sync(*m, {op::UpdateDevice{99, "d"}}).error->code == Errc::kNotFound);
  CHECK(write_sync(*m, {op::SetSyncCursor{99, "x"}}).error->code == Errc::kNotFound);
  CHECK(write_sync(*m, {op::PutCredentials{99, "x"}}).error->code == Errc::kNotFound);
  CHECK(write_sync(*m, {op::SetMessageFlags{a, 5, 1, 0}}).error->code == Errc::kNotFound);
}

TEST_CASE("credentials blob") {
  TempDir dir;
  auto m = open_store(options(dir.path()));
  AccountNo a = create_account(*m, "alice@example.org");
  CHECK_FALSE(m->get_credentials(a)->has_value());
  REQUIRE(write_sync(*m, {op::PutCredentials{a, std::string("\0sealed\xff", 8)}}).ok());
  CHECK(**m->get_credentials(a) == std::string("\0sealed\xff", 8));
  REQUIRE(write_sync(*m, {op::PutCredentials{a, "v2"}}).ok());
  CHECK(**m->get_credentials(a) == "v2");
  CHECK(write_sync(*m, {op::DeleteCredentials{a}}).ops[0].count == 1);
  CHECK_FALSE(m->get_credentials(a)->has_value());
}

TEST_CASE("fast tokens: put, get, delete, delete all of an account, expire") {
  TempDir dir;
  auto m = open_store(options(dir.path()));
  AccountNo a = create_account(*m, "alice@example.org");
  AccountNo b = create_account(*m, "bob@example.org");
  REQUIRE(write_sync(*m, {op::PutFastToken{token(1), fast(a, 1000)},
                          op::PutFastToken{token(2), fast(a, 5000)},
                          op::PutFastToken{token(3), fast(b, 1000)},
                          op::PutFastToken{token(4), fast(b, 9000)}})
              .ok());
  auto t = *m->get_fast_token(token(2));
  REQUIRE(t.has_value());
  CHECK(t->account == a);
  CHECK(t->mechanism == "HT-SHA-256-NONE");
  CHECK(t->user_agent_id == "ua-1");
  CHECK(t->expiry_ms == 5000);
  CHECK(t->expired(5000));
  CHECK_FALSE(t->expired(4999));

  WriteResult r = write_sync(*m, {op::ExpireFastTokens{1000}});
  CHECK(r.ops[0].count == 2);  // expiry <= now: tokens 1 and 3
  CHECK_FALSE(m->get_fast_token(token(1))->has_value());
  CHECK_FALSE(m->get_fast_token(token(3))->has_value());
  CHECK(m->get_fast_token(token(2))->has_value());

  CHECK(write_sync(*m, {op::DeleteFastTokens{a}}).ops[0].count == 1);
  CHECK_FALSE(m->get_fast_token(token(2))->has_value());
  CHECK(m->get_fast_token(token(4))->has_value());
  CHECK(write_sync(*m, {op::DeleteFastToken{token(4)}}).ops[0].count == 1);
  CHECK(write_sync(*m, {op::DeleteFastToken{token(4)}}).ops[0].count == 0);
  CHECK(write_sync(*m, {op::PutFastToken{token(5), fast(99, 1)}}).error->code == Errc::kNotFound);
}

TEST_CASE("devices: partial updates keep the other fields") {
  TempDir dir;
  auto m = open_store(options(dir.path()));
  AccountNo a = create_account(*m, "alice@example.org");
  REQUIRE(write_sync(*m, {op::UpdateDevice{a, "phone", 10, "sm1", "push1", 1, 100}}).ok());
  op::UpdateDevice u{a, "phone"};
  u.last_delivered = 12;
  REQUIRE(write_sync(*m, {u, op::UpdateDevice{a, "laptop", std::nullopt, std::nullopt, std::nullopt,
                                              std::nullopt, 200}})
              .ok());
  auto d = *m->get_device(a, "phone");
  REQUIRE(d.has_value());
  CHECK(d->last_delivered == 12);
  CHECK(d->sm_state == "sm1");
  CHECK(d->push == "push1");
  CHECK(d->csi_state == 1);
  CHECK(d->last_seen_ms == 100);
  auto all = *m->list_devices(a);
  REQUIRE(all.size() == 2);
  CHECK(all[0].device_id != all[1].device_id);
  for (auto& dev : all) CHECK((dev.device_id == "laptop" || dev.device_id == "phone"));
  CHECK(write_sync(*m, {op::DeleteDevice{a, "phone"}}).ops[0].count == 1);
  CHECK(m->list_devices(a)->size() == 1);
}

TEST_CASE("sync cursor commits with the stanzas it covers; gaps merge") {
  TempDir dir;
  auto m = open_store(options(dir.path()));
  AccountNo a = create_account(*m, "alice@example.org");
  CHECK_FALSE(m->get_sync_cursor(a)->has_value());
  REQUIRE(write_sync(*m, {op::Append{a, msg("bob@example.org", 1, "U1"), std::nullopt},
                          op::Append{a, msg("bob@example.org", 2, "U2"), std::nullopt},
                          op::SetSyncCursor{a, "U2"}})
              .ok());
  CHECK(**m->get_sync_cursor(a) == "U2");
  // A batch that fails takes its cursor with it.
  WriteResult bad = write_sync(
      *m, {op::Append{a, msg("bob@example.org", 3, "U3"), std::nullopt}, op::SetSyncCursor{a, "U3"},
           op::DeleteDevice{99, "x"}, op::SetMessageFlags{a, 77, 1, 0}});
  CHECK_FALSE(bad.ok());
  CHECK(**m->get_sync_cursor(a) == "U2");
  CHECK_FALSE(m->find_upstream_id(a, "U3")->has_value());

  REQUIRE(write_sync(*m, {op::AddGap{a, Gap{0, 100, 200, "expired"}}}).ok());
  REQUIRE(write_sync(*m, {op::AddGap{a, Gap{0, 50, 150, ""}}}).ok());
  append(*m, a, msg("bob@example.org", 300));
  REQUIRE(write_sync(*m, {op::AddGap{a, Gap{0, 400, 500, "again"}}}).ok());
  auto gaps = *m->list_gaps(a);
  REQUIRE(gaps.size() == 2);
  CHECK(gaps[0].after_id == 2);
  CHECK(gaps[0].from_ms == 50);
  CHECK(gaps[0].to_ms == 200);
  CHECK(gaps[0].reason == "expired");
  CHECK(gaps[1].after_id == 3);
}

TEST_CASE("message flags update returns the old flags") {
  TempDir dir;
  auto m = open_store(options(dir.path()));
  AccountNo a = create_account(*m, "alice@example.org");
  MessageRecord r = msg("bob@example.org", 1);
  r.flags = msgflag::kPersistent | msgflag::kReceiptRequested;
  ArchiveId id = append(*m, a, r).archive_id;
  WriteResult w = write_sync(*m, {op::SetMessageFlags{a, id, msgflag::kReceiptSent, 0},
                                  op::SetMessageFlags{a, id, msgflag::kReceiptSent, 0}});
  REQUIRE(w.ok());
  CHECK((w.ops[0].old_flags & msgflag::kReceiptSent) == 0);  // first device wins...
  CHECK((w.ops[1].old_flags & msgflag::kReceiptSent) != 0);  // ...the second sees it
  REQUIRE(write_sync(*m, {op::SetMessageFlags{a, id, 0, msgflag::kReceiptRequested}}).ok());
  auto stored = *m->get_message(a, id);
  CHECK(stored->record.flags == (msgflag::kPersistent | msgflag::kReceiptSent));
  CHECK(stored->record.stanza == r.stanza);
}

TEST_CASE("outbox: in order, removable, survives reopen") {
  TempDir dir;
  AccountNo a = 0;
  {
    auto m = open_store(options(dir.path()));
    a = create_account(*m, "alice@example.org");
    WriteResult r = write_sync(
        *m, {op::Append{a, msg("bob@example.org", 1, "", "O1"), OutboxItem{"phone", "<m1/>", 1}},
             op::EnqueueOutbox{a, OutboxItem{"laptop", "<iq/>", 2}},
             op::Append{a, msg("bob@example.org", 3, "", "O3"), OutboxItem{"phone", "<m3/>", 3}}});
    REQUIRE(r.ok());
    CHECK(r.ops[0].outbox_seq == 1);
    CHECK(r.ops[1].outbox_seq == 2);
    CHECK(r.ops[2].outbox_seq == 3);
    CHECK(write_sync(*m, {op::RemoveOutbox{a, 2}}).ops[0].count == 1);
  }
  auto m = open_store(options(dir.path()));
  auto pending = *m->list_outbox(a, 0, 100);
  REQUIRE(pending.size() == 2);
  CHECK(pending[0].seq == 1);
  CHECK(pending[0].archive_id == 1);
  CHECK(pending[0].item.route == "phone");
  CHECK(pending[0].item.stanza == "<m1/>");
  CHECK(pending[1].seq == 3);
  CHECK(pending[1].archive_id == 2);
  CHECK(m->list_outbox(a, 1, 100)->size() == 1);
  CHECK(m->list_outbox(a, 0, 1)->size() == 1);
  // Sequence numbers are never reused, even after the queue drained.
  REQUIRE(write_sync(*m, {op::RemoveOutbox{a, 1}, op::RemoveOutbox{a, 3}}).ok());
  CHECK(write_sync(*m, {op::EnqueueOutbox{a, OutboxItem{"p", "<x/>", 4}}}).ops[0].outbox_seq == 4);
}

TEST_CASE("resend keys: indexed with a new message, never with a duplicate, cleared by scope") {
  TempDir dir;
  auto m = open_store(options(dir.path()));
  AccountNo a = create_account(*m, "alice@example.org");
  op::Append first{a, msg("bob@example.org", 1, "", "O1")};
  first.resend_scope = "phone";
  first.resend_key = "k1";
  // The same message again (its origin-id matches): a duplicate claims no key.
  op::Append again{a, msg("bob@example.org", 2, "", "O1")};
  again.resend_scope = "phone";
  again.resend_key = "k2";
  WriteResult r = write_sync(*m, {first, again});
  REQUIRE(r.ok());
  CHECK_FALSE(r.ops[0].duplicate);
  CHECK(r.ops[1].duplicate);
  CHECK(*m->resolve_ref(a, "phone", RefKind::kResendKey, "k1") == r.ops[0].archive_id);
  CHECK_FALSE(m->resolve_ref(a, "phone", RefKind::kResendKey, "k2")->has_value());
  // Scoped by device: another resource's key space is separate.
  CHECK_FALSE(m->resolve_ref(a, "laptop", RefKind::kResendKey, "k1")->has_value());
  // The key is not an origin-id or an id of the message.
  CHECK_FALSE(m->resolve_ref(a, "bob@example.org", RefKind::kSentId, "k1")->has_value());
  // The scope's keys in one read, as the daemon asks them for a new session;
  // a key longer than an inline component matches as the index stores it.
  const std::string long_key(300, 'L');
  op::Append third{a, msg("bob@example.org", 3, "", "O3")};
  third.resend_scope = "phone";
  third.resend_key = long_key;
  op::Append other{a, msg("bob@example.org", 4, "", "O4")};
  other.resend_scope = "phone2";  // a scope that shares "phone" as a prefix
  other.resend_key = "k9";
  WriteResult r2 = write_sync(*m, {third, other});
  REQUIRE(r2.ok());
  auto keys = m->list_resend_keys(a, "phone");
  REQUIRE(keys.ok());
  CHECK(keys->size() == 2);
  CHECK(keys->find("k1") == r.ops[0].archive_id);
  CHECK(keys->find(long_key) == r2.ops[0].archive_id);
  CHECK_FALSE(keys->find(std::string(299, 'L')).has_value());
  CHECK_FALSE(keys->find("k9").has_value());
  CHECK(m->list_resend_keys(a, "phone2")->find("k9") == r2.ops[1].archive_id);
  CHECK(m->list_resend_keys(a, "laptop")->size() == 0);
  AccountNo b = create_account(*m, "bob@example.org");
  CHECK(m->list_resend_keys(b, "phone")->size() == 0);
  WriteResult c = write_sync(*m, {op::ClearResendKeys{a, "phone", {"k1", "absent"}}});
  REQUIRE(c.ok());
  CHECK(c.ops[0].count == 1);
  CHECK_FALSE(m->resolve_ref(a, "phone", RefKind::kResendKey, "k1")->has_value());
  keys = m->list_resend_keys(a, "phone");
  CHECK(keys->size() == 1);
  CHECK_FALSE(keys->find("k1").has_value());
  // The set itself: insert and erase by the caller's key.
  keys->insert("k7", 70);
  CHECK(keys->find("k7") == ArchiveId{70});
  keys->erase(long_key);
  CHECK_FALSE(keys->find(long_key).has_value());
  CHECK(keys->size() == 1);
}

TEST_CASE("forget removes every record of the account and nothing else") {
  TempDir dir;
  auto m = open_store(options(dir.path()));
  AccountNo keep = create_account(*m, "keep@example.org");
  populate(*m, keep, 1);
  auto baseline = counts(*m);

  AccountNo gone = create_account(*m, "gone@example.org");
  populate(*m, gone, 2);
  for (int i = 0; i < 50; ++i) append(*m, gone, msg("peer" + std::to_string(i) + "@x", i));
  auto full = counts(*m);
  for (auto& entry : full) {
    const std::string& db = entry.first;
    const auto n = entry.second;
    CAPTURE(db);
    if (db != "meta") CHECK(n > baseline[db]);  // the test really touches every database
  }

  WriteResult r = write_sync(*m, {op::ForgetAccount{"gone@example.org"}});
  REQUIRE(r.ok());
  CHECK(r.ops[0].account == gone);
  CHECK(r.ops[0].count > 50);
  CHECK(counts(*m) == baseline);
  CHECK_FALSE(m->find_account("gone@example.org")->has_value());
  CHECK(m->query(gone, {})->items.empty());
  // Late writes queued for the forgotten account fail instead of resurrecting it.
  CHECK(write_sync(*m, {op::Append{gone, msg("bob@example.org", 1), std::nullopt}}).error->code ==
        Errc::kNotFound);
  // The other account is intact.
  CHECK(m->query(keep, {})->items.size() == 2);
  CHECK(**m->get_credentials(keep) == "sealed");
}

TEST_CASE("account settings: set/clear bits, kept across reopen, unknown account refused") {
  TempDir dir;
  AccountNo a = 0;
  {
    auto m = open_store(options(dir.path()));
    a = create_account(*m, "alice@example.org");
    CHECK(m->find_account("alice@example.org")->value().settings == 0);
    WriteResult w = write_sync(*m, {op::SetAccountSettings{a, acctset::kPushBodyOn, 0}});
    REQUIRE(w.ok());
    CHECK(w.ops[0].old_flags == 0);
    w = write_sync(*m, {op::SetAccountSettings{a, acctset::kPushBodyOff, acctset::kPushBodyOn}});
    REQUIRE(w.ok());
    CHECK(w.ops[0].old_flags == acctset::kPushBodyOn);
    CHECK(write_sync(*m, {op::SetAccountSettings{99, 1, 0}}).error->code == Errc::kNotFound);
    // Appends rewrite the account record: the settings survive them.
    REQUIRE(write_sync(
                *m, {op::Append{a, msg("bob@example.org", 1000, "S1", "O1", "F1"), std::nullopt}})
                .ok());
  }
  auto m = open_store(options(dir.path()));
  auto info = *m->find_account("alice@example.org");
  REQUIRE(info.has_value());
  CHECK(info->settings == acctset::kPushBodyOff);
  auto list = *m->list_accounts();
  REQUIRE(list.size() == 1);
  CHECK(list[0].settings == acctset::kPushBodyOff);
}

TEST_CASE("account record: a record written before settings existed decodes with none" *
          doctest::test_suite("lmdb-only")) {
  schema::AccountInfoValue v;
  v.bare_jid = "alice@example.org";
  v.created_ms = 1234;
  v.next_archive_id = 77;
  v.settings = acctset::kPushBodyOn;
  const std::string now = schema::encode_account_info(v);
  CHECK(schema::decode_account_info(now).settings == acctset::kPushBodyOn);
  // The earlier layout ended with the JID: the same bytes without the settings word.
  const std::string before = now.substr(0, now.size() - 4);
  auto old = schema::decode_account_info(before);
  CHECK(old.settings == 0);
  CHECK(old.bare_jid == "alice@example.org");
  CHECK(old.created_ms == 1234);
  CHECK(old.next_archive_id == 77);
}

TEST_CASE("a mirror written by a newer schema is refused with a clear message" *
          doctest::test_suite("lmdb-only")) {
  s2::store::test::TempDir dir;
  { auto m = s2::store::test::open_mirror(s2::store::test::options(dir.path())); }
  {
    // What a newer s2proxy would leave: schema 2 in meta.
    MDB_env* env = nullptr;
    REQUIRE(mdb_env_create(&env) == 0);
    mdb_env_set_maxdbs(env, 16);
    REQUIRE(mdb_env_open(env, dir.path().c_str(), 0, 0600) == 0);
    MDB_txn* txn = nullptr;
    REQUIRE(mdb_txn_begin(env, nullptr, 0, &txn) == 0);
    MDB_dbi meta;
    REQUIRE(mdb_dbi_open(txn, "meta", 0, &meta) == 0);
    const unsigned char two[4] = {0, 0, 0, 2};
    MDB_val k{6, const_cast<char*>("schema")}, v{4, const_cast<unsigned char*>(two)};
    REQUIRE(mdb_put(txn, meta, &k, &v, 0) == 0);
    REQUIRE(mdb_txn_commit(txn) == 0);
    mdb_env_close(env);
  }
  auto m = s2::store::Mirror::open(s2::store::test::options(dir.path()));
  REQUIRE_FALSE(m.ok());
  CHECK(m.error().text.find("newer s2proxy (schema 2)") != std::string::npos);
  CHECK(m.error().text.find("reads schema 1") != std::string::npos);
}

TEST_CASE("a PostgreSQL database written by a newer schema is refused with a clear message" *
          doctest::test_suite("postgres-only")) {
  s2::store::test::TempDir dir;
  const auto o = s2::store::test::options(dir.path());
  { auto m = s2::store::test::open_store(o); }  // creates the tables, schema 1
  {
    // What a newer s2proxy would leave: schema 2 in s2_meta.
    auto c = s2::store::pg::Conn::connect(s2::store::test::postgres_conninfo());
    c->run("UPDATE " + s2::store::test::schema_for(o.dir) +
           ".s2_meta SET value = 2 WHERE key = 'schema'");
  }
  CHECK_THROWS_WITH_AS(s2::store::test::open_store(o),
                       doctest::Contains("newer s2proxy (schema 2)"), std::runtime_error);
}
