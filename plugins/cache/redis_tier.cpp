#include "plugins/cache/redis_tier.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <array>
#include <cstring>

namespace gw::plugins::cache {
namespace {

constexpr std::string_view kResponseHead = "gwc1 R\n";
constexpr std::string_view kStubHead = "gwc1 V\n";
// The head the purge script reads must fit in its GETRANGE: host and path lines included.
constexpr std::size_t kMaxHeadBytes = 8192;

// 32 hex digits of HMAC-SHA-256(digestKey, domain || bytes).
void appendDigest(const redis::KeySpace& keys, std::string_view domain, std::string_view bytes,
                  std::string& out) {
  std::string input;
  input.reserve(domain.size() + bytes.size());
  input.append(domain).append(bytes);
  std::array<unsigned char, EVP_MAX_MD_SIZE> mac{};
  unsigned int macLength = 0;
  HMAC(EVP_sha256(), keys.digestKey.data(), static_cast<int>(keys.digestKey.size()),
       reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac.data(), &macLength);
  constexpr char kHex[] = "0123456789abcdef";
  for (std::size_t i = 0; i < 16; ++i) {
    out.push_back(kHex[mac[i] >> 4]);
    out.push_back(kHex[mac[i] & 0xf]);
  }
}

void putInt(std::string& out, uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}
void putString(std::string& out, std::string_view s) {
  putInt(out, s.size(), 4);
  out.append(s);
}

// Reads what put* wrote; any read past the end fails the whole decode.
class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  bool ok() const { return ok_; }
  bool atEnd() const { return in_.empty(); }
  uint64_t integer(int bytes) {
    if (!take(static_cast<std::size_t>(bytes))) return 0;
    uint64_t value = 0;
    for (int i = 0; i < bytes; ++i) {
      value |= static_cast<uint64_t>(static_cast<unsigned char>(taken_[i])) << (8 * i);
    }
    return value;
  }
  std::string_view string() {
    const auto length = integer(4);
    return take(length) ? taken_ : std::string_view();
  }
  // The rest up to the next '\n', which is consumed.
  std::string_view line() {
    const auto end = in_.find('\n');
    if (end == std::string_view::npos) {
      ok_ = false;
      return {};
    }
    const auto text = in_.substr(0, end);
    in_.remove_prefix(end + 1);
    return text;
  }

 private:
  bool take(uint64_t n) {
    if (!ok_ || n > in_.size()) {
      ok_ = false;
      return false;
    }
    taken_ = in_.substr(0, n);
    in_.remove_prefix(n);
    return true;
  }
  std::string_view in_;
  std::string_view taken_;
  bool ok_ = true;
};

bool putHead(std::string_view kind, std::string_view host, std::string_view path,
             std::string& out) {
  if (host.find('\n') != std::string_view::npos || path.find('\n') != std::string_view::npos ||
      kind.size() + host.size() + path.size() + 2 > kMaxHeadBytes) {
    return false;
  }
  out.clear();
  out.append(kind).append(host).append("\n").append(path).append("\n");
  return true;
}

std::shared_ptr<const StoredResponse> decodeResponse(Reader& in, const Policy& policy) {
  const auto status = static_cast<int>(in.integer(2));
  const auto requestTime = static_cast<int64_t>(in.integer(8));
  const auto responseTime = static_cast<int64_t>(in.integer(8));
  const auto age = static_cast<int64_t>(in.integer(8));
  const auto fieldCount = in.integer(4);
  std::vector<Field> fields;
  for (uint64_t i = 0; i < fieldCount && in.ok(); ++i) {
    const auto name = in.string();
    const auto value = in.string();
    fields.push_back({std::string(name), std::string(value)});
  }
  auto body = std::make_shared<const std::string>(in.string());
  if (!in.ok() || !in.atEnd() || status < 100 || status > 999 || age < 0) return nullptr;
  // The store drops Age (it is recomputed when served); the received one counts in the
  // entry's age, so it is handed back to the analysis that the writer's copy went through.
  if (age > 0) fields.push_back({"Age", std::to_string(age)});
  const FieldSpan view(fields);
  StoredMeta meta = analyseResponse(status, view, requestTime, responseTime, policy);
  return makeStoredResponse(status, view, std::move(body), std::move(meta));
}

}  // namespace

