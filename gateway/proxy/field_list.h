#pragma once
// An owned, editable list of header fields: what plugins see and change, and what is serialised
// toward the upstream or the client afterwards. Bytes live in one arena, already serialised
// ("Name: value\r\n"), so that writing a head copies runs of fields at once; entries point into
// it by offset, so adding fields never leaves dangling entries. Views returned by get()/at()
// are valid until the next add()/set().

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/http/headers.h"
#include "gateway/plugin/plugin.h"

namespace gw::proxy {

class FieldList final : public plugin::HeaderMap {
 public:
  FieldList() = default;
  // Moved-from lists are empty (and usable).
  FieldList(FieldList&& other) noexcept { *this = std::move(other); }
  FieldList& operator=(FieldList&& other) noexcept;
  std::optional<std::string_view> get(std::string_view name) const override;
  // set(), add() and remove() are inline: plugins adding a dozen fields pay for little else.
  void set(std::string_view name, std::string_view value) override {
    remove(name);
    add(name, value);
  }
  void add(std::string_view name, std::string_view value) override { add(name, value, kUnknown); }
  // A field whose kind the caller already knows (as classified from the head it copies).
  void add(std::string_view name, std::string_view value, http::FieldName kind) {
    add(name, value, static_cast<uint8_t>(kind));
  }
  void remove(std::string_view name) override {
    if (namesSeen_ & nameBit(name)) removeMatching(name);
  }
  std::size_t size() const override { return entries_.size(); }
  std::pair<std::string_view, std::string_view> at(std::size_t i) const override {
    const Entry& e = entries_[i];
    const char* name = arena_.get() + e.offset;
    return {{name, e.nameLength}, {name + e.nameLength + 2, e.valueLength}};
  }
  // What the gateway makes of field i's name (http::classifyField()).
  http::FieldName kind(std::size_t i) const { return kindOf(entries_[i]); }
  void clear();
  // Bytes of "Name: value\r\n" for every field, and writing them at `out` (all of them, or all
  // but Content-Length when `withoutLength`: the framing is the writer's); returns the end.
  std::size_t serializedSize() const { return lineBytes_; }
  char* serializeTo(char* out, bool withoutLength = false) const;

 private:
  // A field's line in the arena: its name at offset, ": ", its value, CRLF.
  struct Entry {
    uint32_t offset;
    uint32_t nameLength;
    uint32_t valueLength;
    uint8_t kind;  // an http::FieldName, or kUnknown until asked (fields plugins add)
    uint32_t lineLength() const { return nameLength + valueLength + 4; }
  };
  static constexpr uint8_t kUnknown = 0xff;
  void add(std::string_view name, std::string_view value, uint8_t kind);
  void removeMatching(std::string_view name);
  http::FieldName kindOf(const Entry& e) const {
    return e.kind == kUnknown ? http::classifyField({arena_.get() + e.offset, e.nameLength})
                              : static_cast<http::FieldName>(e.kind);
  }
  // A Content-Length, which serializeTo() may leave out.
  bool omitted(const Entry& e) const {
    return e.nameLength == 14 && kindOf(e) == http::FieldName::ContentLength;
  }
  // A name's bit in namesSeen_: its length and last character (case-folded, as names compare)
  // spread the usual field names over the 64 bits.
  static uint64_t nameBit(std::string_view name) {
    const unsigned last = name.empty() ? 0 : static_cast<unsigned char>(name.back()) | 0x20;
    return uint64_t{1} << ((name.size() * 12 + last) % 64);
  }
  // Room for n more bytes in the arena.
  void reserveArena(std::size_t n);
  // Not a std::string: appending to one costs twice the copy itself, and lists are recycled,
  // so the arena keeps its capacity across clear().
  std::unique_ptr<char[]> arena_;
  std::size_t arenaSize_ = 0;
  std::size_t arenaCapacity_ = 0;
  std::vector<Entry> entries_;
  std::size_t lineBytes_ = 0;  // the lines of entries_
  // The nameBit() of every name added since clear(): a set() of a name no field can have (the
  // usual case: a plugin adding its own field) skips the search for fields to remove.
  uint64_t namesSeen_ = 0;
};

inline void FieldList::add(std::string_view name, std::string_view value, uint8_t kind) {
  const Entry entry{static_cast<uint32_t>(arenaSize_), static_cast<uint32_t>(name.size()),
                    static_cast<uint32_t>(value.size()), kind};
  const std::size_t n = entry.lineLength();
  if (arenaCapacity_ - arenaSize_ < n) reserveArena(n);
  // Entries hold 32-bit offsets: a list is bounded far below that by the head limits.
  entries_.push_back(entry);
  char* out = arena_.get() + arenaSize_;
  if (!name.empty()) std::memcpy(out, name.data(), name.size());
  out += name.size();
  *out++ = ':';
  *out++ = ' ';
  if (!value.empty()) std::memcpy(out, value.data(), value.size());
  out += value.size();
  *out++ = '\r';
  *out = '\n';
  arenaSize_ += n;
  lineBytes_ += n;
  namesSeen_ |= nameBit(name);
}

}  // namespace gw::proxy
