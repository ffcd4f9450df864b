// libpq wrapper: binary parameters and results, per-connection prepared statements.
#include "common/store/pg_conn.h"

#include <cstring>

namespace s2::store::pg {
namespace {

constexpr unsigned int kInt8Oid = 20;
constexpr unsigned int kByteaOid = 17;

uint64_t be_read(const char* p, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; ++i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

}  // namespace

std::string libpq_text(const char* s) {
  std::string out = s != nullptr ? s : "";
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

Error to_error(const Failure& f) {
  if (f.sqlstate == "53100") return Error{Errc::kNoSpace, "postgresql: " + f.text};
  if (f.sqlstate.rfind("22", 0) == 0) return Error{Errc::kInvalidArgument, "postgresql: " + f.text};
  return Error{Errc::kIo, "postgresql: " + f.text};
}

// --- Params ------------------------------------------------------------------------

Params& Params::add(unsigned int type, std::string data, bool null) {
  types_.push_back(type);
  lengths_.push_back(static_cast<int>(data.size()));
  formats_.push_back(1);  // binary
  null_.push_back(null);
  data_.push_back(std::move(data));
  return *this;
}

Params& Params::i64(int64_t v) {
  std::string b(8, '\0');
  const auto u = static_cast<uint64_t>(v);
  for (int i = 0; i < 8; ++i) b[i] = static_cast<char>(u >> (8 * (7 - i)));
  return add(kInt8Oid, std::move(b), false);
}

Params& Params::bytes(std::string_view v) { return add(kByteaOid, std::string(v), false); }
Params& Params::null_i64() { return add(kInt8Oid, {}, true); }
Params& Params::null_bytes() { return add(kByteaOid, {}, true); }

std::vector<const char*> Params::values() const {
  std::vector<const char*> v(data_.size());
  for (size_t i = 0; i < data_.size(); ++i) v[i] = null_[i] ? nullptr : data_[i].data();
  return v;
}

// --- Rows --------------------------------------------------------------------------

int64_t Rows::i64(int row, int col) const {
  if (null(row, col)) return 0;
  const int n = PQgetlength(r_.get(), row, col);
  const char* p = PQgetvalue(r_.get(), row, col);
  const uint64_t u = be_read(p, n);
  switch (n) {  // sign-extend the narrower integer types
    case 2:
      return static_cast<int16_t>(u);
    case 4:
      return static_cast<int32_t>(u);
    case 1:
      return static_cast<int8_t>(u);  // bool
    default:
      return static_cast<int64_t>(u);
  }
}

std::string Rows::bytes(int row, int col) const {
  if (null(row, col)) return {};
  return std::string(PQgetvalue(r_.get(), row, col),
                     static_cast<size_t>(PQgetlength(r_.get(), row, col)));
}

uint64_t Rows::affected() const {
  const char* n = PQcmdTuples(r_.get());
  return (n == nullptr || *n == '\0') ? 0 : std::strtoull(n, nullptr, 10);
}

// --- Conn --------------------------------------------------------------------------

std::unique_ptr<Conn> Conn::connect(const std::string& conninfo) { return connect(conninfo, {}); }

std::unique_ptr<Conn> Conn::connect(const std::string& conninfo,
                                    const std::vector<std::pair<std::string, std::string>>& extra) {
  // dbname first and expanded: a URL or key=value string; later keywords override it.
  std::vector<const char*> keys{"dbname"}, values{conninfo.c_str()};
  for (const auto& [k, v] : extra) {
    keys.push_back(k.c_str());
    values.push_back(v.c_str());
  }
  keys.push_back(nullptr);
  values.push_back(nullptr);
  PGconn* c = PQconnectdbParams(keys.data(), values.data(), /*expand_dbname=*/1);
  if (c == nullptr) throw Failure{"", "out of memory", true};
  if (PQstatus(c) != CONNECTION_OK) {
    std::string why = libpq_text(PQerrorMessage(c));
    PQfinish(c);
    throw Failure{"", "cannot connect: " + why, true};
  }
  std::unique_ptr<Conn> conn(new Conn(c));
  if (conn->server_version() < 120000) {
    throw Failure{"",
                  "PostgreSQL " + std::to_string(conn->server_version() / 10000) +
                      " is too old: s2proxy needs 12 or newer",
                  false};
  }
  // Quiet NOTICEs ("relation already exists, skipping") and keep the
  // session's time zone out of anything we compute.
  conn->run("SET client_min_messages = warning");
  return conn;
}

Conn::~Conn() { PQfinish(c_); }

Failure Conn::failure(const PGresult* r) const {
  Failure f;
  if (r != nullptr) {
    const char* state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    if (state != nullptr) f.sqlstate = state;
    const char* msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
    f.text = msg != nullptr ? msg : PQresultErrorMessage(r);
  }
  f.text = libpq_text(f.text.empty() ? PQerrorMessage(c_) : f.text.c_str());
  f.connection_lost = PQstatus(c_) != CONNECTION_OK || f.sqlstate.rfind("08", 0) == 0 ||
                      f.sqlstate.rfind("57P", 0) == 0;
  return f;
}

Rows Conn::exec(const std::string& sql, const Params& p) {
  auto it = prepared_.find(sql);
  if (it == prepared_.end()) {
    std::string name = "s" + std::to_string(prepared_.size() + 1);
    PGresult* r = PQprepare(c_, name.c_str(), sql.c_str(), p.size(), p.types());
    if (r == nullptr || PQresultStatus(r) != PGRES_COMMAND_OK) {
      Failure f = failure(r);
      PQclear(r);
      throw f;
    }
    PQclear(r);
    it = prepared_.emplace(sql, std::move(name)).first;
  }
  const std::vector<const char*> values = p.values();
  PGresult* r = PQexecPrepared(c_, it->second.c_str(), p.size(), values.data(), p.lengths(),
                               p.formats(), /*resultFormat=*/1);
  const ExecStatusType st = r != nullptr ? PQresultStatus(r) : PGRES_FATAL_ERROR;
  if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
    Failure f = failure(r);
    PQclear(r);
    throw f;
  }
  return Rows(r);
}

void Conn::run(const std::string& sql) {
  PGresult* r = PQexec(c_, sql.c_str());
  const ExecStatusType st = r != nullptr ? PQresultStatus(r) : PGRES_FATAL_ERROR;
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
    Failure f = failure(r);
    PQclear(r);
    throw f;
  }
  PQclear(r);
}

}  // namespace s2::store::pg
