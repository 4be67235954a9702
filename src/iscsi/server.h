// The iSCSI target of the deploy engine's OS volumes (RFC 7143): login with AuthMethod=None through
// the security and operational stages, digests None, error recovery level 0, one connection per
// session; discovery sessions (SendTargets=All, filtered per initiator and address); normal
// sessions with one LUN (0) per target, named "<iqn_prefix>:<volume>". SCSI commands: INQUIRY
// (standard and VPD 0x00/0x80/0x83/0xB0/0xB1/0xB2), READ CAPACITY(10/16), MODE SENSE(6/10) with the
// write-protect bit, REPORT LUNS, TEST UNIT READY, READ/WRITE(6/10/16) with FUA, VERIFY(10/16),
// SYNCHRONIZE CACHE(10/16), UNMAP and WRITE SAME(16) (Export::WriteZeroes), GET LBA STATUS
// (Export::BlockStatus), START STOP UNIT; task management answered; NOP-Out/NOP-In; Logout.
//
// It is our own target, not tgt or LIO: no root daemon, no kernel configuration, and it serves the
// volume's copy-on-write format directly through nbd::Export, the interface the NBD server uses, so
// a volume behaves the same over both protocols.
//
// Contract:
//  - One accept thread; one thread per connection that reads PDUs and runs each command to its end
//    before reading the next (commands of one session are few and every one ends in a pread or
//    pwrite of a local file). Writes honour ImmediateData, InitialR2T, FirstBurstLength and
//    MaxBurstLength; solicited data is asked for with one R2T at a time (MaxOutstandingR2T=1).
//  - One writer per volume: the first initiator (its address and iSCSI name) whose login reaches a
//    writable volume gets it writable; while any of its sessions lives, others get it read-only
//    (MODE SENSE WP bit set; writes refused with DATA PROTECT / WRITE PROTECTED). With
//    ServerOptions::writers shared with the NBD server, this holds across both protocols.
//  - SYNCHRONIZE CACHE and FUA reach Export::Flush / Write(fua); the status is sent after the bytes
//    are durable.
//  - Limits: max_connections in all and max_connections_per_client per address; login must finish
//    within login_timeout; a PDU whose data segment exceeds what we declared closes the connection.
//    Memory per connection: the data-out of at most 16 commands waiting for it (each at most
//    max_transfer_bytes; one more closes the connection) and one read.
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
#include "iscsi/target.h"
#include "nbd/writer_claims.h"

namespace ingot::iscsi {

struct ServerOptions {
  std::string host = "127.0.0.1";                   // numeric IPv4 or IPv6 address
  uint16_t port = 3260;                             // 0: any free port; port() tells which
  std::string iqn_prefix = "iqn.2026-12.io.ingot";  // target name: <iqn_prefix>:<volume>
  size_t max_connections = 256;
  size_t max_connections_per_client = 16;
  std::chrono::milliseconds login_timeout{10000};
  uint32_t max_recv_data_segment = 262144;  // what we accept per PDU
  uint32_t max_burst = 1u << 20;
  uint32_t first_burst = 262144;
  uint32_t max_transfer_bytes = 1u << 20;  // per READ/WRITE command (VPD 0xB0)
  // The one-writer rule, shared with the NBD server of the same volumes; not owned, must outlive
  // the server. nullptr: the server keeps its own.
  nbd::WriterClaims* writers = nullptr;
};

struct ServerStats {
  uint64_t sessions = 0;  // normal sessions logged in
  uint64_t refused = 0;   // over a limit, or login refused
  uint64_t active = 0;
  uint64_t commands = 0;
  uint64_t command_errors = 0;  // answered with CHECK CONDITION
  uint64_t bytes_read = 0;
  uint64_t bytes_written = 0;
};

namespace internal {
struct Counters {
  std::atomic<uint64_t> sessions{0}, refused{0}, commands{0}, errors{0}, read{0}, written{0};
};
}  // namespace internal

class Server {
 public:
  // `resolver` is not owned and must outlive the server.
  Server(ServerOptions options, TargetResolver& resolver);
  ~Server();  // Stop()s
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds and starts accepting. kInvalidArgument / kIoError when the address cannot be bound.
  Status Start();
  // Closes every connection and joins every thread. Idempotent.
  void Stop();
  uint16_t port() const { return port_; }

  // The target name of `volume`, and the volume a target name means ("" when not one of ours).
  std::string TargetName(std::string_view volume) const;
  std::string VolumeOf(std::string_view target_name) const;

  // Ends every session of `volume` (it was detached or deleted). Returns how many.
  size_t CloseVolume(std::string_view volume);
  // Volumes with at least one session in full feature phase.
  std::vector<std::string> ActiveVolumes() const;
  ServerStats stats() const;

 private:
  struct Connection;
  void AcceptLoop();
  void Serve(Connection& c);
  void Reap(bool all);

  ServerOptions options_;
  TargetResolver& resolver_;
  uint16_t port_ = 0;
  int listen_fd_ = -1;
  int wake_fd_ = -1;
  std::thread acceptor_;
  mutable std::mutex mu_;
  std::list<std::unique_ptr<Connection>> connections_;
  // volume → the initiator ("iscsi <address> <initiator-name>") that may write it.
  nbd::WriterClaims own_writers_;
  nbd::WriterClaims& writers_;
  uint16_t next_tsih_ = 1;
  internal::Counters counters_;
};

}  // namespace ingot::iscsi
