// Maps (method, path) to a route value of the listener's choosing: the API's routes carry a policy
// rule and a body mode, a boot listener's a file root. Patterns are '/'-separated segments;
// "{name}" matches one segment, passed in order as Match::params. HEAD falls back to the GET route.
//
// Routes are added at start, then only looked up: Find may be called from many threads at once.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace ingot::http {

using PathParams = std::vector<std::string>;

// Splits "/v2/images/x" into {"v2", "images", "x"} (empty segments dropped).
std::vector<std::string_view> SplitPath(std::string_view path);

template <typename Value>
class Router {
 public:
  struct Route {
    std::string method;
    std::string pattern;  // also the route label in metrics
    Value value;
  };
  struct Match {
    const Route* route = nullptr;  // null: no route for this method (see allow) or path
    PathParams params;
    std::string allow;  // "GET, PATCH, DELETE" when the path exists for other methods
  };

  void Add(std::string method, std::string pattern, Value value) {
    std::vector<std::string> segs;
    for (auto s : SplitPath(pattern)) segs.emplace_back(s);
    routes_.push_back(Route{std::move(method), std::move(pattern), std::move(value)});
    segments_.push_back(std::move(segs));
  }

  Match Find(std::string_view method, std::string_view path) const {
    Match m;
    auto parts = SplitPath(path);
    const Route* get_route = nullptr;
    PathParams get_params;
    for (size_t r = 0; r < routes_.size(); ++r) {
      const auto& segs = segments_[r];
      if (segs.size() != parts.size()) continue;
      PathParams params;
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

  const std::vector<Route>& routes() const { return routes_; }

 private:
  std::vector<Route> routes_;
  std::vector<std::vector<std::string>> segments_;  // parallel to routes_
};

}  // namespace ingot::http
