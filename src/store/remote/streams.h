// The two streaming halves every object-store driver needs, over any request function the driver
// supplies (its authentication, addressing and status checks stay its own):
//
//  - RangedSource: an object read as an io::ByteSource. Sequential reads are served from one
//    streaming ranged GET that a background thread keeps ahead of the reader by at most `window`
//    bytes, so a download runs at network speed with bounded memory; a read at another offset
//    starts a new GET there. A stream that breaks mid-way is resumed from the byte it stopped at
//    (a new ranged GET), up to `max_resumes` times.
//
//  - PartUploader: an object written as numbered parts of `part_size` bytes, up to `threads` of
//    them uploading at once while the caller keeps writing. Memory is bounded by
//    part_size * (threads + 1) whatever the object's size, and a part is a buffer in memory, so a
//    failed part is simply sent again (the driver retries inside `put`). Each part's MD5 is
//    computed on the uploading thread and the ETag the store returns must match it.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "common/result.h"
#include "io/byte_source.h"
#include "store/remote/transport.h"

namespace ingot::store::remote {

// Fetches bytes [first, last] of the object into `sink` and returns how the transfer ended. The
// driver retries what is retryable before the first byte arrives, and must refuse a response that
// is not the range asked for.
using RangeGet = std::function<Status(uint64_t first, uint64_t last, const BodySink& sink)>;

// Thread safety: ReadAt calls are serialised (one stream position).
//
// Sequential reading is served by up to `parallel` ranged GETs at once, each of one block,
// handed to the reader in order: a single HTTP stream from an object store is bounded by one proxy
// process and one connection, several are not. A fresh position starts with one small block (a
// client's Range request of a few bytes costs a few bytes); each block the reader takes whole
// widens the window to `parallel` blocks and doubles the block size, up to `block` bytes, with
// blocks aligned to multiples of their size. Large aligned blocks matter: every request costs the
// store a fixed overhead (Swift's SLO middleware reads the manifest again) and restarts its disk
// readahead, so give `block` the store's segment or part size (each GET is then one whole
// segment). Memory: parallel * block at most.
//
// CPU: a read waits until it can fill the caller's buffer (or its block ends), and the fetching
// worker wakes the reader only then — not once per packet — so a download is a few large copies
// and socket writes per MiB. Block buffers are reused rather than freshly mapped for each block.
class RangedSource final : public io::ByteSource {
 public:
  RangedSource(uint64_t size, RangeGet get, int max_resumes = 3, int parallel = 3,
               size_t block = 8 << 20);
  ~RangedSource() override;
  Result<size_t> ReadAt(uint64_t offset, std::span<uint8_t> buf) override;
  uint64_t Size() const override { return size_; }

 private:
  struct Block {
    uint64_t first = 0;
    uint64_t length = 0;
    std::unique_ptr<uint8_t[]> bytes;
    uint64_t filled = 0;  // bytes received (guarded by mu_)
    uint64_t taken = 0;   // bytes handed to the reader
    bool assigned = false;
    bool done = false;
    Status status;
  };
  void Reset(uint64_t offset);
  void Work();
  // Adds the next block when the window allows; called with mu_ held.
  void Schedule();

  const uint64_t size_;
  const RangeGet get_;
  const int max_resumes_;
  const int parallel_;
  const size_t block_;
  std::mutex read_mu_;  // one reader at a time

  std::mutex mu_;
  std::condition_variable cv_;         // workers: a block to fetch, or stop
  std::condition_variable reader_cv_;  // the reader: its block reached `wake_at_`, or ended
  const Block* waiting_on_ = nullptr;  // the block the reader waits on (guarded by mu_)
  uint64_t wake_at_ = 0;               // ... until it holds this many bytes
  std::vector<std::unique_ptr<uint8_t[]>> spare_;  // buffers of `block_` bytes to reuse
  // In offset order; the front is being read. Shared with the worker fetching a block, which may
  // outlive its place here when the reader moves elsewhere (Reset).
  std::deque<std::shared_ptr<Block>> blocks_;
  uint64_t next_ = 0;       // the offset the reader is at
  uint64_t scheduled_ = 0;  // the end of the last block scheduled
  bool widened_ = false;    // the reader took a whole block: fetch `parallel` ahead
  uint64_t grow_ = 0;       // the size of the next block: doubles up to block_ while sequential
  uint64_t generation_ = 0;  // bumped by Reset: workers drop blocks of an older one
  bool stop_ = false;
  std::vector<std::thread> workers_;
};

struct UploadedPart {
  int number = 0;  // from 1
  uint64_t size = 0;
  std::string md5;   // hex, of the bytes sent
  std::string etag;  // what the store answered (quotes removed)
};

class PartUploader {
 public:
  // Stores part `number` and returns the ETag the store gave it. Runs on the uploader's threads;
  // retries are its own business (the bytes stay valid for the whole call).
  using PutPart = std::function<Result<std::string>(int number, std::span<const uint8_t> bytes,
                                                    const std::string& md5_hex)>;
  // Runs once on the writer's thread before part 1 is handed out (S3's CreateMultipartUpload).
  using Begin = std::function<Status()>;

  PartUploader(size_t part_size, int threads, PutPart put, Begin begin = {});
  // Cancel()s if Finish() was not called.
  ~PartUploader();
  PartUploader(const PartUploader&) = delete;
  PartUploader& operator=(const PartUploader&) = delete;

  // Buffers `data`, handing out each full part; blocks while every buffer is uploading. Fails with
  // the first part's failure once one failed.
  Status Write(std::span<const uint8_t> data);
  uint64_t bytes() const { return bytes_; }
  // True once a part was handed out (so the object is not a single buffered one any more).
  bool started() const { return next_number_ > 1; }
  // The bytes buffered and not handed out.
  std::span<const uint8_t> buffered() const;
  // Hands out what is buffered as the last part (also when nothing was handed out before and it is
  // empty: an empty object is one empty part) and waits for every part. The parts in order.
  Result<std::vector<UploadedPart>> Finish();
  // Stops handing out, waits for parts in flight, and returns every part the store holds (for the
  // driver to delete).
  std::vector<UploadedPart> Cancel();

 private:
  struct Job {
    int number;
    std::unique_ptr<uint8_t[]> buf;
    size_t size;
  };
  Status Dispatch();
  void Work();
  void StartThreads();

  const size_t part_size_;
  const int threads_;
  const PutPart put_;
  Begin begin_;

  // Writer side.
  std::unique_ptr<uint8_t[]> current_;
  size_t fill_ = 0;
  uint64_t bytes_ = 0;
  int next_number_ = 1;
  bool finished_ = false;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> queue_;
  std::vector<std::unique_ptr<uint8_t[]>> free_;
  int buffers_ = 0;  // allocated in all
  int in_flight_ = 0;
  bool stop_ = false;
  Status error_;
  std::vector<UploadedPart> done_;
  std::vector<std::thread> workers_;
};

// Removes surrounding double quotes and lower-cases an ETag.
std::string NormalizeEtag(std::string_view etag);

}  // namespace ingot::store::remote
