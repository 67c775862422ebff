#pragma once
// An owned, editable list of header fields: what plugins see and change, and what is serialised
// toward the upstream or the client afterwards. Bytes live in one arena string; entries point
// into it by offset, so adding fields never leaves dangling entries. Views returned by get()/at()
// are valid until the next add()/set().

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/plugin/plugin.h"

namespace gw::proxy {

class FieldList final : public plugin::HeaderMap {
 public:
  std::optional<std::string_view> get(std::string_view name) const override;
  void set(std::string_view name, std::string_view value) override;
  void add(std::string_view name, std::string_view value) override;
  void remove(std::string_view name) override;
  std::size_t size() const override { return entries_.size(); }
  std::pair<std::string_view, std::string_view> at(std::size_t i) const override;
  void clear();
  // Bytes of "Name: value\r\n" for every field, and writing them (at `out`, that many).
  std::size_t serializedSize() const;
  char* serializeTo(char* out) const;

 private:
  struct Entry {
    uint32_t nameOffset;
    uint32_t nameLength;
    uint32_t valueOffset;
    uint32_t valueLength;
  };
  std::string arena_;
  std::vector<Entry> entries_;
};

}  // namespace gw::proxy
