// A thin libpq wrapper for the PostgreSQL store (pg_store.h).
//
// Every statement is sent with binary parameters and asks for binary results:
// the store's strings are opaque bytes (stanzas, JIDs, blobs) kept in bytea
// columns, and its integers are int8. Binary in both directions means no
// escaping and no text round trip of numbers. Statements are prepared once per
// connection, keyed by their text, so a hot statement is parsed and planned
// once.
//
// Errors are thrown as pg::Failure carrying the SQLSTATE; the store turns
// them into Error values (to_error()).
#pragma once

#include <libpq-fe.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/store/store.h"

namespace s2::store::pg {

struct Failure {
  std::string sqlstate;  // "" when libpq failed before the server answered
  std::string text;
  bool connection_lost = false;
};

// SQLSTATE → Errc: 53100 disk_full is kNoSpace, data exceptions (22…) are the
// caller's bad input, everything else kIo.
Error to_error(const Failure& f);

// A message from libpq without its trailing newline (NULL reads as "").
std::string libpq_text(const char* s);

class Params {
 public:
  Params& i64(int64_t v);
  Params& u64(uint64_t v) { return i64(static_cast<int64_t>(v)); }
  Params& bytes(std::string_view v);
  Params& null_i64();
  Params& null_bytes();

  int size() const { return static_cast<int>(types_.size()); }
  const unsigned int* types() const { return types_.data(); }
  const int* lengths() const { return lengths_.data(); }
  const int* formats() const { return formats_.data(); }
  std::vector<const char*> values() const;

 private:
  Params& add(unsigned int type, std::string data, bool null);

  std::vector<unsigned int> types_;
  std::vector<std::string> data_;
  std::vector<int> lengths_, formats_;
  std::vector<bool> null_;
};

// A result set; cells are read by row and column index in binary format.
class Rows {
 public:
  explicit Rows(PGresult* r) : r_(r, &PQclear) {}
  int size() const { return PQntuples(r_.get()); }
  bool empty() const { return size() == 0; }
  bool null(int row, int col) const { return PQgetisnull(r_.get(), row, col) != 0; }
  int64_t i64(int row, int col) const;  // int2/int4/int8; NULL reads as 0
  uint64_t u64(int row, int col) const { return static_cast<uint64_t>(i64(row, col)); }
  std::string bytes(int row, int col) const;  // bytea (or text); NULL reads as ""
  uint64_t affected() const;                  // rows an INSERT/UPDATE/DELETE touched

 private:
  std::unique_ptr<PGresult, void (*)(PGresult*)> r_;
};

class Conn {
 public:
  // Connects and checks the server version; throws Failure.
  static std::unique_ptr<Conn> connect(const std::string& conninfo);
  // The same, with libpq keywords that override the connection string's
  // (e.g. {"keepalives_idle", "5"}).
  static std::unique_ptr<Conn> connect(
      const std::string& conninfo, const std::vector<std::pair<std::string, std::string>>& extra);
  ~Conn();
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;

  // One statement with parameters, prepared on first use on this connection.
  Rows exec(const std::string& sql, const Params& p = Params());
  // Statements without parameters or results (DDL, BEGIN/COMMIT, SAVEPOINT).
  void run(const std::string& sql);
  bool healthy() const { return PQstatus(c_) == CONNECTION_OK; }
  bool in_transaction() const { return PQtransactionStatus(c_) != PQTRANS_IDLE; }
  int server_version() const { return PQserverVersion(c_); }

 private:
  explicit Conn(PGconn* c) : c_(c) {}
  Failure failure(const PGresult* r) const;

  PGconn* c_;
  std::unordered_map<std::string, std::string> prepared_;  // sql → statement name
};

}  // namespace s2::store::pg
