// An LMDB mirror in a fresh temp dir for the proxy's unit tests (no fsync),
// removed at the end, and a synchronous write.
#pragma once

#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <future>
#include <memory>
#include <string>

#include "common/store/mirror.h"

namespace s2::test {

struct TempMirror {
  std::string dir;
  std::unique_ptr<store::Mirror> m;
  TempMirror() {
    dir = "/tmp/s2proxy-unit-" + std::to_string(::getpid()) + "-" +
          std::to_string(reinterpret_cast<uintptr_t>(this));
    std::filesystem::remove_all(dir);
    store::MirrorOptions o;
    o.dir = dir;
    o.no_sync = true;
    auto r = store::Mirror::open(o);
    REQUIRE(r.ok());
    m = std::move(r.value());
  }
  ~TempMirror() {
    m.reset();
    std::filesystem::remove_all(dir);
  }
  TempMirror(const TempMirror&) = delete;
  TempMirror& operator=(const TempMirror&) = delete;

  store::WriteResult write(store::WriteBatch b) {
    std::promise<store::WriteResult> p;
    m->submit(std::move(b), [&](store::WriteResult r) { p.set_value(std::move(r)); });
    return p.get_future().get();
  }
};

}  // namespace s2::test
