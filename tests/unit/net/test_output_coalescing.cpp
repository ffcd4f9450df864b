// Output coalescing (issue 12): everything a connection is sent during one
// loop turn leaves as one socket write; a later turn is another write; close()
// writes what was queued before it; bytes arrive complete and in order.
#include <doctest/doctest.h>
#include <uv.h>

#include <memory>
#include <string>
#include <vector>

#include "common/net/connection.h"

namespace {

const char* kHeader =
    "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' "
    "version='1.0'>";

struct Recorder : s2::Connection::Handler {
  bool connected = false;
  bool opened = false;
  bool closed = false;
  std::vector<std::string> bodies;
  void on_conn_connected() override { connected = true; }
  void on_conn_stream_open(const s2::StreamHeader&) override { opened = true; }
  void on_conn_stanza(s2::Stanza s) override { bodies.push_back(s.attr_or("id")); }
  void on_conn_stream_close() override {}
  void on_conn_xml_error(const s2::XmlError&) override {}
  void on_conn_closed(const std::string&) override { closed = true; }
};

// A loopback pair: `server` (accepted) and `client` (connected), plain TCP.
struct Pair {
  uv_loop_t loop{};
  uv_tcp_t listener{};
  Recorder server_h, client_h;
  s2::Connection* server = nullptr;
  s2::Connection* client = nullptr;
  s2::Connection::Options server_opts;

  explicit Pair(s2::Connection::Options so = {}) : server_opts(so) {
    uv_loop_init(&loop);
    uv_tcp_init(&loop, &listener);
    listener.data = this;
    sockaddr_in addr{};
    uv_ip4_addr("127.0.0.1", 0, &addr);
    REQUIRE(uv_tcp_bind(&listener, reinterpret_cast<sockaddr*>(&addr), 0) == 0);
    REQUIRE(uv_listen(reinterpret_cast<uv_stream_t*>(&listener), 8, [](uv_stream_t* l, int) {
              auto* p = static_cast<Pair*>(l->data);
              p->server = s2::Connection::accept(l, &p->server_h, p->server_opts);
            }) == 0);
    sockaddr_storage bound{};
    int len = sizeof bound;
    uv_tcp_getsockname(&listener, reinterpret_cast<sockaddr*>(&bound), &len);
    client = s2::Connection::connect(&loop, bound, &client_h, {});
    run_until([&] { return server != nullptr && client_h.connected; });
  }
  ~Pair() {
    // Close both ends and let them free themselves (a connection that reported
    // on_conn_closed is gone; the peer's close reaches the other side too).
    if (server && !server_h.closed) server->close();
    if (client && !client_h.closed) client->close();
    for (int i = 0; i < 2000 && !(server_h.closed || !server); ++i) uv_run(&loop, UV_RUN_ONCE);
    for (int i = 0; i < 2000 && !client_h.closed; ++i) uv_run(&loop, UV_RUN_ONCE);
    uv_close(reinterpret_cast<uv_handle_t*>(&listener), nullptr);
    uv_walk(
        &loop,
        [](uv_handle_t* h, void*) {
          if (!uv_is_closing(h)) uv_close(h, nullptr);
        },
        nullptr);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
  }
  template <class Pred>
  void run_until(Pred done) {
    for (int i = 0; i < 2000 && !done(); ++i) uv_run(&loop, UV_RUN_ONCE);
    REQUIRE(done());
  }
  // Runs `fn` inside one loop turn (a timer callback), as the daemon's code does.
  template <class Fn>
  void in_one_turn(Fn fn) {
    uv_timer_t t{};
    uv_timer_init(&loop, &t);
    auto* f = new Fn(std::move(fn));
    t.data = f;
    uv_timer_start(
        &t,
        [](uv_timer_t* h) {
          auto* f = static_cast<Fn*>(h->data);
          (*f)();
          delete f;
          uv_close(reinterpret_cast<uv_handle_t*>(h), nullptr);
        },
        0, 0);
    uv_run(&loop, UV_RUN_ONCE);
  }
};

std::string msg(int i) {
  return "<message id='m" + std::to_string(i) + "'><body>x</body></message>";
}

}  // namespace

