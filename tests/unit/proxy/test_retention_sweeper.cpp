// RetentionSweeper: --archive-max-messages applied per account, and on a
// node of a cluster only to the accounts the node owns.
#include <doctest/doctest.h>
#include <unistd.h>
#include <uv.h>

#include <chrono>
#include <filesystem>
#include <future>
#include <thread>

#include "common/store/mirror.h"
#include "proxy/retention_sweeper.h"
#include "temp_mirror.h"

using namespace s2;

namespace {
struct Store : s2::test::TempMirror {
  store::AccountNo account(const std::string& jid, int messages) {
    auto a = write({store::op::CreateAccount{jid}}).ops.at(0).account;
    for (int i = 0; i < messages; ++i) {
      store::MessageRecord r;
      r.timestamp_ms = 1000 + i;
      r.direction = store::Direction::kIncoming;
      r.peer_bare = "bob@example.org";
      r.flags = store::msgflag::kPersistent;
      r.upstream_stanza_id = jid + std::to_string(i);
      r.stanza = "<message/>";
      REQUIRE(write({store::op::Append{a, std::move(r), std::nullopt}}).ok());
    }
    return a;
  }
  uint64_t count(store::AccountNo a) {
    store::MamQuery q;
    q.max = 100;
    auto page = m->query(a, q);
    REQUIRE(page.ok());
    return page->items.size();
  }
};

void sweep_and_wait(RetentionSweeper& s) {
  s.sweep_now();
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (s.running() && std::chrono::steady_clock::now() < end)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  REQUIRE_FALSE(s.running());
}
}  // namespace

TEST_CASE("retention keeps the last N of every account, or only of the accounts this node owns") {
  Store st;
  const auto mine = st.account("alice@example.org", 10);
  const auto theirs = st.account("carol@example.org", 10);
  uv_loop_t loop;
  uv_loop_init(&loop);
  {
    RetentionSweeper s(&loop, *st.m, 0, 3, 60);
    REQUIRE(s.enabled());
    // A node of a cluster: carol's account is another node's (its writes
    // for it would be fenced); the owner prunes it.
    s.only_accounts([&](store::AccountNo a) { return a == mine; });
    sweep_and_wait(s);
    CHECK(st.count(mine) == 3);
    CHECK(st.count(theirs) == 10);
    // One node (no filter): every account.
    s.only_accounts(nullptr);
    sweep_and_wait(s);
    CHECK(st.count(mine) == 3);
    CHECK(st.count(theirs) == 3);
  }
  uv_run(&loop, UV_RUN_NOWAIT);
  CHECK(uv_loop_close(&loop) == 0);
}
