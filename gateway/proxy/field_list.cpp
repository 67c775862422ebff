#include "gateway/proxy/field_list.h"

#include "gateway/http/headers.h"

namespace gw::proxy {

std::optional<std::string_view> FieldList::get(std::string_view name) const {
  if (!(nameLengths_ & lengthBit(name.size()))) return std::nullopt;
  for (std::size_t i = 0; i < entries_.size(); ++i) {
    auto [n, v] = at(i);
    if (http::iequals(n, name)) return v;
  }
  return std::nullopt;
}

void FieldList::set(std::string_view name, std::string_view value) {
  remove(name);
  add(name, value);
}

void FieldList::add(std::string_view name, std::string_view value) {
  if (entries_.empty()) {
    // One allocation each for a typical head instead of a chain of regrowths.
    arena_.reserve(1024);
    entries_.reserve(32);
  }
  entries_.push_back({static_cast<uint32_t>(arena_.size()), static_cast<uint32_t>(name.size()),
                      static_cast<uint32_t>(value.size())});
  arena_.append(name).append(value);
  nameLengths_ |= lengthBit(name.size());
}

void FieldList::remove(std::string_view name) {
  if (!(nameLengths_ & lengthBit(name.size()))) return;
  auto matches = [&](const Entry& e) {
    return e.nameLength == name.size() &&
           http::iequals(std::string_view(arena_.data() + e.offset, e.nameLength), name);
  };
  // Usually there is nothing to remove (set() of a header the message lacks): just look.
  auto first = std::find_if(entries_.begin(), entries_.end(), matches);
  if (first == entries_.end()) return;
  entries_.erase(std::remove_if(first, entries_.end(), matches), entries_.end());
}

void FieldList::clear() {
  arena_.clear();
  entries_.clear();
  nameLengths_ = 0;
}

}  // namespace gw::proxy
