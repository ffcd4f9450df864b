// Names for error codes (logs and metrics labels).
#include "common/store/store.h"

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

}  // namespace s2::store
