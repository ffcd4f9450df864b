// The Store interface: an account's chat-history mirror and its side records.
//
// ARCHITECTURE.md §5/§9: one ordered history per account plus the records the
// proxy needs to survive a restart (credentials, FAST tokens, devices, the sync
// cursor, the outbox). The embedded implementation is LMDB (mirror.h); the
// interface is kept narrow enough that a PostgreSQL implementation is "one table
// per database, keyed by account", not a redesign.
//
// Shape of the interface:
// * Reads are synchronous and may run on any thread; each sees one consistent
//   snapshot.
// * Writes are data (WriteOp), grouped into a WriteBatch that is applied
//   atomically: an append and the sync cursor that covers it, or an append and
//   its outbox entry, commit together or not at all. submit() is asynchronous;
//   the callback runs only after the batch is durable (group commit, see
//   writer.h), which is what lets the proxy send an SM <a/> from it.
// * Errors are values (Error, Result<T>), never exceptions: a peer can cause
//   some of them (an unknown MAM id is item-not-found).
// * The store never parses XML: stanzas are opaque bytes and everything the
//   store indexes (peer, ids, fingerprint, timestamp) is supplied by the caller.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

namespace s2::store {

using AccountNo = uint32_t;                 // never reused, 0 = none
using ArchiveId = uint64_t;                 // per account, dense and monotonic from 1, 0 = none
using TokenHash = std::array<uint8_t, 32>;  // SHA-256 of a FAST token

enum class Errc : uint8_t {
  kItemNotFound,     // MAM: an after/before/ids archive id that is not in the archive
  kNotFound,         // the account (or record) a write refers to does not exist
  kInvalidArgument,  // malformed input (e.g. a key component the schema cannot hold)
  kMapFull,          // the map reached max_map_size
  kNoSpace,          // the filesystem is full (ENOSPC, EDQUOT)
  kCorrupt,          // a stored value did not decode
  kIo,               // any other storage error
  kClosed,           // submitted after the store was stopped
  kFenced,           // this node does not own the account (any more): PostgreSQL leases
};
std::string_view errc_name(Errc c);

struct Error {
  Errc code = Errc::kIo;
  std::string text{};
};

// Either a value or an Error. Deliberately tiny (std::expected is C++23).
template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}      // NOLINT(google-explicit-constructor)
  Result(Error error) : v_(std::move(error)) {}  // NOLINT(google-explicit-constructor)
  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() { return std::get<0>(v_); }
  const T& value() const { return std::get<0>(v_); }
  T& operator*() { return value(); }
  const T& operator*() const { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

// ---------------------------------------------------------------------------
// Value types

enum class AccountState : uint8_t { kActive = 0, kDisabled = 1 };

struct AccountInfo {
  AccountNo account = 0;
  std::string bare_jid{};
  AccountState state = AccountState::kActive;
  int64_t created_ms = 0;
  uint32_t settings = 0;  // acctset bits
};

// Per-account settings the operator (or the user, through the operator) chose;
// bits the store keeps and never interprets. Neither bit of a pair: the
// daemon's default applies.
namespace acctset {
inline constexpr uint32_t kPushBodyOn = 1u << 0;   // XEP-0357 publishes may carry the body
inline constexpr uint32_t kPushBodyOff = 1u << 1;  // never, whatever --push-body says
}  // namespace acctset

enum class Direction : uint8_t { kIncoming = 0, kOutgoing = 1 };  // seen from the account

// Message flag bits. The store stores and updates them but never interprets
// them; they are defined here so hub, MAM and push agree on one layout.
namespace msgflag {
inline constexpr uint32_t kPersistent = 1u << 0;
inline constexpr uint32_t kUrgent = 1u << 1;
inline constexpr uint32_t kError = 1u << 2;  // an error bounce (delivered to every device)
inline constexpr uint32_t kGroupchat = 1u << 3;
inline constexpr uint32_t kReceiptRequested = 1u << 4;  // XEP-0184 <request/>
inline constexpr uint32_t kReceiptReceived = 1u << 5;   // the peer's receipt arrived
inline constexpr uint32_t kReceiptSent = 1u << 6;       // first device acked; receipt sent upstream
inline constexpr uint32_t kDisplayed = 1u << 7;         // XEP-0333 displayed marker sent
inline constexpr uint32_t kRetracted = 1u << 8;         // XEP-0424 tombstone
}  // namespace msgflag

// What the caller archives. The three dedup keys are tried in ARCHITECTURE §4
// order: upstream stanza-id, then origin-id (per peer), then the fingerprint
// (only within MirrorOptions::fingerprint_window_ms). Empty = absent.
struct MessageRecord {
  int64_t timestamp_ms = 0;  // when the message was originally received (MAM <delay stamp>)
  Direction direction = Direction::kIncoming;
  std::string peer_bare{};  // the other party's bare JID (the account itself for self-messages)
  uint32_t flags = 0;       // msgflag bits
  std::string upstream_stanza_id{};  // <stanza-id by=account> set by upstream
  std::string origin_id{};           // XEP-0359 origin-id
  std::string id{};                  // the 'id' attribute: indexed for references, never dedup
  std::string fingerprint{};         // caller-built hash of (from, to, type, id, body)
  std::string stanza{};              // opaque serialised stanza
};

struct StoredMessage {
  ArchiveId archive_id = 0;
  // Archive order time: max(timestamp_ms, previous archive_ms). It never goes
  // backwards in archive order, which is what makes MAM start/end an index seek.
  int64_t archive_ms = 0;
  MessageRecord record{};
};

// Which by_ref index a reference resolves against (ARCHITECTURE §4, PROTOCOLS §6).
enum class RefKind : uint8_t {
  kOriginId = 'o',    // origin-id, either direction (survives MUC reflection)
  kSentId = 's',      // 'id' of a message the account sent (receipts, markers from the peer)
  kReceivedId = 'r',  // 'id' of a message the peer sent (corrections/retractions by the peer)
  // A device's resend key (peer = the device's resource): a message the
  // device sent whose XEP-0198 ack it may not have seen. A client resends
  // such a message in its next session; the key recognises that copy.
  kResendKey = 'k',
};

struct FastToken {
  AccountNo account = 0;
  std::string user_agent_id{};
  std::string mechanism{};  // e.g. "HT-SHA-256-NONE"
  int64_t expiry_ms = 0;
  int64_t created_ms = 0;
  uint32_t flags = 0;       // opaque to the store
  std::string nonce{};      // opaque: what the token is derived from (never the token itself)
  uint64_t last_count = 0;  // XEP-0484 replay protection: last accepted `count`
  bool expired(int64_t now_ms) const { return now_ms >= expiry_ms; }
};

struct DeviceRecord {
  std::string device_id{};
  ArchiveId last_delivered = 0;
  std::string sm_state{};  // opaque blob (XEP-0198 resumption state)
  std::string push{};      // opaque blob (XEP-0357 registration)
  uint8_t csi_state = 0;
  int64_t last_seen_ms = 0;
};

// A hole in the mirror: the upstream could not replay what happened between
// from_ms and to_ms (expired archive); it sits after archive id `after_id`.
struct Gap {
  ArchiveId after_id = 0;  // set by the store: the account's last archive id at commit
  int64_t from_ms = 0;
  int64_t to_ms = 0;
  std::string reason{};
};

// A device-sent stanza waiting for the upstream's SM ack.
struct OutboxItem {
  std::string route{};  // which upstream session sends it (device link resource; opaque)
  std::string stanza{};
  int64_t created_ms = 0;
};
struct OutboxEntry {
  uint64_t seq = 0;          // per account, monotonic, never reused
  ArchiveId archive_id = 0;  // 0 for stanzas that are not archived
  OutboxItem item{};
};

struct ArchiveBounds {  // MAM metadata (XEP-0313 §6); all zero when the archive is empty
  ArchiveId first_id = 0;
  int64_t first_ms = 0;
  ArchiveId last_id = 0;
  int64_t last_ms = 0;
};

// A MAM query after the MAM module has parsed the form and RSM set. after_id /
// before_id are exclusive bounds and carry either the extended after-id/
// before-id fields or RSM <after>/<before> (the caller never puts both kinds in
// one query, PROTOCOLS §5). Ids are rendered archive ids (archive_id.h).
struct MamQuery {
  std::string with{};                 // bare JID, empty = everything
  std::optional<int64_t> start_ms{};  // inclusive, on archive_ms
  std::optional<int64_t> end_ms{};    // inclusive, on archive_ms
  std::optional<std::string> after_id{};
  std::optional<std::string> before_id{};
  std::vector<std::string> ids{};  // 'ids' field: only these (other filters still apply)
  size_t max = 50;                 // page size; 0 asks only for the count
  bool from_end = false;           // RSM <before>: the page adjacent to the upper bound
};

struct MamPage {
  std::vector<StoredMessage> items{};  // always ascending archive order (flip-page is the caller's)
  bool complete = false;               // nothing further in the paging direction
  std::string first, last;             // rendered ids of items.front()/back(), "" when empty
  // Exact total of items matching the query and its index of items.front();
  // present only when cheap: always without `with` (ids are dense, so a range
  // is a subtraction), with `ids` (the list is the set), and for `with`
  // queries only when this page reached both ends of the range.
  std::optional<uint64_t> count{};
  std::optional<uint64_t> first_index{};
};

// ---------------------------------------------------------------------------
// Writes

namespace op {
struct CreateAccount {  // get-or-create; OpResult::account
  std::string bare_jid{};
};
struct ForgetAccount {  // removes every record of the account; OpResult::count
  std::string bare_jid{};
};
struct PutCredentials {
  AccountNo account = 0;
  std::string sealed{};  // opaque vault blob
};
struct DeleteCredentials {
  AccountNo account = 0;
};
struct PutFastToken {
  TokenHash hash{};
  FastToken token{};
};
struct DeleteFastToken {
  TokenHash hash{};
};
struct DeleteFastTokens {  // all tokens of one account; OpResult::count
  AccountNo account = 0;
};
struct ExpireFastTokens {  // tokens with expiry_ms <= now_ms; OpResult::count
  int64_t now_ms = 0;
};
struct Append {  // OpResult::archive_id, duplicate, matched, outbox_seq
  AccountNo account = 0;
  MessageRecord message{};
  std::optional<OutboxItem> outbox{};  // enqueued in the same txn unless the append is a duplicate
  // Indexed as by_ref(resend_scope, kResendKey, resend_key) unless the append
  // is a duplicate; empty = none. Never a dedup key of the append itself.
  std::string resend_scope{};
  std::string resend_key{};
};
struct SetAccountSettings {  // settings = (settings & ~clear) | set; OpResult::old_flags
  AccountNo account = 0;
  uint32_t set = 0;
  uint32_t clear = 0;
};
struct SetMessageFlags {  // flags = (flags & ~clear) | set; OpResult::old_flags
  AccountNo account = 0;
  ArchiveId archive_id = 0;
  uint32_t set = 0;
  uint32_t clear = 0;
};
struct SetSyncCursor {  // put it in the batch of the stanzas it covers
  AccountNo account = 0;
  std::string upstream_id{};
};
// Retention (issue 13 item 4): removes the account's oldest messages, with
// every index entry that points at them, while they are older than before_ms
// (by archive time) or more than keep_last remain; at most max_batch per
// batch, so a sweep is many small transactions between appends. The archive
// stays dense (only a prefix goes). OpResult::count = messages removed.
struct PruneArchive {
  AccountNo account = 0;
  int64_t before_ms = 0;   // 0: no age limit
  uint64_t keep_last = 0;  // 0: no count limit
  uint32_t max_batch = 500;
};
struct AddGap {  // gap.after_id is assigned by the store
  AccountNo account = 0;
  Gap gap{};
};
struct UpdateDevice {  // creates the record if absent; unset fields keep their value
  AccountNo account = 0;
  std::string device_id{};
  std::optional<ArchiveId> last_delivered{};
  std::optional<std::string> sm_state{};
  std::optional<std::string> push{};
  std::optional<uint8_t> csi_state{};
  std::optional<int64_t> last_seen_ms{};
};
struct DeleteDevice {
  AccountNo account = 0;
  std::string device_id{};
};
struct EnqueueOutbox {  // a stanza that is not archived; OpResult::outbox_seq
  AccountNo account = 0;
  OutboxItem item{};
};
struct RemoveOutbox {  // the upstream acked it; OpResult::count (0 or 1)
  AccountNo account = 0;
  uint64_t seq = 0;
};
struct ClearResendKeys {  // the device saw these acked; OpResult::count (how many existed)
  AccountNo account = 0;
  std::string scope{};
  std::vector<std::string> keys{};
};
}  // namespace op

using WriteOp =
    std::variant<op::CreateAccount, op::ForgetAccount, op::PutCredentials, op::DeleteCredentials,
                 op::PutFastToken, op::DeleteFastToken, op::DeleteFastTokens, op::ExpireFastTokens,
                 op::Append, op::SetMessageFlags, op::SetAccountSettings, op::SetSyncCursor,
                 op::AddGap, op::UpdateDevice, op::DeleteDevice, op::EnqueueOutbox,
                 op::RemoveOutbox, op::ClearResendKeys, op::PruneArchive>;

// Applied atomically, in order.
using WriteBatch = std::vector<WriteOp>;

enum class DedupMatch : uint8_t { kNone, kUpstreamId, kOriginId, kFingerprint };

// Per-op outcome; which fields are meaningful is written next to each op.
struct OpResult {
  AccountNo account = 0;
  ArchiveId archive_id = 0;  // the existing id when duplicate
  bool duplicate = false;
  DedupMatch matched = DedupMatch::kNone;
  uint64_t outbox_seq = 0;  // 0 = nothing enqueued
  uint64_t count = 0;
  uint32_t old_flags = 0;
};

// error set ⇒ nothing of the batch was written and `ops` is empty.
struct WriteResult {
  std::optional<Error> error{};
  std::vector<OpResult> ops{};
  bool ok() const { return !error.has_value(); }
};

using WriteCallback = std::function<void(WriteResult)>;

// ---------------------------------------------------------------------------

// The resend keys one device scope holds in the index, read in one go. A
// new session asks this set about each message it sends instead of one
// resolve_ref per message: a round trip each on PostgreSQL, on the daemon's
// loop, during a client's burst. Keys are held as the index encodes them
// (schema::put_component), so a long key matches exactly as the store's.
class ResendKeys {
 public:
  std::optional<ArchiveId> find(std::string_view key) const;
  void insert(std::string_view key, ArchiveId id);
  void erase(std::string_view key);
  // For stores: an index key's last component, already encoded.
  void insert_encoded(std::string component, ArchiveId id);
  size_t size() const { return by_component_.size(); }

 private:
  std::unordered_map<std::string, ArchiveId> by_component_;
};

class Store {
 public:
  virtual ~Store() = default;

  // Writes: asynchronous; `done` runs after the batch is durable (or failed),
  // on the executor given at open.
  virtual void submit(WriteBatch batch, WriteCallback done) = 0;
  // A write nobody waits for (delivery cursors): the store may hold it
  // back, briefly, to commit it with the next write someone does wait for (writer.h). Ordered
  // with the account's other writes as submit() is.
  virtual void submit_deferrable(WriteBatch batch, WriteCallback done) {
    submit(std::move(batch), std::move(done));
  }
  // `done` runs once everything submitted before it has committed, on every writer the store
  // has; deferrable writes are committed now. For a clean stop (Server::flush_store).
  virtual void flush(WriteCallback done) { submit({}, std::move(done)); }

  // Reads: synchronous, any thread, one snapshot per call.
  virtual Result<std::optional<AccountInfo>> find_account(std::string_view bare_jid) const = 0;
  virtual Result<std::vector<AccountInfo>> list_accounts() const = 0;
  virtual Result<std::optional<std::string>> get_credentials(AccountNo a) const = 0;
  virtual Result<std::optional<FastToken>> get_fast_token(const TokenHash& hash) const = 0;

  virtual Result<std::optional<StoredMessage>> get_message(AccountNo a, ArchiveId id) const = 0;
  virtual Result<std::optional<ArchiveId>> find_upstream_id(AccountNo a,
                                                            std::string_view upstream_id) const = 0;
  virtual Result<std::optional<ArchiveId>> resolve_ref(AccountNo a, std::string_view peer_bare,
                                                       RefKind kind,
                                                       std::string_view ref) const = 0;
  // Every RefKind::kResendKey entry of one scope (a device's resource).
  virtual Result<ResendKeys> list_resend_keys(AccountNo a, std::string_view scope) const = 0;
  virtual Result<ArchiveBounds> bounds(AccountNo a) const = 0;
  virtual Result<MamPage> query(AccountNo a, const MamQuery& q) const = 0;

  virtual Result<std::optional<std::string>> get_sync_cursor(AccountNo a) const = 0;
  virtual Result<std::vector<Gap>> list_gaps(AccountNo a) const = 0;

  virtual Result<std::optional<DeviceRecord>> get_device(AccountNo a,
                                                         std::string_view device_id) const = 0;
  virtual Result<std::vector<DeviceRecord>> list_devices(AccountNo a) const = 0;

  // Pending outbox entries with seq > after_seq, in order, at most max.
  virtual Result<std::vector<OutboxEntry>> list_outbox(AccountNo a, uint64_t after_seq,
                                                       size_t max) const = 0;
};

}  // namespace s2::store
