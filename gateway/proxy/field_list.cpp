#include "gateway/proxy/field_list.h"

#include <algorithm>

#include "gateway/http/headers.h"

namespace gw::proxy {

std::optional<std::string_view> FieldList::get(std::string_view name) const {
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
  Entry entry;
  entry.nameOffset = static_cast<uint32_t>(arena_.size());
  entry.nameLength = static_cast<uint32_t>(name.size());
  arena_ += name;
  entry.valueOffset = static_cast<uint32_t>(arena_.size());
  entry.valueLength = static_cast<uint32_t>(value.size());
  arena_ += value;
  entries_.push_back(entry);
}

void FieldList::remove(std::string_view name) {
  auto matches = [&](const Entry& e) {
    return e.nameLength == name.size() &&
           http::iequals(std::string_view(arena_.data() + e.nameOffset, e.nameLength), name);
  };
  // Usually there is nothing to remove (set() of a header the message lacks): just look.
  auto first = std::find_if(entries_.begin(), entries_.end(), matches);
  if (first == entries_.end()) return;
  entries_.erase(std::remove_if(first, entries_.end(), matches), entries_.end());
}

std::pair<std::string_view, std::string_view> FieldList::at(std::size_t i) const {
  const Entry& e = entries_[i];
  std::string_view arena = arena_;
  return {arena.substr(e.nameOffset, e.nameLength), arena.substr(e.valueOffset, e.valueLength)};
}

void FieldList::clear() {
  arena_.clear();
  entries_.clear();
}

std::size_t FieldList::serializedSize() const {
  std::size_t size = 0;
  for (const Entry& e : entries_) size += e.nameLength + e.valueLength + 4;
  return size;
}

char* FieldList::serializeTo(char* out) const {
  for (const Entry& e : entries_) {
    out = std::copy_n(arena_.data() + e.nameOffset, e.nameLength, out);
    *out++ = ':';
    *out++ = ' ';
    out = std::copy_n(arena_.data() + e.valueOffset, e.valueLength, out);
    *out++ = '\r';
    *out++ = '\n';
  }
  return out;
}

}  // namespace gw::proxy
