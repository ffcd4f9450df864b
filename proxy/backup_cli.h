// `s2proxy backup DIR [--with-vault-key]`: a consistent, compacted copy of a
// data dir's mirror, taken while the daemon runs (docs/architecture.md §14;
// restore in deploy/README.md).
#pragma once

#include <string>

#include "proxy/config.h"

namespace s2 {

// DIR must not exist or be empty. Writes DIR/mirror/data.mdb, DIR/BACKUP (what
// was copied, when, by which version) and, with `with_vault_key`, DIR/vault.key
// (mode 0600) — the key that unseals the stored credentials, a secret, so only
// when asked. Exit 0 on success, 1 on a failure, 2 on a bad DIR.
int run_backup(const Config& cfg, const std::string& dir, bool with_vault_key);

}  // namespace s2
