// Prometheus metrics of the API: requests by route, method and status with latency histograms, bytes
// in and out. Gauges that live elsewhere (images by status) are added at scrape time by the caller.
// Thread-safe: Record is called by every request; Render by scrapes.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <tuple>

#include "http/server.h"

namespace ingot::api {

class Metrics {
 public:
  void Record(const http::Exchange& exchange);
  // The text exposition format (version 0.0.4) of everything recorded so far.
  std::string Render() const;

 private:
  static constexpr std::array<double, 12> kBuckets = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                      0.05,   0.1,   0.25,   0.5,   1,    5};
  struct Histogram {
    std::array<uint64_t, kBuckets.size()> counts{};
    uint64_t count = 0;
    double sum = 0;
  };
  mutable std::mutex mu_;
  std::map<std::tuple<std::string, std::string, int>, uint64_t> requests_;  // route, method, status
  std::map<std::string, Histogram> latency_;                                // by route
  uint64_t bytes_in_ = 0;
  uint64_t bytes_out_ = 0;
  uint64_t incomplete_ = 0;
};

}  // namespace ingot::api
