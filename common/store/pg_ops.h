// Internal to the PostgreSQL store: schema, write operations and MAM queries,
// each handed a connection inside a transaction the caller (pg_store.cpp) owns.
// They throw pgdetail::OpError for a value error that fails the batch (or a
// schema the store cannot use) and pg::Failure for a database error.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "common/store/pg_conn.h"
#include "common/store/store.h"

namespace s2::store::pgdetail {

inline constexpr uint32_t kPgSchemaVersion = 1;  // = kPgSchemaVersionSupported (pg_store.h)

struct OpError {
  Error error;
};

// Creates the tables on an empty database, checks the version otherwise
// (a newer schema is refused with a message, like the Mirror's).
void ensure_schema(pg::Conn& c);

std::vector<OpResult> apply_batch(pg::Conn& c, const WriteBatch& batch,
                                  int64_t fingerprint_window_ms, int64_t now_ms);

ArchiveBounds read_bounds(pg::Conn& c, AccountNo a);
Result<MamPage> run_query(pg::Conn& c, AccountNo a, const MamQuery& q);
std::optional<ArchiveId> lookup_ref(pg::Conn& c, AccountNo a, std::string_view peer, RefKind kind,
                                    std::string_view ref);

// The columns every message read selects, and their decoder.
inline constexpr const char* kMessageColumns =
    "archive_id, archive_ms, timestamp_ms, direction, peer, flags, upstream_stanza_id, "
    "origin_id, msg_id, fingerprint, stanza";
StoredMessage decode_message_row(const pg::Rows& r, int row);

}  // namespace s2::store::pgdetail
