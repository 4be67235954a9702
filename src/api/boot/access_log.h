// The southbound listener's access log: one line per request, in common/log.h's format
// (`ts=… level=info event=boot.request …`), written in batches by a thread of its own, so that a
// request costs a formatted line appended under a lock instead of a write(2) on the I/O thread.
//
// Contract:
//  - Lines leave in the order Add was called, each whole, at most `linger` after they were added
//    (sooner once `batch_bytes` are held); Flush and the destructor write everything held.
//  - Each write(2) carries whole lines and at most kAtomicBytes (PIPE_BUF), unless one line is
//    longer: stderr may be a pipe or a socket shared with every other log line of the process,
//    where only writes that small are never interleaved with another writer's.
//  - Memory is bounded: past `max_held_bytes` (the log's reader is not keeping up) Add waits for
//    the writer, as a direct write(2) would have.
//  - Lines of other events (log::Write) may overtake access lines by up to `linger`; each line
//    carries its own timestamp.
//
// Thread-safe.
#pragma once

#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

namespace ingot::api::boot {

struct AccessLogOptions {
  int fd = STDERR_FILENO;  // not owned
  std::chrono::milliseconds linger{20};
  size_t batch_bytes = 64 * 1024;
  size_t max_held_bytes = 4 * 1024 * 1024;
};

class AccessLog {
 public:
  static constexpr size_t kAtomicBytes = 4096;

  explicit AccessLog(AccessLogOptions options = {});
  ~AccessLog();
  AccessLog(const AccessLog&) = delete;
  AccessLog& operator=(const AccessLog&) = delete;

  // Queues one line (it should end in '\n').
  void Add(std::string_view line);
  // Returns once every line added before the call has been written (or failed to be).
  void Flush();

 private:
  void Loop();
  void WriteBatch(std::string_view batch);

  const AccessLogOptions options_;
  std::mutex mu_;
  std::condition_variable wake_;     // the writer: lines, a flush or the end
  std::condition_variable written_;  // Flush and a waiting Add: a batch is out
  std::string held_;
  uint64_t added_ = 0;     // lines added
  uint64_t done_ = 0;      // lines written
  uint64_t flush_to_ = 0;  // a Flush wants the lines up to here out without lingering
  bool stopping_ = false;
  std::thread writer_;
};

}  // namespace ingot::api::boot
