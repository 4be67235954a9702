#include "store/store_set.h"

namespace ingot::store {

Status StoreSet::Add(std::unique_ptr<Store> store, StoreDescription description) {
  if (Find(store->id()) != nullptr) {
    return AlreadyExists("store '" + store->id() + "' is configured twice");
  }
  description.id = store->id();
  bool make_default = description.is_default;
  entries_.push_back(Entry{std::move(store), std::move(description)});
  if (make_default) default_index_ = entries_.size() - 1;
  for (size_t i = 0; i < entries_.size(); ++i) {
    entries_[i].description.is_default = i == default_index_;
  }
  return Status::Ok();
}

Store* StoreSet::Find(std::string_view id) const {
  for (const Entry& e : entries_) {
    if (e.store->id() == id) return e.store.get();
  }
  return nullptr;
}

Result<Store*> StoreSet::ForWriting(std::string_view id) const {
  if (id.empty()) return &default_store();
  for (const Entry& e : entries_) {
    if (e.store->id() != id) continue;
    if (e.description.read_only)
      return PermissionDenied("Store " + std::string(id) + " is read-only");
    return e.store.get();
  }
  return NotFound("Store for identifier " + std::string(id) + " not found");
}

int StoreSet::WeightOf(std::string_view id) const {
  for (const Entry& e : entries_) {
    if (e.store->id() == id) return e.description.weight;
  }
  return 0;
}

bool StoreSet::IsReadOnly(std::string_view id) const {
  for (const Entry& e : entries_) {
    if (e.store->id() == id) return e.description.read_only;
  }
  return false;
}

Store& StoreSet::default_store() const { return *entries_.at(default_index_).store; }

std::vector<StoreDescription> StoreSet::Describe() const {
  std::vector<StoreDescription> out;
  for (const Entry& e : entries_) out.push_back(e.description);
  return out;
}

std::vector<Store*> StoreSet::stores() const {
  std::vector<Store*> out;
  for (const Entry& e : entries_) out.push_back(e.store.get());
  return out;
}

}  // namespace ingot::store
