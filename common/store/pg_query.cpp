// MAM queries on PostgreSQL: the archive access for the shared plan
// (mam_plan.h). start/end are one index probe each on (account, archive_ms,
// archive_id), since archive time never decreases in archive order; a range
// is one primary-key range read; a `with` page one read of the
// (account, peer_key, archive_id) index from the end it is taken from. The
// caller runs it all in one REPEATABLE READ snapshot.
#include <string>

#include "common/store/mam_plan.h"
#include "common/store/pg_ops.h"
#include "common/store/schema.h"

namespace s2::store::pgdetail {
namespace {

using pg::Params;
using pg::Rows;

class PgArchive {
 public:
  PgArchive(pg::Conn& c, AccountNo a) : c_(c), a_(a) {}

  ArchiveBounds bounds() { return read_bounds(c_, a_); }

  bool exists(ArchiveId id) {
    return !c_.exec("SELECT 1 FROM s2_messages WHERE account = $1 AND archive_id = $2",
                    Params().i64(a_).u64(id))
                .empty();
  }

  ArchiveId first_at_or_after(ArchiveId lo, ArchiveId hi, int64_t t) {
    Rows r = c_.exec(
        "SELECT archive_id FROM s2_messages WHERE account = $1 AND archive_ms >= $2 "
        "ORDER BY archive_ms, archive_id LIMIT 1",
        Params().i64(a_).i64(t));
    return r.empty() ? hi + 1 : std::max(lo, r.u64(0, 0));
  }

  StoredMessage load(ArchiveId id) {
    auto m = select("WHERE account = $1 AND archive_id = $2", Params().i64(a_).u64(id));
    if (m.empty()) throw pg::Failure{"", "a message vanished inside a snapshot", false};
    return std::move(m[0]);
  }

  std::vector<StoredMessage> load_range(ArchiveId from, ArchiveId to) {
    return select("WHERE account = $1 AND archive_id BETWEEN $2 AND $3 ORDER BY archive_id",
                  Params().i64(a_).u64(from).u64(to));
  }

  std::vector<StoredMessage> peer_walk(const std::string& peer, ArchiveId lo, ArchiveId hi,
                                       size_t limit, bool from_end) {
    const Params p = Params()
                         .i64(a_)
                         .bytes(std::string_view(schema::peer_prefix(a_, peer)))
                         .u64(lo)
                         .u64(hi)
                         .u64(limit);
    return from_end ? select(
                          "WHERE account = $1 AND peer_key = $2 AND archive_id BETWEEN $3 AND "
                          "$4 ORDER BY archive_id DESC LIMIT $5",
                          p)
                    : select(
                          "WHERE account = $1 AND peer_key = $2 AND archive_id BETWEEN $3 AND "
                          "$4 ORDER BY archive_id LIMIT $5",
                          p);
  }

 private:
  std::vector<StoredMessage> select(const char* where, const Params& p) {
    Rows rows = c_.exec(std::string("SELECT ") + kMessageColumns + " FROM s2_messages " + where, p);
    std::vector<StoredMessage> out;
    out.reserve(static_cast<size_t>(rows.size()));
    for (int i = 0; i < rows.size(); ++i) out.push_back(decode_message_row(rows, i));
    return out;
  }

  pg::Conn& c_;
  AccountNo a_;
};

}  // namespace

StoredMessage decode_message_row(const pg::Rows& r, int row) {
  StoredMessage m;
  m.archive_id = r.u64(row, 0);
  m.archive_ms = r.i64(row, 1);
  m.record.timestamp_ms = r.i64(row, 2);
  m.record.direction = static_cast<Direction>(r.i64(row, 3));
  m.record.peer_bare = r.bytes(row, 4);
  m.record.flags = static_cast<uint32_t>(r.u64(row, 5));
  m.record.upstream_stanza_id = r.bytes(row, 6);
  m.record.origin_id = r.bytes(row, 7);
  m.record.id = r.bytes(row, 8);
  m.record.fingerprint = r.bytes(row, 9);
  m.record.stanza = r.bytes(row, 10);
  return m;
}

ArchiveBounds read_bounds(pg::Conn& c, AccountNo a) {
  // One statement: both ends in one snapshot and one round trip.
  Rows r = c.exec(
      "SELECT f.archive_id, f.archive_ms, l.archive_id, l.archive_ms FROM "
      "(SELECT archive_id, archive_ms FROM s2_messages WHERE account = $1 "
      "ORDER BY archive_id LIMIT 1) f, "
      "(SELECT archive_id, archive_ms FROM s2_messages WHERE account = $1 "
      "ORDER BY archive_id DESC LIMIT 1) l",
      Params().i64(a));
  ArchiveBounds b;
  if (r.empty()) return b;
  b.first_id = r.u64(0, 0);
  b.first_ms = r.i64(0, 1);
  b.last_id = r.u64(0, 2);
  b.last_ms = r.i64(0, 3);
  return b;
}

Result<MamPage> run_query(pg::Conn& c, AccountNo a, const MamQuery& q) {
  PgArchive ar(c, a);
  return detail::run_mam_plan(ar, q);
}

}  // namespace s2::store::pgdetail
