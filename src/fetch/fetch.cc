// Open and the streaming Download over libcurl's multi interface.
//
// One hop is one curl easy handle in its own multi handle (so its DNS cache holds only the
// addresses we checked). curl never resolves a user's host: the URL it gets is rebuilt from the
// checked pieces, a name is pinned to its checked addresses with CURLOPT_RESOLVE, and the
// open-socket callback refuses any peer that is not one of them. curl never follows a redirect:
// Open reads the head, and on a 3xx starts the next hop through every rule again.
//
// The body is pulled from Read(): curl_multi_perform runs on the caller's thread and the write
// callback copies into the caller's buffer. What does not fit waits in a buffer of at most one
// curl delivery (CURL_MAX_WRITE_SIZE); past that the transfer is paused until the next Read, so
// memory stays bounded whatever the body's size.
#include "fetch/fetch.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netdb.h>
#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <exception>
#include <mutex>
#include <new>

#include "fetch/url_text.h"

namespace ingot::fetch {
namespace {

using Clock = std::chrono::steady_clock;

// How long one curl_multi_poll may sleep; short enough that our own deadlines stay precise.
constexpr std::chrono::milliseconds kMaxPollWait{250};

Status GlobalInit() {
  static std::once_flag once;
  static CURLcode rc = CURLE_OK;
  std::call_once(once, [] { rc = curl_global_init(CURL_GLOBAL_DEFAULT); });
  if (rc != CURLE_OK)
    return Internal(std::string("fetch: curl_global_init: ") + curl_easy_strerror(rc));
  return Status::Ok();
}

std::string LowerAscii(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n'))
    s.remove_suffix(1);
  return s;
}

std::string AddressText(const sockaddr* sa) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (sa->sa_family == AF_INET) {
    auto* in = reinterpret_cast<const sockaddr_in*>(sa);
    if (inet_ntop(AF_INET, &in->sin_addr, buf, sizeof(buf)) != nullptr) return buf;
  } else if (sa->sa_family == AF_INET6) {
    auto* in6 = reinterpret_cast<const sockaddr_in6*>(sa);
    if (inet_ntop(AF_INET6, &in6->sin6_addr, buf, sizeof(buf)) != nullptr) return buf;
  }
  return "";
}

bool IsRedirect(int status) {
  return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

bool SameOrigin(const ParsedUrl& a, const ParsedUrl& b) {
  return a.scheme == b.scheme && a.host == b.host && a.port == b.port;
}

// Refusals at a redirect keep the rule's name first and say which hop it was.
Status AtHop(Status status, int hop, const std::string& url) {
  if (status.ok() || hop == 0) return status;
  return Status(status.code(),
                status.message() + " (redirect " + std::to_string(hop) + " to " + url + ")");
}

// The host's addresses, resolved once, each checked by the host and address rules. The connection
// may only go to these.
Result<std::vector<std::string>> ResolveAndCheck(const ParsedUrl& url,
                                                 const FilterOptions& filter) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  int rc = getaddrinfo(url.host.c_str(), nullptr, &hints, &res);
  if (rc != 0) return Unavailable("fetch: cannot resolve " + url.host + ": " + gai_strerror(rc));
  std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> guard(res, freeaddrinfo);
  std::vector<std::string> addresses;
  for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    std::string text = AddressText(ai->ai_addr);
    if (text.empty()) continue;
    if (std::find(addresses.begin(), addresses.end(), text) == addresses.end())
      addresses.push_back(std::move(text));
  }
  if (addresses.empty()) return Unavailable("fetch: " + url.host + " has no IPv4 or IPv6 address");
  bool host_allowed = internal::HostListed(url.host, filter.allowed_hosts);
  for (const std::string& address : addresses) {
    // A name pointing at a disallowed address is that address, whatever it is called.
    if (internal::HostListed(address, filter.disallowed_hosts)) {
      return Refused("fetch.host: " + url.host + " resolves to " + address + ", a disallowed host");
    }
    if (host_allowed || internal::HostListed(address, filter.allowed_hosts) ||
        InNetworks(address, filter.allowed_networks)) {
      continue;
    }
    if (IsNonPublicAddress(address)) {
      return Refused("fetch.address: " + url.host + " resolves to " + address +
                     ", which is not a public address");
    }
  }
  return addresses;
}

