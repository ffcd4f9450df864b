// Vault: AES-256-GCM seal/open and the key file rules.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "common/crypto/vault.h"

using namespace s2::crypto;
namespace fs = std::filesystem;
using namespace std::string_literals;

namespace {

const std::string kKey(32, 'k');

// A fresh private directory per test case, removed afterwards.
struct TempDir {
  fs::path path;
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "s2vault.XXXXXX").string();
    REQUIRE(mkdtemp(tmpl.data()) != nullptr);
    path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

void write_file(const fs::path& p, const std::string& data, mode_t mode) {
  {
    std::ofstream f(p, std::ios::binary);
    f << data;
  }
  REQUIRE(chmod(p.c_str(), mode) == 0);
}

mode_t mode_of(const fs::path& p) {
  struct stat st;
  REQUIRE(stat(p.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

}  // namespace

TEST_CASE("vault: seal/open round trip") {
  const std::string plains[] = {"", "x", "SaltedPassword bytes \x00\x01\xff"s,
                                std::string(5000, 'p')};
  for (const auto& p : plains) {
    auto sealed = vault_seal(kKey, p, "account:42");
    REQUIRE(sealed);
    CHECK(sealed->size() == p.size() + kVaultOverhead);
    CHECK(vault_open(kKey, *sealed, "account:42") == std::optional<std::string>(p));
    if (p.size() > 4) CHECK(sealed->find(p) == std::string::npos);
  }
  // Fresh nonce each time.
  CHECK(*vault_seal(kKey, "same") != *vault_seal(kKey, "same"));
  CHECK(vault_open(kKey, *vault_seal(kKey, "no aad")) == std::optional<std::string>("no aad"));
}

TEST_CASE("vault: wrong key, wrong aad, tampering, truncation") {
  const std::string sealed = *vault_seal(kKey, "upstream secret", "alice@legacy.test");
  std::string other_key = kKey;
  other_key[31] ^= 1;
  CHECK_FALSE(vault_open(other_key, sealed, "alice@legacy.test").has_value());
  CHECK_FALSE(vault_open(kKey, sealed, "bob@legacy.test").has_value());
  CHECK_FALSE(vault_open(kKey, sealed, "").has_value());
  for (size_t i = 0; i < sealed.size(); ++i) {  // every byte: nonce, ciphertext, tag
    std::string t = sealed;
    t[i] ^= 0x01;
    CAPTURE(i);
    CHECK_FALSE(vault_open(kKey, t, "alice@legacy.test").has_value());
  }
  CHECK_FALSE(vault_open(kKey, sealed.substr(0, sealed.size() - 1), "alice@legacy.test"));
  CHECK_FALSE(vault_open(kKey, sealed + "x", "alice@legacy.test"));
  CHECK_FALSE(vault_open(kKey, sealed.substr(0, kVaultOverhead - 1), "alice@legacy.test"));
  CHECK_FALSE(vault_open(kKey, "", ""));
  // Bad key sizes.
  CHECK_FALSE(vault_seal(std::string(31, 'k'), "x").has_value());
  CHECK_FALSE(vault_seal(std::string(33, 'k'), "x").has_value());
  CHECK_FALSE(vault_open(std::string(16, 'k'), sealed, "alice@legacy.test").has_value());
}

TEST_CASE("vault key file: created 0600, then loaded unchanged") {
  TempDir d;
  fs::path p = d.path / "vault.key";
  std::string err;
  auto k1 = load_or_create_key_file(p.string(), &err);
  REQUIRE_MESSAGE(k1, err);
  CHECK(k1->size() == 32);
  CHECK(mode_of(p) == 0600);
  CHECK(fs::file_size(p) == 32);
  auto k2 = load_or_create_key_file(p.string(), &err);
  REQUIRE(k2);
  CHECK(k2->str() == k1->str());

  // A key made elsewhere with the right shape is accepted (0400 too).
  fs::path q = d.path / "given.key";
  write_file(q, std::string(32, '\x07'), 0400);
  auto k3 = load_or_create_key_file(q.string(), &err);
  REQUIRE(k3);
  CHECK(k3->str() == std::string(32, '\x07'));
}

TEST_CASE("vault key file: refusals") {
  TempDir d;
  struct Row {
    std::string name;
    std::string content;
    mode_t mode;
    std::string want_in_error;
  };
  const Row rows[] = {
      {"group-readable", std::string(32, 'k'), 0640, "mode 0640"},
      {"other-readable", std::string(32, 'k'), 0604, "mode 0604"},
      {"group-writable", std::string(32, 'k'), 0620, "mode 0620"},
      {"short", std::string(31, 'k'), 0600, "31 bytes"},
      {"long", std::string(33, 'k'), 0600, "33 bytes"},
      {"empty", "", 0600, "0 bytes"},
  };
  for (const auto& r : rows) {
    CAPTURE(r.name);
    fs::path p = d.path / r.name;
    write_file(p, r.content, r.mode);
    std::string err;
    CHECK_FALSE(load_or_create_key_file(p.string(), &err).has_value());
    CHECK(err.find(r.want_in_error) != std::string::npos);
    CHECK(err.find(p.string()) != std::string::npos);
    CHECK(fs::file_size(p) == r.content.size());  // never rewritten
  }
  std::string err;
  CHECK_FALSE(load_or_create_key_file(d.path.string(), &err).has_value());  // a directory
  CHECK(err.find("not a regular file") != std::string::npos);
  CHECK_FALSE(load_or_create_key_file((d.path / "missing-dir" / "k").string(), &err));
  CHECK(err.find("cannot create") != std::string::npos);
}
