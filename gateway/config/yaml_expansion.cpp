#include "gateway/config/yaml_expansion.h"

#include <algorithm>
#include <cstdint>
#include <unordered_map>
#include <utility>
#include <vector>

namespace gw::config {

namespace {

bool isCollection(const YAML::Node& node) { return node.IsSequence() || node.IsMap(); }

std::vector<YAML::Node> childrenOf(const YAML::Node& node) {
  std::vector<YAML::Node> children;
  if (node.IsSequence()) {
    for (const YAML::Node& item : node) children.push_back(item);
  } else {
    for (auto it = node.begin(); it != node.end(); ++it) {
      children.push_back(it->first);
      children.push_back(it->second);
    }
  }
  return children;
}

// Expanded sizes of the collections seen so far. yaml-cpp gives nodes no hash, only is(): they
// are filed by position, and nodes at one position (a block mapping and its first key) told
// apart with is().
class Sizes {
 public:
  static constexpr uint64_t kOnPath = UINT64_MAX;  // being measured: met again, it loops

  uint64_t* find(const YAML::Node& node) {
    auto found = byMark_.find(key(node));
    if (found == byMark_.end()) return nullptr;
    for (auto& [known, size] : found->second) {
      if (known.is(node)) return &size;
    }
    return nullptr;
  }
  uint64_t& add(const YAML::Node& node) { return byMark_[key(node)].emplace_back(node, 0).second; }

 private:
  static uint64_t key(const YAML::Node& node) {
    const YAML::Mark mark = node.Mark();
    return (static_cast<uint64_t>(static_cast<uint32_t>(mark.line)) << 32) |
           static_cast<uint32_t>(mark.column);
  }
  std::unordered_map<uint64_t, std::vector<std::pair<YAML::Node, uint64_t>>> byMark_;
};

}  // namespace

std::optional<ExpansionProblem> checkExpandedSize(const YAML::Node& root, std::size_t maxNodes) {
  if (!isCollection(root)) return std::nullopt;
  const uint64_t tooMany = static_cast<uint64_t>(maxNodes) + 1;  // sizes saturate here
  Sizes sizes;
  struct Frame {
    YAML::Node node;
    std::vector<YAML::Node> children;
    std::size_t next = 0;
    uint64_t total = 1;  // the node itself
  };
  // Depth first, with the path on the heap: expanded aliases may nest deeper than any stack.
  std::vector<Frame> path;
  sizes.add(root) = Sizes::kOnPath;
  path.push_back({root, childrenOf(root)});
  while (!path.empty()) {
    Frame& frame = path.back();
    if (frame.next == frame.children.size()) {
      const uint64_t total = std::min(frame.total, tooMany);
      *sizes.find(frame.node) = total;
      path.pop_back();
      if (!path.empty()) path.back().total = std::min(path.back().total + total, tooMany);
      continue;
    }
    const YAML::Node child = frame.children[frame.next++];
    if (!isCollection(child)) {
      frame.total = std::min(frame.total + 1, tooMany);
    } else if (const uint64_t* known = sizes.find(child)) {
      if (*known == Sizes::kOnPath) {
        return ExpansionProblem{child,
                                "an alias is used inside the node it names: this node "
                                "would expand without end"};
      }
      frame.total = std::min(frame.total + *known, tooMany);
    } else {
      sizes.add(child) = Sizes::kOnPath;
      path.push_back({child, childrenOf(child)});
    }
  }
  if (*sizes.find(root) < tooMany) return std::nullopt;
  // Down to the smallest node that alone is too large: usually an anchored one.
  YAML::Node at = root;
  for (bool deeper = true; deeper;) {
    deeper = false;
    for (const YAML::Node& child : childrenOf(at)) {
      if (isCollection(child) && *sizes.find(child) >= tooMany) {
        at = child;
        deeper = true;
        break;
      }
    }
  }
  return ExpansionProblem{at, "this node holds more than " + std::to_string(maxNodes) +
                                  " YAML nodes once aliases are expanded (each *alias counts as "
                                  "a copy of the node it names), more than a configuration may"};
}

}  // namespace gw::config
