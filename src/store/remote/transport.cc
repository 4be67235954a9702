#include "store/remote/transport.h"

#include <curl/curl.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <thread>

namespace ingot::store::remote {
namespace {

Status GlobalInit() {
  static std::once_flag once;
  static CURLcode rc = CURLE_OK;
  std::call_once(once, [] { rc = curl_global_init(CURL_GLOBAL_DEFAULT); });
  if (rc != CURLE_OK) return Internal(std::string("curl_global_init: ") + curl_easy_strerror(rc));
  return Status::Ok();
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n'))
    s.remove_suffix(1);
  return s;
}

// The state of one request while curl runs it; the callbacks' user data.
struct Exchange {
  CURL* easy = nullptr;
  const BodySink* sink = nullptr;
  int want_status = 0;
  std::span<const uint8_t> upload;
  size_t uploaded = 0;
  HttpResponse response;
  Status sink_status;

  static size_t OnHeader(char* data, size_t size, size_t n, void* self) {
    auto* x = static_cast<Exchange*>(self);
    std::string_view line(data, size * n);
    if (line.starts_with("HTTP/")) {
      // A new response head (after a 100 Continue, say): forget the previous one.
      x->response.headers.clear();
      size_t sp = line.find(' ');
      x->response.status = sp == std::string_view::npos ? 0 : std::atoi(std::string(line.substr(sp + 1, 3)).c_str());
      return size * n;
    }
    size_t colon = line.find(':');
    if (colon != std::string_view::npos && x->response.headers.size() < 200) {
      x->response.headers.emplace_back(Lower(Trim(line.substr(0, colon))),
                                       std::string(Trim(line.substr(colon + 1))));
    }
    return size * n;
  }

  static size_t OnBody(char* data, size_t size, size_t n, void* self) {
    auto* x = static_cast<Exchange*>(self);
    const size_t len = size * n;
    const int want = x->want_status;
    if (x->sink != nullptr && *x->sink &&
        (want != 0 ? x->response.status == want : x->response.ok())) {
      Status s = (*x->sink)({reinterpret_cast<const uint8_t*>(data), len});
      if (!s.ok()) {
        x->sink_status = std::move(s);
        return CURL_WRITEFUNC_ERROR;
      }
      return len;
    }
    const size_t room = kMaxKeptBody - std::min(kMaxKeptBody, x->response.body.size());
    x->response.body.append(data, std::min(room, len));
    return len;
  }

  static size_t OnRead(char* buf, size_t size, size_t n, void* self) {
    auto* x = static_cast<Exchange*>(self);
    const size_t len = std::min(size * n, x->upload.size() - x->uploaded);
    std::memcpy(buf, x->upload.data() + x->uploaded, len);
    x->uploaded += len;
    return len;
  }

  // curl rewinds the body when it must send it again (a redirect or a re-used connection that the
  // server had closed).
  static int OnSeek(void* self, curl_off_t offset, int origin) {
    auto* x = static_cast<Exchange*>(self);
    if (origin != SEEK_SET || offset < 0 || static_cast<size_t>(offset) > x->upload.size())
      return CURL_SEEKFUNC_FAIL;
    x->uploaded = static_cast<size_t>(offset);
    return CURL_SEEKFUNC_OK;
  }
};

}  // namespace

std::string HttpResponse::Header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (k == name) return v;
  }
  return "";
}

Transport::Transport(TransportOptions options) : options_(std::move(options)) {}

Transport::~Transport() {
  for (void* e : idle_) curl_easy_cleanup(static_cast<CURL*>(e));
}

void* Transport::Acquire() {
  {
    std::lock_guard lock(mu_);
    if (!idle_.empty()) {
      void* e = idle_.back();
      idle_.pop_back();
      return e;
    }
  }
  return curl_easy_init();
}

