// libFuzzer target: the three entry points that judge an image give one verdict on the same bytes.
// Detect, Inspect (what `ingot-img check` and `ingot-img info` run) and Open (what conversion runs)
// over the whole file, and the streaming inspector (upload and import) fed the bytes in uneven
// chunks. With the default options the streaming head (4 MiB) holds every input the fuzzer makes
// (-max_len 1 MiB in fuzz/run.sh), so the inspector must reach exactly Inspect's verdict: the same
// status code and message, or the same format. Any disagreement aborts.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "formats/format.h"
#include "formats/streaming.h"
#include "io/memory.h"

namespace {

[[noreturn]] void Disagree(const char* what, const std::string& a, const std::string& b) {
  std::fprintf(stderr, "verdicts disagree (%s): '%s' vs '%s'\n", what, a.c_str(), b.c_str());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ingot;
  io::MemorySource src(std::vector<uint8_t>(data, data + size));
  auto detected = formats::Detect(src);
  auto whole = formats::Inspect(src);
  auto image = formats::Open(src);

  // Detect refusing means Inspect refuses with the same words; Detect's format is Inspect's.
  if (!detected.ok()) {
    if (whole.ok() || whole.status().message() != detected.status().message())
      Disagree("detect/inspect", detected.status().ToString(), whole.status().ToString());
  } else if (whole.ok() && whole->format != *detected) {
    Disagree("detect/inspect format", std::string(formats::FormatName(*detected)),
             std::string(formats::FormatName(whole->format)));
  }
  // Open runs Inspect's checks first: whatever Inspect refuses, Open refuses the same way.
  if (!whole.ok() && whole.status().code() == Code::kRefused) {
    if (image.ok() || image.status().message() != whole.status().message())
      Disagree("inspect/open", whole.status().ToString(),
               image.ok() ? "opened" : image.status().ToString());
  }
  // Open's disk is Inspect's virtual size. An ISO is the one exception, by design (iso.cc): its
  // virtual size is the volume's, while the disk is the whole file, which may hold more after the
  // volume (an appended EFI partition), as qemu reads it.
  if (image.ok() && whole.ok()) {
    const bool iso = whole->format == formats::Format::kIso;
    const uint64_t disk = (*image)->Size();
    if (iso ? (disk != size || whole->virtual_size > disk) : disk != whole->virtual_size) {
      Disagree("inspect/open size", std::to_string(whole->virtual_size), std::to_string(disk));
    }
  }

  formats::StreamingInspector in;
  size_t pos = 0, step = 1;
  while (pos < size) {
    const size_t n = std::min(size - pos, step);
    (void)in.Write(std::span<const uint8_t>(data + pos, n));
    pos += n;
    step = step * 5 + 3;
  }
  auto streamed = in.Finish();
  if (size <= (1u << 20) && streamed.status().code() != Code::kUnavailable) {
    if (streamed.ok() != whole.ok()) {
      Disagree("inspect/streaming", whole.status().ToString(), streamed.status().ToString());
    }
    if (!whole.ok() && whole.status().message() != streamed.status().message()) {
      Disagree("inspect/streaming message", whole.status().ToString(),
               streamed.status().ToString());
    }
    if (whole.ok() && (whole->format != streamed->format ||
                       whole->virtual_size != streamed->virtual_size)) {
      Disagree("inspect/streaming format", std::string(formats::FormatName(whole->format)),
               std::string(formats::FormatName(streamed->format)));
    }
  }
  return 0;
}
