// KeyDeriver (key_deriver.h): Hi() computed off the loop equals the inline one; the memo answers
// only the exact (hash, password, salt, count) it was given, and forgets the least recently used.
#include <doctest/doctest.h>
#include <uv.h>

#include <memory>
#include <optional>
#include <string>

#include "common/crypto/scram.h"
#include "proxy/key_deriver.h"

namespace {
using s2::crypto::HashAlg;
}

TEST_CASE("KeyDeriver: derive on the thread pool = inline Hi()") {
  uv_loop_t loop;
  uv_loop_init(&loop);
  {
    s2::KeyDeriver kdf(&loop);
    auto owner = std::make_shared<int>(0);
    std::optional<std::string> got;
    bool returned = false;
    kdf.derive(HashAlg::Sha256, "pencil", "salt-bytes", 4096, owner,
               [&](s2::crypto::SecretString s) {
                 CHECK(returned);  // never before derive() returned
                 got = std::string(s.view());
               });
    returned = true;
    CHECK(!got);  // not on the caller's stack
    uv_run(&loop, UV_RUN_DEFAULT);
    REQUIRE(got);
    CHECK(*got == s2::crypto::scram_salted_password(HashAlg::Sha256, "pencil", "salt-bytes", 4096));
    CHECK(kdf.derivations() == 1);

    // An owner that is gone gets no callback.
    bool called = false;
    {
      auto gone = std::make_shared<int>(0);
      kdf.derive(HashAlg::Sha1, "pencil", "s", 4096, gone,
                 [&](s2::crypto::SecretString) { called = true; });
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(!called);
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK(uv_loop_close(&loop) == 0);
}

TEST_CASE("KeyDeriver: memo by exact inputs, bounded, least recently used first out") {
  s2::KeyDeriver kdf(nullptr, 2);
  CHECK(!kdf.lookup(HashAlg::Sha1, "pw", "salt", 4096));
  kdf.remember(HashAlg::Sha1, "pw", "salt", 4096, "SP1");
  auto hit = kdf.lookup(HashAlg::Sha1, "pw", "salt", 4096);
  REQUIRE(hit);
  CHECK(hit->view() == "SP1");
  // Any other input misses: hash, password, salt, count.
  CHECK(!kdf.lookup(HashAlg::Sha256, "pw", "salt", 4096));
  CHECK(!kdf.lookup(HashAlg::Sha1, "pw2", "salt", 4096));
  CHECK(!kdf.lookup(HashAlg::Sha1, "pw", "salt2", 4096));
  CHECK(!kdf.lookup(HashAlg::Sha1, "pw", "salt", 4097));
  // Field boundaries are unambiguous: ("pw","salt") vs ("", "saltpw")-like shifts.
  CHECK(!kdf.lookup(HashAlg::Sha1, "tpw", "sal", 4096));

  kdf.remember(HashAlg::Sha1, "b", "salt", 4096, "SPb");
  CHECK(kdf.lookup(HashAlg::Sha1, "pw", "salt", 4096));   // pw is now the most recent
  kdf.remember(HashAlg::Sha1, "c", "salt", 4096, "SPc");  // evicts b
  CHECK(kdf.size() == 2);
  CHECK(!kdf.lookup(HashAlg::Sha1, "b", "salt", 4096));
  CHECK(kdf.lookup(HashAlg::Sha1, "pw", "salt", 4096));
  CHECK(kdf.lookup(HashAlg::Sha1, "c", "salt", 4096));
  // Remembering again replaces the value.
  kdf.remember(HashAlg::Sha1, "c", "salt", 4096, "SPc2");
  CHECK(kdf.lookup(HashAlg::Sha1, "c", "salt", 4096)->view() == "SPc2");
  CHECK(kdf.size() == 2);
}
