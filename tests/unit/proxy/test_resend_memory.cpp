// ResendMemory: which messages of a new session are copies of what an
// earlier session of the same device sent (XEP-0198 resends), answered from
// memory after one range read of the store per resource.
#include <doctest/doctest.h>
#include <unistd.h>

#include <filesystem>
#include <future>

#include "common/store/mirror.h"
#include "proxy/resend_memory.h"
#include "temp_mirror.h"

using namespace s2;
using store::ArchiveId;

namespace {
struct Fixture : s2::test::TempMirror {
  store::AccountNo a = 0;
  Fixture() { a = write({store::op::CreateAccount{"alice@example.org"}}).ops.at(0).account; }
  // A message the device `resource` sent with resend key `key`, at `ts`.
  ArchiveId sent(const std::string& resource, const std::string& key, int64_t ts,
                 const std::string& origin) {
    store::MessageRecord r;
    r.timestamp_ms = ts;
    r.direction = store::Direction::kOutgoing;
    r.peer_bare = "bob@example.org";
    r.flags = store::msgflag::kPersistent;
    r.origin_id = origin;
    r.stanza = "<message to='bob@example.org'><body>hi</body></message>";
    store::op::Append ap{a, std::move(r), std::nullopt};
    ap.resend_scope = resource;
    ap.resend_key = key;
    auto w = write({ap});
    REQUIRE(w.ok());
    return w.ops.at(0).archive_id;
  }
};
constexpr int64_t kWindow = 15 * 60 * 1000;
constexpr int64_t kNow = 1'700'000'000'000;
}  // namespace

TEST_CASE("resend memory: what earlier sessions committed, in one read per resource") {
  Fixture f;
  // An earlier session of 'phone' (before a crash): its key is in the store.
  f.sent("phone", "k-old", kNow - 1000, "o1");
  f.sent("phone", "k-stale", kNow - kWindow - 1, "o2");
  f.sent("laptop", "k-laptop", kNow - 1000, "o3");
  ResendMemory mem(*f.m);
  CHECK_FALSE(mem.seen("phone", "k-old", 7, kNow, kWindow));  // account not known yet
  mem.set_account_no(f.a);
  CHECK(mem.seen("phone", "k-old", 7, kNow, kWindow));
  CHECK(mem.loaded_resources() == 1);
  // Outside the window: the same words sent much later are a new message.
  CHECK_FALSE(mem.seen("phone", "k-stale", 7, kNow, kWindow));
  // Keys are per device.
  CHECK_FALSE(mem.seen("phone", "k-laptop", 7, kNow, kWindow));
  CHECK(mem.seen("laptop", "k-laptop", 7, kNow, kWindow));
  CHECK_FALSE(mem.seen("phone", "k-new", 7, kNow, kWindow));

  // Written after the resource was read: only this hub writes, so the
  // memory follows its commits without reading again.
  mem.committing("phone", "k-new", 7);
  CHECK_FALSE(mem.seen("phone", "k-new", 7, kNow, kWindow));  // the sender's own session
  CHECK(mem.seen("phone", "k-new", 8, kNow, kWindow));        // another session: in flight
  ArchiveId id = f.sent("phone", "k-new", kNow, "o4");
  mem.committed("phone", "k-new", id);
  CHECK(mem.seen("phone", "k-new", 8, kNow, kWindow));
  // A failed or duplicate commit claims no key.
  mem.committing("phone", "k-dup", 7);
  mem.committed("phone", "k-dup", std::nullopt);
  CHECK_FALSE(mem.seen("phone", "k-dup", 8, kNow, kWindow));

  // The client saw the acks: no copies will come.
  mem.forget("phone", {"k-old", "k-new"});
  CHECK_FALSE(mem.seen("phone", "k-old", 8, kNow, kWindow));
  CHECK_FALSE(mem.seen("phone", "k-new", 8, kNow, kWindow));
}

TEST_CASE("resend memory: a released resource is read again from the store") {
  Fixture f;
  ResendMemory mem(*f.m);
  mem.set_account_no(f.a);
  CHECK_FALSE(mem.seen("phone", "k1", 1, kNow, kWindow));
  CHECK(mem.loaded_resources() == 1);
  mem.release("phone");
  CHECK(mem.loaded_resources() == 0);
  // Committed while nothing of 'phone' was held: the next read finds it.
  mem.committing("phone", "k1", 1);
  ArchiveId id = f.sent("phone", "k1", kNow, "o1");
  mem.committed("phone", "k1", id);
  CHECK(mem.loaded_resources() == 0);
  CHECK(mem.seen("phone", "k1", 2, kNow, kWindow));
  // Cleared in the store and forgotten in memory alike.
  REQUIRE(f.write({store::op::ClearResendKeys{f.a, "phone", {"k1"}}}).ok());
  mem.forget("phone", {"k1"});
  CHECK_FALSE(mem.seen("phone", "k1", 2, kNow, kWindow));
  mem.release("phone");
  CHECK_FALSE(mem.seen("phone", "k1", 2, kNow, kWindow));
}
