// See proxy_protocol.h.
#include "common/net/proxy_protocol.h"

#include <arpa/inet.h>

#include <array>
#include <cstring>

namespace s2::proxyproto {
namespace {

constexpr std::string_view kV1Prefix = "PROXY ";
constexpr std::array<uint8_t, 12> kV2Sig = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                            0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
constexpr size_t kV2HeaderBytes = 16;

Result error(std::string why) {
  Result r;
  r.status = Status::Error;
  r.error = std::move(why);
  return r;
}

std::string format(bool ipv6, const void* addr, uint16_t port) {
  char buf[INET6_ADDRSTRLEN] = {0};
  inet_ntop(ipv6 ? AF_INET6 : AF_INET, addr, buf, sizeof buf);
  return ipv6 ? "[" + std::string(buf) + "]:" + std::to_string(port)
              : std::string(buf) + ":" + std::to_string(port);
}

// A v1 port: 1 to 5 digits, no leading zero (except "0" itself), ≤ 65535.
bool parse_port(std::string_view s, uint16_t* out) {
  if (s.empty() || s.size() > 5 || (s.size() > 1 && s[0] == '0')) return false;
  uint32_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<uint32_t>(c - '0');
  }
  if (v > 65535) return false;
  *out = static_cast<uint16_t>(v);
  return true;
}

// Splits on single spaces; false when there are more than `max` fields or an
// empty one (two spaces in a row, a trailing space).
template <size_t N>
bool split_fields(std::string_view s, std::array<std::string_view, N>* out, size_t* count) {
  *count = 0;
  size_t start = 0;
  while (true) {
    const size_t sp = s.find(' ', start);
    const std::string_view f = s.substr(start, sp == std::string_view::npos ? sp : sp - start);
    if (f.empty() || *count == N) return false;
    (*out)[(*count)++] = f;
    if (sp == std::string_view::npos) return true;
    start = sp + 1;
  }
}

Result parse_v1(std::string_view data) {
  // The prefix so far must match "PROXY " (refuse garbage at once).
  const size_t n = std::min(data.size(), kV1Prefix.size());
  if (data.substr(0, n) != kV1Prefix.substr(0, n)) return error("not a PROXY protocol header");
  const size_t end = data.find("\r\n");
  if (end == std::string_view::npos) {
    if (data.size() >= kV1MaxBytes) return error("v1 header longer than 107 bytes");
    // A lone CR or LF anywhere but at the end cannot become a valid line.
    const size_t bad = data.find_first_of("\r\n");
    if (bad != std::string_view::npos && !(bad == data.size() - 1 && data[bad] == '\r'))
      return error("v1 header with a stray CR or LF");
    Result r;
    r.status = Status::NeedMore;
    return r;
  }
  if (end + 2 > kV1MaxBytes) return error("v1 header longer than 107 bytes");
  const std::string_view line = data.substr(kV1Prefix.size(), end - kV1Prefix.size());
  for (char c : line)
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7e)
      return error("v1 header with a control or non-ASCII byte");
  Result r;
  r.header.version = 1;
  r.header.length = end + 2;
  // "UNKNOWN" may be followed by anything (the spec: receivers ignore it).
  if (line == "UNKNOWN" || line.starts_with("UNKNOWN ")) {
    r.status = Status::Ok;
    return r;
  }
  std::array<std::string_view, 5> f;
  size_t count = 0;
  if (!split_fields(line, &f, &count) || count != 5)
    return error("v1 header: expected TCP4|TCP6 <src> <dst> <sport> <dport>");
  bool v6;
  if (f[0] == "TCP4") {
    v6 = false;
  } else if (f[0] == "TCP6") {
    v6 = true;
  } else {
    return error("v1 header: unknown protocol (TCP4, TCP6 or UNKNOWN)");
  }
  unsigned char src[16], dst[16];
  const std::string s(f[1]), d(f[2]);
  if (inet_pton(v6 ? AF_INET6 : AF_INET, s.c_str(), src) != 1 ||
      inet_pton(v6 ? AF_INET6 : AF_INET, d.c_str(), dst) != 1)
    return error(std::string("v1 header: not an ") + (v6 ? "IPv6" : "IPv4") + " address");
  uint16_t sport = 0, dport = 0;
  if (!parse_port(f[3], &sport) || !parse_port(f[4], &dport)) return error("v1 header: bad port");
  r.status = Status::Ok;
  r.header.has_address = true;
  r.header.ipv6 = v6;
  r.header.source = format(v6, src, sport);
  r.header.destination = format(v6, dst, dport);
  return r;
}

uint16_t be16(const unsigned char* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }

