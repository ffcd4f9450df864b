// bench_mirror: what the mirror costs the proxy.
//
// (a) Append throughput through the MirrorWriter with fsync on: a "loop"
//     thread (this one) keeps up to --inflight appends outstanding, each a
//     300-byte stanza with a random (UUID) upstream stanza-id and origin-id and
//     an id equal to the origin-id (--id-eq-origin 0 for a separate one), so
//     every index is written, spread over --accounts accounts and --peers peers;
//     completions come back through a queue executor, as they would through
//     uv_async_send. Reported: appends/s, batch sizes, commit latency (the
//     mdb_txn_commit with its fsync), end-to-end submit→completion latency, and
//     the latency of a lone append (one in flight: one fsync each).
// (b) Catch-up read: a device that missed 10k messages pages them with MAM
//     (after-id, pages of 250) from an archive interleaved with all the other
//     accounts' traffic; also backwards (RSM before) and with a `with` filter.
//
// Prints a table; finishes in well under a minute with the defaults. The data
// dir is a fresh temp dir (or --dir) removed at the end unless --keep.
// --store CONNINFO runs the same work on the PostgreSQL store (pg_store.h)
// instead: a libpq connection string or postgresql:// URL of an empty
// database (or schema, through options=-csearch_path=…).
#include <stdlib.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <vector>

#include "common/store/mirror.h"
#include "common/store/pg_store.h"

using namespace s2::store;
using Clock = std::chrono::steady_clock;

