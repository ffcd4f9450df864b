// See upstream_probe.h.
#include "proxy/upstream_probe.h"

#include <netdb.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "common/net/connection.h"
#include "common/tls/tls.h"
#include "common/xml/stanza.h"
#include "common/xml/xml_stream.h"
#include "proxy/xmpp_ns.h"

namespace s2 {
namespace {

using Clock = std::chrono::steady_clock;

class Probe : public XmlStreamHandler {
 public:
  Probe(const Config& cfg, double timeout_s)
      : cfg_(cfg),
        deadline_(Clock::now() +
                  std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000))) {}
  ~Probe() override {
    if (fd_ >= 0) ::close(fd_);
  }

  int run() {
    std::string host;
    int port = 0;
    if (!split_host_port(cfg_.upstream, &host, &port)) return fail("--upstream: not HOST:PORT");
    if (!connect_to(host, port)) return 1;
    say("connected to " + cfg_.upstream);
    const bool direct = cfg_.upstream_tls == "direct";
    const bool plain = cfg_.upstream_tls == "plain";
    if (direct && !start_tls()) return 1;
    if (!open_stream()) return 1;
    if (!direct && !plain) {
      if (!features_.child("starttls", ns::kTls))
        return fail("the upstream does not offer STARTTLS (--upstream-tls starttls)");
      send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
      Stanza answer = next_element();
      if (!answer) return 1;
      if (!answer.is("proceed", ns::kTls)) return fail("the upstream refused STARTTLS");
      xml_.reset(false);
      if (!start_tls()) return 1;
      if (!open_stream()) return 1;
    }
    if (plain) say("TLS: none (--upstream-tls plain: a loopback upstream only)");
    std::vector<std::string> mechs;
    if (Stanza m = features_.child("mechanisms", ns::kSasl)) {
      for (const Stanza& c : m.children())
        if (c.is("mechanism", ns::kSasl)) mechs.push_back(c.text_content());
    }
    std::string list;
    for (const auto& m : mechs) list += (list.empty() ? "" : " ") + m;
    say("SASL mechanisms offered: " + (list.empty() ? std::string("none") : list));
    const auto has = [&](const char* m) {
      for (const auto& x : mechs)
        if (x == m) return true;
      return false;
    };
    std::string usable;
    if (has("SCRAM-SHA-256")) {
      usable = "SCRAM-SHA-256";
    } else if (has("SCRAM-SHA-1")) {
      usable = "SCRAM-SHA-1";
    } else if (has("PLAIN") && !plain) {
      usable = "PLAIN (over TLS)";
    }
    if (usable.empty())
      return fail(
          "no SASL mechanism s2proxy can log users in with (SCRAM-SHA-256, SCRAM-SHA-1, "
          "or PLAIN over TLS)");
    say("s2proxy will log users in with " + usable);
    send("</stream:stream>");
    std::cout << "upstream ok\n";
    return 0;
  }

  // XmlStreamHandler
  void on_stream_open(const StreamHeader& h) override {
    header_seen_ = true;
    stream_from_ = h.attr("from");
  }
  void on_stanza(Stanza s) override { pending_.push_back(std::move(s)); }
  void on_stream_close() override { closed_ = true; }
  void on_xml_error(const XmlError& e) override { xml_error_ = e.condition + ": " + e.text; }

 private:
  int fail(const std::string& why) {
    std::cerr << "check-config --probe: " << why << "\n";
    return 1;
  }
  void say(const std::string& line) { std::cout << "  " << line << "\n"; }

