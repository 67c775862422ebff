#pragma once
// An owned, editable list of header fields: what plugins see and change, and what is serialised
// toward the upstream or the client afterwards. Bytes live in one arena, already serialised
// ("Name: value\r\n"), so that writing a head copies runs of fields at once; entries point into
// it by offset, so adding fields never leaves dangling entries. Views returned by get()/at()
// are valid until the next add()/set().

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/plugin/plugin.h"

namespace gw::proxy {

class FieldList final : public plugin::HeaderMap {
 public:
  FieldList() = default;
  // Moved-from lists are empty (and usable).
  FieldList(FieldList&& other) noexcept { *this = std::move(other); }
  FieldList& operator=(FieldList&& other) noexcept;
  std::optional<std::string_view> get(std::string_view name) const override;
  void set(std::string_view name, std::string_view value) override;
  void add(std::string_view name, std::string_view value) override;
  void remove(std::string_view name) override;
  std::size_t size() const override { return entries_.size(); }
  std::pair<std::string_view, std::string_view> at(std::size_t i) const override {
    const Entry& e = entries_[i];
    const char* name = arena_.get() + e.offset;
    return {{name, e.nameLength}, {name + e.nameLength + 2, e.valueLength}};
  }
  void clear();
  // Bytes of "Name: value\r\n" for every field `skip(name)` is false of, and writing them (at
  // `out`, that many): a head is written with one reservation of its output.
  template <typename Skip>
  std::size_t serializedSize(Skip&& skip) const;
  template <typename Skip>
  char* serializeTo(char* out, Skip&& skip) const;
  std::size_t serializedSize() const { return serializedSize(keepAll); }
  char* serializeTo(char* out) const { return serializeTo(out, keepAll); }

 private:
  static constexpr bool keepAll(std::string_view) { return false; }
  // A field's line in the arena: its name at offset, ": ", its value, CRLF.
  struct Entry {
    uint32_t offset;
    uint32_t nameLength;
    uint32_t valueLength;
    uint32_t lineLength() const { return nameLength + valueLength + 4; }
  };
  static uint64_t lengthBit(std::size_t length) { return uint64_t{1} << (length % 64); }
  // Room for n more bytes in the arena.
  void reserveArena(std::size_t n);
  // Not a std::string: appending to one costs twice the copy itself, and lists are recycled,
  // so the arena keeps its capacity across clear().
  std::unique_ptr<char[]> arena_;
  std::size_t arenaSize_ = 0;
  std::size_t arenaCapacity_ = 0;
  std::vector<Entry> entries_;
  // One bit per name length (mod 64) ever added since clear(): a set() of a name no field can
  // have (the usual case: a plugin adding its own field) skips the search for fields to remove.
  uint64_t nameLengths_ = 0;
};

template <typename Skip>
std::size_t FieldList::serializedSize(Skip&& skip) const {
  std::size_t size = 0;
  for (std::size_t i = 0; i < entries_.size(); ++i) {
    if (!skip(at(i).first)) size += entries_[i].lineLength();
  }
  return size;
}

template <typename Skip>
char* FieldList::serializeTo(char* out, Skip&& skip) const {
  // Lines of fields neither removed nor skipped lie back to back: one copy per run of them.
  const char* run = arena_.get();
  std::size_t runLength = 0;
  for (std::size_t i = 0; i < entries_.size(); ++i) {
    if (skip(at(i).first)) continue;
    const Entry& e = entries_[i];
    const char* line = arena_.get() + e.offset;
    if (line != run + runLength) {
      out = std::copy_n(run, runLength, out);
      run = line;
      runLength = 0;
    }
    runLength += e.lineLength();
  }
  return std::copy_n(run, runLength, out);
}

}  // namespace gw::proxy