void Transport::Release(void* easy) {
  std::lock_guard lock(mu_);
  // A few idle handles (with their connections) are plenty; more would only hold sockets open.
  if (idle_.size() < 32) {
    idle_.push_back(easy);
    return;
  }
  curl_easy_cleanup(static_cast<CURL*>(easy));
}

Result<HttpResponse> Transport::Perform(const HttpRequest& request, const BodySink& sink) {
  INGOT_RETURN_IF_ERROR(GlobalInit());
  CURL* easy = static_cast<CURL*>(Acquire());
  if (easy == nullptr) return Internal("curl_easy_init failed");
  // Reset keeps the handle's live connections and DNS cache: that is the point of the pool.
  curl_easy_reset(easy);
  Exchange x;
  x.easy = easy;
  x.sink = &sink;
  x.want_status = request.sink_status;
  x.upload = request.body;

  curl_slist* headers = nullptr;
  for (const auto& [k, v] : request.headers) {
    headers = curl_slist_append(headers, (k + ": " + v).c_str());
  }
  // No "Expect: 100-continue" round trip before each body; the store answers errors either way.
  headers = curl_slist_append(headers, "Expect:");
  const bool with_body = request.method == "PUT" || request.method == "POST";
  if (with_body) headers = curl_slist_append(headers, "Transfer-Encoding:");

  char error[CURL_ERROR_SIZE] = {};
  CURLcode rc = CURLE_OK;
  auto set = [&](CURLoption option, auto value) {
    if (rc == CURLE_OK) rc = curl_easy_setopt(easy, option, value);
  };
  set(CURLOPT_URL, request.url.c_str());
  set(CURLOPT_PROTOCOLS_STR, "http,https");
  set(CURLOPT_NOSIGNAL, 1L);
  set(CURLOPT_FOLLOWLOCATION, 0L);
  if (request.fresh_connection) set(CURLOPT_FRESH_CONNECT, 1L);
  set(CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(options_.connect_timeout.count()));
  set(CURLOPT_LOW_SPEED_LIMIT, 1L);
  set(CURLOPT_LOW_SPEED_TIME,
      std::max(1L, static_cast<long>(options_.stall_timeout.count() / 1000)));
  set(CURLOPT_TCP_KEEPALIVE, 1L);
  set(CURLOPT_HTTP_CONTENT_DECODING, 0L);
  set(CURLOPT_USERAGENT, "ingot-store");
  // Bigger transfers per callback: 3-5x fewer calls than curl's 16 KiB default on a GiB object.
  set(CURLOPT_BUFFERSIZE, 512L * 1024);
  set(CURLOPT_UPLOAD_BUFFERSIZE, 2L * 1024 * 1024);
  set(CURLOPT_ERRORBUFFER, error);
  set(CURLOPT_HTTPHEADER, headers);
  set(CURLOPT_HEADERFUNCTION, &Exchange::OnHeader);
  set(CURLOPT_HEADERDATA, static_cast<void*>(&x));
  set(CURLOPT_WRITEFUNCTION, &Exchange::OnBody);
  set(CURLOPT_WRITEDATA, static_cast<void*>(&x));
  if (!options_.ca_file.empty()) set(CURLOPT_CAINFO, options_.ca_file.c_str());
  if (options_.insecure) {
    set(CURLOPT_SSL_VERIFYPEER, 0L);
    set(CURLOPT_SSL_VERIFYHOST, 0L);
  }
  if (request.method == "HEAD") {
    set(CURLOPT_NOBODY, 1L);
  } else if (with_body) {
    set(CURLOPT_UPLOAD, 1L);
    set(CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
    set(CURLOPT_READFUNCTION, &Exchange::OnRead);
    set(CURLOPT_READDATA, static_cast<void*>(&x));
    set(CURLOPT_SEEKFUNCTION, &Exchange::OnSeek);
    set(CURLOPT_SEEKDATA, static_cast<void*>(&x));
    if (request.method != "PUT") set(CURLOPT_CUSTOMREQUEST, request.method.c_str());
  } else if (request.method != "GET") {
    set(CURLOPT_CUSTOMREQUEST, request.method.c_str());
  }
  if (rc != CURLE_OK) {
    curl_slist_free_all(headers);
    Release(easy);
    return Internal(std::string("curl_easy_setopt: ") + curl_easy_strerror(rc));
  }
  rc = curl_easy_perform(easy);
  curl_slist_free_all(headers);
  Release(easy);
  if (rc == CURLE_OK) return std::move(x.response);
  if (!x.sink_status.ok()) return x.sink_status;
  const std::string what = request.method + " " + RedactUrl(request.url) + ": " +
                           (error[0] != '\0' ? error : curl_easy_strerror(rc));
  if (rc == CURLE_OPERATION_TIMEDOUT) return Timeout(what);
  return Unavailable(what);
}

bool ValidObjectKey(std::string_view key) {
  if (key.empty() || key.size() > 128 || key[0] == '.') return false;
  for (char c : key) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_' || c == '.';
    if (!ok) return false;
  }
  return true;
}

