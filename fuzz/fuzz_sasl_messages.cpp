// libFuzzer target for the SASL messages the proxy decodes from peers other
// than the SCRAM server path: base64 payloads, PLAIN (clients), the
// HT-SHA-256-NONE initial response (FAST clients), the vault entry decoder,
// and the SCRAM *client* parsing a server-first / server-final from the
// upstream server (the upstream is remote input too).
//
// Input: byte 0 selects the parser; the rest is the message. For the SCRAM
// client, the message is server-first '\n' server-final.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/crypto/encoding.h"
#include "common/crypto/ht.h"
#include "common/crypto/sasl_plain.h"
#include "common/crypto/scram.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const std::string_view msg(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 5) {
    case 0: {
      auto d = s2::crypto::sasl_base64_decode(msg);
      // Round trip: what decodes re-encodes to the canonical form and back.
      if (d && !d->empty()) {
        auto again = s2::crypto::base64_decode(s2::crypto::base64_encode(*d));
        if (!again || *again != *d) __builtin_trap();
      }
      break;
    }
    case 1: {
      s2::crypto::SaslError err;
      auto p = s2::crypto::parse_sasl_plain(msg, &err);
      if (p && (p->authcid.empty() || p->password.empty())) __builtin_trap();
      break;
    }
    case 2: {
      s2::crypto::SaslError err;
      auto h = s2::crypto::parse_ht_initial_response(msg, &err);
      if (h && h->hmac.size() != 32) __builtin_trap();
      break;
    }
    case 3: {
      const auto nl = msg.find('\n');
      s2::crypto::ScramClient c(s2::crypto::HashAlg::Sha1, "user", "pencil", "CNONCE");
      if (!c.client_first()) __builtin_trap();
      auto final_msg = c.handle_server_first(msg.substr(0, nl));
      if (final_msg && nl != std::string_view::npos) {
        // Only the right server signature can pass; random input never does.
        (void)c.handle_server_final(msg.substr(nl + 1));
      }
      break;
    }
    case 4: {
      s2::crypto::ScramClient c = s2::crypto::ScramClient::with_salted_password(
          s2::crypto::HashAlg::Sha256, "user", std::string(32, 'k'), "salt", 4096, "CNONCE");
      (void)c.client_first();
      (void)c.handle_server_first(msg);
      break;
    }
  }
  return 0;
}
