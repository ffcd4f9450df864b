// libFuzzer target for proxyproto::parse() (common/net/proxy_protocol). Besides
// memory safety it checks what the connection code relies on: a header that
// parses took at least 8 and at most the limit's bytes of the input, carries
// a source exactly when it has an address, and parses the same from any
// longer input (the bytes after it belong to the stream); a strict prefix of
// it only ever asks for more.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/net/proxy_protocol.h"

using s2::proxyproto::parse;
using s2::proxyproto::Status;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  auto r = parse(in, 512);
  if (r.status == Status::Error && r.error.empty()) __builtin_trap();
  if (r.status != Status::Ok) return 0;
  const auto& h = r.header;
  if (h.length < 8 || h.length > size || h.length > 512) __builtin_trap();
  if (h.has_address == h.source.empty() || h.has_address == h.destination.empty()) __builtin_trap();
  if (h.version != 1 && h.version != 2) __builtin_trap();
  auto again = parse(in.substr(0, h.length), 512);
  if (again.status != Status::Ok || again.header.source != h.source ||
      again.header.length != h.length)
    __builtin_trap();
  auto prefix = parse(in.substr(0, h.length - 1), 512);
  if (prefix.status != Status::NeedMore) __builtin_trap();
  return 0;
}
