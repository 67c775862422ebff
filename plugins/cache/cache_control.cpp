#include "plugins/cache/cache_control.h"

#include <algorithm>
#include <utility>

#include "gateway/http/headers.h"
#include "plugins/cache/fields.h"

namespace gw::plugins::cache {
namespace {

using http::iequals;

// One cache-directive = token [ "=" ( token / quoted-string ) ] (§5.2). `value` is unescaped
// when quoted; a malformed value is passed raw so the directive's own check rejects it.
template <typename Fn>
void forEachDirective(std::string_view fieldValue, Fn&& fn) {
  std::string unescaped;
  forEachListElement(fieldValue, [&](std::string_view element) {
    std::size_t eq = element.find('=');
    std::string_view name = trimOws(element.substr(0, eq));
    if (!http::isToken(name)) return true;
    if (eq == std::string_view::npos) {
      fn(name, std::optional<std::string_view>());
      return true;
    }
    std::string_view value = trimOws(element.substr(eq + 1));
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
      unescaped.clear();
      for (std::size_t i = 1; i + 1 < value.size(); ++i) {
        if (value[i] == '\\' && i + 2 < value.size()) ++i;
        unescaped += value[i];
      }
      value = unescaped;
    }
    fn(name, std::optional<std::string_view>(value));
    return true;
  });
}

void setDelta(std::optional<int64_t>& slot, std::optional<std::string_view> value) {
  if (slot || !value) return;  // first valid occurrence wins; no value: ignored
  slot = parseDeltaSeconds(*value);
}

// max-age / s-maxage: the first occurrence decides, valid or not.
void setFreshnessDelta(std::optional<int64_t>& slot, bool& invalid,
                       std::optional<std::string_view> value) {
  if (slot || invalid) return;
  slot = value ? parseDeltaSeconds(*value) : std::nullopt;
  invalid = !slot;
}

void addFieldNames(std::string_view list, std::vector<std::string>& names) {
  forEachListElement(list, [&](std::string_view name) {
    std::string lower;
    http::asciiLower(name, lower);
    names.push_back(std::move(lower));
    return true;
  });
}

// ---- RFC 8941 Dictionary, as far as a targeted cache field needs it ----

struct SfValue {
  enum class Kind { Integer, Boolean, String, Other } kind = Kind::Other;
  int64_t integer = 0;
  bool boolean = false;
  std::string string;
};

class SfParser {
 public:
  explicit SfParser(std::string_view s) : s_(s) {}

  // Returns false on any syntax error. Members land in `out` with later duplicates replacing
  // earlier ones (RFC 8941 §4.2.2).
  bool dictionary(std::vector<std::pair<std::string, SfValue>>& out) {
    skip(' ');
    if (atEnd()) return false;  // an empty field is ignored (RFC 9213 §2.1)
    while (true) {
      std::string keyName;
      if (!key(keyName)) return false;
      SfValue value;
      if (accept('=')) {
        if (accept('(')) {
          if (!innerList()) return false;
        } else if (!bareItem(value)) {
          return false;
        }
      } else {
        value.kind = SfValue::Kind::Boolean;
        value.boolean = true;
      }
      if (!parameters()) return false;
      bool replaced = false;
      for (auto& [k, v] : out) {
        if (k == keyName) {
          v = std::move(value);
          replaced = true;
        }
      }
      if (!replaced) out.emplace_back(std::move(keyName), std::move(value));
      skipOws();
      if (atEnd()) return true;
      if (!accept(',')) return false;
      skipOws();
      if (atEnd()) return false;  // trailing comma
    }
  }

 private:
  bool atEnd() const { return pos_ >= s_.size(); }
  char peek() const { return atEnd() ? '\0' : s_[pos_]; }
  bool accept(char c) {
    if (peek() != c || atEnd()) return false;
    ++pos_;
    return true;
  }
  void skip(char c) {
    while (!atEnd() && s_[pos_] == c) ++pos_;
  }
  void skipOws() {
    while (!atEnd() && (s_[pos_] == ' ' || s_[pos_] == '\t')) ++pos_;
  }
  static bool lcalpha(char c) { return c >= 'a' && c <= 'z'; }
  static bool digit(char c) { return c >= '0' && c <= '9'; }
  static bool alpha(char c) { return lcalpha(c) || (c >= 'A' && c <= 'Z'); }

