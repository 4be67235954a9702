// The ingest pipeline: the one pass every image's bytes take on the way in, whether uploaded (PUT
// /file), staged (PUT /stage) or imported (glance-direct, web-download, copy-image). While the bytes
// stream from the source they are written to every target store at once, hashed (MD5 and the
// multihash, on their own threads) and inspected (formats::StreamingInspector); nothing is read
// twice and memory does not grow with the image.
//
// Contract: on success every store in IngestResult::committed holds the bytes durably under `key`;
// a store that failed holds nothing. On an error return no store holds anything (the pending
// objects abort). A refused image (a trap the format checks found) is an error: never committed.
//
// Thread safety: a call runs on the caller's thread (plus the digest threads it starts).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/result.h"
#include "formats/format.h"
#include "io/byte_source.h"
#include "store/store.h"

namespace ingot::service {

struct IngestOptions {
  std::string hash_algo = "sha512";
  uint64_t size_cap = 1ull << 40;  // kTooLarge past it
  size_t buffer_size = 1 << 20;
  size_t buffer_count = 8;
  // Keep going when one store fails (its failure is reported) as long as one store is left; false:
  // the first store failure is the call's error.
  bool tolerate_store_failures = false;
  // Called every `progress_every` bytes and at the end with the bytes so far; a non-OK Status
  // stops the ingest with that error (a lost task lease, a cancelled import).
  std::function<Status(uint64_t)> progress;
  uint64_t progress_every = 64ull << 20;
  // The MD5 (hex) the client declared (Content-MD5): bytes that do not match are refused before
  // anything is committed.
  std::optional<std::string> expected_md5;
  // The multihash (hex, of hash_algo) the client declared at create (os_hash_value); checked as
  // expected_md5 is.
  std::optional<std::string> expected_hash;
  // false: no MD5 and no multihash (IngestResult leaves them empty), except those that
  // expected_md5 and expected_hash need. Staging uses it: the import hashes the bytes it stores, which after a
  // conversion are not the staged ones, so hashing the staged bytes would be wasted CPU.
  bool digests = true;
  // Called once every byte is in and checked, before any store commits; a non-OK Status aborts
  // with nothing committed (an import checks here that its task is still its own).
  std::function<Status()> before_commit;
};

struct IngestResult {
  uint64_t bytes = 0;
  std::string md5;          // hex
  std::string hash_value;   // hex, of IngestOptions::hash_algo
  // What the inspector found; nullopt when it could not decide (it never guesses).
  std::optional<formats::ImageInfo> info;
  std::vector<store::Store*> committed;                 // durable now, in the order given
  std::vector<std::pair<std::string, Status>> failed;   // store id -> why (logged, not shown)
};

// Streams `body` into `stores` under `key`. `content_length`, when known, must match what arrives
// (kInvalidArgument otherwise). kRefused ("Image data was refused by the format safety checks: …")
// for a hostile image, kTooLarge past the cap, the body's own error when reading fails.
Result<IngestResult> Ingest(io::Reader& body, std::optional<uint64_t> content_length,
                            const std::vector<store::Store*>& stores, const std::string& key,
                            const IngestOptions& options);

}  // namespace ingot::service
