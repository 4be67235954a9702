// An ImageRepository that passes every call to another one, except where a test intervenes: before
// each Save (and Add) a hook may fail the call (a database I/O error, a conflict) or act as a
// concurrent writer. The way to see what the use cases do when the catalog fails under them.
#pragma once

#include <functional>
#include <mutex>

#include "catalog/repository.h"

namespace ingot::catalog {

class FaultyRepository final : public ImageRepository {
 public:
  // Called with the record about to be saved; a non-OK result is returned instead of saving.
  using Hook = std::function<Status(const Image&)>;

  explicit FaultyRepository(ImageRepository& inner) : inner_(inner) {}

  void OnSave(Hook hook) {
    std::lock_guard lock(mu_);
    on_save_ = std::move(hook);
  }
  int saves() const { return saves_; }

  Status Add(const Image& image) override { return inner_.Add(image); }
  Result<Image> Get(const std::string& id) override { return inner_.Get(id); }
  Status Save(const Image& image) override {
    Hook hook;
    {
      std::lock_guard lock(mu_);
      hook = on_save_;
      ++saves_;
    }
    if (hook) INGOT_RETURN_IF_ERROR(hook(image));
    return inner_.Save(image);
  }
  Status Remove(const std::string& id) override { return inner_.Remove(id); }
  Result<ImagePage> List(const ListQuery& q, const Viewer& v) override { return inner_.List(q, v); }
  Result<std::vector<Image>> ListByStatus(const std::vector<ImageStatus>& s) override {
    return inner_.ListByStatus(s);
  }
  Result<std::map<ImageStatus, int64_t>> CountByStatus() override { return inner_.CountByStatus(); }
  Status AddMember(const ImageMember& m) override { return inner_.AddMember(m); }
  Status UpdateMember(const ImageMember& m) override { return inner_.UpdateMember(m); }
  Status RemoveMember(const std::string& i, const std::string& m) override {
    return inner_.RemoveMember(i, m);
  }
  Result<ImageMember> GetMember(const std::string& i, const std::string& m) override {
    return inner_.GetMember(i, m);
  }
  Result<std::vector<ImageMember>> ListMembers(const std::string& i) override {
    return inner_.ListMembers(i);
  }

 private:
  ImageRepository& inner_;
  std::mutex mu_;
  Hook on_save_;
  int saves_ = 0;
};

}  // namespace ingot::catalog