namespace {

struct Args {
  size_t appends = 300'000;
  unsigned accounts = 100;
  unsigned peers = 20;
  size_t stanza = 300;
  size_t inflight = 65'536;
  size_t max_batch = WriterOptions{}.max_batch;
  long delay_us = WriterOptions{}.max_delay.count();
  size_t catchup = 10'000;
  size_t page = 250;
  std::string dir;
  std::string store;  // --store: PostgreSQL conninfo ("" = LMDB in --dir)
  bool keep = false;
  bool no_sync = false;
  bool id_eq_origin = true;  // what most clients do; 0 stores a separate 'id' reference
  bool seq_ids = false;      // --ids seq: time-ordered ids instead of UUIDs
};

void usage() {
  std::printf(
      "bench_mirror [--appends N] [--accounts N] [--peers N] [--stanza BYTES] [--inflight N]\n"
      "             [--max-batch N] [--delay-us US] [--catchup N] [--page N] [--dir DIR]\n"
      "             [--keep] [--no-sync] [--id-eq-origin 0|1] [--ids uuid|seq]\n"
      "             [--store POSTGRESQL_CONNINFO]\n");
}

template <class T>
std::function<bool(std::string_view)> number(T& out) {
  return [&out](std::string_view v) {
    std::string text(v);  // strtoll needs a terminator, and `end` points into it
    char* end = nullptr;
    long long n = std::strtoll(text.c_str(), &end, 10);
    out = static_cast<T>(n);
    return n >= 0 && end != nullptr && *end == '\0';
  };
}

bool parse(int argc, char** argv, Args& a) {
  const std::map<std::string_view, std::function<bool(std::string_view)>> options = {
      {"--appends", number(a.appends)},
      {"--accounts", number(a.accounts)},
      {"--peers", number(a.peers)},
      {"--stanza", number(a.stanza)},
      {"--inflight", number(a.inflight)},
      {"--max-batch", number(a.max_batch)},
      {"--delay-us", number(a.delay_us)},
      {"--catchup", number(a.catchup)},
      {"--page", number(a.page)},
      {"--id-eq-origin", number(a.id_eq_origin)},
      {"--dir",
       [&](std::string_view v) {
         a.dir = v;
         return true;
       }},
      {"--store",
       [&](std::string_view v) {
         a.store = v;
         return true;
       }},
      {"--ids",
       [&](std::string_view v) {
         a.seq_ids = v == "seq";
         return v == "seq" || v == "uuid";
       }},
  };
  for (int i = 1; i < argc; ++i) {
    std::string_view k = argv[i];
    if (k == "--keep") {
      a.keep = true;
    } else if (k == "--no-sync") {
      a.no_sync = true;
    } else if (auto it = options.find(k); it != options.end() && i + 1 < argc) {
      if (!it->second(argv[++i])) return false;
    } else {
      return false;
    }
  }
  return a.accounts > 0 && a.peers > 0 && a.inflight > 0 && a.page > 0;
}

// The daemon's executor is a queue + uv_async_send; here the main thread is the loop.
class Loop {
 public:
  Executor executor() {
    return [this](std::function<void()> t) {
      {
        std::lock_guard lk(mu_);
        q_.push_back(std::move(t));
      }
      cv_.notify_one();
    };
  }
  void run_some() {  // blocks for at least one task, runs all that are queued
    std::deque<std::function<void()>> batch;
    {
      std::unique_lock lk(mu_);
      cv_.wait(lk, [&] { return !q_.empty(); });
      batch.swap(q_);
    }
    for (auto& t : batch) t();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> q_;
};

template <class T>
T pct(std::vector<T> v, double p) {
  if (v.empty()) return T{};
  std::sort(v.begin(), v.end());
  return v[static_cast<size_t>(p * static_cast<double>(v.size() - 1))];
}

double ms(std::chrono::nanoseconds d) { return static_cast<double>(d.count()) / 1e6; }

struct CommitLog {
  std::mutex mu;
  std::vector<size_t> requests;
  std::vector<std::chrono::nanoseconds> commit, apply;
  void add(const CommitInfo& i) {
    std::lock_guard lk(mu);
    requests.push_back(i.requests);
    commit.push_back(i.commit);
    apply.push_back(i.apply);
  }
  void clear() {
    std::lock_guard lk(mu);
    requests.clear();
    commit.clear();
    apply.clear();
  }
};

// UUID-shaped pseudo-random ids, as Prosody (stanza-id) and most clients
// (origin-id) produce: random keys are the expensive case for a B-tree.
std::string uuid(uint64_t seed) {
  auto mix = [](uint64_t z) {  // splitmix64
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  };
  char buf[40];
  uint64_t a = mix(seed), b = mix(seed ^ 0xA5A5A5A5A5A5A5A5ull);
  std::snprintf(buf, sizeof buf, "%08x-%04x-%04x-%04x-%012llx", static_cast<unsigned>(a >> 32),
                static_cast<unsigned>(a >> 16) & 0xFFFF, static_cast<unsigned>(a) & 0xFFFF,
                static_cast<unsigned>(b >> 48),
                static_cast<unsigned long long>(b) & 0xFFFFFFFFFFFFull);
  return buf;
}

MessageRecord make_message(const Args& args, uint64_t n, unsigned peer, int64_t now_ms) {
  MessageRecord m;
  m.timestamp_ms = now_ms;
  m.direction = n % 2 ? Direction::kIncoming : Direction::kOutgoing;
  m.peer_bare = "peer" + std::to_string(peer) + "@legacy.example";
  m.flags = msgflag::kPersistent | msgflag::kUrgent;
  if (args.seq_ids) {  // time-ordered, like ejabberd's stanza-ids or counter-based clients
    char buf[32];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(n));
    m.upstream_stanza_id = std::string("s") + buf;
    m.origin_id = std::string("o") + buf;
  } else {
    m.upstream_stanza_id = uuid(2 * n);
    m.origin_id = uuid(2 * n + 1);
  }
  m.id = args.id_eq_origin ? m.origin_id : "id" + std::to_string(n);
  std::string body = "<message type='chat' to='" + m.peer_bare + "' id='" + m.id + "'><body>";
  std::string tail =
      "</body><origin-id xmlns='urn:xmpp:sid:0' id='" + m.origin_id + "'/></message>";
  size_t fill =
      args.stanza > body.size() + tail.size() ? args.stanza - body.size() - tail.size() : 0;
  m.stanza = body + std::string(fill, 'x') + tail;
  return m;
}

int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Submits `n` appends keeping up to `inflight` outstanding; returns latencies.
std::vector<std::chrono::nanoseconds> pump(Store& m, Loop& loop, const Args& args,
                                           const std::vector<AccountNo>& accts, size_t n,
                                           size_t inflight, uint64_t& seq) {
  std::vector<std::chrono::nanoseconds> lat;
  lat.reserve(n);
  size_t submitted = 0, done = 0, failed = 0;
  int64_t now = wall_ms();
  while (done < n) {
    while (submitted < n && submitted - done < inflight) {
      uint64_t k = seq++;
      AccountNo a = accts[k % accts.size()];
      unsigned peer = static_cast<unsigned>((k / accts.size()) % args.peers);
      auto t = Clock::now();
      m.submit({op::Append{a, make_message(args, k, peer, now), std::nullopt}},
               [&, t](WriteResult r) {
                 if (!r.ok()) ++failed;
                 lat.push_back(Clock::now() - t);
                 ++done;
               });
      ++submitted;
    }
    loop.run_some();
  }
  if (failed > 0) std::fprintf(stderr, "warning: %zu appends failed\n", failed);
  return lat;
}

}  // namespace

