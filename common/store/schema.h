// The mirror's on-disk layout: key builders and value codecs (schema v1).
//
// All integers in keys are big-endian so LMDB's bytewise order is numeric
// order; signed times are stored with the sign bit flipped for the same reason.
// A = account number (u32), id = archive id (u64), ms = archive_ms (i64).
// Variable-length strings inside keys are "components" (put_component()) so
// that one peer's keys can never fall inside another peer's range.
//
// Invariant: archive ids are dense per account (1..last, nothing is deleted
// one message at a time; a retraction is a flag). MAM counts and time bounds
// rely on it; a future retention sweep must remove whole prefixes only.
//
//   db              key                                  value
//   meta            "schema" | "next_account"            u32
//   accounts        component(bare JID)                  A
//   account_info    A                                    AccountInfoValue (jid, state, created,
//                                                        next id, next outbox seq, last ms)
//   credentials     A                                    sealed blob (opaque)
//   fast_tokens     SHA-256(token) (32 bytes)            FastToken
//   messages        A·id                                 message value (below)
//   by_upstream_id  A·'S'·component(stanza-id)          id·timestamp_ms
//                   A·'F'·component(fingerprint)         id·timestamp_ms
//   by_peer         A·component(peer)·id                 ""  (MAM `with`)
//   by_ref          A·component(peer)·kind·component(ref) id (kind = RefKind: 'o','s','r','k';
//                                                        no 's'/'r' entry when id == origin-id)
//   devices         A·component(device id)               DeviceRecord
//   sync            A·0x00                               last upstream stanza-id
//                   A·0x01·id                            Gap (after archive id `id`)
//   outbox          A·seq                                id·created·route·stanza
//
// Deviations from ARCHITECTURE §5, and why: `accounts` only maps the name to
// the number and the record lives in `account_info` keyed by number, because
// every other database is keyed by number and the per-account counters change
// on every append. `outbox` and `meta` are added (outbox per the durability
// rules). There is no time index: archive_ms is monotonic in the (dense)
// archive-id order, so MAM start/end binary-search `messages` instead, and an
// append pays no extra write for it.
//
// Message value: u8 version · u8 direction · u32 flags (fixed offset 2, so a
// flag update is a patch) · i64 timestamp_ms · i64 archive_ms · then varint-
// length strings peer, upstream stanza-id, origin-id, id, fingerprint · then
// the stanza bytes to the end.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/store/lmdb.h"
#include "common/store/store.h"

namespace s2::store::schema {

inline constexpr uint32_t kSchemaVersion = 1;

// The named databases; every per-account one is prefixed by A.
struct Dbs {
  lmdb::Dbi meta, accounts, account_info, credentials, fast_tokens, messages, by_upstream_id,
      by_peer, by_ref, devices, sync, outbox;
  // Databases whose keys start with the account number (ForgetAccount clears them).
  std::vector<lmdb::Dbi> per_account() const;
  std::vector<lmdb::Dbi> all() const;
};
Dbs open_dbs(lmdb::Txn& txn);

// Thrown by decoders on a malformed value; Mirror maps it to Errc::kCorrupt.
struct CorruptError {
  std::string what;
};

// A key under construction. LMDB keys are at most 511 bytes, so they are
// built on the stack: an append builds half a dozen keys, and a heap
// allocation each showed up in the profile.
class Key {
 public:
  static constexpr size_t kMax = 511;
  void push_back(char c) {
    reserve(1);
    b_[n_++] = c;
  }
  void append(std::string_view s) {
    reserve(s.size());
    std::memcpy(b_.data() + n_, s.data(), s.size());
    n_ += s.size();
  }
  size_t size() const { return n_; }
  bool empty() const { return n_ == 0; }
  operator std::string_view() const { return {b_.data(), n_}; }  // NOLINT: keys are views

