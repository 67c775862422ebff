#pragma once
// The boundary between libevent callbacks and our code. An exception escaping a callback would
// unwind through C frames and end the process; on the data plane an exception is a programmer
// error by definition (operational errors are values), so it is caught here, handed to
// `recover` to be logged loudly and answered, and the worker lives on.

#include <exception>

namespace gw::core {

template <typename Body, typename Recover>
void guarded(Body&& body, Recover&& recover) noexcept {
  try {
    body();
  } catch (const std::exception& e) {
    recover(e.what());
  } catch (...) {
    recover("unknown exception");
  }
}

}  // namespace gw::core
