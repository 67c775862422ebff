#pragma once
// A Lua script run with EVALSHA: its source and the SHA-1 Redis files it under, computed once.

#include <string>
#include <string_view>

namespace gw::redis {

class Script {
 public:
  Script(std::string_view name, std::string source);
  Script(const Script&) = delete;
  Script& operator=(const Script&) = delete;

  const std::string& name() const { return name_; }      // for logs and metrics
  const std::string& source() const { return source_; }  // sent with EVAL after NOSCRIPT
  const std::string& sha1() const { return sha1_; }      // 40 lowercase hex digits

 private:
  std::string name_;
  std::string source_;
  std::string sha1_;
};

}  // namespace gw::redis
