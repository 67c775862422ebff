#pragma once
// How routes overlap, found without comparing every pair of routes, so that a configuration of
// tens of thousands of routes is checked in near-linear time (`gatewayd -t`):
//   - shadowing: first match wins, so a route an earlier one fully covers can never be chosen;
//   - fall-through: a prefix route restricted to some methods lets requests with the others go
//     on to a later route covering its paths (often a catch-all, with other plugins), not a 405.
//
// The routes that could cover a match are few, and each is found by lookup: its host is absent,
// the same, or a wildcard of one of its parent domains; its path is a prefix at one of the
// match's segment boundaries, or the same exact path. Paths are interned as a trie of segments,
// so looking up every boundary of a path costs one pass over it.

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "gateway/config/model.h"

namespace gw::config {

class RouteOverlaps {
 public:
  // `methods`: every method name a match may list (the loader refuses others); at most 63.
  explicit RouteOverlaps(std::span<const std::string_view> methods);

  struct Shadow {
    std::size_t earlier;  // the route's index
    bool duplicate;       // the same host, kind, path and methods, not only covering
  };
  // The first route added so far that takes every request `match` could take.
  std::optional<Shadow> shadowOf(const RouteMatch& match) const;
  // Adds the next route (indexes ascending) for later ones to be compared with. A route that
  // shadowOf() reported need not be added: the route that shadows it covers all it would.
  void add(std::size_t index, const RouteMatch& match);

  struct FallThrough {
    std::size_t route;        // the first of the prefix routes for one host and path
    uint64_t methods;         // what those routes take together (see methodNames)
    std::size_t destination;  // the first later route that takes one of the other methods there
  };
  // For each host and prefix whose added routes all restrict methods; `routes` are the routes
  // the indexes given to add() refer to. Ordered by route.
  std::vector<FallThrough> fallThroughs(std::span<const RouteConfig> routes) const;
  // "GET, POST" for a set of methods.
  std::string methodNames(uint64_t methods) const;

 private:
  static constexpr uint64_t kAnyMethod = 0;
  struct Entry {
    std::size_t index;
    PathMatch kind;
    uint64_t methods;  // a bit per method; kAnyMethod: unrestricted
  };
  struct Candidate {
    uint32_t node;
    bool samePath;  // the match's own path, where an exact route may cover an exact match too
  };

  uint64_t methodMask(const std::vector<std::string>& methods) const;
  std::optional<uint32_t> hostId(std::string_view host) const;
  // The ids of the hosts that cover `host`: none, itself, the wildcards of its parent domains.
  std::vector<uint32_t> coveringHosts(const std::optional<std::string>& host) const;
  std::optional<uint32_t> child(uint32_t node, std::string_view segment) const;
  // The trie nodes of every prefix that covers `path`: each segment boundary, with and without
  // its '/', and the path itself (samePath). Only nodes some route was added at.
  std::vector<Candidate> coveringPaths(std::string_view path) const;
  const std::vector<Entry>* bucket(uint32_t host, uint32_t node) const;

  std::span<const std::string_view> methodNames_;
  std::unordered_map<std::string, uint32_t> hosts_;  // "" = no host
  // (parent node, segment) -> node; node 0 is the root, before the path's first '/'.
  std::unordered_map<std::string, uint32_t> segments_;
  uint32_t nodes_ = 1;
  // (host id, path node) -> the added routes there, in config order.
  std::unordered_map<uint64_t, std::vector<Entry>> buckets_;
};

}  // namespace gw::config
