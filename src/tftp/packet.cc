#include "tftp/packet.h"

#include <algorithm>
#include <charconv>
#include <cstring>

namespace ingot::tftp {
namespace {

uint16_t Get16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }

void Put16(uint16_t v, std::vector<uint8_t>& out) {
  out.push_back(static_cast<uint8_t>(v >> 8));
  out.push_back(static_cast<uint8_t>(v & 0xff));
}

void PutString(std::string_view s, std::vector<uint8_t>& out) {
  out.insert(out.end(), s.begin(), s.end());
  out.push_back(0);
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

// A NUL-terminated string starting at `pos`; advances `pos` past the NUL.
std::optional<std::string_view> TakeString(std::span<const uint8_t> d, size_t& pos) {
  const uint8_t* begin = d.data() + pos;
  const void* nul = std::memchr(begin, 0, d.size() - pos);
  if (nul == nullptr) return std::nullopt;
  size_t len = static_cast<const uint8_t*>(nul) - begin;
  std::string_view s(reinterpret_cast<const char*>(begin), len);
  pos += len + 1;
  return s;
}

// Name/value pairs up to the end; trailing NUL padding is tolerated.
Status TakeOptions(std::span<const uint8_t> d, size_t pos, std::vector<Option>& options) {
  while (pos < d.size()) {
    if (std::all_of(d.begin() + pos, d.end(), [](uint8_t b) { return b == 0; })) break;
    auto name = TakeString(d, pos);
    if (!name || name->empty()) return InvalidArgument("malformed option name");
    if (pos >= d.size()) return InvalidArgument("option without a value");
    auto value = TakeString(d, pos);
    if (!value) return InvalidArgument("option value not terminated");
    if (options.size() >= kMaxOptions) return InvalidArgument("too many options");
    options.push_back(Option{*name, *value});
  }
  return Status::Ok();
}

// A decimal number without sign, spaces or overflow.
std::optional<uint64_t> ParseDecimal(std::string_view s) {
  if (s.empty() || s.size() > 19) return std::nullopt;
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

}  // namespace

Result<Packet> ParsePacket(std::span<const uint8_t> d) {
  if (d.size() < 2) return InvalidArgument("packet shorter than an opcode");
  Packet p;
  const uint16_t op = Get16(d.data());
  switch (op) {
    case 1:
    case 2: {
      p.opcode = static_cast<Opcode>(op);
      p.request.opcode = p.opcode;
      size_t pos = 2;
      auto filename = TakeString(d, pos);
      if (!filename) return InvalidArgument("filename not terminated");
      if (filename->empty()) return InvalidArgument("empty filename");
      if (pos >= d.size()) return InvalidArgument("request without a mode");
      auto mode = TakeString(d, pos);
      if (!mode) return InvalidArgument("mode not terminated");
      p.request.filename = *filename;
      p.request.mode = *mode;
      INGOT_RETURN_IF_ERROR(TakeOptions(d, pos, p.request.options));
      return p;
    }
    case 3:
      if (d.size() < 4) return InvalidArgument("short DATA");
      p.opcode = Opcode::kData;
      p.data.block = Get16(d.data() + 2);
      p.data.payload = d.subspan(4);
      return p;
    case 4:
      // Some clients send an ACK with trailing bytes; the block number is what counts.
      if (d.size() < 4) return InvalidArgument("short ACK");
      p.opcode = Opcode::kAck;
      p.ack.block = Get16(d.data() + 2);
      return p;
    case 5: {
      if (d.size() < 4) return InvalidArgument("short ERROR");
      p.opcode = Opcode::kError;
      p.error.code = Get16(d.data() + 2);
      size_t pos = 4;
      auto msg = TakeString(d, pos);
      p.error.message =
          msg ? *msg : std::string_view(reinterpret_cast<const char*>(d.data() + 4), d.size() - 4);
      return p;
    }
    case 6:
      p.opcode = Opcode::kOack;
      INGOT_RETURN_IF_ERROR(TakeOptions(d, 2, p.oack));
      return p;
    default:
      return InvalidArgument("unknown opcode " + std::to_string(op));
  }
}

Result<Mode> ParseMode(std::string_view mode) {
  if (EqualsIgnoreCase(mode, "octet")) return Mode::kOctet;
  if (EqualsIgnoreCase(mode, "netascii")) return Mode::kNetascii;
  return Unsupported("unsupported transfer mode");
}

Result<Negotiated> Negotiate(const std::vector<Option>& options, std::optional<uint64_t> file_size,
                             const NegotiationLimits& limits) {
  Negotiated n;
  const uint32_t max_blksize = std::clamp(limits.max_blksize, kMinBlksize, kMaxBlksize);
  const uint32_t max_window = std::clamp<uint32_t>(limits.max_windowsize, 1, kMaxWindowsize);
  bool seen_blksize = false, seen_window = false, seen_timeout = false, seen_tsize = false;
  for (const Option& o : options) {
    if (EqualsIgnoreCase(o.name, "blksize")) {
      if (seen_blksize) continue;
      seen_blksize = true;
      auto v = ParseDecimal(o.value);
      if (!v || *v < kMinBlksize) return InvalidArgument("invalid blksize");
      n.blksize = static_cast<uint32_t>(std::min<uint64_t>(*v, max_blksize));
      n.oack.emplace_back("blksize", std::to_string(n.blksize));
    } else if (EqualsIgnoreCase(o.name, "windowsize")) {
      if (seen_window) continue;
      seen_window = true;
      auto v = ParseDecimal(o.value);
      if (!v || *v < 1 || *v > kMaxWindowsize) return InvalidArgument("invalid windowsize");
      n.windowsize = static_cast<uint32_t>(std::min<uint64_t>(*v, max_window));
      n.oack.emplace_back("windowsize", std::to_string(n.windowsize));
    } else if (EqualsIgnoreCase(o.name, "timeout")) {
      if (seen_timeout) continue;
      seen_timeout = true;
      auto v = ParseDecimal(o.value);
      if (!v || *v < 1 || *v > 255) return InvalidArgument("invalid timeout");
      if (!limits.allow_timeout_option) continue;
      n.timeout_seconds = static_cast<uint32_t>(*v);
      n.oack.emplace_back("timeout", std::to_string(*v));
    } else if (EqualsIgnoreCase(o.name, "tsize")) {
      if (seen_tsize) continue;
      seen_tsize = true;
      if (!ParseDecimal(o.value)) return InvalidArgument("invalid tsize");
      if (!file_size) continue;
      n.oack.emplace_back("tsize", std::to_string(*file_size));
    }
  }
  return n;
}

void EncodeData(uint16_t block, std::span<const uint8_t> payload, std::vector<uint8_t>& out) {
  out.clear();
  out.reserve(4 + payload.size());
  Put16(3, out);
  Put16(block, out);
  out.insert(out.end(), payload.begin(), payload.end());
}

void EncodeAck(uint16_t block, std::vector<uint8_t>& out) {
  out.clear();
  Put16(4, out);
  Put16(block, out);
}

void EncodeError(ErrorCode code, std::string_view message, std::vector<uint8_t>& out) {
  out.clear();
  Put16(5, out);
  Put16(static_cast<uint16_t>(code), out);
  // A message is ours, but never let a NUL in it cut the packet short.
  std::string_view m = message.substr(0, std::min(message.find('\0'), message.size()));
  PutString(m.substr(0, 200), out);
}

void EncodeOack(const std::vector<std::pair<std::string, std::string>>& options,
                std::vector<uint8_t>& out) {
  out.clear();
  Put16(6, out);
  for (const auto& [name, value] : options) {
    PutString(name, out);
    PutString(value, out);
  }
}

void EncodeRequest(Opcode opcode, std::string_view filename, std::string_view mode,
                   const std::vector<std::pair<std::string, std::string>>& options,
                   std::vector<uint8_t>& out) {
  out.clear();
  Put16(static_cast<uint16_t>(opcode), out);
  PutString(filename, out);
  PutString(mode, out);
  for (const auto& [name, value] : options) {
    PutString(name, out);
    PutString(value, out);
  }
}

}  // namespace ingot::tftp
