// PROXY protocol v1/v2 headers as a table: bytes in → status, client address, length.
#include <doctest/doctest.h>

#include <string>

#include "common/net/proxy_protocol.h"

using s2::proxyproto::parse;
using s2::proxyproto::Status;

namespace {
const std::string kSig("\x0D\x0A\x0D\x0A\x00\x0D\x0A\x51\x55\x49\x54\x0A", 12);

// A v2 header: version/command byte, family/transport byte, then the body.
std::string v2(unsigned char ver_cmd, unsigned char fam, const std::string& body) {
  std::string h = kSig;
  h += static_cast<char>(ver_cmd);
  h += static_cast<char>(fam);
  h += static_cast<char>((body.size() >> 8) & 0xff);
  h += static_cast<char>(body.size() & 0xff);
  return h + body;
}
std::string bytes(std::initializer_list<int> b) {
  std::string s;
  for (int c : b) s += static_cast<char>(c);
  return s;
}
const std::string kV4Body =
    bytes({203, 0, 113, 7, 10, 0, 0, 1, 0xC8, 0x32, 0x14, 0x66});  // :51250 → :5222
const std::string kV6Body =
    bytes({0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,  // 2001:db8::1
           0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2,  // 2001:db8::2
           0x00, 0x50, 0x14, 0x67});                                    // 80 → 5223
const std::string kTlvs = bytes({0x04, 0x00, 0x03, 'a', 'b', 'c',       // NOOP
                                 0x20, 0x00, 0x05, 0x01, 0, 0, 0, 0});  // SSL, client bit
}  // namespace

TEST_CASE("PROXY protocol: complete headers") {
  struct Row {
    const char* name;
    std::string in;
    int version;
    bool has_address;
    std::string source;
    std::string destination;
    size_t length;
  };
  const std::string v1_tcp4 = "PROXY TCP4 203.0.113.7 10.0.0.1 51234 5222\r\n";
  const std::string v1_tcp6 = "PROXY TCP6 2001:db8::1 2001:db8::2 80 5223\r\n";
  const std::string v1_max =
      "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
      "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
  const Row rows[] = {
      {"v1 TCP4", v1_tcp4, 1, true, "203.0.113.7:51234", "10.0.0.1:5222", v1_tcp4.size()},
      {"v1 TCP6", v1_tcp6, 1, true, "[2001:db8::1]:80", "[2001:db8::2]:5223", v1_tcp6.size()},
      {"v1 worst case (107 bytes)", v1_max, 1, true,
       "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535",
       "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535", 104},
      {"v1 UNKNOWN", "PROXY UNKNOWN\r\n", 1, false, "", "", 15},
      {"v1 UNKNOWN with junk", "PROXY UNKNOWN ffff:f::1 1.2.3.4 1 2\r\n", 1, false, "", "", 37},
      {"v1 port 0", "PROXY TCP4 1.2.3.4 5.6.7.8 0 1\r\n", 1, true, "1.2.3.4:0", "5.6.7.8:1", 32},
      {"v1 + stream bytes after", v1_tcp4 + "<?xml version='1.0'?>", 1, true, "203.0.113.7:51234",
       "10.0.0.1:5222", v1_tcp4.size()},
      {"v2 PROXY TCP4", v2(0x21, 0x11, kV4Body), 2, true, "203.0.113.7:51250", "10.0.0.1:5222", 28},
      {"v2 PROXY TCP6", v2(0x21, 0x21, kV6Body), 2, true, "[2001:db8::1]:80", "[2001:db8::2]:5223",
       52},
      {"v2 PROXY TCP4 + TLVs skipped", v2(0x21, 0x11, kV4Body + kTlvs), 2, true,
       "203.0.113.7:51250", "10.0.0.1:5222", 28 + kTlvs.size()},
      {"v2 PROXY TCP6 + TLVs skipped", v2(0x21, 0x21, kV6Body + kTlvs), 2, true, "[2001:db8::1]:80",
       "[2001:db8::2]:5223", 52 + kTlvs.size()},
      {"v2 LOCAL, no address", v2(0x20, 0x00, ""), 2, false, "", "", 16},
      {"v2 LOCAL ignores an address block", v2(0x20, 0x11, kV4Body), 2, false, "", "", 28},
      {"v2 PROXY UNSPEC", v2(0x21, 0x00, ""), 2, false, "", "", 16},
      {"v2 PROXY UNIX", v2(0x21, 0x31, std::string(216, 'x')), 2, false, "", "", 232},
      {"v2 + TLS ClientHello after", v2(0x21, 0x11, kV4Body) + bytes({0x16, 0x03, 0x01}), 2, true,
       "203.0.113.7:51250", "10.0.0.1:5222", 28},
  };
  for (const auto& r : rows) {
    CAPTURE(r.name);
    auto res = parse(r.in);
    REQUIRE(res.status == Status::Ok);
    CHECK(res.error.empty());
    CHECK(res.header.version == r.version);
    CHECK(res.header.has_address == r.has_address);
    CHECK(res.header.source == r.source);
    CHECK(res.header.destination == r.destination);
    CHECK(res.header.length == r.length);
    // Every strict prefix of a valid header only asks for more.
    for (size_t n = 0; n < r.length; ++n) {
      CAPTURE(n);
      CHECK(parse(std::string_view(r.in).substr(0, n)).status == Status::NeedMore);
    }
  }
}

