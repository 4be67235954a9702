#include "api/metrics.h"

#include <cstdio>

namespace ingot::api {
namespace {

std::string Label(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

std::string Num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

}  // namespace

void Metrics::Record(const http::Exchange& e) {
  std::string route = e.route.empty() ? "unmatched" : e.route;
  double seconds = static_cast<double>(e.duration.count()) / 1e6;
  std::lock_guard lock(mu_);
  ++requests_[{route, e.method, e.status}];
  Histogram& h = latency_[route];
  for (size_t i = 0; i < kBuckets.size(); ++i) {
    if (seconds <= kBuckets[i]) ++h.counts[i];
  }
  ++h.count;
  h.sum += seconds;
  bytes_in_ += e.bytes_in;
  bytes_out_ += e.bytes_out;
  if (!e.completed) ++incomplete_;
}

std::string Metrics::Render() const {
  std::lock_guard lock(mu_);
  std::string out;
  out.reserve(4096);
  out += "# HELP ingot_http_requests_total HTTP requests by route, method and status.\n";
  out += "# TYPE ingot_http_requests_total counter\n";
  for (const auto& [key, n] : requests_) {
    const auto& [route, method, status] = key;
    out += "ingot_http_requests_total{route=\"" + Label(route) + "\",method=\"" + Label(method) +
           "\",status=\"" + std::to_string(status) + "\"} " + std::to_string(n) + "\n";
  }
  out += "# HELP ingot_http_request_duration_seconds Time from request headers to last byte sent.\n";
  out += "# TYPE ingot_http_request_duration_seconds histogram\n";
  for (const auto& [route, h] : latency_) {
    std::string l = "route=\"" + Label(route) + "\"";
    for (size_t i = 0; i < kBuckets.size(); ++i) {
      out += "ingot_http_request_duration_seconds_bucket{" + l + ",le=\"" + Num(kBuckets[i]) +
             "\"} " + std::to_string(h.counts[i]) + "\n";
    }
    out += "ingot_http_request_duration_seconds_bucket{" + l + ",le=\"+Inf\"} " +
           std::to_string(h.count) + "\n";
    out += "ingot_http_request_duration_seconds_sum{" + l + "} " + Num(h.sum) + "\n";
    out += "ingot_http_request_duration_seconds_count{" + l + "} " + std::to_string(h.count) + "\n";
  }
  out += "# HELP ingot_http_request_bytes_total Request body bytes received.\n";
  out += "# TYPE ingot_http_request_bytes_total counter\n";
  out += "ingot_http_request_bytes_total " + std::to_string(bytes_in_) + "\n";
  out += "# HELP ingot_http_response_bytes_total Response body bytes sent.\n";
  out += "# TYPE ingot_http_response_bytes_total counter\n";
  out += "ingot_http_response_bytes_total " + std::to_string(bytes_out_) + "\n";
  out += "# HELP ingot_http_incomplete_responses_total Responses cut off by a failed connection.\n";
  out += "# TYPE ingot_http_incomplete_responses_total counter\n";
  out += "ingot_http_incomplete_responses_total " + std::to_string(incomplete_) + "\n";
  return out;
}

}  // namespace ingot::api
