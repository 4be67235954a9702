// The deploy engine's parsers of client text: plan script attribute references and substitution,
// build plan attribute declarations (constraints JSON, regexes), step parameters, and the
// multipart upload reader over a trickling body.
#include <cstddef>
#include <cstdint>
#include <string>

#include "deploy/artifacts/attributes.h"
#include "deploy/artifacts/multipart.h"

namespace {

class Trickle final : public ingot::io::Reader {
 public:
  Trickle(std::string_view data, size_t step) : data_(data), step_(step) {}
  ingot::Result<size_t> Read(std::span<uint8_t> buf) override {
    size_t n = std::min({step_, buf.size(), data_.size() - pos_});
    std::copy_n(data_.data() + pos_, n, buf.data());
    pos_ += n;
    return n;
  }

 private:
  std::string_view data_;
  size_t step_;
  size_t pos_ = 0;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ingot::deploy::artifacts;
  if (size < 1) return 0;
  std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 4) {
    case 0: {
      auto refs = ParseAttributeRefs(text);
      std::map<std::string, std::string> values;
      for (size_t i = 0; i < refs.size(); i += 2) values[refs[i].Key()] = "v";
      (void)Substitute(text, values);
      (void)ScriptAttributes(text);
      break;
    }
    case 1: {
      boost::system::error_code ec;
      boost::json::value v = boost::json::parse(text, ec);
      if (ec) break;
      auto spec = ParseAttributeSpec(v);
      if (spec.ok()) {
        (void)AttributeSpecJson(*spec);
        (void)CheckValue(*spec, spec->name, "value-1");
      }
      (void)ParseAttributeOverride(v);
      break;
    }
    case 2:
      (void)ParseStepParameters(text);
      break;
    case 3: {
      Trickle in(text, 1 + data[0] / 4);
      MultipartFileReader r(in, "BOUNDARY");
      if (!r.Open().ok()) break;
      uint8_t buf[512];
      for (;;) {
        auto n = r.Read(buf);
        if (!n.ok() || *n == 0) break;
      }
      break;
    }
  }
  return 0;
}
