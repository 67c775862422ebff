#include "gateway/net/tls_openssl.h"

#include <openssl/err.h>

namespace gw::net {

std::string opensslReason() {
  const unsigned long code = ERR_peek_last_error();
  const char* reason = code != 0 ? ERR_reason_error_string(code) : nullptr;
  ERR_clear_error();
  return reason ? reason : "unknown OpenSSL error";
}

int noPassPhrase(char*, int, int, void*) { return 0; }

}  // namespace gw::net
