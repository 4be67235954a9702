#include "store/swift/swift_store.h"

#include <boost/json.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <map>

#include "common/log.h"
#include "common/time.h"
#include "common/uuid.h"
#include "io/hash.h"
#include "store/remote/streams.h"

namespace ingot::store {
namespace {

namespace json = boost::json;
using remote::HttpRequest;
using remote::HttpResponse;
using remote::PercentEncode;

std::string Md5Hex(std::string_view s) {
  auto r = io::HexDigestOf("md5", {reinterpret_cast<const uint8_t*>(s.data()), s.size()});
  return r.ok() ? *r : "";
}

std::string SegmentName(const std::string& key, const std::string& upload, int number) {
  char n[16];
  std::snprintf(n, sizeof n, "%08d", number);
  return key + "/" + upload + "/" + n;
}

std::string Path(const std::string& container, const std::string& object = "") {
  std::string p = PercentEncode(container, false);
  if (!object.empty()) p += "/" + PercentEncode(object, true);
  return p;
}

// A refused write. 404 there means the container is missing: the operator's to fix, never the
// client's 404.
Status WriteRefused(const HttpResponse& r, const std::string& what) {
  if (r.status == 404) {
    return IoError(what + ": the container does not exist (create it, or set "
                          "swift_store_create_container_on_put = true)");
  }
  return remote::StatusOf(r, what);
}

}  // namespace

// ---- The object being written ----

class SwiftPendingObject final : public PendingObject {
 public:
  SwiftPendingObject(SwiftStore& store, std::string key)
      : store_(store),
        key_(std::move(key)),
        container_(store.ContainerOf(key_)),
        segments_(store.SegmentContainerOf(key_)),
        upload_(NewUuid()),
        uploader_(store.options_.large_object_chunk_size, store.options_.upload_concurrency,
                  [this](int n, std::span<const uint8_t> bytes, const std::string& md5) {
                    return PutSegment(n, bytes, md5);
                  }) {}

  ~SwiftPendingObject() override {
    if (committed_) return;
    // Abandoned (or failed): every segment the store holds goes.
    std::vector<remote::UploadedPart> parts = uploader_.Cancel();
    for (const auto& p : parts) DeleteQuietly(segments_, SegmentName(key_, upload_, p.number));
    for (const std::string& m : sub_manifests_) DeleteQuietly(segments_, m);
  }

  Status Write(std::span<const uint8_t> data) override { return uploader_.Write(data); }
  uint64_t bytes_written() const override { return uploader_.bytes(); }

  Status Commit() override {
    if (committed_) return Internal("object committed twice");
    const uint64_t total = uploader_.bytes();
    if (!uploader_.started() && total <= store_.options_.large_object_size) {
      INGOT_RETURN_IF_ERROR(PutPlain(uploader_.buffered()));
      (void)uploader_.Cancel();  // no part was handed out: nothing to clean
      committed_ = true;
      return Status::Ok();
    }
    INGOT_ASSIGN_OR_RETURN(std::vector<remote::UploadedPart> parts, uploader_.Finish());
    // Entries of the top manifest: the segments, or sub-manifests of at most
    // max_manifest_segments segments each when there are more.
    struct Entry {
      std::string path;
      std::string etag;
      uint64_t size;
    };
    std::vector<Entry> entries;
    for (const auto& p : parts) {
      entries.push_back({"/" + segments_ + "/" + SegmentName(key_, upload_, p.number), p.md5, p.size});
    }
    const size_t max = static_cast<size_t>(std::max(2, store_.options_.max_manifest_segments));
    while (entries.size() > max) {
      std::vector<Entry> grouped;
      for (size_t i = 0; i < entries.size(); i += max) {
        std::vector<Entry> group(entries.begin() + i,
                                 entries.begin() + std::min(entries.size(), i + max));
        char n[16];
        std::snprintf(n, sizeof n, "m%07zu", sub_manifests_.size() + 1);
        std::string name = key_ + "/" + upload_ + "/" + n;
        sub_manifests_.push_back(name);
        INGOT_ASSIGN_OR_RETURN(Entry e, PutManifest(segments_, name, group, false));
        grouped.push_back(std::move(e));
      }
      entries = std::move(grouped);
    }
    INGOT_RETURN_IF_ERROR(PutManifest(container_, key_, entries, true).status());
    committed_ = true;
    return Status::Ok();
  }

 private:
  template <typename E>
  Result<E> PutManifest(const std::string& container, const std::string& name,
                        const std::vector<E>& entries, bool top) {
    json::array list;
    std::string etags;
    uint64_t size = 0;
    for (const E& e : entries) {
      list.push_back(json::object{{"path", e.path}, {"etag", e.etag}, {"size_bytes", e.size}});
      etags += e.etag;
      size += e.size;
    }
    const std::string body = json::serialize(list);
    HttpRequest req{.method = "PUT"};
    req.body = {reinterpret_cast<const uint8_t*>(body.data()), body.size()};
    req.headers = {{"Content-Type", "application/octet-stream"}};
    if (top) req.headers.emplace_back("X-Object-Meta-Ingot-Upload", upload_);
    INGOT_ASSIGN_OR_RETURN(HttpResponse r,
                           store_.Call(req, Path(container, name) + "?multipart-manifest=put"));
    if (!r.ok()) return WriteRefused(r, "swift: PUT manifest " + container + "/" + name);
    // Swift answers with the large object's ETag: the MD5 of its segments' ETags.
    const std::string want = Md5Hex(etags);
    const std::string got = remote::NormalizeEtag(r.Header("etag"));
    if (got != want) {
      return Corruption("swift: the manifest of " + container + "/" + name + " has ETag " + got +
                        ", expected " + want + " from the segments' MD5s");
    }
    return E{"/" + container + "/" + name, want, size};
  }

