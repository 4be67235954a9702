// The NBD server: fixed newstyle negotiation (NBD_OPT_GO/INFO/LIST/STRUCTURED_REPLY/
// LIST_META_CONTEXT/SET_META_CONTEXT, and the old NBD_OPT_EXPORT_NAME), simple and structured
// replies, base:allocation block status, READ/WRITE/FLUSH/TRIM/WRITE_ZEROES/DISC with FUA, sparse
// reads (holes sent as NBD_REPLY_TYPE_OFFSET_HOLE unless the client sets DF). Knows nothing of
// images: it serves what an ExportResolver (export.h) hands it.
//
// Contract:
//  - One accept thread; per connection, one thread that reads requests and a few workers that run
//    them and send the replies (in any order, as NBD allows; a reply's chunks are never split).
//    Why not an event loop: an NBD connection is long-lived and few (one per attached machine), and
//    every request ends in a blocking pread or pwrite of a local file, which an event loop would
//    have to hand to threads anyway. FLUSH covers every write answered before it arrived.
//  - One writer per export: the first client (address) that reaches NBD_OPT_GO (or EXPORT_NAME) on
//    a writable export gets it writable, with all its connections; while any of them lives, other
//    addresses get it read-only (NBD_FLAG_READ_ONLY), so qemu refuses to open it for writing rather
//    than two machines corrupting one disk. Connections of one export share one Export object, so
//    a FLUSH on any covers writes answered on all: NBD_FLAG_CAN_MULTI_CONN is offered, and qemu and
//    nbdcopy spread their requests over several connections.
//  - FLUSH and FUA are honoured by the export (fdatasync for volumes); a reply to them is sent only
//    after the bytes are durable.
//  - Limits: max_connections in all and max_connections_per_client per address (over: the
//    connection is closed before the greeting); negotiation must finish within handshake_timeout;
//    option data over 64 KiB and write payloads over max_payload close the connection; reads over
//    max_payload get EINVAL. Memory per connection is one payload buffer (at most max_payload).
//  - Start/Stop from one thread; the rest from any.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/result.h"
#include "nbd/export.h"
#include "nbd/writer_claims.h"

namespace ingot::nbd {

struct ServerOptions {
  std::string host = "127.0.0.1";  // numeric IPv4 or IPv6 address
  uint16_t port = 10809;           // 0: any free port; port() tells which
  size_t max_connections = 256;
  size_t max_connections_per_client = 16;
  std::chrono::milliseconds handshake_timeout{10000};
  uint32_t max_payload = 32u << 20;  // NBD_INFO_BLOCK_SIZE's maximum; qemu's own limit
  uint32_t preferred_block = 4096;
  // Requests of one connection run on this many threads, so receiving the next write overlaps
  // writing the last one, and reads proceed in parallel (qemu and nbdcopy keep many in flight).
  size_t workers_per_connection = 4;
  // Payload bytes (writes received, reads being answered) one connection may hold at once; the
  // next request is not read until some are answered.
  uint64_t max_bytes_in_flight = 64u << 20;
  // The one-writer rule, shared with other servers of the same exports (the iSCSI target); not
  // owned, must outlive the server. nullptr: the server keeps its own.
  WriterClaims* writers = nullptr;
};

struct ServerStats {
  uint64_t connections = 0;          // accepted and negotiated to transmission
  uint64_t connections_refused = 0;  // over a limit, or negotiation failed
  uint64_t active = 0;
  uint64_t requests = 0;
  uint64_t request_errors = 0;  // answered with an error value
  uint64_t bytes_read = 0;
  uint64_t bytes_written = 0;
};

namespace internal {
struct Counters {
  std::atomic<uint64_t> connections{0}, refused{0}, requests{0}, errors{0}, read{0}, written{0};
};
}  // namespace internal

class Server {
 public:
  // `resolver` is not owned and must outlive the server.
  Server(ServerOptions options, ExportResolver& resolver);
  ~Server();  // Stop()s
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds and starts accepting. kInvalidArgument / kIoError when the address cannot be bound.
  Status Start();
  // Closes every connection (clients see the socket close) and joins every thread. Idempotent.
  void Stop();
  uint16_t port() const { return port_; }

  // Ends every connection serving `name` (its volume was detached or deleted). Returns how many.
  size_t CloseExport(std::string_view name);
  // Names with at least one connection in transmission.
  std::vector<std::string> ActiveExports() const;
  ServerStats stats() const;

 private:
  struct Connection;
  void AcceptLoop();
  void Serve(Connection& c);
  void Reap(bool all);

  ServerOptions options_;
  ExportResolver& resolver_;
  uint16_t port_ = 0;
  int listen_fd_ = -1;
  int wake_fd_ = -1;
  std::thread acceptor_;
  mutable std::mutex mu_;
  std::list<std::unique_ptr<Connection>> connections_;
  // export name → the client address ("nbd <address>") that may write it.
  WriterClaims own_writers_;
  WriterClaims& writers_;
  internal::Counters counters_;
};

}  // namespace ingot::nbd
