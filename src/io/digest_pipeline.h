// Computes several digests of one stream at once, each on its own thread, so the slower digest sets the
// pace instead of the sum of both (MD5 and SHA-512 are each single-threaded by nature).
//
// The caller fills buffers the pipeline owns: Acquire() hands out a free buffer, Submit() queues it to
// every digest thread, and the buffer comes back to the free list once all of them are done with it.
// Memory is bounded by buffer_count * buffer_size whatever the stream length.
// Thread safety: one producer thread calls Acquire/Submit/Finish.
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "common/result.h"
#include "io/hash.h"

namespace ingot::io {

class DigestPipeline {
 public:
  // One digest thread per algorithm (names as Hasher::Create). kInvalidArgument for an unknown one.
  static Result<std::unique_ptr<DigestPipeline>> Start(const std::vector<std::string>& algos,
                                                       size_t buffer_size = 1 << 20,
                                                       size_t buffer_count = 8);
  ~DigestPipeline();  // stops and joins the threads (digests of an unfinished stream are dropped)

  // A free buffer of buffer_size bytes; blocks until one is free.
  std::span<uint8_t> Acquire();
  // Queues the first `length` bytes of the buffer last returned by Acquire().
  void Submit(size_t length);
  // Waits for every digest; returns them in the order of `algos`. Call once, after the last Submit.
  std::vector<std::string> Finish();

 private:
  struct Slot {
    std::vector<uint8_t> data;
    size_t length = 0;
    int pending = 0;  // digest threads yet to consume it
  };
  DigestPipeline(std::vector<std::unique_ptr<Hasher>> hashers, size_t buffer_size,
                 size_t buffer_count);
  void Run(size_t worker);

  std::vector<std::unique_ptr<Hasher>> hashers_;
  std::vector<Slot> slots_;
  std::mutex mu_;
  std::condition_variable cv_;
  size_t produced_ = 0;                // slots submitted so far (monotonic)
  std::vector<size_t> consumed_;       // per worker: slots consumed so far
  size_t acquired_ = 0;                // index of the slot handed out by Acquire
  bool finishing_ = false;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace ingot::io
