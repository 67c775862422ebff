#include "gateway/redis/client.h"

namespace gw::redis {

std::string_view stateName(State state) {
  switch (state) {
    case State::Connecting:
      return "connecting";
    case State::Closed:
      return "closed";
    case State::HalfOpen:
      return "half_open";
    case State::Open:
      return "open";
  }
  return "unknown";
}

std::string_view failureName(Failure failure) {
  switch (failure) {
    case Failure::None:
      return "none";
    case Failure::Down:
      return "down";
    case Failure::Overloaded:
      return "overloaded";
    case Failure::Timeout:
      return "timeout";
    case Failure::Disconnected:
      return "disconnected";
    case Failure::ServerError:
      return "server_error";
    case Failure::BadReply:
      return "bad_reply";
  }
  return "unknown";
}

}  // namespace gw::redis
