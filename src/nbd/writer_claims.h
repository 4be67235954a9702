// The one-writer rule of an export, shared by every server that serves it: the NBD server and the
// iSCSI target (iscsi/server.h) hand out the same volumes, and a machine writing a volume over one
// protocol must make the others read-only, or two machines would corrupt one disk.
#pragma once

#include <map>
#include <mutex>
#include <string>
#include <string_view>

namespace ingot::nbd {

// Who may write each export. A client identity ("nbd 10.0.0.5", "iscsi 10.0.0.5 iqn...") claims
// an export; it holds it until its last claim is released, and meanwhile no other identity may
// claim it. Thread-safe.
class WriterClaims {
 public:
  // True when nobody holds `name`, or `who` does (what a claim would get, without claiming).
  bool CanWrite(std::string_view name, std::string_view who) const {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = holders_.find(name);
    return it == holders_.end() || it->second.who == who;
  }
  // True when `who` now holds `name`; each true must be matched by one Release.
  bool Claim(std::string_view name, std::string_view who) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = holders_.find(name);
    if (it == holders_.end()) {
      holders_.emplace(std::string(name), Holder{std::string(who), 1});
      return true;
    }
    if (it->second.who != who) return false;
    it->second.claims++;
    return true;
  }
  void Release(std::string_view name) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = holders_.find(name);
    if (it != holders_.end() && --it->second.claims == 0) holders_.erase(it);
  }

 private:
  struct Holder {
    std::string who;
    size_t claims = 0;
  };
  mutable std::mutex mu_;
  std::map<std::string, Holder, std::less<>> holders_;
};

}  // namespace ingot::nbd
