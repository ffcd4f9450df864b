// See store_open.h.
#include "proxy/store_open.h"

#include <sys/stat.h>

#include <algorithm>
#include <iostream>
#include <utility>

#include "common/store/mirror.h"
#include "common/store/pg_store.h"

namespace s2 {

bool store_is_postgresql(const Config& cfg) { return store::is_postgresql_url(cfg.store); }

std::string redact_store_url(std::string_view url) {
  std::string out(url);
  // userinfo: scheme://user:password@host
  const size_t scheme = out.find("://");
  if (scheme != std::string::npos) {
    const size_t start = scheme + 3;
    const size_t at = out.find('@', start);
    const size_t slash = out.find('/', start);
    if (at != std::string::npos && (slash == std::string::npos || at < slash)) {
      const size_t colon = out.find(':', start);
      if (colon != std::string::npos && colon < at) out.replace(colon + 1, at - colon - 1, "***");
    }
  }
  // query parameter: ?password=… or &password=…
  for (size_t p = out.find("password="); p != std::string::npos; p = out.find("password=", p + 1)) {
    if (p == 0 || (out[p - 1] != '?' && out[p - 1] != '&')) continue;
    const size_t v = p + 9;
    const size_t end = std::min(out.find('&', v), out.size());
    out.replace(v, end - v, "***");
  }
  return out;
}

std::string describe_store(const Config& cfg) {
  if (store_is_postgresql(cfg)) return redact_store_url(cfg.store);
  return cfg.data_dir + "/mirror";
}

bool store_may_exist(const Config& cfg) {
  if (store_is_postgresql(cfg)) return true;
  struct stat st {};
  return stat((cfg.data_dir + "/mirror").c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

store::Result<std::unique_ptr<store::Store>> open_configured_store(const Config& cfg,
                                                                   store::WriterOptions writer) {
  if (store_is_postgresql(cfg)) {
    store::PgStoreOptions po;
    po.conninfo = cfg.store;
    po.writer = std::move(writer);
    auto s = store::PgStore::open(std::move(po));
    if (!s) {
      return store::Error{s.error().code,
                          "--store: " + redact_store_url(cfg.store) + ": " + s.error().text};
    }
    return std::unique_ptr<store::Store>(std::move(s.value()));
  }
  store::MirrorOptions mo;
  mo.dir = cfg.data_dir + "/mirror";
  mo.max_map_size = static_cast<size_t>(cfg.mirror_max_size);
  mo.map_size = std::min(mo.map_size, mo.max_map_size);
  mo.writer = std::move(writer);
  auto m = store::Mirror::open(std::move(mo));
  if (!m) {
    return store::Error{m.error().code, "--data-dir: cannot open the mirror in " + cfg.data_dir +
                                            "/mirror: " + m.error().text};
  }
  return std::unique_ptr<store::Store>(std::move(m.value()));
}

std::string check_store_config(const Config& cfg) {
  if (!store_is_postgresql(cfg)) return "";
  const std::string why = store::check_conninfo(cfg.store);
  if (why.empty()) return "";
  return "--store: " + redact_store_url(cfg.store) + ": " + why;
}

int probe_store(const Config& cfg) {
  if (!store_is_postgresql(cfg)) return 0;
  std::cout << "probing the store " << redact_store_url(cfg.store) << "\n";
  auto p = store::probe_postgresql(cfg.store);
  if (!p) {
    std::cout << "store: FAILED: " << p.error().text << "\n";
    return 1;
  }
  const int v = p->server_version;
  std::cout << "store: PostgreSQL " << v / 10000 << "." << v % 10000 << "\n";
  if (p->schema == 0) {
    std::cout << "store: no s2proxy tables yet (created at the first start)\n";
  } else if (p->schema > store::kPgSchemaVersionSupported) {
    std::cout << "store: FAILED: schema " << p->schema << " was written by a newer s2proxy; this "
              << "one reads schema " << store::kPgSchemaVersionSupported << " and older\n";
    return 1;
  } else {
    std::cout << "store: s2proxy schema " << p->schema << " (this s2proxy reads "
              << store::kPgSchemaVersionSupported << ")\n";
  }
  return 0;
}

}  // namespace s2
