// See loop_executor.h.
#include "common/net/loop_executor.h"

namespace s2 {

LoopExecutor::LoopExecutor(uv_loop_t* loop) : h_(new Handle{{}, this}) {
  uv_async_init(loop, &h_->async, [](uv_async_t* a) {
    auto* h = reinterpret_cast<Handle*>(a);
    if (h->owner) h->owner->drain();
  });
}

LoopExecutor::~LoopExecutor() {
  h_->owner = nullptr;
  uv_close(reinterpret_cast<uv_handle_t*>(&h_->async),
           [](uv_handle_t* h) { delete reinterpret_cast<Handle*>(h); });
}

void LoopExecutor::post(std::function<void()> fn) {
  {
    std::lock_guard lock(mu_);
    queue_.push_back(std::move(fn));
  }
  uv_async_send(&h_->async);
}

void LoopExecutor::drain() {
  std::deque<std::function<void()>> batch;
  {
    std::lock_guard lock(mu_);
    batch.swap(queue_);
  }
  for (auto& fn : batch) fn();
}

void LoopExecutor::unref() { uv_unref(reinterpret_cast<uv_handle_t*>(&h_->async)); }

}  // namespace s2
