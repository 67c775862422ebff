#include "plugins/cache/conditional.h"

#include <algorithm>
#include <string>

#include "gateway/http/headers.h"
#include "plugins/cache/http_date.h"

namespace gw::plugins::cache {
namespace {

// entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE; returns the opaque-tag (quotes included).
bool splitEtag(std::string_view tag, bool& weak, std::string_view& opaque) {
  tag = trimOws(tag);
  weak = tag.starts_with("W/");
  if (weak) tag.remove_prefix(2);
  if (tag.size() < 2 || tag.front() != '"' || tag.back() != '"') return false;
  if (tag.substr(1, tag.size() - 2).find('"') != std::string_view::npos) return false;
  opaque = tag;
  return true;
}

}  // namespace

bool weakEtagMatch(std::string_view a, std::string_view b) {
  bool weakA, weakB;
  std::string_view opaqueA, opaqueB;
  return splitEtag(a, weakA, opaqueA) && splitEtag(b, weakB, opaqueB) && opaqueA == opaqueB;
}

bool strongEtagMatch(std::string_view a, std::string_view b) {
  bool weakA, weakB;
  std::string_view opaqueA, opaqueB;
  return splitEtag(a, weakA, opaqueA) && splitEtag(b, weakB, opaqueB) && !weakA && !weakB &&
         opaqueA == opaqueB;
}

bool ifNoneMatchMatches(std::string_view ifNoneMatch, std::string_view storedEtag) {
  if (trimOws(ifNoneMatch) == "*") return true;
  if (storedEtag.empty()) return false;
  bool match = false;
  forEachListElement(ifNoneMatch, [&](std::string_view tag) {
    match = weakEtagMatch(tag, storedEtag);
    return !match;
  });
  return match;
}

bool answersNotModified(std::string_view method, const FieldsView& request,
                        const StoredMeta& meta) {
  if ((method != "GET" && method != "HEAD") || meta.status != 200) return false;
  std::string inm;
  if (combinedValue(request, "If-None-Match", inm)) return ifNoneMatchMatches(inm, meta.etag);
  auto ims = firstValue(request, "If-Modified-Since");
  if (!ims) return false;
  // RFC 9110 §13.1.3: an invalid date is ignored.
  auto since = parseHttpDate(*ims, meta.responseTime);
  if (!since) return false;
  const int64_t modified = meta.lastModified.value_or(meta.date.value_or(meta.responseTime));
  return modified <= *since;
}

void notModifiedFields(std::span<const Field> stored, std::vector<Field>& out) {
  const bool hasEtag = std::any_of(stored.begin(), stored.end(),
                                   [](const Field& f) { return http::iequals(f.name, "ETag"); });
  for (const Field& f : stored) {
    const std::string_view n = f.name;
    if (http::iequals(n, "Cache-Control") || http::iequals(n, "Content-Location") ||
        http::iequals(n, "Date") || http::iequals(n, "ETag") || http::iequals(n, "Expires") ||
        http::iequals(n, "Vary") || (!hasEtag && http::iequals(n, "Last-Modified"))) {
      out.push_back(f);
    }
  }
}

bool isUnstorableField(std::string_view name, std::string_view connection) {
  return http::isHopByHop(name) || http::iequals(name, "Age") ||
         (!connection.empty() && http::hasToken(connection, name));
}

void mergeNotModified(std::vector<Field>& stored, const FieldsView& notModified) {
  std::string connection;
  combinedValue(notModified, "Connection", connection);
  auto updates = [&](std::string_view name) {
    return !http::iequals(name, "Content-Length") && !isUnstorableField(name, connection);
  };
  auto in304 = [&](std::string_view name) {
    for (std::size_t i = 0; i < notModified.size(); ++i) {
      if (http::iequals(notModified.at(i).first, name)) return true;
    }
    return false;
  };
  std::erase_if(stored, [&](const Field& f) { return updates(f.name) && in304(f.name); });
  for (std::size_t i = 0; i < notModified.size(); ++i) {
    auto [name, value] = notModified.at(i);
    if (updates(name)) stored.push_back({std::string(name), std::string(value)});
  }
}

}  // namespace gw::plugins::cache
