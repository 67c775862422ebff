#include "gateway/redis/script.h"

#include <openssl/evp.h>

#include <stdexcept>

namespace gw::redis {

namespace {
std::string sha1Hex(std::string_view text) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (EVP_Digest(text.data(), text.size(), digest, &length, EVP_sha1(), nullptr) != 1)
    throw std::runtime_error("SHA-1 is not available from OpenSSL");
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(length * 2);
  for (unsigned int i = 0; i < length; ++i) {
    hex += kHex[digest[i] >> 4];
    hex += kHex[digest[i] & 15];
  }
  return hex;
}
}  // namespace

Script::Script(std::string_view name, std::string source)
    : name_(name), source_(std::move(source)), sha1_(sha1Hex(source_)) {}

}  // namespace gw::redis