Result parse_v2(std::string_view data, size_t max_bytes) {
  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
  const size_t n = std::min(data.size(), kV2Sig.size());
  if (std::memcmp(p, kV2Sig.data(), n) != 0) return error("not a PROXY protocol header");
  if (data.size() < kV2HeaderBytes) {
    if (data.size() > 12 && (p[12] >> 4) != 2) return error("v2 header: unknown version");
    Result r;
    r.status = Status::NeedMore;
    return r;
  }
  const unsigned version = p[12] >> 4, command = p[12] & 0x0f;
  const unsigned family = p[13] >> 4, transport = p[13] & 0x0f;
  const size_t len = be16(p + 14);
  if (version != 2) return error("v2 header: unknown version");
  if (command > 1) return error("v2 header: unknown command");
  if (kV2HeaderBytes + len > max_bytes)
    return error("v2 header of " + std::to_string(kV2HeaderBytes + len) + " bytes, over the " +
                 std::to_string(max_bytes) + "-byte limit");
  if (family > 3 || transport > 2) return error("v2 header: unknown address family or transport");
  if (data.size() < kV2HeaderBytes + len) {
    Result r;
    r.status = Status::NeedMore;
    return r;
  }
  Result r;
  r.header.version = 2;
  r.header.length = kV2HeaderBytes + len;
  r.status = Status::Ok;
  if (command == 0) return r;  // LOCAL: the balancer itself (health check); address ignored
  if (family == 0 || family == 3) return r;  // UNSPEC, UNIX: nothing usable
  if (transport != 1) return error("v2 header: not a TCP (stream) connection");
  const unsigned char* a = p + kV2HeaderBytes;
  if (family == 1) {
    if (len < 12) return error("v2 header: IPv4 address block too short");
    r.header.has_address = true;
    r.header.source = format(false, a, be16(a + 8));
    r.header.destination = format(false, a + 4, be16(a + 10));
  } else {
    if (len < 36) return error("v2 header: IPv6 address block too short");
    r.header.has_address = true;
    r.header.ipv6 = true;
    r.header.source = format(true, a, be16(a + 32));
    r.header.destination = format(true, a + 16, be16(a + 34));
  }
  // TLVs (len beyond the address block) are skipped: none changes who the client is.
  return r;
}

}  // namespace

Result parse(std::string_view data, size_t max_bytes) {
  if (data.empty()) return Result{};
  if (data[0] == 'P') return parse_v1(data);
  if (static_cast<unsigned char>(data[0]) == kV2Sig[0]) return parse_v2(data, max_bytes);
  return error("not a PROXY protocol header");
}

namespace {
std::string_view trim(std::string_view s) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  return s;
}
bool parse_addr(std::string_view text, Network* n) {
  const std::string a(text);
  if (inet_pton(AF_INET, a.c_str(), n->bytes) == 1) {
    n->ipv6 = false;
    return true;
  }
  if (inet_pton(AF_INET6, a.c_str(), n->bytes) == 1) {
    n->ipv6 = true;
    return true;
  }
  return false;
}
bool prefix_match(const unsigned char* a, const unsigned char* b, int bits) {
  const int whole = bits / 8, rest = bits % 8;
  if (std::memcmp(a, b, static_cast<size_t>(whole)) != 0) return false;
  if (rest == 0) return true;
  const unsigned char mask = static_cast<unsigned char>(0xff << (8 - rest));
  return (a[whole] & mask) == (b[whole] & mask);
}
}  // namespace

std::optional<std::vector<Network>> parse_networks(std::string_view list, std::string* error) {
  std::vector<Network> out;
  size_t start = 0;
  while (start < list.size()) {
    size_t comma = list.find(',', start);
    if (comma == std::string_view::npos) comma = list.size();
    const std::string_view item = trim(list.substr(start, comma - start));
    start = comma + 1;
    Network n;
    const size_t slash = item.find('/');
    if (!parse_addr(item.substr(0, slash), &n)) {
      *error = "'" + std::string(item) + "' is not an address or network (ADDR or ADDR/BITS)";
      return std::nullopt;
    }
    const int max = n.ipv6 ? 128 : 32;
    n.prefix = max;
    if (slash != std::string_view::npos) {
      const std::string_view bits = item.substr(slash + 1);
      int v = 0;
      bool ok = !bits.empty() && bits.size() <= 3;
      for (char c : bits) {
        if (c < '0' || c > '9') ok = false;
        v = v * 10 + (c - '0');
      }
      if (!ok || v > max) {
        *error = "'" + std::string(item) + "': the prefix must be 0 to " + std::to_string(max);
        return std::nullopt;
      }
      n.prefix = v;
    }
    out.push_back(n);
  }
  return out;
}

bool in_networks(const std::vector<Network>& nets, std::string_view peer) {
  std::string_view host = peer;
  if (!host.empty() && host.front() == '[') {
    host =
        host.substr(1, host.find(']') == std::string_view::npos ? host.npos : host.find(']') - 1);
  } else if (const size_t colon = host.rfind(':'); colon != std::string_view::npos) {
    host = host.substr(0, colon);
  }
  Network p;
  if (!parse_addr(host, &p)) return false;
  static const unsigned char kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  const bool mapped = p.ipv6 && std::memcmp(p.bytes, kMapped, 12) == 0;
  for (const auto& n : nets) {
    if (n.ipv6 == p.ipv6 && prefix_match(n.bytes, p.bytes, n.prefix)) return true;
    if (!n.ipv6 && mapped && prefix_match(n.bytes, p.bytes + 12, n.prefix)) return true;
  }
  return false;
}

}  // namespace s2::proxyproto
