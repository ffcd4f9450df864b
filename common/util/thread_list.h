// ThreadListed<T>: every live T on this thread, in one intrusive list, for
// sweeps that run on the same thread (the idle-memory sweep walks the XML
// streams and the TLS sessions of the loop thread). A T derives from
// ThreadListed<T>; construction links it, destruction unlinks it. No locks:
// an object is listed on the thread that made it and must die there.
#pragma once

namespace s2 {

template <class T>
class ThreadListed {
 public:
  ThreadListed(const ThreadListed&) = delete;
  ThreadListed& operator=(const ThreadListed&) = delete;

  // Calls f(T&) for each live T of this thread; f must not destroy any of them.
  template <class F>
  static void for_each(F&& f) {
    for (ThreadListed* n = head(); n; n = n->next_) f(*static_cast<T*>(n));
  }

 protected:
  ThreadListed() : next_(head()) {
    if (next_) next_->prev_ = this;
    head() = this;
  }
  ~ThreadListed() {
    if (prev_) {
      prev_->next_ = next_;
    } else {
      head() = next_;
    }
    if (next_) next_->prev_ = prev_;
  }

 private:
  static ThreadListed*& head() {
    thread_local ThreadListed* h = nullptr;
    return h;
  }
  ThreadListed* prev_ = nullptr;
  ThreadListed* next_;
};

}  // namespace s2
