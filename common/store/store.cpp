// Names for error codes (logs and metrics labels).
#include "common/store/store.h"

#include "common/store/schema.h"

namespace s2::store {

std::string_view errc_name(Errc c) {
  switch (c) {
    case Errc::kItemNotFound:
      return "item-not-found";
    case Errc::kNotFound:
      return "not-found";
    case Errc::kInvalidArgument:
      return "invalid-argument";
    case Errc::kMapFull:
      return "map-full";
    case Errc::kNoSpace:
      return "no-space";
    case Errc::kCorrupt:
      return "corrupt";
    case Errc::kIo:
      return "io";
    case Errc::kClosed:
      return "closed";
    case Errc::kFenced:
      return "fenced";
  }
  return "unknown";
}

namespace {
std::string encoded(std::string_view key) {
  schema::Key k;
  schema::put_component(k, key);
  return std::string(std::string_view(k));
}
}  // namespace

std::optional<ArchiveId> ResendKeys::find(std::string_view key) const {
  auto it = by_component_.find(encoded(key));
  if (it == by_component_.end()) return std::nullopt;
  return it->second;
}

void ResendKeys::insert(std::string_view key, ArchiveId id) { by_component_[encoded(key)] = id; }

void ResendKeys::erase(std::string_view key) { by_component_.erase(encoded(key)); }

void ResendKeys::insert_encoded(std::string component, ArchiveId id) {
  by_component_[std::move(component)] = id;
}

}  // namespace s2::store
