// The contract each format reader implements; registry.cc lists the drivers explicitly (no static
// registration). Internal to formats/: callers use format.h.
#pragma once

#include <memory>

#include "formats/format.h"

namespace ingot::formats {

struct Driver {
  Format format;
  // Cheap: true when the bytes carry this format's signature (magic at its place). Reads only what
  // the signature needs (e.g. VHD: the last 512 bytes; ISO: the descriptor at 32 KiB).
  bool (*probe)(io::ByteSource& file);
  // Full header parse plus every safety check of the format. kRefused names the rule and the value.
  Result<ImageInfo> (*inspect)(io::ByteSource& file);
  // A virtual-disk view; runs the same checks as inspect first. `file` outlives the result.
  Result<std::unique_ptr<DiskImage>> (*open)(io::ByteSource& file);
};

// One per format, each defined in its own reader's .cc file.
const Driver& RawDriver();
const Driver& Qcow2Driver();
const Driver& VmdkDriver();
const Driver& VhdDriver();
const Driver& VhdxDriver();
const Driver& VdiDriver();
const Driver& IsoDriver();
// unsupported.cc: formats qemu opens and Ingot refuses, each by qemu's own probe rule.
const Driver& QcowDriver();
const Driver& QedDriver();
const Driver& ParallelsDriver();
const Driver& BochsDriver();
const Driver& CloopDriver();
const Driver& DmgDriver();
const Driver& LuksDriver();

}  // namespace ingot::formats
