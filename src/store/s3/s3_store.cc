#include "store/s3/s3_store.h"

#include <openssl/evp.h>

#include <algorithm>
#include <charconv>
#include <ctime>

#include "common/log.h"
#include "common/time.h"
#include "io/hash.h"
#include "store/remote/streams.h"

namespace ingot::store {
namespace {

using remote::HttpRequest;
using remote::HttpResponse;

constexpr char kUnsigned[] = "UNSIGNED-PAYLOAD";
constexpr int kMaxParts = 10000;

std::string Base64OfHex(std::string_view hex) {
  std::string raw;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    raw += static_cast<char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16));
  }
  std::string out(4 * ((raw.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(raw.data()),
                                static_cast<int>(raw.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

std::string Md5OfMd5s(const std::vector<remote::UploadedPart>& parts) {
  std::string raw;
  for (const auto& p : parts) {
    for (size_t i = 0; i + 1 < p.md5.size(); i += 2) {
      raw += static_cast<char>(std::stoi(p.md5.substr(i, 2), nullptr, 16));
    }
  }
  return *io::HexDigestOf("md5", {reinterpret_cast<const uint8_t*>(raw.data()), raw.size()}) +
         "-" + std::to_string(parts.size());
}

bool IsIpAddress(std::string_view host) {
  if (host.starts_with('[')) return true;
  if (size_t c = host.rfind(':'); c != std::string_view::npos) host = host.substr(0, c);
  return !host.empty() && std::all_of(host.begin(), host.end(), [](char c) {
    return (c >= '0' && c <= '9') || c == '.';
  });
}

// A bucket name that can be a DNS label (no dots: with TLS, a dot breaks the wildcard certificate).
bool DnsBucket(std::string_view b) {
  if (b.size() < 3 || b.size() > 63) return false;
  return std::all_of(b.begin(), b.end(), [](char c) {
           return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
         }) &&
         b.front() != '-' && b.back() != '-';
}

std::string Err(const HttpResponse& r) {
  auto code = XmlValues(r.body, "Code");
  auto msg = XmlValues(r.body, "Message");
  std::string out = "HTTP " + std::to_string(r.status);
  if (!code.empty()) out += " " + code[0];
  if (!msg.empty()) out += ": " + msg[0];
  return out;
}

// S3's XML error reduced to "Code: Message" inside the usual status message.
Status S3Status(const HttpResponse& r, std::string_view what) {
  HttpResponse brief{.status = r.status};
  auto code = XmlValues(r.body, "Code");
  auto msg = XmlValues(r.body, "Message");
  if (!code.empty()) brief.body = code[0] + (msg.empty() ? "" : ": " + msg[0]);
  return remote::StatusOf(brief, what);
}

// A refused write: 404 there is a missing bucket (or an upload the service lost), the
// operator's to fix, never the client's 404.
Status WriteRefused(const HttpResponse& r, const std::string& what) {
  if (r.status == 404) {
    return IoError(what + ": " + Err(r) +
                   " (does the bucket exist? s3_store_create_bucket_on_put = true creates it)");
  }
  return S3Status(r, what);
}

}  // namespace

std::vector<std::string> XmlValues(std::string_view xml, std::string_view tag) {
  std::vector<std::string> out;
  const std::string open = "<" + std::string(tag) + ">";
  const std::string close = "</" + std::string(tag) + ">";
  size_t pos = 0;
  while (out.size() < 100000) {
    size_t a = xml.find(open, pos);
    if (a == std::string_view::npos) break;
    a += open.size();
    size_t b = xml.find(close, a);
    if (b == std::string_view::npos) break;
    std::string_view raw = xml.substr(a, b - a);
    std::string v;
    for (size_t i = 0; i < raw.size(); ++i) {
      if (raw[i] != '&') {
        v += raw[i];
        continue;
      }
      static constexpr std::pair<std::string_view, char> kEntities[] = {
          {"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}};
      bool matched = false;
      for (const auto& [name, c] : kEntities) {
        if (raw.substr(i).starts_with(name)) {
          v += c;
          i += name.size() - 1;
          matched = true;
          break;
        }
      }
      if (!matched) v += '&';
    }
    out.push_back(std::move(v));
    pos = b + close.size();
  }
  return out;
}

// ---- The object being written ----

class S3PendingObject final : public PendingObject {
 public:
  S3PendingObject(S3Store& store, std::string key, const S3StoreOptions& o)
      : store_(store),
        key_(std::move(key)),
        large_(o.large_object_size),
        uploader_(
            o.large_object_chunk_size, o.thread_pools,
            [this](int n, std::span<const uint8_t> bytes, const std::string& md5) {
              return PutPart(n, bytes, md5);
            },
            [this] { return Begin(); }) {}

  ~S3PendingObject() override {
    if (committed_) return;
    (void)uploader_.Cancel();
    if (upload_id_.empty()) return;
    // The service drops every part it holds for the upload.
    auto r = store_.Send({.method = "DELETE", .key = key_, .query = {{"uploadId", upload_id_}}});
    if (!r.ok() || (!r->ok() && r->status != 404)) {
      log::Warn("s3.abort_failed", {{"store", store_.id()},
                                    {"key", key_},
                                    {"error", r.ok() ? Err(*r) : r.status().ToString()}});
    }
  }

  Status Write(std::span<const uint8_t> data) override { return uploader_.Write(data); }
  uint64_t bytes_written() const override { return uploader_.bytes(); }

  Status Commit() override {
    if (committed_) return Internal("object committed twice");
    if (!uploader_.started() && uploader_.bytes() <= large_) {
      std::span<const uint8_t> bytes = uploader_.buffered();
      const std::string md5 = *io::HexDigestOf("md5", bytes);
      INGOT_ASSIGN_OR_RETURN(
          HttpResponse r, store_.Send({.method = "PUT",
                                       .key = key_,
                                       .headers = {{"Content-MD5", Base64OfHex(md5)}},
                                       .body = bytes}));
      if (!r.ok()) return WriteRefused(r, "s3: PUT " + key_);
      if (remote::NormalizeEtag(r.Header("etag")) != md5) {
        return Corruption("s3: " + key_ + " was stored with ETag " + r.Header("etag") +
                          ", not the MD5 of the bytes sent (" + md5 + ")");
      }
      (void)uploader_.Cancel();
      committed_ = true;
      return Status::Ok();
    }
    INGOT_ASSIGN_OR_RETURN(std::vector<remote::UploadedPart> parts, uploader_.Finish());
    if (parts.size() > static_cast<size_t>(kMaxParts)) {
      return TooLarge("s3: the image needs " + std::to_string(parts.size()) +
                      " parts; S3 allows 10000 (raise s3_store_large_object_chunk_size)");
    }
    std::string xml = "<CompleteMultipartUpload>";
    for (const auto& p : parts) {
      xml += "<Part><PartNumber>" + std::to_string(p.number) + "</PartNumber><ETag>\"" + p.etag +
             "\"</ETag></Part>";
    }
    xml += "</CompleteMultipartUpload>";
    INGOT_ASSIGN_OR_RETURN(
        HttpResponse r,
        store_.Send({.method = "POST",
                     .key = key_,
                     .query = {{"uploadId", upload_id_}},
                     .headers = {{"Content-Type", "application/xml"}},
                     .body = {reinterpret_cast<const uint8_t*>(xml.data()), xml.size()},
                     .sign_body = true}));
    // S3 may answer 200 and still report an error in the body.
    if (!r.ok() || r.body.find("<Error>") != std::string::npos) {
      return S3Status(r, "s3: completing the upload of " + key_);
    }
    auto etags = XmlValues(r.body, "ETag");
    const std::string want = Md5OfMd5s(parts);
    const std::string got = etags.empty() ? "" : remote::NormalizeEtag(etags[0]);
    if (got != want) {
      return Corruption("s3: the completed " + key_ + " has ETag " + got + ", expected " + want);
    }
    committed_ = true;
    return Status::Ok();
  }

 private:
  Status Begin() {
    INGOT_ASSIGN_OR_RETURN(HttpResponse r, store_.Send({.method = "POST",
                                                        .key = key_,
                                                        .query = {{"uploads", ""}},
                                                        .sign_body = true}));
    if (!r.ok()) return WriteRefused(r, "s3: starting the upload of " + key_);
    auto ids = XmlValues(r.body, "UploadId");
    if (ids.empty() || ids[0].empty()) return IoError("s3: no UploadId in the answer");
    upload_id_ = ids[0];
    return Status::Ok();
  }

  Result<std::string> PutPart(int number, std::span<const uint8_t> bytes, const std::string& md5) {
    if (number > kMaxParts) {
      return TooLarge("s3: more than 10000 parts (raise s3_store_large_object_chunk_size)");
    }
    INGOT_ASSIGN_OR_RETURN(
        HttpResponse r,
        store_.Send({.method = "PUT",
                     .key = key_,
                     .query = {{"partNumber", std::to_string(number)}, {"uploadId", upload_id_}},
                     .headers = {{"Content-MD5", Base64OfHex(md5)}},
                     .body = bytes}));
    if (!r.ok()) return WriteRefused(r, "s3: PUT part " + std::to_string(number) + " of " + key_);
    return r.Header("etag");
  }

  S3Store& store_;
  const std::string key_;
  const uint64_t large_;
  std::string upload_id_;  // set by Begin on the writer's thread, before any part is sent
  remote::PartUploader uploader_;
  bool committed_ = false;
};

// ---- The store ----

S3Store::S3Store(S3StoreOptions options)
    : options_(std::move(options)), transport_(options_.transport) {}

Result<std::unique_ptr<S3Store>> S3Store::Open(S3StoreOptions options) {
  if (options.endpoint.empty()) return InvalidArgument("the s3 driver needs s3_store_host");
  if (options.bucket.empty()) return InvalidArgument("the s3 driver needs s3_store_bucket");
  if (options.access_key.empty() || options.secret_key.empty()) {
    return InvalidArgument("the s3 driver needs s3_store_access_key and s3_store_secret_key");
  }
  if (options.large_object_chunk_size < (5u << 20)) {
    return InvalidArgument("s3_store_large_object_chunk_size must be at least 5 (MB): S3's "
                           "smallest part");
  }
  if (options.thread_pools < 1 || options.thread_pools > 64) {
    return InvalidArgument("s3_store_thread_pools must be between 1 and 64");
  }
  auto store = std::unique_ptr<S3Store>(new S3Store(std::move(options)));
  std::string ep = store->options_.endpoint;
  if (ep.find("://") == std::string::npos) ep = "https://" + ep;
  store->scheme_ = ep.substr(0, ep.find("://"));
  if (store->scheme_ != "http" && store->scheme_ != "https") {
    return InvalidArgument("s3_store_host must be an http or https URL");
  }
  std::string rest = ep.substr(store->scheme_.size() + 3);
  rest = rest.substr(0, rest.find('/'));
  if (rest.empty() || rest.find('@') != std::string::npos) {
    return InvalidArgument("s3_store_host must be scheme://host[:port] (credentials go in "
                           "s3_store_access_key and s3_store_secret_key)");
  }
  // The Host header as curl sends it: the port only when it is not the scheme's default.
  if ((store->scheme_ == "http" && rest.ends_with(":80")) ||
      (store->scheme_ == "https" && rest.ends_with(":443"))) {
    rest = rest.substr(0, rest.rfind(':'));
  }
  store->host_ = rest;
  const std::string& f = store->options_.url_format;
  if (f == "path") {
    store->virtual_hosted_ = false;
  } else if (f == "virtual") {
    store->virtual_hosted_ = true;
  } else if (f == "auto") {
    store->virtual_hosted_ = DnsBucket(store->options_.bucket) && !IsIpAddress(rest);
  } else {
    return InvalidArgument("s3_store_bucket_url_format must be auto, path or virtual, not '" + f +
                           "'");
  }
  // One request now, so wrong credentials or a missing bucket stop the start with a clear message.
  // A service that is down for the moment does not stop the start.
  if (store->options_.create_bucket_on_put) {
    if (Status s = store->EnsureBucket(); !s.ok()) {
      if (!remote::RetryableStatus(s)) return s;
      log::Warn("s3.unavailable_at_start", {{"store", store->id()}, {"error", s.ToString()}});
    }
  } else {
    auto listed = store->Send({.method = "GET", .query = {{"max-keys", "1"}}});
    if (!listed.ok()) {
      if (!remote::RetryableStatus(listed.status())) return listed.status();
      log::Warn("s3.unavailable_at_start",
                {{"store", store->id()}, {"error", listed.status().ToString()}});
      return store;
    }
    const HttpResponse& r = *listed;
    if (remote::Retryable(listed)) {
      log::Warn("s3.unavailable_at_start", {{"store", store->id()}, {"error", Err(r)}});
      return store;
    }
    if (r.status == 401 || r.status == 403) {
      return IoError("s3 store '" + store->id() + "': " + store->options_.endpoint +
                     " refused the credentials (" + Err(r) +
                     "): check s3_store_access_key and s3_store_secret_key");
    }
    if (r.status == 404) {
      return IoError("s3 store '" + store->id() + "': there is no bucket '" +
                     store->options_.bucket +
                     "' (create it, or set s3_store_create_bucket_on_put = true)");
    }
    if (!r.ok()) return S3Status(r, "s3: listing bucket " + store->options_.bucket);
  }
  return store;
}

Status S3Store::EnsureBucket() {
  std::lock_guard lock(bucket_mu_);
  if (bucket_ok_) return Status::Ok();
  INGOT_ASSIGN_OR_RETURN(HttpResponse r, Send({.method = "PUT"}));
  if (r.status == 401 || r.status == 403) {
    return IoError("s3 store '" + id() + "': " + options_.endpoint + " refused the credentials (" +
                   Err(r) + "): check s3_store_access_key and s3_store_secret_key");
  }
  if (!r.ok() && r.status != 409) {  // 409: BucketAlreadyOwnedByYou
    return S3Status(r, "s3: creating bucket " + options_.bucket);
  }
  bucket_ok_ = true;
  return Status::Ok();
}

Result<HttpResponse> S3Store::Send(const Call& call, const remote::BodySink& sink) {
  std::string host = host_;
  std::string uri = "/";
  if (virtual_hosted_) {
    host = options_.bucket + "." + host_;
    uri += remote::PercentEncode(call.key, true);
  } else {
    uri += remote::PercentEncode(options_.bucket, false);
    if (!call.key.empty()) uri += "/" + remote::PercentEncode(call.key, true);
  }
  const std::string query = s3::CanonicalQuery(call.query);
  HttpRequest req{.method = call.method,
                  .url = scheme_ + "://" + host + uri + (query.empty() ? "" : "?" + query),
                  .body = call.body,
                  .sink_status = call.sink_status};
  const std::string payload = call.sign_body ? s3::Sha256Hex(call.body) : kUnsigned;
  uint64_t delivered = 0;
  remote::BodySink counting;
  if (sink) {
    counting = [&](std::span<const uint8_t> d) {
      delivered += d.size();
      return sink(d);
    };
  }
  return remote::WithRetries(
      options_.retry,
      [&]() -> Result<HttpResponse> {
        // Signed afresh for each attempt: the date is part of the signature.
        s3::SigningInput in;
        in.method = call.method;
        in.canonical_uri = uri;
        in.query = call.query;
        in.headers = call.headers;
        in.headers.emplace_back("host", host);
        in.headers.emplace_back("x-amz-date", s3::AmzDate(NowMicros() / 1000000));
        in.headers.emplace_back("x-amz-content-sha256", payload);
        in.payload_hash = payload;
        in.amz_date = in.headers[in.headers.size() - 2].second;
        in.region = options_.region;
        req.headers = in.headers;
        req.headers.emplace_back(
            "Authorization", s3::Authorization(in, {options_.access_key, options_.secret_key}));
        return transport_.Perform(req, counting);
      },
      [&] { return delivered == 0; });
}

Result<std::unique_ptr<PendingObject>> S3Store::Create(const std::string& key) {
  if (!remote::ValidObjectKey(key)) return InvalidArgument("invalid object key '" + key + "'");
  if (options_.create_bucket_on_put) INGOT_RETURN_IF_ERROR(EnsureBucket());
  INGOT_ASSIGN_OR_RETURN(HttpResponse head, Send({.method = "HEAD", .key = key}));
  if (head.ok()) return AlreadyExists("object " + key + " exists");
  if (head.status != 404) return S3Status(head, "s3: HEAD " + key);
  return std::unique_ptr<PendingObject>(new S3PendingObject(*this, key, options_));
}

Result<uint64_t> S3Store::SizeOf(const std::string& key) {
  if (!remote::ValidObjectKey(key)) return InvalidArgument("invalid object key '" + key + "'");
  INGOT_ASSIGN_OR_RETURN(HttpResponse head, Send({.method = "HEAD", .key = key}));
  if (!head.ok()) return S3Status(head, "s3: HEAD " + key);
  uint64_t size = 0;
  const std::string len = head.Header("content-length");
  auto [p, ec] = std::from_chars(len.data(), len.data() + len.size(), size);
  if (ec != std::errc() || p != len.data() + len.size()) {
    return IoError("s3: HEAD " + key + ": no usable Content-Length");
  }
  return size;
}

Result<std::unique_ptr<io::ByteSource>> S3Store::Open(const std::string& key) {
  INGOT_ASSIGN_OR_RETURN(uint64_t size, SizeOf(key));
  remote::RangeGet get = [this, key](uint64_t first, uint64_t last,
                                     const remote::BodySink& sink) -> Status {
    INGOT_ASSIGN_OR_RETURN(
        HttpResponse r,
        Send({.method = "GET",
              .key = key,
              .headers = {{"Range", "bytes=" + std::to_string(first) + "-" + std::to_string(last)}},
              .sink_status = 206},
             sink));
    if (r.status != 206) {
      return r.ok() ? IoError("s3: GET " + key + " ignored the Range header")
                    : S3Status(r, "s3: GET " + key);
    }
    return Status::Ok();
  };
  return std::unique_ptr<io::ByteSource>(
      std::make_unique<remote::RangedSource>(size, std::move(get), options_.retry_get_count));
}

Result<io::UniqueFd> S3Store::OpenFd(const std::string&) {
  return Unsupported("an s3 store has no local files");
}

Status S3Store::Delete(const std::string& key) {
  if (!remote::ValidObjectKey(key)) return InvalidArgument("invalid object key '" + key + "'");
  INGOT_ASSIGN_OR_RETURN(HttpResponse r, Send({.method = "DELETE", .key = key}));
  if (!r.ok() && r.status != 404) return S3Status(r, "s3: DELETE " + key);
  return Status::Ok();
}

Result<std::vector<std::string>> S3Store::ListKeys() {
  std::vector<std::string> keys;
  std::string marker;
  for (;;) {
    Call c{.method = "GET"};
    if (!marker.empty()) c.query.emplace_back("marker", marker);
    INGOT_ASSIGN_OR_RETURN(HttpResponse r, Send(c));
    if (!r.ok()) return S3Status(r, "s3: listing bucket " + options_.bucket);
    auto page = XmlValues(r.body, "Key");
    for (auto& k : page) {
      if (remote::ValidObjectKey(k)) keys.push_back(k);
    }
    auto truncated = XmlValues(r.body, "IsTruncated");
    if (page.empty() || truncated.empty() || truncated[0] != "true") return keys;
    auto next = XmlValues(r.body, "NextMarker");
    marker = next.empty() || next[0].empty() ? page.back() : next[0];
  }
}

Result<std::vector<S3Store::Upload>> S3Store::ListUploads(const std::string& prefix) {
  std::vector<Upload> out;
  Call c{.method = "GET", .query = {{"uploads", ""}}};
  if (!prefix.empty()) c.query.emplace_back("prefix", prefix);
  INGOT_ASSIGN_OR_RETURN(HttpResponse r, Send(c));
  if (!r.ok()) return S3Status(r, "s3: listing uploads in " + options_.bucket);
  for (const std::string& u : XmlValues(r.body, "Upload")) {
    auto k = XmlValues(u, "Key");
    auto id = XmlValues(u, "UploadId");
    auto at = XmlValues(u, "Initiated");
    if (k.empty() || id.empty()) continue;
    out.push_back({k[0], id[0], at.empty() ? "" : at[0]});
  }
  return out;
}

Result<int> S3Store::RemoveIncomplete() {
  INGOT_ASSIGN_OR_RETURN(std::vector<Upload> uploads, ListUploads(""));
  const int64_t now = NowMicros();
  int removed = 0;
  for (const Upload& u : uploads) {
    auto at = ParseIso8601(u.initiated);
    // Young uploads may be in progress on another node.
    if (at && now - *at < options_.incomplete_age_s * 1000000) continue;
    INGOT_ASSIGN_OR_RETURN(HttpResponse r, Send({.method = "DELETE",
                                                 .key = u.key,
                                                 .query = {{"uploadId", u.upload_id}}}));
    if (!r.ok() && r.status != 404) return S3Status(r, "s3: aborting the upload of " + u.key);
    ++removed;
    log::Warn("store.incomplete_removed", {{"store", options_.id}, {"upload", u.key}});
  }
  return removed;
}

Result<std::vector<StoredObject>> S3Store::Enumerate() {
  std::vector<StoredObject> out;
  // Committed objects: ListObjectsV2, page by page.
  std::string token;
  for (;;) {
    Call c{.method = "GET", .query = {{"list-type", "2"}, {"max-keys", "1000"}}};
    if (!token.empty()) c.query.emplace_back("continuation-token", token);
    INGOT_ASSIGN_OR_RETURN(HttpResponse r, Send(c));
    if (r.status == 404) return out;  // no bucket yet: nothing stored
    if (!r.ok()) return S3Status(r, "s3: listing bucket " + options_.bucket);
    for (const std::string& item : XmlValues(r.body, "Contents")) {
      auto k = XmlValues(item, "Key");
      if (k.empty() || !remote::ValidObjectKey(k[0])) continue;
      StoredObject o{.key = k[0]};
      auto size = XmlValues(item, "Size");
      if (!size.empty()) std::from_chars(size[0].data(), size[0].data() + size[0].size(), o.bytes);
      auto at = XmlValues(item, "LastModified");
      if (!at.empty()) o.modified = ParseIso8601(at[0]).value_or(0);
      out.push_back(std::move(o));
    }
    auto truncated = XmlValues(r.body, "IsTruncated");
    auto next = XmlValues(r.body, "NextContinuationToken");
    if (truncated.empty() || truncated[0] != "true" || next.empty() || next[0].empty()) break;
    token = next[0];
  }
  // Multipart uploads in progress (or abandoned), aged by their newest part: a long upload keeps
  // adding parts long after it was initiated.
  INGOT_ASSIGN_OR_RETURN(std::vector<Upload> uploads, ListUploads(""));
  for (const Upload& u : uploads) {
    if (!remote::ValidObjectKey(u.key)) continue;
    StoredObject o{.key = u.key, .incomplete = u.upload_id};
    o.modified = ParseIso8601(u.initiated).value_or(0);
    INGOT_ASSIGN_OR_RETURN(HttpResponse r, Send({.method = "GET",
                                                 .key = u.key,
                                                 .query = {{"uploadId", u.upload_id}}}));
    if (r.status == 404) continue;  // completed or aborted meanwhile
    if (!r.ok()) return S3Status(r, "s3: listing the parts of " + u.key);
    for (const std::string& part : XmlValues(r.body, "Part")) {
      uint64_t size = 0;
      auto sz = XmlValues(part, "Size");
      if (!sz.empty()) std::from_chars(sz[0].data(), sz[0].data() + sz[0].size(), size);
      o.bytes += size;
      auto at = XmlValues(part, "LastModified");
      if (!at.empty()) o.modified = std::max(o.modified, ParseIso8601(at[0]).value_or(0));
    }
    out.push_back(std::move(o));
  }
  return out;
}

Status S3Store::RemoveIncompleteWrite(const StoredObject& object) {
  if (!remote::ValidObjectKey(object.key) || object.incomplete.empty()) {
    return InvalidArgument("s3: not an incomplete write: '" + object.key + "'");
  }
  INGOT_ASSIGN_OR_RETURN(HttpResponse r, Send({.method = "DELETE",
                                               .key = object.key,
                                               .query = {{"uploadId", object.incomplete}}}));
  if (!r.ok() && r.status != 404) return S3Status(r, "s3: aborting the upload of " + object.key);
  return Status::Ok();
}

std::string S3Store::UrlOf(const std::string& key) const {
  return (scheme_ == "https" ? "s3+https://" : "s3://") + host_ + "/" + options_.bucket + "/" +
         key;
}

Result<std::optional<std::string>> S3Store::KeyOfUrl(std::string_view url) {
  const std::string prefix = (scheme_ == "https" ? "s3+https://" : "s3://") + host_ + "/" +
                             options_.bucket + "/";
  if (!url.starts_with(prefix)) return std::optional<std::string>();
  std::string key(url.substr(prefix.size()));
  if (!remote::ValidObjectKey(key)) {
    return InvalidArgument("'" + key + "' is not an object this store holds.");
  }
  INGOT_ASSIGN_OR_RETURN(uint64_t size, SizeOf(key));
  (void)size;
  return std::optional<std::string>(std::move(key));
}

// ---- Configuration ----

Result<std::unique_ptr<Store>> MakeS3Store(const StoreConfig& config) {
  INGOT_RETURN_IF_ERROR(CheckOptions(
      config, {"s3_store_host", "s3_store_access_key", "s3_store_secret_key", "s3_store_bucket",
               "s3_store_region", "s3_store_create_bucket_on_put", "s3_store_bucket_url_format",
               "s3_store_large_object_size", "s3_store_large_object_chunk_size",
               "s3_store_thread_pools", "s3_store_retry_get_count", "s3_store_incomplete_age",
               "s3_store_cacert", "s3_store_insecure", "s3_store_retries"}));
  auto str = [&](const char* k, std::string fallback) {
    auto it = config.options.find(k);
    return it == config.options.end() ? fallback : it->second;
  };
  auto boolean = [&](const char* k) -> Result<bool> {
    std::string v = str(k, "false");
    std::transform(v.begin(), v.end(), v.begin(), ::tolower);
    if (v == "true" || v == "1" || v == "yes" || v == "on") return true;
    if (v == "false" || v == "0" || v == "no" || v == "off") return false;
    return InvalidArgument(std::string("option ") + k + ": expected true or false, not '" + v + "'");
  };
  S3StoreOptions o;
  o.id = config.id;
  o.endpoint = str("s3_store_host", "");
  o.access_key = str("s3_store_access_key", "");
  o.secret_key = str("s3_store_secret_key", "");
  o.bucket = str("s3_store_bucket", "");
  o.region = str("s3_store_region", o.region);
  o.url_format = str("s3_store_bucket_url_format", o.url_format);
  INGOT_ASSIGN_OR_RETURN(o.create_bucket_on_put, boolean("s3_store_create_bucket_on_put"));
  INGOT_ASSIGN_OR_RETURN(uint64_t large, UintOption(config, "s3_store_large_object_size", 100));
  INGOT_ASSIGN_OR_RETURN(uint64_t chunk,
                         UintOption(config, "s3_store_large_object_chunk_size", 10));
  if (large > (1ull << 30) || chunk > 5120) {
    return InvalidArgument("s3_store_large_object_chunk_size is at most 5120 (MB, S3's largest "
                           "part)");
  }
  o.large_object_size = large << 20;
  o.large_object_chunk_size = chunk << 20;
  INGOT_ASSIGN_OR_RETURN(uint64_t threads, UintOption(config, "s3_store_thread_pools", 10));
  o.thread_pools = static_cast<int>(std::min<uint64_t>(threads, 1000));
  INGOT_ASSIGN_OR_RETURN(uint64_t gets, UintOption(config, "s3_store_retry_get_count", 3));
  o.retry_get_count = static_cast<int>(std::min<uint64_t>(gets, 100));
  INGOT_ASSIGN_OR_RETURN(uint64_t age, UintOption(config, "s3_store_incomplete_age", 3600));
  o.incomplete_age_s = static_cast<int64_t>(std::min<uint64_t>(age, 1ull << 40));
  INGOT_ASSIGN_OR_RETURN(uint64_t retries, UintOption(config, "s3_store_retries", 3));
  o.retry.attempts = 1 + static_cast<int>(std::min<uint64_t>(retries, 20));
  o.transport.ca_file = str("s3_store_cacert", "");
  INGOT_ASSIGN_OR_RETURN(o.transport.insecure, boolean("s3_store_insecure"));
  INGOT_ASSIGN_OR_RETURN(auto store, S3Store::Open(std::move(o)));
  return std::unique_ptr<Store>(std::move(store));
}

}  // namespace ingot::store