  bool key(std::string& out) {
    if (atEnd() || !(lcalpha(peek()) || peek() == '*')) return false;
    while (!atEnd()) {
      char c = peek();
      if (!(lcalpha(c) || digit(c) || c == '_' || c == '-' || c == '.' || c == '*')) break;
      out += c;
      ++pos_;
    }
    return true;
  }

  bool parameters() {
    while (accept(';')) {
      skip(' ');
      std::string ignored;
      if (!key(ignored)) return false;
      SfValue value;
      if (accept('=') && !bareItem(value)) return false;
    }
    return true;
  }

  bool innerList() {
    while (true) {
      skip(' ');
      if (accept(')')) return true;
      SfValue ignored;
      if (!bareItem(ignored) || !parameters()) return false;
      if (peek() != ' ' && peek() != ')') return false;
    }
  }

  bool bareItem(SfValue& out) {
    char c = peek();
    if (c == '-' || digit(c)) return number(out);
    if (c == '"') return string(out);
    if (c == '?') {
      ++pos_;
      char b = peek();
      if (b != '0' && b != '1') return false;
      ++pos_;
      out.kind = SfValue::Kind::Boolean;
      out.boolean = b == '1';
      return true;
    }
    if (c == ':') {
      ++pos_;
      while (!atEnd() && peek() != ':') {
        char b = peek();
        if (!(alpha(b) || digit(b) || b == '+' || b == '/' || b == '=')) return false;
        ++pos_;
      }
      return accept(':');
    }
    if (alpha(c) || c == '*') {
      ++pos_;
      while (!atEnd() && (http::isToken(s_.substr(pos_, 1)) || peek() == ':' || peek() == '/')) {
        ++pos_;
      }
      return true;
    }
    return false;
  }

  bool number(SfValue& out) {
    bool negative = accept('-');
    std::size_t intDigits = 0, fracDigits = 0;
    bool decimal = false;
    int64_t value = 0;
    while (!atEnd() && (digit(peek()) || (peek() == '.' && !decimal))) {
      if (peek() == '.') {
        if (intDigits == 0 || intDigits > 12) return false;
        decimal = true;
      } else if (decimal) {
        ++fracDigits;
      } else {
        value = value * 10 + (peek() - '0');
        if (++intDigits > 15) return false;
      }
      ++pos_;
    }
    if (intDigits == 0) return false;
    if (decimal) return fracDigits >= 1 && fracDigits <= 3;  // a Decimal: no use here
    out.kind = SfValue::Kind::Integer;
    out.integer = negative ? -value : value;
    return true;
  }

  bool string(SfValue& out) {
    ++pos_;  // opening quote
    while (!atEnd()) {
      char c = s_[pos_++];
      if (c == '"') {
        out.kind = SfValue::Kind::String;
        return true;
      }
      if (c == '\\') {
        if (atEnd() || (peek() != '"' && peek() != '\\')) return false;
        c = s_[pos_++];
      } else if (c < 0x20 || c > 0x7e) {
        return false;
      }
      out.string += c;
    }
    return false;
  }

  std::string_view s_;
  std::size_t pos_ = 0;
};

}  // namespace

std::optional<int64_t> parseDeltaSeconds(std::string_view text) {
  if (text.size() >= 2 && text.front() == '"' && text.back() == '"') {
    text = text.substr(1, text.size() - 2);
  }
  if (text.empty()) return std::nullopt;
  int64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + (c - '0');
    if (value > kDeltaMax) value = kDeltaMax;  // keeps scanning: the rest must still be digits
  }
  return value;
}

