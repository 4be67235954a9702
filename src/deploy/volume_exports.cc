#include "deploy/volume_exports.h"

#include "common/log.h"

namespace ingot::deploy {

// nbd::Export over an OsVolume: each call is one line, the volume does the work.
class VolumeExports::VolumeExport final : public nbd::Export {
 public:
  explicit VolumeExport(std::unique_ptr<OsVolume> v) : v_(std::move(v)) {}
  uint64_t Size() const override { return v_->Size(); }
  bool read_only() const override { return false; }
  Status Read(uint64_t offset, std::span<uint8_t> buf) override { return v_->Read(offset, buf); }
  Status Write(uint64_t offset, std::span<const uint8_t> data, bool fua) override {
    INGOT_RETURN_IF_ERROR(v_->Write(offset, data));
    return fua ? v_->Flush() : Status::Ok();
  }
  Status Flush() override { return v_->Flush(); }
  Status Trim(uint64_t offset, uint64_t length, bool fua) override {
    INGOT_RETURN_IF_ERROR(v_->Trim(offset, length));
    return fua ? v_->Flush() : Status::Ok();
  }
  Status WriteZeroes(uint64_t offset, uint64_t length, bool may_punch, bool fua) override {
    INGOT_RETURN_IF_ERROR(v_->WriteZeroes(offset, length, may_punch));
    return fua ? v_->Flush() : Status::Ok();
  }
  std::optional<FileRange> MapToFile(uint64_t offset, uint64_t max_length) override {
    auto r = v_->MapToFile(offset, max_length);
    if (!r) return std::nullopt;
    return FileRange{r->fd, r->file_offset, r->length};
  }
  Result<nbd::ExportExtent> BlockStatus(uint64_t offset, uint64_t max_length) override {
    INGOT_ASSIGN_OR_RETURN(VolumeExtent e, v_->BlockStatus(offset, max_length));
    return nbd::ExportExtent{e.length, !e.allocated, e.zero};
  }

 private:
  std::unique_ptr<OsVolume> v_;
};

Result<std::shared_ptr<nbd::Export>> VolumeExports::Resolve(std::string_view name,
                                                            std::string_view peer) {
  return Open(name, peer, nullptr);
}

Result<std::shared_ptr<nbd::Export>> VolumeExports::ResolveTarget(std::string_view volume,
                                                                  std::string_view initiator,
                                                                  std::string_view peer) {
  const std::string i(initiator);
  return Open(volume, peer, &i);
}

Result<std::shared_ptr<nbd::Export>> VolumeExports::Open(std::string_view name,
                                                         std::string_view peer,
                                                         const std::string* initiator) {
  const std::string n(name);
  // The same answer for "no such volume" and "not for you", so names do not leak to strangers.
  const Status unknown = NotFound("no export '" + n + "' for this client");
  if (!ValidVolumeName(n)) return unknown;
  auto rule = store_.GetExportRule(n);
  if (!rule.ok()) {
    if (rule.status().code() != Code::kNotFound) {
      log::Error("nbd.resolve", {{"export", n}, {"error", rule.status().ToString()}});
    }
    return unknown;
  }
  if (!AddressAllowed(*rule, peer)) return unknown;
  if (initiator != nullptr && !InitiatorAllowed(*rule, *initiator)) return unknown;
  if (!rule->attached) return Unavailable("volume '" + n + "' is not attached");

  std::lock_guard<std::mutex> lock(mu_);
  auto it = open_.find(n);
  if (it != open_.end()) {
    if (std::shared_ptr<VolumeExport> e = it->second.lock()) return std::shared_ptr<nbd::Export>(e);
  }
  auto volume = store_.OpenVolume(n);
  if (!volume.ok()) {
    log::Error("nbd.open", {{"export", n}, {"error", volume.status().ToString()}});
    if (volume.status().code() == Code::kNotFound) return unknown;
    return Unavailable("volume '" + n + "' cannot be opened now");
  }
  std::shared_ptr<VolumeExport> e(new VolumeExport(std::move(*volume)), [this](VolumeExport* p) {
    std::lock_guard<std::mutex> l(mu_);
    delete p;  // flushes and unlocks before anyone may open the volume again
  });
  open_[n] = e;
  return std::shared_ptr<nbd::Export>(e);
}

std::vector<std::string> VolumeExports::List(std::string_view peer) {
  std::vector<std::string> names;
  auto all = store_.List();
  if (!all.ok()) return names;
  for (const VolumeInfo& v : *all) {
    if (v.rule.attached && AddressAllowed(v.rule, peer)) names.push_back(v.name);
  }
  return names;
}

std::vector<std::string> VolumeExports::ListTargets(std::string_view initiator,
                                                   std::string_view peer) {
  std::vector<std::string> names;
  auto all = store_.List();
  if (!all.ok()) return names;
  for (const VolumeInfo& v : *all) {
    if (v.rule.attached && AddressAllowed(v.rule, peer) && InitiatorAllowed(v.rule, initiator)) {
      names.push_back(v.name);
    }
  }
  return names;
}

bool VolumeExports::StillAttached(const std::string& name) const {
  auto rule = store_.GetExportRule(name);
  return rule.ok() && rule->attached;
}

}  // namespace ingot::deploy
