// MBR and GPT partition tables found on a raw disk. Private to formats/.
//
// Specs: MBR layout as in the UEFI specification 2.10, section 5.2.1 ("Legacy Master Boot Record");
// GPT header and partition entries as in section 5.3 ("GUID Partition Table (GPT) Disk Layout").
// Only what detection needs is parsed: which table, and where each partition starts and how long it
// is. Sector size 512 is tried first, then 4096 for GPT.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "io/byte_source.h"

namespace ingot::formats {

struct Partition {
  uint64_t offset = 0;  // bytes from the start of the disk
  uint64_t length = 0;  // bytes
};

struct PartitionTable {
  std::string kind;  // "" (none found), "mbr" or "gpt"
  std::vector<Partition> partitions;
};

// Never fails on malformed tables (a raw disk may hold anything): it reports what it can make sense
// of. Fails only when reading the source fails.
Result<PartitionTable> ReadPartitionTable(io::ByteSource& disk);

}  // namespace ingot::formats
