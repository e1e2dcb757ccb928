// Status and Result<T>: how errors cross module boundaries in ipguard.
//
// Errors from bad input are values, never exceptions. A Status carries a human
// message that is meant to be shown to the user as is (it already names the
// field and the offending text).
#ifndef IPGUARD_CORE_STATUS_H_
#define IPGUARD_CORE_STATUS_H_

#include <cassert>
#include <optional>
#include <string>
#include <utility>

namespace ipguard {

class Status {
 public:
  Status() = default;
  static Status Ok() { return Status(); }
  static Status Error(std::string message) { return Status(std::move(message), true); }

  bool ok() const { return !failed_; }
  const std::string& message() const { return message_; }

 private:
  Status(std::string message, bool failed) : message_(std::move(message)), failed_(failed) {}
  std::string message_;
  bool failed_ = false;
};

template <typename T>
class Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit on purpose
  Result(Status status) : status_(std::move(status)) { assert(!status_.ok()); }  // NOLINT

  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }
  const std::string& error() const { return status_.message(); }
  const T& value() const& {
    assert(ok());
    return *value_;
  }
  T& value() & {
    assert(ok());
    return *value_;
  }
  T&& value() && {
    assert(ok());
    return std::move(*value_);
  }
  const T& operator*() const& { return value(); }
  const T* operator->() const { return &value(); }

 private:
  std::optional<T> value_;
  Status status_;
};

}  // namespace ipguard

#endif  // IPGUARD_CORE_STATUS_H_