TEST_CASE("PROXY protocol: refused headers") {
  struct Row {
    const char* name;
    std::string in;
  };
  const Row rows[] = {
      {"XML instead of a header", "<?xml version='1.0'?><stream:stream>"},
      {"TLS ClientHello instead", bytes({0x16, 0x03, 0x01, 0x02, 0x00})},
      {"lower-case proxy", "proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n"},
      {"P but not PROXY",
       "PRO"
       "XX"},
      {"v1 unknown protocol", "PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n"},
      {"v1 TCP4 with IPv6", "PROXY TCP4 ::1 ::1 1 2\r\n"},
      {"v1 TCP6 with IPv4", "PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n"},
      {"v1 bad IPv4", "PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n"},
      {"v1 IPv4 leading zero", "PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n"},
      {"v1 port too big", "PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n"},
      {"v1 port leading zero", "PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n"},
      {"v1 port not a number", "PROXY TCP4 1.2.3.4 5.6.7.8 x 2\r\n"},
      {"v1 missing field", "PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n"},
      {"v1 extra field", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n"},
      {"v1 double space", "PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n"},
      {"v1 trailing space", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n"},
      {"v1 LF only", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n"},
      {"v1 CR without LF", "PROXY TCP4 1.2.3.4\r5.6.7.8 1 2\r\n"},
      {"v1 NUL inside", std::string("PROXY TCP4 1.2.3.4\0 5.6.7.8 1 2\r\n", 33)},
      {"v1 empty after PROXY", "PROXY \r\n"},
      {"v1 oversized, no CRLF", "PROXY UNKNOWN " + std::string(200, 'a')},
      {"v1 oversized with CRLF", "PROXY UNKNOWN " + std::string(100, 'a') + "\r\n"},
      {"v2 bad signature", kSig.substr(0, 11) + "\x0B" + std::string(20, 0)},
      {"v2 version 1", v2(0x11, 0x11, kV4Body)},
      {"v2 version 3 (seen early)", kSig + "\x31"},
      {"v2 unknown command", v2(0x22, 0x11, kV4Body)},
      {"v2 UDP over IPv4", v2(0x21, 0x12, kV4Body)},
      {"v2 UDP over IPv6", v2(0x21, 0x22, kV6Body)},
      {"v2 unknown family", v2(0x21, 0x41, kV4Body)},
      {"v2 unknown transport", v2(0x21, 0x13, kV4Body)},
      {"v2 IPv4 block too short", v2(0x21, 0x11, kV4Body.substr(0, 11))},
      {"v2 IPv6 block too short", v2(0x21, 0x21, kV4Body)},
      {"v2 oversized (len 65535)", v2(0x21, 0x11, kV4Body).substr(0, 14) + "\xff\xff"},
      {"v2 just over the limit", v2(0x21, 0x11, kV4Body + std::string(4096 - 28 + 1, 0))},
  };
  for (const auto& r : rows) {
    CAPTURE(r.name);
    auto res = parse(r.in);
    CHECK(res.status == Status::Error);
    CHECK(!res.error.empty());
  }
  // At the limit is fine.
  CHECK(parse(v2(0x21, 0x11, kV4Body + std::string(4096 - 28, 0))).status == Status::Ok);
  // A smaller limit is honoured.
  CHECK(parse(v2(0x21, 0x11, kV4Body + kTlvs), 30).status == Status::Error);
}

TEST_CASE("PROXY protocol: trusted networks") {
  std::string why;
  auto nets = s2::proxyproto::parse_networks("10.0.0.0/8, 192.0.2.1,2001:db8::/32", &why);
  REQUIRE(nets);
  CHECK(nets->size() == 3);
  const std::pair<const char*, bool> rows[] = {
      {"10.1.2.3:5222", true},        {"11.0.0.1:1", false},
      {"192.0.2.1:1", true},          {"192.0.2.2:1", false},
      {"[2001:db8:ffff::1]:1", true}, {"[2001:db9::1]:1", false},
      {"[::ffff:10.9.9.9]:1", true},  // IPv4 client on a dual-stack listener
      {"[::ffff:11.9.9.9]:1", false}, {"garbage", false},
  };
  for (const auto& row : rows) {  // not a structured binding: clang 15 cannot capture one
    const char* peer = row.first;
    CAPTURE(peer);
    CHECK(s2::proxyproto::in_networks(*nets, peer) == row.second);
  }
  CHECK(s2::proxyproto::parse_networks("", &why)->empty());
  CHECK(s2::proxyproto::in_networks(*s2::proxyproto::parse_networks("0.0.0.0/0", &why),
                                    "203.0.113.9:4"));
  for (const char* bad : {"10.0.0.0/33", "2001:db8::/129", "10.0.0.0/", "10.0.0.0/x", "host",
                          "10.0.0.0/8,,", "1.2.3.4/-1"}) {
    CAPTURE(bad);
    CHECK(!s2::proxyproto::parse_networks(bad, &why));
    CHECK(!why.empty());
  }
}