  Result<std::string> PutSegment(int number, std::span<const uint8_t> bytes,
                                 const std::string& md5) {
    HttpRequest req{.method = "PUT", .body = bytes};
    // Swift checks the bytes against this and refuses the segment (422) when they differ.
    req.headers = {{"ETag", md5}, {"Content-Type", "application/octet-stream"}};
    const std::string name = SegmentName(key_, upload_, number);
    INGOT_ASSIGN_OR_RETURN(HttpResponse r, store_.Call(req, Path(segments_, name)));
    if (!r.ok()) return WriteRefused(r, "swift: PUT segment " + segments_ + "/" + name);
    return r.Header("etag");
  }

  Status PutPlain(std::span<const uint8_t> bytes) {
    const std::string md5 = *io::HexDigestOf("md5", bytes);
    HttpRequest req{.method = "PUT", .body = bytes};
    req.headers = {{"ETag", md5}, {"Content-Type", "application/octet-stream"}};
    INGOT_ASSIGN_OR_RETURN(HttpResponse r, store_.Call(req, Path(container_, key_)));
    if (!r.ok()) return WriteRefused(r, "swift: PUT " + container_ + "/" + key_);
    if (remote::NormalizeEtag(r.Header("etag")) != md5) {
      return Corruption("swift: " + container_ + "/" + key_ + " was stored with ETag " +
                        r.Header("etag") + ", not the MD5 of the bytes sent (" + md5 + ")");
    }
    return Status::Ok();
  }

  void DeleteQuietly(const std::string& container, const std::string& name) {
    auto r = store_.Call(HttpRequest{.method = "DELETE"}, Path(container, name));
    if (!r.ok() || (!r->ok() && r->status != 404)) {
      log::Warn("swift.segment_delete_failed",
                {{"store", store_.id()},
                 {"object", container + "/" + name},
                 {"error", r.ok() ? std::to_string(r->status) : r.status().ToString()}});
    }
  }