// One hop's transfer; once its head is in with a 2xx status it is the Download.
class Transfer final : public Download {
 public:
  explicit Transfer(FetchOptions options) : options_(std::move(options)) {}
  Transfer(const Transfer&) = delete;
  Transfer& operator=(const Transfer&) = delete;

  ~Transfer() override {
    if (multi_ != nullptr && easy_ != nullptr) curl_multi_remove_handle(multi_, easy_);
    if (easy_ != nullptr) curl_easy_cleanup(easy_);
    if (multi_ != nullptr) curl_multi_cleanup(multi_);
    curl_slist_free_all(resolve_);
    curl_slist_free_all(request_headers_);
  }

  Status Start(const ParsedUrl& url, std::vector<std::string> addresses, bool send_headers);
  // Drives the transfer until the response head is in, within header_timeout.
  Status AwaitHead();

  void set_final_url(std::string url) { final_url_ = std::move(url); }

  // Download
  int status() const override { return status_; }
  std::optional<uint64_t> content_length() const override { return content_length_; }
  std::string_view final_url() const override { return final_url_; }
  std::string_view header(std::string_view name) const override {
    std::string key = LowerAscii(name);
    for (const auto& [k, v] : headers_) {
      if (k == key) return v;
    }
    return "";
  }

  Result<size_t> Read(std::span<uint8_t> buf) override {
    try {
      return ReadBody(buf);
    } catch (const std::bad_alloc&) {
      return Internal("fetch: out of memory");
    } catch (...) {
      return Internal("fetch: unexpected exception while reading the body");
    }
  }

 private:
  Result<size_t> ReadBody(std::span<uint8_t> buf);
  // Runs curl until `enough()` or the transfer ends; kTimeout (no message) once `deadline` passes.
  template <typename Pred>
  Status Drive(Clock::time_point deadline, Pred enough);
  // The transfer's end as a Status (OK for a complete body).
  Status Finished() const;
  Status CurlFailure(CURLcode code) const;

  static size_t OnHeader(char* data, size_t size, size_t count, void* self);
  static size_t OnBody(char* data, size_t size, size_t count, void* self);
  static curl_socket_t OnOpenSocket(void* self, curlsocktype purpose, curl_sockaddr* address);

  const FetchOptions options_;
  std::string url_text_;
  CURLM* multi_ = nullptr;
  CURL* easy_ = nullptr;
  curl_slist* resolve_ = nullptr;
  curl_slist* request_headers_ = nullptr;
  char curl_error_[CURL_ERROR_SIZE] = {};
  std::vector<std::string> checked_;  // the addresses the rules passed; the only allowed peers
  std::string refused_peer_;          // set when curl tried to connect elsewhere

  // The head.
  bool head_done_ = false;
  int status_ = 0;
  std::vector<std::pair<std::string, std::string>> headers_;  // names lower case
  std::optional<uint64_t> content_length_;
  std::string final_url_;

  // The body: the caller's buffer while a Read runs, and what did not fit in it.
  std::span<uint8_t> target_;
  size_t filled_ = 0;
  std::string overflow_;
  size_t overflow_pos_ = 0;
  bool paused_ = false;
  bool callback_failed_ = false;
  uint64_t delivered_ = 0;  // body bytes handed to the caller

  bool done_ = false;
  CURLcode result_ = CURLE_OK;
  Status error_;  // sticky: once a Read fails, every later Read fails the same way
};

