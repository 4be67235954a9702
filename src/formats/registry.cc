// Format names, the explicit list of drivers, and the format-agnostic entry points: Detect (with
// the "two formats at once" rule), Inspect and Open.
#include <array>
#include <cstdio>
#include <cstring>
#include <string>

#include "formats/driver.h"
#include "formats/partition_table.h"
#include "formats/views.h"

namespace ingot::formats {

namespace {

// Every driver except raw, which is what bytes are when no signature matches. The order is the
// order conflicts are reported in.
const std::array<const Driver*, 13>& SignatureDrivers() {
  static const std::array<const Driver*, 13> drivers = {
      &Qcow2Driver(), &VmdkDriver(),      &VhdxDriver(),  &VhdDriver(),  &VdiDriver(),
      &IsoDriver(),   &QcowDriver(),      &QedDriver(),   &LuksDriver(), &ParallelsDriver(),
      &BochsDriver(), &CloopDriver(),     &DmgDriver()};
  return drivers;
}

const Driver& DriverFor(Format format) {
  switch (format) {
    case Format::kRaw:
      return RawDriver();
    case Format::kQcow2:
      return Qcow2Driver();
    case Format::kVmdk:
      return VmdkDriver();
    case Format::kVhd:
      return VhdDriver();
    case Format::kVhdx:
      return VhdxDriver();
    case Format::kVdi:
      return VdiDriver();
    case Format::kIso:
      return IsoDriver();
    case Format::kQcow:
      return QcowDriver();
    case Format::kQed:
      return QedDriver();
    case Format::kParallels:
      return ParallelsDriver();
    case Format::kBochs:
      return BochsDriver();
    case Format::kCloop:
      return CloopDriver();
    case Format::kDmg:
      return DmgDriver();
    case Format::kLuks:
      return LuksDriver();
  }
  return RawDriver();
}

// The formats whose headers point at other places in the file (tables, descriptors): one of them
// hiding at a partition start is how a "raw" upload smuggles a qcow2 past a raw-only check.
// ISO is left out: a partition holding an ISO file system is ordinary.
bool IsContainerFormat(Format f) { return f != Format::kRaw && f != Format::kIso; }

// Refuses a raw image whose partitions start with another format's header.
Status CheckPartitionsHideNothing(io::ByteSource& file) {
  INGOT_ASSIGN_OR_RETURN(PartitionTable table, ReadPartitionTable(file));
  for (size_t i = 0; i < table.partitions.size(); ++i) {
    const Partition& p = table.partitions[i];
    if (p.offset == 0 || p.offset >= file.Size()) continue;
    SliceSource slice(file, p.offset, file.Size() - p.offset);
    for (const Driver* d : SignatureDrivers()) {
      if (!IsContainerFormat(d->format)) continue;
      if (d->probe(slice)) {
        return Refused("detect.partition_hides_format: " + table.kind + " partition " +
                       std::to_string(i + 1) + " at offset " + std::to_string(p.offset) +
                       " starts with a " + std::string(FormatName(d->format)) + " header");
      }
    }
  }
  return Status::Ok();
}

// The two-formats rule for partition tables (as oslo's GPT inspector applies it): an image whose
// header sits at offset 0 cannot also be a partitioned disk. A boot sector signature with a
// non-empty partition entry, or a GPT header at LBA 1 (512- or 4096-byte sectors), beside a qcow2,
// VMDK, dynamic VHD, ... header means a firmware or a partitioning tool would read the same bytes
// as another disk. Formats without a header at offset 0 are exempt: raw, ISO (isohybrid images
// carry an MBR by design), a fixed VHD (its data is the guest's disk, footer at the end) and DMG.
Status CheckNoPartitionTableBeside(io::ByteSource& file, Format format) {
  if (format == Format::kRaw || format == Format::kIso || format == Format::kDmg) return Status::Ok();
  uint8_t b[8];
  if (format == Format::kVhd &&
      !(io::ReadExact(file, 0, b).ok() && std::memcmp(b, "conectix", 8) == 0)) {
    return Status::Ok();
  }
  const std::string name(FormatName(format));
  uint8_t mbr[512];
  if (file.Size() >= 512 && io::ReadExact(file, 0, mbr).ok() && mbr[510] == 0x55 &&
      mbr[511] == 0xaa) {
    for (int i = 0; i < 4; ++i) {
      const uint8_t* e = mbr + 446 + 16 * i;
      const uint8_t type = e[4];
      if (type == 0) continue;
      char hex[8];
      std::snprintf(hex, sizeof hex, "0x%02x", type);
      return Refused("detect.polyglot: the bytes are both " + name +
                     " and an MBR partition table (0x55AA at offset 510, partition entry " +
                     std::to_string(i + 1) + " of type " + hex + ")");
    }
  }
  for (uint64_t lba1 : {uint64_t{512}, uint64_t{4096}}) {
    if (file.Size() < lba1 + 8 || !io::ReadExact(file, lba1, b).ok()) continue;
    if (std::memcmp(b, "EFI PART", 8) == 0) {
      return Refused("detect.polyglot: the bytes are both " + name +
                     " and a GPT partition table ('EFI PART' header at offset " +
                     std::to_string(lba1) + ")");
    }
  }
  return Status::Ok();
}

// An ISO's system area (its first 32 KiB, which ISO 9660 leaves to the platform) is where a
// hybrid image keeps its MBR; any other format's header there means another reader may take the
// file for that format. Offset 0 is covered by the multiple-formats rule already.
Status CheckIsoSystemAreaHoldsNothing(io::ByteSource& file) {
  constexpr uint64_t kSystemArea = 32 * 1024;
  for (uint64_t off = 512; off < kSystemArea && off < file.Size(); off += 512) {
    SliceSource slice(file, off, std::min<uint64_t>(kSystemArea, file.Size()) - off);
    for (const Driver* d : SignatureDrivers()) {
      if (d->format == Format::kIso) continue;
      if (d->probe(slice)) {
        return Refused("iso.system_area: a " + std::string(FormatName(d->format)) +
                       " header at offset " + std::to_string(off) + " of the ISO system area");
      }
    }
  }
  return Status::Ok();
}

}  // namespace

std::string_view FormatName(Format format) {
  switch (format) {
    case Format::kRaw:
      return "raw";
    case Format::kQcow2:
      return "qcow2";
    case Format::kVmdk:
      return "vmdk";
    case Format::kVhd:
      return "vpc";
    case Format::kVhdx:
      return "vhdx";
    case Format::kVdi:
      return "vdi";
    case Format::kIso:
      return "iso";
    case Format::kQcow:
      return "qcow";
    case Format::kQed:
      return "qed";
    case Format::kParallels:
      return "parallels";
    case Format::kBochs:
      return "bochs";
    case Format::kCloop:
      return "cloop";
    case Format::kDmg:
      return "dmg";
    case Format::kLuks:
      return "luks";
  }
  return "raw";
}

std::string_view GlanceDiskFormatName(Format format) {
  return format == Format::kVhd ? "vhd" : FormatName(format);
}

std::optional<Format> ParseFormatName(std::string_view name) {
  static constexpr Format kAll[] = {
      Format::kRaw,  Format::kQcow2, Format::kVmdk,      Format::kVhd,   Format::kVhdx,
      Format::kVdi,  Format::kIso,   Format::kQcow,      Format::kQed,   Format::kParallels,
      Format::kBochs, Format::kCloop, Format::kDmg,      Format::kLuks};
  for (Format f : kAll) {
    if (name == FormatName(f) || name == GlanceDiskFormatName(f)) return f;
  }
  return std::nullopt;
}

Result<Format> Detect(io::ByteSource& file) {
  std::optional<Format> found;
  for (const Driver* d : SignatureDrivers()) {
    if (!d->probe(file)) continue;
    if (found) {
      return Refused("detect.multiple_formats: the bytes are both " +
                     std::string(FormatName(*found)) + " and " +
                     std::string(FormatName(d->format)));
    }
    found = d->format;
  }
  if (found) {
    INGOT_RETURN_IF_ERROR(CheckNoPartitionTableBeside(file, *found));
    if (*found == Format::kIso) INGOT_RETURN_IF_ERROR(CheckIsoSystemAreaHoldsNothing(file));
    return *found;
  }
  INGOT_RETURN_IF_ERROR(CheckPartitionsHideNothing(file));
  return Format::kRaw;
}

Result<ImageInfo> Inspect(io::ByteSource& file) {
  INGOT_ASSIGN_OR_RETURN(Format format, Detect(file));
  return DriverFor(format).inspect(file);
}

Result<std::unique_ptr<DiskImage>> Open(io::ByteSource& file, std::optional<Format> format) {
  INGOT_ASSIGN_OR_RETURN(Format detected, Detect(file));
  // A declared format must agree with the bytes: reading a qcow2 "as raw" would hand the guest the
  // container's headers; reading raw bytes "as qcow2" cannot work.
  // An ISO is already a plain disk, so declaring it raw is not a mismatch.
  const bool iso_as_raw = format == Format::kRaw && detected == Format::kIso;
  if (format && *format != detected && !iso_as_raw) {
    return Refused("detect.format_mismatch: declared " + std::string(FormatName(*format)) +
                   " but the bytes are " + std::string(FormatName(detected)));
  }
  return DriverFor(detected).open(file);
}

}  // namespace ingot::formats
