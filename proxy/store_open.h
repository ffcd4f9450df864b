// Opens the store `--store` names: the embedded LMDB mirror in the data dir
// (the default), or PostgreSQL (common/store/pg_store.h) for several nodes.
// The daemon and the `accounts` commands open it the same way.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "common/store/store.h"
#include "common/store/writer.h"
#include "proxy/config.h"

namespace s2 {

// True when the configured store is PostgreSQL.
bool store_is_postgresql(const Config& cfg);

// The store, or an error naming the option and the place ("--data-dir: cannot
// open the mirror in …" / "--store: postgresql://alice@db/xmpp: …").
store::Result<std::unique_ptr<store::Store>> open_configured_store(const Config& cfg,
                                                                   store::WriterOptions writer);

// The store as logs and errors may show it: a URL's password replaced by
// `***` (query parameters too: `password=`).
std::string describe_store(const Config& cfg);
std::string redact_store_url(std::string_view url);

// Whether the configured store may hold accounts without creating anything:
// the LMDB mirror dir exists, or the store is PostgreSQL (it is asked).
bool store_may_exist(const Config& cfg);

// `check-config`: "" or why the --store value cannot be used (offline).
std::string check_store_config(const Config& cfg);

// `check-config --probe`: connects to a PostgreSQL store and says what it
// found (server version, s2proxy schema) without writing; 0 when usable.
// An LMDB store has nothing to probe (0).
int probe_store(const Config& cfg);

}  // namespace s2