Status Transfer::Start(const ParsedUrl& url, std::vector<std::string> addresses,
                       bool send_headers) {
  checked_ = std::move(addresses);
  url_text_ = internal::UrlText(url);
  multi_ = curl_multi_init();
  easy_ = curl_easy_init();
  if (multi_ == nullptr || easy_ == nullptr) return Internal("fetch: cannot create a curl handle");

  // A name is pinned to its checked addresses; a literal address is what curl connects to anyway.
  bool literal = std::find(checked_.begin(), checked_.end(), url.host) != checked_.end();
  if (!literal) {
    std::string entry = url.host + ":" + std::to_string(url.port) + ":";
    for (size_t i = 0; i < checked_.size(); ++i) {
      if (i > 0) entry += ',';
      entry += checked_[i].find(':') != std::string::npos ? "[" + checked_[i] + "]" : checked_[i];
    }
    resolve_ = curl_slist_append(nullptr, entry.c_str());
    if (resolve_ == nullptr) return Internal("fetch: out of memory");
  }
  if (send_headers) {
    for (const auto& [name, value] : options_.headers) {
      auto bad = [](std::string_view s) {
        return std::any_of(s.begin(), s.end(),
                           [](char c) { return c == '\r' || c == '\n' || c == '\0'; });
      };
      if (name.empty() || bad(name) || bad(value) || name.find(':') != std::string::npos)
        return InvalidArgument("fetch: bad request header '" + name + "'");
      // "Name;" is curl's spelling of a header with an empty value ("Name:" would remove it).
      std::string line = value.empty() ? name + ";" : name + ": " + value;
      curl_slist* next = curl_slist_append(request_headers_, line.c_str());
      if (next == nullptr) return Internal("fetch: out of memory");
      request_headers_ = next;
    }
  }

  CURLcode rc = CURLE_OK;
  auto set = [&](CURLoption option, auto value) {
    if (rc == CURLE_OK) rc = curl_easy_setopt(easy_, option, value);
  };
  set(CURLOPT_URL, url_text_.c_str());
  set(CURLOPT_PROTOCOLS_STR, "http,https");
  set(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  set(CURLOPT_FOLLOWLOCATION, 0L);
  set(CURLOPT_MAXREDIRS, 0L);
  // A proxy would resolve and connect on its own, past every rule: none, whatever the environment.
  set(CURLOPT_PROXY, "");
  set(CURLOPT_NOSIGNAL, 1L);
  set(CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(options_.connect_timeout.count()));
  set(CURLOPT_TCP_KEEPALIVE, 1L);
  set(CURLOPT_HTTP_CONTENT_DECODING, 0L);  // the bytes as served; we never ask for an encoding
  set(CURLOPT_USERAGENT, "ingot-fetch");
  set(CURLOPT_ERRORBUFFER, curl_error_);
  if (resolve_ != nullptr) set(CURLOPT_RESOLVE, resolve_);
  if (request_headers_ != nullptr) set(CURLOPT_HTTPHEADER, request_headers_);
  set(CURLOPT_OPENSOCKETFUNCTION, &Transfer::OnOpenSocket);
  set(CURLOPT_OPENSOCKETDATA, static_cast<void*>(this));
  set(CURLOPT_HEADERFUNCTION, &Transfer::OnHeader);
  set(CURLOPT_HEADERDATA, static_cast<void*>(this));
  set(CURLOPT_WRITEFUNCTION, &Transfer::OnBody);
  set(CURLOPT_WRITEDATA, static_cast<void*>(this));
  if (rc != CURLE_OK)
    return Internal(std::string("fetch: curl_easy_setopt: ") + curl_easy_strerror(rc));
  if (CURLMcode mc = curl_multi_add_handle(multi_, easy_); mc != CURLM_OK)
    return Internal(std::string("fetch: curl_multi_add_handle: ") + curl_multi_strerror(mc));
  return Status::Ok();
}

template <typename Pred>
Status Transfer::Drive(Clock::time_point deadline, Pred enough) {
  for (;;) {
    int running = 0;
    if (CURLMcode mc = curl_multi_perform(multi_, &running); mc != CURLM_OK)
      return Internal(std::string("fetch: curl_multi_perform: ") + curl_multi_strerror(mc));
    int queued = 0;
    while (CURLMsg* msg = curl_multi_info_read(multi_, &queued)) {
      if (msg->msg == CURLMSG_DONE && msg->easy_handle == easy_) {
        done_ = true;
        result_ = msg->data.result;
      }
    }
    if (enough() || done_) return Status::Ok();
    Clock::time_point now = Clock::now();
    if (now >= deadline) return Timeout("");
    auto wait =
        std::min(std::chrono::ceil<std::chrono::milliseconds>(deadline - now), kMaxPollWait);
    if (CURLMcode mc = curl_multi_poll(multi_, nullptr, 0, static_cast<int>(wait.count()), nullptr);
        mc != CURLM_OK) {
      return Internal(std::string("fetch: curl_multi_poll: ") + curl_multi_strerror(mc));
    }
  }
}

Status Transfer::AwaitHead() {
  Clock::time_point deadline = Clock::now() + options_.header_timeout;
  Status s = Drive(deadline, [this] { return head_done_; });
  if (s.code() == Code::kTimeout) {
    return Unavailable("fetch: " + url_text_ + ": no response head within the header_timeout of " +
                       std::to_string(options_.header_timeout.count()) + " ms");
  }
  INGOT_RETURN_IF_ERROR(s);
  if (!head_done_) {
    Status end = Finished();
    return end.ok() ? Unavailable("fetch: " + url_text_ + ": no response head") : end;
  }
  // Belt and braces: the peer curl talked to must be one of the checked addresses.
  char* primary_ip = nullptr;
  if (curl_easy_getinfo(easy_, CURLINFO_PRIMARY_IP, &primary_ip) != CURLE_OK ||
      primary_ip == nullptr ||
      std::find(checked_.begin(), checked_.end(), std::string(primary_ip)) == checked_.end()) {
    return Refused("fetch.address: " + url_text_ + " was answered by " +
                   std::string(primary_ip ? primary_ip : "an unknown peer") +
                   ", not a checked address");
  }
  curl_off_t length = -1;
  if (curl_easy_getinfo(easy_, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &length) == CURLE_OK &&
      length >= 0) {
    content_length_ = static_cast<uint64_t>(length);
  }
  return Status::Ok();
}

Status Transfer::CurlFailure(CURLcode code) const {
  std::string detail = curl_error_[0] != '\0' ? curl_error_ : curl_easy_strerror(code);
  std::string where = "fetch: " + url_text_ + ": ";
  switch (code) {
    case CURLE_COULDNT_CONNECT:
      if (!refused_peer_.empty()) {
        return Refused("fetch.address: " + url_text_ + " would connect to " + refused_peer_ +
                       ", not a checked address");
      }
      return Unavailable(where + detail);
    case CURLE_UNSUPPORTED_PROTOCOL:
      return Refused("fetch.scheme: " + url_text_ + ": " + detail);
    case CURLE_URL_MALFORMAT:
      return InvalidArgument("fetch.url: " + url_text_ + ": " + detail);
    case CURLE_WRITE_ERROR:
      if (callback_failed_) return Internal(where + "out of memory in a curl callback");
      return Unavailable(where + detail);
    case CURLE_PARTIAL_FILE:
      return Unavailable(where + "the body ended after " + std::to_string(delivered_) +
                         (content_length_ ? " of " + std::to_string(*content_length_) : "") +
                         " bytes (" + detail + ")");
    default:
      return Unavailable(where + detail);
  }
}

Status Transfer::Finished() const {
  if (result_ != CURLE_OK) return CurlFailure(result_);
  if (content_length_ && delivered_ < *content_length_) {
    return Unavailable("fetch: " + url_text_ + ": the body ended after " +
                       std::to_string(delivered_) + " of " + std::to_string(*content_length_) +
                       " bytes");
  }
  return Status::Ok();
}

Result<size_t> Transfer::ReadBody(std::span<uint8_t> buf) {
  if (!error_.ok()) return error_;
  if (buf.empty()) return size_t{0};
  if (content_length_ && *content_length_ > options_.max_bytes) {
    error_ = TooLarge("fetch: " + url_text_ + ": the body (" + std::to_string(*content_length_) +
                      " bytes) is larger than the cap of " + std::to_string(options_.max_bytes));
    return error_;
  }
  size_t n = 0;
  if (overflow_pos_ < overflow_.size()) {
    n = std::min(buf.size(), overflow_.size() - overflow_pos_);
    std::memcpy(buf.data(), overflow_.data() + overflow_pos_, n);
    overflow_pos_ += n;
    if (overflow_pos_ == overflow_.size()) {
      overflow_.clear();
      overflow_pos_ = 0;
    }
  } else if (!done_ || paused_) {
    target_ = buf;
    filled_ = 0;
    Status s = Status::Ok();
    if (paused_) {
      // Unpausing hands curl's held data to OnBody at once, into target_.
      paused_ = false;
      if (CURLcode rc = curl_easy_pause(easy_, CURLPAUSE_CONT); rc != CURLE_OK)
        s = Unavailable("fetch: " + url_text_ + ": " + curl_easy_strerror(rc));
    }
    // The stall clock runs only while the caller waits here: a slow consumer is not a stall.
    if (s.ok() && filled_ == 0) {
      s = Drive(Clock::now() + options_.stall_timeout, [this] { return filled_ > 0; });
      if (s.code() == Code::kTimeout) {
        s = Unavailable("fetch: " + url_text_ + ": no body data for the stall_timeout of " +
                        std::to_string(options_.stall_timeout.count()) + " ms");
      }
    }
    n = filled_;
    target_ = {};
    filled_ = 0;
    if (!s.ok()) {
      error_ = s;
      return error_;
    }
  }
  if (callback_failed_) {
    error_ = Internal("fetch: out of memory in a curl callback");
    return error_;
  }
  delivered_ += n;
  if (delivered_ > options_.max_bytes) {
    error_ = TooLarge("fetch: " + url_text_ + ": the body is larger than the cap of " +
                      std::to_string(options_.max_bytes) + " bytes");
    return error_;
  }
  if (n > 0) return n;
  // Nothing more will come: a clean end only if the whole body arrived.
  if (Status end = Finished(); !end.ok()) {
    error_ = end;
    return error_;
  }
  return size_t{0};
}

size_t Transfer::OnHeader(char* data, size_t size, size_t count, void* self) {
  auto* t = static_cast<Transfer*>(self);
  size_t bytes = size * count;
  try {
    if (t->head_done_) return bytes;  // trailers of a chunked body: not part of the head
    std::string_view line = Trim(std::string_view(data, bytes));
    if (line.substr(0, 5) == "HTTP/") {
      // A new status line: an interim 1xx response's headers are forgotten.
      t->headers_.clear();
      t->status_ = 0;
      size_t sp = line.find(' ');
      if (sp != std::string_view::npos && line.size() >= sp + 4) {
        int code = 0;
        for (size_t i = sp + 1; i < sp + 4; ++i) {
          if (line[i] < '0' || line[i] > '9') return 0;  // not HTTP: fail the transfer
          code = code * 10 + (line[i] - '0');
        }
        t->status_ = code;
      }
    } else if (line.empty()) {
      if (t->status_ >= 200) t->head_done_ = true;
    } else if (size_t colon = line.find(':'); colon != std::string_view::npos) {
      t->headers_.emplace_back(LowerAscii(Trim(line.substr(0, colon))),
                               std::string(Trim(line.substr(colon + 1))));
    }
    return bytes;
  } catch (...) {
    t->callback_failed_ = true;
    return 0;
  }
}

size_t Transfer::OnBody(char* data, size_t size, size_t count, void* self) {
  auto* t = static_cast<Transfer*>(self);
  size_t bytes = size * count;
  try {
    size_t room = t->target_.size() - t->filled_;
    if (room == 0 && t->overflow_pos_ < t->overflow_.size()) {
      // Already one delivery waiting: curl keeps this one until the next Read unpauses it.
      t->paused_ = true;
      return CURL_WRITEFUNC_PAUSE;
    }
    size_t now = std::min(room, bytes);
    if (now > 0) {
      std::memcpy(t->target_.data() + t->filled_, data, now);
      t->filled_ += now;
    }
    if (now < bytes) t->overflow_.append(data + now, bytes - now);
    return bytes;
  } catch (...) {
    t->callback_failed_ = true;
    return 0;
  }
}

curl_socket_t Transfer::OnOpenSocket(void* self, curlsocktype purpose, curl_sockaddr* address) {
  auto* t = static_cast<Transfer*>(self);
  try {
    std::string peer = AddressText(&address->addr);
    if (purpose != CURLSOCKTYPE_IPCXN || peer.empty() ||
        std::find(t->checked_.begin(), t->checked_.end(), peer) == t->checked_.end()) {
      t->refused_peer_ = peer.empty() ? "an unknown address" : peer;
      return CURL_SOCKET_BAD;
    }
    return ::socket(address->family, address->socktype | SOCK_CLOEXEC, address->protocol);
  } catch (...) {
    t->refused_peer_ = "an unknown address";
    return CURL_SOCKET_BAD;
  }
}

Result<std::unique_ptr<Download>> OpenImpl(const std::string& url, const FetchOptions& options) {
  INGOT_RETURN_IF_ERROR(GlobalInit());
  std::string current = url;
  std::optional<ParsedUrl> first;
  for (int hop = 0;; ++hop) {
    Result<ParsedUrl> parsed = CheckUrl(current, options.filter);
    if (!parsed.ok()) return AtHop(parsed.status(), hop, current);
    if (!first) first = *parsed;
    Result<std::vector<std::string>> addresses = ResolveAndCheck(*parsed, options.filter);
    if (!addresses.ok()) return AtHop(addresses.status(), hop, current);

    // Extra headers carry credentials (X-Auth-Token): they go to the origin the caller named only,
    // not to wherever it redirects.
    auto transfer = std::make_unique<Transfer>(options);
    Status s = transfer->Start(*parsed, std::move(*addresses), SameOrigin(*parsed, *first));
    if (s.ok()) s = transfer->AwaitHead();
    if (!s.ok()) return AtHop(s, hop, current);

    int status = transfer->status();
    if (status >= 200 && status < 300) {
      transfer->set_final_url(current);
      return std::unique_ptr<Download>(std::move(transfer));
    }
    std::string where =
        "fetch: " + internal::UrlText(*parsed) + " answered " + std::to_string(status);
    if (IsRedirect(status)) {
      std::string_view location = transfer->header("location");
      if (location.empty()) return InvalidArgument(where + " without a Location");
      if (hop >= options.max_redirects) {
        return InvalidArgument("fetch.redirects: more than " +
                               std::to_string(options.max_redirects) +
                               " redirects, the last from " + internal::UrlText(*parsed));
      }
      INGOT_ASSIGN_OR_RETURN(current, internal::ResolveReference(*parsed, location));
      continue;
    }
    if (status == 404) return NotFound(where);
    if (status >= 500) return Unavailable(where);
    return InvalidArgument(where);
  }
}

}  // namespace

Result<std::unique_ptr<Download>> Open(const std::string& url, const FetchOptions& options) {
  try {
    return OpenImpl(url, options);
  } catch (const std::bad_alloc&) {
    return Internal("fetch: out of memory");
  } catch (...) {
    return Internal("fetch: unexpected exception");
  }
}

Result<std::string> GetText(const std::string& url, const FetchOptions& options,
                            uint64_t max_bytes) {
  try {
    FetchOptions capped = options;
    capped.max_bytes = std::min(options.max_bytes, max_bytes);
    INGOT_ASSIGN_OR_RETURN(std::unique_ptr<Download> download, Open(url, capped));
    std::string text;
    char buf[16384];
    for (;;) {
      INGOT_ASSIGN_OR_RETURN(
          size_t n, download->Read(std::span(reinterpret_cast<uint8_t*>(buf), sizeof(buf))));
      if (n == 0) return text;
      text.append(buf, n);
    }
  } catch (const std::bad_alloc&) {
    return Internal("fetch: out of memory");
  } catch (...) {
    return Internal("fetch: unexpected exception");
  }
}

}  // namespace ingot::fetch
