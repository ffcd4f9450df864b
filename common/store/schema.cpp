// Key builders and value codecs; the layout is documented in schema.h.
//
// Values are small hand-rolled records (fixed-width integers, varint-length
// strings) rather than a serialisation library: the formats are few, the
// decoder is bounds-checked (a truncated value throws CorruptError instead of
// reading past the mapping), and a version byte leads every record that is
// likely to grow.
#include "common/store/schema.h"

#include <limits>

namespace s2::store::schema {
namespace {

constexpr uint8_t kValueVersion = 1;

void put_u8(std::string& out, uint8_t v) { out.push_back(static_cast<char>(v)); }

void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7F) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

void put_str(std::string& out, std::string_view s) {
  put_varint(out, s.size());
  out.append(s);
}

// Bounds-checked sequential reader over one value.
class Reader {
 public:
  explicit Reader(std::string_view s) : s_(s) {}
  void need(size_t n) const {
    if (s_.size() - pos_ < n) throw CorruptError{"truncated value"};
  }
  uint8_t u8() {
    need(1);
    return static_cast<uint8_t>(s_[pos_++]);
  }
  uint32_t u32() {
    need(4);
    pos_ += 4;
    return get_u32(s_, pos_ - 4);
  }
  uint64_t u64() {
    need(8);
    pos_ += 8;
    return get_u64(s_, pos_ - 8);
  }
  int64_t i64() {
    need(8);
    pos_ += 8;
    return get_i64(s_, pos_ - 8);
  }
  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      uint8_t b = u8();
      v |= static_cast<uint64_t>(b & 0x7F) << shift;
      if ((b & 0x80) == 0) return v;
    }
    throw CorruptError{"bad varint"};
  }
  std::string str() {
    uint64_t n = varint();
    need(n);
    std::string out(s_.substr(pos_, n));
    pos_ += n;
    return out;
  }
  std::string rest() {
    std::string out(s_.substr(pos_));
    pos_ = s_.size();
    return out;
  }
  bool done() const { return pos_ == s_.size(); }
  void version() {
    if (u8() != kValueVersion) throw CorruptError{"unknown value version"};
  }

 private:
  std::string_view s_;
  size_t pos_ = 0;
};

// 64-bit lane of the long-component hash: FNV-1a with a seed, finished with
// the MurmurHash3 fmix64 avalanche. Two seeds give 128 bits. Not
// cryptographic; see put_component() for why that is enough.
uint64_t hash_lane(std::string_view s, uint64_t seed) {
  uint64_t h = seed ^ (s.size() * 0x9E3779B97F4A7C15ull);
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001B3ull;
  }
  h ^= h >> 33;
  h *= 0xFF51AFD7ED558CCDull;
  h ^= h >> 33;
  h *= 0xC4CEB9FE1A85EC53ull;
  h ^= h >> 33;
  return h;
}

Key prefixed(AccountNo a) {
  Key k;
  put_u32(k, a);
  return k;
}

}  // namespace

std::vector<lmdb::Dbi> Dbs::per_account() const {
  return {account_info, credentials, messages, by_upstream_id, by_peer,
          by_ref,       devices,     sync,     outbox};
}

std::vector<lmdb::Dbi> Dbs::all() const {
  return {meta,           accounts, account_info, credentials, fast_tokens, messages,
          by_upstream_id, by_peer,  by_ref,       devices,     sync,        outbox};
}

Dbs open_dbs(lmdb::Txn& txn) {
  Dbs d;
  d.meta = lmdb::Dbi::open(txn, "meta");
  d.accounts = lmdb::Dbi::open(txn, "accounts");
  d.account_info = lmdb::Dbi::open(txn, "account_info");
  d.credentials = lmdb::Dbi::open(txn, "credentials");
  d.fast_tokens = lmdb::Dbi::open(txn, "fast_tokens");
  d.messages = lmdb::Dbi::open(txn, "messages");
  d.by_upstream_id = lmdb::Dbi::open(txn, "by_upstream_id");
  d.by_peer = lmdb::Dbi::open(txn, "by_peer");
  d.by_ref = lmdb::Dbi::open(txn, "by_ref");
  d.devices = lmdb::Dbi::open(txn, "devices");
  d.sync = lmdb::Dbi::open(txn, "sync");
  d.outbox = lmdb::Dbi::open(txn, "outbox");
  return d;
}

// --- integers ---------------------------------------------------------------

