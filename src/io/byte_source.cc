// ReadExact: the one loop that turns ReadAt's short reads into "all of it or an error".
#include <string>

#include "io/byte_source.h"

namespace ingot::io {

Status ReadExact(ByteSource& source, uint64_t offset, std::span<uint8_t> buf) {
  size_t done = 0;
  while (done < buf.size()) {
    INGOT_ASSIGN_OR_RETURN(size_t n, source.ReadAt(offset + done, buf.subspan(done)));
    if (n == 0) {
      return OutOfRange("short read at offset " + std::to_string(offset + done) + ": wanted " +
                        std::to_string(buf.size() - done) + " more bytes, source size " +
                        std::to_string(source.Size()));
    }
    done += n;
  }
  return Status::Ok();
}

}  // namespace ingot::io
