#pragma once
// Small pieces both TLS sides use with OpenSSL (net/tls_context.cpp, net/tls_client.cpp); not for
// other floors.

#include <string>

namespace gw::net {

// OpenSSL's reason for the last failure ("no start line"), and its error queue emptied.
std::string opensslReason();

// A pass-phrase callback that never prompts on the terminal: an encrypted key is refused.
int noPassPhrase(char* buffer, int size, int writing, void* data);

}  // namespace gw::net
