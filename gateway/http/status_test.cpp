#include "gateway/http/status.h"

#include <doctest.h>

using gw::http::reasonPhrase;

TEST_CASE("status: every RFC 9110 status a cache may replay has its reason phrase") {
  CHECK(reasonPhrase(200) == "OK");
  CHECK(reasonPhrase(203) == "Non-Authoritative Information");
  CHECK(reasonPhrase(206) == "Partial Content");
  CHECK(reasonPhrase(308) == "Permanent Redirect");
  CHECK(reasonPhrase(410) == "Gone");
  CHECK(reasonPhrase(416) == "Range Not Satisfiable");
  CHECK(reasonPhrase(504) == "Gateway Timeout");
  for (int status : {200, 201, 202, 203, 204, 205, 206, 300, 301, 302, 303, 304, 307, 308, 400,
                     404, 405, 410, 414, 416, 429, 431, 500, 501, 502, 503, 504, 505}) {
    CAPTURE(status);
    CHECK_FALSE(reasonPhrase(status).empty());
  }
}

TEST_CASE("status: an unregistered status gets an empty reason, which HTTP/1.1 allows") {
  CHECK(reasonPhrase(299).empty());
  CHECK(reasonPhrase(599).empty());
}