uint32_t get_u32(std::string_view s, size_t at) {
  uint32_t v = 0;
  for (size_t i = 0; i < 4; ++i) v = (v << 8) | static_cast<uint8_t>(s[at + i]);
  return v;
}
uint64_t get_u64(std::string_view s, size_t at) {
  uint64_t v = 0;
  for (size_t i = 0; i < 8; ++i) v = (v << 8) | static_cast<uint8_t>(s[at + i]);
  return v;
}
int64_t get_i64(std::string_view s, size_t at) {
  return static_cast<int64_t>(get_u64(s, at) ^ (uint64_t{1} << 63));
}

// --- keys -------------------------------------------------------------------

void put_component(Key& out, std::string_view s) {
  if (s.size() <= kMaxInlineComponent) {
    out.push_back(static_cast<char>(s.size()));
    out.append(s);
    return;
  }
  out.push_back(static_cast<char>(0xFF));
  out.append(s.substr(0, 128));
  put_u64(out, hash_lane(s, 0x243F6A8885A308D3ull));
  put_u64(out, hash_lane(s, 0x13198A2E03707344ull));
}

Key account_key(AccountNo a) { return prefixed(a); }

Key account_name_key(std::string_view bare_jid) {
  Key k;
  put_component(k, bare_jid);
  return k;
}

Key message_key(AccountNo a, ArchiveId id) {
  Key k = prefixed(a);
  put_u64(k, id);
  return k;
}

Key upstream_key(AccountNo a, char kind, std::string_view value) {
  Key k = prefixed(a);
  k.push_back(kind);
  put_component(k, value);
  return k;
}

Key peer_prefix(AccountNo a, std::string_view peer) {
  Key k = prefixed(a);
  put_component(k, peer);
  return k;
}

Key peer_key(AccountNo a, std::string_view peer, ArchiveId id) {
  Key k = peer_prefix(a, peer);
  put_u64(k, id);
  return k;
}

Key ref_prefix(AccountNo a, std::string_view peer, RefKind kind) {
  Key k = peer_prefix(a, peer);
  k.push_back(static_cast<char>(kind));
  return k;
}

Key ref_key(AccountNo a, std::string_view peer, RefKind kind, std::string_view ref) {
  Key k = ref_prefix(a, peer, kind);
  put_component(k, ref);
  return k;
}

Key device_key(AccountNo a, std::string_view device_id) {
  Key k = prefixed(a);
  put_component(k, device_id);
  return k;
}

Key sync_cursor_key(AccountNo a) {
  Key k = prefixed(a);
  k.push_back(0x00);
  return k;
}

Key gap_prefix(AccountNo a) {
  Key k = prefixed(a);
  k.push_back(0x01);
  return k;
}

Key gap_key(AccountNo a, ArchiveId after) {
  Key k = gap_prefix(a);
  put_u64(k, after);
  return k;
}

Key outbox_key(AccountNo a, uint64_t seq) { return message_key(a, seq); }

std::string_view token_key(const TokenHash& h) {
  return {reinterpret_cast<const char*>(h.data()), h.size()};
}

uint64_t key_suffix_u64(std::string_view key) {
  if (key.size() < 8) throw CorruptError{"short key"};
  return get_u64(key, key.size() - 8);
}

bool has_prefix(std::string_view key, std::string_view prefix) {
  return key.substr(0, prefix.size()) == prefix;
}

// --- values -----------------------------------------------------------------

std::string encode_account_info(const AccountInfoValue& v) {
  std::string s;
  put_u8(s, kValueVersion);
  put_u8(s, static_cast<uint8_t>(v.state));
  put_i64(s, v.created_ms);
  put_u64(s, v.next_archive_id);
  put_u64(s, v.next_outbox_seq);
  put_i64(s, v.last_archive_ms);
  put_str(s, v.bare_jid);
  put_u32(s, v.settings);
  return s;
}

AccountInfoValue decode_account_info(std::string_view s) {
  Reader r(s);
  r.version();
  AccountInfoValue v;
  v.state = static_cast<AccountState>(r.u8());
  v.created_ms = r.i64();
  v.next_archive_id = r.u64();
  v.next_outbox_seq = r.u64();
  v.last_archive_ms = r.i64();
  v.bare_jid = r.str();
  if (!r.done()) v.settings = r.u32();
  return v;
}

