#include "api/router.h"

namespace ingot::api {
namespace {

std::vector<std::string_view> Split(std::string_view path) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < path.size()) {
    if (path[i] == '/') {
      ++i;
      continue;
    }
    size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    out.push_back(path.substr(i, j - i));
    i = j;
  }
  return out;
}

}  // namespace

void Router::Add(std::string method, std::string pattern, RouteHandler handler, bool authenticated) {
  std::vector<std::string> segs;
  for (auto s : Split(pattern)) segs.emplace_back(s);
  routes_.push_back(Route{std::move(method), std::move(pattern), authenticated, std::move(handler)});
  segments_.push_back(std::move(segs));
}

Router::Match Router::Find(std::string_view method, std::string_view path) const {
  Match m;
  auto parts = Split(path);
  const Route* get_route = nullptr;
  Params get_params;
  for (size_t r = 0; r < routes_.size(); ++r) {
    const auto& segs = segments_[r];
    if (segs.size() != parts.size()) continue;
    Params params;
    bool ok = true;
    for (size_t i = 0; i < segs.size() && ok; ++i) {
      if (segs[i].size() > 1 && segs[i].front() == '{') {
        params.emplace_back(parts[i]);
      } else {
        ok = segs[i] == parts[i];
      }
    }
    if (!ok) continue;
    if (routes_[r].method == method) {
      m.route = &routes_[r];
      m.params = std::move(params);
      return m;
    }
    if (method == "HEAD" && routes_[r].method == "GET") {
      get_route = &routes_[r];
      get_params = params;
    }
    if (!m.allow.empty()) m.allow += ", ";
    m.allow += routes_[r].method;
  }
  if (get_route != nullptr) {
    m.route = get_route;
    m.params = std::move(get_params);
  }
  return m;
}

}  // namespace ingot::api
