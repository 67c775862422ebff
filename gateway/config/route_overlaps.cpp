#include "gateway/config/route_overlaps.h"

#include <algorithm>
#include <cstring>

namespace gw::config {

namespace {

// The bit of a method the list does not name: no earlier restricted route takes it.
constexpr uint64_t kUnlistedMethod = uint64_t{1} << 63;

std::string segmentKey(uint32_t parent, std::string_view segment) {
  std::string key(sizeof parent, '\0');
  std::memcpy(key.data(), &parent, sizeof parent);
  key += segment;
  return key;
}

uint64_t bucketKey(uint32_t host, uint32_t node) { return (uint64_t{host} << 32) | node; }

// Does a route taking `earlier` take every method of one taking `later`?
bool methodsCover(uint64_t earlier, uint64_t later) {
  return earlier == 0 || (later != 0 && (later & ~earlier) == 0);
}

// The segments of a path after its leading '/': "/a/b/" -> a, b, "" and "/" -> "".
std::vector<std::string_view> segmentsOf(std::string_view path) {
  std::vector<std::string_view> segments;
  std::string_view rest = path.substr(1);
  for (;;) {
    const std::size_t slash = rest.find('/');
    segments.push_back(rest.substr(0, slash));
    if (slash == std::string_view::npos) return segments;
    rest.remove_prefix(slash + 1);
  }
}

}  // namespace

RouteOverlaps::RouteOverlaps(std::span<const std::string_view> methods) : methodNames_(methods) {}

uint64_t RouteOverlaps::methodMask(const std::vector<std::string>& methods) const {
  uint64_t mask = kAnyMethod;
  for (const std::string& method : methods) {
    const auto found = std::find(methodNames_.begin(), methodNames_.end(), method);
    mask |= found == methodNames_.end() ? kUnlistedMethod
                                        : uint64_t{1} << (found - methodNames_.begin());
  }
  return mask;
}

std::optional<uint32_t> RouteOverlaps::hostId(std::string_view host) const {
  const auto found = hosts_.find(std::string(host));
  if (found == hosts_.end()) return std::nullopt;
  return found->second;
}

std::vector<uint32_t> RouteOverlaps::coveringHosts(const std::optional<std::string>& host) const {
  std::vector<uint32_t> ids;
  if (const auto none = hostId("")) ids.push_back(*none);
  if (!host) return ids;
  if (const auto own = hostId(*host)) ids.push_back(*own);
  // "*.example.com" covers "a.example.com" and "a.b.example.com": one label or more before it.
  for (std::size_t dot = host->find('.', 1); dot != std::string::npos;
       dot = host->find('.', dot + 1)) {
    std::string wildcard(1, '*');
    wildcard.append(*host, dot);
    if (wildcard == *host) continue;
    if (const auto id = hostId(wildcard)) ids.push_back(*id);
  }
  return ids;
}

std::optional<uint32_t> RouteOverlaps::child(uint32_t node, std::string_view segment) const {
  const auto found = segments_.find(segmentKey(node, segment));
  if (found == segments_.end()) return std::nullopt;
  return found->second;
}

std::vector<RouteOverlaps::Candidate> RouteOverlaps::coveringPaths(std::string_view path) const {
  // A prefix covers a path when it ends in '/' or at a segment boundary (http::pathHasPrefix).
  std::vector<Candidate> candidates;
  const std::vector<std::string_view> segments = segmentsOf(path);
  uint32_t node = 0;
  for (std::size_t k = 0; k < segments.size(); ++k) {
    const bool last = k + 1 == segments.size();
    // The first k segments and a '/': "/", "/a/", "/a/b/".
    if (const auto withSlash = child(node, "")) {
      candidates.push_back({*withSlash, last && segments[k].empty()});
    }
    if (segments[k].empty()) break;  // a path ending in '/': its own node was the one above
    const auto next = child(node, segments[k]);
    if (!next) break;
    node = *next;
    // The first k+1 segments, which the path continues with a '/' or ends at.
    candidates.push_back({node, last});
  }
  return candidates;
}

const std::vector<RouteOverlaps::Entry>* RouteOverlaps::bucket(uint32_t host, uint32_t node) const {
  const auto found = buckets_.find(bucketKey(host, node));
  return found == buckets_.end() ? nullptr : &found->second;
}

std::optional<RouteOverlaps::Shadow> RouteOverlaps::shadowOf(const RouteMatch& match) const {
  const uint64_t methods = methodMask(match.methods);
  const std::optional<uint32_t> ownHost = hostId(match.host.value_or(""));
  const std::vector<Candidate> paths = coveringPaths(match.path);
  std::optional<Shadow> first;
  for (const uint32_t host : coveringHosts(match.host)) {
    for (const Candidate& path : paths) {
      const std::vector<Entry>* entries = bucket(host, path.node);
      if (entries == nullptr) continue;
      // An earlier prefix covers any path under it; an earlier exact path only the same exact one.
      const auto covering = std::find_if(entries->begin(), entries->end(), [&](const Entry& e) {
        const bool pathCovered =
            e.kind == PathMatch::Prefix || (path.samePath && match.kind == PathMatch::Exact);
        return pathCovered && methodsCover(e.methods, methods);
      });
      if (covering == entries->end() || (first && first->earlier < covering->index)) continue;
      const bool duplicate = host == ownHost && path.samePath && covering->kind == match.kind &&
                             covering->methods == methods;
      first = Shadow{covering->index, duplicate};
    }
  }
  return first;
}

void RouteOverlaps::add(std::size_t index, const RouteMatch& match) {
  const auto host =
      hosts_.try_emplace(match.host.value_or(""), static_cast<uint32_t>(hosts_.size())).first;
  uint32_t node = 0;
  for (std::string_view segment : segmentsOf(match.path)) {
    node = segments_.emplace(segmentKey(node, segment), nodes_).first->second;
    if (node == nodes_) ++nodes_;
  }
  buckets_[bucketKey(host->second, node)].push_back({index, match.kind, methodMask(match.methods)});
}

std::vector<RouteOverlaps::FallThrough> RouteOverlaps::fallThroughs(
    std::span<const RouteConfig> routes) const {
  std::vector<FallThrough> found;
  for (const auto& [key, entries] : buckets_) {
    uint64_t taken = 0;
    std::optional<std::size_t> first;
    bool anyMethod = false;
    for (const Entry& e : entries) {
      if (e.kind != PathMatch::Prefix) continue;
      if (!first) first = e.index;
      taken |= e.methods;
      anyMethod = anyMethod || e.methods == kAnyMethod;
    }
    if (!first || anyMethod) continue;
    const RouteMatch& match = routes[*first].match;
    const std::vector<Candidate> paths = coveringPaths(match.path);
    std::vector<const std::vector<Entry>*> covering;  // the routes of prefixes covering this one
    for (const uint32_t host : coveringHosts(match.host)) {
      for (const Candidate& path : paths) {
        if (bucketKey(host, path.node) == key) continue;  // the routes of this prefix themselves
        if (const std::vector<Entry>* entries = bucket(host, path.node)) {
          covering.push_back(entries);
        }
      }
    }
    // The methods earlier routes take there never reach a later one either.
    uint64_t handled = taken;
    for (const std::vector<Entry>* entries : covering) {
      for (const Entry& e : *entries) {
        if (e.index < *first && e.kind == PathMatch::Prefix) handled |= e.methods;
      }
    }
    std::optional<std::size_t> destination;
    for (const std::vector<Entry>* entries : covering) {
      const auto takesOthers = std::find_if(entries->begin(), entries->end(), [&](const Entry& e) {
        return e.index > *first && e.kind == PathMatch::Prefix &&
               (e.methods == kAnyMethod || (e.methods & ~handled) != 0);
      });
      if (takesOthers != entries->end() && (!destination || takesOthers->index < *destination)) {
        destination = takesOthers->index;
      }
    }
    if (destination) found.push_back({*first, taken, *destination});
  }
  std::sort(found.begin(), found.end(),
            [](const FallThrough& a, const FallThrough& b) { return a.route < b.route; });
  return found;
}

std::string RouteOverlaps::methodNames(uint64_t methods) const {
  std::string names;
  for (std::size_t i = 0; i < methodNames_.size(); ++i) {
    if ((methods & (uint64_t{1} << i)) == 0) continue;
    if (!names.empty()) names += ", ";
    names += methodNames_[i];
  }
  return names;
}

}  // namespace gw::config