int main(int argc, char** argv) {
  Args args;
  if (!parse(argc, argv, args)) {
    usage();
    return 2;
  }
  std::string dir = args.dir;
  if (dir.empty() && args.store.empty()) {
    std::string tmpl = (std::filesystem::temp_directory_path() / "bench_mirror.XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) return 1;
    dir = tmpl;
  }

  Loop loop;
  CommitLog log;
  MirrorOptions o;
  o.dir = dir;
  o.no_sync = args.no_sync;
  o.writer.executor = loop.executor();
  o.writer.max_batch = args.max_batch;
  o.writer.max_delay = std::chrono::microseconds(args.delay_us);
  o.writer.on_commit = [&log](const CommitInfo& i) { log.add(i); };
  std::unique_ptr<Store> opened;
  Mirror* mirror = nullptr;
  PgStore* pgstore = nullptr;
  if (args.store.empty()) {
    auto mo = Mirror::open(o);
    if (!mo) {
      std::fprintf(stderr, "open %s: %s\n", dir.c_str(), mo.error().text.c_str());
      return 1;
    }
    mirror = mo->get();
    opened = std::move(*mo);
  } else {
    PgStoreOptions po;
    po.conninfo = args.store;
    po.writer = o.writer;
    auto ps = PgStore::open(po);
    if (!ps) {
      std::fprintf(stderr, "open --store: %s\n", ps.error().text.c_str());
      return 1;
    }
    pgstore = ps->get();
    opened = std::move(*ps);
    dir = "(postgresql)";
  }
  Store& m = *opened;

  // Accounts (plus the catch-up one), created in one batch.
  WriteBatch create;
  for (unsigned i = 0; i < args.accounts; ++i) {
    create.push_back(op::CreateAccount{"user" + std::to_string(i) + "@legacy.example"});
  }
  create.push_back(op::CreateAccount{"catchup@legacy.example"});
  std::vector<AccountNo> accts;
  AccountNo catchup = 0;
  bool created = false;
  m.submit(std::move(create), [&](WriteResult r) {
    for (size_t i = 0; i + 1 < r.ops.size(); ++i) accts.push_back(r.ops[i].account);
    catchup = r.ops.empty() ? 0 : r.ops.back().account;
    created = r.ok();
  });
  while (!created) loop.run_some();

  // (a) throughput.
  uint64_t seq = 0;
  log.clear();
  auto t0 = Clock::now();
  auto lat = pump(m, loop, args, accts, args.appends, args.inflight, seq);
  double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  std::vector<size_t> batches;
  std::vector<std::chrono::nanoseconds> commits, applies;
  {
    std::lock_guard lk(log.mu);
    batches = log.requests;
    commits = log.commit;
    applies = log.apply;
  }
  double avg_batch = 0;
  for (size_t b : batches) avg_batch += static_cast<double>(b);
  avg_batch = batches.empty() ? 0 : avg_batch / static_cast<double>(batches.size());

  // Lone appends: one in flight, so every append pays its own commit + fsync.
  log.clear();
  auto lone = pump(m, loop, args, accts, 300, 1, seq);

  // (b) catch-up: the device missed args.catchup messages from --peers peers,
  // interleaved with nine other accounts' traffic.
  std::vector<AccountNo> mix(accts.begin(), accts.begin() + std::min<size_t>(accts.size(), 9));
  mix.push_back(catchup);
  pump(m, loop, args, mix, args.catchup * mix.size(), args.inflight, seq);
  auto bounds = *m.bounds(catchup);

  auto page_through = [&](MamQuery q, bool backward) {
    q.max = args.page;
    q.from_end = backward;
    size_t items = 0, pages = 0;
    for (;;) {
      auto p = m.query(catchup, q);
      if (!p) {
        std::fprintf(stderr, "query: %s\n", p.error().text.c_str());
        return std::pair<size_t, size_t>{items, pages};
      }
      items += p->items.size();
      ++pages;
      if (p->complete || p->items.empty()) break;
      if (backward)
        q.before_id = p->first;
      else
        q.after_id = p->last;
    }
    return std::pair<size_t, size_t>{items, pages};
  };
  struct ReadRow {
    const char* name;
    double ms_per_run = 0;
    size_t items = 0, pages = 0;
  };
  std::vector<ReadRow> reads;
  auto time_reads = [&](const char* name, MamQuery q, bool backward) {
    constexpr int kReps = 10;
    ReadRow row{name};
    auto t = Clock::now();
    for (int i = 0; i < kReps; ++i) std::tie(row.items, row.pages) = page_through(q, backward);
    row.ms_per_run = ms(Clock::now() - t) / kReps;
    reads.push_back(row);
  };
  time_reads("forward, after-id paging", MamQuery{}, false);
  time_reads("backward, RSM before paging", MamQuery{}, true);
  MamQuery with;
  with.with = "peer3@legacy.example";
  time_reads("with=<one peer>, forward", with, false);

  auto sizes = mirror != nullptr ? mirror->entry_counts() : pgstore->entry_counts();
  std::printf("\nbench_mirror  dir=%s  fsync=%s  stanza=%zu B  accounts=%u  peers=%u  ids=%s\n",
              dir.c_str(), args.no_sync ? "OFF" : "on", args.stanza, args.accounts, args.peers,
              args.seq_ids ? "seq" : "uuid");
  std::printf("writer: max_batch=%zu  max_delay=%ld us  inflight=%zu\n\n", args.max_batch,
              args.delay_us, args.inflight);
  std::printf("%-44s %s\n", "(a) appends through the writer", "");
  std::printf("  %-42s %.0f appends/s  (%zu in %.2f s)\n", "throughput", args.appends / secs,
              args.appends, secs);
  std::printf("  %-42s %zu  (avg %.0f, p50 %zu, p99 %zu, max %zu requests)\n",
              "transactions (group commits)", batches.size(), avg_batch, pct(batches, 0.5),
              pct(batches, 0.99), pct(batches, 1.0));
  std::printf("  %-42s p50 %.2f ms  p99 %.2f ms\n", "commit latency (mdb_txn_commit + fsync)",
              ms(pct(commits, 0.5)), ms(pct(commits, 0.99)));
  std::printf("  %-42s p50 %.2f ms  p99 %.2f ms\n", "apply (building one group's txn)",
              ms(pct(applies, 0.5)), ms(pct(applies, 0.99)));
  std::printf("  %-42s p50 %.2f ms  p99 %.2f ms\n", "submit -> completion (under load)",
              ms(pct(lat, 0.5)), ms(pct(lat, 0.99)));
  std::printf("  %-42s p50 %.2f ms  p99 %.2f ms\n", "lone append, 1 in flight (incl. linger)",
              ms(pct(lone, 0.5)), ms(pct(lone, 0.99)));
  std::printf("\n(b) catch-up of %llu messages (archive ids %llu..%llu), pages of %zu\n",
              static_cast<unsigned long long>(bounds.last_id - bounds.first_id + 1),
              static_cast<unsigned long long>(bounds.first_id),
              static_cast<unsigned long long>(bounds.last_id), args.page);
  for (auto& r : reads) {
    std::printf("  %-42s %.2f ms per run  (%zu items, %zu pages, %.1f us/page)\n", r.name,
                r.ms_per_run, r.items, r.pages,
                r.ms_per_run * 1000.0 / std::max<size_t>(1, r.pages));
  }
  if (sizes) {
    std::printf("\nentries:");
    for (auto& [name, n] : *sizes)
      std::printf(" %s=%llu", name.c_str(), static_cast<unsigned long long>(n));
    if (mirror != nullptr) {
      std::printf("\nmap size: %.0f MiB, grows: %llu\n",
                  static_cast<double>(mirror->map_size()) / (1 << 20),
                  static_cast<unsigned long long>(mirror->map_grows()));
    } else {
      std::printf("\n");
    }
  }
  opened.reset();
  if (!args.keep && args.dir.empty() && args.store.empty()) std::filesystem::remove_all(dir);
  return 0;
}
