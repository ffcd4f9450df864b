// offload(): work on libuv's thread pool, result on the loop thread, nothing
// delivered to a requester that died meanwhile, everything destroyed on the
// loop thread, move-only captures and results.
#include <doctest/doctest.h>
#include <uv.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/net/offload.h"

namespace {

struct Loop {
  uv_loop_t loop{};
  Loop() { REQUIRE(uv_loop_init(&loop) == 0); }
  ~Loop() { CHECK(uv_loop_close(&loop) == 0); }  // no request or handle left behind
  void run() { uv_run(&loop, UV_RUN_DEFAULT); }
};

// A result that records where and how often it is destroyed.
struct Tracked {
  static inline std::atomic<int> live{0};
  static inline std::atomic<int> destroyed_off_loop{0};
  static inline std::thread::id loop_thread;
  std::string value;
  bool owns = true;
  explicit Tracked(std::string v) : value(std::move(v)) { ++live; }
  Tracked(Tracked&& o) noexcept : value(std::move(o.value)) {
    o.owns = false;
    ++live;
  }
  Tracked(const Tracked&) = delete;
  ~Tracked() {
    --live;
    if (owns && std::this_thread::get_id() != loop_thread) ++destroyed_off_loop;
  }
};

}  // namespace

TEST_CASE("offload: the work runs off the loop thread, the result arrives on it") {
  Loop l;
  const auto loop_thread = std::this_thread::get_id();
  std::thread::id work_thread, done_thread;
  int got = 0;
  s2::offload(
      &l.loop,
      [&work_thread] {
        work_thread = std::this_thread::get_id();
        return 42;
      },
      [&](int v) {
        done_thread = std::this_thread::get_id();
        got = v;
      });
  CHECK(got == 0);  // never inline
  l.run();
  CHECK(got == 42);
  CHECK(work_thread != loop_thread);
  CHECK(done_thread == loop_thread);
}

TEST_CASE("offload: many requests, each delivered once") {
  Loop l;
  auto alive = std::make_shared<bool>(true);
  std::vector<int> seen(64, 0);
  for (int i = 0; i < 64; ++i)
    s2::offload(
        &l.loop, std::weak_ptr<bool>(alive), [i] { return i * i; },
        [&seen, i](int v) {
          CHECK(v == i * i);
          ++seen[static_cast<size_t>(i)];
        });
  l.run();
  for (int n : seen) CHECK(n == 1);
}

TEST_CASE("offload: a requester gone before the result is not called; the result is dropped") {
  Loop l;
  Tracked::loop_thread = std::this_thread::get_id();
  Tracked::destroyed_off_loop = 0;
  const int live_before = Tracked::live;
  bool called = false;
  {
    auto alive = std::make_shared<bool>(true);
    s2::offload(
        &l.loop, std::weak_ptr<bool>(alive), [] { return Tracked("secret"); },
        [&called](Tracked) { called = true; });
    alive.reset();  // the session died before the pool even ran the work
  }
  l.run();
  CHECK_FALSE(called);
  CHECK(Tracked::live == live_before);
  CHECK(Tracked::destroyed_off_loop == 0);
}

TEST_CASE("offload: the requester dies while the work is running") {
  Loop l;
  Tracked::loop_thread = std::this_thread::get_id();
  Tracked::destroyed_off_loop = 0;
  const int live_before = Tracked::live;
  auto alive = std::make_shared<bool>(true);
  std::atomic<bool> started{false}, release{false};
  bool called = false;
  s2::offload(
      &l.loop, std::weak_ptr<bool>(alive),
      [&] {
        started = true;
        while (!release) std::this_thread::yield();
        return Tracked("late");
      },
      [&called](Tracked) { called = true; });
  // On the loop: once the work has started, drop the requester, then let the work finish.
  uv_idle_t idle{};
  struct Ctx {
    std::shared_ptr<bool>* alive;
    std::atomic<bool>* started;
    std::atomic<bool>* release;
  } ctx{&alive, &started, &release};
  idle.data = &ctx;
  uv_idle_init(&l.loop, &idle);
  uv_idle_start(&idle, [](uv_idle_t* h) {
    auto* c = static_cast<Ctx*>(h->data);
    if (!*c->started) return;
    c->alive->reset();
    *c->release = true;
    uv_idle_stop(h);
    uv_close(reinterpret_cast<uv_handle_t*>(h), nullptr);
  });
  l.run();
  CHECK_FALSE(alive);
  CHECK_FALSE(called);
  CHECK(Tracked::live == live_before);
  CHECK(Tracked::destroyed_off_loop == 0);
}

TEST_CASE("offload: move-only captures and results; the owner stays alive") {
  Loop l;
  auto alive = std::make_shared<bool>(true);
  std::string got;
  auto input = std::make_unique<std::string>("pencil");
  s2::offload(
      &l.loop, std::weak_ptr<bool>(alive),
      [in = std::move(input)] { return std::make_unique<std::string>(*in + "!"); },
      [&got](std::unique_ptr<std::string> r) { got = *r; });
  l.run();
  CHECK(got == "pencil!");
}
