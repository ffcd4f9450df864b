// SCRAM pieces shared by both roles: names, saslname escaping, key
// derivation (RFC 5802 §3) and verifier construction.
#include "common/crypto/scram.h"
#include "common/crypto/scram_detail.h"

namespace s2::crypto {
namespace detail {

bool split_scram_attrs(std::string_view msg, std::vector<ScramAttr>* out) {
  out->clear();
  while (true) {
    size_t comma = msg.find(',');
    std::string_view piece = msg.substr(0, comma);
    if (piece.size() < 2 || piece[1] != '=') return false;
    char n = piece[0];
    if (!((n >= 'a' && n <= 'z') || (n >= 'A' && n <= 'Z'))) return false;
    out->push_back(ScramAttr{n, piece.substr(2)});
    if (comma == std::string_view::npos) return true;
    msg.remove_prefix(comma + 1);
  }
}

bool scram_printable(std::string_view s) {
  for (char c : s)
    if (c < 0x21 || c > 0x7E || c == ',') return false;
  return true;
}

std::optional<uint32_t> parse_scram_iterations(std::string_view s) {
  if (s.empty() || s.size() > 10 || s[0] == '0') return std::nullopt;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  if (v > UINT32_MAX) return std::nullopt;
  return static_cast<uint32_t>(v);
}

std::string scram_client_key(HashAlg h, std::string_view salted_password) {
  return hmac(h, salted_password, "Client Key");
}

std::string scram_server_key(HashAlg h, std::string_view salted_password) {
  return hmac(h, salted_password, "Server Key");
}

std::string xor_bytes(std::string_view a, std::string_view b) {
  std::string out(a.size(), '\0');
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) out[i] = static_cast<char>(a[i] ^ b[i]);
  return out;
}

}  // namespace detail

const char* scram_mechanism_name(HashAlg h) {
  return h == HashAlg::Sha1 ? "SCRAM-SHA-1" : "SCRAM-SHA-256";
}

std::optional<HashAlg> scram_hash_for_mechanism(std::string_view mechanism) {
  if (mechanism == "SCRAM-SHA-1") return HashAlg::Sha1;
  if (mechanism == "SCRAM-SHA-256") return HashAlg::Sha256;
  return std::nullopt;
}

std::string scram_escape_saslname(std::string_view name) {
  std::string out;
  out.reserve(name.size());
  for (char c : name) {
    if (c == ',')
      out += "=2C";
    else if (c == '=')
      out += "=3D";
    else
      out += c;
  }
  return out;
}

std::optional<std::string> scram_unescape_saslname(std::string_view name) {
  std::string out;
  out.reserve(name.size());
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    if (c == ',') return std::nullopt;
    if (c != '=') {
      out += c;
      continue;
    }
    std::string_view esc = name.substr(i + 1, 2);
    if (esc == "2C")
      out += ',';
    else if (esc == "3D")
      out += '=';
    else
      return std::nullopt;
    i += 2;
  }
  return out;
}

std::string scram_salted_password(HashAlg h, std::string_view password, std::string_view salt,
                                  uint32_t iterations) {
  return pbkdf2(h, password, salt, iterations);
}

ScramVerifier scram_verifier_from_salted_password(HashAlg h, std::string_view salted_password,
                                                  std::string_view salt, uint32_t iterations) {
  ScramVerifier v;
  v.hash = h;
  v.salt.assign(salt);
  v.iterations = iterations;
  SecretString client_key(detail::scram_client_key(h, salted_password));
  v.stored_key = digest(h, client_key.view());
  v.server_key = detail::scram_server_key(h, salted_password);
  return v;
}

ScramVerifier make_scram_verifier(HashAlg h, std::string_view password, std::string_view salt,
                                  uint32_t iterations) {
  SecretString salted(scram_salted_password(h, password, salt, iterations));
  return scram_verifier_from_salted_password(h, salted.view(), salt, iterations);
}

ScramVerifier make_scram_verifier(HashAlg h, std::string_view password, uint32_t iterations) {
  return make_scram_verifier(h, password, random_bytes(16), iterations);
}

ScramVerifier make_fake_scram_verifier(HashAlg h, std::string_view username,
                                       std::string_view server_secret, uint32_t iterations) {
  std::string label = "s2proxy fake SCRAM salt";
  label.append(1, '\0').append(scram_mechanism_name(h)).append(1, '\0').append(username);
  ScramVerifier v;
  v.hash = h;
  v.salt = hmac(HashAlg::Sha256, server_secret, label).substr(0, 16);
  v.iterations = iterations;
  // Random keys: no proof can hash to this StoredKey (2^-160 at worst).
  v.stored_key = random_bytes(hash_size(h));
  v.server_key = random_bytes(hash_size(h));
  return v;
}

}  // namespace s2::crypto
