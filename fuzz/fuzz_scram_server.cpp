// libFuzzer target for the SCRAM server state machine (common/crypto/scram.h),
// which parses client-first and client-final messages from unauthenticated
// peers.
//
// Input layout: byte 0 picks the hash (bit 0) and whether the verifier is a
// real or a fake one (bit 1); the rest is client-first '\n' client-final. The
// server nonce is fixed ("SNONCE") so the fuzzer can learn to echo it and
// reach the proof check. Invariants: a failure always carries one of the two
// conditions, and success is impossible with a fake verifier.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/crypto/scram.h"

namespace {

using s2::crypto::HashAlg;
using s2::crypto::ScramVerifier;

const ScramVerifier& verifier(HashAlg h, bool fake) {
  static const ScramVerifier v[4] = {
      s2::crypto::make_scram_verifier(HashAlg::Sha1, "pencil", "saltsaltsalt", 4096),
      s2::crypto::make_scram_verifier(HashAlg::Sha256, "pencil", "saltsaltsalt", 4096),
      s2::crypto::make_fake_scram_verifier(HashAlg::Sha1, "user", "secret", 4096),
      s2::crypto::make_fake_scram_verifier(HashAlg::Sha256, "user", "secret", 4096),
  };
  return v[(fake ? 2 : 0) + (h == HashAlg::Sha256 ? 1 : 0)];
}

bool known_condition(const s2::crypto::SaslError& e) {
  return e.condition == s2::crypto::kSaslMalformedRequest ||
         e.condition == s2::crypto::kSaslNotAuthorized;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  HashAlg h = (data[0] & 1) ? HashAlg::Sha256 : HashAlg::Sha1;
  bool fake = (data[0] & 2) != 0;
  std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  size_t nl = rest.find('\n');
  std::string_view first = rest.substr(0, nl);
  std::string_view final_msg =
      nl == std::string_view::npos ? std::string_view{} : rest.substr(nl + 1);

  s2::crypto::ScramServer server(h, "SNONCE");
  if (auto err = server.handle_client_first(first)) {
    if (!known_condition(*err)) __builtin_trap();
    return 0;
  }
  auto server_first = server.server_first(verifier(h, fake));
  if (!server_first) __builtin_trap();  // valid verifier, right order: must succeed
  if (auto err = server.handle_client_final(final_msg)) {
    if (!known_condition(*err) || server.authenticated()) __builtin_trap();
    return 0;
  }
  if (fake || !server.authenticated() || server.server_final().rfind("v=", 0) != 0)
    __builtin_trap();
  return 0;
}
