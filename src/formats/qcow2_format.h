// The qcow2 on-disk layout, as specified by qemu's docs/interop/qcow2.txt (QEMU 7.2 edition): the
// constants the reader (qcow2.cc) and the writer (Qcow2Output in convert.cc) share. Private to
// formats/. All multi-byte fields are big-endian.
#pragma once

#include <cstdint>

namespace ingot::formats::qcow2 {

inline constexpr uint8_t kMagic[4] = {'Q', 'F', 'I', 0xfb};

// Header field offsets ("Header" section of the spec).
inline constexpr uint32_t kVersionOff = 4;
inline constexpr uint32_t kBackingFileOffsetOff = 8;
inline constexpr uint32_t kBackingFileSizeOff = 16;
inline constexpr uint32_t kClusterBitsOff = 20;
inline constexpr uint32_t kSizeOff = 24;
inline constexpr uint32_t kCryptMethodOff = 32;
inline constexpr uint32_t kL1SizeOff = 36;
inline constexpr uint32_t kL1TableOffsetOff = 40;
inline constexpr uint32_t kRefcountTableOffsetOff = 48;
inline constexpr uint32_t kRefcountTableClustersOff = 56;
inline constexpr uint32_t kNbSnapshotsOff = 60;
inline constexpr uint32_t kSnapshotsOffsetOff = 64;
inline constexpr uint32_t kIncompatibleOff = 72;  // version 3 from here on
inline constexpr uint32_t kCompatibleOff = 80;
inline constexpr uint32_t kAutoclearOff = 88;
inline constexpr uint32_t kRefcountOrderOff = 96;
inline constexpr uint32_t kHeaderLengthOff = 100;
inline constexpr uint32_t kCompressionTypeOff = 104;

inline constexpr uint32_t kV2HeaderLength = 72;
inline constexpr uint32_t kV3MinHeaderLength = 104;
inline constexpr uint32_t kV3HeaderLengthWithCompression = 112;

// Incompatible feature bits.
inline constexpr uint64_t kIncompatDirty = 1ull << 0;
inline constexpr uint64_t kIncompatCorrupt = 1ull << 1;
inline constexpr uint64_t kIncompatDataFile = 1ull << 2;
inline constexpr uint64_t kIncompatCompressionType = 1ull << 3;
inline constexpr uint64_t kIncompatExtendedL2 = 1ull << 4;
inline constexpr uint64_t kIncompatKnown = (1ull << 5) - 1;
// Compatible feature bits.
inline constexpr uint64_t kCompatLazyRefcounts = 1ull << 0;
// Autoclear feature bits.
inline constexpr uint64_t kAutoclearRawDataFile = 1ull << 1;

inline constexpr uint8_t kCompressionZlib = 0;
inline constexpr uint8_t kCompressionZstd = 1;

// Header extension types.
inline constexpr uint32_t kExtEnd = 0;
inline constexpr uint32_t kExtBackingFormat = 0xe2792aca;
inline constexpr uint32_t kExtFeatureNames = 0x6803f857;
inline constexpr uint32_t kExtBitmaps = 0x23852875;
inline constexpr uint32_t kExtEncryption = 0x0537be77;
inline constexpr uint32_t kExtDataFile = 0x44415441;

// L1 and standard L2 entries.
inline constexpr uint64_t kOffsetMask = 0x00fffffffffffe00ull;      // bits 9-55
inline constexpr uint64_t kL1ReservedMask = 0x7f000000000001ffull;  // bits 0-8 and 56-62
inline constexpr uint64_t kCopied = 1ull << 63;
inline constexpr uint64_t kCompressed = 1ull << 62;
inline constexpr uint64_t kZeroFlag = 1ull << 0;                            // standard L2 entry, v3
inline constexpr uint64_t kL2StandardReservedMask = 0x3f000000000001feull;  // bits 1-8, 56-61

inline constexpr uint32_t kMinClusterBits = 9;
inline constexpr uint32_t kMaxClusterBits = 21;
inline constexpr uint32_t kSubclustersPerCluster = 32;  // extended L2
inline constexpr uint32_t kMaxSnapshots = 65536;
inline constexpr uint32_t kMaxBackingFileSize = 1023;

// For a compressed L2 entry: bits 0..x-1 are the host offset and bits x..61 the count of additional
// 512-byte sectors, where x = 62 - (cluster_bits - 8).
inline constexpr uint32_t CompressedOffsetBits(uint32_t cluster_bits) {
  return 62 - (cluster_bits - 8);
}

}  // namespace ingot::formats::qcow2
