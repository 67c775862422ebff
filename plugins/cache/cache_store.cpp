#include "plugins/cache/cache_store.h"

#include <algorithm>
#include <utility>

#include "gateway/http/headers.h"
#include "plugins/cache/conditional.h"

namespace gw::plugins::cache {
namespace {

// Bookkeeping not visible in the strings: the node, map slots, the struct itself.
constexpr std::size_t kEntryOverhead = 256;

using Dropped = std::vector<std::shared_ptr<const StoredResponse>>;

}  // namespace

std::size_t StoredResponse::size() const {
  std::size_t bytes = kEntryOverhead + (body ? body->size() : 0) + meta.etag.size();
  for (const Field& f : fields) bytes += f.name.size() + f.value.size() + 4;  // ": " CRLF
  for (const std::string& name : varyNames) bytes += name.size();
  return bytes;
}

std::shared_ptr<const StoredResponse> makeStoredResponse(int status, const FieldsView& fields,
                                                         std::shared_ptr<const std::string> body,
                                                         StoredMeta meta) {
  auto stored = std::make_shared<StoredResponse>();
  stored->status = status;
  std::string connection;
  combinedValue(fields, "Connection", connection);
  const std::vector<std::string>& privateFields = meta.cc.privateFields;
  for (std::size_t i = 0; i < fields.size(); ++i) {
    auto [name, value] = fields.at(i);
    if (isUnstorableField(name, connection)) continue;
    const bool isPrivate =
        std::any_of(privateFields.begin(), privateFields.end(),
                    [name = name](const std::string& p) { return http::iequals(p, name); });
    if (!isPrivate) stored->fields.push_back({std::string(name), std::string(value)});
  }
  stored->body = body ? std::move(body) : std::make_shared<const std::string>();
  stored->varyNames = varyNames(fields);
  stored->meta = std::move(meta);
  return stored;
}

std::shared_ptr<const StoredResponse> CacheStore::lookup(std::string_view primary,
                                                         const FieldsView& request,
                                                         bool* otherVariants) {
  thread_local std::string wanted;
  std::lock_guard lock(mu_);
  auto it = primaries_.find(primary);
  if (otherVariants) *otherVariants = it != primaries_.end();
  if (it == primaries_.end()) return nullptr;
  // Variants of one primary almost always share their Vary names, so the request's key is
  // built once per distinct name list.
  const std::vector<std::string>* builtFor = nullptr;
  for (Lru::iterator node : it->second.variants) {
    const std::vector<std::string>& names = node->response->varyNames;
    if (builtFor == nullptr || *builtFor != names) {
      buildVariantKey(names, request, wanted);
      builtFor = &names;
    }
    if (node->variantKey == wanted) {
      lru_.splice(lru_.begin(), lru_, node);
      return node->response;
    }
  }
  return nullptr;
}

bool CacheStore::insert(const RequestKey& key, const FieldsView& request,
                        std::shared_ptr<const StoredResponse> response) {
  if (!response) return false;
  Node node;
  buildVariantKey(response->varyNames, request, node.variantKey);
  node.bytes = response->size() + 2 * key.primary.size() + node.variantKey.size() +
               key.url.size() + key.host.size() + key.path.size();
  if (!admits(node.bytes)) return false;
  node.primary = key.primary;
  node.response = std::move(response);

  Dropped dropped;  // released after the lock: freeing big bodies needs no lock
  std::lock_guard lock(mu_);
  auto [it, inserted] = primaries_.try_emplace(key.primary);
  if (inserted) {
    it->second.url = key.url;
    it->second.host = key.host;
    it->second.path = key.path;
    byUrl_[key.url].push_back(key.primary);
  } else {
    auto& variants = it->second.variants;
    for (std::size_t i = variants.size(); i-- > 0;) {
      const Node& old = *variants[i];
      if (old.variantKey == node.variantKey ||
          old.response->varyNames != node.response->varyNames) {
        dropped.push_back(old.response);
        eraseVariant(it, i);
      }
    }
  }
  stats_.bytes += node.bytes;
  ++stats_.entries;
  ++stats_.inserts;
  lru_.push_front(std::move(node));
  it->second.variants.push_back(lru_.begin());
  while (stats_.bytes > options_.maxBytes && lru_.size() > 1) {
    const Node& victim = lru_.back();
    auto owner = primaries_.find(victim.primary);
    auto& variants = owner->second.variants;
    auto pos = std::find(variants.begin(), variants.end(), std::prev(lru_.end()));
    dropped.push_back(victim.response);
    eraseVariant(owner, static_cast<std::size_t>(pos - variants.begin()));
    if (variants.empty()) erasePrimary(owner);
    ++stats_.evictions;
  }
  return true;
}

void CacheStore::eraseVariant(PrimaryMap::iterator primary, std::size_t index) {
  auto& variants = primary->second.variants;
  Lru::iterator node = variants[index];
  stats_.bytes -= node->bytes;
  --stats_.entries;
  lru_.erase(node);
  variants.erase(variants.begin() + static_cast<std::ptrdiff_t>(index));
}

std::size_t CacheStore::erasePrimary(PrimaryMap::iterator primary) {
  std::size_t count = primary->second.variants.size();
  while (!primary->second.variants.empty()) {
    eraseVariant(primary, primary->second.variants.size() - 1);
  }
  auto url = byUrl_.find(primary->second.url);
  if (url != byUrl_.end()) {
    std::erase(url->second, primary->first);
    if (url->second.empty()) byUrl_.erase(url);
  }
  primaries_.erase(primary);
  return count;
}

std::size_t CacheStore::invalidate(std::string_view primary) {
  std::lock_guard lock(mu_);
  auto it = primaries_.find(primary);
  return it == primaries_.end() ? 0 : erasePrimary(it);
}

std::size_t CacheStore::invalidateUrl(std::string_view url) {
  std::lock_guard lock(mu_);
  auto it = byUrl_.find(url);
  if (it == byUrl_.end()) return 0;
  const std::vector<std::string> keys = it->second;  // erasePrimary edits the index
  std::size_t count = 0;
  for (const std::string& key : keys) {
    auto primary = primaries_.find(key);
    if (primary != primaries_.end()) count += erasePrimary(primary);
  }
  return count;
}

std::size_t CacheStore::purge(std::string_view host, std::string_view path, bool prefix) {
  std::lock_guard lock(mu_);
  std::size_t count = 0;
  for (auto it = primaries_.begin(); it != primaries_.end();) {
    auto next = std::next(it);
    const std::string& stored = it->second.path;
    const bool pathMatches = prefix ? stored.starts_with(path) : stored == path;
    if ((host.empty() || it->second.host == host) && pathMatches) {
      count += erasePrimary(it);
    }
    it = next;
  }
  return count;
}

StoreStats CacheStore::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

FetchGate::Ticket FetchGate::beginFetch(std::string_view key, OnDone onDone) {
  std::lock_guard lock(mu_);
  auto it = fetches_.find(key);
  if (it == fetches_.end()) {
    fetches_.emplace(std::string(key), std::vector<Waiter>());
    return {Role::Leader, 0};
  }
  if (it->second.size() >= maxWaiters_) return {Role::Alone, 0};
  const uint64_t id = nextId_++;
  it->second.push_back({id, std::move(onDone)});
  return {Role::Waiter, id};
}

bool FetchGate::cancel(std::string_view key, uint64_t id) {
  OnDone dropped;  // destroyed after the lock: it may own request state
  std::lock_guard lock(mu_);
  auto it = fetches_.find(key);
  if (it == fetches_.end()) return false;
  auto& waiters = it->second;
  auto pos = std::find_if(waiters.begin(), waiters.end(),
                          [&](const Waiter& w) { return w.id == id; });
  if (pos == waiters.end()) return false;
  dropped = std::move(pos->onDone);
  waiters.erase(pos);
  return true;
}

void FetchGate::finishFetch(std::string_view key, End end) {
  std::vector<Waiter> waiters;
  {
    std::lock_guard lock(mu_);
    auto it = fetches_.find(key);
    if (it == fetches_.end()) return;
    waiters = std::move(it->second);
    fetches_.erase(it);
  }
  for (Waiter& w : waiters) {
    if (w.onDone) w.onDone(end);
  }
}

std::size_t FetchGate::inFlight() const {
  std::lock_guard lock(mu_);
  return fetches_.size();
}

}  // namespace gw::plugins::cache
