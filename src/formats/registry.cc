// Format names, the explicit list of drivers, and the format-agnostic entry points: Detect (with
// the "two formats at once" rule), Inspect and Open.
#include <array>
#include <string>

#include "formats/driver.h"
#include "formats/partition_table.h"
#include "formats/views.h"

namespace ingot::formats {

namespace {

// Every driver except raw, which is what bytes are when no signature matches. The order is the
// order conflicts are reported in.
const std::array<const Driver*, 6>& SignatureDrivers() {
  static const std::array<const Driver*, 6> drivers = {&Qcow2Driver(), &VmdkDriver(), &VhdxDriver(),
                                                       &VhdDriver(),   &VdiDriver(),  &IsoDriver()};
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
  }
  return "raw";
}

std::string_view GlanceDiskFormatName(Format format) {
  return format == Format::kVhd ? "vhd" : FormatName(format);
}

std::optional<Format> ParseFormatName(std::string_view name) {
  static constexpr Format kAll[] = {Format::kRaw,  Format::kQcow2, Format::kVmdk, Format::kVhd,
                                    Format::kVhdx, Format::kVdi,   Format::kIso};
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
  if (found) return *found;
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
