#include "gateway/proxy/field_list.h"

#include <algorithm>
#include <cstring>
#include <utility>

namespace gw::proxy {

FieldList& FieldList::operator=(FieldList&& other) noexcept {
  if (this == &other) return *this;
  arena_ = std::move(other.arena_);
  arenaSize_ = std::exchange(other.arenaSize_, 0);
  arenaCapacity_ = std::exchange(other.arenaCapacity_, 0);
  entries_ = std::move(other.entries_);
  other.entries_.clear();
  lineBytes_ = std::exchange(other.lineBytes_, 0);
  namesSeen_ = std::exchange(other.namesSeen_, 0);
  return *this;
}

std::optional<std::string_view> FieldList::get(std::string_view name) const {
  if (!(namesSeen_ & nameBit(name))) return std::nullopt;
  for (std::size_t i = 0; i < entries_.size(); ++i) {
    auto [n, v] = at(i);
    if (http::iequals(n, name)) return v;
  }
  return std::nullopt;
}

void FieldList::reserveArena(std::size_t n) {
  // One allocation for a typical head instead of a chain of regrowths.
  const std::size_t capacity = std::max({std::size_t{1024}, 2 * arenaCapacity_, arenaSize_ + n});
  auto grown = std::make_unique_for_overwrite<char[]>(capacity);
  if (arenaSize_ > 0) std::memcpy(grown.get(), arena_.get(), arenaSize_);
  arena_ = std::move(grown);
  arenaCapacity_ = capacity;
  if (entries_.capacity() == 0) entries_.reserve(32);
}

void FieldList::removeMatching(std::string_view name) {
  auto matches = [&](const Entry& e) {
    return e.nameLength == name.size() &&
           http::iequals(std::string_view(arena_.get() + e.offset, e.nameLength), name);
  };
  // Usually there is nothing to remove (set() of a header the message lacks): just look.
  auto first = std::find_if(entries_.begin(), entries_.end(), matches);
  if (first == entries_.end()) return;
  const auto kept = std::remove_if(first, entries_.end(), [&](const Entry& e) {
    if (!matches(e)) return false;
    lineBytes_ -= e.lineLength();
    return true;
  });
  entries_.erase(kept, entries_.end());
}

char* FieldList::serializeTo(char* out, bool withoutLength) const {
  // Lines of fields neither removed nor omitted lie back to back: one copy per run of them.
  // Locals only in the loop: writes through `out` could alias the members.
  const char* const arena = arena_.get();
  std::size_t from = 0;
  std::size_t to = 0;  // the run not yet copied: [from, to) of the arena
  for (const Entry *e = entries_.data(), *end = e + entries_.size(); e != end; ++e) {
    const std::size_t line = e->offset;
    const bool omit = withoutLength && omitted(*e);
    if (omit || line != to) {
      out = std::copy_n(arena + from, to - from, out);
      from = omit ? line + e->lineLength() : line;
      to = from;
      if (omit) continue;
    }
    to = line + e->lineLength();
  }
  return std::copy_n(arena + from, to - from, out);
}

void FieldList::clear() {
  arenaSize_ = 0;
  lineBytes_ = 0;
  entries_.clear();
  namesSeen_ = 0;
}

}  // namespace gw::proxy
