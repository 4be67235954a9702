// A fixed set of threads running queued jobs in order: where handlers run, so that use cases stay
// plain blocking code while the event loop never blocks.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace ingot::http {

class WorkerPool {
 public:
  explicit WorkerPool(int threads);
  ~WorkerPool();

  void Submit(std::function<void()> job);
  // Runs what is queued, then joins the threads.
  void Join();

 private:
  void Loop();

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace ingot::http