void parseResponseCacheControl(std::string_view fieldValue, ResponseDirectives& into) {
  forEachDirective(fieldValue, [&](std::string_view name, std::optional<std::string_view> value) {
    if (iequals(name, "max-age")) {
      setFreshnessDelta(into.maxAge, into.maxAgeInvalid, value);
    } else if (iequals(name, "s-maxage")) {
      setFreshnessDelta(into.sMaxage, into.sMaxageInvalid, value);
    } else if (iequals(name, "no-store")) {
      into.noStore = true;
    } else if (iequals(name, "no-cache")) {
      into.noCache = true;
      if (value) addFieldNames(*value, into.noCacheFields);
    } else if (iequals(name, "private")) {
      if (value) {
        addFieldNames(*value, into.privateFields);
      } else {
        into.privateAll = true;
      }
    } else if (iequals(name, "must-revalidate")) {
      into.mustRevalidate = true;
    } else if (iequals(name, "proxy-revalidate")) {
      into.proxyRevalidate = true;
    } else if (iequals(name, "public")) {
      into.isPublic = true;
    } else if (iequals(name, "no-transform")) {
      into.noTransform = true;
    } else if (iequals(name, "must-understand")) {
      into.mustUnderstand = true;
    } else if (iequals(name, "immutable")) {
      into.immutable = true;
    } else if (iequals(name, "stale-while-revalidate")) {
      setDelta(into.staleWhileRevalidate, value);
    } else if (iequals(name, "stale-if-error")) {
      setDelta(into.staleIfError, value);
    }
  });
}

void parseRequestCacheControl(std::string_view fieldValue, RequestDirectives& into) {
  forEachDirective(fieldValue, [&](std::string_view name, std::optional<std::string_view> value) {
    if (iequals(name, "max-age")) {
      setDelta(into.maxAge, value);
    } else if (iequals(name, "max-stale")) {
      // §5.2.1.2: no value means any staleness. An invalid value is ignored rather than read as
      // "any", so a malformed directive never widens what the client accepts.
      if (into.maxStale) return;
      if (!value) {
        into.maxStale = true;
      } else if (auto seconds = parseDeltaSeconds(*value)) {
        into.maxStale = true;
        into.maxStaleSeconds = seconds;
      }
    } else if (iequals(name, "min-fresh")) {
      setDelta(into.minFresh, value);
    } else if (iequals(name, "no-cache")) {
      into.noCache = true;
    } else if (iequals(name, "no-store")) {
      into.noStore = true;
    } else if (iequals(name, "no-transform")) {
      into.noTransform = true;
    } else if (iequals(name, "only-if-cached")) {
      into.onlyIfCached = true;
    } else if (iequals(name, "stale-if-error")) {
      setDelta(into.staleIfError, value);
    }
  });
}

void applyPragma(std::string_view pragmaValue, RequestDirectives& into) {
  forEachListElement(pragmaValue, [&](std::string_view element) {
    if (iequals(element, "no-cache")) into.noCache = true;
    return true;
  });
}

bool parseTargetedCacheControl(std::string_view fieldValue, ResponseDirectives& into) {
  std::vector<std::pair<std::string, SfValue>> members;
  if (!SfParser(trimOws(fieldValue)).dictionary(members)) return false;
  ResponseDirectives out;
  for (const auto& [key, value] : members) {
    using Kind = SfValue::Kind;
    const bool flag = value.kind == Kind::Boolean && value.boolean;
    std::optional<int64_t> delta;
    if (value.kind == Kind::Integer && value.integer >= 0) {
      delta = std::min(value.integer, kDeltaMax);
    }
    if (key == "max-age") {
      out.maxAge = delta;
      out.maxAgeInvalid = !delta;
    } else if (key == "s-maxage") {
      out.sMaxage = delta;
      out.sMaxageInvalid = !delta;
    } else if (key == "stale-while-revalidate") {
      out.staleWhileRevalidate = delta;
    } else if (key == "stale-if-error") {
      out.staleIfError = delta;
    } else if (key == "no-cache" || key == "private") {
      const bool noCache = key == "no-cache";
      if (flag) {
        (noCache ? out.noCache : out.privateAll) = true;
      } else if (value.kind == Kind::String) {
        if (noCache) out.noCache = true;
        addFieldNames(value.string, noCache ? out.noCacheFields : out.privateFields);
      }
    } else if (key == "no-store") {
      out.noStore = flag;
    } else if (key == "must-revalidate") {
      out.mustRevalidate = flag;
    } else if (key == "proxy-revalidate") {
      out.proxyRevalidate = flag;
    } else if (key == "public") {
      out.isPublic = flag;
    } else if (key == "no-transform") {
      out.noTransform = flag;
    } else if (key == "must-understand") {
      out.mustUnderstand = flag;
    } else if (key == "immutable") {
      out.immutable = flag;
    }
  }
  into = std::move(out);
  return true;
}

}  // namespace gw::plugins::cache
