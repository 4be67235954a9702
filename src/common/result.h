// Result<T>: a value or a non-OK Status. The return type of every fallible call that yields something.
#pragma once

#include <cassert>
#include <optional>
#include <utility>

#include "common/status.h"

namespace ingot {

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {  // NOLINT: implicit by design
    assert(!status_.ok() && "Result built from an OK Status has no value");
    if (status_.ok()) status_ = Internal("Result built from an OK status");
  }

  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }

  T& value() & { assert(ok()); return *value_; }
  const T& value() const& { assert(ok()); return *value_; }
  T&& value() && { assert(ok()); return std::move(*value_); }

  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  Status status_;
  std::optional<T> value_;
};

}  // namespace ingot

#define INGOT_CONCAT_INNER_(a, b) a##b
#define INGOT_CONCAT_(a, b) INGOT_CONCAT_INNER_(a, b)

// Returns the Status from the enclosing function if `expr` (a Status) is not OK.
#define INGOT_RETURN_IF_ERROR(expr)                 \
  do {                                              \
    ::ingot::Status ingot_status_ = (expr);         \
    if (!ingot_status_.ok()) return ingot_status_;  \
  } while (0)

// `INGOT_ASSIGN_OR_RETURN(auto x, F());` declares x from F()'s value, or returns its Status.
#define INGOT_ASSIGN_OR_RETURN(lhs, expr) \
  INGOT_ASSIGN_OR_RETURN_IMPL_(INGOT_CONCAT_(ingot_result_, __LINE__), lhs, expr)
#define INGOT_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                 \
  if (!tmp.ok()) return tmp.status();                \
  lhs = std::move(tmp).value()