  int ms_left() const {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline_ - Clock::now()).count();
    return left > 0 ? static_cast<int>(left) : 0;
  }

  bool connect_to(const std::string& host, int port) {
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    const int rc = getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res);
    if (rc != 0) return fail("cannot resolve " + host + ": " + gai_strerror(rc)), false;
    std::string last = "no address";
    for (addrinfo* a = res; a; a = a->ai_next) {
      int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      if (fd < 0) continue;
      if (::connect(fd, a->ai_addr, a->ai_addrlen) != 0 && errno != EINPROGRESS) {
        last = std::strerror(errno);
        ::close(fd);
        continue;
      }
      pollfd p{fd, POLLOUT, 0};
      int err = 0;
      socklen_t len = sizeof err;
      if (::poll(&p, 1, ms_left()) == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 &&
          err == 0) {
        fd_ = fd;
        break;
      }
      last = err ? std::strerror(err) : "timed out";
      ::close(fd);
    }
    freeaddrinfo(res);
    if (fd_ < 0) return fail("cannot connect to " + cfg_.upstream + ": " + last), false;
    return true;
  }

  bool write_all(const char* data, size_t len) {
    while (len > 0) {
      const ssize_t n = ::send(fd_, data, len, MSG_NOSIGNAL);
      if (n > 0) {
        data += n;
        len -= static_cast<size_t>(n);
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        pollfd p{fd_, POLLOUT, 0};
        if (::poll(&p, 1, ms_left()) != 1) return false;
        continue;
      }
      return false;
    }
    return true;
  }

  void send(const std::string& s) {
    if (tls_) {
      tls_->write_plain(s);
    } else {
      write_all(s.data(), s.size());
    }
  }

  // Reads once (or times out); false on EOF, timeout or error.
  bool read_some() {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, ms_left()) != 1) return fail("timed out waiting for the upstream"), false;
    char buf[16384];
    const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n <= 0) return fail("the upstream closed the connection"), false;
    if (tls_) {
      tls_->feed_cipher(buf, static_cast<size_t>(n));
      if (tls_->failed()) return fail("TLS: " + tls_->error()), false;
    } else {
      xml_.feed(buf, static_cast<size_t>(n));
    }
    if (!xml_error_.empty()) return fail("the upstream's XML: " + xml_error_), false;
    return true;
  }

  Stanza next_element() {
    while (pending_.empty()) {
      if (closed_) return fail("the upstream ended the stream"), Stanza();
      if (!read_some()) return {};
    }
    Stanza s = std::move(pending_.front());
    pending_.erase(pending_.begin());
    if (s.is("error", "http://etherx.jabber.org/streams")) {
      std::string cond;
      for (const Stanza& c : s.children())
        if (c.name() != "text") cond = c.name();
      fail("the upstream sent a stream error: " + cond + " " +
           s.child("text", "urn:ietf:params:xml:ns:xmpp-streams").text_content());
      return {};
    }
    return s;
  }

  bool open_stream() {
    send("<?xml version='1.0'?><stream:stream to='" + xml_escape(cfg_.domain) +
         "' version='1.0' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>");
    Stanza f = next_element();
    if (!f) return false;
    if (!f.is("features", "http://etherx.jabber.org/streams"))
      return fail("expected <stream:features/>, got <" + f.name() + "/>"), false;
    if (!stream_from_.empty() && stream_from_ != cfg_.domain)
      say("warning: the upstream answers as '" + stream_from_ + "', not --domain '" + cfg_.domain +
          "'");
    features_ = f;
    return true;
  }

  bool start_tls() {
    std::string error;
    ctx_ = make_client_ctx(cfg_.upstream_ca, cfg_.upstream_insecure, &error);
    if (!ctx_) return fail("--upstream-ca: " + error), false;
    tls_ = std::make_unique<TlsSession>(ctx_.get(), TlsSession::Role::Client, cfg_.domain);
    // A member, not a local: the callback outlives this function (every later send).
    tls_->on_cipher = [this](const char* d, size_t n) {
      tls_write_ok_ = write_all(d, n) && tls_write_ok_;
    };
    tls_->on_plain = [this](const char* d, size_t n) { xml_.feed(d, n); };
    tls_->on_error = [](const std::string&) {};
    tls_->start();
    while (!tls_->handshake_done()) {
      if (!tls_write_ok_) return fail("TLS: cannot write to the upstream"), false;
      if (!read_some()) return false;
    }
    say("TLS: " + tls_->version() + " " + tls_->cipher());
    if (cfg_.upstream_insecure) {
      say("certificate: NOT verified (--upstream-insecure)");
    } else {
      say("certificate: valid for " + cfg_.domain + ", verified against " +
          (cfg_.upstream_ca.empty() ? std::string("the system store") : cfg_.upstream_ca));
    }
    return true;
  }

  const Config& cfg_;
  Clock::time_point deadline_;
  int fd_ = -1;
  SslCtxPtr ctx_;
  std::unique_ptr<TlsSession> tls_;
  XmlStream xml_{*this};
  std::vector<Stanza> pending_;
  Stanza features_;
  std::string stream_from_;
  std::string xml_error_;
  bool header_seen_ = false;
  bool tls_write_ok_ = true;
  bool closed_ = false;
};

}  // namespace

int probe_upstream(const Config& cfg, double timeout_s) {
  std::cout << "probing the upstream " << cfg.upstream << " (" << cfg.upstream_tls << ") for "
            << cfg.domain << "\n";
  Probe p(cfg, timeout_s);
  return p.run();
}

}  // namespace s2
