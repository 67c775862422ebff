#pragma once
// Range requests answered from a stored complete response (RFC 9110 §14). One satisfiable range
// gives 206 with Content-Range. Several ranges are answered with the whole body (200), which
// §14.2 allows ("a server MAY ignore the Range header field"): multipart/byteranges would cost a
// copy of the body for a form clients rarely ask a cache for.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "plugins/cache/freshness.h"

namespace gw::plugins::cache {

struct RangeAnswer {
  enum class Kind : uint8_t { Full, Partial, Unsatisfiable };
  Kind kind = Kind::Full;
  uint64_t first = 0;        // Partial: offset of the slice in the body
  uint64_t length = 0;       // Partial: its length
  std::string contentRange;  // "bytes 0-99/1000" (Partial) or "bytes */1000" (Unsatisfiable)

  int status() const { return kind == Kind::Full ? 200 : kind == Kind::Partial ? 206 : 416; }
};

// `range` / `ifRange`: the request's fields, if present. Full for: no Range, a method other than
// GET (§14.2), a stored status other than 200, a unit other than bytes, a syntax error, several
// ranges, or an If-Range that does not match (a strong ETag equal to the stored one, or a date
// equal to a strong Last-Modified: one at least a second before the stored Date, §8.8.2.2).
RangeAnswer answerRange(std::string_view method, std::optional<std::string_view> range,
                        std::optional<std::string_view> ifRange, uint64_t bodyLength,
                        const StoredMeta& meta);

}  // namespace gw::plugins::cache