bool RetryableStatus(const Status& s) {
  return s.code() == Code::kUnavailable || s.code() == Code::kTimeout;
}

bool Retryable(const Result<HttpResponse>& r) {
  if (!r.ok()) return RetryableStatus(r.status());
  return r->status >= 500 || r->status == 408 || r->status == 429;
}

Result<HttpResponse> WithRetries(const RetryPolicy& policy,
                                 const std::function<Result<HttpResponse>()>& attempt,
                                 const std::function<bool()>& may_retry) {
  thread_local std::minstd_rand jitter(std::random_device{}());
  auto backoff = policy.first_backoff;
  for (int i = 1;; ++i) {
    Result<HttpResponse> r = attempt();
    if (i >= policy.attempts || !Retryable(r) || (may_retry && !may_retry())) return r;
    // Full jitter: a random wait up to the back-off, so clients that failed together do not
    // come back together.
    const auto wait = std::chrono::milliseconds(
        std::uniform_int_distribution<int64_t>(backoff.count() / 2, backoff.count())(jitter));
    std::this_thread::sleep_for(wait);
    backoff = std::min(policy.max_backoff, backoff * 2);
  }
}

std::string RedactUrl(std::string_view url) {
  std::string_view rest = url;
  std::string scheme;
  if (size_t p = rest.find("://"); p != std::string_view::npos) {
    scheme = std::string(rest.substr(0, p + 3));
    rest.remove_prefix(p + 3);
  }
  size_t end_of_authority = rest.find('/');
  std::string_view authority = rest.substr(0, end_of_authority);
  if (size_t at = authority.rfind('@'); at != std::string_view::npos) {
    rest.remove_prefix(at + 1);
  }
  if (size_t q = rest.find('?'); q != std::string_view::npos) rest = rest.substr(0, q);
  return scheme + std::string(rest);
}

std::string PercentEncode(std::string_view s, bool keep_slash) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    const bool unreserved = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                            (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' || c == '~';
    if (unreserved || (keep_slash && c == '/')) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

Status StatusOf(const HttpResponse& r, std::string_view what) {
  std::string body = r.body.substr(0, 300);
  for (char& c : body) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  std::string msg = std::string(what) + ": HTTP " + std::to_string(r.status) +
                    (body.empty() ? "" : " (" + body + ")");
  switch (r.status) {
    case 404: return NotFound(std::move(msg));
    // The store refusing *our* credentials is a server fault, never the client's 401 or 403.
    case 401:
    case 403: return IoError(std::move(msg) + " - the store refused this service's credentials");
    case 413:
    case 507: return StorageFull(std::move(msg));
    default: break;
  }
  if (r.status >= 500 || r.status == 408 || r.status == 429) return Unavailable(std::move(msg));
  return IoError(std::move(msg));
}

}  // namespace ingot::store::remote