  SwiftStore& store_;
  const std::string key_;
  const std::string container_;
  const std::string segments_;
  const std::string upload_;
  remote::PartUploader uploader_;
  std::vector<std::string> sub_manifests_;
  bool committed_ = false;
};

// ---- The store ----

SwiftStore::SwiftStore(SwiftStoreOptions options)
    : options_(std::move(options)), transport_(options_.transport) {}

SwiftStore::~SwiftStore() = default;

Result<std::unique_ptr<SwiftStore>> SwiftStore::Open(SwiftStoreOptions options) {
  if (options.auth_address.empty() && options.endpoint.empty()) {
    return InvalidArgument("the swift driver needs swift_store_auth_address");
  }
  if (options.auth_version != 1 && options.auth_version != 3) {
    return InvalidArgument("swift_store_auth_version must be 1 (tempauth) or 3 (Keystone v3), not " +
                           std::to_string(options.auth_version));
  }
  if (options.container.empty()) return InvalidArgument("swift_store_container is empty");
  if (options.multiple_containers_seed < 0 || options.multiple_containers_seed > 32) {
    return InvalidArgument("swift_store_multiple_containers_seed must be between 0 and 32");
  }
  if (options.large_object_chunk_size < (1u << 20)) {
    return InvalidArgument("swift_store_large_object_chunk_size must be at least 1 (MB)");
  }
  if (options.upload_concurrency < 1 || options.upload_concurrency > 64) {
    return InvalidArgument("swift_store_upload_concurrency must be between 1 and 64");
  }
  auto store = std::unique_ptr<SwiftStore>(new SwiftStore(std::move(options)));
  // Authenticate now so that wrong credentials or a wrong address stop the start with a clear
  // message rather than failing the first upload. A Swift that is down for the moment does not
  // stop the start: requests authenticate when it is back.
  Status s;
  {
    std::lock_guard lock(store->mu_);
    s = store->Authenticate();
  }
  if (s.ok() && store->options_.create_container_on_put &&
      store->options_.multiple_containers_seed == 0) {
    s = store->EnsureContainer(store->options_.container);
  }
  if (!s.ok()) {
    if (!remote::RetryableStatus(s)) return s;
    log::Warn("swift.unavailable_at_start", {{"store", store->id()}, {"error", s.ToString()}});
  }
  return store;
}

// Called with mu_ held.
Status SwiftStore::Authenticate() {
  const std::string where = "swift store '" + options_.id + "': authentication at " +
                            remote::RedactUrl(options_.auth_address);
  if (options_.auth_version == 1) {
    HttpRequest req{.method = "GET", .url = options_.auth_address};
    req.headers = {{"X-Auth-User", options_.user}, {"X-Auth-Key", options_.key}};
    INGOT_ASSIGN_OR_RETURN(HttpResponse r, remote::WithRetries(options_.retry, [&] {
                             return transport_.Perform(req);
                           }));
    if (r.status == 401 || r.status == 403) {
      return IoError(where + " refused the credentials (HTTP " +
                             std::to_string(r.status) +
                             "): check swift_store_user and swift_store_key");
    }
    if (!r.ok()) return remote::StatusOf(r, where);
    token_ = r.Header("x-auth-token");
    storage_url_ = options_.endpoint.empty() ? r.Header("x-storage-url") : options_.endpoint;
  } else {
    const size_t colon = options_.user.find(':');
    if (colon == std::string::npos) {
      return InvalidArgument("swift_store_user must be 'project:user' for Keystone v3");
    }
    json::object body{
        {"auth",
         {{"identity",
           {{"methods", json::array{"password"}},
            {"password",
             {{"user",
               {{"name", options_.user.substr(colon + 1)},
                {"domain", {{"name", options_.user_domain}}},
                {"password", options_.key}}}}}}},
          {"scope",
           {{"project",
             {{"name", options_.user.substr(0, colon)},
              {"domain", {{"name", options_.project_domain}}}}}}}}}};
    const std::string text = json::serialize(body);
    std::string url = options_.auth_address;
    while (!url.empty() && url.back() == '/') url.pop_back();
    if (!url.ends_with("/v3")) url += "/v3";
    HttpRequest req{.method = "POST", .url = url + "/auth/tokens"};
    req.body = {reinterpret_cast<const uint8_t*>(text.data()), text.size()};
    req.headers = {{"Content-Type", "application/json"}};
    INGOT_ASSIGN_OR_RETURN(HttpResponse r, remote::WithRetries(options_.retry, [&] {
                             return transport_.Perform(req);
                           }));
    if (r.status == 401 || r.status == 403) {
      return IoError(where + " refused the credentials (HTTP " +
                             std::to_string(r.status) +
                             "): check swift_store_user, swift_store_key and the domains");
    }
    if (!r.ok()) return remote::StatusOf(r, where);
    token_ = r.Header("x-subject-token");
    std::string found;
    std::string iface = options_.endpoint_type;
    if (iface.ends_with("URL")) iface = iface.substr(0, iface.size() - 3);  // publicURL -> public
    boost::system::error_code ec;
    json::value doc = json::parse(r.body, ec);
    if (!ec && doc.is_object()) {
      const json::value* catalog = doc.as_object().if_contains("token");
      if (catalog && catalog->is_object()) catalog = catalog->as_object().if_contains("catalog");
      if (catalog && catalog->is_array()) {
        for (const json::value& svc : catalog->as_array()) {
          if (!svc.is_object()) continue;
          const json::value* type = svc.as_object().if_contains("type");
          if (!type || !type->is_string() || type->as_string() != options_.service_type) continue;
          const json::value* eps = svc.as_object().if_contains("endpoints");
          if (!eps || !eps->is_array()) continue;
          for (const json::value& ep : eps->as_array()) {
            if (!ep.is_object()) continue;
            const auto& o = ep.as_object();
            auto str = [&](const char* k) -> std::string {
              const json::value* v = o.if_contains(k);
              return v && v->is_string() ? std::string(v->as_string()) : "";
            };
            if (str("interface") != iface) continue;
            if (!options_.region.empty() && str("region") != options_.region &&
                str("region_id") != options_.region) {
              continue;
            }
            found = str("url");
            break;
          }
          if (!found.empty()) break;
        }
      }
    }
    storage_url_ = options_.endpoint.empty() ? found : options_.endpoint;
  }
  while (!storage_url_.empty() && storage_url_.back() == '/') storage_url_.pop_back();
  if (token_.empty() || storage_url_.empty()) {
    token_.clear();
    return IoError(where + ": the answer has no token or no object-store endpoint" +
                   (options_.auth_version == 3 ? " (swift_store_service_type, "
                                                 "swift_store_endpoint_type, swift_store_region)"
                                               : ""));
  }
  ++token_generation_;
  return Status::Ok();
}

Status SwiftStore::CurrentToken(std::string* url, std::string* token, uint64_t* generation) {
  std::lock_guard lock(mu_);
  if (token_.empty()) INGOT_RETURN_IF_ERROR(Authenticate());
  *url = storage_url_;
  *token = token_;
  *generation = token_generation_;
  return Status::Ok();
}

void SwiftStore::DropToken(uint64_t generation) {
  std::lock_guard lock(mu_);
  if (token_generation_ == generation) token_.clear();
}

Result<HttpResponse> SwiftStore::Call(HttpRequest request, const std::string& path,
                                      const remote::BodySink& sink) {
  uint64_t delivered = 0;
  remote::BodySink counting;
  if (sink) {
    counting = [&](std::span<const uint8_t> d) {
      delivered += d.size();
      return sink(d);
    };
  }
  const std::vector<std::pair<std::string, std::string>> base_headers = request.headers;
  for (int auth_try = 0;; ++auth_try) {
    std::string url, token;
    uint64_t generation = 0;
    INGOT_RETURN_IF_ERROR(CurrentToken(&url, &token, &generation));
    request.url = url + "/" + path;
    request.headers = base_headers;
    request.headers.emplace_back("X-Auth-Token", token);
    // The retry after a 401 goes on a new connection: a kept-alive one would reach the same proxy
    // process, whose token cache may be the one failing.
    request.fresh_connection = auth_try > 0;
    Result<HttpResponse> r = remote::WithRetries(
        options_.retry, [&] { return transport_.Perform(request, counting); },
        [&] { return delivered == 0; });
    if (!r.ok() || r->status != 401) return r;
    // 401 never fed the sink (only 2xx does) and the body is still ours: both tries are safe.
    DropToken(generation);
    if (auth_try == 0) {
      // The token expired or Swift lost it (tempauth keeps tokens in memcached): one new one, one
      // more try.
      log::Info("swift.token_refused", {{"store", options_.id}, {"request", request.method}});
      continue;
    }
    // Our credentials were accepted a moment ago, so this is Swift failing to validate tokens (its
    // memcached, or Keystone, overloaded or down): a transient fault of the store, not a missing
    // object and not the client's.
    return Unavailable("swift store '" + options_.id + "': Swift refused (HTTP 401) the token its " +
                       "auth service at " + remote::RedactUrl(options_.auth_address) +
                       " issued just now, on " + request.method + " " +
                       remote::RedactUrl(request.url) +
                       "; Swift's token validation is failing (tempauth's memcached or "
                       "Keystone): retry later");
  }
}

std::string SwiftStore::ContainerOf(const std::string& key) const {
  if (options_.multiple_containers_seed == 0) return options_.container;
  return options_.container + "_" +
         key.substr(0, static_cast<size_t>(options_.multiple_containers_seed));
}

Status SwiftStore::EnsureContainer(const std::string& container) {
  {
    std::lock_guard lock(mu_);
    if (ensured_.count(container) != 0) return Status::Ok();
  }
  for (const std::string& c : {container, container + "_segments"}) {
    INGOT_ASSIGN_OR_RETURN(HttpResponse r, Call(HttpRequest{.method = "PUT"}, Path(c)));
    if (!r.ok()) return remote::StatusOf(r, "swift: creating container " + c);
  }
  std::lock_guard lock(mu_);
  ensured_.insert(container);
  return Status::Ok();
}

Result<HttpResponse> SwiftStore::Head(const std::string& key) {
  if (!remote::ValidObjectKey(key)) return InvalidArgument("invalid object key '" + key + "'");
  return Call(HttpRequest{.method = "HEAD"}, Path(ContainerOf(key), key));
}

Result<std::unique_ptr<PendingObject>> SwiftStore::Create(const std::string& key) {
  INGOT_ASSIGN_OR_RETURN(HttpResponse head, Head(key));
  if (head.ok()) return AlreadyExists("object " + key + " exists");
  if (head.status != 404) return remote::StatusOf(head, "swift: HEAD " + key);
  if (options_.create_container_on_put) INGOT_RETURN_IF_ERROR(EnsureContainer(ContainerOf(key)));
  return std::unique_ptr<PendingObject>(new SwiftPendingObject(*this, key));
}

namespace {
// The size a HEAD of `key` answered.
Result<uint64_t> SizeIn(const HttpResponse& head, const std::string& what) {
  if (!head.ok()) return remote::StatusOf(head, "swift: HEAD " + what);
  uint64_t size = 0;
  const std::string len = head.Header("content-length");
  auto [p, ec] = std::from_chars(len.data(), len.data() + len.size(), size);
  if (ec != std::errc() || p != len.data() + len.size()) {
    return IoError("swift: HEAD " + what + ": no usable Content-Length");
  }
  return size;
}
}  // namespace

Result<uint64_t> SwiftStore::SizeOf(const std::string& key) {
  INGOT_ASSIGN_OR_RETURN(HttpResponse head, Head(key));
  return SizeIn(head, ContainerOf(key) + "/" + key);
}

// A download's GETs are whole segments (see remote::RangedSource), at most 64 MiB each: three
// in flight bound a download's memory to 192 MiB whatever the segment size.
size_t SwiftStore::DownloadBlock() const {
  return static_cast<size_t>(std::min<uint64_t>(options_.large_object_chunk_size, 64ull << 20));
}

Result<std::unique_ptr<io::ByteSource>> SwiftStore::Open(const std::string& key) {
  INGOT_ASSIGN_OR_RETURN(HttpResponse head, Head(key));
  INGOT_ASSIGN_OR_RETURN(uint64_t size, SizeIn(head, ContainerOf(key) + "/" + key));
  const std::string path = Path(ContainerOf(key), key);
  remote::RangeGet get;
  // A Static Large Object is read from its segments directly: one manifest fetch, then plain
  // object GETs, where a ranged GET of the large object makes Swift's SLO middleware fetch and
  // parse the manifest again for every request and relay the segment through its own iterator
  // (3 segment streams read 4 GiB in 7-8 s here where the large object's GETs took 9-16 s).
  std::string slo = head.Header("x-static-large-object");
  std::transform(slo.begin(), slo.end(), slo.begin(), [](unsigned char c) { return std::tolower(c); });
  if (slo == "true") {
    auto segments = SegmentsOf(path, size);
    if (segments.ok()) {
      get = [this, segments = std::move(*segments)](uint64_t first, uint64_t last,
                                                    const remote::BodySink& sink) {
        return GetFromSegments(segments, first, last, sink);
      };
    } else {
      log::Warn("swift.manifest_unreadable",
                {{"store", id()}, {"key", key}, {"error", segments.status().ToString()}});
    }
  }
  if (!get) {
    get = [this, path](uint64_t first, uint64_t last, const remote::BodySink& sink) {
      return GetRange(path, first, last, sink);
    };
  }
  return std::unique_ptr<io::ByteSource>(
      std::make_unique<remote::RangedSource>(size, std::move(get), options_.retry_get_count,
                                             /*parallel=*/3, DownloadBlock()));
}

Status SwiftStore::GetRange(const std::string& path, uint64_t first, uint64_t last,
                            const remote::BodySink& sink) {
  HttpRequest req{.method = "GET", .sink_status = 206};
  req.headers = {{"Range", "bytes=" + std::to_string(first) + "-" + std::to_string(last)}};
  INGOT_ASSIGN_OR_RETURN(HttpResponse r, Call(req, path, sink));
  if (r.status != 206) {
    return r.ok() ? IoError("swift: GET " + path + " ignored the Range header")
                  : remote::StatusOf(r, "swift: GET " + path);
  }
  return Status::Ok();
}

Result<std::vector<SwiftStore::Segment>> SwiftStore::SegmentsOf(const std::string& path,
                                                                uint64_t size) {
  std::vector<Segment> out;
  uint64_t offset = 0;
  // Sub-manifests (more segments than one manifest holds) are expanded in place, one level at a
  // time; Swift itself refuses nesting deeper than 10.
  std::function<Status(const std::string&, int)> expand = [&](const std::string& manifest,
                                                              int depth) -> Status {
    if (depth > 10) return Corruption("swift: " + manifest + ": manifests nested too deep");
    INGOT_ASSIGN_OR_RETURN(HttpResponse r,
                           Call(HttpRequest{.method = "GET"}, manifest + "?multipart-manifest=get"));
    if (!r.ok()) return remote::StatusOf(r, "swift: GET manifest " + manifest);
    boost::system::error_code jec;
    json::value doc = json::parse(r.body, jec);
    if (jec || !doc.is_array()) return Corruption("swift: " + manifest + ": not an SLO manifest");
    for (const json::value& v : doc.as_array()) {
      const json::object* e = v.if_object();
      if (e == nullptr || !e->contains("name") || !e->at("name").is_string() ||
          !e->contains("bytes") || !e->at("bytes").is_number() || e->contains("range")) {
        return Corruption("swift: " + manifest + ": a manifest entry this reader does not handle");
      }
      std::string name(e->at("name").as_string());  // "/container/object", not encoded
      if (name.size() < 2 || name[0] != '/') return Corruption("swift: bad segment name " + name);
      const size_t slash = name.find('/', 1);
      if (slash == std::string::npos) return Corruption("swift: bad segment name " + name);
      const std::string seg = Path(name.substr(1, slash - 1), name.substr(slash + 1));
      if (e->contains("sub_slo") && e->at("sub_slo").is_bool() && e->at("sub_slo").as_bool()) {
        INGOT_RETURN_IF_ERROR(expand(seg, depth + 1));
        continue;
      }
      const uint64_t bytes = e->at("bytes").to_number<uint64_t>();
      if (bytes == 0) continue;
      out.push_back({seg, offset, bytes});
      offset += bytes;
    }
    return Status::Ok();
  };
  INGOT_RETURN_IF_ERROR(expand(path, 0));
  if (offset != size) {
    return Corruption("swift: " + path + ": the manifest's segments add up to " +
                      std::to_string(offset) + " bytes, the object has " + std::to_string(size));
  }
  return out;
}

Status SwiftStore::GetFromSegments(const std::vector<Segment>& segments, uint64_t first,
                                   uint64_t last, const remote::BodySink& sink) {
  // The first segment that ends after `first`.
  auto it = std::upper_bound(segments.begin(), segments.end(), first,
                             [](uint64_t at, const Segment& s) { return at < s.offset + s.size; });
  for (; it != segments.end() && it->offset <= last; ++it) {
    const uint64_t from = std::max(first, it->offset) - it->offset;
    const uint64_t to = std::min(last, it->offset + it->size - 1) - it->offset;
    INGOT_RETURN_IF_ERROR(GetRange(it->path, from, to, sink));
  }
  return Status::Ok();
}

Result<io::UniqueFd> SwiftStore::OpenFd(const std::string&) {
  return Unsupported("a swift store has no local files");
}

Status SwiftStore::Delete(const std::string& key) {
  INGOT_ASSIGN_OR_RETURN(HttpResponse head, Head(key));
  if (head.status == 404) return Status::Ok();
  if (!head.ok()) return remote::StatusOf(head, "swift: HEAD " + key);
  const std::string path = Path(ContainerOf(key), key);
  std::string slo = head.Header("x-static-large-object");
  std::transform(slo.begin(), slo.end(), slo.begin(), ::tolower);
  if (slo != "true") {
    INGOT_ASSIGN_OR_RETURN(HttpResponse r, Call(HttpRequest{.method = "DELETE"}, path));
    if (!r.ok() && r.status != 404) return remote::StatusOf(r, "swift: DELETE " + path);
    return Status::Ok();
  }
  // The manifest and every segment (sub-manifests' too), in one request.
  HttpRequest req{.method = "DELETE"};
  req.headers = {{"Accept", "application/json"}};
  INGOT_ASSIGN_OR_RETURN(HttpResponse r, Call(req, path + "?multipart-manifest=delete"));
  if (r.status == 404) return Status::Ok();
  if (!r.ok()) return remote::StatusOf(r, "swift: DELETE " + path);
  // Swift reports the outcome of the bulk delete in the body (the status is 200 either way).
  boost::system::error_code ec;
  json::value doc = json::parse(r.body, ec);
  if (ec || !doc.is_object()) return IoError("swift: DELETE " + path + ": unreadable answer");
  const json::value* status = doc.as_object().if_contains("Response Status");
  const json::value* errors = doc.as_object().if_contains("Errors");
  const bool ok = status && status->is_string() && status->as_string().starts_with("200") &&
                  (!errors || (errors->is_array() && errors->as_array().empty()));
  if (!ok) return IoError("swift: DELETE " + path + ": " + r.body.substr(0, 300));
  return Status::Ok();
}

Result<std::vector<std::string>> SwiftStore::ListContainer(const std::string& container,
                                                           std::vector<std::string>* modified) {
  std::vector<std::string> names;
  std::string marker;
  for (;;) {
    std::string path = Path(container) + "?format=json&limit=10000";
    if (!marker.empty()) path += "&marker=" + PercentEncode(marker, false);
    INGOT_ASSIGN_OR_RETURN(HttpResponse r, Call(HttpRequest{.method = "GET"}, path));
    if (r.status == 404) return names;
    if (!r.ok()) return remote::StatusOf(r, "swift: listing " + container);
    if (r.body.size() >= remote::kMaxKeptBody) {
      return IoError("swift: listing " + container + " is too long to read");
    }
    boost::system::error_code ec;
    json::value doc = json::parse(r.body, ec);
    if (ec || !doc.is_array()) return IoError("swift: listing " + container + " is not JSON");
    if (doc.as_array().empty()) return names;
    for (const json::value& e : doc.as_array()) {
      if (!e.is_object()) continue;
      const json::value* name = e.as_object().if_contains("name");
      const json::value* subdir = e.as_object().if_contains("subdir");
      if (subdir || !name || !name->is_string()) continue;
      names.emplace_back(name->as_string());
      if (modified) {
        const json::value* m = e.as_object().if_contains("last_modified");
        modified->emplace_back(m && m->is_string() ? std::string(m->as_string()) : "");
      }
    }
    marker = names.back();
  }
}

Result<std::vector<std::string>> SwiftStore::KeyContainers(
    std::vector<std::string>* segment_containers) {
  std::vector<std::string> containers;
  if (options_.multiple_containers_seed == 0) {
    containers.push_back(options_.container);
  } else {
    // The account's containers named <container>_<prefix>, without the segment containers.
    std::string marker;
    for (;;) {
      std::string path = "?format=json&limit=10000&prefix=" +
                         PercentEncode(options_.container + "_", false);
      if (!marker.empty()) path += "&marker=" + PercentEncode(marker, false);
      INGOT_ASSIGN_OR_RETURN(HttpResponse r, Call(HttpRequest{.method = "GET"}, path));
      if (!r.ok()) return remote::StatusOf(r, "swift: listing the account");
      boost::system::error_code ec;
      json::value doc = json::parse(r.body, ec);
      if (ec || !doc.is_array()) return IoError("swift: the account listing is not JSON");
      if (doc.as_array().empty()) break;
      for (const json::value& e : doc.as_array()) {
        const json::value* name = e.is_object() ? e.as_object().if_contains("name") : nullptr;
        if (!name || !name->is_string()) continue;
        marker = std::string(name->as_string());
        if (!marker.ends_with("_segments")) {
          containers.push_back(marker);
        } else if (segment_containers != nullptr) {
          segment_containers->push_back(marker);
        }
      }
    }
  }
  return containers;
}

Result<std::vector<std::string>> SwiftStore::ListKeys() {
  INGOT_ASSIGN_OR_RETURN(std::vector<std::string> containers, KeyContainers());
  std::vector<std::string> keys;
  for (const std::string& c : containers) {
    INGOT_ASSIGN_OR_RETURN(std::vector<std::string> names, ListContainer(c, nullptr));
    for (std::string& n : names) {
      if (remote::ValidObjectKey(n) && ContainerOf(n) == c) keys.push_back(std::move(n));
    }
  }
  return keys;
}

Result<int> SwiftStore::RemoveIncomplete() {
  INGOT_ASSIGN_OR_RETURN(std::vector<std::string> keys, ListKeys());
  std::set<std::string> segment_containers;
  if (options_.multiple_containers_seed == 0) {
    segment_containers.insert(options_.container + "_segments");
  } else {
    for (const std::string& k : keys) segment_containers.insert(SegmentContainerOf(k));
    // Segments of uploads that never committed live in containers no committed key names: scan
    // the account for them too.
    INGOT_ASSIGN_OR_RETURN(HttpResponse r,
                           Call(HttpRequest{.method = "GET"},
                                "?format=json&limit=10000&prefix=" +
                                    PercentEncode(options_.container + "_", false)));
    boost::system::error_code ec;
    json::value doc = json::parse(r.body, ec);
    if (r.ok() && !ec && doc.is_array()) {
      for (const json::value& e : doc.as_array()) {
        const json::value* name = e.is_object() ? e.as_object().if_contains("name") : nullptr;
        if (name && name->is_string() && name->as_string().ends_with("_segments"))
          segment_containers.insert(std::string(name->as_string()));
      }
    }
  }
  const int64_t now = NowMicros();
  int removed = 0;
  for (const std::string& sc : segment_containers) {
    std::vector<std::string> modified;
    INGOT_ASSIGN_OR_RETURN(std::vector<std::string> names, ListContainer(sc, &modified));
    // Group by "<key>/<upload>": one upload's segments (and sub-manifests).
    std::map<std::string, std::pair<std::vector<std::string>, int64_t>> uploads;
    for (size_t i = 0; i < names.size(); ++i) {
      const size_t last = names[i].rfind('/');
      if (last == std::string::npos || last == 0) continue;
      auto& u = uploads[names[i].substr(0, last)];
      u.first.push_back(names[i]);
      // Swift's last_modified is UTC without a zone.
      auto t = ParseIso8601(modified[i] + (modified[i].ends_with("Z") ? "" : "Z"));
      u.second = std::max(u.second, t.value_or(now));
    }
    for (const auto& [group, what] : uploads) {
      const std::string key = group.substr(0, group.find('/'));
      const std::string upload = group.substr(key.size() + 1);
      if (now - what.second < options_.incomplete_age_s * 1000000) continue;  // maybe in progress
      if (remote::ValidObjectKey(key)) {
        INGOT_ASSIGN_OR_RETURN(HttpResponse head, Head(key));
        if (head.ok() && head.Header("x-object-meta-ingot-upload") == upload) continue;
      }
      for (const std::string& n : what.first) {
        INGOT_ASSIGN_OR_RETURN(HttpResponse r, Call(HttpRequest{.method = "DELETE"}, Path(sc, n)));
        if (!r.ok() && r.status != 404) return remote::StatusOf(r, "swift: DELETE " + sc + "/" + n);
      }
      ++removed;
      log::Warn("store.incomplete_removed",
                {{"store", options_.id}, {"segments", sc + "/" + group}});
    }
  }
  return removed;
}

Result<std::vector<SwiftStore::Listed>> SwiftStore::ListEntries(const std::string& container) {
  std::vector<Listed> out;
  std::string marker;
  for (;;) {
    std::string path = Path(container) + "?format=json&limit=10000";
    if (!marker.empty()) path += "&marker=" + PercentEncode(marker, false);
    INGOT_ASSIGN_OR_RETURN(HttpResponse r, Call(HttpRequest{.method = "GET"}, path));
    if (r.status == 404) return out;
    if (!r.ok()) return remote::StatusOf(r, "swift: listing " + container);
    if (r.body.size() >= remote::kMaxKeptBody) {
      return IoError("swift: listing " + container + " is too long to read");
    }
    boost::system::error_code ec;
    json::value doc = json::parse(r.body, ec);
    if (ec || !doc.is_array()) return IoError("swift: listing " + container + " is not JSON");
    if (doc.as_array().empty()) return out;
    for (const json::value& e : doc.as_array()) {
      if (!e.is_object()) continue;
      const json::object& o = e.as_object();
      const json::value* name = o.if_contains("name");
      if (o.if_contains("subdir") || !name || !name->is_string()) continue;
      Listed l{.name = std::string(name->as_string())};
      marker = l.name;
      if (const json::value* b = o.if_contains("bytes"); b && b->is_int64() && b->as_int64() > 0) {
        l.bytes = static_cast<uint64_t>(b->as_int64());
      }
      if (const json::value* m = o.if_contains("last_modified"); m && m->is_string()) {
        // Swift's last_modified is UTC without a zone.
        std::string t(m->as_string());
        l.modified = ParseIso8601(t + (t.ends_with("Z") ? "" : "Z")).value_or(0);
      }
      out.push_back(std::move(l));
    }
  }
}

Result<std::vector<StoredObject>> SwiftStore::Enumerate() {
  // Seeded containers: segment containers of uploads that never committed exist without their key
  // container, so they are found in the account listing too.
  std::vector<std::string> seeded_segments;
  INGOT_ASSIGN_OR_RETURN(std::vector<std::string> containers, KeyContainers(&seeded_segments));
  std::vector<StoredObject> out;
  std::set<std::string> committed;
  for (const std::string& c : containers) {
    INGOT_ASSIGN_OR_RETURN(std::vector<Listed> listed, ListEntries(c));
    for (Listed& l : listed) {
      if (!remote::ValidObjectKey(l.name) || ContainerOf(l.name) != c) continue;
      committed.insert(l.name);
      out.push_back({.key = std::move(l.name), .bytes = l.bytes, .modified = l.modified});
    }
  }
  std::set<std::string> segment_containers(seeded_segments.begin(), seeded_segments.end());
  for (const std::string& c : containers) segment_containers.insert(c + "_segments");
  if (options_.multiple_containers_seed == 0) {
    segment_containers.insert(options_.container + "_segments");
  }
  for (const std::string& sc : segment_containers) {
    INGOT_ASSIGN_OR_RETURN(std::vector<Listed> listed, ListEntries(sc));
    // One upload's segments and sub-manifests are "<key>/<upload>/<name>".
    std::map<std::pair<std::string, std::string>, StoredObject> uploads;
    for (const Listed& l : listed) {
      const size_t a = l.name.find('/');
      const size_t b = a == std::string::npos ? a : l.name.find('/', a + 1);
      if (b == std::string::npos || a == 0 || b == a + 1) continue;
      std::string key = l.name.substr(0, a);
      if (!remote::ValidObjectKey(key) || SegmentContainerOf(key) != sc) continue;
      std::string upload = l.name.substr(a + 1, b - a - 1);
      StoredObject& o = uploads[{key, upload}];
      o.key = std::move(key);
      o.incomplete = std::move(upload);
      o.bytes += l.bytes;
      o.modified = std::max(o.modified, l.modified);
    }
    for (auto& [id, o] : uploads) {
      if (committed.count(o.key)) {
        // Segments of the committed object are part of it, not something of their own.
        INGOT_ASSIGN_OR_RETURN(HttpResponse head, Head(o.key));
        if (head.ok() && head.Header("x-object-meta-ingot-upload") == o.incomplete) continue;
      }
      out.push_back(std::move(o));
    }
  }
  return out;
}

Status SwiftStore::RemoveIncompleteWrite(const StoredObject& object) {
  if (!remote::ValidObjectKey(object.key) || object.incomplete.empty() ||
      object.incomplete.find('/') != std::string::npos) {
    return InvalidArgument("swift: not an incomplete write: '" + object.key + "/" +
                           object.incomplete + "'");
  }
  // Never the segments the committed manifest uses, whatever the caller thought.
  INGOT_ASSIGN_OR_RETURN(HttpResponse head, Head(object.key));
  if (head.ok() && head.Header("x-object-meta-ingot-upload") == object.incomplete) {
    return Conflict("swift: upload " + object.incomplete + " of " + object.key +
                    " is the committed object");
  }
  const std::string sc = SegmentContainerOf(object.key);
  const std::string prefix = object.key + "/" + object.incomplete + "/";
  std::string marker;
  for (;;) {
    std::string path = Path(sc) + "?format=json&limit=10000&prefix=" + PercentEncode(prefix, false);
    if (!marker.empty()) path += "&marker=" + PercentEncode(marker, false);
    INGOT_ASSIGN_OR_RETURN(HttpResponse r, Call(HttpRequest{.method = "GET"}, path));
    if (r.status == 404) return Status::Ok();
    if (!r.ok()) return remote::StatusOf(r, "swift: listing " + sc);
    boost::system::error_code ec;
    json::value doc = json::parse(r.body, ec);
    if (ec || !doc.is_array()) return IoError("swift: listing " + sc + " is not JSON");
    if (doc.as_array().empty()) return Status::Ok();
    for (const json::value& e : doc.as_array()) {
      const json::value* name = e.is_object() ? e.as_object().if_contains("name") : nullptr;
      if (!name || !name->is_string()) continue;
      marker = std::string(name->as_string());
      INGOT_ASSIGN_OR_RETURN(HttpResponse d,
                             Call(HttpRequest{.method = "DELETE"}, Path(sc, marker)));
      if (!d.ok() && d.status != 404) {
        return remote::StatusOf(d, "swift: DELETE " + sc + "/" + marker);
      }
    }
  }
}

std::string SwiftStore::UrlOf(const std::string& key) const {
  return "swift+config://" + options_.id + "/" + ContainerOf(key) + "/" + key;
}

Result<std::optional<std::string>> SwiftStore::KeyOfUrl(std::string_view url) {
  const std::string prefix = "swift+config://" + options_.id + "/";
  if (!url.starts_with(prefix)) return std::optional<std::string>();
  std::string_view rest = url.substr(prefix.size());
  const size_t slash = rest.rfind('/');
  if (slash == std::string_view::npos) {
    return InvalidArgument("A swift location names <container>/<object>.");
  }
  std::string container(rest.substr(0, slash));
  std::string key(rest.substr(slash + 1));
  if (!remote::ValidObjectKey(key)) {
    return InvalidArgument("'" + key + "' is not an object this store holds.");
  }
  if (container != ContainerOf(key)) {
    return InvalidArgument("The object '" + key + "' belongs in container " + ContainerOf(key) +
                           " of store " + id() + ", not " + container + ".");
  }
  INGOT_ASSIGN_OR_RETURN(HttpResponse head, Head(key));
  if (head.status == 404) return NotFound("There is no object '" + key + "' in store " + id() + ".");
  if (!head.ok()) return remote::StatusOf(head, "swift: HEAD " + key);
  return std::optional<std::string>(std::move(key));
}

// ---- Configuration ----

namespace {

Result<bool> BoolOption(const StoreConfig& c, const std::string& key, bool fallback) {
  auto it = c.options.find(key);
  if (it == c.options.end()) return fallback;
  std::string v = it->second;
  std::transform(v.begin(), v.end(), v.begin(), ::tolower);
  if (v == "true" || v == "1" || v == "yes" || v == "on") return true;
  if (v == "false" || v == "0" || v == "no" || v == "off") return false;
  return InvalidArgument("option " + key + ": expected true or false, not '" + it->second + "'");
}

std::string StrOption(const StoreConfig& c, const std::string& key, std::string fallback) {
  auto it = c.options.find(key);
  return it == c.options.end() ? fallback : it->second;
}

}  // namespace

Result<std::unique_ptr<Store>> MakeSwiftStore(const StoreConfig& config) {
  INGOT_RETURN_IF_ERROR(CheckOptions(
      config, {"swift_store_auth_version", "swift_store_auth_address", "swift_store_user",
               "swift_store_key", "swift_store_user_domain_name", "swift_store_project_domain_name",
               "swift_store_region", "swift_store_endpoint_type", "swift_store_service_type",
               "swift_store_endpoint", "swift_store_container",
               "swift_store_create_container_on_put", "swift_store_multiple_containers_seed",
               "swift_store_large_object_size", "swift_store_large_object_chunk_size",
               "swift_store_upload_concurrency", "swift_store_retry_get_count",
               "swift_store_incomplete_age", "swift_store_cacert", "swift_store_auth_insecure",
               "swift_store_retries"}));
  SwiftStoreOptions o;
  o.id = config.id;
  INGOT_ASSIGN_OR_RETURN(uint64_t version, UintOption(config, "swift_store_auth_version", 1));
  o.auth_version = static_cast<int>(version);
  o.auth_address = StrOption(config, "swift_store_auth_address", "");
  o.user = StrOption(config, "swift_store_user", "");
  o.key = StrOption(config, "swift_store_key", "");
  o.user_domain = StrOption(config, "swift_store_user_domain_name", o.user_domain);
  o.project_domain = StrOption(config, "swift_store_project_domain_name", o.project_domain);
  o.region = StrOption(config, "swift_store_region", "");
  o.endpoint_type = StrOption(config, "swift_store_endpoint_type", o.endpoint_type);
  o.service_type = StrOption(config, "swift_store_service_type", o.service_type);
  o.endpoint = StrOption(config, "swift_store_endpoint", "");
  o.container = StrOption(config, "swift_store_container", o.container);
  INGOT_ASSIGN_OR_RETURN(o.create_container_on_put,
                         BoolOption(config, "swift_store_create_container_on_put", false));
  INGOT_ASSIGN_OR_RETURN(uint64_t seed, UintOption(config, "swift_store_multiple_containers_seed", 0));
  o.multiple_containers_seed = static_cast<int>(std::min<uint64_t>(seed, 1000));
  INGOT_ASSIGN_OR_RETURN(uint64_t large, UintOption(config, "swift_store_large_object_size", 5120));
  INGOT_ASSIGN_OR_RETURN(uint64_t chunk,
                         UintOption(config, "swift_store_large_object_chunk_size", 64));
  if (large > (1ull << 30) || chunk > 5120) {
    return InvalidArgument("swift_store_large_object_chunk_size is at most 5120 (MB, Swift's "
                           "object limit)");
  }
  o.large_object_size = large << 20;
  o.large_object_chunk_size = chunk << 20;
  INGOT_ASSIGN_OR_RETURN(uint64_t conc, UintOption(config, "swift_store_upload_concurrency", 3));
  o.upload_concurrency = static_cast<int>(std::min<uint64_t>(conc, 1000));
  INGOT_ASSIGN_OR_RETURN(uint64_t get_retries, UintOption(config, "swift_store_retry_get_count", 3));
  o.retry_get_count = static_cast<int>(std::min<uint64_t>(get_retries, 100));
  INGOT_ASSIGN_OR_RETURN(uint64_t age, UintOption(config, "swift_store_incomplete_age", 3600));
  o.incomplete_age_s = static_cast<int64_t>(std::min<uint64_t>(age, 1ull << 40));
  INGOT_ASSIGN_OR_RETURN(uint64_t retries, UintOption(config, "swift_store_retries", 3));
  o.retry.attempts = 1 + static_cast<int>(std::min<uint64_t>(retries, 20));
  o.transport.ca_file = StrOption(config, "swift_store_cacert", "");
  INGOT_ASSIGN_OR_RETURN(o.transport.insecure,
                         BoolOption(config, "swift_store_auth_insecure", false));
  if (o.user.empty() || o.key.empty()) {
    return InvalidArgument("the swift driver needs swift_store_user and swift_store_key");
  }
  INGOT_ASSIGN_OR_RETURN(auto store, SwiftStore::Open(std::move(o)));
  return std::unique_ptr<Store>(std::move(store));
}

}  // namespace ingot::store
