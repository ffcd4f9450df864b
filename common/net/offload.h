// Runs a pure function on libuv's thread pool (uv_queue_work) and hands its
// result back on the loop thread. For CPU-heavy work that must not stall the
// event loop (PBKDF2: SCRAM key derivation, ARCHITECTURE.md §6).
//
//   offload(loop, alive_token(), [pw = SecretString(...)] { return derive(pw); },
//           [this](Result r) { ... });   // loop thread, only if still alive
//
// `work` runs on a pool thread: it must only touch what it captured by value
// (no session state, no logging). `done` runs on the loop thread after the
// work finished, unless the `owner` token expired meanwhile (the requester
// died: the result is dropped, `done` is not called) or the request was
// cancelled (uv_cancel, never done here). Both functors and the result are
// destroyed on the loop thread, so captured secrets can wipe themselves in
// their destructors (crypto::SecretString). A pending request keeps uv_run()
// going until it finishes (uv_work_t is a request, not a handle).
#pragma once

#include <uv.h>

#include <memory>
#include <optional>
#include <type_traits>
#include <utility>

namespace s2 {
namespace detail {

struct OffloadJob {
  virtual ~OffloadJob() = default;
  virtual void run() = 0;             // pool thread
  virtual void finish(bool ran) = 0;  // loop thread
  uv_work_t req{};
};

// Takes ownership; deletes the job on the loop thread after finish().
void queue_offload(uv_loop_t* loop, std::unique_ptr<OffloadJob> job);

template <class Work, class Done>
struct OffloadJobT final : OffloadJob {
  using Result = std::invoke_result_t<Work&>;
  OffloadJobT(Work w, Done d, std::weak_ptr<void> o, bool has_owner)
      : work(std::move(w)), done(std::move(d)), owner(std::move(o)), has_owner(has_owner) {}
  void run() override { result.emplace(work()); }
  void finish(bool ran) override {
    if (!ran || !result) return;
    if (has_owner) {
      auto keep = owner.lock();
      if (!keep) return;
    }
    done(std::move(*result));
  }
  Work work;
  Done done;
  std::weak_ptr<void> owner;
  bool has_owner;
  std::optional<Result> result;
};

}  // namespace detail

// `done(result)` only while `owner` (an alive token, e.g. std::weak_ptr<bool>)
// has not expired.
template <class Work, class Done>
void offload(uv_loop_t* loop, std::weak_ptr<void> owner, Work work, Done done) {
  detail::queue_offload(loop, std::make_unique<detail::OffloadJobT<Work, Done>>(
                                  std::move(work), std::move(done), std::move(owner), true));
}

// Without an owner: `done` is always called (for long-lived requesters).
template <class Work, class Done>
void offload(uv_loop_t* loop, Work work, Done done) {
  detail::queue_offload(loop, std::make_unique<detail::OffloadJobT<Work, Done>>(
                                  std::move(work), std::move(done), std::weak_ptr<void>(), false));
}

}  // namespace s2
