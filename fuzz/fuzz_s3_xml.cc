// The S3 driver's reading of an S3 service's XML answers (store/s3/s3_store.h: XmlValues): list
// results, multipart-upload answers, errors. The endpoint is the operator's, but a broken or
// hostile one must not crash or hang the daemon: every answer is read within bounds.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "store/s3/s3_store.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view xml(reinterpret_cast<const char*>(data), size);
  for (std::string_view tag : {"Key", "UploadId", "ETag", "Code", "Message", "IsTruncated"}) {
    for (const std::string& v : ingot::store::XmlValues(xml, tag)) {
      if (v.size() > size) __builtin_trap();  // decoding never grows a value
    }
  }
  for (const std::string& upload : ingot::store::XmlValues(xml, "Upload")) {
    (void)ingot::store::XmlValues(upload, "Initiated");
  }
  return 0;
}