std::string redisEntryKey(const redis::KeySpace& keys, std::string_view primary) {
  std::string key = keys.prefix;
  key.append("c:{");
  appendDigest(keys, std::string_view("primary\0", 8), primary, key);
  key.push_back('}');
  return key;
}

std::string redisVariantKey(const redis::KeySpace& keys, std::string_view entryKey,
                            uint64_t generation, std::string_view variantKey) {
  std::string input;
  putInt(input, generation, 8);
  input.append(variantKey);
  std::string key(entryKey);
  key.push_back(':');
  appendDigest(keys, std::string_view("variant\0", 8), input, key);
  return key;
}

bool encodeRedisEntry(const StoredResponse& response, std::string_view host, std::string_view path,
                      std::string& out) {
  if (!putHead(kResponseHead, host, path, out)) return false;
  const StoredMeta& meta = response.meta;
  putInt(out, static_cast<uint64_t>(response.status), 2);
  putInt(out, static_cast<uint64_t>(meta.requestTime), 8);
  putInt(out, static_cast<uint64_t>(meta.responseTime), 8);
  putInt(out, static_cast<uint64_t>(meta.ageValue), 8);
  putInt(out, response.fields.size(), 4);
  for (const Field& field : response.fields) {
    putString(out, field.name);
    putString(out, field.value);
  }
  putString(out, *response.body);
  return true;
}

bool encodeRedisVaryStub(std::span<const std::string> varyNames, uint64_t generation,
                         std::string_view host, std::string_view path, std::string& out) {
  if (!putHead(kStubHead, host, path, out)) return false;
  putInt(out, generation, 8);
  putInt(out, varyNames.size(), 4);
  for (const std::string& name : varyNames) putString(out, name);
  return true;
}

std::optional<RedisValue> decodeRedisValue(std::string_view value, std::string_view host,
                                           std::string_view path, const Policy& policy) {
  const bool isResponse = value.starts_with(kResponseHead);
  if (!isResponse && !value.starts_with(kStubHead)) return std::nullopt;
  Reader in(value.substr(kResponseHead.size()));
  if (in.line() != host || in.line() != path || !in.ok()) return std::nullopt;
  if (isResponse) {
    auto response = decodeResponse(in, policy);
    if (!response) return std::nullopt;
    return RedisValue(std::move(response));
  }
  RedisVaryStub stub;
  stub.generation = in.integer(8);
  const auto count = in.integer(4);
  for (uint64_t i = 0; i < count && in.ok(); ++i) stub.varyNames.emplace_back(in.string());
  if (!in.ok() || !in.atEnd() || stub.varyNames.empty()) return std::nullopt;
  return RedisValue(std::move(stub));
}

int64_t redisLifetimeMs(const StoredMeta& meta, const Policy& policy, int64_t nowSec) {
  const int64_t grace = std::max({meta.cc.staleWhileRevalidate.value_or(0),
                                  meta.cc.staleIfError.value_or(0), policy.staleIfErrorDefault});
  const int64_t remaining = meta.lifetime - currentAge(meta, nowSec) + grace;
  return remaining > 0 ? remaining * 1000 : 0;
}

std::string redisScanPattern(const redis::KeySpace& keys) {
  std::string pattern;
  for (char c : keys.prefix) {
    if (c == '*' || c == '?' || c == '[' || c == ']' || c == '\\') pattern.push_back('\\');
    pattern.push_back(c);
  }
  pattern.append("c:{*");
  return pattern;
}

const std::string_view kPurgeScript = R"lua(
local purged = 0
for _, key in ipairs(KEYS) do
  local head = redis.call('GETRANGE', key, 0, 8191)
  local host, path = string.match(head, '^gwc1 [RV]\n([^\n]*)\n([^\n]*)\n')
  if host and (ARGV[1] == '' or host == ARGV[1]) and
     (path == ARGV[2] or (ARGV[3] == '1' and string.sub(path, 1, #ARGV[2]) == ARGV[2])) then
    purged = purged + redis.call('UNLINK', key)
  end
end
return purged
)lua";

}  // namespace gw::plugins::cache