TEST_CASE("output coalescing: one loop turn, one write") {
  Pair p;
  const uint64_t before = p.server->writes_issued();
  p.in_one_turn([&] {
    p.server->send(kHeader);
    for (int i = 0; i < 50; ++i) p.server->send(msg(i));
  });
  p.run_until([&] { return p.client_h.bodies.size() == 50; });
  CHECK(p.server->writes_issued() - before == 1);
  CHECK(p.client_h.opened);
  for (int i = 0; i < 50; ++i) CHECK(p.client_h.bodies[i] == "m" + std::to_string(i));

  // A second turn is a second write.
  p.in_one_turn([&] {
    for (int i = 50; i < 60; ++i) p.server->send(msg(i));
  });
  p.run_until([&] { return p.client_h.bodies.size() == 60; });
  CHECK(p.server->writes_issued() - before == 2);
  CHECK(p.client_h.bodies.back() == "m59");
}

TEST_CASE("output coalescing: close() writes what was queued before it") {
  Pair p;
  p.in_one_turn([&] {
    p.server->send(kHeader);
    for (int i = 0; i < 5; ++i) p.server->send(msg(i));
    p.server->close();
    p.server = nullptr;  // it frees itself once closed
  });
  p.run_until([&] { return p.client_h.bodies.size() == 5 || p.client_h.closed; });
  CHECK(p.client_h.bodies.size() == 5);
}

TEST_CASE("output coalescing: the write-buffer bound counts queued bytes") {
  s2::Connection::Options small;
  small.max_write_buffer = 1000;
  Pair p(small);
  p.in_one_turn([&] {
    p.server->send(kHeader);
    p.server->send(msg(1));  // within the bound
    p.server->send("<message><body>" + std::string(1200, 'x') + "</body></message>");  // beyond
  });
  p.run_until([&] { return p.server_h.closed; });
  p.server = nullptr;                // closed: it freed itself
  CHECK(p.client_h.bodies.empty());  // nothing of a failed turn is written
}

TEST_CASE("output coalescing: a before-flush hook's output joins the same write") {
  Pair p;
  const uint64_t before = p.server->writes_issued();
  int runs = 0;
  p.in_one_turn([&] {
    p.server->send(kHeader);
    for (int i = 0; i < 20; ++i) p.server->send(msg(i));
    // What an upstream session does after sending tracked stanzas: ask for an
    // ack once, just before they are written (replacing an earlier hook).
    p.server->before_next_flush([&] { FAIL("the replaced hook ran"); });
    p.server->before_next_flush([&] {
      ++runs;
      p.server->send(msg(99));  // the <r/>'s place
    });
    CHECK(p.server->before_flush_pending());
  });
  p.run_until([&] { return p.client_h.bodies.size() == 21; });
  CHECK(runs == 1);
  CHECK(p.server->writes_issued() - before == 1);
  CHECK(p.client_h.bodies.back() == "m99");
  CHECK_FALSE(p.server->before_flush_pending());

  // With nothing else queued, the hook still runs in the turn that set it.
  p.in_one_turn([&] { p.server->before_next_flush([&] { p.server->send(msg(100)); }); });
  p.run_until([&] { return p.client_h.bodies.size() == 22; });
  CHECK(p.server->writes_issued() - before == 2);
  CHECK(p.client_h.bodies.back() == "m100");

  // close() drops a hook unrun.
  p.in_one_turn([&] {
    p.server->send(msg(101));
    p.server->before_next_flush([&] { FAIL("a hook ran at close"); });
    p.server->close();
    p.server = nullptr;
  });
  p.run_until([&] { return p.client_h.bodies.size() == 23 || p.client_h.closed; });
  CHECK(p.client_h.bodies.back() == "m101");
}
