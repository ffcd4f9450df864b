// The PROXY protocol (HAProxy, versions 1 and 2): the header a load balancer
// writes as the very first bytes of a TCP connection, naming the client it
// accepted the connection from. See
// https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt.
//
// Pure: no I/O. The caller feeds what arrived so far (from the first byte of
// the connection); the parser says whether a complete header is there, how
// many bytes it took, and the client's address. Everything after the header
// belongs to the proxied stream (TLS or XML) and is never looked at.
//
// Accepted:
//   v1  "PROXY TCP4 <src> <dst> <sport> <dport>\r\n", TCP6 likewise, and
//       "PROXY UNKNOWN ...\r\n" (no address: the connection's own is used);
//       at most 107 bytes, single spaces, strict addresses and ports.
//   v2  the 12-byte signature, version 2, command LOCAL (a balancer's health
//       check: no address) or PROXY with TCP over IPv4/IPv6; UNSPEC and UNIX
//       families carry no usable address (treated like LOCAL). TLVs after the
//       address block are skipped without interpretation.
// Refused (Status::Error, with a reason): anything else — garbage, a wrong
// signature, an unknown version or command, UDP, an address block shorter
// than its family needs, a v1 line over 107 bytes, a v2 header over
// `max_bytes` — as soon as the bytes seen make it certain, so a peer that
// does not speak the protocol is closed without waiting for more.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace s2::proxyproto {

constexpr size_t kV1MaxBytes = 107;        // the spec's worst case, CRLF included
constexpr size_t kDefaultMaxBytes = 4096;  // v2: 16-byte header + addresses + TLVs

enum class Status { NeedMore, Ok, Error };

struct Header {
  int version = 0;           // 1 or 2
  bool has_address = false;  // false: LOCAL, UNKNOWN, UNSPEC, UNIX — keep the socket's peer
  bool ipv6 = false;
  std::string source;       // "203.0.113.7:51234" or "[2001:db8::1]:51234" (as sockaddr_to_string)
  std::string destination;  // the address the client connected to, same format
  size_t length = 0;        // bytes the header took; the proxied stream starts after them
};

struct Result {
  Status status = Status::NeedMore;
  Header header;      // when Ok
  std::string error;  // when Error: one short reason for the log
};

// Parses a header at the start of `data`.
Result parse(std::string_view data, size_t max_bytes = kDefaultMaxBytes);

// Which peers may send a header (--proxy-protocol-from): addresses and CIDR
// networks, IPv4 and IPv6.
struct Network {
  bool ipv6 = false;
  unsigned char bytes[16] = {};
  int prefix = 0;  // bits
};
// "10.0.0.0/8, 2001:db8::/32, 192.0.2.1" → networks (a bare address is a /32
// or /128). "" is an empty list. nullopt and *error when an item is bad.
std::optional<std::vector<Network>> parse_networks(std::string_view list, std::string* error);
// Whether `peer` ("1.2.3.4:5", "[2001:db8::1]:5", as sockaddr_to_string) is
// in one of `nets`. An IPv4-mapped IPv6 peer matches IPv4 networks.
bool in_networks(const std::vector<Network>& nets, std::string_view peer);

}  // namespace s2::proxyproto
