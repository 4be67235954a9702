// The read-only HTTP store (driver "http"), Glance's http store: image bytes an HTTP(S) server
// serves, named by their URL. Ingot never writes, lists or deletes there (Capabilities::external);
// an image gets a location here only through Glance's multiple-locations API (PATCH add/replace on
// /locations, service/locations.h), and its download then streams from that URL.
//
// Keys are the location URLs themselves (UrlOf(key) == key), exactly as the client wrote them (a
// "#fragment" included: Glance keeps "…/cirros.img" and "…/cirros.img#new" as two locations of the
// same bytes; the fragment is never sent).
//
// Every request goes through fetch/ (fetch.h): the operator's [import_filtering_opts] apply to the
// URL and every redirect, and the address rule refuses loopback, private and link-local targets
// unless the operator allowed them — a location URL is a user's choice, so the server is never a
// proxy into its own network. The size is the server's Content-Length (required: Glance too takes
// the size from the store); reads stream one GET and re-open with a Range request when the reader
// seeks.
//
// Thread safety: the store may be used from many threads; a ByteSource it opens serializes its
// reads (one connection at a time).
#pragma once

#include <memory>
#include <string>

#include "fetch/fetch.h"
#include "store/registry.h"
#include "store/store.h"

namespace ingot::store {

struct HttpStoreOptions {
  std::string id = "http";
  // The rules and limits of every request (the composition root passes [import_filtering_opts]
  // and the size cap).
  fetch::FetchOptions fetch;
};

class HttpStore final : public Store {
 public:
  explicit HttpStore(HttpStoreOptions options) : options_(std::move(options)) {}

  const std::string& id() const override { return options_.id; }
  Capabilities capabilities() const override {
    return {.local_file = false, .random_read = false, .external = true};
  }
  // kPermissionDenied: nothing is ever written to another's server.
  Result<std::unique_ptr<PendingObject>> Create(const std::string& key) override;
  // kNotFound when the server answers 404; kRefused (fetch's rule named) when the URL may not be
  // fetched; kUnavailable when the server cannot be reached; kInvalidArgument when it sends no
  // Content-Length.
  Result<std::unique_ptr<io::ByteSource>> Open(const std::string& key) override;
  Result<io::UniqueFd> OpenFd(const std::string& key) override;
  // The server's Content-Length, from a GET whose body is not read (errors as Open's).
  Result<uint64_t> SizeOf(const std::string& key) override;
  // OK, doing nothing: the bytes are not ours to remove.
  Status Delete(const std::string& key) override;
  Result<int> RemoveIncomplete() override { return 0; }
  Result<std::vector<std::string>> ListKeys() override { return std::vector<std::string>(); }

  std::string UrlOf(const std::string& key) const override { return key; }
  // Any http:// or https:// URL that passes fetch's URL rules (scheme, host, port; no resolution
  // yet) is its own key; another scheme is not this store's (nullopt); a refused one is
  // kInvalidArgument naming the rule. Whether the server has it is SizeOf's question.
  Result<std::optional<std::string>> KeyOfUrl(std::string_view url) override;

 private:
  HttpStoreOptions options_;
};

// The driver factory: the store `config` names, fetching under `fetch` (the composition root binds
// its [import_filtering_opts] and size cap). The driver takes no options of its own and must be
// configured read_only = true (kInvalidArgument otherwise, naming the store).
Result<std::unique_ptr<Store>> MakeHttpStore(const StoreConfig& config,
                                             const fetch::FetchOptions& fetch);

}  // namespace ingot::store
