#include "auth/keystone/limits.h"

#include <boost/json.hpp>
#include <mutex>
#include <unordered_map>

#include "common/log.h"
#include "common/time.h"

namespace ingot::auth::keystone {
namespace json = boost::json;
namespace {

Result<json::object> GetJson(Identity& identity, const std::string& path) {
  INGOT_ASSIGN_OR_RETURN(WireResponse r, identity.Get(path));
  if (r.status != 200) {
    return Unavailable("Keystone answered " + std::to_string(r.status) + " to GET " + path);
  }
  boost::system::error_code ec;
  json::value v = json::parse(r.body, ec);
  if (ec || !v.is_object()) return Unavailable("Keystone's answer to GET " + path + " is not JSON");
  return v.as_object();
}

std::string Text(const json::object& o, std::string_view k) {
  const json::value* v = o.if_contains(k);
  return v && v->is_string() ? std::string(v->as_string()) : std::string();
}

// Appends resource_name -> resource_limit from a "limits" or "registered_limits" list.
void Collect(const json::object& doc, const char* list, std::map<std::string, int64_t>& out) {
  const json::value* items = doc.if_contains(list);
  if (items == nullptr || !items->is_array()) return;
  for (const json::value& it : items->as_array()) {
    if (!it.is_object()) continue;
    const json::object& o = it.as_object();
    const json::value* limit = o.if_contains(list == std::string_view("limits") ? "resource_limit"
                                                                               : "default_limit");
    std::string name = Text(o, "resource_name");
    if (limit == nullptr || !limit->is_int64() || name.empty()) continue;
    out[name] = limit->as_int64();
  }
}

class KeystoneLimits final : public service::LimitSource {
 public:
  KeystoneLimits(std::shared_ptr<Identity> identity, std::string endpoint_id, int cache_seconds)
      : identity_(std::move(identity)),
        endpoint_id_(std::move(endpoint_id)),
        cache_us_(int64_t{cache_seconds} * 1'000'000) {}

  Result<std::map<std::string, int64_t>> LimitsFor(const std::string& project) override {
    const int64_t now = NowMicros();
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = cache_.find(project);
      if (it != cache_.end() && now < it->second.until) return it->second.limits;
    }
    INGOT_RETURN_IF_ERROR(FindService());
    std::string filter = "service_id=" + service_id_ +
                         (region_id_.empty() ? std::string() : "&region_id=" + region_id_);
    INGOT_ASSIGN_OR_RETURN(json::object registered,
                           GetJson(*identity_, "/registered_limits?" + filter));
    INGOT_ASSIGN_OR_RETURN(json::object own,
                           GetJson(*identity_, "/limits?" + filter + "&project_id=" + project));
    std::map<std::string, int64_t> limits;
    Collect(registered, "registered_limits", limits);
    Collect(own, "limits", limits);
    std::lock_guard<std::mutex> lock(mu_);
    if (cache_.size() > 10000) cache_.clear();
    cache_[project] = {limits, now + cache_us_};
    return limits;
  }

 private:
  Status FindService() {
    std::lock_guard<std::mutex> lock(service_mu_);
    if (!service_id_.empty()) return Status::Ok();
    if (!endpoint_id_.empty()) {
      INGOT_ASSIGN_OR_RETURN(json::object doc, GetJson(*identity_, "/endpoints/" + endpoint_id_));
      const json::value* ep = doc.if_contains("endpoint");
      if (ep == nullptr || !ep->is_object()) return Unavailable("Keystone has no endpoint " + endpoint_id_);
      service_id_ = Text(ep->as_object(), "service_id");
      region_id_ = Text(ep->as_object(), "region_id");
    } else {
      INGOT_ASSIGN_OR_RETURN(json::object doc, GetJson(*identity_, "/services?type=image"));
      const json::value* list = doc.if_contains("services");
      if (list != nullptr && list->is_array() && !list->as_array().empty() &&
          list->as_array()[0].is_object()) {
        service_id_ = Text(list->as_array()[0].as_object(), "id");
      }
      region_id_ = identity_->options().region_name;
    }
    if (service_id_.empty()) {
      return Unavailable("no image service in Keystone's catalog to read unified limits for");
    }
    log::Info("quotas.keystone_limits", {{"service_id", service_id_}, {"region", region_id_}});
    return Status::Ok();
  }

  struct Entry {
    std::map<std::string, int64_t> limits;
    int64_t until = 0;
  };
  std::shared_ptr<Identity> identity_;
  const std::string endpoint_id_;
  const int64_t cache_us_;
  std::mutex service_mu_;
  std::string service_id_;
  std::string region_id_;
  std::mutex mu_;
  std::unordered_map<std::string, Entry> cache_;
};

}  // namespace

std::unique_ptr<service::LimitSource> MakeKeystoneLimits(std::shared_ptr<Identity> identity,
                                                         std::string endpoint_id,
                                                         int cache_seconds) {
  return std::make_unique<KeystoneLimits>(std::move(identity), std::move(endpoint_id),
                                          cache_seconds);
}

}  // namespace ingot::auth::keystone
