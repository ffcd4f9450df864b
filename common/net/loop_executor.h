// Runs closures posted from any thread on one libuv loop (uv_async_t + a
// mutex-protected queue). The mirror's writer thread posts its commit
// completions through it, so store callbacks always run on the loop thread.
#pragma once

#include <uv.h>

#include <deque>
#include <functional>
#include <mutex>

namespace s2 {

class LoopExecutor {
 public:
  explicit LoopExecutor(uv_loop_t* loop);
  ~LoopExecutor();
  LoopExecutor(const LoopExecutor&) = delete;
  LoopExecutor& operator=(const LoopExecutor&) = delete;

  // Thread-safe.
  void post(std::function<void()> fn);
  // Runs what is queued now (loop thread). Also used at shutdown.
  void drain();
  // Lets the loop exit while the executor exists (it still runs posts).
  void unref();

 private:
  struct Handle {
    uv_async_t async;
    LoopExecutor* owner;
  };
  Handle* h_;
  std::mutex mu_;
  std::deque<std::function<void()>> queue_;
};

}  // namespace s2
