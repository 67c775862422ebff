#include "plugins/cache/cache_key.h"

#include <algorithm>
#include <charconv>

#include "gateway/http/headers.h"

namespace gw::plugins::cache {
namespace {

// "<length>:<bytes>": decodable left to right, hence injective.
void appendPart(std::string& out, std::string_view part) {
  char digits[24];
  const auto end = std::to_chars(digits, digits + sizeof digits, part.size()).ptr;
  out.append(digits, end);
  out += ':';
  out += part;
}

// A field's normalised value as a key part, or "-" when the request lacks the field.
void appendFieldPart(std::string& out, const FieldsView& request, std::string_view name,
                     std::string& scratch) {
  scratch.clear();
  bool present = false;
  for (std::size_t i = 0; i < request.size(); ++i) {
    auto [n, v] = request.at(i);
    if (!http::iequals(n, name)) continue;
    present = true;
    forEachListElement(v, [&](std::string_view element) {
      if (!scratch.empty()) scratch += ", ";
      scratch += element;
      return true;
    });
  }
  if (present) {
    appendPart(out, scratch);
  } else {
    out += '-';
  }
}

// RequestKey::url: the host (see urlHost()), path and normalised query.
void buildUrl(const KeyOptions& options, std::string_view urlHost, std::string_view path,
              std::string_view query, std::string& url) {
  url.clear();
  appendPart(url, urlHost);
  appendPart(url, path);
  if (!options.sortQuery && options.ignoredParams.empty()) {
    appendPart(url, query);  // the common case: the query as sent, no copy in between
    return;
  }
  std::string normalised;
  normaliseQuery(options, query, normalised);
  appendPart(url, normalised);
}

std::string_view paramName(std::string_view param) { return param.substr(0, param.find('=')); }

// The host of an authority as RequestKey::url holds it: lower-case, no port, no trailing dot.
// An authority the engine would not have forwarded is kept whole (lower-cased).
void urlHost(std::string_view authority, std::string& out) {
  if (!http::normaliseHost(authority, out)) http::asciiLower(authority, out);
}

}  // namespace

void normaliseQuery(const KeyOptions& options, std::string_view query, std::string& out) {
  out.clear();
  if (!options.sortQuery && options.ignoredParams.empty()) {
    out = query;
    return;
  }
  std::vector<std::string_view> params;
  std::size_t start = 0;
  while (start <= query.size()) {
    std::size_t end = std::min(query.find('&', start), query.size());
    std::string_view param = query.substr(start, end - start);
    const bool ignored = std::find(options.ignoredParams.begin(), options.ignoredParams.end(),
                                   paramName(param)) != options.ignoredParams.end();
    if (!param.empty() && !ignored) params.push_back(param);
    start = end + 1;
  }
  if (options.sortQuery) {
    std::stable_sort(params.begin(), params.end(), [](std::string_view a, std::string_view b) {
      return paramName(a) < paramName(b);
    });
  }
  for (std::string_view param : params) {
    if (!out.empty()) out += '&';
    out += param;
  }
}

void buildRequestKey(const KeyOptions& options, std::string_view method, std::string_view authority,
                     std::string_view path, std::string_view query, const FieldsView& request,
                     RequestKey& out) {
  urlHost(authority, out.host);
  out.path = path;
  buildUrl(options, out.host, path, query, out.url);

  out.primary.clear();
  appendPart(out.primary, method == "HEAD" ? std::string_view("GET") : method);
  appendPart(out.primary, authority);
  out.primary += out.url;
  std::string scratch;
  for (const std::string& name : options.headers) {
    appendPart(out.primary, name);
    appendFieldPart(out.primary, request, name, scratch);
  }
}

bool sameOriginUrl(const KeyOptions& options, std::string_view uri,
                   std::string_view requestAuthority, std::string& url) {
  uri = trimOws(uri);
  uri = uri.substr(0, uri.find('#'));
  std::string_view authority = requestAuthority;
  if (!uri.starts_with("/")) {
    constexpr std::string_view kScheme = "http://";
    if (uri.size() < kScheme.size() || !http::iequals(uri.substr(0, kScheme.size()), kScheme)) {
      return false;
    }
    uri.remove_prefix(kScheme.size());
    authority = uri.substr(0, uri.find_first_of("/?"));
    uri.remove_prefix(authority.size());
    // Same origin: host case-insensitive, and the same port ("" and ":80" are the same).
    auto withPort = [](std::string_view a) {
      std::string lower;
      http::asciiLower(a, lower);
      if (lower.ends_with(":80")) lower.resize(lower.size() - 3);
      return lower;
    };
    if (withPort(authority) != withPort(requestAuthority)) return false;
    if (uri.empty()) uri = "/";
  } else if (uri.starts_with("//")) {
    return false;  // network-path reference: another authority, maybe another scheme
  }
  std::string host;
  if (!http::normaliseHost(authority, host)) return false;
  const std::size_t q = uri.find('?');
  const std::string_view path = uri.substr(0, q);
  const std::string_view query = q == std::string_view::npos ? "" : uri.substr(q + 1);
  buildUrl(options, host, path, query, url);
  return true;
}

std::vector<std::string> varyNames(const FieldsView& responseFields) {
  std::vector<std::string> names;
  bool contentCoded = false;
  for (std::size_t i = 0; i < responseFields.size(); ++i) {
    auto [n, v] = responseFields.at(i);
    if (http::iequals(n, "Content-Encoding")) {
      forEachListElement(v, [&](std::string_view coding) {
        contentCoded = contentCoded || !http::iequals(coding, "identity");
        return !contentCoded;
      });
      continue;
    }
    if (!http::iequals(n, "Vary")) continue;
    forEachListElement(v, [&](std::string_view element) {
      if (element != "*") {
        std::string lower;
        http::asciiLower(element, lower);
        names.push_back(std::move(lower));
      }
      return true;
    });
  }
  if (contentCoded) names.emplace_back("accept-encoding");
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  return names;
}

void buildVariantKey(std::span<const std::string> names, const FieldsView& request,
                     std::string& out) {
  out.clear();
  thread_local std::string scratch;
  for (const std::string& name : names) {
    appendPart(out, name);
    appendFieldPart(out, request, name, scratch);
  }
}

}  // namespace gw::plugins::cache