 private:
  void reserve(size_t more) const {
    // Unreachable: components are capped (put_component), so keys stay short.
    if (n_ + more > kMax) throw CorruptError{"key too long"};
  }
  std::array<char, kMax> b_;
  size_t n_ = 0;
};

// --- integers (Out is std::string for values, Key for keys) -------------------
template <class Out>
void put_u32(Out& out, uint32_t v) {
  for (int i = 3; i >= 0; --i) out.push_back(static_cast<char>(v >> (8 * i)));
}
template <class Out>
void put_u64(Out& out, uint64_t v) {
  for (int i = 7; i >= 0; --i) out.push_back(static_cast<char>(v >> (8 * i)));
}
template <class Out>
void put_i64(Out& out, int64_t v) {  // sign bit flipped: sorts numerically
  put_u64(out, static_cast<uint64_t>(v) ^ (uint64_t{1} << 63));
}
uint32_t get_u32(std::string_view s, size_t at);
uint64_t get_u64(std::string_view s, size_t at);
int64_t get_i64(std::string_view s, size_t at);

// --- keys -------------------------------------------------------------------
// Strings up to kMaxInlineComponent bytes are stored as u8 length + bytes.
// Longer ones (hostile or absurd JIDs/ids; LMDB keys max out at 511 bytes)
// become 0xFF + their first 128 bytes + a 128-bit hash of the whole. Equal
// inputs give equal components; distinct long inputs collide only if both
// share 128 bytes of prefix and the hash, which only the owner of both
// strings (the same peer) could arrange.
inline constexpr size_t kMaxInlineComponent = 160;
void put_component(Key& out, std::string_view s);

Key account_key(AccountNo a);
Key account_name_key(std::string_view bare_jid);  // `accounts`
Key message_key(AccountNo a, ArchiveId id);
Key upstream_key(AccountNo a, char kind, std::string_view value);  // 'S' or 'F'
Key peer_prefix(AccountNo a, std::string_view peer);
Key peer_key(AccountNo a, std::string_view peer, ArchiveId id);
// The prefix every ref_key of (account, peer, kind) starts with.
Key ref_prefix(AccountNo a, std::string_view peer, RefKind kind);
Key ref_key(AccountNo a, std::string_view peer, RefKind kind, std::string_view ref);
Key device_key(AccountNo a, std::string_view device_id);
Key sync_cursor_key(AccountNo a);
Key gap_prefix(AccountNo a);
Key gap_key(AccountNo a, ArchiveId after);
Key outbox_key(AccountNo a, uint64_t seq);
std::string_view token_key(const TokenHash& h);

// The trailing u64 of a key (archive id or seq).
uint64_t key_suffix_u64(std::string_view key);
bool has_prefix(std::string_view key, std::string_view prefix);

// --- values -----------------------------------------------------------------
struct AccountInfoValue {
  std::string bare_jid;
  AccountState state = AccountState::kActive;
  int64_t created_ms = 0;
  ArchiveId next_archive_id = 1;
  uint64_t next_outbox_seq = 1;
  int64_t last_archive_ms = std::numeric_limits<int64_t>::min();
  uint32_t settings = 0;  // appended later: absent in records written before (= 0)
};
std::string encode_account_info(const AccountInfoValue& v);
AccountInfoValue decode_account_info(std::string_view s);

std::string encode_message(const MessageRecord& m, int64_t archive_ms);
StoredMessage decode_message(ArchiveId id, std::string_view s);
inline constexpr size_t kMessageFlagsOffset = 2;
int64_t message_archive_ms(std::string_view s);  // without copying the stanza

std::string encode_id_ms(ArchiveId id, int64_t ms);
std::pair<ArchiveId, int64_t> decode_id_ms(std::string_view s);

std::string encode_fast_token(const FastToken& t);
FastToken decode_fast_token(std::string_view s);

std::string encode_device(const DeviceRecord& d);
DeviceRecord decode_device(std::string_view s);

std::string encode_gap(const Gap& g);
Gap decode_gap(ArchiveId after, std::string_view s);

std::string encode_outbox(ArchiveId id, const OutboxItem& item);
OutboxEntry decode_outbox(uint64_t seq, std::string_view s);

}  // namespace s2::store::schema