std::string encode_message(const MessageRecord& m, int64_t archive_ms) {
  std::string s;
  s.reserve(32 + m.peer_bare.size() + m.upstream_stanza_id.size() + m.origin_id.size() +
            m.id.size() + m.fingerprint.size() + m.stanza.size());
  put_u8(s, kValueVersion);
  put_u8(s, static_cast<uint8_t>(m.direction));
  put_u32(s, m.flags);  // at kMessageFlagsOffset
  put_i64(s, m.timestamp_ms);
  put_i64(s, archive_ms);
  put_str(s, m.peer_bare);
  put_str(s, m.upstream_stanza_id);
  put_str(s, m.origin_id);
  put_str(s, m.id);
  put_str(s, m.fingerprint);
  s.append(m.stanza);
  return s;
}

StoredMessage decode_message(ArchiveId id, std::string_view s) {
  Reader r(s);
  r.version();
  StoredMessage out;
  out.archive_id = id;
  MessageRecord& m = out.record;
  m.direction = static_cast<Direction>(r.u8());
  m.flags = r.u32();
  m.timestamp_ms = r.i64();
  out.archive_ms = r.i64();
  m.peer_bare = r.str();
  m.upstream_stanza_id = r.str();
  m.origin_id = r.str();
  m.id = r.str();
  m.fingerprint = r.str();
  m.stanza = r.rest();
  return out;
}

int64_t message_archive_ms(std::string_view s) {
  constexpr size_t kAt = 1 + 1 + 4 + 8;  // version, direction, flags, timestamp_ms
  if (s.size() < kAt + 8 || static_cast<uint8_t>(s[0]) != kValueVersion) {
    throw CorruptError{"bad message value"};
  }
  return get_i64(s, kAt);
}

std::string encode_id_ms(ArchiveId id, int64_t ms) {
  std::string s;
  put_u64(s, id);
  put_i64(s, ms);
  return s;
}

std::pair<ArchiveId, int64_t> decode_id_ms(std::string_view s) {
  Reader r(s);
  ArchiveId id = r.u64();
  return {id, r.i64()};
}

std::string encode_fast_token(const FastToken& t) {
  std::string s;
  put_u8(s, kValueVersion);
  put_u32(s, t.account);
  put_i64(s, t.expiry_ms);
  put_i64(s, t.created_ms);
  put_u32(s, t.flags);
  put_str(s, t.user_agent_id);
  put_str(s, t.mechanism);
  put_str(s, t.nonce);
  put_i64(s, static_cast<int64_t>(t.last_count));
  return s;
}

FastToken decode_fast_token(std::string_view s) {
  Reader r(s);
  r.version();
  FastToken t;
  t.account = r.u32();
  t.expiry_ms = r.i64();
  t.created_ms = r.i64();
  t.flags = r.u32();
  t.user_agent_id = r.str();
  t.mechanism = r.str();
  t.nonce = r.str();
  t.last_count = static_cast<uint64_t>(r.i64());
  return t;
}

std::string encode_device(const DeviceRecord& d) {
  std::string s;
  put_u8(s, kValueVersion);
  put_u64(s, d.last_delivered);
  put_u8(s, d.csi_state);
  put_i64(s, d.last_seen_ms);
  put_str(s, d.device_id);
  put_str(s, d.sm_state);
  put_str(s, d.push);
  return s;
}

DeviceRecord decode_device(std::string_view s) {
  Reader r(s);
  r.version();
  DeviceRecord d;
  d.last_delivered = r.u64();
  d.csi_state = r.u8();
  d.last_seen_ms = r.i64();
  d.device_id = r.str();
  d.sm_state = r.str();
  d.push = r.str();
  return d;
}

std::string encode_gap(const Gap& g) {
  std::string s;
  put_u8(s, kValueVersion);
  put_i64(s, g.from_ms);
  put_i64(s, g.to_ms);
  put_str(s, g.reason);
  return s;
}

Gap decode_gap(ArchiveId after, std::string_view s) {
  Reader r(s);
  r.version();
  Gap g;
  g.after_id = after;
  g.from_ms = r.i64();
  g.to_ms = r.i64();
  g.reason = r.str();
  return g;
}

std::string encode_outbox(ArchiveId id, const OutboxItem& item) {
  std::string s;
  put_u8(s, kValueVersion);
  put_u64(s, id);
  put_i64(s, item.created_ms);
  put_str(s, item.route);
  s.append(item.stanza);
  return s;
}

OutboxEntry decode_outbox(uint64_t seq, std::string_view s) {
  Reader r(s);
  r.version();
  OutboxEntry e;
  e.seq = seq;
  e.archive_id = r.u64();
  e.item.created_ms = r.i64();
  e.item.route = r.str();
  e.item.stanza = r.rest();
  return e;
}

}  // namespace s2::store::schema
