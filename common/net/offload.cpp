// See offload.h.
#include "common/net/offload.h"

namespace s2::detail {

void queue_offload(uv_loop_t* loop, std::unique_ptr<OffloadJob> job) {
  job->req.data = job.get();
  const int rc = uv_queue_work(
      loop, &job->req, [](uv_work_t* req) { static_cast<OffloadJob*>(req->data)->run(); },
      [](uv_work_t* req, int status) {
        std::unique_ptr<OffloadJob> j(static_cast<OffloadJob*>(req->data));
        j->finish(status == 0);
      });
  if (rc == 0) {
    job.release();  // owned by the request until the after-callback
    return;
  }
  // uv_queue_work only fails on invalid arguments; still deliver, inline.
  job->run();
  job->finish(true);
}

}  // namespace s2::detail
