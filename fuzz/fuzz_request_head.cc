// libFuzzer target: a request as the server reads it off a socket. Beast's parser takes the head
// with the server's header limit (connection.cc), then the edge's own checks run on it — framing
// (RFC 9112 §6.1, §6.3) and Host via CheckFraming, the target via ParseTarget — and, for a head the
// edge admits, the body is drained through Beast's Content-Length or chunked decoder in small reads,
// as a handler's ReadBody does. The bytes may hold several pipelined requests; each is judged.
//
// Invariants (any violation aborts):
//  - an admitted head with Content-Length has the length Beast decoded, and no Transfer-Encoding;
//  - an admitted chunked head never carries Content-Length;
//  - a body read never yields more bytes than the head declared.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/parser.hpp>

#include "http/request_head.h"

namespace bhttp = boost::beast::http;

namespace {

// Feeds `in` to the parser until it needs more input or more room for body bytes; returns the
// bytes consumed, or kError on a parse error.
constexpr size_t kError = SIZE_MAX;

template <typename Parser>
size_t Feed(Parser& p, std::string_view in) {
  boost::system::error_code ec;
  size_t used = p.put(boost::asio::buffer(in.data(), in.size()), ec);
  if (ec == bhttp::error::need_more || ec == bhttp::error::need_buffer) return used;
  if (ec) return kError;
  return used;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view rest(reinterpret_cast<const char*>(data), size);
  for (int requests = 0; requests < 8 && !rest.empty(); ++requests) {
    bhttp::request_parser<bhttp::buffer_body> parser;
    parser.header_limit(64 * 1024);
    parser.body_limit(UINT64_MAX);
    parser.eager(false);
    // The head: Beast wants the whole of it in one buffer once it has seen "\r\n\r\n".
    size_t used = Feed(parser, rest);
    if (used == kError || !parser.is_header_done()) return 0;
    rest.remove_prefix(used);

    const auto& msg = parser.get();
    ingot::http::Framing framing =
        ingot::http::CheckFraming(ingot::http::FramingFieldsOf(msg.version(), msg));
    auto target = ingot::http::ParseTarget(std::string_view(msg.target()));
    if (framing.refusal != 0 || !target) return 0;  // answered and the connection closed
    if (framing.kind == ingot::http::Framing::Kind::kLength) {
      if (msg.count(bhttp::field::transfer_encoding) != 0) std::abort();
      if (!parser.content_length()) std::abort();
    }
    if (framing.kind == ingot::http::Framing::Kind::kChunked &&
        msg.count(bhttp::field::content_length) != 0) {
      std::abort();
    }

    // The body, in reads of at most 7 bytes of output, as a handler pulls it.
    const auto declared = parser.content_length();
    uint64_t got = 0;
    char out[7];
    while (!parser.is_done()) {
      parser.get().body().data = out;
      parser.get().body().size = sizeof out;
      size_t n = Feed(parser, rest);
      if (n == kError) return 0;
      rest.remove_prefix(n);
      got += sizeof out - parser.get().body().size;
      if (declared && got > *declared) std::abort();
      if (n == 0 && !parser.is_done() && parser.get().body().size == sizeof out) {
        return 0;  // needs bytes the input does not hold
      }
    }
  }
  return 0;
}
