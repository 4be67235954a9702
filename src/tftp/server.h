// The TFTP server of the boot service: read requests only (RFC 1350), octet and netascii, with the
// option extension (RFC 2347) for blksize (RFC 2348), tsize and timeout (RFC 2349) and windowsize
// (RFC 7440). Knows nothing of images: it serves whatever a FileSource (file_source.h) opens.
//
// Contract:
//  - One event-loop thread (epoll) runs every transfer; each transfer has its own ephemeral UDP
//    socket (its TID), bound to the address the request was sent to. Reads from the FileSource
//    happen on that thread (pread of local files or ISO extents).
//  - A write request is refused with ERROR 2 "Access violation"; a requested name is normalised by
//    tftp/path.h ('\' is a separator, ".." refused) and opened by the FileSource beneath its root.
//    Refusals answer ERROR 1 or 2 and are logged with the client's address; invalid option values
//    answer ERROR 8, unknown modes and stray packets ERROR 4.
//  - Sorcerer's Apprentice safe: DATA is sent only on a new ACK or on a timeout, never on a
//    duplicate ACK. Blocks are retransmitted after the negotiated timeout (the client's `timeout`
//    option, else ServerOptions::timeout), at most `max_retries` times in a row, then the transfer
//    is dropped. Block numbers roll over from 65535 to 0, so files of any size are served.
//  - windowsize: up to N blocks are sent before waiting; an ACK of an earlier block than the last
//    sent restarts the window after it. A window is only ever sent after the client has ACKed the
//    OACK from its own address, so a spoofed request draws no more than a few OACKs.
//  - Limits: at most `max_transfers` at once and `max_transfers_per_client` per client address; a
//    request past them is dropped (the client retries it), a retransmitted request of a running
//    transfer is ignored. Memory per transfer is a few blocks, whatever the file size.
//  - Start/Stop are not thread-safe against each other; call them from one thread. stats() may be
//    called from any thread at any time.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "common/result.h"
#include "tftp/file_source.h"

namespace ingot::tftp {

struct ServerOptions {
  std::string host = "0.0.0.0";  // numeric IPv4 or IPv6 address to listen on
  uint16_t port = 69;            // 0: any free port; Server::port() tells which
  // blksize above this is lowered in the OACK. 1468 keeps a block plus the IP/UDP/TFTP headers in a
  // 1500-byte Ethernet frame; up to 65464 is honoured when configured.
  uint32_t max_blksize = 1468;
  uint32_t max_windowsize = 64;
  std::chrono::milliseconds timeout{1000};  // retransmission when the client asks no timeout
  bool honour_timeout_option = true;        // answer the client's `timeout` and use it
  int max_retries = 5;
  size_t max_transfers = 256;
  size_t max_transfers_per_client = 16;
  size_t max_path_length = 1024;
};

struct ServerStats {
  uint64_t transfers_started = 0;
  uint64_t transfers_completed = 0;
  uint64_t transfers_failed = 0;  // timed out, aborted by the client, read errors
  uint64_t requests_refused = 0;  // answered with an ERROR packet
  uint64_t requests_dropped = 0;  // over a limit, or unparseable
};

class Server {
 public:
  // `files` is not owned and must outlive the server.
  Server(ServerOptions options, FileSource& files);
  ~Server();  // Stop()s
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds the listening socket and starts the event-loop thread. Fails (kInvalidArgument, kIoError)
  // when the address does not parse or cannot be bound; the server can then be destroyed.
  Status Start();
  // Ends every transfer (without telling the clients) and joins the thread. Idempotent.
  void Stop();
  // The bound port, once started.
  uint16_t port() const { return port_; }
  ServerStats stats() const;

 private:
  class Loop;
  struct Counters {
    std::atomic<uint64_t> started{0}, completed{0}, failed{0}, refused{0}, dropped{0};
  };
  ServerOptions options_;
  FileSource& files_;
  uint16_t port_ = 0;
  Counters counters_;
  std::unique_ptr<Loop> loop_;
  std::thread thread_;
};

}  // namespace ingot::tftp
